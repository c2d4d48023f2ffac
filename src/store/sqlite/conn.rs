//! SQLite's connections: one writer connection owned by a thread of its own, and a pool of
//! read-only connections for lookups.
//!
//! Why a thread and not sqlx's SQLite driver: sqlx runs every SQLite statement on a worker
//! thread and hands each result back through a channel, so a group commit of a few statements
//! cost a dozen thread wake-ups, and the profile of the webhook path was dominated by them.
//! Here a write is one closure sent to the writer thread, which runs it and every other write
//! queued behind it in one transaction, each in a savepoint of its own so that one failing
//! write does not undo the others, and then commits once: one fsync for all of them. A long
//! writer (a bulk mint, an import) sends its work as several bounded closures, so the webhooks
//! queued behind it wait for one slice, not for the whole job.
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

/// A write to run on the writer thread; it returns what completes the caller once the
/// transaction that holds it has committed (or failed to).
/// It is given the connection inside an open transaction, or the reason none could be opened
/// (then it must not run).
type Job = Box<dyn FnOnce(Result<&Connection, &str>) -> Completion + Send>;
type Completion = Box<dyn FnOnce(Option<&str>) + Send>;

pub(super) struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`; the thread ends when the last sender is dropped.
    ///
    /// Checkpoints stay SQLite's own, in the writer after a commit that passes the threshold:
    /// a checkpoint from another thread can never finish while the writer keeps appending, so
    /// the WAL would never start over and grew without bound under sustained load (800 MB in
    /// ten seconds of webhooks, measured), and the kernel then throttled the writer's writes.
    pub(super) fn start(conn: Connection) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run_writer(conn, rx))?;
        Ok(Writer { jobs: tx })
    }

    /// Runs `f` in the writer's current transaction, in a savepoint: an error from `f` undoes
    /// only what `f` did. Returns once the transaction has committed, so the result is durable.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn: Result<&Connection, &str>| {
            let outcome = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(e) => Err(StoreError::Commit(e.to_string())),
            };
            Box::new(move |commit_error: Option<&str>| {
                let outcome = match (outcome, commit_error) {
                    (Ok(v), None) => Ok(v),
                    (Ok(_), Some(e)) => Err(StoreError::Commit(e.to_string())),
                    (Err(e), _) => Err(e),
                };
                let _ = done.send(outcome);
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Commit("the SQLite writer has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Commit("the SQLite writer has stopped".into()))?
    }
}

/// Runs one of the writer's own transaction statements from the statement cache: they run
/// several times per commit, and `execute_batch` would parse each of them every time.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    control(conn, "SAVEPOINT job")?;
    // A panic in one write must not take the only writer down with it.
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(StoreError::Corrupt("a store write panicked".into())));
    match &outcome {
        Ok(_) => control(conn, "RELEASE job")?,
        Err(_) => {
            control(conn, "ROLLBACK TO job")?;
            control(conn, "RELEASE job")?
        }
    }
    outcome
}

fn run_writer(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let started = Instant::now();
        // IMMEDIATE takes the write lock now: another process (a CLI repair) waits here, in
        // busy_timeout, instead of failing later on a lock upgrade.
        if let Err(e) = control(&conn, "BEGIN IMMEDIATE") {
            let message = e.to_string();
            first(Err(&message))(Some(&message));
            continue;
        }
        let mut completions = vec![first(Ok(&conn))];
        while completions.len() < GROUP_MAX_JOBS && started.elapsed() < GROUP_BUDGET {
            match rx.try_recv() {
                Ok(job) => completions.push(job(Ok(&conn))),
                Err(_) => break,
            }
        }
        let writes = completions.len();
        let commit_error = control(&conn, "COMMIT").err().map(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
        metrics::histogram!("iys_relay_sqlite_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("iys_relay_sqlite_writes_per_commit").record(writes as f64);
        for c in completions {
            c(commit_error.as_deref());
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
        // temp_store=MEMORY: each write of a group commit runs in a savepoint, whose undo copies
        // (the statement journal) would otherwise go to a temporary file, page by page; they only
        // matter until the transaction ends, so memory is enough (+20–30 % webhooks/s measured).
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
