-- The İYS reporter: attempt log, async batches, sync cursors, alerts and the global pacing slot.
-- Instants are integer milliseconds since the Unix epoch (UTC), as in 0001.

-- Position of a job inside its async batch (the poll answers by 0-based index).
ALTER TABLE report_jobs ADD COLUMN batch_index INTEGER;

-- One row per HTTP call to İYS (evidence of every attempt). No bodies, no recipients.
CREATE TABLE iys_attempts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          INTEGER,
    batch_id        TEXT,
    brand_code      INTEGER,
    operation       TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    path            TEXT    NOT NULL,
    status          INTEGER,
    code            TEXT,
    duration_ms     INTEGER NOT NULL,
    at_ms           INTEGER NOT NULL
);
CREATE INDEX iys_attempts_job ON iys_attempts (job_id);
CREATE INDEX iys_attempts_batch ON iys_attempts (batch_id);

-- Async batches submitted to İYS, polled no sooner than poll_after.
CREATE TABLE iys_batches (
    request_id      TEXT    PRIMARY KEY,
    brand_code      INTEGER NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    poll_after_ms   INTEGER NOT NULL,
    polls           INTEGER NOT NULL DEFAULT 0,
    items           INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    updated_at_ms   INTEGER NOT NULL
);
CREATE INDEX iys_batches_due ON iys_batches (state, poll_after_ms);

-- Pull cursors (the opaque `after` İYS returns), per brand and source.
CREATE TABLE sync_cursors (
    brand_code      INTEGER NOT NULL,
    source          TEXT    NOT NULL,
    after           TEXT    NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (brand_code, source)
);

-- Deadline warnings and errors, at most one of each kind per job.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id          INTEGER NOT NULL,
    kind            TEXT    NOT NULL,
    severity        TEXT    NOT NULL,
    detail          TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL,
    UNIQUE (job_id, kind)
);

-- The next free İYS request slot, shared by every replica (10 requests/s per IP at İYS).
CREATE TABLE iys_pacing (
    id              INTEGER PRIMARY KEY,
    next_slot_ms    INTEGER NOT NULL
);
INSERT INTO iys_pacing (id, next_slot_ms) VALUES (1, 0);
