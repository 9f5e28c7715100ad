-- The webhook outbox: one row for each event and receiver, inserted by the statement
-- that makes the state change it reports.
CREATE TABLE webhook_outbox (
    id          text PRIMARY KEY,
    event_id    text NOT NULL,
    url         text NOT NULL,
    type        text NOT NULL,
    upload_id   text NOT NULL,
    owner       text NOT NULL,
    snapshot    text NOT NULL,
    created_at  timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    state       text NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    last_error  text,
    history     text NOT NULL DEFAULT '[]'
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, due_at) WHERE state <> 'delivered';
