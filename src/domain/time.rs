//! Time helpers: the injected clock and İYS's `YYYY-MM-DD HH:mm:ss` Istanbul wire format.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;

/// Where "now" comes from. Production uses the system clock; tests move a manual one.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests set and advance by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
    pub fn advance(&self, by: Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How far a consent time from outside (an agent's PC, İYS, a provider) may lead our clock.
pub const MAX_FUTURE_SKEW_MINUTES: i64 = 5;

/// The latest consent time taken as given at `now`: later ones are implausible.
pub fn latest_plausible(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(MAX_FUTURE_SKEW_MINUTES)
}

/// Days since 1970-01-01 in Istanbul time (UTC+3 all year since 2016), as the console's day
/// tables count them.
pub fn istanbul_day(at: DateTime<Utc>) -> i64 {
    istanbul_day_of_ms(at.timestamp_millis())
}

/// `istanbul_day` of a time kept in milliseconds since the epoch.
pub fn istanbul_day_of_ms(at_ms: i64) -> i64 {
    (at_ms + 3 * 3_600_000).div_euclid(86_400_000)
}

pub const IYS_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// `2026-11-23 12:00:00` in Europe/Istanbul, as İYS wants every date-time on the wire.
pub fn to_iys(at: DateTime<Utc>) -> String {
    at.with_timezone(&Istanbul).format(IYS_FORMAT).to_string()
}

/// Parses İYS's wire format (Istanbul local time) to UTC.
pub fn from_iys(s: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(s.trim(), IYS_FORMAT).ok()?;
    Istanbul
        .from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// Milliseconds since the epoch: how the stores keep instants (portable and index-friendly).
pub fn to_ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iys_format_is_istanbul_local() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T21:30:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(to_iys(at), "2026-11-24 00:30:05");
        assert_eq!(from_iys("2026-11-24 00:30:05"), Some(at));
        assert_eq!(from_iys("2026-11-24T00:30:05"), None);
    }

    #[test]
    fn manual_clock_moves() {
        let c = ManualClock::new(from_ms(0));
        c.advance(Duration::seconds(5));
        assert_eq!(to_ms(c.now()), 5000);
    }
}
