//! What the SMS channel keeps between requests: its configuration, the number directory, the
//! reply sender and the provider adapters. Kept apart from the request path (`inbound`) so the
//! application state can hold it without depending on the handlers.

use std::time::Duration;

use super::config::SmsConfig;
use super::routing::SmsDirectory;
use crate::providers::twilio::TwilioClient;
use crate::telemetry::chain;

/// Everything the SMS channel keeps between requests.
pub struct SmsChannel {
    pub config: SmsConfig,
    pub directory: SmsDirectory,
    pub outbound: Option<TwilioClient>,
    /// The `[[sms.providers]]` adapters with their API clients.
    pub providers: super::providers::Registry,
    /// Woken when a reply is queued, so the outbox worker sends it at once.
    pub reply_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl SmsChannel {
    pub fn new(config: SmsConfig, brands: &[crate::domain::Brand]) -> Self {
        let directory = SmsDirectory::build(&config, brands);
        let outbound = config.outbound.as_ref().and_then(|o| {
            TwilioClient::new(
                &o.base_url,
                &o.account_sid,
                o.auth_token.expose(),
                Duration::from_secs(10),
            )
            .map_err(|e| tracing::error!(error = %chain(&e), "sms.outbound is not usable"))
            .ok()
        });
        Self {
            directory,
            outbound,
            providers: super::providers::Registry::build(&config),
            reply_wake: Default::default(),
            config,
        }
    }
}
