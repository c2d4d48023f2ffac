//! The ledger's group commit on SQLite: events, their current state, their report jobs and the
//! kept inbound messages of one batch, on the writer thread.
//!
//! Everything that needs no database (evidence serialised to JSON, times in milliseconds, which
//! event wins an address within the batch) is done by `Batch::prepare` on the caller's thread,
//! so the single writer thread spends its time only on the statements.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, ToSql, params, params_from_iter};

use crate::domain::Channel;
use crate::domain::time::{from_ms, istanbul_day_of_ms, to_ms};
use crate::store::{InboundMessage, NewEvent, RecordOutcome, StoreError};

/// One event, ready to bind.
struct Row {
    brand_code: i64,
    recipient: String,
    recipient_type: &'static str,
    consent_type: &'static str,
    status: &'static str,
    source: &'static str,
    channel: &'static str,
    consent_at_ms: i64,
    received_at_ms: i64,
    provider: String,
    provider_message_id: String,
    evidence: String,
    ip: Option<String>,
    user_agent: Option<String>,
    call_id: Option<String>,
    /// Citizens' own changes, and records read from İYS, are what İYS already holds.
    iys_confirmed: bool,
    /// (due, target, deadline) in ms when the movement must be reported.
    report: Option<(i64, i64, i64)>,
}

impl Row {
    /// The columns the event and the state row begin with, in the order both bind them.
    fn movement(&self) -> [&dyn ToSql; 8] {
        [
            &self.brand_code,
            &self.recipient,
            &self.recipient_type,
            &self.consent_type,
            &self.status,
            &self.source,
            &self.channel,
            &self.consent_at_ms,
        ]
    }
}

struct Kept {
    provider: String,
    provider_message_id: String,
    received_at_ms: i64,
    sender: String,
    receiver: String,
    intent: String,
    raw: String,
}

pub(super) struct Batch {
    rows: Vec<Row>,
    inbound: Vec<Kept>,
    now_ms: i64,
}

