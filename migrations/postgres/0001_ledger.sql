-- The consent ledger: append-only events, derived current state, and the İYS report outbox.
-- Instants are integer milliseconds since the Unix epoch (UTC) in both backends.

CREATE TABLE consent_events (
    id                  BIGSERIAL PRIMARY KEY,
    brand_code          BIGINT  NOT NULL,
    recipient           TEXT    NOT NULL,
    recipient_type      TEXT    NOT NULL,
    consent_type        TEXT    NOT NULL,
    status              TEXT    NOT NULL,
    source              TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    consent_at_ms       BIGINT  NOT NULL,
    received_at_ms      BIGINT  NOT NULL,
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
    brand_code      BIGINT  NOT NULL,
    recipient       TEXT    NOT NULL,
    recipient_type  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    consent_at_ms   BIGINT  NOT NULL,
    event_id        BIGINT  NOT NULL REFERENCES consent_events (id),
    iys_confirmed   BIGINT  NOT NULL,
    updated_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (brand_code, recipient, recipient_type, consent_type)
);

CREATE TABLE report_jobs (
    id              BIGSERIAL PRIMARY KEY,
    event_id        BIGINT  NOT NULL UNIQUE REFERENCES consent_events (id),
    brand_code      BIGINT  NOT NULL,
    recipient       TEXT    NOT NULL,
    recipient_type  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL,
    consent_at_ms   BIGINT  NOT NULL,
    state           TEXT    NOT NULL,
    due_at_ms       BIGINT  NOT NULL,
    target_at_ms    BIGINT  NOT NULL,
    deadline_at_ms  BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    batch_id        TEXT,
    transaction_id  TEXT,
    last_error      TEXT,
    created_at_ms   BIGINT  NOT NULL,
    updated_at_ms   BIGINT  NOT NULL
);
CREATE INDEX report_jobs_due ON report_jobs (state, due_at_ms);
CREATE INDEX report_jobs_address ON report_jobs (brand_code, recipient, recipient_type, consent_type, state);
CREATE INDEX report_jobs_deadline ON report_jobs (state, deadline_at_ms);

-- Requests that could not be understood: kept for review, never silently dropped.
CREATE TABLE quarantine (
    id              BIGSERIAL PRIMARY KEY,
    received_at_ms  BIGINT  NOT NULL,
    route           TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    content_type    TEXT,
    ip              TEXT,
    body            BYTEA   NOT NULL
);
