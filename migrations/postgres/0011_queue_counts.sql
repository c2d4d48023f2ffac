-- Open and finished report jobs by state, kept by triggers in the same transaction as every
-- change to report_jobs: a metrics scrape reads eight rows instead of counting a queue that may
-- hold millions, and no write path can forget to update them. Statement-level triggers with
-- transition tables: a 1 000-row insert or claim is one counter update per state, not 1 000.
CREATE TABLE report_job_counts (
    state TEXT PRIMARY KEY,
    jobs BIGINT NOT NULL
);

INSERT INTO report_job_counts (state, jobs)
SELECT s.state, (SELECT COUNT(*) FROM report_jobs j WHERE j.state = s.state)
FROM unnest(ARRAY['pending', 'leased', 'batched', 'done', 'superseded', 'nothing_to_revoke',
                  'failed', 'expired']) AS s(state);

CREATE FUNCTION report_job_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_job_counts c SET jobs = c.jobs + d.n
    FROM (SELECT state, COUNT(*) AS n FROM new_rows GROUP BY state) d WHERE c.state = d.state;
    RETURN NULL;
END $$;

CREATE FUNCTION report_job_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_job_counts c SET jobs = c.jobs - d.n
    FROM (SELECT state, COUNT(*) AS n FROM old_rows GROUP BY state) d WHERE c.state = d.state;
    RETURN NULL;
END $$;

CREATE FUNCTION report_job_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows are matched by id: only those whose state changed move between counters.
    UPDATE report_job_counts c SET jobs = c.jobs + d.n
    FROM (SELECT state, SUM(n) AS n FROM (
              SELECT n.state, 1 AS n FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE o.state <> n.state
              UNION ALL
              SELECT o.state, -1 FROM new_rows n JOIN old_rows o ON o.id = n.id
              WHERE o.state <> n.state) m GROUP BY state) d
    WHERE c.state = d.state;
    RETURN NULL;
END $$;

CREATE TRIGGER report_job_counts_insert AFTER INSERT ON report_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_job_counts_added();
CREATE TRIGGER report_job_counts_delete AFTER DELETE ON report_jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_job_counts_removed();
CREATE TRIGGER report_job_counts_update AFTER UPDATE ON report_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION report_job_counts_moved();
