//! The IVR's webhook paths, in one leaf module: the router, the configuration (which builds the
//! signed action URLs) and the dialer grants all name them.

/// The incoming-call webhook (the number's "A call comes in" URL).
pub const CALL_ROUTE: &str = "/webhooks/twilio/voice";
/// Every later turn: the Gather action and the timeout redirect, with the signed state in `t`.
pub const GATHER_ROUTE: &str = "/webhooks/twilio/voice/gather";
/// The in-call entry of a business's own call (the dialer redirects or points its Gather here).
pub const OUTBOUND_ROUTE: &str = "/webhooks/twilio/voice/outbound";
/// The relay's short announcement inside a business's own call.
pub const OUTBOUND_ANNOUNCE_ROUTE: &str = "/webhooks/twilio/voice/outbound/announce";
/// The call status callback (logged only).
pub const STATUS_ROUTE: &str = "/webhooks/twilio/voice/status";
