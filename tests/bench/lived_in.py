# Makes the seeded ledger look lived-in: 30 days of movements, 95 % of jobs accepted by İYS,
# 2.5 % failed with alerts, a million İYS attempts over the last two days (10 % refused).
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1])
now = int(time.time() * 1000)
c.execute("UPDATE consent_events SET received_at_ms = received_at_ms - (id % 30) * 86400000")
c.execute("DELETE FROM movement_days")
c.execute("INSERT INTO movement_days SELECT (received_at_ms + 10800000) / 86400000, brand_code, channel, status, COUNT(*) FROM consent_events GROUP BY 1,2,3,4")
c.execute("UPDATE report_jobs SET state='done', updated_at_ms = created_at_ms + (id % 7200000), transaction_id = 'tx' || id WHERE id % 20 <> 0")
c.execute("UPDATE report_jobs SET state='failed', last_error='H121 bad number' WHERE id % 40 = 0")
c.execute("INSERT INTO alerts (job_id, kind, severity, detail, at_ms) SELECT id, 'failed', 'error', 'H121 bad number', updated_at_ms FROM report_jobs WHERE state = 'failed'")
c.executemany("INSERT INTO iys_attempts (job_id, brand_code, operation, method, path, status, code, duration_ms, at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
  ((i, 700000, 'add', 'POST', '/sps/x', 200 if i % 10 else 422, None if i % 10 else 'H121', 40, now - (i % 172800) * 1000) for i in range(1, 1000001)))
c.commit()
for t in ['consent_events', 'report_jobs', 'iys_attempts', 'alerts', 'movement_days', 'acceptance_days', 'iys_attempt_hours']:
    print(t, c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
