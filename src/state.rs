//! The state every handler and worker shares. Apart from `app` (which builds it and starts the
//! workers) so that handlers depend on what they read, not on the wiring that assembles them.

use std::sync::Arc;

use crate::channels::sms::channel::SmsChannel;
use crate::config::Config;
use crate::http::ratelimit::Limits;
use crate::ledger::Ledger;

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub ledger: Ledger,
    pub sms: Arc<SmsChannel>,
    pub limits: Arc<Limits>,
}
