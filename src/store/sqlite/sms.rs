//! [`SmsStore`] on SQLite: provider poll cursors and the outbox of free replies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};

use super::{SqliteStore, all, json_list, one};
use crate::domain::time::{from_ms, to_ms};
use crate::store::StoreError;
use crate::store::sms::{PollCursor, ReplyOutcome, ReplyState, SmsReply, SmsStore};

macro_rules! reply_columns {
    () => {
        "id, provider, provider_message_id, recipient, body, state, attempts, due_at_ms, \
         last_error, provider_ref"
    };
}

fn reply(row: &Row<'_>) -> rusqlite::Result<SmsReply> {
    let state: String = row.get(5)?;
    Ok(SmsReply {
        id: row.get(0)?,
        provider: row.get(1)?,
        provider_message_id: row.get(2)?,
        recipient: row.get(3)?,
        body: row.get(4)?,
        state: ReplyState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                5,
                rusqlite::types::Type::Text,
                format!("sms reply state {state:?}").into(),
            )
        })?,
        attempts: row.get(6)?,
        due_at: from_ms(row.get(7)?),
        last_error: row.get(8)?,
        provider_ref: row.get(9)?,
    })
}

#[async_trait]
impl SmsStore for SqliteStore {
    async fn claim_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<PollCursor>, StoreError> {
        let (provider, owner) = (provider.to_string(), owner.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO sms_poll_cursors (provider, cursor, updated_at_ms) VALUES (?1, '', ?2)
                 ON CONFLICT (provider) DO NOTHING",
            )?
            .execute(params![provider, to_ms(now)])?;
            one(
                c,
                "UPDATE sms_poll_cursors SET lease_owner = ?2, lease_until_ms = ?3
                 WHERE provider = ?1
                   AND (lease_owner IS NULL OR lease_owner = ?2 OR lease_until_ms IS NULL
                        OR lease_until_ms < ?4)
                 RETURNING cursor, last_ok_at_ms, last_error",
                params![provider, owner, to_ms(lease_until), to_ms(now)],
                |r| {
                    Ok(PollCursor {
                        cursor: r.get(0)?,
                        last_ok_at: r.get::<_, Option<i64>>(1)?.map(from_ms),
                        last_error: r.get(2)?,
                    })
                },
            )
        })
        .await
    }

    async fn save_sms_poll(
        &self,
        provider: &str,
        owner: &str,
        cursor: &str,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (provider, owner, cursor) =
            (provider.to_string(), owner.to_string(), cursor.to_string());
        let error = error.map(str::to_string);
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE sms_poll_cursors SET cursor = ?3, last_error = ?4, updated_at_ms = ?5,
                         last_ok_at_ms = CASE WHEN ?4 IS NULL THEN ?5 ELSE last_ok_at_ms END
                     WHERE provider = ?1 AND lease_owner = ?2",
                )?
                .execute(params![provider, owner, cursor, error, to_ms(now)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn release_sms_poll(&self, provider: &str, owner: &str) -> Result<(), StoreError> {
        let (provider, owner) = (provider.to_string(), owner.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE sms_poll_cursors SET lease_owner = NULL, lease_until_ms = NULL
                 WHERE provider = ?1 AND lease_owner = ?2",
            )?
            .execute(params![provider, owner])?;
            Ok(())
        })
        .await
    }

    async fn known_provider_messages(
        &self,
        provider: &str,
        ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let ids = json_list(ids)?;
        let provider = provider.to_string();
        let mut known: Vec<String> = self
            .read_blocking(move |c| {
                all(
                    c,
                    "SELECT provider_message_id FROM consent_events
                     WHERE provider = ?1 AND provider_message_id IN (SELECT value FROM json_each(?2))
                     UNION
                     SELECT provider_message_id FROM inbound_messages
                     WHERE provider = ?1 AND provider_message_id IN (SELECT value FROM json_each(?2))",
                    params![provider, ids],
                    |r| r.get(0),
                )
            })
            .await?;
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
        let values = [provider, provider_message_id, recipient, body].map(str::to_string);
        self.write(move |c| {
            let [provider, message_id, recipient, body] = &values;
            let n = c
                .prepare_cached(
                    "INSERT INTO sms_replies (provider, provider_message_id, recipient, body, state,
                         attempts, due_at_ms, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5)
                     ON CONFLICT (provider, provider_message_id) DO NOTHING",
                )?
                .execute(params![provider, message_id, recipient, body, to_ms(now)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn claim_sms_replies(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SmsReply>, StoreError> {
        let owner = owner.to_string();
        let mut out = self
            .write(move |c| {
                all(
                    c,
                    concat!(
                        "UPDATE sms_replies SET state = 'leased', lease_owner = ?3,
                             lease_until_ms = ?4, attempts = attempts + 1, updated_at_ms = ?1
                         WHERE id IN (SELECT id FROM sms_replies
                                      WHERE (state = 'pending' AND due_at_ms <= ?1)
                                         OR (state = 'leased' AND lease_until_ms < ?1)
                                      ORDER BY due_at_ms, id LIMIT ?2)
                         RETURNING ",
                        reply_columns!()
                    ),
                    params![to_ms(now), limit, owner, to_ms(lease_until)],
                    reply,
                )
            })
            .await?;
        // RETURNING has no defined order; the oldest due goes first.
        out.sort_by_key(|r| r.id);
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
        let (error, reference) = (error.map(str::to_string), reference.map(str::to_string));
        let owner = owner.to_string();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE sms_replies SET state = ?3, due_at_ms = COALESCE(?4, due_at_ms),
                         last_error = COALESCE(?5, last_error), provider_ref = ?6,
                         lease_owner = NULL, lease_until_ms = NULL, updated_at_ms = ?7
                     WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
                )?
                .execute(params![
                    id,
                    owner,
                    state.as_str(),
                    due,
                    error,
                    reference,
                    to_ms(now)
                ])?;
            Ok(n == 1)
        })
        .await
    }

    async fn sms_reply_for(
        &self,
        provider: &str,
        provider_message_id: &str,
    ) -> Result<Option<SmsReply>, StoreError> {
        self.read(|c| {
            one(
                c,
                concat!(
                    "SELECT ",
                    reply_columns!(),
                    " FROM sms_replies WHERE provider = ?1 AND provider_message_id = ?2"
                ),
                params![provider, provider_message_id],
                reply,
            )
        })
    }
}
