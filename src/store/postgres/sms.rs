//! [`SmsStore`] on PostgreSQL: poll cursors with their leader lease, known provider message ids,
//! and the reply outbox (claimed with `FOR UPDATE SKIP LOCKED`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PgStore;
use super::rows::{PollCursorRow, ReplyRow, convert, reply_columns};
use crate::domain::time::to_ms;
use crate::store::StoreError;
use crate::store::sms::{PollCursor, ReplyOutcome, SmsReply, SmsStore};

const CLAIM_REPLIES: &str = concat!(
    "UPDATE sms_replies SET state = 'leased', lease_owner = $2, lease_until_ms = $3,
         attempts = attempts + 1, updated_at_ms = $1
     WHERE id IN (SELECT id FROM sms_replies
                  WHERE (state = 'pending' AND due_at_ms <= $1)
                     OR (state = 'leased' AND lease_until_ms < $1)
                  ORDER BY due_at_ms, id LIMIT $4 FOR UPDATE SKIP LOCKED)
     RETURNING ",
    reply_columns!()
);
const REPLY_FOR: &str = concat!(
    "SELECT ",
    reply_columns!(),
    " FROM sms_replies WHERE provider = $1 AND provider_message_id = $2"
);

#[async_trait]
impl SmsStore for PgStore {
    async fn claim_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<PollCursor>, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO sms_poll_cursors (provider, cursor, updated_at_ms) VALUES ($1, '', $2)
             ON CONFLICT (provider) DO NOTHING",
        )
        .bind(provider)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let row: Option<PollCursorRow> = sqlx::query_as(
            "UPDATE sms_poll_cursors SET lease_owner = $2, lease_until_ms = $3
             WHERE provider = $1
               AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until_ms IS NULL
                    OR lease_until_ms < $4)
             RETURNING cursor, last_ok_at_ms, last_error",
        )
        .bind(provider)
        .bind(owner)
        .bind(to_ms(lease_until))
        .bind(to_ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row.map(PollCursor::from))
    }

    async fn save_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        cursor: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE sms_poll_cursors SET cursor = $3, last_error = $4, updated_at_ms = $5,
                 last_ok_at_ms = CASE WHEN $4 IS NULL THEN $5 ELSE last_ok_at_ms END
             WHERE provider = $1 AND lease_owner = $2",
        )
        .bind(provider)
        .bind(owner)
        .bind(cursor)
        .bind(error)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn release_sms_poll(&self, provider: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sms_poll_cursors SET lease_owner = NULL, lease_until_ms = NULL
             WHERE provider = $1 AND lease_owner = $2",
        )
        .bind(provider)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn known_provider_messages(
        &self,
        provider: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut known: Vec<String> = sqlx::query_scalar(
            "SELECT provider_message_id FROM consent_events
             WHERE provider = $1 AND provider_message_id = ANY($2)
             UNION
             SELECT provider_message_id FROM inbound_messages
             WHERE provider = $1 AND provider_message_id = ANY($2)",
        )
        .bind(provider)
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        known.sort();
        Ok(known)
    }

    async fn enqueue_sms_reply(
        &self,
        provider: &str,
        provider_message_id: &str,
        recipient: &str,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "INSERT INTO sms_replies (provider, provider_message_id, recipient, body, state,
                 attempts, due_at_ms, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5)
             ON CONFLICT (provider, provider_message_id) DO NOTHING",
        )
        .bind(provider)
        .bind(provider_message_id)
        .bind(recipient)
        .bind(body)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn claim_sms_replies(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SmsReply>, StoreError> {
        let rows: Vec<ReplyRow> = sqlx::query_as(CLAIM_REPLIES)
            .bind(to_ms(now))
            .bind(owner)
            .bind(to_ms(lease_until))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<SmsReply> = convert(rows)?;
        // RETURNING has no defined order; the claim's is oldest first.
        out.sort_by_key(|r| (r.due_at, r.id));
        Ok(out)
    }

    async fn finish_sms_reply(
        &self,
        id: i64,
        owner: &str,
        outcome: &ReplyOutcome,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (state, due, error, reference) = outcome.columns();
        let n = sqlx::query(
            "UPDATE sms_replies SET state = $3, due_at_ms = COALESCE($4, due_at_ms),
                 last_error = COALESCE($5, last_error), provider_ref = $6,
                 lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = $7
             WHERE id = $1 AND state = 'leased' AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .bind(state.as_str())
        .bind(due)
        .bind(error)
        .bind(reference)
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn sms_reply_for(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SmsReply>, StoreError> {
        sqlx::query_as::<_, ReplyRow>(REPLY_FOR)
            .bind(provider)
            .bind(provider_message_id)
            .fetch_optional(&self.pool)
            .await?
            .map(SmsReply::try_from)
            .transpose()
    }
}
