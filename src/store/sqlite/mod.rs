//! The store on SQLite, through rusqlite: the embedded default, one process per database file.
//!
//! Why rusqlite rather than sqlx's SQLite driver: see `conn.rs`. Writes go to the writer
//! thread (`Writer::write`), short reads run inline on a pooled read-only connection
//! (`Readers::read`), reads that scan go to the blocking pool (`Readers::read_blocking`).
//! Statements are prepared once per connection (`prepare_cached`) and loop over rows in
//! process, so no statement text is built per call and no list of values is spliced into SQL.

mod audit;
mod conn;
mod console;
mod links;
mod migrate;
mod ops;
mod queue;
mod record;
mod rows;
mod sms;

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use self::conn::{Readers, Writer};
use super::{
    Backend, ConsentState, InboundMessage, Link, NewEvent, NewLink, QuarantineItem, QuarantineKept,
    QueueSummary, Readiness, RecordOutcome, ReportJob, StoreError, StoredEvent,
};
use crate::domain::Address;
use crate::domain::time::{from_ms, to_ms};
use crate::domain::{ConsentType, RecipientType};

pub struct SqliteStore {
    /// None when opened read-only beside a running `serve`.
    writer: Option<Writer>,
    readers: Arc<Readers>,
    /// The single-instance lock, held for the life of the store (not taken when read-only).
    _lock: Option<File>,
}

/// The database file named by a `sqlite:` URL (`sqlite://data/x.db`, `sqlite:///abs/x.db`).
fn db_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

fn required_path(url: &str) -> Result<PathBuf, StoreError> {
    db_path(url)
        .ok_or_else(|| StoreError::UnsupportedUrl(format!("{url} (SQLite needs a file path)")))
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let path = required_path(url)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let lock = lock_file(&path)?;
        let writer = Writer::start(conn::open(&path, false)?)?;
        Ok(SqliteStore {
            writer: Some(writer),
            readers: Readers::new(path, max_connections as usize),
            _lock: Some(lock),
        })
    }

    /// A read-only store beside a running `serve`: no single-instance lock (SQLite lets any
    /// number of readers share a WAL database with its one writer), read-only connections with
    /// `query_only`, and no writer, so a mistaken write fails instead of racing the service.
    pub async fn connect_read_only(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let path = required_path(url)?;
        if !path.exists() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "no database at {} (run `iys-relay migrate` or `serve` first)",
                    path.display()
                ),
            )));
        }
        Ok(SqliteStore {
            writer: None,
            readers: Readers::new(path, max_connections as usize),
            _lock: None,
        })
    }

    /// Runs `f` over `items` a slice at a time, each slice a write of its own, in order, and
    /// returns what each slice gave. For long writers (bulk mints, batches of a thousand jobs):
    /// one write of thousands of rows holds the only writer for tens of milliseconds, and every
    /// webhook behind it waits; behind a slice, a webhook waits for one slice. `f` is told the
    /// offset of its slice in `items`.
    async fn write_sliced<I, T, F>(&self, items: &[I], f: F) -> Result<Vec<T>, StoreError>
    where
        I: Clone + Send + 'static,
        T: Send + 'static,
        F: Fn(&rusqlite::Connection, &[I], usize) -> Result<T, StoreError> + Clone + Send + 'static,
    {
        let mut out = Vec::with_capacity(items.len().div_ceil(WRITE_SLICE));
        for (n, slice) in items.chunks(WRITE_SLICE).enumerate() {
            let (slice, f) = (slice.to_vec(), f.clone());
            out.push(self.write(move |c| f(c, &slice, n * WRITE_SLICE)).await?);
        }
        Ok(out)
    }

    /// Runs `f` on the writer thread in the current group commit; returns once it is durable.
    /// `f` may run twice (see `Writer::write`).
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(w) => w.write(f).await,
            None => Err(StoreError::ReadOnly),
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.read(f)
    }

    async fn read_blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.readers.read_blocking(f).await
    }
}

/// Takes `<db>.lock` exclusively: two processes writing one SQLite file would fight over it.
fn lock_file(db: &Path) -> Result<File, StoreError> {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    let p = PathBuf::from(p);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(p.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e)),
    }
}

/// `SELECT … WHERE` one row, mapped; `None` when there is none.
fn one<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params, map)
        .optional()?)
}

