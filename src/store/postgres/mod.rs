//! [`PgStore`]: the store on PostgreSQL, over sqlx's native driver. Any number of replicas may
//! share one database: claims serialise on one advisory lock and skip rows other replicas lock.
//!
//! Many keys travel as arrays (`= ANY($1)`, `UNNEST(...)`), so every step is one statement
//! whatever its size, and every statement is a static text that sqlx prepares once per
//! connection.

mod audit;
mod commit_plan;
mod console;
mod links;
mod ops;
mod queue;
mod record;
mod rows;
mod sms;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};

use self::rows::{EventRow, JobRow, StateRow, convert, event_columns, job_columns, state_columns};
use super::{
    Backend, ConsentState, InboundMessage, Link, NewEvent, NewLink, QuarantineItem, QuarantineKept,
    QueueSummary, Readiness, RecordOutcome, ReportJob, StoreError, StoredEvent,
};
use crate::domain::Address;
use crate::domain::time::{from_ms, to_ms};
use crate::domain::{ConsentType, RecipientType};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Whether `url` names a PostgreSQL database.
pub(super) fn accepts(url: &str) -> bool {
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// Prepared statements kept per connection: every statement of the store fits, so the hot ones
/// (the group commit, the claim) are never evicted by rare ones and re-parsed.
const STATEMENT_CACHE: usize = 256;

pub struct PgStore {
    pool: PgPool,
}

type Tx = Transaction<'static, Postgres>;

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .after_release(release_clean)
            .connect_with(options.statement_cache_capacity(STATEMENT_CACHE))
            .await?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

/// A pooled connection handed back while still inside a transaction is closed, not reused.
/// A caller cancelled in the middle of `BEGIN` (a worker stopped at an await, a request whose
/// client went away) can leave one in that state with no transaction object left to roll it
/// back; reused, it would turn every later `BEGIN` into a savepoint error. Closing it rolls
/// the open transaction back on the server.
fn release_clean(
    conn: &mut sqlx::PgConnection,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    use sqlx::TransactionManager;
    let clean = sqlx::postgres::PgTransactionManager::get_transaction_depth(conn) == 0;
    Box::pin(async move { Ok(clean) })
}

const STATE_BY_KEY: &str = concat!(
    "SELECT ",
    state_columns!(),
    " FROM consent_state
     WHERE brand_code = $1 AND recipient = $2 AND recipient_type = $3 AND consent_type = $4"
);
const STATES_BY_RECIPIENTS: &str = concat!(
    "SELECT ",
    state_columns!(),
    " FROM consent_state
     WHERE brand_code = $1 AND recipient_type = $2 AND consent_type = $3 AND recipient = ANY($4)"
);
const EVENT_BY_ID: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM consent_events WHERE id = $1"
);
const EVENTS_BY_RECIPIENT: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM consent_events WHERE recipient = $1 ORDER BY id"
);
const JOB_BY_EVENT: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM report_jobs WHERE event_id = $1"
);
/// One index scan per open state, merged: `state IN (…) ORDER BY deadline` would sort every
/// open job, and a queue may hold millions.
const NEAREST_OPEN_JOBS: &str = concat!(
    "SELECT * FROM (
         (SELECT ",
    job_columns!(),
    " FROM report_jobs WHERE state = 'pending'
          ORDER BY deadline_at_ms, id LIMIT $1)
         UNION ALL
         (SELECT ",
    job_columns!(),
    " FROM report_jobs WHERE state = 'leased'
          ORDER BY deadline_at_ms, id LIMIT $1)
         UNION ALL
         (SELECT ",
    job_columns!(),
    " FROM report_jobs WHERE state = 'batched'
          ORDER BY deadline_at_ms, id LIMIT $1)
     ) open ORDER BY deadline_at_ms, id LIMIT $1"
);

