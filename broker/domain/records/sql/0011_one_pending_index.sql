-- The pending cap's count must read only its owner's waiting uploads. With a second
-- index on the waiting uploads' expiry, a create's plan made before any statistics
-- (a fresh database) could pick it and read every owner's. The sweeper's few lapsed
-- uploads a minute are found through uploads_pending, which holds only waiting uploads.
DROP INDEX IF EXISTS uploads_pending_lapse;
