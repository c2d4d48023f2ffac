//! HTTP client for the İYS HS API (docs/iys-api-notes.md §1, §3).
//!
//! It makes exactly one HTTP attempt per call, plus one retry after a 401 with a fresh token; all
//! other retries belong to the caller, guided by [`IysError::class`]. Every HTTP attempt (token
//! requests included) is reported to the optional [`CallObserver`].

use crate::telemetry::chain;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::errors::{ErrorItem, IysError, IysErrorKind, lookup, parse_error_body};
pub use super::observer::{CallObserver, CallRecord, RecordingObserver};
use super::token::TokenState;
use super::wire::{
    AddConsentResponse, BatchAccepted, ConsentRequest, FileRow, MultiStatusRequest,
    MultiStatusResponse, PollItem, PullPage, StatusRequest, StatusResponse, TokenRequest,
    TokenResponse,
};
use crate::domain::time::Clock;
use crate::domain::{ConsentType, Recipient, RecipientType};

/// İYS's per-request ceilings for batch adds, multi-status lists and pull pages.
pub const MAX_BATCH: usize = 1000;

#[derive(Clone)]
pub struct IysClientConfig {
    /// `https://api.iys.org.tr`, the sandbox, or a simulator; a path prefix is kept.
    pub base_url: String,
    pub username: String,
    pub password: String,
    pub iys_code: i64,
    /// Whole-request timeout for every HTTP attempt.
    pub timeout: Duration,
}

impl fmt::Debug for IysClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IysClientConfig")
            .field("base_url", &self.base_url)
            .field("username", &self.username)
            .field("iys_code", &self.iys_code)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// `source` of the pull endpoint: our own `HS_*` movements or the citizens' `IYS_*` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullSource {
    Hs,
    Iys,
}

impl PullSource {
    pub fn as_str(self) -> &'static str {
        match self {
            PullSource::Hs => "HS",
            PullSource::Iys => "IYS",
        }
    }
}

/// A response of any status, before it is judged.
struct Raw {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl Raw {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
    fn is_empty(&self) -> bool {
        let t = self.body.trim_ascii();
        self.status == 204 || t.is_empty() || t == b"{}" || t == b"null"
    }
    fn into_error(self) -> IysError {
        IysError::http(self.status, &self.body, self.retry_after)
    }
    fn json<T: DeserializeOwned>(self) -> Result<T, IysError> {
        if !self.is_success() {
            return Err(self.into_error());
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            IysError::other(IysErrorKind::Decode, format!("HTTP {}: {e}", self.status))
        })
    }
}

pub struct IysClient {
    http: reqwest::Client,
    cfg: IysClientConfig,
    clock: Arc<dyn Clock>,
    token: Mutex<TokenState>,
    observer: Option<Arc<dyn CallObserver>>,
}

fn invalid(detail: impl Into<String>) -> IysError {
    IysError::other(IysErrorKind::InvalidRequest, detail)
}