#[async_trait]
impl super::Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn readiness(&self) -> Result<Readiness, StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        // A missing migrations table just means nothing is applied yet.
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = true")
                .fetch_one(&self.pool)
                .await
                .unwrap_or(0);
        Ok(Readiness {
            backend: Backend::Postgres,
            applied_migrations: applied,
            expected_migrations: MIGRATOR.iter().count() as i64,
        })
    }

    async fn write_batch(
        &self,
        events: &[NewEvent],
        inbound: &[InboundMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let mut tx = self.begin().await?;
        let outcomes = record::record_events(&mut tx, events, now).await?;
        record::keep_inbound(&mut tx, inbound).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn consent_state(&self, key: &Address) -> Result<Option<ConsentState>, StoreError> {
        sqlx::query_as::<_, StateRow>(STATE_BY_KEY)
            .bind(key.brand_code)
            .bind(key.recipient.as_str())
            .bind(key.recipient_type.as_str())
            .bind(key.consent_type.as_str())
            .fetch_optional(&self.pool)
            .await?
            .map(ConsentState::try_from)
            .transpose()
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
        convert(
            sqlx::query_as::<_, StateRow>(STATES_BY_RECIPIENTS)
                .bind(brand_code)
                .bind(recipient_type.as_str())
                .bind(consent_type.as_str())
                .bind(recipients)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn event(&self, id: i64) -> Result<Option<StoredEvent>, StoreError> {
        sqlx::query_as::<_, EventRow>(EVENT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(StoredEvent::try_from)
            .transpose()
    }

    async fn events_for_recipient(&self, recipient: &str) -> Result<Vec<StoredEvent>, StoreError> {
        convert(
            sqlx::query_as::<_, EventRow>(EVENTS_BY_RECIPIENT)
                .bind(recipient)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn job_for_event(&self, event_id: i64) -> Result<Option<ReportJob>, StoreError> {
        sqlx::query_as::<_, JobRow>(JOB_BY_EVENT)
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?
            .map(ReportJob::try_from)
            .transpose()
    }

    async fn queue_summary(&self, nearest: i64) -> Result<QueueSummary, StoreError> {
        let by_state: Vec<(String, i64)> =
            // Kept by triggers in every transaction that changes a job, in a few shards per
            // state: at most 128 rows, not a count of the queue.
            sqlx::query_as(
                "SELECT state, SUM(jobs)::BIGINT FROM report_job_counts GROUP BY state
                 HAVING SUM(jobs) > 0 ORDER BY state",
            )
                .fetch_all(&self.pool)
                .await?;
        let rows: Vec<JobRow> = sqlx::query_as(NEAREST_OPEN_JOBS)
            .bind(nearest)
            .fetch_all(&self.pool)
            .await?;
        let oldest: Option<i64> = sqlx::query_scalar(
            // Ids grow with creation time, and (state, id) is indexed: three index probes.
            "SELECT created_at_ms FROM report_jobs WHERE id = LEAST(
                 (SELECT MIN(id) FROM report_jobs WHERE state = 'pending'),
                 (SELECT MIN(id) FROM report_jobs WHERE state = 'leased'),
                 (SELECT MIN(id) FROM report_jobs WHERE state = 'batched'))",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(QueueSummary {
            by_state,
            nearest: convert(rows)?,
            oldest_open_created_at: oldest.map(from_ms),
        })
    }

    async fn quarantine(
        &self,
        item: &QuarantineItem,
        max_total_bytes: i64,
    ) -> Result<QuarantineKept, StoreError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO quarantine (received_at_ms, route, reason, content_type, ip, body, body_bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(to_ms(item.received_at))
        .bind(item.route.as_str())
        .bind(item.reason.as_str())
        .bind(item.content_type.as_deref())
        .bind(item.ip.as_deref())
        .bind(item.body.as_slice())
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
            .fetch_one(&self.pool)
            .await?)
    }

    async fn quarantine_bytes(&self) -> Result<i64, StoreError> {
        // SUM over BIGINT is NUMERIC: cast back to an integer.
        Ok(
            sqlx::query_scalar("SELECT COALESCE(SUM(body_bytes), 0)::BIGINT FROM quarantine")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn expire_quarantine(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM quarantine WHERE received_at_ms < $1")
                .bind(to_ms(before))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn inbound_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM inbound_messages")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn mint_links(
        &self,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<Vec<Link>, StoreError> {
        let mut tx = self.begin().await?;
        let out = links::mint(&mut tx, links, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn link_by_code_hash(&self, code_hash: &str) -> Result<Option<Link>, StoreError> {
        links::by_code_hash(&self.pool, code_hash).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_both_postgres_schemes_only() {
        assert!(super::accepts("postgres://u@h/db"));
        assert!(super::accepts("postgresql://u@h/db"));
        assert!(!super::accepts("sqlite://data/x.db"));
        assert!(!super::accepts("mysql://h/db"));
    }
}
