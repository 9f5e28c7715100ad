-- Deliveries to the app's own process (the Flask extension's signal) wait in a state
-- of their own, apart from those to webhook receivers.
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_state_check;
ALTER TABLE webhook_outbox ADD CONSTRAINT webhook_outbox_state_check
    CHECK (state IN ('pending', 'app-pending', 'delivered', 'dead'));
