//! Typed rows: one `FromRow` struct per shape a query returns, converted to the domain types.
//! Column lists are macros so that every statement is one `&'static str` (sqlx caches prepared
//! statements by their text).

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;

use crate::domain::Address;
use crate::domain::time::from_ms;
use crate::domain::{Channel, Source, Status};
use crate::store::audit::{AuditEntry, AuditProgress};
use crate::store::links::Link;
use crate::store::queue::{Alert, AlertKind, Attempt, BatchState, BrandHealth, IysBatch, SentDate};
use crate::store::sms::{PollCursor, ReplyState, SmsReply};
use crate::store::{ConsentState, JobState, ReportJob, StoreError, StoredEvent};

/// The columns of [`StateRow`].
macro_rules! state_columns {
    () => {
        "brand_code, recipient, recipient_type, consent_type, status, source, channel, \
         consent_at_ms, event_id, iys_confirmed, updated_at_ms"
    };
}
/// The columns of [`EventRow`].
macro_rules! event_columns {
    () => {
        "id, brand_code, recipient, recipient_type, consent_type, status, source, channel, \
         consent_at_ms, received_at_ms, provider, provider_message_id, evidence"
    };
}
/// The columns of [`JobRow`].
macro_rules! job_columns {
    () => {
        "id, event_id, brand_code, recipient, recipient_type, consent_type, consent_at_ms, state, \
         due_at_ms, target_at_ms, deadline_at_ms, attempts, lease_owner, lease_until_ms, batch_id, \
         transaction_id, last_error, iys_date_ms"
    };
}
/// The columns of [`BatchRow`].
macro_rules! batch_columns {
    () => {
        "request_id, brand_code, submitted_at_ms, poll_after_ms, polls, items, state"
    };
}
/// The columns of [`AttemptRow`].
macro_rules! attempt_columns {
    () => {
        "job_id, batch_id, brand_code, operation, method, path, status, code, duration_ms, at_ms"
    };
}
/// The columns of [`AlertRow`].
macro_rules! alert_columns {
    () => {
        "id, job_id, kind, severity, detail, at_ms"
    };
}
/// The columns of [`ReplyRow`].
macro_rules! reply_columns {
    () => {
        "id, provider, provider_message_id, recipient, body, state, attempts, due_at_ms, \
         last_error, provider_ref"
    };
}
/// The columns of [`LinkRow`].
macro_rules! link_columns {
    () => {
        "id, brand_code, recipient, recipient_type, consent_type, campaign, created_at_ms, \
         expires_at_ms"
    };
}
pub(super) use {
    alert_columns, attempt_columns, batch_columns, event_columns, job_columns, link_columns,
    reply_columns, state_columns,
};

