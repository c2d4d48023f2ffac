-- The İYS agreement audit. Instants are integer milliseconds since the Unix epoch (UTC), as in 0001.

-- One row shared by every replica: when the last full sweep was claimed and when one last ended
-- (with the divergences it left, for every replica's /metrics), and how far the targeted checks have read report jobs by (updated_at_ms, id), so restarts and
-- replicas neither repeat nor skip them.
CREATE TABLE audit_progress (
    id                   BIGINT PRIMARY KEY,
    sweep_started_at_ms  BIGINT,
    sweep_finished_at_ms BIGINT,
    sweep_divergent      BIGINT NOT NULL,
    jobs_after_ms        BIGINT NOT NULL,
    jobs_after_id        BIGINT NOT NULL
);
INSERT INTO audit_progress (id, sweep_started_at_ms, sweep_finished_at_ms, sweep_divergent,
    jobs_after_ms, jobs_after_id)
VALUES (1, NULL, NULL, 0, 0, 0);

-- The sweep pages through addresses in the grouping of İYS's multi-status query
-- (brand, recipientType, type), with a keyset cursor.
CREATE INDEX consent_state_audit ON consent_state (brand_code, recipient_type, consent_type, recipient);

-- Targeted checks read the jobs that changed since their cursor.
CREATE INDEX report_jobs_updated ON report_jobs (updated_at_ms, id);
