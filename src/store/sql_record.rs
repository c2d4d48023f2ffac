//! The ledger's write path, set-based: one transaction and a handful of multi-row statements per
//! group commit, whatever its size. Each statement is a round trip to the database (for SQLite a
//! hop to sqlx's worker thread), so statements per batch, not per event, is what keeps the
//! commit cheap when many webhooks share it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Row, Transaction};

use super::{Backend, InboundMessage, NewEvent, RecordOutcome, SqlStore, StoreError};
use crate::domain::Channel;
use crate::domain::time::{from_ms, to_ms};

/// Rows per statement: 15 parameters a row stays far below SQLite's 32 766 and PostgreSQL's
/// 65 535 bind parameters.
const CHUNK: usize = 400;

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `cols` parameters; plain `?` on SQLite,
/// where looking up a numbered parameter's name is a linear scan per parameter (quadratic in
/// the size of a multi-row statement).
fn values(b: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            match b {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(r * cols + c + 1).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

fn bind<'q, T>(args: &mut AnyArguments<'q>, v: T) -> Result<(), StoreError>
where
    T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
{
    args.add(v)
        .map_err(|e| StoreError::Corrupt(format!("bind: {e}")))
}

use super::commit_plan::{self, MessageKey as Key};

impl SqlStore {
    pub(super) async fn write_batch_impl(
        &self,
        events: &[NewEvent],
        inbound: &[InboundMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<RecordOutcome>, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcomes = record_events(self.backend, &mut tx, events, now).await?;
        for chunk in inbound.chunks(CHUNK) {
            keep_inbound(self.backend, &mut tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

async fn record_events(
    b: Backend,
    tx: &mut Transaction<'static, Any>,
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<Vec<RecordOutcome>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // 1. Insert the events; a conflict on (provider, provider_message_id) inserts nothing.
    let mut fresh: HashMap<Key, i64> = HashMap::new();
    for chunk in events.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO consent_events (brand_code, recipient, recipient_type, consent_type, status, source,
                 channel, consent_at_ms, received_at_ms, provider, provider_message_id, evidence, ip,
                 user_agent, call_id)
             VALUES {} ON CONFLICT (provider, provider_message_id) DO NOTHING
             RETURNING id, provider, provider_message_id",
            values(b, chunk.len(), 15)
        );
        let mut args = AnyArguments::default();
        for e in chunk {
            let i = &e.intent;
            let evidence = serde_json::to_string(&i.evidence)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            bind(&mut args, i.brand_code)?;
            bind(&mut args, i.recipient.as_str().to_string())?;
            bind(&mut args, i.recipient_type.as_str())?;
            bind(&mut args, i.consent_type.as_str())?;
            bind(&mut args, i.status.as_str())?;
            bind(&mut args, i.source.as_str())?;
            bind(&mut args, i.channel.as_str())?;
            bind(&mut args, to_ms(i.consent_at))?;
            bind(&mut args, to_ms(e.received_at))?;
            bind(&mut args, i.provider.clone())?;
            bind(&mut args, i.provider_message_id.clone())?;
            bind(&mut args, evidence)?;
            bind(&mut args, i.evidence.ip.clone())?;
            bind(&mut args, i.evidence.user_agent.clone())?;
            bind(&mut args, i.evidence.call_id.clone())?;
        }
        for row in sqlx::query_with(&sql, args).fetch_all(&mut **tx).await? {
            fresh.insert(
                (
                    row.try_get("provider")?,
                    row.try_get("provider_message_id")?,
                ),
                row.try_get("id")?,
            );
        }
    }

    // 2. The originals of duplicates (webhook retries), with their jobs: reported, not changed.
    let dup_keys = commit_plan::duplicate_keys(events, &fresh);
    let mut original: HashMap<Key, commit_plan::Original> = HashMap::new();
    for chunk in dup_keys.chunks(CHUNK) {
        let sql = format!(
            "SELECT e.id, e.provider, e.provider_message_id, j.id AS job_id, j.deadline_at_ms
             FROM consent_events e LEFT JOIN report_jobs j ON j.event_id = e.id
             WHERE (e.provider, e.provider_message_id) IN (VALUES {})",
            values(b, chunk.len(), 2)
        );
        let mut args = AnyArguments::default();
        for (p, m) in chunk {
            bind(&mut args, p.clone())?;
            bind(&mut args, m.clone())?;
        }
        for row in sqlx::query_with(&sql, args).fetch_all(&mut **tx).await? {
            let job = match (
                row.try_get::<Option<i64>, _>("job_id")?,
                row.try_get::<Option<i64>, _>("deadline_at_ms")?,
            ) {
                (Some(j), Some(d)) => Some((j, from_ms(d))),
                _ => None,
            };
            original.insert(
                (
                    row.try_get("provider")?,
                    row.try_get("provider_message_id")?,
                ),
                (row.try_get("id")?, job),
            );
        }
    }

    let (mut outcomes, new_events) = commit_plan::outcomes(events, &fresh, &original)?;
    upsert_states(b, tx, &commit_plan::state_winners(&new_events), now).await?;
    let jobs = insert_jobs(b, tx, &new_events, now).await?;
    commit_plan::fill_jobs(&mut outcomes, &jobs);
    Ok(outcomes)
}

/// Newest consent date wins; on a tie the later event (`rows` holds each address's winner).
async fn upsert_states(
    b: Backend,
    tx: &mut Transaction<'static, Any>,
    rows: &[(&NewEvent, i64)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO consent_state (brand_code, recipient, recipient_type, consent_type, status, source,
                 channel, consent_at_ms, event_id, iys_confirmed, updated_at_ms)
             VALUES {}
             ON CONFLICT (brand_code, recipient, recipient_type, consent_type) DO UPDATE SET
                 status = excluded.status, source = excluded.source, channel = excluded.channel,
                 consent_at_ms = excluded.consent_at_ms, event_id = excluded.event_id,
                 iys_confirmed = excluded.iys_confirmed, updated_at_ms = excluded.updated_at_ms
             WHERE excluded.consent_at_ms > consent_state.consent_at_ms
                OR (excluded.consent_at_ms = consent_state.consent_at_ms AND excluded.event_id > consent_state.event_id)",
            values(b, chunk.len(), 11)
        );
        let mut args = AnyArguments::default();
        for &(e, id) in chunk {
            let i = &e.intent;
            bind(&mut args, i.brand_code)?;
            bind(&mut args, i.recipient.as_str().to_string())?;
            bind(&mut args, i.recipient_type.as_str())?;
            bind(&mut args, i.consent_type.as_str())?;
            bind(&mut args, i.status.as_str())?;
            bind(&mut args, i.source.as_str())?;
            bind(&mut args, i.channel.as_str())?;
            bind(&mut args, to_ms(i.consent_at))?;
            bind(&mut args, id)?;
            // Citizens' own changes, and records read from İYS, are what İYS already holds.
            bind(
                &mut args,
                i64::from(i.source.is_iys() || i.channel == Channel::Iys),
            )?;
            bind(&mut args, to_ms(now))?;
        }
        sqlx::query_with(&sql, args).execute(&mut **tx).await?;
    }
    Ok(())
}

/// One report job per new reportable event; returns event id → (job id, deadline).
async fn insert_jobs(
    b: Backend,
    tx: &mut Transaction<'static, Any>,
    new_events: &[(&NewEvent, i64)],
    now: DateTime<Utc>,
) -> Result<HashMap<i64, (i64, DateTime<Utc>)>, StoreError> {
    let reportable: Vec<_> = new_events
        .iter()
        .filter_map(|&(e, id)| e.report.map(|t| (e, id, t)))
        .collect();
    let mut out = HashMap::with_capacity(reportable.len());
    for chunk in reportable.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO report_jobs (event_id, brand_code, recipient, recipient_type, consent_type,
                 consent_at_ms, state, due_at_ms, target_at_ms, deadline_at_ms, created_at_ms, updated_at_ms)
             VALUES {} RETURNING id, event_id, deadline_at_ms",
            values(b, chunk.len(), 12)
        );
        let mut args = AnyArguments::default();
        for &(e, id, t) in chunk {
            let i = &e.intent;
            bind(&mut args, id)?;
            bind(&mut args, i.brand_code)?;
            bind(&mut args, i.recipient.as_str().to_string())?;
            bind(&mut args, i.recipient_type.as_str())?;
            bind(&mut args, i.consent_type.as_str())?;
            bind(&mut args, to_ms(i.consent_at))?;
            bind(&mut args, "pending")?;
            bind(&mut args, to_ms(t.due_at))?;
            bind(&mut args, to_ms(t.target_at))?;
            bind(&mut args, to_ms(t.deadline_at))?;
            bind(&mut args, to_ms(now))?;
            bind(&mut args, to_ms(now))?;
        }
        for row in sqlx::query_with(&sql, args).fetch_all(&mut **tx).await? {
            out.insert(
                row.try_get("event_id")?,
                (row.try_get("id")?, from_ms(row.try_get("deadline_at_ms")?)),
            );
        }
    }
    Ok(out)
}

async fn keep_inbound(
    b: Backend,
    tx: &mut Transaction<'static, Any>,
    msgs: &[InboundMessage],
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO inbound_messages (provider, provider_message_id, received_at_ms, sender, receiver, intent, raw)
         VALUES {} ON CONFLICT (provider, provider_message_id) DO NOTHING",
        values(b, msgs.len(), 7)
    );
    let mut args = AnyArguments::default();
    for m in msgs {
        bind(&mut args, m.provider.clone())?;
        bind(&mut args, m.provider_message_id.clone())?;
        bind(&mut args, to_ms(m.received_at))?;
        bind(&mut args, m.sender.clone())?;
        bind(&mut args, m.receiver.clone())?;
        bind(&mut args, m.intent.clone())?;
        bind(&mut args, m.raw.to_string())?;
    }
    sqlx::query_with(&sql, args).execute(&mut **tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_numbers_parameters_row_by_row() {
        use super::Backend;
        assert_eq!(
            super::values(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(super::values(Backend::Postgres, 1, 1), "($1)");
        assert_eq!(super::values(Backend::Sqlite, 2, 2), "(?, ?), (?, ?)");
    }
}
