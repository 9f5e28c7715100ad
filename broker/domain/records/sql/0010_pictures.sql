-- Pictures: what is served when it differs from the upload's type (a HEIC photo served
-- as JPEG), and the renditions served beside it (JSON).
ALTER TABLE uploads ADD COLUMN served_type text;
ALTER TABLE uploads ADD COLUMN renditions text;
