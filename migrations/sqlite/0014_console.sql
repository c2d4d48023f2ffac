-- The compliance console: its users, their sessions, the append-only log of what they did, and
-- the day-by-day figures its charts draw (kept by triggers in the transaction of every write, so
-- a page reads a few hundred rows however large the ledger grows).

CREATE TABLE console_users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash   TEXT    NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);

-- A session is known by the SHA-256 of its cookie: a copy of the database signs no one in.
CREATE TABLE console_sessions (
    token_hash      TEXT    PRIMARY KEY,
    user_id         INTEGER NOT NULL REFERENCES console_users (id),
    csrf_token      TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    last_seen_ms    INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- Every operator action and sign-in, never changed or removed.
CREATE TABLE console_actions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms           INTEGER NOT NULL,
    username        TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    reason          TEXT,
    detail          TEXT    NOT NULL,
    ip              TEXT
);
CREATE TRIGGER console_actions_no_update BEFORE UPDATE ON console_actions
BEGIN
    SELECT RAISE(ABORT, 'console_actions is append-only');
END;
CREATE TRIGGER console_actions_no_delete BEFORE DELETE ON console_actions
BEGIN
    SELECT RAISE(ABORT, 'console_actions is append-only');
END;

-- An alert an operator has seen and taken charge of.
ALTER TABLE alerts ADD COLUMN acknowledged_at_ms INTEGER;
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;

-- İYS's answers per hour (hour = at_ms / 3 600 000): the success rate over the last 24 h reads
-- 25 rows, not the day's attempts (hundreds of thousands on a busy day). Client errors are the
-- answers İYS's whitelist rule counts against the caller (400, 401, 403, 404, 422).
CREATE TABLE iys_attempt_hours (
    hour            INTEGER PRIMARY KEY,
    calls           INTEGER NOT NULL,
    succeeded       INTEGER NOT NULL,
    client_errors   INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO iys_attempt_hours (hour, calls, succeeded, client_errors)
SELECT at_ms / 3600000, COUNT(*),
       SUM(CASE WHEN status BETWEEN 200 AND 299 THEN 1 ELSE 0 END),
       SUM(CASE WHEN status IN (400, 401, 403, 404, 422) THEN 1 ELSE 0 END)
FROM iys_attempts GROUP BY 1;

CREATE TRIGGER iys_attempt_hours_insert AFTER INSERT ON iys_attempts
BEGIN
    INSERT INTO iys_attempt_hours (hour, calls, succeeded, client_errors)
    VALUES (NEW.at_ms / 3600000, 1,
            CASE WHEN NEW.status BETWEEN 200 AND 299 THEN 1 ELSE 0 END,
            CASE WHEN NEW.status IN (400, 401, 403, 404, 422) THEN 1 ELSE 0 END)
    ON CONFLICT (hour) DO UPDATE SET calls = calls + 1,
        succeeded = succeeded + excluded.succeeded,
        client_errors = client_errors + excluded.client_errors;
END;

-- Movements per Istanbul day (day = days since 1970-01-01 in UTC+3: Turkey has kept that
-- offset all year since 2016), brand, channel and word.
CREATE TABLE movement_days (
    day             INTEGER NOT NULL,
    brand_code      INTEGER NOT NULL,
    channel         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    movements       INTEGER NOT NULL,
    PRIMARY KEY (day, brand_code, channel, status)
) WITHOUT ROWID;

INSERT INTO movement_days (day, brand_code, channel, status, movements)
SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, COUNT(*)
FROM consent_events GROUP BY 1, 2, 3, 4;

CREATE TRIGGER movement_days_insert AFTER INSERT ON consent_events
BEGIN
    INSERT INTO movement_days (day, brand_code, channel, status, movements)
    VALUES ((NEW.received_at_ms + 10800000) / 86400000, NEW.brand_code, NEW.channel, NEW.status, 1)
    ON CONFLICT (day, brand_code, channel, status) DO UPDATE SET movements = movements + 1;
END;

-- Jobs İYS accepted, per Istanbul day of acceptance, by how long the movement took from receipt
-- to acceptance and how much of its legal deadline was left. Bucket n holds values below the
-- n-th bound (minutes: 1, 5, 15, 60, 360, 1440, 4320; hours left: 0, 6, 24, 48, 72), the last
-- bucket everything above.
CREATE TABLE acceptance_days (
    day             INTEGER NOT NULL,
    latency_bucket  INTEGER NOT NULL,
    margin_bucket   INTEGER NOT NULL,
    jobs            INTEGER NOT NULL,
    PRIMARY KEY (day, latency_bucket, margin_bucket)
) WITHOUT ROWID;

-- The buckets of a job as if it were accepted at its last update: one definition for the
-- trigger and for the jobs accepted before this migration.
CREATE VIEW acceptance_buckets AS
SELECT id,
    (updated_at_ms + 10800000) / 86400000 AS day,
    CASE
        WHEN updated_at_ms - created_at_ms < 60000 THEN 0
        WHEN updated_at_ms - created_at_ms < 300000 THEN 1
        WHEN updated_at_ms - created_at_ms < 900000 THEN 2
        WHEN updated_at_ms - created_at_ms < 3600000 THEN 3
        WHEN updated_at_ms - created_at_ms < 21600000 THEN 4
        WHEN updated_at_ms - created_at_ms < 86400000 THEN 5
        WHEN updated_at_ms - created_at_ms < 259200000 THEN 6
        ELSE 7
    END AS latency_bucket,
    CASE
        WHEN deadline_at_ms - updated_at_ms < 0 THEN 0
        WHEN deadline_at_ms - updated_at_ms < 21600000 THEN 1
        WHEN deadline_at_ms - updated_at_ms < 86400000 THEN 2
        WHEN deadline_at_ms - updated_at_ms < 172800000 THEN 3
        WHEN deadline_at_ms - updated_at_ms < 259200000 THEN 4
        ELSE 5
    END AS margin_bucket
FROM report_jobs;

INSERT INTO acceptance_days (day, latency_bucket, margin_bucket, jobs)
SELECT b.day, b.latency_bucket, b.margin_bucket, COUNT(*)
FROM acceptance_buckets b JOIN report_jobs j ON j.id = b.id
WHERE j.state = 'done' GROUP BY 1, 2, 3;

CREATE TRIGGER acceptance_days_done AFTER UPDATE OF state ON report_jobs
WHEN NEW.state = 'done' AND OLD.state <> 'done'
BEGIN
    INSERT INTO acceptance_days (day, latency_bucket, margin_bucket, jobs)
    SELECT day, latency_bucket, margin_bucket, 1 FROM acceptance_buckets WHERE id = NEW.id
    ON CONFLICT (day, latency_bucket, margin_bucket) DO UPDATE SET jobs = jobs + 1;
END;
