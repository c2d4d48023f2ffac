//! The ledger's write path (the group commit): events, current states, report jobs and kept
//! inbound messages, each written by one statement over arrays (`UNNEST`) whatever the batch
//! size, so a commit costs the same handful of round trips for one webhook or hundreds.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::{Arguments, FromRow};

use super::Tx;
use super::commit_plan::{self, MessageKey};
use crate::domain::time::{from_ms, to_ms};
use crate::domain::{Channel, ConsentIntent};
use crate::store::{InboundMessage, NewEvent, RecordOutcome, StoreError};

const INSERT_EVENTS: &str = "INSERT INTO consent_events (brand_code, recipient, recipient_type,
         consent_type, consent_at_ms, status, source, channel, received_at_ms, provider,
         provider_message_id, evidence, ip, user_agent, call_id)
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
         $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[],
         $13::text[], $14::text[], $15::text[])
     ON CONFLICT (provider, provider_message_id) DO NOTHING
     RETURNING id, provider, provider_message_id";

const ORIGINALS: &str = "SELECT e.id, e.provider, e.provider_message_id, j.id AS job_id,
         j.deadline_at_ms
     FROM UNNEST($1::text[], $2::text[]) AS k(provider, provider_message_id)
     JOIN consent_events e
       ON e.provider = k.provider AND e.provider_message_id = k.provider_message_id
     LEFT JOIN report_jobs j ON j.event_id = e.id";

/// Newest consent date wins; on a tie the later event.
const UPSERT_STATES: &str = "INSERT INTO consent_state (brand_code, recipient, recipient_type,
         consent_type, consent_at_ms, status, source, channel, event_id, iys_confirmed,
         updated_at_ms)
     SELECT u.*, $11 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
         $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[]) AS u
     ON CONFLICT (brand_code, recipient, recipient_type, consent_type) DO UPDATE SET
         status = excluded.status, source = excluded.source, channel = excluded.channel,
         consent_at_ms = excluded.consent_at_ms, event_id = excluded.event_id,
         iys_confirmed = excluded.iys_confirmed, updated_at_ms = excluded.updated_at_ms
     WHERE excluded.consent_at_ms > consent_state.consent_at_ms
        OR (excluded.consent_at_ms = consent_state.consent_at_ms
            AND excluded.event_id > consent_state.event_id)";

const INSERT_JOBS: &str = "INSERT INTO report_jobs (event_id, brand_code, recipient,
         recipient_type, consent_type, consent_at_ms, state, due_at_ms, target_at_ms,
         deadline_at_ms, created_at_ms, updated_at_ms)
     SELECT u.event_id, u.brand_code, u.recipient, u.recipient_type, u.consent_type,
         u.consent_at_ms, 'pending', u.due_at_ms, u.target_at_ms, u.deadline_at_ms, $10, $10
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],
         $7::bigint[], $8::bigint[], $9::bigint[])
         AS u(brand_code, recipient, recipient_type, consent_type, consent_at_ms, event_id,
              due_at_ms, target_at_ms, deadline_at_ms)
     RETURNING id, event_id, deadline_at_ms";

const INSERT_INBOUND: &str = "INSERT INTO inbound_messages (provider, provider_message_id,
         received_at_ms, sender, receiver, intent, raw)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
         $6::text[], $7::text[])
     ON CONFLICT (provider, provider_message_id) DO NOTHING";

#[derive(FromRow)]
struct InsertedEvent {
    id: i64,
    provider: String,
    provider_message_id: String,
}

#[derive(FromRow)]
struct Original {
    id: i64,
    provider: String,
    provider_message_id: String,
    job_id: Option<i64>,
    deadline_at_ms: Option<i64>,
}

#[derive(FromRow)]
struct InsertedJob {
    id: i64,
    event_id: i64,
    deadline_at_ms: i64,
}

/// The columns every intent-derived row starts with, as arrays: brand, recipient, recipient
/// type, type and consent time (`$1`–`$5`), then the movement's word, source and channel
/// (`$6`–`$8`) where the table keeps them.
#[derive(Default)]
struct IntentColumns<'a> {
    brand_code: Vec<i64>,
    recipient: Vec<&'a str>,
    recipient_type: Vec<&'static str>,
    consent_type: Vec<&'static str>,
    consent_at: Vec<i64>,
    status: Vec<&'static str>,
    source: Vec<&'static str>,
    channel: Vec<&'static str>,
}

