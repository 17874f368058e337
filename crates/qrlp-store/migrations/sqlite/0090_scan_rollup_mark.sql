-- Roll-ups behind the scans. The recorder stores scans as they come; the quarter-hour
-- buckets, daily rows and per-code totals of scans made up to `through` are written in
-- one step every few seconds (`Store::roll_up_scans`), one upsert per code and period
-- instead of one per code in every 250 ms batch. Reads add the scans after `through`
-- from `qr_scans`, so counts stay exact. NULL: no step has run yet, and every stored
-- scan was rolled up by its own batch (as before this migration).
CREATE TABLE qr_scan_rollup (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    through TEXT
);

INSERT INTO qr_scan_rollup (id, through) VALUES (1, NULL);
