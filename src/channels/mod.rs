//! Inbound channels: each turns a provider payload into a consent intent.

pub mod agent;
pub mod iys_push;
pub mod sms;
pub mod twilio_request;
pub mod twiml;
pub mod twiml_check;
pub mod voice;
pub mod web;
