-- Scans keyed by time instead of by code: the recorder's batches, spread over many codes,
-- then append to the right edge of the primary key's B-tree instead of touching one page
-- per code. The CSV export of a code walks the time range between the code's creation and
-- its last scan (see `Store::scans_page`).

ALTER TABLE qr_scans DROP CONSTRAINT qr_scans_pkey;
ALTER TABLE qr_scans ADD CONSTRAINT qr_scans_pkey PRIMARY KEY (scanned_at, id);
