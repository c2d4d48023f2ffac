//! Outbound clients: the providers' send and inbox APIs.

pub mod iletimerkezi;
pub mod netgsm;
pub mod twilio;
pub mod verimor;

use crate::telemetry::chain;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::channels::sms::config::{ProviderConfig, ProviderKind};

/// How a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiFailure {
    /// Network trouble, 5xx, 429: worth another try later.
    #[error("provider unavailable: {0}")]
    Retryable(String),
    /// Understood and refused (credentials, validation): another try would fail the same way.
    #[error("provider refused: {0}")]
    Permanent(String),
    /// Refused because the person opted out at the provider (Twilio 21610): opt-out evidence.
    #[error("recipient opted out at the provider: {0}")]
    OptedOut(String),
}

/// What one inbox query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxQuery {
    /// Received in `[from, to]`.
    Between(DateTime<Utc>, DateTime<Utc>),
    /// Message ids above this one (one page).
    After(i64),
    /// Whatever the inbox returns (providers without parameters).
    All,
}

/// A provider's API as the pollers and the reply worker use it.
#[async_trait]
pub trait SmsApi: Send + Sync {
    /// Sends one SMS from `from` (sender header) to `to` (E.164); returns the provider's id.
    async fn send(&self, from: &str, to: &str, text: &str) -> Result<String, ApiFailure>;

    /// One inbox query; the items in the provider's own shape (the adapter parses them).
    async fn inbox(&self, query: &InboxQuery) -> Result<Vec<serde_json::Value>, ApiFailure>;
}

/// An API address with one pair of credentials, as the Turkish providers use.
pub(crate) struct Account {
    pub http: reqwest::Client,
    pub base: String,
    pub user: String,
    pub secret: String,
}

impl Account {
    pub fn new(base: &str, user: &str, secret: &str) -> Result<Self, ApiFailure> {
        Ok(Self {
            http: http_client()?,
            base: base.to_string(),
            user: user.to_string(),
            secret: secret.to_string(),
        })
    }
}

pub(crate) fn http_client() -> Result<reqwest::Client, ApiFailure> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| ApiFailure::Permanent(format!("HTTP client: {}", chain(&e))))
}

/// A request error: connection failures never reached the provider, so they are retryable;
/// so are timeouts of reads (a send that timed out may be retried once, at worst a duplicate
/// confirmation, never a lost one).
pub(crate) fn transport(e: reqwest::Error) -> ApiFailure {
    ApiFailure::Retryable(chain(&e.without_url()).to_string())
}

/// Classifies an HTTP status that is not a success.
pub(crate) fn status_failure(status: reqwest::StatusCode, detail: &str) -> ApiFailure {
    let detail: String = crate::domain::mask::text(detail)
        .chars()
        .take(200)
        .collect();
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        ApiFailure::Retryable(format!("HTTP {}: {detail}", status.as_u16()))
    } else {
        ApiFailure::Permanent(format!("HTTP {}: {detail}", status.as_u16()))
    }
}

/// The API client of a configured provider; `None` without API credentials.
pub fn client_for(c: &ProviderConfig) -> Result<Option<Arc<dyn SmsApi>>, ApiFailure> {
    let Some((user, secret)) = c.api_credentials() else {
        return Ok(None);
    };
    let base = |default: &str| {
        c.api_base_url
            .clone()
            .unwrap_or_else(|| default.to_string())
            .trim_end_matches('/')
            .to_string()
    };
    Ok(Some(match c.kind {
        ProviderKind::Netgsm => Arc::new(netgsm::NetgsmApi::new(
            &base(netgsm::BASE_URL),
            user,
            secret,
        )?),
        ProviderKind::Verimor => Arc::new(verimor::VerimorApi::new(
            &base(verimor::BASE_URL),
            user,
            secret,
        )?),
        ProviderKind::Iletimerkezi => Arc::new(iletimerkezi::IletiMerkeziApi::new(
            &base(iletimerkezi::BASE_URL),
            user,
            secret,
        )?),
        ProviderKind::Generic => return Ok(None),
    }))
}
