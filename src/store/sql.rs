//! The one `Store` implementation, over sqlx's `Any` driver (see `store/mod.rs` for why).

use std::fs::File;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::AnyPool;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::rows::{
    JOB_COLUMNS, STATE_COLUMNS, job_from_row, state_from_row, stored_event_from_row,
};
use super::{
    AddressKey, Backend, ConsentState, InboundMessage, NewEvent, QuarantineItem, QuarantineKept,
    QueueSummary, Readiness, RecordOutcome, ReportJob, StoreError, StoredEvent, postgres, sqlite,
};
use crate::domain::time::{from_ms, to_ms};
use crate::domain::{ConsentType, RecipientType};

pub struct SqlStore {
    pub(super) backend: Backend,
    /// Readers. On PostgreSQL the same pool as `write`.
    pub(super) read: AnyPool,
    /// Writers. On SQLite a single connection: SQLite has one writer at a time anyway, and one
    /// connection means `BEGIN IMMEDIATE` never waits on ourselves.
    pub(super) write: AnyPool,
    /// SQLite only: the single-instance lock, held for the life of the store.
    pub(super) _lock: Option<File>,
}

impl SqlStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            sqlite::connect(url, max_connections).await
        } else if postgres::accepts(url) {
            Self::connect_postgres(url, max_connections).await
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }

    /// Opens the store for reading only, beside a running `serve` (see `sqlite::connect_read_only`).
    /// PostgreSQL has no single-instance rule, so it connects as usual.
    pub async fn connect_read_only(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            sqlite::connect_read_only(url, max_connections).await
        } else {
            Self::connect(url, max_connections).await
        }
    }

    /// The `Any` pool on PostgreSQL; `store::connect` opens [`super::PgStore`] there instead.
    async fn connect_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(max_connections.max(2))
            .after_release(release_clean)
            .connect(url)
            .await?;
        Ok(SqlStore {
            backend: Backend::Postgres,
            read: pool.clone(),
            write: pool,
            _lock: None,
        })
    }

    pub(super) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            // IMMEDIATE takes the write lock up front, so a transaction that reads first cannot
            // fail later with SQLITE_BUSY on lock upgrade.
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &sqlite::MIGRATOR,
            Backend::Postgres => &postgres::MIGRATOR,
        }
    }
}

