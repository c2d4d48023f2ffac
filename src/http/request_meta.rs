//! Who called and which URL they called: client IP and the public URL for signatures.
//!
//! Both come from the socket and the configured `public_base_url`, never from request headers,
//! unless `server.trusted_proxy` says a proxy we control sets `X-Forwarded-*`.

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
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return Some(ip);
    }
    peer.map(|p| p.ip())
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
            Some("198.51.100.7".parse().unwrap())
        );
    }
}
