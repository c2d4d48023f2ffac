-- The ledger's group commit keeps the pending-job count and the movements per day itself, from
-- the tallies of the batch it writes, one statement per counter row instead of a trigger per
-- inserted row. A trigger made every insert into consent_events and report_jobs a statement
-- that writes two tables, which SQLite runs with a statement journal (an undo copy of every
-- page it changes): a tenth of the writer thread's time under webhook load, measured with perf.
-- Only the ledger's group commit inserts into these two tables; the triggers on the other
-- changes to report_jobs (its state moves, deletions) stay.
DROP TRIGGER report_job_counts_insert;
DROP TRIGGER movement_days_insert;
