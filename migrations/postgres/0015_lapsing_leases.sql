-- Leased jobs by when their lease lapses, as on SQLite: the claim looks for lapsed leases, and
-- while a round holds thousands of live leases the state index alone would visit every one.
-- Only leased rows are in it, so pending and finished jobs cost nothing.
CREATE INDEX report_jobs_lapsing ON report_jobs (lease_until_ms) WHERE state = 'leased';
