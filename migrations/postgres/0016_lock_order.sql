-- Concurrent group commits take the rows of the day counts in one order. The trigger's
-- aggregate came out in no particular order, so two commits holding movements of the same day
-- in two words (ONAY and RET) could lock the two count rows in opposite orders and deadlock;
-- PostgreSQL then aborted one after a second and the ledger retried its movements one by one.
CREATE OR REPLACE FUNCTION movement_days_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO movement_days AS m (day, brand_code, channel, status, movements)
    SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, COUNT(*)
    FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, brand_code, channel, status) DO UPDATE SET movements = m.movements + EXCLUDED.movements;
    RETURN NULL;
END $$;
