//! The HTTP edge: routes, authentication, error mapping. Handlers parse, call one service
//! function and map the result.

pub mod auth;
pub mod consents;
pub mod credentials;
pub mod health;
pub mod json;
pub mod lang;
pub mod openapi;
pub mod page;
pub mod quarantine;
pub mod ratelimit;
pub mod request_id;
pub mod request_meta;
pub mod uniform;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(openapi::document))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(crate::metrics::scrape))
        .route("/v1/consents/check", post(consents::check))
        .route("/v1/consents/{recipient}", get(consents::lookup))
        .merge(crate::channels::sms::routes())
        .merge(crate::channels::voice::routes())
        .merge(crate::channels::web::routes())
        .merge(crate::channels::iys_push::routes())
        .merge(crate::console::routes())
        // Layers wrap every route above and the fallback: keep them last. Inside the request id
        // and its span, the error shape is outermost: it also answers the header limit, before
        // any route runs, and its body carries the id.
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(uniform::uniform_errors));
    request_id::wrap(routes).with_state(state)
}