impl IysClient {
    pub fn new(cfg: IysClientConfig, clock: Arc<dyn Clock>) -> Result<Self, IysError> {
        url::Url::parse(&cfg.base_url).map_err(|e| invalid(format!("base_url: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| IysError::other(IysErrorKind::Network, chain(&e).to_string()))?;
        Ok(Self {
            http,
            cfg,
            clock,
            token: Mutex::new(TokenState::default()),
            observer: None,
        })
    }

    pub fn with_observer(mut self, observer: Arc<dyn CallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn brand_path(&self, v2: bool, brand_code: i64, rest: &str) -> String {
        let prefix = if v2 { "/v2" } else { "" };
        format!(
            "{prefix}/sps/{}/brands/{brand_code}{rest}",
            self.cfg.iys_code
        )
    }

    /// `POST /v2{B}/consents`: written at once; an identical resend returns the same id.
    pub async fn add_consent_v2(
        &self,
        brand_code: i64,
        consent: &ConsentRequest,
    ) -> Result<AddConsentResponse, IysError> {
        let path = self.brand_path(true, brand_code, "/consents");
        self.call("add_consent_v2", Method::POST, &path, &[], Some(consent))
            .await?
            .json()
    }

    /// `POST /v2{B}/consents/request`: 1–1000 consents, at most one per
    /// (recipientType, type, recipient). A 202 means accepted, not written: poll later.
    pub async fn add_batch_v2(
        &self,
        brand_code: i64,
        consents: &[ConsentRequest],
    ) -> Result<BatchAccepted, IysError> {
        if consents.is_empty() || consents.len() > MAX_BATCH {
            return Err(invalid(format!(
                "batch must hold 1..={MAX_BATCH} consents, got {}",
                consents.len()
            )));
        }
        let mut seen = HashSet::with_capacity(consents.len());
        for (i, c) in consents.iter().enumerate() {
            let key = (c.recipient_type, c.consent_type, c.recipient.to_lowercase());
            if !seen.insert(key) {
                return Err(invalid(format!(
                    "item {i} repeats an earlier address (H194)"
                )));
            }
        }
        let path = self.brand_path(true, brand_code, "/consents/request");
        self.call("add_batch_v2", Method::POST, &path, &[], Some(consents))
            .await?
            .json()
    }

    /// `GET /v2{B}/consents/request/{requestId}`. An empty list means "not processed yet".
    pub async fn poll_batch_v2(
        &self,
        brand_code: i64,
        request_id: &str,
    ) -> Result<Vec<PollItem>, IysError> {
        let ok = !request_id.is_empty()
            && request_id.len() <= 36
            && request_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(invalid("requestId must be 1-36 letters, digits or '-'"));
        }
        let path = self.brand_path(true, brand_code, &format!("/consents/request/{request_id}"));
        let raw = self
            .call("poll_batch_v2", Method::GET, &path, &[], None::<&()>)
            .await?;
        if raw.is_success() && raw.is_empty() {
            return Ok(Vec::new());
        }
        raw.json()
    }

    /// `POST {B}/consents/status`. `None` when İYS has no record (404, 204 or an empty 200,
    /// docs/iys-api-notes.md §3.4); a 404 naming the HS, brand or retailer is still an error.
    pub async fn consent_status(
        &self,
        brand_code: i64,
        recipient: &Recipient,
        recipient_type: RecipientType,
        consent_type: ConsentType,
    ) -> Result<Option<StatusResponse>, IysError> {
        let body = StatusRequest {
            recipient: recipient.as_str().to_string(),
            recipient_type,
            consent_type,
        };
        let path = self.brand_path(false, brand_code, "/consents/status");
        let raw = self
            .call("consent_status", Method::POST, &path, &[], Some(&body))
            .await?;
        if raw.status == 404 {
            let items = parse_error_body(&raw.body);
            let scope_missing = items
                .iter()
                .any(|e| matches!(e.code.as_deref(), Some("H001" | "H018" | "H058")));
            return if scope_missing {
                Err(raw.into_error())
            } else {
                Ok(None)
            };
        }
        if raw.is_success() && raw.is_empty() {
            return Ok(None);
        }
        raw.json().map(Some)
    }

    /// `POST {B}/consents/{recipientType}/status/{type}`: returns the addresses that are ONAY.
    /// Duplicates are sent once (H193); an empty list costs no call.
    pub async fn multi_status(
        &self,
        brand_code: i64,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        recipients: &[String],
    ) -> Result<Vec<String>, IysError> {
        let mut seen = HashSet::new();
        let unique: Vec<String> = recipients
            .iter()
            .filter(|r| seen.insert(r.as_str()))
            .cloned()
            .collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        if unique.len() > MAX_BATCH {
            return Err(invalid(format!(
                "at most {MAX_BATCH} recipients per status query, got {}",
                unique.len()
            )));
        }
        let rest = format!("/consents/{recipient_type}/status/{consent_type}");
        let path = self.brand_path(false, brand_code, &rest);
        let body = MultiStatusRequest { recipients: unique };
        let resp: MultiStatusResponse = self
            .call("multi_status", Method::POST, &path, &[], Some(&body))
            .await?
            .json()?;
        Ok(resp.list)
    }

    /// `GET {B}/consents/changes`. `None` on 204 (nothing new: keep the previous `after`).
    /// `limit` is clamped to İYS's 1..=1000.
    pub async fn pull_changes(
        &self,
        brand_code: i64,
        source: PullSource,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Option<PullPage>, IysError> {
        let path = self.brand_path(false, brand_code, "/consents/changes");
        let limit = limit.clamp(1, MAX_BATCH as u32).to_string();
        let mut query = vec![("source", source.as_str()), ("limit", limit.as_str())];
        if let Some(a) = after.filter(|a| !a.is_empty()) {
            query.push(("after", a));
        }
        let raw = self
            .call("pull_changes", Method::GET, &path, &query, None::<&()>)
            .await?;
        if raw.is_success() && raw.is_empty() {
            return Ok(None);
        }
        raw.json().map(Some)
    }

    /// `GET {B}/changes/{reportDate}/file`: every movement İYS stored on that (Istanbul) day,
    /// ours and the citizens'. Only the last 7 days exist (H502). 204 or an empty body → empty.
    pub async fn changes_file(
        &self,
        brand_code: i64,
        report_date: chrono::NaiveDate,
    ) -> Result<Vec<FileRow>, IysError> {
        let rest = format!("/changes/{}/file", report_date.format("%Y-%m-%d"));
        let path = self.brand_path(false, brand_code, &rest);
        let raw = self
            .call("changes_file", Method::GET, &path, &[], None::<&()>)
            .await?;
        if !raw.is_success() {
            return Err(raw.into_error());
        }
        if raw.status == 204 {
            return Ok(Vec::new());
        }
        super::wire::parse_changes_file(&raw.body)
            .map_err(|e| IysError::other(IysErrorKind::Decode, format!("HTTP {}: {e}", raw.status)))
    }

    /// Whether a call made now would first request a token. Callers that pace requests give
    /// that request its own slot: İYS counts token requests in its 10/s too.
    pub async fn needs_token(&self) -> bool {
        self.token
            .lock()
            .await
            .usable_access(self.clock.now())
            .is_none()
    }

    /// Fetches (or refreshes) the token now unless a usable one is cached.
    pub async fn ensure_token(&self) -> Result<(), IysError> {
        self.access_token(None).await.map(|_| ())
    }

    /// An authenticated call with one retry after a 401, using a token fetched for the retry.
    async fn call<B: Serialize + ?Sized>(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<Raw, IysError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| invalid(format!("cannot encode body: {e}")))?;
        let token = self.access_token(None).await?;
        let raw = self
            .send(op, method.clone(), path, query, body.clone(), Some(&token))
            .await?;
        if raw.status != StatusCode::UNAUTHORIZED.as_u16() {
            return Ok(raw);
        }
        let fresh = self.access_token(Some(&token)).await?;
        self.send(op, method, path, query, body, Some(&fresh)).await
    }

    /// The cached access token, or a new one. The mutex is held across the token request, so
    /// concurrent callers wait for one fetch instead of each making their own.
    async fn access_token(&self, rejected: Option<&str>) -> Result<String, IysError> {
        let mut st = self.token.lock().await;
        if let Some(r) = rejected {
            st.invalidate_access(r);
        }
        let now = self.clock.now();
        if let Some(t) = st.usable_access(now) {
            return Ok(t.to_string());
        }
        if let Some(left) = st.lockout_remaining(now) {
            let mut e = IysError::other(
                IysErrorKind::TokenLockout,
                "token requests paused after H084",
            );
            let msg = lookup("H084").map_or("", |c| c.message);
            e.errors.push(ErrorItem::new("H084", msg));
            e.retry_after = left.to_std().ok();
            return Err(e);
        }
        if let Some(refresh_token) = st.usable_refresh(now).map(str::to_string) {
            match self
                .fetch_token(TokenRequest::RefreshToken { refresh_token })
                .await
            {
                Ok(r) => return Ok(self.keep(&mut st, r)),
                Err(e) if e.code() == Some("H084") => {
                    st.lock_out(self.clock.now(), e.retry_after);
                    return Err(e);
                }
                // A refused refresh token is spent; a network failure may be brief, keep it.
                Err(e) if e.kind == IysErrorKind::Http => st.drop_refresh(),
                Err(_) => {}
            }
        }
        let password = TokenRequest::Password {
            username: self.cfg.username.clone(),
            password: self.cfg.password.clone(),
        };
        match self.fetch_token(password).await {
            Ok(r) => Ok(self.keep(&mut st, r)),
            Err(e) => {
                if e.code() == Some("H084") {
                    st.lock_out(self.clock.now(), e.retry_after);
                }
                Err(e)
            }
        }
    }

    fn keep(&self, st: &mut TokenState, r: TokenResponse) -> String {
        let access = r.access_token.clone();
        st.store(r, self.clock.now());
        access
    }

    async fn fetch_token(&self, req: TokenRequest) -> Result<TokenResponse, IysError> {
        let body = serde_json::to_vec(&req).map_err(|e| invalid(e.to_string()))?;
        let raw = self
            .send(
                "token",
                Method::POST,
                "/oauth2/token",
                &[],
                Some(body),
                None,
            )
            .await?;
        raw.json()
    }

    /// One HTTP attempt, reported to the observer whatever the outcome.
    async fn send(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        bearer: Option<&str>,
    ) -> Result<Raw, IysError> {
        let mut url = url::Url::parse(&format!(
            "{}{path}",
            self.cfg.base_url.trim_end_matches('/')
        ))
        .map_err(|e| invalid(format!("url: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(header::ACCEPT, "application/json");
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header(header::CONTENT_TYPE, "application/json").body(b);
        }
        let started_at = self.clock.now();
        let t0 = Instant::now();
        let result = match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match resp.bytes().await {
                    Ok(b) => Ok(Raw {
                        status,
                        body: b.to_vec(),
                        retry_after,
                    }),
                    Err(e) => Err(transport_error(e)),
                }
            }
            Err(e) => Err(transport_error(e)),
        };
        let (status, code) = match &result {
            Ok(raw) if raw.is_success() => (Some(raw.status), None),
            Ok(raw) => {
                let code = parse_error_body(&raw.body).into_iter().find_map(|e| e.code);
                (Some(raw.status), code)
            }
            Err(e) => (
                None,
                Some(
                    if e.kind == IysErrorKind::Timeout {
                        "TIMEOUT"
                    } else {
                        "NETWORK"
                    }
                    .to_string(),
                ),
            ),
        };
        let record = CallRecord {
            operation: op,
            method: method_name(&method),
            path: path.to_string(),
            status,
            code,
            duration: t0.elapsed(),
            started_at,
        };
        tracing::debug!(
            op, method = record.method, path, status = ?record.status, code = ?record.code,
            ms = record.duration.as_millis() as u64, "iys call"
        );
        if let Some(o) = &self.observer {
            o.on_call(&record);
        }
        result
    }
}

fn transport_error(e: reqwest::Error) -> IysError {
    let kind = if e.is_timeout() {
        IysErrorKind::Timeout
    } else {
        IysErrorKind::Network
    };
    // Without the URL: it holds nothing secret, but the detail stays short. With the causes:
    // "error sending request" alone does not say refused, reset or TLS.
    IysError::other(kind, chain(&e.without_url()).to_string())
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}
