//! Keeps authenticated requests we could not read, so nothing a provider sent is silently
//! dropped, within bounds: each body is capped, the total is capped (oldest dropped first) and
//! rows expire after the retention. Requests that did not authenticate are never stored: they
//! are logged (no body, no parameters) and counted, so a stranger cannot fill the database or
//! take SQLite's single writer from real webhooks.

use crate::config::QuarantineConfig;
use crate::telemetry::chain;
use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::domain::time::Clock;
use crate::state::AppState;
use crate::store::{QuarantineItem, Store, StoreError};

/// Keeps an authenticated request that could not be read. Callers reach this only after the
/// request's signature or credentials were verified.
pub async fn keep(
    st: &AppState,
    route: &str,
    reason: &str,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    body: &[u8],
) {
    let cfg = &st.config.quarantine;
    let item = QuarantineItem {
        received_at: st.ledger.clock().now(),
        route: route.to_string(),
        reason: reason.chars().take(500).collect(),
        content_type: headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
        ip: ip.map(|i| i.to_string()),
        body: body[..body.len().min(cfg.max_row_bytes)].to_vec(),
    };
    let total = i64::try_from(cfg.max_total_bytes).unwrap_or(i64::MAX);
    match st.ledger.store().quarantine(&item, total).await {
        Ok(kept) => {
            metrics::counter!("iys_relay_quarantined_total", "route" => route.to_string())
                .increment(1);
            if kept.dropped > 0 {
                metrics::counter!("iys_relay_quarantine_dropped_total", "reason" => "over_total_cap")
                    .increment(kept.dropped);
            }
            tracing::warn!(
                quarantine_id = kept.id,
                dropped = kept.dropped,
                route,
                reason,
                "request quarantined"
            );
        }
        Err(e) => {
            tracing::error!(error = %chain(&e), route, reason, "could not quarantine a refused request")
        }
    }
}

/// Counts and logs a request refused for missing or wrong authentication; nothing is stored.
/// The log line names the route and why, never the body or its parameters (phone numbers).
pub fn refused_unauthenticated(route: &str, reason: &'static str) {
    metrics::counter!(
        "iys_relay_unauthenticated_requests_total",
        "route" => route.to_string(),
        "reason" => reason
    )
    .increment(1);
    tracing::warn!(
        route,
        reason,
        "unauthenticated request refused; nothing stored"
    );
}

/// Drops quarantine rows older than the retention. The service runs it every
/// [`QuarantineExpiry::EVERY`]; tests call [`QuarantineExpiry::run_once`] with a manual clock.
pub struct QuarantineExpiry {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    retention: Duration,
}

impl QuarantineExpiry {
    pub const EVERY: std::time::Duration = std::time::Duration::from_secs(600);

    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, cfg: &QuarantineConfig) -> Self {
        let hours = i64::try_from(cfg.retention_hours).unwrap_or(i64::MAX / 3600);
        Self {
            store,
            clock,
            retention: Duration::hours(hours.max(1)),
        }
    }

    /// One expiry pass; returns how many rows were dropped.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let before = self.clock.now() - self.retention;
        let dropped = self.store.expire_quarantine(before).await?;
        if dropped > 0 {
            metrics::counter!("iys_relay_quarantine_dropped_total", "reason" => "expired")
                .increment(dropped);
            tracing::info!(dropped, "expired quarantine rows dropped");
        }
        Ok(dropped)
    }

    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %chain(&e), "quarantine expiry failed; retrying next round");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Self::EVERY) => {}
                }
            }
        })
    }
}
