-- SPDX-License-Identifier: MIT
-- 005_call_claims.sql -- the first copy of (tenant, idempotency_key) claims its calls.
--
-- A route without a `store` step had no place where a client's second copy of a key was
-- told from the first, so both reached the upstream (issue 18, without Redis). Before its
-- first call step an event of such a route inserts its claim; a copy that finds another
-- receipt time's claim is a duplicate and is acked without calling. A redelivery of the
-- claiming event finds its own receipt time and goes on.
CREATE TABLE call_claims (
	tenant          varchar(64)  NOT NULL,
	idempotency_key varchar(200) NOT NULL,
	received_at     timestamptz  NOT NULL,
	claimed_at      timestamptz  NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (tenant, idempotency_key)
);
