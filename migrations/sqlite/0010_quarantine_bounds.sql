-- Bounds on the quarantine: each row's body size, so the total cap is summed without reading
-- bodies, and the receipt-time index the retention expiry deletes by.
ALTER TABLE quarantine ADD COLUMN body_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE quarantine SET body_bytes = length(body);
CREATE INDEX quarantine_received ON quarantine (received_at_ms);
