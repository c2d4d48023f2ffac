-- Leased jobs by when their lease lapses: the claim looks for lapsed leases on every slice, and
-- while a round holds thousands of live leases, finding the lapsed ones through the state index
-- read every one of them. Only leased rows are in it, so pending and finished jobs cost nothing.
CREATE INDEX report_jobs_lapsing ON report_jobs (lease_until_ms) WHERE state = 'leased';