fn parse<T: FromStr>(col: &str, s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse::<T>()
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

/// An İYS address: brand_code, recipient, recipient_type, consent_type.
#[derive(FromRow)]
pub(super) struct AddressRow {
    brand_code: i64,
    recipient: String,
    recipient_type: String,
    consent_type: String,
}

impl TryFrom<AddressRow> for Address {
    type Error = StoreError;
    fn try_from(r: AddressRow) -> Result<Self, StoreError> {
        Ok(Address {
            brand_code: r.brand_code,
            recipient: r.recipient,
            recipient_type: parse("recipient_type", &r.recipient_type)?,
            consent_type: parse("consent_type", &r.consent_type)?,
        })
    }
}

/// A movement: its address, word, source, channel and consent time.
#[derive(FromRow)]
struct MovementRow {
    #[sqlx(flatten)]
    address: AddressRow,
    status: String,
    source: String,
    channel: String,
    consent_at_ms: i64,
}

struct Movement {
    address: Address,
    status: Status,
    source: Source,
    channel: Channel,
    consent_at: DateTime<Utc>,
}

impl TryFrom<MovementRow> for Movement {
    type Error = StoreError;
    fn try_from(r: MovementRow) -> Result<Self, StoreError> {
        Ok(Movement {
            address: r.address.try_into()?,
            status: parse("status", &r.status)?,
            source: parse("source", &r.source)?,
            channel: parse("channel", &r.channel)?,
            consent_at: from_ms(r.consent_at_ms),
        })
    }
}

#[derive(FromRow)]
pub(super) struct StateRow {
    #[sqlx(flatten)]
    movement: MovementRow,
    event_id: i64,
    iys_confirmed: i64,
    updated_at_ms: i64,
}

impl TryFrom<StateRow> for ConsentState {
    type Error = StoreError;
    fn try_from(r: StateRow) -> Result<Self, StoreError> {
        let m = Movement::try_from(r.movement)?;
        Ok(ConsentState {
            brand_code: m.address.brand_code,
            recipient: m.address.recipient,
            recipient_type: m.address.recipient_type,
            consent_type: m.address.consent_type,
            status: m.status,
            source: m.source,
            channel: m.channel,
            consent_at: m.consent_at,
            event_id: r.event_id,
            iys_confirmed: r.iys_confirmed != 0,
            updated_at: from_ms(r.updated_at_ms),
        })
    }
}

#[derive(FromRow)]
pub(super) struct EventRow {
    id: i64,
    #[sqlx(flatten)]
    movement: MovementRow,
    received_at_ms: i64,
    provider: String,
    provider_message_id: String,
    evidence: String,
}

impl TryFrom<EventRow> for StoredEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        let m = Movement::try_from(r.movement)?;
        Ok(StoredEvent {
            id: r.id,
            brand_code: m.address.brand_code,
            recipient: m.address.recipient,
            recipient_type: m.address.recipient_type,
            consent_type: m.address.consent_type,
            status: m.status,
            source: m.source,
            channel: m.channel,
            consent_at: m.consent_at,
            received_at: from_ms(r.received_at_ms),
            provider: r.provider,
            provider_message_id: r.provider_message_id,
            evidence: serde_json::from_str(&r.evidence)
                .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?,
        })
    }
}

#[derive(FromRow)]
pub(super) struct JobRow {
    id: i64,
    event_id: i64,
    #[sqlx(flatten)]
    address: AddressRow,
    consent_at_ms: i64,
    state: String,
    due_at_ms: i64,
    target_at_ms: i64,
    deadline_at_ms: i64,
    attempts: i64,
    lease_owner: Option<String>,
    lease_until_ms: Option<i64>,
    batch_id: Option<String>,
    transaction_id: Option<String>,
    last_error: Option<String>,
    iys_date_ms: Option<i64>,
}

impl TryFrom<JobRow> for ReportJob {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(ReportJob {
            id: r.id,
            event_id: r.event_id,
            address: r.address.try_into()?,
            consent_at: from_ms(r.consent_at_ms),
            state: JobState::parse(&r.state).ok_or_else(|| corrupt("job state", &r.state))?,
            due_at: from_ms(r.due_at_ms),
            target_at: from_ms(r.target_at_ms),
            deadline_at: from_ms(r.deadline_at_ms),
            attempts: r.attempts,
            lease_owner: r.lease_owner,
            lease_until: r.lease_until_ms.map(from_ms),
            batch_id: r.batch_id,
            transaction_id: r.transaction_id,
            last_error: r.last_error,
            iys_date: r.iys_date_ms.map(from_ms),
        })
    }
}

/// A job of an async batch with its 0-based position in it.
#[derive(FromRow)]
pub(super) struct BatchJobRow {
    #[sqlx(flatten)]
    job: JobRow,
    batch_index: Option<i64>,
}

impl TryFrom<BatchJobRow> for (i64, ReportJob) {
    type Error = StoreError;
    fn try_from(r: BatchJobRow) -> Result<Self, StoreError> {
        Ok((r.batch_index.unwrap_or(-1), r.job.try_into()?))
    }
}

#[derive(FromRow)]
pub(super) struct BatchRow {
    request_id: String,
    brand_code: i64,
    submitted_at_ms: i64,
    poll_after_ms: i64,
    polls: i64,
    items: i64,
    state: String,
}

