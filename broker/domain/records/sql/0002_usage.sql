-- What each owner stores: the bytes and files of their ready uploads, moved in the
-- transaction that makes an upload ready (within the quota) or deletes a ready one.
CREATE TABLE owner_usage (
    owner         text PRIMARY KEY,
    stored_bytes  bigint NOT NULL DEFAULT 0,
    stored_files  bigint NOT NULL DEFAULT 0
);

-- Uploads already ready when this migration runs count from the start.
INSERT INTO owner_usage (owner, stored_bytes, stored_files)
SELECT owner, sum(coalesce(served_size, size, 0)), count(*)
FROM uploads WHERE status = 'ready' GROUP BY owner;
