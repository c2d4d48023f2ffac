//! Inbound channels: each turns a provider payload into a consent intent.

pub mod sms;
pub mod twiml;
pub mod voice;
