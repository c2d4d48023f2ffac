//! Row → domain conversions shared by both backends.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{AddressKey, ConsentState, JobState, ReportJob, StoreError, StoredEvent};
use crate::domain::time::from_ms;

pub(super) const STATE_COLUMNS: &str = "brand_code, recipient, recipient_type, consent_type, status, source, \
    channel, consent_at_ms, event_id, iys_confirmed, updated_at_ms";

pub(super) const JOB_COLUMNS: &str = "id, event_id, brand_code, recipient, recipient_type, consent_type, \
    consent_at_ms, state, due_at_ms, target_at_ms, deadline_at_ms, attempts, lease_owner, lease_until_ms, \
    batch_id, transaction_id, last_error, iys_date_ms";

pub(super) fn parsed<T: FromStr>(row: &AnyRow, col: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.try_get(col)?;
    s.parse::<T>()
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(super) fn state_from_row(row: &AnyRow) -> Result<ConsentState, StoreError> {
    Ok(ConsentState {
        brand_code: row.try_get("brand_code")?,
        recipient: row.try_get("recipient")?,
        recipient_type: parsed(row, "recipient_type")?,
        consent_type: parsed(row, "consent_type")?,
        status: parsed(row, "status")?,
        source: parsed(row, "source")?,
        channel: parsed(row, "channel")?,
        consent_at: from_ms(row.try_get("consent_at_ms")?),
        event_id: row.try_get("event_id")?,
        iys_confirmed: row.try_get::<i64, _>("iys_confirmed")? != 0,
        updated_at: from_ms(row.try_get("updated_at_ms")?),
    })
}

pub(super) fn stored_event_from_row(row: &AnyRow) -> Result<StoredEvent, StoreError> {
    let evidence: String = row.try_get("evidence")?;
    Ok(StoredEvent {
        id: row.try_get("id")?,
        brand_code: row.try_get("brand_code")?,
        recipient: row.try_get("recipient")?,
        recipient_type: parsed(row, "recipient_type")?,
        consent_type: parsed(row, "consent_type")?,
        status: parsed(row, "status")?,
        source: parsed(row, "source")?,
        channel: parsed(row, "channel")?,
        consent_at: from_ms(row.try_get("consent_at_ms")?),
        received_at: from_ms(row.try_get("received_at_ms")?),
        provider: row.try_get("provider")?,
        provider_message_id: row.try_get("provider_message_id")?,
        evidence: serde_json::from_str(&evidence)
            .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?,
    })
}

/// The İYS address a row's brand_code, recipient, recipient_type and consent_type name.
pub(super) fn address_from_row(row: &AnyRow) -> Result<AddressKey, StoreError> {
    Ok(AddressKey {
        brand_code: row.try_get("brand_code")?,
        recipient: row.try_get("recipient")?,
        recipient_type: parsed(row, "recipient_type")?,
        consent_type: parsed(row, "consent_type")?,
    })
}

pub(super) fn job_from_row(row: &AnyRow) -> Result<ReportJob, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(ReportJob {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        address: address_from_row(row)?,
        consent_at: from_ms(row.try_get("consent_at_ms")?),
        state: JobState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("job state {state:?}")))?,
        due_at: from_ms(row.try_get("due_at_ms")?),
        target_at: from_ms(row.try_get("target_at_ms")?),
        deadline_at: from_ms(row.try_get("deadline_at_ms")?),
        attempts: row.try_get("attempts")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row
            .try_get::<Option<i64>, _>("lease_until_ms")?
            .map(from_ms),
        batch_id: row.try_get("batch_id")?,
        transaction_id: row.try_get("transaction_id")?,
        last_error: row.try_get("last_error")?,
        iys_date: row.try_get::<Option<i64>, _>("iys_date_ms")?.map(from_ms),
    })
}
