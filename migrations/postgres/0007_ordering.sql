-- Per-address ordering and per-brand outage pacing for the İYS reporter.
-- Instants are integer milliseconds since the Unix epoch (UTC), as in 0001.

-- The consentDate (whole seconds) this job sends to İYS, written before the request goes out:
-- İYS keeps one record per address and refuses a date that is not strictly later (H178), so
-- the next movement of the address must be dated after every date that may have reached İYS.
ALTER TABLE report_jobs ADD COLUMN iys_date_ms BIGINT;

-- İYS's health per brand, shared by every replica: while paused_until is ahead no job of the
-- brand is claimed; once it passes, one claim takes a single job as the probe (and moves
-- paused_until on by a lease), so an outage costs requests by its length, not by the queue.
CREATE TABLE iys_brand_health (
    brand_code      BIGINT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    paused_until_ms BIGINT NOT NULL,
    last_error      TEXT,
    updated_at_ms   BIGINT NOT NULL
);
