//! The İYS push receiver: `POST /iys/push` with HTTP Basic auth (the credentials registered with
//! İYS). It must answer within 5 s, so it records with a deadline and otherwise answers 503 (İYS
//! or the pull loop brings the movement again; the ledger dedupes by transactionId). The fixed
//! registration test record is acknowledged and ignored. Production serves this over HTTPS
//! (İYS refuses http:// URLs, H531) through the TLS-terminating proxy in front of the service.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;

use super::sync::movement_intent;
use super::wire::PushPayload;
use crate::app::AppState;
use crate::channels::sms::generic::verify_basic;

/// Leaves a margin under İYS's 5 s.
const ANSWER_WITHIN: Duration = Duration::from_secs(4);

pub fn routes() -> Router<AppState> {
    Router::new().route("/iys/push", post(receive))
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct PushAnswer {
    pub received: usize,
    pub recorded: usize,
    pub duplicates: usize,
    pub ignored: usize,
}

fn problem(status: StatusCode, code: &str) -> Response {
    let mut r = (status, Json(serde_json::json!({ "code": code }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"iys-push\""),
        );
    }
    r
}

async fn receive(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let cfg = &st.config.iys.push;
    if !cfg.enabled {
        return problem(StatusCode::NOT_FOUND, "push_disabled");
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify_basic(auth, &cfg.username, cfg.password.expose()) {
        return problem(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let payload: PushPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(_) => return problem(StatusCode::BAD_REQUEST, "invalid_push_payload"),
    };
    let mut answer = PushAnswer {
        received: payload.list.len(),
        ..PushAnswer::default()
    };
    let our_code = st.config.iys.iys_code;
    let work = async {
        for item in &payload.list {
            let ours =
                item.iys_code == our_code && st.config.brand_by_code(item.brand_code).is_some();
            let intent = (ours && !item.is_registration_test())
                .then(|| movement_intent(item.brand_code, &item.movement))
                .flatten();
            let Some(intent) = intent else {
                answer.ignored += 1;
                continue;
            };
            match st.ledger.record(intent).await {
                Ok(o) if o.duplicate => answer.duplicates += 1,
                Ok(_) => answer.recorded += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    let outcome = tokio::time::timeout(ANSWER_WITHIN, work).await;
    match outcome {
        Ok(Ok(())) => (StatusCode::OK, Json(answer)).into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "İYS push could not be recorded");
            problem(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable")
        }
        Err(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "timeout"),
    }
}