impl Batch {
    pub(super) fn prepare(
        events: &[NewEvent],
        inbound: &[InboundMessage],
        now: DateTime<Utc>,
    ) -> Result<Self, StoreError> {
        let rows = events
            .iter()
            .map(|e| {
                let i = &e.intent;
                Ok(Row {
                    brand_code: i.brand_code,
                    recipient: i.recipient.as_str().to_string(),
                    recipient_type: i.recipient_type.as_str(),
                    consent_type: i.consent_type.as_str(),
                    status: i.status.as_str(),
                    source: i.source.as_str(),
                    channel: i.channel.as_str(),
                    consent_at_ms: to_ms(i.consent_at),
                    received_at_ms: to_ms(e.received_at),
                    provider: i.provider.clone(),
                    provider_message_id: i.provider_message_id.clone(),
                    evidence: serde_json::to_string(&i.evidence)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    ip: i.evidence.ip.clone(),
                    user_agent: i.evidence.user_agent.clone(),
                    call_id: i.evidence.call_id.clone(),
                    iys_confirmed: i.source.is_iys() || i.channel == Channel::Iys,
                    report: e
                        .report
                        .map(|t| (to_ms(t.due_at), to_ms(t.target_at), to_ms(t.deadline_at))),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let inbound = inbound
            .iter()
            .map(|m| Kept {
                provider: m.provider.clone(),
                provider_message_id: m.provider_message_id.clone(),
                received_at_ms: to_ms(m.received_at),
                sender: m.sender.clone(),
                receiver: m.receiver.clone(),
                intent: m.intent.clone(),
                raw: m.raw.to_string(),
            })
            .collect();
        Ok(Batch {
            rows,
            inbound,
            now_ms: to_ms(now),
        })
    }

    /// Duplicates (same provider + provider message id, earlier or in this batch) return the
    /// original event and its job and change nothing.
    pub(super) fn write(&self, c: &Connection) -> Result<Vec<RecordOutcome>, StoreError> {
        let mut insert_event = c.prepare_cached(
            "INSERT INTO consent_events (brand_code, recipient, recipient_type, consent_type, status,
                 source, channel, consent_at_ms, received_at_ms, provider, provider_message_id,
                 evidence, ip, user_agent, call_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (provider, provider_message_id) DO NOTHING",
        )?;
        let mut original = c.prepare_cached(
            "SELECT e.id, j.id, j.deadline_at_ms
             FROM consent_events e LEFT JOIN report_jobs j ON j.event_id = e.id
             WHERE e.provider = ?1 AND e.provider_message_id = ?2",
        )?;
        // Newest consent date wins; on a tie the later event.
        let mut upsert_state = c.prepare_cached(
            "INSERT INTO consent_state (brand_code, recipient, recipient_type, consent_type, status,
                 source, channel, consent_at_ms, event_id, iys_confirmed, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (brand_code, recipient, recipient_type, consent_type) DO UPDATE SET
                 status = excluded.status, source = excluded.source, channel = excluded.channel,
                 consent_at_ms = excluded.consent_at_ms, event_id = excluded.event_id,
                 iys_confirmed = excluded.iys_confirmed, updated_at_ms = excluded.updated_at_ms
             WHERE excluded.consent_at_ms > consent_state.consent_at_ms
                OR (excluded.consent_at_ms = consent_state.consent_at_ms
                    AND excluded.event_id > consent_state.event_id)",
        )?;
        let mut insert_job = c.prepare_cached(
            "INSERT INTO report_jobs (event_id, brand_code, recipient, recipient_type, consent_type,
                 consent_at_ms, state, due_at_ms, target_at_ms, deadline_at_ms, created_at_ms,
                 updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9, ?10, ?10)",
        )?;

        let now = self.now_ms;
        // What the batch adds to the counters the console and the metrics read; written once
        // each at the end (see migrations/sqlite/0019_batch_tallies.sql for why not triggers).
        let mut movement_days: HashMap<(i64, i64, &str, &str), i64> = HashMap::new();
        let mut new_jobs = 0_i64;
        // Fresh events of this batch by provider key: a repeat within the batch is a duplicate.
        let mut fresh: HashMap<(&str, &str), RecordOutcome> = HashMap::new();
        let mut outcomes = Vec::with_capacity(self.rows.len());
        for r in &self.rows {
            let key = (r.provider.as_str(), r.provider_message_id.as_str());
            if let Some(first) = fresh.get(&key) {
                outcomes.push(RecordOutcome {
                    duplicate: true,
                    ..first.clone()
                });
                continue;
            }
            // The ids come from `last_insert_rowid` rather than `RETURNING`, which SQLite runs
            // by buffering the returned rows in a table of their own.
            let inserted =
                insert_event.execute(params_from_iter(r.movement().into_iter().chain([
                    &r.received_at_ms as &dyn ToSql,
                    &r.provider,
                    &r.provider_message_id,
                    &r.evidence,
                    &r.ip,
                    &r.user_agent,
                    &r.call_id,
                ])))?;
            if inserted == 0 {
                let (event_id, job_id, deadline): (i64, Option<i64>, Option<i64>) = original
                    .query_row(params![r.provider, r.provider_message_id], |row| {
                        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                    })?;
                outcomes.push(RecordOutcome {
                    event_id,
                    duplicate: true,
                    job_id,
                    deadline_at: deadline.map(from_ms),
                });
                continue;
            }
            let id = c.last_insert_rowid();
            *movement_days
                .entry((
                    istanbul_day_of_ms(r.received_at_ms),
                    r.brand_code,
                    r.channel,
                    r.status,
                ))
                .or_default() += 1;
            // The upsert's WHERE keeps the newest movement whatever order the batch holds.
            let confirmed = i64::from(r.iys_confirmed);
            upsert_state.execute(params_from_iter(r.movement().into_iter().chain([
                &id as &dyn ToSql,
                &confirmed,
                &now,
            ])))?;
            let mut outcome = RecordOutcome {
                event_id: id,
                duplicate: false,
                job_id: None,
                deadline_at: None,
            };
            if let Some((due, target, deadline)) = r.report {
                insert_job.execute(params![
                    id,
                    r.brand_code,
                    r.recipient,
                    r.recipient_type,
                    r.consent_type,
                    r.consent_at_ms,
                    due,
                    target,
                    deadline,
                    now
                ])?;
                let job_id = c.last_insert_rowid();
                new_jobs += 1;
                outcome.job_id = Some(job_id);
                outcome.deadline_at = Some(from_ms(deadline));
            }
            fresh.insert(key, outcome.clone());
            outcomes.push(outcome);
        }

        if new_jobs > 0 {
            c.prepare_cached(
                "UPDATE report_job_counts SET jobs = jobs + ?1 WHERE state = 'pending'",
            )?
            .execute([new_jobs])?;
        }
        let mut count_day = c.prepare_cached(
            "INSERT INTO movement_days (day, brand_code, channel, status, movements)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (day, brand_code, channel, status) DO UPDATE SET
                 movements = movements + excluded.movements",
        )?;
        for ((day, brand_code, channel, status), movements) in movement_days {
            count_day.execute(params![day, brand_code, channel, status, movements])?;
        }

        let mut keep = c.prepare_cached(
            "INSERT INTO inbound_messages (provider, provider_message_id, received_at_ms, sender,
                 receiver, intent, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (provider, provider_message_id) DO NOTHING",
        )?;
        for m in &self.inbound {
            keep.execute(params![
                m.provider,
                m.provider_message_id,
                m.received_at_ms,
                m.sender,
                m.receiver,
                m.intent,
                m.raw
            ])?;
        }
        Ok(outcomes)
    }
}
