//! The cached İYS token pair and the H084 lock-out, as pure state driven by the injected clock.
//! The client holds it behind one async mutex, which is what makes the refresh single-flight.

use chrono::{DateTime, Duration, Utc};

use super::wire::TokenResponse;

/// Refresh the access token when less than this much life is left (docs/iys-api-notes.md §1.1 practice).
pub(crate) const ACCESS_MARGIN: Duration = Duration::minutes(5);
/// Do not offer a refresh token that is about to expire on the way to İYS.
const REFRESH_MARGIN: Duration = Duration::seconds(30);
/// H084: any token request within the hour restarts İYS's counter, so stay silent for a full hour.
pub(crate) const LOCKOUT: Duration = Duration::hours(1);
/// İYS's documented lifetimes, used when the response leaves them out.
const DEFAULT_ACCESS_SECS: i64 = 7200;
const DEFAULT_REFRESH_SECS: i64 = 14400;

#[derive(Clone)]
struct Expiring {
    value: String,
    expires_at: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct TokenState {
    access: Option<Expiring>,
    refresh: Option<Expiring>,
    locked_until: Option<DateTime<Utc>>,
}

impl TokenState {
    /// The access token if it has more than [`ACCESS_MARGIN`] left.
    pub(crate) fn usable_access(&self, now: DateTime<Utc>) -> Option<&str> {
        self.access
            .as_ref()
            .filter(|t| t.expires_at - now > ACCESS_MARGIN)
            .map(|t| t.value.as_str())
    }

    pub(crate) fn usable_refresh(&self, now: DateTime<Utc>) -> Option<&str> {
        self.refresh
            .as_ref()
            .filter(|t| t.expires_at - now > REFRESH_MARGIN)
            .map(|t| t.value.as_str())
    }

    /// Keeps the new pair. A response without a refresh token keeps none: İYS rotates them, so
    /// the old one is spent.
    pub(crate) fn store(&mut self, r: TokenResponse, now: DateTime<Utc>) {
        let secs = |v: Option<i64>, d: i64| Duration::seconds(v.filter(|s| *s > 0).unwrap_or(d));
        self.access = Some(Expiring {
            value: r.access_token,
            expires_at: now + secs(r.expires_in, DEFAULT_ACCESS_SECS),
        });
        self.refresh = r
            .refresh_token
            .filter(|t| !t.is_empty())
            .map(|value| Expiring {
                value,
                expires_at: now + secs(r.refresh_expires_in, DEFAULT_REFRESH_SECS),
            });
    }

    /// After a 401: forget the access token, unless another caller already replaced it.
    pub(crate) fn invalidate_access(&mut self, rejected: &str) {
        if self.access.as_ref().is_some_and(|t| t.value == rejected) {
            self.access = None;
        }
    }

    pub(crate) fn drop_refresh(&mut self) {
        self.refresh = None;
    }

    pub(crate) fn lockout_remaining(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.locked_until
            .map(|u| u - now)
            .filter(|d| *d > Duration::zero())
    }

    /// Starts the H084 silence: a full hour, or longer if İYS asked for it.
    pub(crate) fn lock_out(
        &mut self,
        now: DateTime<Utc>,
        retry_after: Option<std::time::Duration>,
    ) {
        let asked = retry_after
            .and_then(|d| Duration::from_std(d).ok())
            .unwrap_or(LOCKOUT);
        self.locked_until = Some(now + asked.max(LOCKOUT));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_ms;

    fn resp(a: &str, r: Option<&str>) -> TokenResponse {
        TokenResponse {
            access_token: a.into(),
            refresh_token: r.map(Into::into),
            expires_in: Some(7200),
            refresh_expires_in: None,
        }
    }

    #[test]
    fn access_is_refreshed_five_minutes_early() {
        let t0 = from_ms(0);
        let mut s = TokenState::default();
        s.store(resp("a1", Some("r1")), t0);
        assert_eq!(s.usable_access(t0 + Duration::minutes(114)), Some("a1"));
        assert_eq!(s.usable_access(t0 + Duration::minutes(115)), None);
        // Refresh token defaults to İYS's 4 h.
        assert_eq!(s.usable_refresh(t0 + Duration::minutes(239)), Some("r1"));
        assert_eq!(s.usable_refresh(t0 + Duration::minutes(240)), None);
    }

    #[test]
    fn invalidate_only_the_rejected_token() {
        let t0 = from_ms(0);
        let mut s = TokenState::default();
        s.store(resp("a2", None), t0);
        s.invalidate_access("a1");
        assert_eq!(s.usable_access(t0), Some("a2"));
        s.invalidate_access("a2");
        assert_eq!(s.usable_access(t0), None);
        assert_eq!(s.usable_refresh(t0), None);
    }

    #[test]
    fn lockout_is_at_least_an_hour() {
        let t0 = from_ms(0);
        let mut s = TokenState::default();
        s.lock_out(t0, Some(std::time::Duration::from_secs(10)));
        assert_eq!(s.lockout_remaining(t0), Some(LOCKOUT));
        assert!(s.lockout_remaining(t0 + LOCKOUT).is_none());
        s.lock_out(t0, Some(std::time::Duration::from_secs(7200)));
        assert_eq!(s.lockout_remaining(t0), Some(Duration::hours(2)));
    }
}
