//! The integration tests, as one test binary: one link instead of one per file, and one place
//! where the shared harness (`common`, `web_support`) is declared.
//!
//! Each module is one subject; most run every check on SQLite and on PostgreSQL
//! (`app_on_both_backends!`, `on_both_backends!`). Run one subject with
//! `cargo test --test it <module>::`, e.g. `cargo test --test it sms_webhook::`.

#[macro_use]
mod common;
mod web_support;

mod agent_api;
mod audit;
mod console;
mod console_browser;
mod crash;
mod deploy_files;
mod hostile_input;
mod invariant_model;
mod iys_openapi_contract;
mod links_contract;
mod log_lines;
mod metrics;
mod ops_cli;
mod replicas;
mod report_queue_contract;
mod reporter_e2e;
mod reporter_outage;
mod sim_contract;
mod sms_provider_push;
mod sms_provider_workers;
mod sms_providers_e2e;
mod sms_store_contract;
mod sms_webhook;
mod store_contract;
mod untrusted_input;
mod voice_calls;
mod voice_outbound;
mod web_browser;
mod web_http;
