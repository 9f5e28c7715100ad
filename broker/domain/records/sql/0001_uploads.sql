-- The upload records: one row an upload, its state changed only by conditional updates.
CREATE TABLE uploads (
    id              text PRIMARY KEY,
    owner           text NOT NULL,
    profile         text NOT NULL,
    visibility      text NOT NULL,
    status          text NOT NULL CHECK (status IN
                        ('pending', 'processing', 'ready', 'rejected', 'expired', 'deleted')),
    filename        text NOT NULL,
    declared_type   text NOT NULL,
    declared_size   bigint,
    incoming_key    text NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    content_type    text,
    size            bigint,
    etag            text,
    stored_key      text,
    reason_code     text,
    reason_message  text,
    reason_detail   text,
    sha256          text,
    served_size     bigint,
    served_sha256   text,
    transport       text NOT NULL DEFAULT 'post'
);

-- An owner's listing, newest first; tombstones are left out.
CREATE INDEX uploads_listing ON uploads (owner, created_at DESC, id DESC)
    WHERE status <> 'deleted';
-- The pending cap counts these, and the sweeper expires them once lapsed.
CREATE INDEX uploads_pending ON uploads (owner, expires_at) WHERE status = 'pending';
CREATE INDEX uploads_pending_lapse ON uploads (expires_at) WHERE status = 'pending';
-- The sweeper re-drives records processing for too long.
CREATE INDEX uploads_processing_since ON uploads (updated_at) WHERE status = 'processing';
