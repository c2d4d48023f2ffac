-- The consent ledger: append-only events, derived current state, and the İYS report outbox.
-- Instants are integer milliseconds since the Unix epoch (UTC) in both backends.

CREATE TABLE consent_events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    brand_code          INTEGER NOT NULL,
    recipient           TEXT    NOT NULL,
    recipient_type      TEXT    NOT NULL,
    consent_type        TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    consent_at_ms       INTEGER NOT NULL,
    received_at_ms      INTEGER NOT NULL,
    provider            TEXT    NOT NULL,
    provider_message_id TEXT    NOT NULL,
    evidence            TEXT    NOT NULL,
    ip                  TEXT,
    user_agent          TEXT,
    call_id             TEXT,
    UNIQUE (provider, provider_message_id)
);
CREATE INDEX consent_events_recipient ON consent_events (recipient, id);

CREATE TABLE consent_state (
    brand_code      INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    recipient_type  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    consent_at_ms   INTEGER NOT NULL,
    event_id        INTEGER NOT NULL REFERENCES consent_events (id),
    iys_confirmed   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (brand_code, recipient, recipient_type, consent_type)
);

CREATE TABLE report_jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        INTEGER NOT NULL UNIQUE REFERENCES consent_events (id),
    brand_code      INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    recipient_type  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL,
    consent_at_ms   INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    due_at_ms       INTEGER NOT NULL,
    target_at_ms    INTEGER NOT NULL,
    deadline_at_ms  INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until_ms  INTEGER,
    batch_id        TEXT,
    transaction_id  TEXT,
    last_error      TEXT,
    created_at_ms   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE INDEX report_jobs_due ON report_jobs (state, due_at_ms);
CREATE INDEX report_jobs_address ON report_jobs (brand_code, recipient, recipient_type, consent_type, state);
CREATE INDEX report_jobs_deadline ON report_jobs (state, deadline_at_ms);

-- Requests that could not be understood: kept for review, never silently dropped.
CREATE TABLE quarantine (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at_ms  INTEGER NOT NULL,
    route           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    content_type    TEXT,
    ip              TEXT,
    body            BLOB    NOT NULL
);
