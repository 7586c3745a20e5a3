-- SPDX-License-Identifier: MIT
-- 001_init.sql -- events, their global idempotency keys, step results and dead letters.
--
-- Layout (docs/postgres.md explains the choice):
--  * event_keys holds one narrow row per (tenant, idempotency_key): the only place where
--    that pair is unique, so the writer's INSERT ... ON CONFLICT (tenant, idempotency_key)
--    DO NOTHING is the authoritative dedupe. Hash-partitioned so each partition's unique
--    index stays a sixteenth of the whole and can be vacuumed/reindexed on its own.
--  * events and step_results are range-partitioned by day on received_at, so months of
--    data are dropped a partition at a time. PostgreSQL requires the partition key in any
--    unique index of theirs, which is why global uniqueness lives in event_keys instead.
--  * dead_letters is low volume, unpartitioned, keeps the raw bytes of the rejected event.

CREATE TABLE event_keys (
	tenant          varchar(64)  NOT NULL,
	idempotency_key varchar(200) NOT NULL,
	received_at     timestamptz  NOT NULL,
	PRIMARY KEY (tenant, idempotency_key)
) PARTITION BY HASH (tenant, idempotency_key);

DO $$
BEGIN
	FOR i IN 0..15 LOOP
		EXECUTE format('CREATE TABLE event_keys_h%s PARTITION OF event_keys '
			       'FOR VALUES WITH (MODULUS 16, REMAINDER %s)', lpad(i::text, 2, '0'), i);
	END LOOP;
END $$;

CREATE TABLE events (
	tenant          varchar(64)  NOT NULL,
	idempotency_key varchar(200) NOT NULL,
	type            varchar(128) NOT NULL,
	class           varchar(16)  NOT NULL
		CHECK (class IN ('critical', 'normal', 'low')),
	payload         jsonb        NOT NULL,
	received_at     timestamptz  NOT NULL,
	stored_at       timestamptz  NOT NULL DEFAULT clock_timestamp()
) PARTITION BY RANGE (received_at);
-- Time-range reads per tenant, and key lookups: event_keys gives received_at, which prunes
-- to one partition and pins the index range. No unique index here: event_keys gates inserts.
CREATE INDEX events_tenant_time ON events (tenant, received_at);

-- Rows outside every daily partition (a replay of very old events, a skewed clock) land
-- here rather than being refused; sluice_ensure_partitions() keeps days ahead in place.
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE TABLE step_results (
	tenant          varchar(64)  NOT NULL,
	idempotency_key varchar(200) NOT NULL,
	step            varchar(64)  NOT NULL,
	received_at     timestamptz  NOT NULL,
	status          varchar(16)  NOT NULL
		CHECK (status IN ('done', 'skipped', 'failed', 'fallback')),
	attempts        integer      NOT NULL DEFAULT 1,
	result          jsonb,
	error           text,
	updated_at      timestamptz  NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (tenant, idempotency_key, step, received_at)
) PARTITION BY RANGE (received_at);

CREATE TABLE step_results_default PARTITION OF step_results DEFAULT;

CREATE TABLE dead_letters (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	tenant          text         NOT NULL,
	idempotency_key text         NOT NULL,
	step            text         NOT NULL,
	reason          text         NOT NULL,
	attempts        integer      NOT NULL,
	last_error      text         NOT NULL,
	payload         bytea,
	received_at     timestamptz,
	failed_at       timestamptz  NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX dead_letters_tenant_time ON dead_letters (tenant, failed_at);
CREATE INDEX dead_letters_key ON dead_letters (tenant, idempotency_key);

-- Create the daily partitions of events and step_results from days_back days ago to
-- days_ahead days ahead (UTC days). Idempotent; a day whose rows already sit in the
-- default partition is skipped with a notice (move them by hand, see docs/postgres.md).
CREATE FUNCTION sluice_ensure_partitions(days_back integer, days_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	d date;
	t text;
	made integer := 0;
BEGIN
	FOR d IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - days_back,
					(now() AT TIME ZONE 'UTC')::date + days_ahead,
					interval '1 day')::date LOOP
		FOREACH t IN ARRAY ARRAY['events', 'step_results'] LOOP
			CONTINUE WHEN to_regclass(format('%I_%s', t, to_char(d, 'YYYYMMDD'))) IS NOT NULL;
			BEGIN
				EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
					       format('%s_%s', t, to_char(d, 'YYYYMMDD')), t,
					       (d::timestamp AT TIME ZONE 'UTC'),
					       ((d + 1)::timestamp AT TIME ZONE 'UTC'));
				made := made + 1;
			EXCEPTION WHEN check_violation THEN
				RAISE NOTICE 'sluice: %_% not created: its rows are in the default partition',
					t, to_char(d, 'YYYYMMDD');
			END;
		END LOOP;
	END LOOP;
	RETURN made;
END $$;

-- Drop daily partitions of events and step_results older than keep_days (retention).
CREATE FUNCTION sluice_drop_partitions(keep_days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	r record;
	dropped integer := 0;
BEGIN
	FOR r IN SELECT c.relname FROM pg_inherits i
		 JOIN pg_class c ON c.oid = i.inhrelid
		 JOIN pg_class p ON p.oid = i.inhparent
		 WHERE p.relname IN ('events', 'step_results')
		   AND c.relname ~ '_[0-9]{8}$'
		   AND to_date(right(c.relname, 8), 'YYYYMMDD')
			< (now() AT TIME ZONE 'UTC')::date - keep_days LOOP
		EXECUTE format('DROP TABLE %I', r.relname);
		dropped := dropped + 1;
	END LOOP;
	RETURN dropped;
END $$;

SELECT sluice_ensure_partitions(1, 14);
