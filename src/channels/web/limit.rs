//! Per-IP rate limits for the public link pages, and the client IP they are keyed by.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::config::LinksConfig;

const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub struct Limiters {
    get: DefaultKeyedRateLimiter<IpAddr>,
    post: DefaultKeyedRateLimiter<IpAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Get,
    Post,
}

fn quota(per_minute: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN))
}

impl Limiters {
    pub fn new(cfg: &LinksConfig) -> Self {
        Self {
            get: DefaultKeyedRateLimiter::keyed(quota(cfg.get_per_minute)),
            post: DefaultKeyedRateLimiter::keyed(quota(cfg.post_per_minute)),
        }
    }

    /// `Err(wait)` when `ip` is over its quota for `kind`.
    pub fn check(&self, kind: Kind, ip: IpAddr) -> Result<(), Duration> {
        let l = match kind {
            Kind::Get => &self.get,
            Kind::Post => &self.post,
        };
        l.check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets IPs whose buckets are full again, so memory stays bounded by recent clients.
    pub fn prune(&self) {
        self.get.retain_recent();
        self.post.retain_recent();
        self.get.shrink_to_fit();
        self.post.shrink_to_fit();
    }

    pub fn tracked(&self) -> usize {
        self.get.len() + self.post.len()
    }
}

/// Built on first use from the configuration in `AppState` (the router is assembled before the
/// state is known); the pruning task ends when the router holding the limiters is dropped.
#[derive(Default)]
pub struct LazyLimiters(OnceLock<Arc<Limiters>>);

impl LazyLimiters {
    pub fn get(&self, cfg: &LinksConfig) -> Arc<Limiters> {
        self.0
            .get_or_init(|| {
                let l = Arc::new(Limiters::new(cfg));
                spawn_pruner(Arc::downgrade(&l));
                l
            })
            .clone()
    }
}

fn spawn_pruner(weak: Weak<Limiters>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(l) => l.prune(),
                None => return,
            }
        }
    });
}

/// The client's IP: the socket peer, or — only behind a trusted proxy — the last address in
/// `X-Forwarded-For` (the one our proxy appended; earlier entries are client-controlled).
pub fn client_ip(parts: &Parts, trusted_proxy: bool) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if trusted_proxy && let Some(ip) = forwarded_for(&parts.headers) {
        return ip;
    }
    peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(xff: Option<&str>, peer: Option<&str>) -> Parts {
        let mut b = axum::http::Request::builder().uri("/r/x");
        if let Some(x) = xff {
            b = b.header("x-forwarded-for", x);
        }
        let (mut p, _) = b.body(()).unwrap().into_parts();
        if let Some(s) = peer {
            p.extensions
                .insert(ConnectInfo(s.parse::<SocketAddr>().unwrap()));
        }
        p
    }

    #[test]
    fn forwarded_for_is_used_only_behind_a_trusted_proxy() {
        let p = parts(Some("198.51.100.7, 203.0.113.5"), Some("10.0.0.1:5000"));
        assert_eq!(client_ip(&p, false), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            client_ip(&p, true),
            "203.0.113.5".parse::<IpAddr>().unwrap()
        );
        let p = parts(Some("garbage"), Some("10.0.0.1:5000"));
        assert_eq!(client_ip(&p, true), "10.0.0.1".parse::<IpAddr>().unwrap());
        let p = parts(None, None);
        assert_eq!(client_ip(&p, true), IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn quotas_are_per_ip_and_per_kind() {
        let cfg = LinksConfig {
            get_per_minute: 2,
            post_per_minute: 1,
            ..LinksConfig::default()
        };
        let l = Limiters::new(&cfg);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.check(Kind::Get, a).is_ok());
        assert!(l.check(Kind::Get, a).is_ok());
        let wait = l.check(Kind::Get, a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(30));
        assert!(
            l.check(Kind::Get, b).is_ok(),
            "another IP has its own bucket"
        );
        assert!(l.check(Kind::Post, a).is_ok(), "POST has its own bucket");
        assert!(l.check(Kind::Post, a).is_err());
        assert_eq!(l.tracked(), 3);
        l.prune();
        assert!(l.tracked() <= 3);
    }
}
