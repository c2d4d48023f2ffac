-- The counters every webhook commit updates are spread over sixteen rows each. A row updated
-- in a transaction stays locked until that transaction commits, so with one row per queue
-- state and per (day, brand, channel, word), every group commit waited for the previous one's
-- fsync before it could add its own movements: the commits the ledger runs side by side ran one
-- after another. Each connection now writes the shard its backend's pid selects, so concurrent
-- commits, which run on different connections, touch different rows; a reader adds the shards.
-- A shard may go negative (a job counted in on one connection and out on another): only the sum
-- has a meaning.

ALTER TABLE report_job_counts ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE report_job_counts DROP CONSTRAINT report_job_counts_pkey;
ALTER TABLE report_job_counts ADD PRIMARY KEY (state, shard);

CREATE FUNCTION counter_shard() RETURNS SMALLINT LANGUAGE sql STABLE AS
$$ SELECT (pg_backend_pid() % 16)::SMALLINT $$;

-- Adds n to a state's count in this connection's shard. An upsert, not an update: a shard's
-- row exists only once its connection has counted something. The triggers call it in state
-- order, so that two commits cannot take the rows in opposite orders.
CREATE FUNCTION report_job_counts_add(job_state TEXT, n BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO report_job_counts AS c (state, shard, jobs) VALUES (job_state, counter_shard(), n)
    ON CONFLICT (state, shard) DO UPDATE SET jobs = c.jobs + EXCLUDED.jobs
$$;

CREATE OR REPLACE FUNCTION report_job_counts_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_job_counts_add(state, COUNT(*)) FROM new_rows GROUP BY state ORDER BY state;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION report_job_counts_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM report_job_counts_add(state, -COUNT(*)) FROM old_rows GROUP BY state ORDER BY state;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION report_job_counts_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Rows are matched by id: only those whose state changed move between counters.
    PERFORM report_job_counts_add(state, SUM(n)::BIGINT) FROM (
        SELECT n.state, 1 AS n FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.state <> n.state
        UNION ALL
        SELECT o.state, -1 FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE o.state <> n.state) m
    GROUP BY state ORDER BY state;
    RETURN NULL;
END $$;

ALTER TABLE movement_days ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE movement_days DROP CONSTRAINT movement_days_pkey;
ALTER TABLE movement_days ADD PRIMARY KEY (day, brand_code, channel, status, shard);

CREATE OR REPLACE FUNCTION movement_days_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO movement_days AS m (day, brand_code, channel, status, shard, movements)
    SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, counter_shard(),
        COUNT(*)
    FROM new_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (day, brand_code, channel, status, shard)
        DO UPDATE SET movements = m.movements + EXCLUDED.movements;
    RETURN NULL;
END $$;