/// Every row of a query, mapped.
fn all<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, map)?;
    Ok(rows.collect::<Result<Vec<T>, _>>()?)
}

/// A list bound as one parameter: a JSON array that the statement reads back with
/// `json_each(?n)`. One statement whatever the list's length (an index probe per value inside
/// SQLite), and nothing spliced into the SQL text.
fn json_list(values: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(values).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Each address once, in a stable order.
fn distinct(keys: &[Address]) -> Vec<Address> {
    let mut v = keys.to_vec();
    v.sort_by(|a, b| {
        (
            a.brand_code,
            a.recipient_type.as_str(),
            a.consent_type.as_str(),
            &a.recipient,
        )
            .cmp(&(
                b.brand_code,
                b.recipient_type.as_str(),
                b.consent_type.as_str(),
                &b.recipient,
            ))
    });
    v.dedup();
    v
}

fn count(conn: &rusqlite::Connection, sql: &str) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?)
}

/// Rows a long writer writes per write (see `write_sliced`): 250 job updates or link mints
/// take a few milliseconds.
const WRITE_SLICE: usize = 250;

const STATE_BY_ADDRESS: &str = concat!(
    "SELECT ",
    rows::state_columns!(),
    " FROM consent_state WHERE brand_code = ?1 AND recipient = ?2 AND recipient_type = ?3 AND consent_type = ?4"
);
const STATES_OF_RECIPIENTS: &str = concat!(
    "SELECT ",
    rows::state_columns!(),
    " FROM consent_state WHERE brand_code = ?1 AND recipient_type = ?2 AND consent_type = ?3
       AND recipient IN (SELECT value FROM json_each(?4))"
);
const EVENT_BY_ID: &str = concat!(
    "SELECT ",
    rows::event_columns!(),
    " FROM consent_events WHERE id = ?1"
);
const EVENTS_BY_RECIPIENT: &str = concat!(
    "SELECT ",
    rows::event_columns!(),
    " FROM consent_events WHERE recipient = ?1 ORDER BY id"
);
const JOB_BY_EVENT: &str = concat!(
    "SELECT ",
    rows::job_columns!(),
    " FROM report_jobs WHERE event_id = ?1"
);
const NEAREST_IN_STATE: &str = concat!(
    "SELECT ",
    rows::job_columns!(),
    " FROM report_jobs WHERE state = ?1 ORDER BY deadline_at_ms, id LIMIT ?2"
);
const OPEN_STATES: [&str; 3] = ["pending", "leased", "batched"];

