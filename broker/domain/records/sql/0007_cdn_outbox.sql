-- Removals the CDN is told of (CloudFront invalidations) wait in a state of their own.
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_state_check;
ALTER TABLE webhook_outbox ADD CONSTRAINT webhook_outbox_state_check
    CHECK (state IN ('pending', 'app-pending', 'cdn-pending', 'delivered', 'dead'));
