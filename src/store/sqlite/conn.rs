//! SQLite's connections: one writer connection owned by a thread of its own, and a pool of
//! read-only connections for lookups.
//!
//! Why a thread and not sqlx's SQLite driver: sqlx runs every SQLite statement on a worker
//! thread and hands each result back through a channel, so a group commit of a few statements
//! cost a dozen thread wake-ups, and the profile of the webhook path was dominated by them.
//! Here a write is one closure sent to the writer thread, which runs it and every other write
//! queued behind it in one transaction and then commits once: one fsync for all of them. One
//! failing write does not undo the others: the group is then run again, a savepoint per write.
//! A long writer (a bulk mint, an import) sends its work as several bounded closures, so the
//! webhooks queued behind it wait for one slice, not for the whole job.
//!
//! Reads run on the calling task's thread against a pooled connection: a point lookup by
//! primary key is a few microseconds in SQLite's page cache, far less than a hop to another
//! thread. Reads that scan (`read_blocking`) go to tokio's blocking pool instead.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::store::StoreError;

/// Prepared statements kept per connection: every statement the store runs, with room to spare.
const STATEMENT_CACHE: usize = 128;
/// Work a single transaction may gather before it commits: a webhook queued behind a long
/// writer waits at most about this long plus one slice.
const GROUP_BUDGET: Duration = Duration::from_millis(5);
const GROUP_MAX_JOBS: usize = 512;

/// A write queued for the writer thread. It may run twice: first with the rest of its group in
/// one transaction and no savepoint, and again, alone in a savepoint, if a write of that group
/// failed and the group was rolled back (see `run_writer`).
trait Job: Send {
    /// Runs the write on `conn`, inside a transaction, and keeps its outcome; true if it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the transaction has committed, or failed to (`commit_error`).
    fn finish(self: Box<Self>, commit_error: Option<&str>);
}

struct Write<T, F> {
    f: F,
    outcome: Option<Result<T, StoreError>>,
    done: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: Fn(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // A panic in one write must not take the only writer down with it.
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| (self.f)(conn)))
            .unwrap_or_else(|_| Err(StoreError::Corrupt("a store write panicked".into())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit_error: Option<&str>) {
        let outcome = match (self.outcome, commit_error) {
            (Some(Ok(v)), None) => Ok(v),
            (Some(Err(e)), _) => Err(e),
            (_, Some(e)) => Err(StoreError::Commit(e.to_string())),
            (None, None) => Err(StoreError::Commit("the write was never run".into())),
        };
        let _ = self.done.send(outcome);
    }
}

pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; the thread ends when the last sender is dropped.
    ///
    /// Checkpoints stay SQLite's own, in the writer after a commit that passes the threshold:
    /// a checkpoint from another thread can never finish while the writer keeps appending, so
    /// the WAL would never start over and grew without bound under sustained load (800 MB in
    /// ten seconds of webhooks, measured), and the kernel then throttled the writer's writes.
    pub(super) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(conn, rx))?;
        Ok(Writer { jobs: tx })
    }

    /// Runs `f` in the writer's current transaction: an error from `f` undoes only what `f`
    /// did. Returns once the transaction has committed, so the result is durable. `f` may be run
    /// a second time (after a rollback of its group, so on the same state of the database): it
    /// must do nothing but its statements.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue(f)?
            .await
            .map_err(|_| StoreError::Commit("the SQLite writer has stopped".into()))?
    }

    /// Queues `f` behind the writes already queued; the receiver gets its outcome.
    fn queue<T, F>(&self, f: F) -> Result<oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job = Box::new(Write {
            f,
            outcome: None,
            done,
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Commit("the SQLite writer has stopped".into()))?;
        Ok(result)
    }
}

/// Runs one of the writer's own transaction statements from the statement cache: they run
/// several times per commit, and `execute_batch` would parse each of them every time.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs `job` in a savepoint of the current transaction, so that its failure undoes only what
/// it did. Fails only if the savepoint itself cannot be opened or closed.
fn in_savepoint(conn: &Connection, job: &mut dyn Job) -> rusqlite::Result<()> {
    control(conn, "SAVEPOINT job")?;
    if !job.run(conn) {
        control(conn, "ROLLBACK TO job")?;
    }
    control(conn, "RELEASE job")
}

/// Runs a group's writes again after the group was rolled back, each in a savepoint: the
/// failing one is undone alone and the others are kept.
fn rerun_in_savepoints(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    control(conn, "ROLLBACK")?;
    control(conn, "BEGIN IMMEDIATE")?;
    for job in jobs {
        in_savepoint(conn, job.as_mut())?;
    }
    Ok(())
}

