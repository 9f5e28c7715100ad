-- Large files in parts: the store's multipart upload id, and the planned part size
-- (null when the client plans its own parts, as Uppy does).
ALTER TABLE uploads ADD COLUMN multipart_id text;
ALTER TABLE uploads ADD COLUMN part_size bigint;