impl TryFrom<BatchRow> for IysBatch {
    type Error = StoreError;
    fn try_from(r: BatchRow) -> Result<Self, StoreError> {
        Ok(IysBatch {
            state: BatchState::parse(&r.state).ok_or_else(|| corrupt("batch state", &r.state))?,
            request_id: r.request_id,
            brand_code: r.brand_code,
            submitted_at: from_ms(r.submitted_at_ms),
            poll_after: from_ms(r.poll_after_ms),
            polls: r.polls,
            items: r.items,
        })
    }
}

#[derive(FromRow)]
pub(super) struct AttemptRow {
    job_id: Option<i64>,
    batch_id: Option<String>,
    brand_code: Option<i64>,
    operation: String,
    method: String,
    path: String,
    status: Option<i64>,
    code: Option<String>,
    duration_ms: i64,
    at_ms: i64,
}

impl From<AttemptRow> for Attempt {
    fn from(r: AttemptRow) -> Self {
        Attempt {
            job_id: r.job_id,
            batch_id: r.batch_id,
            brand_code: r.brand_code,
            operation: r.operation,
            method: r.method,
            path: r.path,
            status: r.status,
            code: r.code,
            duration_ms: r.duration_ms,
            at: from_ms(r.at_ms),
        }
    }
}

#[derive(FromRow)]
pub(super) struct AlertRow {
    id: i64,
    job_id: i64,
    kind: String,
    severity: String,
    detail: String,
    at_ms: i64,
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;
    fn try_from(r: AlertRow) -> Result<Self, StoreError> {
        Ok(Alert {
            id: r.id,
            job_id: r.job_id,
            kind: AlertKind::parse(&r.kind).ok_or_else(|| corrupt("alert kind", &r.kind))?,
            severity: r.severity,
            detail: r.detail,
            at: from_ms(r.at_ms),
        })
    }
}

#[derive(FromRow)]
pub(super) struct BrandHealthRow {
    brand_code: i64,
    failures: i64,
    paused_until_ms: i64,
    last_error: Option<String>,
}

impl From<BrandHealthRow> for BrandHealth {
    fn from(r: BrandHealthRow) -> Self {
        BrandHealth {
            brand_code: r.brand_code,
            failures: r.failures,
            paused_until: from_ms(r.paused_until_ms),
            last_error: r.last_error,
        }
    }
}

#[derive(FromRow)]
pub(super) struct SentDateRow {
    #[sqlx(flatten)]
    address: AddressRow,
    job_id: Option<i64>,
    at_ms: i64,
    unconfirmed_onay: bool,
}

impl TryFrom<SentDateRow> for SentDate {
    type Error = StoreError;
    fn try_from(r: SentDateRow) -> Result<Self, StoreError> {
        Ok(SentDate {
            address: r.address.try_into()?,
            job_id: r.job_id,
            at: from_ms(r.at_ms),
            unconfirmed_onay: r.unconfirmed_onay,
        })
    }
}

#[derive(FromRow)]
pub(super) struct ReplyRow {
    id: i64,
    provider: String,
    provider_message_id: String,
    recipient: String,
    body: String,
    state: String,
    attempts: i64,
    due_at_ms: i64,
    last_error: Option<String>,
    provider_ref: Option<String>,
}

impl TryFrom<ReplyRow> for SmsReply {
    type Error = StoreError;
    fn try_from(r: ReplyRow) -> Result<Self, StoreError> {
        Ok(SmsReply {
            state: ReplyState::parse(&r.state)
                .ok_or_else(|| corrupt("sms reply state", &r.state))?,
            id: r.id,
            provider: r.provider,
            provider_message_id: r.provider_message_id,
            recipient: r.recipient,
            body: r.body,
            attempts: r.attempts,
            due_at: from_ms(r.due_at_ms),
            last_error: r.last_error,
            provider_ref: r.provider_ref,
        })
    }
}

#[derive(FromRow)]
pub(super) struct PollCursorRow {
    cursor: String,
    last_ok_at_ms: Option<i64>,
    last_error: Option<String>,
}

impl From<PollCursorRow> for PollCursor {
    fn from(r: PollCursorRow) -> Self {
        PollCursor {
            cursor: r.cursor,
            last_ok_at: r.last_ok_at_ms.map(from_ms),
            last_error: r.last_error,
        }
    }
}

