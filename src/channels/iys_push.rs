//! The İYS push receiver: `POST /iys/push` with HTTP Basic auth (the credentials registered with
//! İYS). It must answer within 5 s, so it records with a deadline and otherwise answers 503 (İYS
//! or the pull loop brings the movement again; the ledger dedupes by transactionId). The fixed
//! registration test record is acknowledged and ignored. Production serves this over HTTPS
//! (İYS refuses http:// URLs, H531) through the TLS-terminating proxy in front of the service.

use crate::telemetry::chain;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;

use crate::domain::ProviderMessageId;
use crate::error::ApiError;
use crate::http::credentials::verify_basic;
use crate::iys::sync::movement_intent;
use crate::iys::wire::{PushItem, PushPayload};
use crate::state::AppState;

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

fn problem(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let mut r = ApiError::new(status, code, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"iys-push\""),
        );
    }
    r
}

/// The first item we would record whose transactionId is no usable dedupe key, as a reason. The
/// whole push is refused before anything is recorded, so the answer does not depend on where in
/// the list the bad item sits (nor on the backend).
fn bad_transaction_id(items: &[(usize, &PushItem)]) -> Option<String> {
    items.iter().find_map(|(i, item)| {
        ProviderMessageId::parse(item.movement.transaction_id.trim())
            .err()
            .map(|e| format!("list[{i}].transactionId {e}"))
    })
}

async fn receive(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let cfg = &st.config.iys.push;
    if !cfg.enabled {
        return problem(
            StatusCode::NOT_FOUND,
            "push_disabled",
            "the İYS push receiver is not enabled (iys.push.enabled)",
        );
    }
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !verify_basic(auth, &cfg.username, cfg.password.expose()) {
        crate::http::quarantine::refused_unauthenticated("/iys/push", "bad_credentials");
        return problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "HTTP Basic credentials registered with İYS are required",
        );
    }
    let payload: PushPayload = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid_push_payload",
                format!("the body is not an İYS push payload: {e}"),
            );
        }
    };
    let our_code = st.config.iys.iys_code;
    let ours: Vec<(usize, &PushItem)> = payload
        .list
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            item.iys_code == our_code
                && st.config.brand_by_code(item.brand_code).is_some()
                && !item.is_registration_test()
                && item.movement.is_iys()
        })
        .collect();
    if let Some(reason) = bad_transaction_id(&ours) {
        return problem(StatusCode::BAD_REQUEST, "invalid_transaction_id", reason);
    }
    let mut answer = PushAnswer {
        received: payload.list.len(),
        ignored: payload.list.len() - ours.len(),
        ..PushAnswer::default()
    };
    let now = st.ledger.clock().now();
    let work = async {
        for (_, item) in &ours {
            let Some(intent) = movement_intent(item.brand_code, &item.movement, now) else {
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
            tracing::error!(error = %chain(&e), "İYS push could not be recorded");
            ApiError::from(e).into_response()
        }
        Err(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the push could not be recorded in time; İYS or the pull loop brings it again",
        ),
    }
}
