//! `POST /webhooks/sms/{name}[/{token}]`: a configured provider's push, parsed by its adapter.
//! Answers 200 with one result per item (a bad item has its own 4xx status inside), so the
//! provider does not re-send a batch for one bad message; 503 only when nothing could be stored.

use crate::telemetry::chain;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::intake::{Origin, admit, intake, within_body_limit};
use super::providers;
use crate::error::ApiError;
use crate::http::quarantine;
use crate::http::request_meta::Peer;
use crate::state::AppState;

const ROUTE: &str = "/webhooks/sms";

#[utoipa::path(
    post, path = "/webhooks/sms/{name}", tag = "webhooks",
    summary = "A configured provider's inbound SMS push (Netgsm, Verimor, İleti Merkezi, generic), in its own format",
    params(("name" = String, Path, description = "the [[sms.providers]] name")),
    request_body(content = Object, description = "the provider's own push body (JSON or form)"),
    responses(
        (status = 200, description = "one result per item (a bad item carries its own 4xx status)", body = Object),
        (status = 400, description = "malformed request, unknown or missing brand", body = crate::error::ErrorBody),
        (status = 401, description = "missing or wrong credentials", body = crate::error::ErrorBody),
        (status = 403, description = "credentials refused", body = crate::error::ErrorBody),
        (status = 404, description = "no such provider", body = crate::error::ErrorBody),
        (status = 413, description = "body too large", body = crate::error::ErrorBody),
        (status = 429, description = "rate limit; see Retry-After", body = crate::error::ErrorBody),
        (status = 503, description = "storage or a dependency is unavailable; retry", body = crate::error::ErrorBody)
    )
)]
pub async fn push(
    State(st): State<AppState>,
    Path(name): Path<String>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(st, name, None, peer, headers, body).await
}

pub async fn push_with_token(
    State(st): State<AppState>,
    Path((name, token)): Path<(String, String)>,
    peer: Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(st, name, Some(token), peer, headers, body).await
}

async fn handle(
    st: AppState,
    name: String,
    token: Option<String>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let route = format!("{ROUTE}/{name}");
    let (ip, body) = match admit(&st, &headers, peer, body).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(provider) = st.sms.providers.get(&name).cloned() else {
        return ApiError::not_found("no SMS provider with this name is configured").into_response();
    };
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let signature = h("x-signature").or_else(|| h("x-hub-signature-256"));
    if let Err(e) = provider.authenticate_push(
        token.as_deref(),
        ip,
        h(header::AUTHORIZATION.as_str()),
        signature,
        &body,
    ) {
        quarantine::refused_unauthenticated(&route, e.code);
        return e.into_response();
    }
    if let Err(r) = within_body_limit(&st, &route, &headers, ip, &body).await {
        return r;
    }
    let items = match providers::parse_push(
        provider.config.kind,
        h(header::CONTENT_TYPE.as_str()),
        &body,
    ) {
        Ok(items) => items,
        Err(e) => {
            quarantine::keep(&st, &route, &e.to_string(), &headers, ip, &body).await;
            return ApiError::bad_request("malformed_payload", e.to_string()).into_response();
        }
    };
    let origin = Origin::Push {
        route: &route,
        headers: &headers,
        ip,
        user_agent: h(header::USER_AGENT.as_str()).map(str::to_string),
    };
    let p = provider.clone();
    match intake(&st, &name, &move |to: &str| p.serves(to), items, &origin).await {
        Ok(results) => {
            Json(serde_json::json!({ "provider": name, "results": results })).into_response()
        }
        Err(e) => ApiError::unavailable(chain(&e).to_string()).into_response(),
    }
}
