//! A faithful local İYS (İleti Yönetim Sistemi) HS API simulator, per docs/iys-api-notes.md: same paths,
//! JSON shapes, Istanbul `YYYY-MM-DD HH:mm:ss` dates, Turkish error catalogue and statuses.
//!
//! Time comes from an injected [`Clock`], so tests move a `ManualClock` across weekends and
//! holidays (H467), token lifetimes, batch delays, rate-limit windows and the pull lag.
//! Test hooks: [`Simulator::inject_citizen_action`] (also `POST /__sim/citizen-actions`),
//! [`Simulator::fail_next`], [`Simulator::set_outage`], [`Simulator::overwrite_record`],
//! [`Simulator::request_log`] (also `GET /__sim/request-log`), [`Simulator::movements`] (also
//! `GET /__sim/movements?brand=N`).

mod auth;
mod batch;
mod business_days;
mod changes_file;
pub mod config;
mod consents;
pub mod errors;
mod inspect;
mod limits;
mod pull;
mod push;
mod rules;
pub mod state;
mod validate;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

pub use config::{EqualConsentDatePolicy, SimConfig, SimUser, ThreeDayCutoff};
pub use state::{LoggedRequest, PushAttempt, SimMovement, SimRecord};

use crate::domain::time::Clock;
use crate::domain::{ConsentType, RecipientType, Source, Status};
use business_days::SimCalendar;
use errors::{ApiError, ErrorItem, LoggedCode};
use limits::Limit;
use rules::ValidConsent;
use state::State;

/// Why a test hook refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimHookError {
    #[error("brand {0} is not configured in the simulator")]
    UnknownBrand(i64),
    #[error("citizen actions need an IYS_* source, got {0}")]
    NotIysSource(Source),
    #[error("recipient does not fit the consent type: {0}")]
    InvalidRecipient(String),
}

/// Handle to one simulated İYS. Cheap to clone.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SimConfig,
    clock: Arc<dyn Clock>,
    cal: SimCalendar,
    state: Mutex<State>,
    http: reqwest::Client,
    pushes: Mutex<Vec<JoinHandle<()>>>,
}

/// The caller's address, the key of every rate limit (İYS counts per IP, §7). In-process
/// callers (`oneshot`, no socket) have no peer address and share the fixed key `local`.
#[derive(Debug, Clone)]
pub(crate) struct ClientIp(pub String);

