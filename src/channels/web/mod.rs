//! Web channel: short opt-out links.
//!
//! A campaign mints one link per recipient (`POST /v1/links`, `/v1/links/bulk`) and puts it in
//! the SMS text or the e-mail's `List-Unsubscribe` header. Opening the link (`GET /r/{code}`)
//! shows a confirmation page and changes nothing; pressing its one button, or a mail client's
//! RFC 8058 one-click POST to the same URL, records a RET (source HS_WEB) through the ledger.

pub mod api;
pub mod code;
pub mod config;
pub mod form;
pub mod page;
pub mod templates;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;

pub use config::LinksConfig;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/links", post(api::mint))
        .route(
            "/v1/links/bulk",
            post(api::mint_bulk).layer(DefaultBodyLimit::max(api::BULK_BODY_LIMIT)),
        )
        .route("/r/{code}", get(page::show).post(page::submit))
}