#[async_trait]
impl super::Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.write(migrate::run).await
    }

    async fn readiness(&self) -> Result<Readiness, StoreError> {
        let applied = self.read(migrate::applied)?;
        Ok(Readiness {
            backend: Backend::Sqlite,
            applied_migrations: applied,
            expected_migrations: migrate::expected(),
        })
    }

    async fn write_batch(
        &self,
        events: &[NewEvent],
        inbound: &[InboundMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let batch = record::Batch::prepare(events, inbound, now)?;
        self.write(move |c| batch.write(c)).await
    }

    async fn consent_state(&self, key: &Address) -> Result<Option<ConsentState>, StoreError> {
        self.read(|c| {
            one(
                c,
                STATE_BY_ADDRESS,
                params![
                    key.brand_code,
                    key.recipient,
                    key.recipient_type.as_str(),
                    key.consent_type.as_str()
                ],
                rows::state,
            )
        })
    }

    async fn consent_states(
        &self,
        brand_code: i64,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        recipients: &[String],
    ) -> Result<Vec<ConsentState>, StoreError> {
        let list = json_list(recipients)?;
        self.read_blocking(move |c| {
            all(
                c,
                STATES_OF_RECIPIENTS,
                params![
                    brand_code,
                    recipient_type.as_str(),
                    consent_type.as_str(),
                    list
                ],
                rows::state,
            )
        })
        .await
    }

    async fn event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        self.read(|c| one(c, EVENT_BY_ID, [id], rows::event))
    }

    async fn events_for_recipient(&self, recipient: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let recipient = recipient.to_string();
        self.read_blocking(move |c| all(c, EVENTS_BY_RECIPIENT, [recipient], rows::event))
            .await
    }

    async fn job_for_event(&self, event_id: i64) -> Result<Option<ReportJob>, StoreError> {
        self.read(|c| one(c, JOB_BY_EVENT, [event_id], rows::job))
    }

    async fn queue_summary(&self, nearest: i64) -> Result<QueueSummary, StoreError> {
        self.read_blocking(move |c| {
            let by_state = all(
                c,
                "SELECT state, jobs FROM report_job_counts WHERE jobs > 0 ORDER BY state",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            // One index probe per open state, merged here: `state IN (…) ORDER BY deadline`
            // would make SQLite sort every open job, and a queue may hold millions.
            let mut jobs = Vec::new();
            let mut oldest: Option<i64> = None;
            for state in OPEN_STATES {
                jobs.extend(all(c, NEAREST_IN_STATE, params![state, nearest], rows::job)?);
                // Ids grow with creation time, and (state, id) is indexed.
                let first: Option<i64> = one(
                    c,
                    "SELECT created_at_ms FROM report_jobs WHERE id = (SELECT MIN(id) FROM report_jobs WHERE state = ?1)",
                    [state],
                    |r| r.get(0),
                )?;
                oldest = match (oldest, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            jobs.sort_by_key(|j| (j.deadline_at, j.id));
            jobs.truncate(nearest.max(0) as usize);
            Ok(QueueSummary {
                by_state,
                nearest: jobs,
                oldest_open_created_at: oldest.map(from_ms),
            })
        })
        .await
    }

    async fn quarantine(
        &self,
        item: &QuarantineItem,
        max_total_bytes: i64,
    ) -> Result<QuarantineKept, StoreError> {
        let item = item.clone();
        self.write(move |c| {
            let id: i64 = c
                .prepare_cached(
                    "INSERT INTO quarantine (received_at_ms, route, reason, content_type, ip, body, body_bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                )?
                .query_row(
                    params![
                        to_ms(item.received_at),
                        item.route,
                        item.reason,
                        item.content_type,
                        item.ip,
                        item.body,
                        item.body.len() as i64
                    ],
                    |r| r.get(0),
                )?;
            // Newest first, a running total: every row past the cap goes, oldest first by
            // construction. Only authenticated requests get here, so this stays rare.
            let dropped = c
                .prepare_cached(
                    "DELETE FROM quarantine WHERE id IN (
                         SELECT id FROM (
                             SELECT id, SUM(body_bytes) OVER (ORDER BY id DESC) AS newer_bytes
                             FROM quarantine
                         ) kept WHERE newer_bytes > ?1)",
                )?
                .execute([max_total_bytes])?;
            Ok(QuarantineKept {
                id,
                dropped: dropped as u64,
            })
        })
        .await
    }

    async fn quarantine_count(&self) -> Result<i64, StoreError> {
        self.read(|c| count(c, "SELECT COUNT(*) FROM quarantine"))
    }

    async fn quarantine_bytes(&self) -> Result<i64, StoreError> {
        self.read(|c| count(c, "SELECT COALESCE(SUM(body_bytes), 0) FROM quarantine"))
    }

    async fn expire_quarantine(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write(move |c| {
            Ok(
                c.prepare_cached("DELETE FROM quarantine WHERE received_at_ms < ?1")?
                    .execute([to_ms(before)])? as u64,
            )
        })
        .await
    }

    async fn inbound_count(&self) -> Result<i64, StoreError> {
        self.read(|c| count(c, "SELECT COUNT(*) FROM inbound_messages"))
    }

    async fn mint_links(
        &self,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<Vec<Link>, StoreError> {
        self.mint_links_in_slices(links, now).await
    }

    async fn link_by_code_hash(&self, code_hash: &str) -> Result<Option<Link>, StoreError> {
        self.read(|c| links::by_code_hash(c, code_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_urls() {
        assert_eq!(
            db_path("sqlite://data/x.db"),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            db_path("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(db_path("sqlite::memory:"), None);
    }

    #[test]
    fn distinct_keys_once_each() {
        use crate::domain::{ConsentType, RecipientType};
        let k = |r: &str| crate::domain::Address {
            brand_code: 1,
            recipient: r.into(),
            recipient_type: RecipientType::Bireysel,
            consent_type: ConsentType::Mesaj,
        };
        assert_eq!(
            super::distinct(&[k("b"), k("a"), k("b")]),
            vec![k("a"), k("b")]
        );
    }
}
