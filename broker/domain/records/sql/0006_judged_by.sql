-- What judged an upload: the inspection rules' version and the malware scan (by what
-- engine and signatures, or why it was not scanned).
ALTER TABLE uploads ADD COLUMN judged_by text;
