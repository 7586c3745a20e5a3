-- SPDX-License-Identifier: MIT
-- 004_parked_steps.sql -- steps waiting for an upstream: a durable retry store (issue 18).
--
-- A call step whose retry is further away than park.after_ms, or whose upstream's breaker
-- is open, is parked here and its intake queue entry acked: hours of one upstream's outage
-- then fill this table (limited per upstream by park.max), not the intake queue that every
-- tenant shares. The releaser (user/work/release.c) leases due rows (leased_until, so a
-- crashed releaser's rows come back after the lease), runs them from their step, and
-- deletes each once the step's effect is committed. One row per (event, step): parking a
-- step that is already parked updates it.
CREATE TABLE parked_steps (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	upstream        text         NOT NULL,
	tenant          text         NOT NULL,
	idempotency_key text         NOT NULL,
	step            integer      NOT NULL CHECK (step >= 0),
	received_at     timestamptz  NOT NULL,
	attempts        integer      NOT NULL CHECK (attempts >= 0),
	due_at          timestamptz  NOT NULL,
	parked_at       timestamptz  NOT NULL DEFAULT clock_timestamp(),
	leased_until    timestamptz,
	class           smallint     NOT NULL CHECK (class BETWEEN 0 AND 2),
	tenant_slot     integer      NOT NULL CHECK (tenant_slot >= 0),
	event           bytea        NOT NULL,
	last_error      text,
	UNIQUE (tenant, idempotency_key, step, received_at)
);
CREATE INDEX parked_steps_due ON parked_steps (upstream, due_at);
