//! Per-key rate limits (governor), with a clear 429 and periodic pruning of idle keys.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::config::Config;
use crate::error::ApiError;

pub struct KeyedLimiter {
    name: &'static str,
    inner: DefaultKeyedRateLimiter<String>,
}

impl KeyedLimiter {
    /// `per_minute` requests per key per minute, with bursts up to the same number.
    pub fn per_minute(name: &'static str, per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        Self {
            name,
            inner: RateLimiter::keyed(Quota::per_minute(n)),
        }
    }

    /// Ok, or how long the caller should wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.inner.check_key(&key.to_string()).map_err(|not_until| {
            metrics::counter!("iys_relay_rate_limited_total", "limiter" => self.name).increment(1);
            not_until.wait_time_from(DefaultClock::default().now())
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Forgets keys whose state is back to full capacity.
    pub fn prune(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Every rate limit of the service, built from the configuration.
pub struct Limits {
    /// Per client IP, across all webhooks.
    pub webhook_ip: KeyedLimiter,
    /// Per SMS sender number.
    pub sms_sender: KeyedLimiter,
    /// Per client IP on the short-link pages (GET and POST counted apart).
    pub link_get: KeyedLimiter,
    pub link_post: KeyedLimiter,
    /// Per client IP on the console's sign-in form.
    pub console_login: KeyedLimiter,
}

impl Limits {
    pub fn from_config(c: &Config) -> Self {
        Self {
            webhook_ip: KeyedLimiter::per_minute(
                "webhook_ip",
                c.server.webhook_requests_per_ip_per_minute,
            ),
            sms_sender: KeyedLimiter::per_minute(
                "sms_sender",
                c.sms.rate_limit.per_sender_per_minute,
            ),
            link_get: KeyedLimiter::per_minute("link_get", c.links.get_per_minute),
            link_post: KeyedLimiter::per_minute("link_post", c.links.post_per_minute),
            console_login: KeyedLimiter::per_minute(
                "console_login",
                c.console.logins_per_ip_per_minute,
            ),
        }
    }

    /// The per-IP webhook limit, shared by every webhook route: Ok, or how long to wait.
    pub fn check_webhook_ip(&self, ip: Option<std::net::IpAddr>) -> Result<(), Duration> {
        match ip {
            Some(ip) => self.webhook_ip.check(&ip.to_string()),
            None => Ok(()),
        }
    }

    fn all(&self) -> [&KeyedLimiter; 5] {
        [
            &self.webhook_ip,
            &self.sms_sender,
            &self.link_get,
            &self.link_post,
            &self.console_login,
        ]
    }
}

/// 429 with `Retry-After` (whole seconds, at least 1) and the service's error body.
pub fn too_many_requests(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; retry in {secs} s"),
    )
    .into_response();
    r.headers_mut()
        .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// Prunes every limiter each `every` until shutdown, so limiter memory stays bounded.
pub fn spawn_pruner(limits: Arc<Limits>, every: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => limits.all().iter().for_each(|l| l.prune()),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_prunes() {
        let l = KeyedLimiter::per_minute("test", 2);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let wait = l.check("a").unwrap_err();
        assert!(
            wait > Duration::from_secs(1) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(l.check("b").is_ok(), "keys are independent");
        assert_eq!(l.len(), 2);
        l.prune();
        assert_eq!(l.len(), 2, "keys that are not back to full capacity stay");
    }
}
