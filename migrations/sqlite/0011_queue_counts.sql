-- Open and finished report jobs by state, kept by triggers in the same transaction as every
-- change to report_jobs: a metrics scrape reads eight rows instead of counting a queue that may
-- hold millions, and no write path can forget to update them.
CREATE TABLE report_job_counts (
    state TEXT PRIMARY KEY,
    jobs BIGINT NOT NULL
);

INSERT INTO report_job_counts (state, jobs)
SELECT s.state, (SELECT COUNT(*) FROM report_jobs j WHERE j.state = s.state)
FROM (SELECT 'pending' AS state UNION ALL SELECT 'leased' UNION ALL SELECT 'batched'
      UNION ALL SELECT 'done' UNION ALL SELECT 'superseded' UNION ALL SELECT 'nothing_to_revoke'
      UNION ALL SELECT 'failed' UNION ALL SELECT 'expired') s;

CREATE TRIGGER report_job_counts_insert AFTER INSERT ON report_jobs
BEGIN
    UPDATE report_job_counts SET jobs = jobs + 1 WHERE state = NEW.state;
END;

CREATE TRIGGER report_job_counts_update AFTER UPDATE OF state ON report_jobs
WHEN OLD.state <> NEW.state
BEGIN
    UPDATE report_job_counts SET jobs = jobs - 1 WHERE state = OLD.state;
    UPDATE report_job_counts SET jobs = jobs + 1 WHERE state = NEW.state;
END;

CREATE TRIGGER report_job_counts_delete AFTER DELETE ON report_jobs
BEGIN
    UPDATE report_job_counts SET jobs = jobs - 1 WHERE state = OLD.state;
END;
