-- Oldest open job by id (queue summary, /metrics) without scanning the queue.
CREATE INDEX report_jobs_state_id ON report_jobs (state, id);