impl<'a> IntentColumns<'a> {
    fn push(&mut self, i: &'a ConsentIntent) {
        self.brand_code.push(i.brand_code);
        self.recipient.push(i.recipient.as_str());
        self.recipient_type.push(i.recipient_type.as_str());
        self.consent_type.push(i.consent_type.as_str());
        self.consent_at.push(to_ms(i.consent_at));
        self.status.push(i.status.as_str());
        self.source.push(i.source.as_str());
        self.channel.push(i.channel.as_str());
    }

    /// Binds `$1`–`$5`, and `$6`–`$8` when `movement`.
    fn args(self, movement: bool) -> Result<PgArguments, StoreError> {
        let mut args = PgArguments::default();
        add(&mut args, self.brand_code)?;
        add(&mut args, self.recipient)?;
        add(&mut args, self.recipient_type)?;
        add(&mut args, self.consent_type)?;
        add(&mut args, self.consent_at)?;
        if movement {
            add(&mut args, self.status)?;
            add(&mut args, self.source)?;
            add(&mut args, self.channel)?;
        }
        Ok(args)
    }
}

fn add<'q, T>(args: &mut PgArguments, v: T) -> Result<(), StoreError>
where
    T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    args.add(v)
        .map_err(|e| StoreError::Corrupt(format!("bind: {e}")))
}

pub(super) async fn record_events(
    tx: &mut Tx,
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<Vec<RecordOutcome>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // 1. Insert the events; a conflict on (provider, provider_message_id) inserts nothing.
    let fresh: HashMap<MessageKey, i64> = insert_events(tx, events)
        .await?
        .into_iter()
        .map(|r| ((r.provider, r.provider_message_id), r.id))
        .collect();
    // 2. The originals of duplicates (webhook retries), with their jobs: reported, not changed.
    let dup_keys = commit_plan::duplicate_keys(events, &fresh);
    let original: HashMap<MessageKey, commit_plan::Original> = originals(tx, &dup_keys)
        .await?
        .into_iter()
        .map(|r| {
            let job = r.job_id.zip(r.deadline_at_ms.map(from_ms));
            ((r.provider, r.provider_message_id), (r.id, job))
        })
        .collect();
    let (mut outcomes, new_events) = commit_plan::outcomes(events, &fresh, &original)?;
    upsert_states(tx, &commit_plan::state_winners(&new_events), now).await?;
    let jobs = insert_jobs(tx, &new_events, now).await?;
    commit_plan::fill_jobs(&mut outcomes, &jobs);
    Ok(outcomes)
}

async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<Vec<InsertedEvent>, StoreError> {
    let n = events.len();
    let mut cols = IntentColumns::default();
    let mut received_at = Vec::with_capacity(n);
    let mut provider = Vec::with_capacity(n);
    let mut message_id = Vec::with_capacity(n);
    let mut evidence = Vec::with_capacity(n);
    let mut ip = Vec::with_capacity(n);
    let mut user_agent = Vec::with_capacity(n);
    let mut call_id = Vec::with_capacity(n);
    // In key order: a commit waits on another's uncommitted insert of the same key (a webhook
    // retried while its first delivery is being written), and two commits that took their keys
    // in opposite orders would deadlock.
    let mut in_key_order: Vec<&NewEvent> = events.iter().collect();
    in_key_order.sort_unstable_by(|a, b| {
        (&a.intent.provider, &a.intent.provider_message_id)
            .cmp(&(&b.intent.provider, &b.intent.provider_message_id))
    });
    for e in in_key_order {
        let i = &e.intent;
        cols.push(i);
        received_at.push(to_ms(e.received_at));
        provider.push(i.provider.as_str());
        message_id.push(i.provider_message_id.as_str());
        evidence.push(
            serde_json::to_string(&i.evidence).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        );
        ip.push(i.evidence.ip.as_deref());
        user_agent.push(i.evidence.user_agent.as_deref());
        call_id.push(i.evidence.call_id.as_deref());
    }
    let mut args = cols.args(true)?;
    add(&mut args, received_at)?;
    add(&mut args, provider)?;
    add(&mut args, message_id)?;
    add(&mut args, evidence)?;
    add(&mut args, ip)?;
    add(&mut args, user_agent)?;
    add(&mut args, call_id)?;
    Ok(sqlx::query_as_with(INSERT_EVENTS, args)
        .fetch_all(&mut **tx)
        .await?)
}

