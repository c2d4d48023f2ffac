//! SMS channel: inbound keyword opt-out / opt-in on numbers and short codes.

pub mod channel;
pub mod config;
pub mod generic;
pub mod inbound;
pub mod intake;
pub mod poller;
pub mod providers;
pub mod push;
pub mod replies;
pub mod replies_outbox;
pub mod routing;
pub mod signature;
pub mod webhooks;

use axum::Router;
use axum::routing::post;

use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/webhooks/twilio/sms",
            post(webhooks::twilio).get(webhooks::twilio),
        )
        .route("/webhooks/generic/sms", post(webhooks::generic))
        .route("/webhooks/sms/{name}", post(push::push))
        .route("/webhooks/sms/{name}/{token}", post(push::push_with_token))
}
