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
    AddressKey, Backend, ConsentState, InboundMessage, NewEvent, QuarantineItem, QueueSummary,
    Readiness, RecordOutcome, ReportJob, StoreError, StoredEvent, postgres, sqlite,
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
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            postgres::connect(url, max_connections).await
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
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

    async fn record_one(
        tx: &mut Transaction<'static, Any>,
        item: &NewEvent,
        now: DateTime<Utc>,
    ) -> Result<RecordOutcome, StoreError> {
        let i = &item.intent;
        let evidence =
            serde_json::to_string(&i.evidence).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO consent_events (brand_code, recipient, recipient_type, consent_type, status, source,
                 channel, consent_at_ms, received_at_ms, provider, provider_message_id, evidence, ip,
                 user_agent, call_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
             ON CONFLICT (provider, provider_message_id) DO NOTHING
             RETURNING id",
        )
        .bind(i.brand_code)
        .bind(i.recipient.as_str())
        .bind(i.recipient_type.as_str())
        .bind(i.consent_type.as_str())
        .bind(i.status.as_str())
        .bind(i.source.as_str())
        .bind(i.channel.as_str())
        .bind(to_ms(i.consent_at))
        .bind(to_ms(item.received_at))
        .bind(i.provider.as_str())
        .bind(i.provider_message_id.as_str())
        .bind(evidence)
        .bind(i.evidence.ip.as_deref())
        .bind(i.evidence.user_agent.as_deref())
        .bind(i.evidence.call_id.as_deref())
        .fetch_optional(&mut **tx)
        .await?;

        let Some(event_id) = inserted else {
            // Already recorded (a webhook retry): report the original, change nothing.
            let event_id: i64 = sqlx::query_scalar(
                "SELECT id FROM consent_events WHERE provider = $1 AND provider_message_id = $2",
            )
            .bind(i.provider.as_str())
            .bind(i.provider_message_id.as_str())
            .fetch_one(&mut **tx)
            .await?;
            let job: Option<(i64, i64)> =
                sqlx::query_as("SELECT id, deadline_at_ms FROM report_jobs WHERE event_id = $1")
                    .bind(event_id)
                    .fetch_optional(&mut **tx)
                    .await?;
            return Ok(RecordOutcome {
                event_id,
                duplicate: true,
                job_id: job.map(|j| j.0),
                deadline_at: job.map(|j| from_ms(j.1)),
            });
        };

        // Newest consent date wins; on a tie the later event does.
        sqlx::query(
            "INSERT INTO consent_state (brand_code, recipient, recipient_type, consent_type, status, source,
                 channel, consent_at_ms, event_id, iys_confirmed, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (brand_code, recipient, recipient_type, consent_type) DO UPDATE SET
                 status = excluded.status, source = excluded.source, channel = excluded.channel,
                 consent_at_ms = excluded.consent_at_ms, event_id = excluded.event_id,
                 iys_confirmed = excluded.iys_confirmed, updated_at_ms = excluded.updated_at_ms
             WHERE excluded.consent_at_ms > consent_state.consent_at_ms
                OR (excluded.consent_at_ms = consent_state.consent_at_ms AND excluded.event_id > consent_state.event_id)",
        )
        .bind(i.brand_code)
        .bind(i.recipient.as_str())
        .bind(i.recipient_type.as_str())
        .bind(i.consent_type.as_str())
        .bind(i.status.as_str())
        .bind(i.source.as_str())
        .bind(i.channel.as_str())
        .bind(to_ms(i.consent_at))
        .bind(event_id)
        .bind(i64::from(i.source.is_iys()))
        .bind(to_ms(now))
        .execute(&mut **tx)
        .await?;

        let mut outcome = RecordOutcome {
            event_id,
            duplicate: false,
            job_id: None,
            deadline_at: None,
        };
        if let Some(times) = item.report {
            let job_id: i64 = sqlx::query_scalar(
                "INSERT INTO report_jobs (event_id, brand_code, recipient, recipient_type, consent_type,
                     consent_at_ms, state, due_at_ms, target_at_ms, deadline_at_ms, created_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9, $10, $10)
                 RETURNING id",
            )
            .bind(event_id)
            .bind(i.brand_code)
            .bind(i.recipient.as_str())
            .bind(i.recipient_type.as_str())
            .bind(i.consent_type.as_str())
            .bind(to_ms(i.consent_at))
            .bind(to_ms(times.due_at))
            .bind(to_ms(times.target_at))
            .bind(to_ms(times.deadline_at))
            .bind(to_ms(now))
            .fetch_one(&mut **tx)
            .await?;
            outcome.job_id = Some(job_id);
            outcome.deadline_at = Some(times.deadline_at);
        }
        Ok(outcome)
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

    async fn record_batch(
        &self,
        items: &[NewEvent],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            outcomes.push(Self::record_one(&mut tx, item, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
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
            "SELECT MIN(created_at_ms) FROM report_jobs WHERE state IN ('pending', 'leased', 'batched')",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(QueueSummary {
            by_state,
            nearest: rows.iter().map(job_from_row).collect::<Result<_, _>>()?,
            oldest_open_created_at: oldest.map(from_ms),
        })
    }

    async fn quarantine(&self, item: &QuarantineItem) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO quarantine (received_at_ms, route, reason, content_type, ip, body)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(to_ms(item.received_at))
        .bind(item.route.as_str())
        .bind(item.reason.as_str())
        .bind(item.content_type.as_deref())
        .bind(item.ip.as_deref())
        .bind(item.body.clone())
        .fetch_one(&self.write)
        .await?;
        Ok(id)
    }

    async fn quarantine_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
            .fetch_one(&self.read)
            .await?)
    }

    async fn keep_inbound(&self, msg: &InboundMessage) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO inbound_messages (provider, provider_message_id, received_at_ms, sender, receiver, intent, raw)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (provider, provider_message_id) DO NOTHING",
        )
        .bind(msg.provider.as_str())
        .bind(msg.provider_message_id.as_str())
        .bind(to_ms(msg.received_at))
        .bind(msg.sender.as_str())
        .bind(msg.receiver.as_str())
        .bind(msg.intent.as_str())
        .bind(msg.raw.to_string())
        .execute(&self.write)
        .await?;
        Ok(())
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
