//! Liveness and readiness probes.

use crate::telemetry::chain;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::state::AppState;

/// The process is up.
#[utoipa::path(
    get, path = "/healthz", tag = "health",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "alive", body = Object))
)]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(
    get, path = "/readyz", tag = "health",
    summary = "Readiness: the database answers and every migration is applied",
    responses(
        (status = 200, description = "ready", body = Object),
        (status = 503, description = "not ready (database or migrations)", body = Object)
    )
)]
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