fn run_writer(conn: Connection, mut rx: mpsc::UnboundedReceiver<Box<dyn Job>>) {
    while let Some(first) = rx.blocking_recv() {
        let started = Instant::now();
        // IMMEDIATE takes the write lock now: another process (a CLI repair) waits here, in
        // busy_timeout, instead of failing later on a lock upgrade.
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            first.finish(Some(&e.to_string()));
            continue;
        }
        // Writes almost never fail, so the group runs without savepoints: a savepoint copies
        // every page a write touches before it changes it (a quarter of the writer's time,
        // measured). If one does fail, what it did before failing is mixed with the others'
        // changes, so the whole group is undone and run again with a savepoint per write.
        let mut jobs = vec![first];
        let mut failed = !jobs[0].run(&conn);
        while !failed && jobs.len() < GROUP_MAX_JOBS && started.elapsed() < GROUP_BUDGET {
            match rx.try_recv() {
                Ok(mut job) => {
                    failed = !job.run(&conn);
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let rerun = if failed {
            rerun_in_savepoints(&conn, &mut jobs)
        } else {
            Ok(())
        };
        let commit_error = rerun
            .and_then(|()| control(&conn, "COMMIT"))
            .err()
            .map(|e| e.to_string());
        if commit_error.is_some() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        metrics::histogram!("iys_relay_sqlite_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("iys_relay_sqlite_writes_per_commit").record(jobs.len() as f64);
        for job in jobs {
            job.finish(commit_error.as_deref());
        }
    }
}

/// Opens a connection to the database file with the pragmas every connection needs.
pub(super) fn open(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.busy_timeout(Duration::from_secs(5))?;
    // SQLite's default page cache is 2 MB (32 MB for the writer and 4 MB per reader here keep the
    // resident set under 150 MB with a million rows); movements land at random places in the state table
    // and the indexes, so a cache that small re-reads the same pages from the OS all the time.
    if read_only {
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -4096;")?;
    } else {
        // WAL + synchronous=FULL: a commit is on disk before it is acknowledged, so an
        // acknowledged event survives kill -9 and power loss; the group commit amortises it.
        // temp_store=MEMORY: the undo copies of a statement or a savepoint (the statement
        // journal) would otherwise go to a temporary file, page by page; they only matter until
        // the transaction ends, so memory is enough (+20–30 % webhooks/s measured when every
        // write of a group commit ran in a savepoint).
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;",
        )?;
    }
    Ok(conn)
}

/// Read-only connections, opened on demand and kept up to `max` for reuse.
pub(super) struct Readers {
    path: PathBuf,
    max: usize,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf, max: usize) -> Arc<Self> {
        Arc::new(Readers {
            path,
            max: max.max(1),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Runs a short read on this thread.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => open(&self.path, true)?,
        };
        let out = f(&conn);
        // A connection left inside a transaction by a failed read is not reused.
        if conn.is_autocommit()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max
        {
            idle.push(conn);
        }
        out
    }

    /// Runs a read that may scan many rows on tokio's blocking pool.
    pub(super) async fn read_blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.read(f))
            .await
            .map_err(|e| StoreError::Corrupt(format!("a store read panicked: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn insert(c: &Connection, name: &str) -> Result<(), StoreError> {
        c.execute("INSERT INTO t (name) VALUES (?1)", [name])?;
        Ok(())
    }

    /// A group of three writes where the middle one fails after changing the database, or
    /// panics: the group is run again in savepoints, so only the failing write is undone.
    async fn group_with_a_failing_write(fail: impl Fn() -> StoreError + Send + 'static) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = open(&path, false).unwrap();
        conn.execute_batch("CREATE TABLE t (name TEXT NOT NULL)")
            .unwrap();
        let writer = Writer::start(conn).unwrap();

        // The first write holds the writer (the first time it runs) until the other two are
        // queued behind it, so all three fall in one group.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = Mutex::new(Some(held));
        let (running, started) = std::sync::mpsc::channel::<()>();
        let runs = Arc::new(AtomicUsize::new(0));
        let first_runs = runs.clone();
        let first = writer
            .queue(move |c| {
                first_runs.fetch_add(1, Ordering::SeqCst);
                if let Some(held) = held.lock().unwrap().take() {
                    running.send(()).unwrap();
                    held.recv().unwrap();
                }
                insert(c, "first")
            })
            .unwrap();
        started.recv().unwrap();
        let failing = writer
            .queue(move |c| {
                insert(c, "half-done")?;
                Err::<(), _>(fail())
            })
            .unwrap();
        let third = writer.queue(|c| insert(c, "third")).unwrap();
        release.send(()).unwrap();

        assert!(first.await.unwrap().is_ok());
        assert!(failing.await.unwrap().is_err());
        assert!(third.await.unwrap().is_ok());
        // Run once optimistically, once more in its savepoint after the group was undone.
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let names: Vec<String> = open(&path, true)
            .unwrap()
            .prepare("SELECT name FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(names, ["first", "third"]);
    }

    #[tokio::test]
    async fn a_failing_write_is_undone_alone() {
        group_with_a_failing_write(|| StoreError::Corrupt("refused".into())).await;
    }

    #[tokio::test]
    async fn a_panicking_write_is_undone_alone() {
        group_with_a_failing_write(|| panic!("a bug in a write")).await;
    }
}
