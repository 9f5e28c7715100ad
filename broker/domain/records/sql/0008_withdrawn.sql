-- An accepted upload judged again and found bad is withdrawn: no longer served.
ALTER TABLE uploads DROP CONSTRAINT uploads_status_check;
ALTER TABLE uploads ADD CONSTRAINT uploads_status_check CHECK (status IN
    ('pending', 'processing', 'ready', 'rejected', 'expired', 'withdrawn', 'deleted'));
