//! Keeps requests we could not accept, so nothing a provider sent is silently dropped.

use axum::http::HeaderMap;

use crate::app::AppState;
use crate::store::QuarantineItem;

/// Bodies larger than this are kept truncated (the request was refused for its size anyway).
pub const MAX_KEPT_BYTES: usize = 64 * 1024;

pub async fn keep(
    st: &AppState,
    route: &str,
    reason: &str,
    headers: &HeaderMap,
    ip: Option<std::net::IpAddr>,
    body: &[u8],
) {
    let item = QuarantineItem {
        received_at: st.ledger.clock().now(),
        route: route.to_string(),
        reason: reason.chars().take(500).collect(),
        content_type: headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ip: ip.map(|i| i.to_string()),
        body: body[..body.len().min(MAX_KEPT_BYTES)].to_vec(),
    };
    match st.ledger.store().quarantine(&item).await {
        Ok(id) => {
            metrics::counter!("iys_relay_quarantined_total", "route" => route.to_string())
                .increment(1);
            tracing::warn!(quarantine_id = id, route, reason, "request quarantined");
        }
        Err(e) => {
            tracing::error!(error = %e, route, reason, "could not quarantine a refused request")
        }
    }
}
