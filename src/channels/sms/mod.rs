//! SMS channel: inbound webhook verification and parsing.

pub mod generic;
pub mod signature;
