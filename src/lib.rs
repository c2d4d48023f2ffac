//! iys-relay: the telephony-facing half of İYS compliance.
//!
//! Inbound channels (SMS keywords, IVR key presses, short-link clicks, call-centre agents) turn
//! provider payloads into [`domain::ConsentIntent`]s; the ledger records each one durably with its
//! evidence and enqueues an İYS report job with its legal deadline; the reporter delivers them.

pub mod app;
pub mod channels;
pub mod config;
pub mod console;
pub mod domain;
pub mod error;
pub mod http;
pub mod iys;
pub mod ledger;
pub mod metrics;
pub mod ops;
pub mod providers;
pub mod secret;
pub mod sim;
pub mod state;
pub mod store;
pub mod telemetry;