#[async_trait]
impl super::Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.migrator().run(&self.write).await?;
        Ok(())
    }

    async fn readiness(&self) -> Result<Readiness, StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        // A missing migrations table just means nothing is applied yet.
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = true")
                .fetch_one(&self.read)
                .await
                .unwrap_or(0);
        Ok(Readiness {
            backend: self.backend,
            applied_migrations: applied,
            expected_migrations: self.migrator().iter().count() as i64,
        })
    }

    async fn write_batch(
        &self,
        events: &[NewEvent],
        inbound: &[InboundMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        self.write_batch_impl(events, inbound, now).await
    }

    async fn consent_state(&self, key: &AddressKey) -> Result<Option<ConsentState>, StoreError> {
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM consent_state
             WHERE brand_code = $1 AND recipient = $2 AND recipient_type = $3 AND consent_type = $4"
        );
        let row = sqlx::query(&sql)
            .bind(key.brand_code)
            .bind(key.recipient.as_str())
            .bind(key.recipient_type.as_str())
            .bind(key.consent_type.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(state_from_row).transpose()
    }

    async fn consent_states(
        &self,
        brand_code: i64,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        recipients: &[String],
    ) -> Result<Vec<ConsentState>, StoreError> {
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..recipients.len())
            .map(|n| format!("${}", n + 4))
            .collect();
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM consent_state
             WHERE brand_code = $1 AND recipient_type = $2 AND consent_type = $3 AND recipient IN ({})",
            placeholders.join(",")
        );
        let mut q = sqlx::query(&sql)
            .bind(brand_code)
            .bind(recipient_type.as_str())
            .bind(consent_type.as_str());
        for r in recipients {
            q = q.bind(r.as_str());
        }
        q.fetch_all(&self.read)
            .await?
            .iter()
            .map(state_from_row)
            .collect()
    }

    async fn event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        let row = sqlx::query(EVENT_SELECT_BY_ID)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(stored_event_from_row).transpose()
    }

    async fn events_for_recipient(&self, recipient: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(EVENT_SELECT_BY_RECIPIENT)
            .bind(recipient)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(stored_event_from_row).collect()
    }

    async fn job_for_event(&self, event_id: i64) -> Result<Option<ReportJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM report_jobs WHERE event_id = $1");
        let row = sqlx::query(&sql)
            .bind(event_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn queue_summary(&self, nearest: i64) -> Result<QueueSummary, StoreError> {
        let by_state: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM report_jobs GROUP BY state ORDER BY state")
                .fetch_all(&self.read)
                .await?;
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM report_jobs WHERE state IN ('pending', 'leased', 'batched')
             ORDER BY deadline_at_ms, id LIMIT $1"
        );
        let rows: Vec<AnyRow> = sqlx::query(&sql)
            .bind(nearest)
            .fetch_all(&self.read)
            .await?;
        let oldest: Option<i64> = sqlx::query_scalar(
            // Ids grow with creation time, and (state, id) is indexed: no scan of the queue.
            "SELECT created_at_ms FROM report_jobs WHERE id = (SELECT MIN(id) FROM report_jobs
             WHERE state IN ('pending', 'leased', 'batched'))",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(QueueSummary {
            by_state,
            nearest: rows.iter().map(job_from_row).collect::<Result<_, _>>()?,
            oldest_open_created_at: oldest.map(from_ms),
        })
    }

    async fn quarantine(
        &self,
        item: &QuarantineItem,
        max_total_bytes: i64,
    ) -> Result<QuarantineKept, StoreError> {
        let mut tx = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO quarantine (received_at_ms, route, reason, content_type, ip, body, body_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(to_ms(item.received_at))
        .bind(item.route.as_str())
        .bind(item.reason.as_str())
        .bind(item.content_type.as_deref())
        .bind(item.ip.as_deref())
        .bind(item.body.clone())
        .bind(item.body.len() as i64)
        .fetch_one(&mut *tx)
        .await?;
        // Newest first, a running total: every row past the cap goes, oldest first by
        // construction. Only authenticated requests get here, so this stays rare.
        let dropped = sqlx::query(
            "DELETE FROM quarantine WHERE id IN (
                 SELECT id FROM (
                     SELECT id, SUM(body_bytes) OVER (ORDER BY id DESC) AS newer_bytes
                     FROM quarantine
                 ) kept WHERE newer_bytes > $1)",
        )
        .bind(max_total_bytes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(QuarantineKept { id, dropped })
    }

    async fn quarantine_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
            .fetch_one(&self.read)
            .await?)
    }

    async fn quarantine_bytes(&self) -> Result<i64, StoreError> {
        // SUM over BIGINT is NUMERIC on PostgreSQL: cast back so both backends return an integer.
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(body_bytes), 0) AS BIGINT) FROM quarantine",
        )
        .fetch_one(&self.read)
        .await?)
    }

    async fn expire_quarantine(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM quarantine WHERE received_at_ms < $1")
                .bind(to_ms(before))
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }

    async fn inbound_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages")
            .fetch_one(&self.read)
            .await?)
    }

    async fn mint_links(
        &self,
        links: &[super::NewLink],
        now: DateTime<Utc>,
    ) -> Result<Vec<super::Link>, StoreError> {
        self.mint_links_impl(links, now).await
    }

    async fn link_by_code_hash(&self, code_hash: &str) -> Result<Option<super::Link>, StoreError> {
        self.link_by_code_hash_impl(code_hash).await
    }
}

const EVENT_SELECT_BY_ID: &str =
    "SELECT id, brand_code, recipient, recipient_type, consent_type, status, source,
    channel, consent_at_ms, received_at_ms, provider, provider_message_id, evidence
    FROM consent_events WHERE id = $1";
const EVENT_SELECT_BY_RECIPIENT: &str =
    "SELECT id, brand_code, recipient, recipient_type, consent_type, status,
    source, channel, consent_at_ms, received_at_ms, provider, provider_message_id, evidence
    FROM consent_events WHERE recipient = $1 ORDER BY id";

/// A database URL without its password, for error messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// A pooled connection handed back while still inside a transaction is closed, not reused.
/// A caller cancelled in the middle of `BEGIN` (a worker stopped at an await, a request whose
/// client went away) can leave one in that state with no transaction object left to roll it
/// back; reused, it would turn every later `BEGIN` into a savepoint error. Closing it rolls
/// the open transaction back on the server.
pub(super) fn release_clean(
    conn: &mut sqlx::AnyConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    use sqlx::TransactionManager;
    let clean = sqlx::any::AnyTransactionManager::get_transaction_depth(conn) == 0;
    Box::pin(async move { Ok(clean) })
}
