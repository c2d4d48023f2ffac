//! The ledger's write path (the group commit): events, current states, report jobs and kept
//! inbound messages, each written by one statement over arrays (`UNNEST`) whatever the batch
//! size, so a commit costs the same handful of round trips for one webhook or hundreds.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::Tx;
use crate::domain::Channel;
use crate::domain::time::{from_ms, to_ms};
use crate::store::{InboundMessage, NewEvent, RecordOutcome, StoreError};

/// A duplicate's dedupe key is (provider, provider message id).
type Key = (String, String);

const INSERT_EVENTS: &str = "INSERT INTO consent_events (brand_code, recipient, recipient_type,
         consent_type, status, source, channel, consent_at_ms, received_at_ms, provider,
         provider_message_id, evidence, ip, user_agent, call_id)
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
         $7::text[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[],
         $14::text[], $15::text[])
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
         consent_type, status, source, channel, consent_at_ms, event_id, iys_confirmed,
         updated_at_ms)
     SELECT u.*, $11 FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
         $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[]) AS u
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
     FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[],
         $7::bigint[], $8::bigint[], $9::bigint[])
         AS u(event_id, brand_code, recipient, recipient_type, consent_type, consent_at_ms,
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

pub(super) async fn record_events(
    tx: &mut Tx,
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<Vec<RecordOutcome>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let key = |e: &NewEvent| {
        (
            e.intent.provider.clone(),
            e.intent.provider_message_id.clone(),
        )
    };

    // 1. Insert the events; a conflict on (provider, provider_message_id) inserts nothing.
    let fresh: HashMap<Key, i64> = insert_events(tx, events)
        .await?
        .into_iter()
        .map(|r| ((r.provider, r.provider_message_id), r.id))
        .collect();

    // 2. The originals of duplicates (webhook retries), with their jobs: reported, not changed.
    let dup_keys: Vec<Key> = {
        let mut seen = HashSet::new();
        events
            .iter()
            .map(key)
            .filter(|k| !fresh.contains_key(k) && seen.insert(k.clone()))
            .collect()
    };
    let original: HashMap<Key, (i64, Option<(i64, i64)>)> = originals(tx, &dup_keys)
        .await?
        .into_iter()
        .map(|r| {
            let job = r.job_id.zip(r.deadline_at_ms);
            ((r.provider, r.provider_message_id), (r.id, job))
        })
        .collect();

    // The first occurrence of a fresh key in this batch is the new event; repeats are duplicates.
    let mut claimed: HashSet<Key> = HashSet::new();
    let mut new_events: Vec<(&NewEvent, i64)> = Vec::new();
    let mut outcomes = Vec::with_capacity(events.len());
    for e in events {
        let k = key(e);
        let outcome = match fresh.get(&k) {
            Some(&id) => {
                let first = claimed.insert(k);
                if first {
                    new_events.push((e, id));
                }
                RecordOutcome {
                    event_id: id,
                    duplicate: !first,
                    job_id: None,
                    deadline_at: None,
                }
            }
            None => {
                let (id, job) = original
                    .get(&k)
                    .copied()
                    .ok_or_else(|| StoreError::Corrupt("duplicate without original".into()))?;
                RecordOutcome {
                    event_id: id,
                    duplicate: true,
                    job_id: job.map(|j| j.0),
                    deadline_at: job.map(|j| from_ms(j.1)),
                }
            }
        };
        outcomes.push(outcome);
    }

    upsert_states(tx, &new_events, now).await?;
    let jobs = insert_jobs(tx, &new_events, now).await?;
    // Fill in job ids and deadlines (for in-batch duplicates too: they share the event).
    for o in &mut outcomes {
        if let Some((job_id, deadline)) = jobs.get(&o.event_id) {
            o.job_id = Some(*job_id);
            o.deadline_at = Some(*deadline);
        }
    }
    Ok(outcomes)
}

async fn insert_events(tx: &mut Tx, events: &[NewEvent]) -> Result<Vec<InsertedEvent>, StoreError> {
    let n = events.len();
    let mut brand = Vec::with_capacity(n);
    let mut recipient = Vec::with_capacity(n);
    let mut recipient_type = Vec::with_capacity(n);
    let mut consent_type = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut channel = Vec::with_capacity(n);
    let mut consent_at = Vec::with_capacity(n);
    let mut received_at = Vec::with_capacity(n);
    let mut provider = Vec::with_capacity(n);
    let mut message_id = Vec::with_capacity(n);
    let mut evidence = Vec::with_capacity(n);
    let mut ip = Vec::with_capacity(n);
    let mut user_agent = Vec::with_capacity(n);
    let mut call_id = Vec::with_capacity(n);
    for e in events {
        let i = &e.intent;
        brand.push(i.brand_code);
        recipient.push(i.recipient.as_str());
        recipient_type.push(i.recipient_type.as_str());
        consent_type.push(i.consent_type.as_str());
        status.push(i.status.as_str());
        source.push(i.source.as_str());
        channel.push(i.channel.as_str());
        consent_at.push(to_ms(i.consent_at));
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
    Ok(sqlx::query_as(INSERT_EVENTS)
        .bind(brand)
        .bind(recipient)
        .bind(recipient_type)
        .bind(consent_type)
        .bind(status)
        .bind(source)
        .bind(channel)
        .bind(consent_at)
        .bind(received_at)
        .bind(provider)
        .bind(message_id)
        .bind(evidence)
        .bind(ip)
        .bind(user_agent)
        .bind(call_id)
        .fetch_all(&mut **tx)
        .await?)
}

async fn originals(tx: &mut Tx, keys: &[Key]) -> Result<Vec<Original>, StoreError> {
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

/// Within the batch only each address's winner is written: one statement may not upsert a row
/// twice.
async fn upsert_states(
    tx: &mut Tx,
    new_events: &[(&NewEvent, i64)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut winners: HashMap<(i64, &str, &str, &str), (&NewEvent, i64)> = HashMap::new();
    for &(e, id) in new_events {
        let i = &e.intent;
        let addr = (
            i.brand_code,
            i.recipient.as_str(),
            i.recipient_type.as_str(),
            i.consent_type.as_str(),
        );
        let better = winners
            .get(&addr)
            .is_none_or(|&(w, wid)| (i.consent_at, id) > (w.intent.consent_at, wid));
        if better {
            winners.insert(addr, (e, id));
        }
    }
    if winners.is_empty() {
        return Ok(());
    }
    let n = winners.len();
    let mut brand = Vec::with_capacity(n);
    let mut recipient = Vec::with_capacity(n);
    let mut recipient_type = Vec::with_capacity(n);
    let mut consent_type = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut channel = Vec::with_capacity(n);
    let mut consent_at = Vec::with_capacity(n);
    let mut event_id = Vec::with_capacity(n);
    let mut confirmed = Vec::with_capacity(n);
    for (e, id) in winners.into_values() {
        let i = &e.intent;
        brand.push(i.brand_code);
        recipient.push(i.recipient.as_str());
        recipient_type.push(i.recipient_type.as_str());
        consent_type.push(i.consent_type.as_str());
        status.push(i.status.as_str());
        source.push(i.source.as_str());
        channel.push(i.channel.as_str());
        consent_at.push(to_ms(i.consent_at));
        event_id.push(id);
        // Citizens' own changes, and records read from İYS, are what İYS already holds.
        confirmed.push(i64::from(i.source.is_iys() || i.channel == Channel::Iys));
    }
    sqlx::query(UPSERT_STATES)
        .bind(brand)
        .bind(recipient)
        .bind(recipient_type)
        .bind(consent_type)
        .bind(status)
        .bind(source)
        .bind(channel)
        .bind(consent_at)
        .bind(event_id)
        .bind(confirmed)
        .bind(to_ms(now))
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
    let reportable: Vec<_> = new_events
        .iter()
        .filter_map(|&(e, id)| e.report.map(|t| (e, id, t)))
        .collect();
    if reportable.is_empty() {
        return Ok(HashMap::new());
    }
    let n = reportable.len();
    let mut event_id = Vec::with_capacity(n);
    let mut brand = Vec::with_capacity(n);
    let mut recipient = Vec::with_capacity(n);
    let mut recipient_type = Vec::with_capacity(n);
    let mut consent_type = Vec::with_capacity(n);
    let mut consent_at = Vec::with_capacity(n);
    let mut due_at = Vec::with_capacity(n);
    let mut target_at = Vec::with_capacity(n);
    let mut deadline_at = Vec::with_capacity(n);
    for &(e, id, t) in &reportable {
        let i = &e.intent;
        event_id.push(id);
        brand.push(i.brand_code);
        recipient.push(i.recipient.as_str());
        recipient_type.push(i.recipient_type.as_str());
        consent_type.push(i.consent_type.as_str());
        consent_at.push(to_ms(i.consent_at));
        due_at.push(to_ms(t.due_at));
        target_at.push(to_ms(t.target_at));
        deadline_at.push(to_ms(t.deadline_at));
    }
    let rows: Vec<InsertedJob> = sqlx::query_as(INSERT_JOBS)
        .bind(event_id)
        .bind(brand)
        .bind(recipient)
        .bind(recipient_type)
        .bind(consent_type)
        .bind(consent_at)
        .bind(due_at)
        .bind(target_at)
        .bind(deadline_at)
        .bind(to_ms(now))
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
