-- The quarantine reviewed: an operator's last action on an upload, and the audit log
-- (verdicts and operator actions) kept in the outbox's table in a state of its own.
ALTER TABLE uploads ADD COLUMN reviewed_by text;
ALTER TABLE uploads ADD COLUMN review_note text;
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_state_check;
ALTER TABLE webhook_outbox ADD CONSTRAINT webhook_outbox_state_check
    CHECK (state IN ('pending', 'app-pending', 'cdn-pending', 'audit', 'delivered', 'dead'));
