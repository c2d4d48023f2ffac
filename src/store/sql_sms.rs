//! [`SmsStore`] over sqlx `Any`: the same SQL on SQLite and PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sms::{PollCursor, ReplyOutcome, ReplyState, SmsReply, SmsStore};
use super::{SqlStore, StoreError};
use crate::domain::time::{from_ms, to_ms};

const REPLY_COLUMNS: &str = "id, provider, provider_message_id, recipient, body, state, attempts, \
    due_at_ms, last_error, provider_ref";

fn reply_from_row(row: &AnyRow) -> Result<SmsReply, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(SmsReply {
        id: row.try_get("id")?,
        provider: row.try_get("provider")?,
        provider_message_id: row.try_get("provider_message_id")?,
        recipient: row.try_get("recipient")?,
        body: row.try_get("body")?,
        state: ReplyState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("sms reply state {state:?}")))?,
        attempts: row.try_get("attempts")?,
        due_at: from_ms(row.try_get("due_at_ms")?),
        last_error: row.try_get("last_error")?,
        provider_ref: row.try_get("provider_ref")?,
    })
}

#[async_trait]
impl SmsStore for SqlStore {
    async fn claim_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<PollCursor>, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sms_poll_cursors (provider, cursor, updated_at_ms) VALUES ($1, '', $2)
             ON CONFLICT (provider) DO NOTHING",
        )
        .bind(provider)
        .bind(to_ms(now))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
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
        row.map(|r| {
            Ok(PollCursor {
                cursor: r.try_get("cursor")?,
                last_ok_at: r.try_get::<Option<i64>, _>("last_ok_at_ms")?.map(from_ms),
                last_error: r.try_get("last_error")?,
            })
        })
        .transpose()
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
        .execute(&self.write)
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
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn known_provider_messages(
        &self,
        provider: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut known = Vec::new();
        // Bounded IN lists: a poll page is at most a few hundred ids.
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let list = marks.join(", ");
            let sql = format!(
                "SELECT provider_message_id FROM consent_events
                 WHERE provider = $1 AND provider_message_id IN ({list})
                 UNION
                 SELECT provider_message_id FROM inbound_messages
                 WHERE provider = $1 AND provider_message_id IN ({list})"
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql).bind(provider);
            for id in chunk {
                q = q.bind(id);
            }
            known.extend(q.fetch_all(&self.read).await?);
        }
        known.sort();
        known.dedup();
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
        .execute(&self.write)
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
        let mut tx = self.begin_write().await?;
        let lock = match self.backend {
            super::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            super::Backend::Sqlite => "",
        };
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM sms_replies
             WHERE (state = 'pending' AND due_at_ms <= $1)
                OR (state = 'leased' AND lease_until_ms < $1)
             ORDER BY due_at_ms, id LIMIT $2{lock}"
        ))
        .bind(to_ms(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(&format!(
                "UPDATE sms_replies SET state = 'leased', lease_owner = $2, lease_until_ms = $3,
                     attempts = attempts + 1, updated_at_ms = $4
                 WHERE id = $1 RETURNING {REPLY_COLUMNS}"
            ))
            .bind(id)
            .bind(owner)
            .bind(to_ms(lease_until))
            .bind(to_ms(now))
            .fetch_one(&mut *tx)
            .await?;
            out.push(reply_from_row(&row)?);
        }
        tx.commit().await?;
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
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn sms_reply_for(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SmsReply>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REPLY_COLUMNS} FROM sms_replies WHERE provider = $1 AND provider_message_id = $2"
        ))
        .bind(provider)
        .bind(provider_message_id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(reply_from_row).transpose()
    }
}
