-- Scans clustered by time instead of by code. The recorder writes a batch of scans spread
-- over many codes every 250 ms; keyed by code first, each batch dirtied one B-tree page per
-- code it touched (thousands of pages written to the WAL per commit). Keyed by time, a
-- batch appends to the right edge of one B-tree. The CSV export of a code walks the time
-- range between the code's creation and its last scan (see `Store::scans_page`).

CREATE TABLE qr_scans_by_time (
    scanned_at  TEXT NOT NULL,
    id          BLOB NOT NULL,
    qr_code_id  BLOB NOT NULL REFERENCES qr_codes (id) ON DELETE CASCADE,
    address     TEXT NOT NULL,
    device      TEXT NOT NULL,
    os          TEXT NOT NULL,
    browser     TEXT NOT NULL,
    referrer    TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('qr', 'link')),
    visitor     BLOB NOT NULL,
    first_visit INTEGER NOT NULL,
    CONSTRAINT qr_scans_pkey PRIMARY KEY (scanned_at, id)
) WITHOUT ROWID;

INSERT INTO qr_scans_by_time (scanned_at, id, qr_code_id, address, device, os, browser,
    referrer, source, visitor, first_visit)
SELECT scanned_at, id, qr_code_id, address, device, os, browser, referrer, source, visitor,
    first_visit
FROM qr_scans;

DROP TABLE qr_scans;
ALTER TABLE qr_scans_by_time RENAME TO qr_scans;
