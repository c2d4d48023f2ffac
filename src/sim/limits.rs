//! Rate limits on the injected clock.
//!
//! `governor` reads its own monotonic clock, so tests could not cross a window by moving a
//! ManualClock. A fixed-window counter per (limit, client) on the simulator's clock is enough to
//! reproduce İYS's documented answers deterministically.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// 10 requests per second, every endpoint (H124).
    PerSecond,
    /// 1000 single-status queries per hour (H086).
    StatusHourly,
    /// 100 history queries per hour (H089).
    HistoryHourly,
    /// 100 token requests per hour; a retry during the lockout restarts the hour (H084).
    TokenHourly,
}

impl Limit {
    fn max(self) -> u32 {
        match self {
            Limit::PerSecond => 10,
            Limit::StatusHourly => 1000,
            Limit::HistoryHourly | Limit::TokenHourly => 100,
        }
    }
    fn window(self) -> Duration {
        match self {
            Limit::PerSecond => Duration::seconds(1),
            _ => Duration::hours(1),
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            Limit::PerSecond => "H124",
            Limit::StatusHourly => "H086",
            Limit::HistoryHourly => "H089",
            Limit::TokenHourly => "H084",
        }
    }
}

#[derive(Debug, Clone)]
struct Window {
    start: DateTime<Utc>,
    count: u32,
    locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub struct Limiter {
    windows: HashMap<(Limit, String), Window>,
}

impl Limiter {
    /// Counts one request; `false` means it is over the limit and must be refused.
    pub fn hit(&mut self, limit: Limit, client: &str, now: DateTime<Utc>) -> bool {
        let w = self
            .windows
            .entry((limit, client.to_string()))
            .or_insert(Window {
                start: now,
                count: 0,
                locked_until: None,
            });
        if let Some(until) = w.locked_until {
            if now < until {
                // İYS KİMLİK DOĞRULAMA: any retry during the lockout restarts the 1-hour counter.
                w.locked_until = Some(now + limit.window());
                return false;
            }
            *w = Window {
                start: now,
                count: 0,
                locked_until: None,
            };
        }
        // A window opens at its first request and lasts one window length.
        if now - w.start >= limit.window() || now < w.start {
            w.start = now;
            w.count = 0;
        }
        w.count += 1;
        if w.count <= limit.max() {
            return true;
        }
        if limit == Limit::TokenHourly {
            w.locked_until = Some(now + limit.window());
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_ms;

    #[test]
    fn per_second_window_resets_next_second() {
        let mut l = Limiter::default();
        let t = from_ms(1_000_000);
        for _ in 0..10 {
            assert!(l.hit(Limit::PerSecond, "a", t));
        }
        assert!(!l.hit(Limit::PerSecond, "a", t));
        assert!(l.hit(Limit::PerSecond, "b", t), "clients are separate");
        assert!(l.hit(Limit::PerSecond, "a", t + Duration::seconds(1)));
    }

    #[test]
    fn token_lockout_restarts_on_retry() {
        let mut l = Limiter::default();
        let t = from_ms(0);
        for _ in 0..100 {
            assert!(l.hit(Limit::TokenHourly, "ip", t));
        }
        assert!(!l.hit(Limit::TokenHourly, "ip", t));
        // A retry after 59 minutes pushes the lockout to 59 min + 1 h.
        let retry = t + Duration::minutes(59);
        assert!(!l.hit(Limit::TokenHourly, "ip", retry));
        assert!(!l.hit(Limit::TokenHourly, "ip", retry + Duration::minutes(59)));
        let later = retry + Duration::minutes(59) + Duration::hours(1);
        assert!(l.hit(Limit::TokenHourly, "ip", later));
    }

    #[test]
    fn hourly_limits_have_their_own_sizes() {
        let mut l = Limiter::default();
        let t = from_ms(0);
        for _ in 0..100 {
            assert!(l.hit(Limit::HistoryHourly, "a", t));
        }
        assert!(!l.hit(Limit::HistoryHourly, "a", t));
        assert!(l.hit(Limit::HistoryHourly, "a", t + Duration::hours(1)));
        for _ in 0..1000 {
            assert!(l.hit(Limit::StatusHourly, "a", t));
        }
        assert!(!l.hit(Limit::StatusHourly, "a", t));
        assert_eq!(Limit::StatusHourly.code(), "H086");
    }
}
