//! Per-attempt call records, so the caller can keep one attempt row per HTTP call.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// One HTTP attempt, for the caller's attempt log. Holds no body and no recipient.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// `token`, `add_consent_v2`, `add_batch_v2`, `poll_batch_v2`, `consent_status`,
    /// `multi_status` or `pull_changes`.
    pub operation: &'static str,
    pub method: &'static str,
    /// Path without the query string (`/v2/sps/1/brands/1/consents`).
    pub path: String,
    /// `None` when no response arrived (network error or timeout).
    pub status: Option<u16>,
    /// First error code of a failure body, or `NETWORK` / `TIMEOUT`.
    pub code: Option<String>,
    pub duration: Duration,
    pub started_at: DateTime<Utc>,
}

/// Receives one [`CallRecord`] per HTTP attempt, synchronously, right after the attempt ends.
pub trait CallObserver: Send + Sync {
    fn on_call(&self, call: &CallRecord);
}

/// An observer that keeps every record, for tests and diagnostics.
#[derive(Debug, Default)]
pub struct RecordingObserver(std::sync::Mutex<Vec<CallRecord>>);

impl RecordingObserver {
    pub fn calls(&self) -> Vec<CallRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl CallObserver for RecordingObserver {
    fn on_call(&self, call: &CallRecord) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call.clone());
    }
}
