-- The same lived-in shape as reshape.py, on PostgreSQL.
UPDATE consent_events SET received_at_ms = received_at_ms - (id % 30) * 86400000;
DELETE FROM movement_days;
INSERT INTO movement_days SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, COUNT(*) FROM consent_events GROUP BY 1,2,3,4;
UPDATE report_jobs SET state='done', updated_at_ms = created_at_ms + (id % 7200000), transaction_id = 'tx' || id WHERE id % 20 <> 0;
UPDATE report_jobs SET state='failed', last_error='H121 bad number' WHERE id % 40 = 0;
INSERT INTO alerts (job_id, kind, severity, detail, at_ms) SELECT id, 'failed', 'error', 'H121 bad number', updated_at_ms FROM report_jobs WHERE state = 'failed';
INSERT INTO iys_attempts (job_id, brand_code, operation, method, path, status, code, duration_ms, at_ms)
SELECT i, 700000, 'add', 'POST', '/sps/x', CASE WHEN i % 10 = 0 THEN 422 ELSE 200 END, CASE WHEN i % 10 = 0 THEN 'H121' END, 40,
       (extract(epoch from now()) * 1000)::bigint - (i % 172800) * 1000
FROM generate_series(1, 1000000) i;
VACUUM ANALYZE;
