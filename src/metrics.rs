//! Prometheus metrics at `/metrics` (the `metrics` facade with the Prometheus exporter).
//!
//! Counters are incremented where things happen; queue and audit gauges are read from the store
//! at scrape time, so every replica reports the shared state and no background job is needed.

use crate::telemetry::chain;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the global recorder once per process (tests start many apps in one process).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Sizes (events a group commit carries, writes a SQLite commit holds) are counts,
            // not seconds: buckets of their own.
            let sizes = [
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ];
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_group_commit_size".into()), &sizes)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_writes_per_commit".into()), &sizes)
                })
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %chain(&e), "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

/// Counts requests by route (the matched pattern, never the raw path with a phone number in it),
/// method and status, and times them.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("iys_relay_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("iys_relay_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`: refreshes the queue gauges from the store, then renders.
pub async fn scrape(State(st): State<AppState>) -> Response {
    let Some(handle) = install() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable",
        )
            .into_response();
    };
    match st.ledger.store().queue_summary(1).await {
        Ok(q) => {
            let now = st.ledger.clock().now();
            for state in crate::store::JobState::ALL {
                let n = q
                    .by_state
                    .iter()
                    .find(|(s, _)| s == state.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("iys_relay_report_jobs", "state" => state.as_str()).set(n as f64);
            }
            let oldest = q
                .oldest_open_created_at
                .map_or(0.0, |t| (now - t).num_milliseconds() as f64 / 1000.0);
            metrics::gauge!("iys_relay_report_oldest_open_age_seconds").set(oldest.max(0.0));
            // Seconds until the nearest legal deadline of an open job (negative once passed).
            if let Some(j) = q.nearest.first() {
                metrics::gauge!("iys_relay_report_nearest_deadline_seconds")
                    .set((j.deadline_at - now).num_milliseconds() as f64 / 1000.0);
            }
            metrics::gauge!("iys_relay_calendar_days_left")
                .set(st.ledger.calendar().days_of_coverage_left(now.date_naive()) as f64);
        }
        Err(e) => tracing::warn!(error = %chain(&e), "metrics: queue summary unavailable"),
    }
    // The audit's shared row: 0 means no full sweep has finished yet.
    match st.ledger.store().audit_progress().await {
        Ok(p) => {
            metrics::gauge!("iys_relay_audit_last_full_sweep_timestamp_seconds")
                .set(p.sweep_finished_at.map_or(0.0, |t| t.timestamp() as f64));
            metrics::gauge!("iys_relay_audit_divergent_addresses").set(p.sweep_divergent as f64);
        }
        Err(e) => tracing::warn!(error = %chain(&e), "metrics: audit progress unavailable"),
    }
    handle.run_upkeep();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        handle.render(),
    )
        .into_response()
}
