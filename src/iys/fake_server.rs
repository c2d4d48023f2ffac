//! A scripted HTTP server on 127.0.0.1:0 that records every request: the fake İYS used by the
//! client tests and, through `#[path]`, by `tests/it/iys_openapi_contract.rs`. It uses only external
//! crates so that both can include it.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// What the fake server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub auth: Option<String>,
    pub body: Value,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
}

pub fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        retry_after: None,
    }
}

type Script = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct Fake {
    pub base_url: String,
    pub log: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
    pub fn token_grants(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter(|s| s.path == "/oauth2/token")
            .map(|s| match s.body["grant_type"].as_str() {
                Some("refresh_token") => {
                    format!("refresh:{}", s.body["refresh_token"].as_str().unwrap_or(""))
                }
                Some(g) => g.to_string(),
                None => "?".into(),
            })
            .collect()
    }
    pub fn api_calls(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.path != "/oauth2/token")
            .count()
    }
}

/// Serves every request through `script`, recording it first.
pub async fn serve(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Fake {
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script: Script = Arc::new(script);
    let (l2, s2) = (log.clone(), script.clone());
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (log, script) = (l2.clone(), s2.clone());
            async move {
                let seen = Seen {
                    method: method.to_string(),
                    path: uri.path().to_string(),
                    query: uri.query().unwrap_or("").to_string(),
                    auth: headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                };
                log.lock().unwrap().push(seen.clone());
                let r = script(&seen);
                let mut resp: Response =
                    (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
                resp.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                if let Some(s) = r.retry_after {
                    resp.headers_mut()
                        .insert("retry-after", s.to_string().parse().unwrap());
                }
                resp
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    Fake {
        base_url: format!("http://{addr}"),
        log,
    }
}
