//! Rows → domain values. Each column list sits next to the function that reads it, by
//! position, so the two cannot drift apart unnoticed (a test reads every shape back).

use std::str::FromStr;

use rusqlite::Row;
use rusqlite::types::FromSqlError;

use crate::domain::Address;
use crate::domain::time::from_ms;
use crate::store::queue::{Alert, AlertKind, Attempt, BatchState, IysBatch};
use crate::store::{ConsentState, JobState, ReportJob, StoredEvent};

/// A text column holding one of the domain's named values.
pub(super) fn named<T: FromStr>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.get(idx)?;
    s.parse::<T>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            Box::new(FromSqlError::Other(e.to_string().into())),
        )
    })
}

fn parsed_by<T>(row: &Row<'_>, idx: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Text,
            format!("unknown value {s:?}").into(),
        )
    })
}

fn time(row: &Row<'_>, idx: usize) -> rusqlite::Result<chrono::DateTime<chrono::Utc>> {
    Ok(from_ms(row.get(idx)?))
}

fn opt_time(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(from_ms))
}

/// A JSON text column.
fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let s: String = row.get(idx)?;
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The columns the mapper below reads, in its order; a macro so that statements can be
/// written with `concat!` as literals.
macro_rules! state_columns {
    () => {
        "brand_code, recipient, recipient_type, consent_type, \
    status, source, channel, consent_at_ms, event_id, iys_confirmed, updated_at_ms"
    };
}
pub(super) use state_columns;

pub(super) fn state(row: &Row<'_>) -> rusqlite::Result<ConsentState> {
    Ok(ConsentState {
        brand_code: row.get(0)?,
        recipient: row.get(1)?,
        recipient_type: named(row, 2)?,
        consent_type: named(row, 3)?,
        status: named(row, 4)?,
        source: named(row, 5)?,
        channel: named(row, 6)?,
        consent_at: time(row, 7)?,
        event_id: row.get(8)?,
        iys_confirmed: row.get::<_, i64>(9)? != 0,
        updated_at: time(row, 10)?,
    })
}

/// The columns the mapper below reads, in its order; a macro so that statements can be
/// written with `concat!` as literals.
macro_rules! event_columns {
    () => {
        "id, brand_code, recipient, recipient_type, consent_type, \
    status, source, channel, consent_at_ms, received_at_ms, provider, provider_message_id, evidence"
    };
}
pub(super) use event_columns;

pub(super) fn event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: row.get(0)?,
        brand_code: row.get(1)?,
        recipient: row.get(2)?,
        recipient_type: named(row, 3)?,
        consent_type: named(row, 4)?,
        status: named(row, 5)?,
        source: named(row, 6)?,
        channel: named(row, 7)?,
        consent_at: time(row, 8)?,
        received_at: time(row, 9)?,
        provider: row.get(10)?,
        provider_message_id: row.get(11)?,
        evidence: json(row, 12)?,
    })
}

/// The columns the mapper below reads, in its order; a macro so that statements can be
/// written with `concat!` as literals.
macro_rules! job_columns {
    () => {
        "id, event_id, brand_code, recipient, recipient_type, \
    consent_type, consent_at_ms, state, due_at_ms, target_at_ms, deadline_at_ms, attempts, \
    lease_owner, lease_until_ms, batch_id, transaction_id, last_error, iys_date_ms"
    };
}
pub(super) use job_columns;
/// Columns of [`JOB_COLUMNS`]; a query may select more after them.
pub(super) const JOB_WIDTH: usize = 18;

pub(super) fn job(row: &Row<'_>) -> rusqlite::Result<ReportJob> {
    Ok(ReportJob {
        id: row.get(0)?,
        event_id: row.get(1)?,
        address: Address {
            brand_code: row.get(2)?,
            recipient: row.get(3)?,
            recipient_type: named(row, 4)?,
            consent_type: named(row, 5)?,
        },
        consent_at: time(row, 6)?,
        state: parsed_by(row, 7, JobState::parse)?,
        due_at: time(row, 8)?,
        target_at: time(row, 9)?,
        deadline_at: time(row, 10)?,
        attempts: row.get(11)?,
        lease_owner: row.get(12)?,
        lease_until: opt_time(row, 13)?,
        batch_id: row.get(14)?,
        transaction_id: row.get(15)?,
        last_error: row.get(16)?,
        iys_date: opt_time(row, 17)?,
    })
}

/// The columns the mapper below reads, in its order; a macro so that statements can be
/// written with `concat!` as literals.
macro_rules! batch_columns {
    () => {
        "request_id, brand_code, submitted_at_ms, poll_after_ms, polls, items, state"
    };
}
pub(super) use batch_columns;

pub(super) fn batch(row: &Row<'_>) -> rusqlite::Result<IysBatch> {
    Ok(IysBatch {
        request_id: row.get(0)?,
        brand_code: row.get(1)?,
        submitted_at: time(row, 2)?,
        poll_after: time(row, 3)?,
        polls: row.get(4)?,
        items: row.get(5)?,
        state: parsed_by(row, 6, BatchState::parse)?,
    })
}

/// The columns the mapper below reads, in its order; a macro so that statements can be
/// written with `concat!` as literals.
macro_rules! attempt_columns {
    () => {
        "job_id, batch_id, brand_code, operation, method, path, status, code, duration_ms, at_ms"
    };
}
pub(super) use attempt_columns;

pub(super) fn attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    Ok(Attempt {
        job_id: row.get(0)?,
        batch_id: row.get(1)?,
        brand_code: row.get(2)?,
        operation: row.get(3)?,
        method: row.get(4)?,
        path: row.get(5)?,
        status: row.get(6)?,
        code: row.get(7)?,
        duration_ms: row.get(8)?,
        at: time(row, 9)?,
    })
}

/// The columns the mapper below reads, in its order; a macro so that statements can be
/// written with `concat!` as literals.
macro_rules! alert_columns {
    () => {
        "id, job_id, kind, severity, detail, at_ms"
    };
}
pub(super) use alert_columns;

pub(super) fn alert(row: &Row<'_>) -> rusqlite::Result<Alert> {
    Ok(Alert {
        id: row.get(0)?,
        job_id: row.get(1)?,
        kind: parsed_by(row, 2, AlertKind::parse)?,
        severity: row.get(3)?,
        detail: row.get(4)?,
        at: time(row, 5)?,
    })
}
