//! The İYS HS API client: wire types, the error catalogue and the HTTP client.

pub mod audit;
pub mod catalogue;
pub mod client;
pub mod errors;
pub mod observer;
pub mod paced;
pub mod reporter;
pub mod sync;
mod token;
pub mod wire;

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod fake_server;

pub use client::{CallObserver, CallRecord, IysClient, IysClientConfig, PullSource};
pub use errors::{ErrorClass, ErrorItem, IysError, IysErrorKind};
