//! Liveness and readiness probes.

use crate::telemetry::chain;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::app::AppState;

/// The process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
pub async fn readyz(State(st): State<AppState>) -> (StatusCode, Json<Value>) {
    match st.ledger.store().readiness().await {
        Ok(r) if r.is_ready() => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": r})),
        ),
        Ok(r) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "migrations_pending", "database": r})),
        ),
        Err(e) => {
            tracing::warn!(error = %chain(&e), "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database_unreachable"})),
            )
        }
    }
}
