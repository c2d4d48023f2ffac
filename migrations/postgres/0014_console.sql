-- The compliance console: its users, their sessions, the append-only log of what they did, and
-- the day-by-day figures its charts draw (kept by triggers in the transaction of every write, so
-- a page reads a few hundred rows however large the ledger grows).

CREATE TABLE console_users (
    id              BIGSERIAL PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE,
    role            TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash   TEXT    NOT NULL,
    disabled        BIGINT  NOT NULL DEFAULT 0,
    failed_logins   BIGINT  NOT NULL DEFAULT 0,
    locked_until_ms BIGINT,
    created_at_ms   BIGINT  NOT NULL,
    updated_at_ms   BIGINT  NOT NULL
);

-- A session is known by the SHA-256 of its cookie: a copy of the database signs no one in.
CREATE TABLE console_sessions (
    token_hash      TEXT    PRIMARY KEY,
    user_id         BIGINT  NOT NULL REFERENCES console_users (id),
    csrf_token      TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    last_seen_ms    BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- Every operator action and sign-in, never changed or removed.
CREATE TABLE console_actions (
    id              BIGSERIAL PRIMARY KEY,
    at_ms           BIGINT  NOT NULL,
    username        TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    reason          TEXT,
    detail          TEXT    NOT NULL,
    ip              TEXT
);
CREATE FUNCTION console_actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_actions is append-only';
END $$;
CREATE TRIGGER console_actions_no_change BEFORE UPDATE OR DELETE ON console_actions
    FOR EACH ROW EXECUTE FUNCTION console_actions_append_only();
CREATE TRIGGER console_actions_no_truncate BEFORE TRUNCATE ON console_actions
    FOR EACH STATEMENT EXECUTE FUNCTION console_actions_append_only();

-- An alert an operator has seen and taken charge of.
ALTER TABLE alerts ADD COLUMN acknowledged_at_ms BIGINT;
ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;

-- İYS's answers per hour (hour = at_ms / 3 600 000): the success rate over the last 24 h reads
-- 25 rows, not the day's attempts (hundreds of thousands on a busy day). Client errors are the
-- answers İYS's whitelist rule counts against the caller (400, 401, 403, 404, 422).
CREATE TABLE iys_attempt_hours (
    hour            BIGINT  PRIMARY KEY,
    calls           BIGINT  NOT NULL,
    succeeded       BIGINT  NOT NULL,
    client_errors   BIGINT  NOT NULL
);

INSERT INTO iys_attempt_hours (hour, calls, succeeded, client_errors)
SELECT at_ms / 3600000, COUNT(*),
       COUNT(*) FILTER (WHERE status BETWEEN 200 AND 299),
       COUNT(*) FILTER (WHERE status IN (400, 401, 403, 404, 422))
FROM iys_attempts GROUP BY 1;

CREATE FUNCTION iys_attempt_hours_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO iys_attempt_hours AS h (hour, calls, succeeded, client_errors)
    SELECT at_ms / 3600000, COUNT(*),
           COUNT(*) FILTER (WHERE status BETWEEN 200 AND 299),
           COUNT(*) FILTER (WHERE status IN (400, 401, 403, 404, 422))
    FROM new_rows GROUP BY 1
    ON CONFLICT (hour) DO UPDATE SET calls = h.calls + EXCLUDED.calls,
        succeeded = h.succeeded + EXCLUDED.succeeded,
        client_errors = h.client_errors + EXCLUDED.client_errors;
    RETURN NULL;
END $$;
CREATE TRIGGER iys_attempt_hours_insert AFTER INSERT ON iys_attempts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION iys_attempt_hours_added();

-- Movements per Istanbul day (day = days since 1970-01-01 in UTC+3: Turkey has kept that
-- offset all year since 2016), brand, channel and word.
CREATE TABLE movement_days (
    day             BIGINT  NOT NULL,
    brand_code      BIGINT  NOT NULL,
    channel         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    movements       BIGINT  NOT NULL,
    PRIMARY KEY (day, brand_code, channel, status)
);

INSERT INTO movement_days (day, brand_code, channel, status, movements)
SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, COUNT(*)
FROM consent_events GROUP BY 1, 2, 3, 4;

-- Statement-level: a group commit of 1 000 movements is one upsert per (day, brand, channel,
-- word), not 1 000.
CREATE FUNCTION movement_days_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO movement_days AS m (day, brand_code, channel, status, movements)
    SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, COUNT(*)
    FROM new_rows GROUP BY 1, 2, 3, 4
    ON CONFLICT (day, brand_code, channel, status) DO UPDATE SET movements = m.movements + EXCLUDED.movements;
    RETURN NULL;
END $$;
CREATE TRIGGER movement_days_insert AFTER INSERT ON consent_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION movement_days_added();

-- Jobs İYS accepted, per Istanbul day of acceptance, by how long the movement took from receipt
-- to acceptance and how much of its legal deadline was left. Bucket n holds values below the
-- n-th bound (minutes: 1, 5, 15, 60, 360, 1440, 4320; hours left: 0, 6, 24, 48, 72), the last
-- bucket everything above.
CREATE TABLE acceptance_days (
    day             BIGINT  NOT NULL,
    latency_bucket  BIGINT  NOT NULL,
    margin_bucket   BIGINT  NOT NULL,
    jobs            BIGINT  NOT NULL,
    PRIMARY KEY (day, latency_bucket, margin_bucket)
);

-- The buckets of a job as if it were accepted at its last update: one definition for the
-- trigger and for the jobs accepted before this migration.
CREATE FUNCTION acceptance_day(updated_at_ms BIGINT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS
$$ SELECT (updated_at_ms + 10800000) / 86400000 $$;
CREATE FUNCTION latency_bucket(created_at_ms BIGINT, updated_at_ms BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE
    WHEN updated_at_ms - created_at_ms < 60000 THEN 0
    WHEN updated_at_ms - created_at_ms < 300000 THEN 1
    WHEN updated_at_ms - created_at_ms < 900000 THEN 2
    WHEN updated_at_ms - created_at_ms < 3600000 THEN 3
    WHEN updated_at_ms - created_at_ms < 21600000 THEN 4
    WHEN updated_at_ms - created_at_ms < 86400000 THEN 5
    WHEN updated_at_ms - created_at_ms < 259200000 THEN 6
    ELSE 7
END $$;
CREATE FUNCTION margin_bucket(deadline_at_ms BIGINT, updated_at_ms BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$
SELECT CASE
    WHEN deadline_at_ms - updated_at_ms < 0 THEN 0
    WHEN deadline_at_ms - updated_at_ms < 21600000 THEN 1
    WHEN deadline_at_ms - updated_at_ms < 86400000 THEN 2
    WHEN deadline_at_ms - updated_at_ms < 172800000 THEN 3
    WHEN deadline_at_ms - updated_at_ms < 259200000 THEN 4
    ELSE 5
END $$;

INSERT INTO acceptance_days (day, latency_bucket, margin_bucket, jobs)
SELECT acceptance_day(updated_at_ms), latency_bucket(created_at_ms, updated_at_ms),
       margin_bucket(deadline_at_ms, updated_at_ms), COUNT(*)
FROM report_jobs WHERE state = 'done' GROUP BY 1, 2, 3;

CREATE FUNCTION acceptance_days_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO acceptance_days AS a (day, latency_bucket, margin_bucket, jobs)
    SELECT acceptance_day(n.updated_at_ms), latency_bucket(n.created_at_ms, n.updated_at_ms),
           margin_bucket(n.deadline_at_ms, n.updated_at_ms), COUNT(*)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.state = 'done' AND o.state <> 'done'
    GROUP BY 1, 2, 3
    ON CONFLICT (day, latency_bucket, margin_bucket) DO UPDATE SET jobs = a.jobs + EXCLUDED.jobs;
    RETURN NULL;
END $$;
CREATE TRIGGER acceptance_days_done AFTER UPDATE ON report_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION acceptance_days_done();