impl Simulator {
    pub fn new(config: SimConfig, clock: Arc<dyn Clock>) -> Self {
        let cal = SimCalendar::turkish(config.half_days_business);
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(config.push_timeout.max(1)))
            .build()
            .unwrap_or_default();
        Self {
            inner: Arc::new(Inner {
                cfg: config,
                clock,
                cal,
                state: Mutex::new(State::default()),
                http,
                pushes: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    pub(crate) fn calendar(&self) -> &SimCalendar {
        &self.inner.cal
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// A poisoned lock only means a panicking test thread; the data is still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn track_push(&self, h: JoinHandle<()>) {
        let mut p = self.inner.pushes.lock().unwrap_or_else(|e| e.into_inner());
        p.retain(|h| !h.is_finished());
        p.push(h);
    }

    /// All İYS paths plus the `/__sim` test hooks.
    pub fn router(&self) -> Router {
        let b = "/sps/{iys}/brands/{brand}";
        let v2 = "/v2/sps/{iys}/brands/{brand}";
        let api = Router::new()
            .route("/oauth2/token", post(auth::token))
            .route(&format!("{b}/consents"), post(consents::add_v1))
            .route(&format!("{v2}/consents"), post(consents::add_v2))
            .route(&format!("{b}/consents/request"), post(batch::submit_v1))
            .route(&format!("{v2}/consents/request"), post(batch::submit_v2))
            .route(
                &format!("{b}/consents/request/{{rid}}"),
                get(batch::poll_v1),
            )
            .route(
                &format!("{v2}/consents/request/{{rid}}"),
                get(batch::poll_v2),
            )
            .route(&format!("{b}/consents/status"), post(consents::status))
            .route(
                &format!("{b}/consents/{{rt}}/status/{{ctype}}"),
                post(consents::multi_status),
            )
            .route(&format!("{b}/consents/history"), post(consents::history))
            .route(&format!("{b}/consents/changes"), get(pull::changes))
            .route(
                &format!("{b}/changes/{{date}}/file"),
                get(changes_file::daily_file),
            )
            .route(
                &format!("{b}/push/registration"),
                post(push::register).get(push::list),
            )
            .route(&format!("{b}/push/unregistration"), post(push::unregister))
            .route("/__sim/citizen-actions", post(push::citizen_action_hook))
            .route("/__sim/batches/process", post(batch::process_hook))
            .route("/__sim/request-log", get(inspect::request_log))
            .route("/__sim/movements", get(inspect::movements));
        api.layer(middleware::from_fn_with_state(self.clone(), gate))
            .with_state(self.clone())
    }

    /// Serves until the listener fails. Peer addresses feed the per-IP limits.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let app = self.router();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    }

    /// The current record for one consent, if any (processes due batches first).
    pub fn record(
        &self,
        brand_code: i64,
        recipient: &str,
        recipient_type: RecipientType,
        consent_type: ConsentType,
    ) -> Option<SimRecord> {
        self.process_due();
        let key = (normalise(recipient), recipient_type, consent_type);
        self.lock()
            .brands
            .get(&brand_code)
            .and_then(|b| b.records.get(&key).cloned())
    }

    /// The brand's movement log, oldest first.
    pub fn movements(&self, brand_code: i64) -> Vec<SimMovement> {
        self.process_due();
        self.lock()
            .brands
            .get(&brand_code)
            .map(|b| b.movements.clone())
            .unwrap_or_default()
    }

    /// Every API call answered so far (the `/__sim` hooks are not logged).
    pub fn request_log(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }

    pub fn clear_request_log(&self) {
        self.lock().log.clear();
    }

    /// Pushes İYS has made so far (test payloads and real movements).
    pub fn push_log(&self) -> Vec<PushAttempt> {
        self.lock().push_log.clone()
    }

    /// The next `n` API calls fail with `status` and İYS `code` (catalogue message).
    pub fn fail_next(&self, n: usize, status: u16, code: &str) {
        let mut st = self.lock();
        for _ in 0..n {
            st.fail_next.push_back((status, code.to_string()));
        }
    }

    /// While set, every API call fails with (status, code), e.g. `(503, "H192")`, `(429, "H124")`.
    pub fn set_outage(&self, outage: Option<(u16, String)>) {
        self.lock().outage = outage;
    }

    /// A citizen acting through İYS (e-Devlet, 3338 SMS, mobile app…): updates the record and
    /// the movement log without the HS rules, and pushes it to registered URLs.
    #[allow(clippy::too_many_arguments)]
    pub fn inject_citizen_action(
        &self,
        brand_code: i64,
        recipient: &str,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        status: Status,
        source: Source,
        citizen_name: Option<String>,
    ) -> Result<SimMovement, SimHookError> {
        if !self.config().brands.contains(&brand_code) {
            return Err(SimHookError::UnknownBrand(brand_code));
        }
        if source.is_hs() {
            return Err(SimHookError::NotIysSource(source));
        }
        let recipient = rules::check_recipient(recipient, Some(consent_type), false, "H160")
            .map_err(|e| {
                SimHookError::InvalidRecipient(
                    e.first().map(|i| i.code.clone()).unwrap_or_default(),
                )
            })?;
        let now = self.now();
        // Operator line closures carry no consent date (docs/iys-api-notes.md §3.7).
        let consent_date = (source != Source::IysAhsHatKapatma).then(|| state::whole_second(now));
        let c = ValidConsent {
            recipient,
            recipient_type,
            consent_type,
            status,
            source: Some(source),
            consent_date,
            retailer_code: None,
            retailer_access: None,
            canonical: String::new(),
        };
        let name = citizen_name.filter(|_| source == Source::IysWebYeni);
        let m = self.lock().commit(brand_code, &c, now, None, name);
        push::dispatch(self, &m);
        Ok(m)
    }

    /// Sets the stored record of one consent as if İYS had lost whatever came after it (or had
    /// a record the HS never sent): no movement is logged and nothing is pushed, so only the
    /// status queries see it, and v2 resends for the address are no longer recognised. For tests of an HS's own agreement checks.
    #[allow(clippy::too_many_arguments)]
    pub fn overwrite_record(
        &self,
        brand_code: i64,
        recipient: &str,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        status: Status,
        source: Source,
        consent_date: DateTime<Utc>,
    ) -> Result<(), SimHookError> {
        if !self.config().brands.contains(&brand_code) {
            return Err(SimHookError::UnknownBrand(brand_code));
        }
        let recipient = normalise(recipient);
        let now = state::whole_second(self.now());
        let mut st = self.lock();
        let b = st.brand(brand_code);
        // A lost movement is lost for v2's idempotency too: an identical resend is new again.
        b.v2_seen.retain(|canonical, _| {
            let v: serde_json::Value = serde_json::from_str(canonical).unwrap_or_default();
            let rt = v["recipientType"].as_str().unwrap_or("BIREYSEL");
            !(v["recipient"].as_str().map(normalise).as_deref() == Some(recipient.as_str())
                && v["type"].as_str() == Some(consent_type.as_str())
                && rt == recipient_type.as_str())
        });
        let key = (recipient.clone(), recipient_type, consent_type);
        let r = b.records.entry(key).or_insert_with(|| SimRecord {
            recipient: recipient.clone(),
            recipient_type,
            consent_type,
            status,
            consent_date: None,
            source: None,
            first_creation_date: now,
            creation_date: now,
            transaction_id: state::transaction_id(
                brand_code,
                &recipient,
                recipient_type,
                consent_type,
                now,
            ),
            retailer_code: None,
            origin: None,
        });
        r.status = status;
        r.source = Some(source);
        r.consent_date = Some(state::whole_second(consent_date));
        Ok(())
    }

    /// [`Simulator::record`] of an individual's MESAJ consent, the address most callers mean;
    /// only its status.
    pub fn mesaj_status(&self, brand_code: i64, recipient: &str) -> Option<Status> {
        self.record(
            brand_code,
            recipient,
            RecipientType::Bireysel,
            ConsentType::Mesaj,
        )
        .map(|r| r.status)
    }

    /// [`Simulator::inject_citizen_action`] on an individual's MESAJ consent, without a name.
    pub fn citizen_mesaj(
        &self,
        brand_code: i64,
        recipient: &str,
        status: Status,
        source: Source,
    ) -> Result<SimMovement, SimHookError> {
        let (rt, ct) = (RecipientType::Bireysel, ConsentType::Mesaj);
        self.inject_citizen_action(brand_code, recipient, rt, ct, status, source, None)
    }

    /// [`Simulator::overwrite_record`] on an individual's MESAJ consent.
    pub fn overwrite_mesaj(
        &self,
        brand_code: i64,
        recipient: &str,
        status: Status,
        source: Source,
        consent_date: DateTime<Utc>,
    ) -> Result<(), SimHookError> {
        let (rt, ct) = (RecipientType::Bireysel, ConsentType::Mesaj);
        self.overwrite_record(brand_code, recipient, rt, ct, status, source, consent_date)
    }

    /// Waits for pushes already started (tests call this instead of sleeping).
    pub async fn flush_pushes(&self) {
        let handles: Vec<_> = {
            let mut p = self.inner.pushes.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
        };
        for h in handles {
            let _ = h.await;
        }
    }
}

/// E-mails are stored lower-case (R12); phones as given.
fn normalise(recipient: &str) -> String {
    if recipient.contains('@') {
        recipient.to_ascii_lowercase()
    } else {
        recipient.to_string()
    }
}

/// Runs before every route: due batches, forced failures, the 10/s limit, and the request log.
async fn gate(AxState(sim): AxState<Simulator>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into());
    req.extensions_mut().insert(ClientIp(ip.clone()));
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    sim.process_due();
    let now = sim.now();
    let forced = {
        let mut st = sim.lock();
        let forced = st.fail_next.pop_front().or_else(|| st.outage.clone());
        // İYS counts 10/s per client IP, whatever token (or none) the call carries: several
        // tokens from one address share one budget.
        let limited = forced.is_none()
            && sim.config().rate_limits_enabled
            && !st.limiter.hit(Limit::PerSecond, &ip, now);
        forced.or_else(|| limited.then(|| (429, Limit::PerSecond.code().to_string())))
    };
    let resp = match forced {
        Some((status, code)) => ApiError::from_item(ErrorItem::new(&code))
            .with_status(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE))
            .into_response(),
        None => next.run(req).await,
    };
    let code = resp.extensions().get::<LoggedCode>().map(|c| c.0.clone());
    sim.lock().log.push(LoggedRequest {
        at: now,
        method,
        path,
        status: resp.status().as_u16(),
        code,
    });
    resp
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_query;
