//! Every İYS call of the workers goes through [`PacedIys`]: it reserves a request slot shared by
//! all replicas (İYS allows 10 requests/s per IP, not per process), waits for it, makes the call
//! and writes one attempt row per HTTP attempt (token requests included). A needed token request
//! gets a slot of its own before the call's.
//!
//! One `PacedIys` per sequential worker: the attempt records of a call are collected by the
//! client's observer and drained right after it, so two concurrent callers would mix them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::client::{CallObserver, CallRecord, IysClient, IysClientConfig, PullSource};
use super::errors::IysError;
use super::wire::{
    AddConsentResponse, BatchAccepted, ConsentRequest, PollItem, PullPage, StatusResponse,
};
use crate::domain::time::{Clock, ManualClock};
use crate::domain::{ConsentType, Recipient, RecipientType};
use crate::store::queue::Attempt;
use crate::store::{Store, StoreError};

/// Waits for a duration. Production sleeps; tests move a [`ManualClock`] instead.
pub type Sleeper =
    Arc<dyn Fn(std::time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

pub fn tokio_sleeper() -> Sleeper {
    Arc::new(|d| Box::pin(tokio::time::sleep(d)))
}

/// Advances the manual clock instead of sleeping, so paced tests run instantly and the
/// simulator's rate limiter (on the same clock) sees the real spacing.
pub fn manual_sleeper(clock: ManualClock) -> Sleeper {
    Arc::new(move |d| {
        if let Ok(d) = chrono::Duration::from_std(d) {
            clock.advance(d);
        }
        Box::pin(async {})
    })
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Iys(#[from] IysError),
    /// Pacing or the attempt log failed: the worker stops this round.
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Default)]
struct Collector(Mutex<Vec<CallRecord>>);

impl Collector {
    fn drain(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl CallObserver for Collector {
    fn on_call(&self, call: &CallRecord) {
        let outcome = match (&call.code, call.status) {
            (Some(code), _) => code.clone(),
            (None, Some(status)) => status.to_string(),
            (None, None) => "none".to_string(),
        };
        metrics::counter!("iys_relay_iys_calls_total", "operation" => call.operation, "code" => outcome).increment(1);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call.clone());
    }
}

/// Which job or batch an HTTP call served, for its attempt rows.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub job_id: Option<i64>,
    pub batch_id: Option<String>,
    pub brand_code: Option<i64>,
}

impl CallContext {
    /// A call for a brand, on behalf of no job or batch.
    pub fn brand(brand_code: i64) -> Self {
        Self {
            brand_code: Some(brand_code),
            ..Self::default()
        }
    }
}

pub struct PacedIys {
    client: IysClient,
    calls: Arc<Collector>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sleeper: Sleeper,
    spacing_ms: i64,
}

impl PacedIys {
    pub fn new(
        cfg: IysClientConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        sleeper: Sleeper,
        requests_per_second: u32,
    ) -> Result<Self, IysError> {
        let calls = Arc::new(Collector::default());
        let client = IysClient::new(cfg, clock.clone())?.with_observer(calls.clone());
        Ok(Self {
            client,
            calls,
            store,
            clock,
            sleeper,
            spacing_ms: 1000 / i64::from(requests_per_second.clamp(1, 10)),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Waits for this replica's turn among all replicas, for the call and, first, for the token
    /// request the call would otherwise make unpaced (İYS counts it in the 10/s as well).
    /// The outer error stops the worker; the inner one is a failed token request, which the
    /// caller logs and returns like a failed call.
    async fn pace(&self) -> Result<Result<(), IysError>, StoreError> {
        if self.client.needs_token().await {
            self.wait_for_slot().await?;
            if let Err(e) = self.client.ensure_token().await {
                return Ok(Err(e));
            }
        }
        self.wait_for_slot().await.map(Ok)
    }

    /// Paces, then makes `call` (a future does nothing until awaited) unless the token failed.
    async fn paced<T>(
        &self,
        call: impl Future<Output = Result<T, IysError>>,
    ) -> Result<Result<T, IysError>, StoreError> {
        Ok(match self.pace().await? {
            Ok(()) => call.await,
            Err(e) => Err(e),
        })
    }

    /// [`Self::paced`], then the call's attempt rows logged under `ctx`, whatever the outcome.
    async fn paced_logged<T>(
        &self,
        ctx: CallContext,
        call: impl Future<Output = Result<T, IysError>>,
    ) -> Result<T, CallError> {
        let r = self.paced(call).await?;
        self.log(&ctx).await?;
        Ok(r?)
    }

    async fn wait_for_slot(&self) -> Result<(), StoreError> {
        let slot = self
            .store
            .reserve_iys_slot(self.clock.now(), self.spacing_ms)
            .await?;
        if let Ok(wait) = (slot - self.clock.now()).to_std()
            && !wait.is_zero()
        {
            (self.sleeper)(wait).await;
        }
        Ok(())
    }

    async fn log(&self, ctx: &CallContext) -> Result<(), StoreError> {
        let rows: Vec<Attempt> = self
            .calls
            .drain()
            .into_iter()
            .map(|c| Attempt {
                job_id: ctx.job_id,
                batch_id: ctx.batch_id.clone(),
                brand_code: ctx.brand_code,
                operation: c.operation.to_string(),
                method: c.method.to_string(),
                path: c.path,
                status: c.status.map(i64::from),
                code: c.code,
                duration_ms: i64::try_from(c.duration.as_millis()).unwrap_or(i64::MAX),
                at: c.started_at,
            })
            .collect();
        self.store.record_attempts(&rows).await
    }

    pub async fn add_consent(
        &self,
        job_id: i64,
        brand_code: i64,
        consent: &ConsentRequest,
    ) -> Result<AddConsentResponse, CallError> {
        let ctx = CallContext {
            job_id: Some(job_id),
            batch_id: None,
            brand_code: Some(brand_code),
        };
        self.paced_logged(ctx, self.client.add_consent_v2(brand_code, consent))
            .await
    }

    /// The attempt row carries the requestId when İYS accepted the batch.
    pub async fn add_batch(
        &self,
        brand_code: i64,
        consents: &[ConsentRequest],
    ) -> Result<BatchAccepted, CallError> {
        let r = self
            .paced(self.client.add_batch_v2(brand_code, consents))
            .await?;
        let ctx = CallContext {
            job_id: None,
            batch_id: r.as_ref().ok().map(|b| b.request_id.clone()),
            brand_code: Some(brand_code),
        };
        self.log(&ctx).await?;
        Ok(r?)
    }

    pub async fn poll_batch(
        &self,
        brand_code: i64,
        request_id: &str,
    ) -> Result<Vec<PollItem>, CallError> {
        let ctx = CallContext {
            job_id: None,
            batch_id: Some(request_id.to_string()),
            brand_code: Some(brand_code),
        };
        self.paced_logged(ctx, self.client.poll_batch_v2(brand_code, request_id))
            .await
    }

    pub async fn multi_status(
        &self,
        brand_code: i64,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        recipients: &[String],
    ) -> Result<Vec<String>, CallError> {
        let call = self
            .client
            .multi_status(brand_code, recipient_type, consent_type, recipients);
        self.paced_logged(CallContext::brand(brand_code), call)
            .await
    }

    pub async fn pull_changes(
        &self,
        brand_code: i64,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Option<PullPage>, CallError> {
        let call = self
            .client
            .pull_changes(brand_code, PullSource::Iys, after, limit);
        self.paced_logged(CallContext::brand(brand_code), call)
            .await
    }

    /// İYS's record for one address (`None`: no record), on behalf of `job_id` when a job asks.
    /// İYS allows this query 1000 times an hour per IP (H086), on top of the shared 10/s.
    pub async fn consent_status(
        &self,
        job_id: Option<i64>,
        brand_code: i64,
        recipient: &Recipient,
        recipient_type: RecipientType,
        consent_type: ConsentType,
    ) -> Result<Option<StatusResponse>, CallError> {
        let call = self
            .client
            .consent_status(brand_code, recipient, recipient_type, consent_type);
        let ctx = CallContext {
            job_id,
            ..CallContext::brand(brand_code)
        };
        self.paced_logged(ctx, call).await
    }
}
