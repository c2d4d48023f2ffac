-- The jobs of an address, without their state: a job moving from pending to leased to batched
-- to done no longer rewrites an entry of this index each time (it sat at a random place, so
-- each move was a page more written to the log). The queries that use it filter the few jobs
-- of one address by state after the lookup.
DROP INDEX report_jobs_address;
CREATE INDEX report_jobs_address ON report_jobs (brand_code, recipient, recipient_type, consent_type);
