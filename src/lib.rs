//! iys-relay: the telephony-facing half of İYS compliance.
//!
//! Inbound channels (SMS keywords, IVR key presses, short-link clicks, call-centre agents) turn
//! provider payloads into [`domain::ConsentIntent`]s; the ledger records each one durably with its
//! evidence and enqueues an İYS report job with its legal deadline; the reporter delivers them.

pub mod domain;
pub mod sim;
