-- SPDX-License-Identifier: MIT
-- 003_dlq_class.sql -- a dead letter keeps its event's class and tenant slot.
--
-- The replayer (user/control/dlq.c) put every replayed event back as class normal in tenant
-- slot 0: a critical event came back behind normal work, and every replay shared one
-- tenant's round-robin turn. The worker now records the queue entry's class and slot with
-- the dead letter, and the replay appends with them. Rows written before this migration
-- have neither: their replay takes the class of the event's stored row, else normal.
ALTER TABLE dead_letters
	ADD COLUMN class varchar(16) CHECK (class IN ('critical', 'normal', 'low')),
	ADD COLUMN tenant_slot integer CHECK (tenant_slot >= 0);
