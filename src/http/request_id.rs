//! One id per request, the same everywhere it shows: the `X-Request-Id` response header, the
//! `request_id` of the error body, and every log line written while the request is handled.
//!
//! A caller's own `X-Request-Id` is kept when it is short visible ASCII, so a CRM can follow its
//! call into our logs; anything else is replaced, because the id is copied into log lines and a
//! hostile one could forge or break them. A fresh id is a UUID v7 (time-ordered, so ids sort
//! roughly by arrival in the logs).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Response};
use axum::middleware::{Next, from_fn};
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub const HEADER: &str = "x-request-id";

/// The longest caller-chosen id kept (a UUID is 36 characters).
pub const MAX_CALLER_ID: usize = 64;

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled, when called inside one.
///
/// A task-local rather than a response extension: `ApiError` is turned into its body deep in
/// the handler, with no access to the request, and a task-local set around the handler reaches
/// it without rewriting bodies afterwards. Work a handler spawns onto another task is outside
/// it, as it is outside the request's span.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Whether a caller's id can go into our logs unchanged: 1 to [`MAX_CALLER_ID`] visible ASCII
/// characters (no spaces, no control characters, no quotes that could end a log field).
pub fn acceptable(value: &[u8]) -> bool {
    (1..=MAX_CALLER_ID).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'))
}

#[derive(Clone, Copy, Default)]
struct UuidV7;

impl MakeRequestId for UuidV7 {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Uuid::now_v7().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Removes the caller's `X-Request-Id` unless it is exactly one acceptable value, so that the
/// set layer after it generates one.
async fn drop_unacceptable(mut req: Request, next: Next) -> axum::response::Response {
    let name = HEADER;
    let mut given = req.headers().get_all(name).iter();
    let keep = matches!((given.next(), given.next()), (Some(v), None) if acceptable(v.as_bytes()));
    if !keep {
        req.headers_mut().remove(name);
    }
    next.run(req).await
}

/// Makes the id [`current`] for everything the inner layers and the handler run.
async fn scope(req: Request, next: Next) -> axum::response::Response {
    match id_of(&req) {
        Some(id) => CURRENT.scope(id, next.run(req)).await,
        None => next.run(req).await,
    }
}

fn id_of<B>(req: &axum::http::Request<B>) -> Option<String> {
    req.extensions()
        .get::<RequestId>()
        .and_then(|r| r.header_value().to_str().ok())
        .map(str::to_owned)
}

/// The request's span: its id, method and route pattern (never the raw path, which can hold a
/// phone number, nor the query string).
///
/// ERROR is the span's enablement level, not a severity: a span at a lower level is switched
/// off by a filter such as `warn`, and the warnings written inside it would lose the id.
fn make_span<B>(req: &axum::http::Request<B>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::error_span!(
        "request",
        request_id = %id_of(req).as_deref().unwrap_or(""),
        method = %req.method(),
        route = %route,
    )
}

/// One line per answer: refusals and failures where an operator looks, successes at debug so
/// the hot path does not write a line per webhook by default.
///
/// Status and latency are the line's own fields, not the span's: the JSON log format writes a
/// span's fields out again each time one is recorded (7 % of the server's CPU under lookups),
/// and at the default filter a success writes no line at all.
fn on_response<B>(resp: &Response<B>, latency: Duration, _span: &Span) {
    let code = resp.status();
    let (status, latency_ms) = (code.as_u16(), latency.as_millis() as u64);
    if code.is_server_error() {
        tracing::warn!(status, latency_ms, "answered");
    } else if code.is_client_error() {
        tracing::info!(status, latency_ms, "answered");
    } else {
        tracing::debug!(status, latency_ms, "answered");
    }
}

/// Wraps every route of `router` (and its fallback) in the id and trace layers, outermost
/// first: drop an unacceptable caller id, set one, echo it in the answer, open the span, make
/// the id current.
pub fn wrap<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(
        ServiceBuilder::new()
            .layer(from_fn(drop_unacceptable))
            .layer(SetRequestIdLayer::new(
                HeaderName::from_static(HEADER),
                UuidV7,
            ))
            .layer(PropagateRequestIdLayer::new(HeaderName::from_static(
                HEADER,
            )))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(make_span::<Body>)
                    .on_request(())
                    .on_response(on_response::<Body>)
                    .on_body_chunk(())
                    .on_eos(())
                    .on_failure(()),
            )
            .layer(from_fn(scope)),
    )
}