async fn originals(tx: &mut Tx, keys: &[MessageKey]) -> Result<Vec<Original>, StoreError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let (providers, ids): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(p, m)| (p.as_str(), m.as_str())).unzip();
    Ok(sqlx::query_as(ORIGINALS)
        .bind(providers)
        .bind(ids)
        .fetch_all(&mut **tx)
        .await?)
}

async fn upsert_states(
    tx: &mut Tx,
    winners: &[(&NewEvent, i64)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if winners.is_empty() {
        return Ok(());
    }
    let mut cols = IntentColumns::default();
    let mut event_id = Vec::with_capacity(winners.len());
    let mut confirmed = Vec::with_capacity(winners.len());
    for &(e, id) in winners {
        let i = &e.intent;
        cols.push(i);
        event_id.push(id);
        // Citizens' own changes, and records read from İYS, are what İYS already holds.
        confirmed.push(i64::from(i.source.is_iys() || i.channel == Channel::Iys));
    }
    let mut args = cols.args(true)?;
    add(&mut args, event_id)?;
    add(&mut args, confirmed)?;
    add(&mut args, to_ms(now))?;
    sqlx::query_with(UPSERT_STATES, args)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One report job per new reportable event; returns event id → (job id, deadline).
async fn insert_jobs(
    tx: &mut Tx,
    new_events: &[(&NewEvent, i64)],
    now: DateTime<Utc>,
) -> Result<HashMap<i64, (i64, DateTime<Utc>)>, StoreError> {
    let mut cols = IntentColumns::default();
    let mut event_id = Vec::new();
    let mut due_at = Vec::new();
    let mut target_at = Vec::new();
    let mut deadline_at = Vec::new();
    for &(e, id) in new_events {
        let Some(t) = e.report else { continue };
        cols.push(&e.intent);
        event_id.push(id);
        due_at.push(to_ms(t.due_at));
        target_at.push(to_ms(t.target_at));
        deadline_at.push(to_ms(t.deadline_at));
    }
    if event_id.is_empty() {
        return Ok(HashMap::new());
    }
    let mut args = cols.args(false)?;
    add(&mut args, event_id)?;
    add(&mut args, due_at)?;
    add(&mut args, target_at)?;
    add(&mut args, deadline_at)?;
    add(&mut args, to_ms(now))?;
    let rows: Vec<InsertedJob> = sqlx::query_as_with(INSERT_JOBS, args)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.event_id, (r.id, from_ms(r.deadline_at_ms))))
        .collect())
}

pub(super) async fn keep_inbound(tx: &mut Tx, msgs: &[InboundMessage]) -> Result<(), StoreError> {
    if msgs.is_empty() {
        return Ok(());
    }
    let n = msgs.len();
    let mut provider = Vec::with_capacity(n);
    let mut message_id = Vec::with_capacity(n);
    let mut received_at = Vec::with_capacity(n);
    let mut sender = Vec::with_capacity(n);
    let mut receiver = Vec::with_capacity(n);
    let mut intent = Vec::with_capacity(n);
    let mut raw = Vec::with_capacity(n);
    for m in msgs {
        provider.push(m.provider.as_str());
        message_id.push(m.provider_message_id.as_str());
        received_at.push(to_ms(m.received_at));
        sender.push(m.sender.as_str());
        receiver.push(m.receiver.as_str());
        intent.push(m.intent.as_str());
        raw.push(m.raw.to_string());
    }
    sqlx::query(INSERT_INBOUND)
        .bind(provider)
        .bind(message_id)
        .bind(received_at)
        .bind(sender)
        .bind(receiver)
        .bind(intent)
        .bind(raw)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
