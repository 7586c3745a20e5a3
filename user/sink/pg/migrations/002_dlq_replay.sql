-- SPDX-License-Identifier: MIT
-- 002_dlq_replay.sql -- operators replay dead letters through the database.
--
-- `sluicectl dlq replay` sets replay_requested_at; sluiced's replayer (user/control/dlq.c) puts the
-- stored event back into its queue with its original received time -- so the worker sees
-- the same event again, not a new copy -- clears the step's `failed` result so the step
-- runs again, and stamps replayed_at once the event is durable. A row asked for twice is
-- replayed once per request; a replay that crashes half way is simply repeated (the steps
-- are idempotent).
ALTER TABLE dead_letters
	ADD COLUMN replay_requested_at timestamptz,
	ADD COLUMN replayed_at timestamptz;

CREATE INDEX dead_letters_replay_pending ON dead_letters (replay_requested_at)
	WHERE replay_requested_at IS NOT NULL AND replayed_at IS NULL;