#[derive(FromRow)]
pub(super) struct LinkRow {
    id: i64,
    #[sqlx(flatten)]
    address: AddressRow,
    campaign: String,
    created_at_ms: i64,
    expires_at_ms: i64,
}

impl TryFrom<LinkRow> for Link {
    type Error = StoreError;
    fn try_from(r: LinkRow) -> Result<Self, StoreError> {
        let a = Address::try_from(r.address)?;
        Ok(Link {
            id: r.id,
            brand_code: a.brand_code,
            recipient: a.recipient,
            recipient_type: a.recipient_type,
            consent_type: a.consent_type,
            // '' stands for "no campaign" so the unique key holds without NULLs.
            campaign: (!r.campaign.is_empty()).then_some(r.campaign),
            created_at: from_ms(r.created_at_ms),
            expires_at: from_ms(r.expires_at_ms),
        })
    }
}

#[derive(FromRow)]
pub(super) struct AuditEntryRow {
    #[sqlx(flatten)]
    movement: MovementRow,
    event_id: i64,
    job_id: Option<i64>,
    job_state: Option<String>,
    last_job_id: i64,
    open_jobs: i64,
}

impl TryFrom<AuditEntryRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(r: AuditEntryRow) -> Result<Self, StoreError> {
        let job = match (r.job_id, r.job_state) {
            (Some(id), Some(state)) => Some((
                id,
                JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
            )),
            _ => None,
        };
        let m = Movement::try_from(r.movement)?;
        Ok(AuditEntry {
            address: m.address,
            status: m.status,
            source: m.source,
            channel: m.channel,
            consent_at: m.consent_at,
            event_id: r.event_id,
            job,
            last_job_id: r.last_job_id,
            open_jobs: r.open_jobs,
        })
    }
}

#[derive(FromRow)]
pub(super) struct AuditProgressRow {
    sweep_started_at_ms: Option<i64>,
    sweep_finished_at_ms: Option<i64>,
    sweep_divergent: i64,
    jobs_after_ms: i64,
    jobs_after_id: i64,
}

impl From<AuditProgressRow> for AuditProgress {
    fn from(r: AuditProgressRow) -> Self {
        AuditProgress {
            sweep_started_at: r.sweep_started_at_ms.map(from_ms),
            sweep_finished_at: r.sweep_finished_at_ms.map(from_ms),
            sweep_divergent: r.sweep_divergent,
            jobs_after: (from_ms(r.jobs_after_ms), r.jobs_after_id),
        }
    }
}

/// A report job the audit's targeted check reads: its cursor position and its address.
#[derive(FromRow)]
pub(super) struct EndedJobRow {
    pub(super) id: i64,
    pub(super) updated_at_ms: i64,
    #[sqlx(flatten)]
    pub(super) address: AddressRow,
}

/// Converts every row, stopping at the first that does not hold valid data.
pub(super) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Keys as parallel arrays for an `UNNEST` join, each address once (a repeated key would repeat
/// its rows).
#[derive(Default)]
pub(super) struct KeyArrays<'a> {
    brand_code: Vec<i64>,
    recipient_type: Vec<&'static str>,
    consent_type: Vec<&'static str>,
    recipient: Vec<&'a str>,
}

impl<'a> KeyArrays<'a> {
    /// Binds the arrays as `$1` brand, `$2` recipient type, `$3` type, `$4` recipient.
    pub(super) fn bind<O>(
        self,
        q: QueryAs<'a, Postgres, O, PgArguments>,
    ) -> QueryAs<'a, Postgres, O, PgArguments> {
        q.bind(self.brand_code)
            .bind(self.recipient_type)
            .bind(self.consent_type)
            .bind(self.recipient)
    }

    pub(super) fn of(keys: &'a [Address]) -> Self {
        let mut out = KeyArrays::default();
        for ((brand, rt, ct), recipients) in Address::group(keys) {
            for r in recipients {
                out.brand_code.push(brand);
                out.recipient_type.push(rt.as_str());
                out.consent_type.push(ct.as_str());
                out.recipient.push(r);
            }
        }
        out
    }
}
