//! Drives the simulator's router in-process (`tower::ServiceExt::oneshot`) on a ManualClock.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{SimConfig, Simulator};
use crate::domain::time::{ManualClock, from_iys};

pub const IYS: i64 = 700000;
pub const BRAND: i64 = 700000;

/// Wednesday 2026-03-04 12:00:00 Istanbul.
pub fn start() -> DateTime<Utc> {
    from_iys("2026-03-04 12:00:00").expect("valid")
}

pub fn b(path: &str) -> String {
    format!("/sps/{IYS}/brands/{BRAND}{path}")
}

pub fn v2(path: &str) -> String {
    format!("/v2/sps/{IYS}/brands/{BRAND}{path}")
}

pub struct Kit {
    pub sim: Simulator,
    pub clock: ManualClock,
    pub app: Router,
    token: Mutex<Option<String>>,
}

impl Kit {
    /// Rate limits off: most tests make many calls inside one frozen second.
    pub fn new() -> Self {
        Self::with(SimConfig {
            rate_limits_enabled: false,
            ..Default::default()
        })
    }

    pub fn with(cfg: SimConfig) -> Self {
        let clock = ManualClock::new(start());
        let sim = Simulator::new(cfg, Arc::new(clock.clone()));
        let app = sim.router();
        Self {
            sim,
            clock,
            app,
            token: Mutex::new(None),
        }
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(Duration::seconds(secs));
    }

    /// One raw call: body is sent as JSON when given.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        self.raw_from(None, method, path, token, body, content_type)
            .await
    }

    /// [`Kit::raw`] as if it came over a socket from `peer` (what `serve` gives the router);
    /// `None` is the in-process caller without a peer address.
    pub async fn raw_from(
        &self,
        peer: Option<SocketAddr>,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
        content_type: &str,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(p) = peer {
            req = req.extension(ConnectInfo(p));
        }
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        req = req.header(header::CONTENT_TYPE, content_type);
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
            .await
            .expect("body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    pub async fn token_call(&self, body: Value) -> (StatusCode, Value) {
        self.raw(
            "POST",
            "/oauth2/token",
            None,
            Some(body.to_string()),
            "application/json",
        )
        .await
    }

    /// A valid access token (fetched once, then reused).
    pub async fn token(&self) -> String {
        if let Some(t) = self.token.lock().unwrap().clone() {
            return t;
        }
        let (s, v) = self
            .token_call(json!({"username":"sim","password":"sim","grant_type":"password"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let t = v["access_token"].as_str().unwrap().to_string();
        *self.token.lock().unwrap() = Some(t.clone());
        t
    }

    /// A new access token each call (the cached [`Kit::token`] is left alone).
    pub async fn new_token(&self) -> String {
        let (s, v) = self
            .token_call(json!({"username":"sim","password":"sim","grant_type":"password"}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["access_token"].as_str().unwrap().to_string()
    }

    /// Drops the cached token (after the clock passed its 2 h life).
    pub fn forget(&self) {
        *self.token.lock().unwrap() = None;
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let t = self.token().await;
        self.raw(
            "POST",
            path,
            Some(&t),
            Some(body.to_string()),
            "application/json",
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let t = self.token().await;
        self.raw("GET", path, Some(&t), None, "application/json")
            .await
    }
}

/// A consent body dated `minutes_ago` before the kit's clock.
pub fn consent(kit: &Kit, recipient: &str, ctype: &str, status: &str, minutes_ago: i64) -> Value {
    let at = kit.clock_now() - Duration::minutes(minutes_ago);
    json!({"recipient": recipient, "type": ctype, "source": "HS_WEB", "status": status,
           "consentDate": crate::domain::time::to_iys(at), "recipientType": "BIREYSEL"})
}

impl Kit {
    pub fn clock_now(&self) -> DateTime<Utc> {
        use crate::domain::time::Clock;
        self.clock.now()
    }
}

/// The first error code of an `errors[]` body.
pub fn code(v: &Value) -> &str {
    v["errors"][0]["code"].as_str().unwrap_or("")
}
