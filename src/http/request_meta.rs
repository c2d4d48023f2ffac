//! Who called and which URL they called: client IP and the public URL for signatures.
//!
//! Both come from the socket and the configured `public_base_url`, never from request headers,
//! unless `server.trusted_proxy` says a proxy we control sets `X-Forwarded-*`.
//!
//! The client IP behind a trusted proxy is the LAST `X-Forwarded-For` hop: the one the proxy
//! itself added (or the only one, when it overwrites the header as deploy/nginx.conf does).
//! Every earlier hop was written by the client and proves nothing, so a client rotating the
//! first entry can neither dodge the per-IP limits nor choose the IP kept as evidence.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, Uri};

use crate::config::ServerConfig;

/// The socket peer, when the server runs with connect info (tests driving the router directly
/// have none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

pub fn client_ip(
    server: &ServerConfig,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<IpAddr> {
    if server.trusted_proxy
        && let Some(ip) = last_forwarded_hop(headers)
    {
        return Some(ip);
    }
    peer.map(|p| p.ip())
}

/// The last hop of the last `X-Forwarded-For` header (repeated headers form one list). An
/// unreadable last hop yields `None`, never an earlier, client-written one: the socket peer
/// (the proxy) is then the best we know.
fn last_forwarded_hop(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let hop = last.to_str().ok()?.rsplit(',').next()?.trim();
    hop.parse::<IpAddr>()
        .ok()
        // Some proxies append the port (`198.51.100.7:5060`, `[2001:db8::1]:443`).
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The URL the provider called: public base + the path and query exactly as received.
pub fn public_url(server: &ServerConfig, headers: &HeaderMap, uri: &Uri) -> String {
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if server.trusted_proxy {
        let proto = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok());
        let host = headers
            .get("x-forwarded-host")
            .or_else(|| headers.get("host"))
            .and_then(|v| v.to_str().ok());
        if let (Some(proto), Some(host)) = (proto, host) {
            return format!("{proto}://{host}{path_and_query}");
        }
    }
    format!(
        "{}{}",
        server.public_base_url.trim_end_matches('/'),
        path_and_query
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(trusted: bool) -> ServerConfig {
        ServerConfig {
            listen: "127.0.0.1:0".into(),
            public_base_url: "https://relay.example.com/".into(),
            trusted_proxy: trusted,
            max_body_bytes: 65536,
            webhook_requests_per_ip_per_minute: 100,
        }
    }

    #[test]
    fn public_url_ignores_headers_unless_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-proto", "http".parse().unwrap());
        h.insert("host", "evil.example".parse().unwrap());
        let uri: Uri = "/webhooks/twilio/sms?a=1&b=%2B2".parse().unwrap();
        assert_eq!(
            public_url(&server(false), &h, &uri),
            "https://relay.example.com/webhooks/twilio/sms?a=1&b=%2B2"
        );
        assert_eq!(
            public_url(&server(true), &h, &uri),
            "http://evil.example/webhooks/twilio/sms?a=1&b=%2B2"
        );
    }

    #[test]
    fn client_ip_from_socket_unless_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.7, 10.0.0.1".parse().unwrap());
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert_eq!(
            client_ip(&server(false), &h, Some(peer)),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            client_ip(&server(true), &h, Some(peer)),
            Some("10.0.0.1".parse().unwrap()),
            "the hop the trusted proxy appended, not the client's first entry"
        );
    }

    #[test]
    fn only_the_last_hop_counts_behind_a_trusted_proxy() {
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let ip = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            client_ip(&server(true), &h, Some(peer)).map(|i| i.to_string())
        };
        // A client rotating the first entry gets the same answer every time.
        for forged in ["1.1.1.1", "2.2.2.2, 3.3.3.3", "not-an-ip"] {
            assert_eq!(
                ip(&[&format!("{forged}, 203.0.113.5")]).as_deref(),
                Some("203.0.113.5")
            );
        }
        assert_eq!(
            ip(&["9.9.9.9", "203.0.113.5"]).as_deref(),
            Some("203.0.113.5"),
            "repeated headers: the last one"
        );
        assert_eq!(ip(&["203.0.113.5:6000"]).as_deref(), Some("203.0.113.5"));
        assert_eq!(ip(&["[2001:db8::1]:443"]).as_deref(), Some("2001:db8::1"));
        assert_eq!(ip(&["2001:db8::2"]).as_deref(), Some("2001:db8::2"));
        // An unreadable last hop never falls back to an earlier, client-written one.
        assert_eq!(ip(&["198.51.100.9, garbage"]).as_deref(), Some("192.0.2.1"));
        assert_eq!(ip(&["198.51.100.9, "]).as_deref(), Some("192.0.2.1"));
        assert_eq!(ip(&[]).as_deref(), Some("192.0.2.1"));
    }
}
