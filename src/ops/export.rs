//! `export`: everything the ledger holds about one recipient, for a complaint or an audit:
//! every event with its raw evidence, its report job, every İYS attempt and alert for that job,
//! and the current consent states. The output names the recipient in full (it is the
//! subject of the export); nothing here logs it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::OpsError;
use crate::domain::Address;
use crate::domain::Recipient;
use crate::domain::time::to_iys;
use crate::store::queue::{Alert, Attempt};
use crate::store::{ConsentState, ReportJob, Store, StoredEvent};

#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    pub event: StoredEvent,
    pub job: Option<ReportJob>,
    /// HTTP calls to İYS for this job, and for the async batch that carried it.
    pub attempts: Vec<Attempt>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub recipient: String,
    pub brand_code: Option<i64>,
    pub generated_at: DateTime<Utc>,
    pub events: Vec<EventRecord>,
    pub states: Vec<ConsentState>,
}

pub async fn export(
    store: &dyn Store,
    recipient: &Recipient,
    brand_code: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Export, OpsError> {
    let events: Vec<StoredEvent> = store
        .events_for_recipient(recipient.as_str())
        .await?
        .into_iter()
        .filter(|e| brand_code.is_none_or(|b| e.brand_code == b))
        .collect();
    let mut records = Vec::with_capacity(events.len());
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for event in events {
        let key = Address {
            brand_code: event.brand_code,
            recipient: event.recipient.clone(),
            recipient_type: event.recipient_type,
            consent_type: event.consent_type,
        };
        if seen.insert(key.clone()) {
            keys.push(key);
        }
        let job = store.job_for_event(event.id).await?;
        let (mut attempts, mut alerts) = (Vec::new(), Vec::new());
        if let Some(j) = &job {
            attempts = store.attempts_for_job(j.id).await?;
            if let Some(b) = &j.batch_id {
                attempts.extend(store.attempts_for_batch(b).await?);
                attempts.sort_by_key(|a| a.at);
            }
            alerts = store.alerts_for_job(j.id).await?;
        }
        records.push(EventRecord {
            event,
            job,
            attempts,
            alerts,
        });
    }
    let mut states = Vec::new();
    for k in &keys {
        if let Some(s) = store.consent_state(k).await? {
            states.push(s);
        }
    }
    Ok(Export {
        recipient: recipient.as_str().to_string(),
        brand_code,
        generated_at: now,
        events: records,
        states,
    })
}

pub const CSV_HEADER: [&str; 19] = [
    "event_id",
    "brand_code",
    "recipient",
    "recipient_type",
    "type",
    "status",
    "source",
    "channel",
    "consent_date",
    "received_at",
    "provider",
    "provider_message_id",
    "job_id",
    "job_state",
    "attempts",
    "transaction_id",
    "last_error",
    "current_status",
    "evidence",
];

/// One row per event; dates in İYS form (Istanbul), the evidence as compact JSON.
pub fn to_csv(x: &Export) -> Result<String, OpsError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| OpsError::Input(format!("csv: {e}"));
    w.write_record(CSV_HEADER).map_err(err)?;
    for r in &x.events {
        let e = &r.event;
        let current = x
            .states
            .iter()
            .find(|s| {
                s.brand_code == e.brand_code
                    && s.recipient_type == e.recipient_type
                    && s.consent_type == e.consent_type
            })
            .map(|s| s.status.as_str())
            .unwrap_or_default();
        let j = r.job.as_ref();
        w.write_record([
            e.id.to_string(),
            e.brand_code.to_string(),
            e.recipient.clone(),
            e.recipient_type.to_string(),
            e.consent_type.to_string(),
            e.status.to_string(),
            e.source.to_string(),
            e.channel.to_string(),
            to_iys(e.consent_at),
            to_iys(e.received_at),
            e.provider.clone(),
            e.provider_message_id.clone(),
            j.map(|j| j.id.to_string()).unwrap_or_default(),
            j.map(|j| j.state.as_str().to_string()).unwrap_or_default(),
            r.attempts.len().to_string(),
            j.and_then(|j| j.transaction_id.clone()).unwrap_or_default(),
            j.and_then(|j| j.last_error.clone()).unwrap_or_default(),
            current.to_string(),
            e.evidence.to_string(),
        ])
        .map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| OpsError::Input(format!("csv: {e}")))?;
    String::from_utf8(bytes).map_err(|e| OpsError::Input(format!("csv: {e}")))
}
