//! The operations CLI as a library: `requeue`, `export` (and its evidence `pack`), `reconcile`
//! and `import`. `main.rs` only parses arguments and prints; tests call these directly.

pub mod export;
pub mod import;
pub mod pack;
pub mod reconcile;
pub mod requeue;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::domain::calendar::{BusinessCalendar, CalendarError};
use crate::domain::time::Clock;
use crate::iys::{IysClient, IysClientConfig, IysError};
use crate::ledger::LedgerError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("calendar: {0}")]
    Calendar(#[from] CalendarError),
    #[error("İYS: {0}")]
    Iys(#[from] IysError),
    #[error("{0}")]
    Input(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The evidence pack could not be assembled (a library refused its input).
    #[error("evidence pack: {0}")]
    Pack(String),
}

/// True when İYS would refuse a movement consented at `consent_at` as too old (H467): its
/// legal deadline (end of the 3rd business day) has passed, or it predates the holiday data.
pub fn outside_iys_window(
    cal: &BusinessCalendar,
    consent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    cal.iys_deadline(consent_at).map_or(true, |d| d <= now)
}

/// A client for the operations commands (no pacing slot: one call per brand and day).
pub fn iys_client(
    config: &Config,
    base_url: &str,
    clock: Arc<dyn Clock>,
) -> Result<IysClient, IysError> {
    IysClient::new(
        IysClientConfig {
            base_url: base_url.to_string(),
            username: config.iys.username.clone(),
            password: config.iys.password.expose().to_string(),
            iys_code: config.iys.iys_code,
            timeout: std::time::Duration::from_secs(config.reporter.http_timeout_seconds.max(1)),
        },
        clock,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_iys;

    #[test]
    fn window_is_three_business_days() {
        let cal = BusinessCalendar::turkish();
        // Wednesday 2026-03-04: deadline is the end of Monday 2026-03-09.
        let c = from_iys("2026-03-04 10:00:00").unwrap();
        assert!(!outside_iys_window(
            &cal,
            c,
            from_iys("2026-03-09 23:00:00").unwrap()
        ));
        assert!(outside_iys_window(
            &cal,
            c,
            from_iys("2026-03-10 00:00:01").unwrap()
        ));
        // Before the holiday data: certainly too old.
        let old = from_iys("2015-05-01 00:00:00").unwrap();
        assert!(outside_iys_window(&cal, old, c));
    }
}
