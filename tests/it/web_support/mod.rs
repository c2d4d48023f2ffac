//! Support for the web-channel tests: the real app on 127.0.0.1:0 and a minimal WebDriver client.
#![allow(dead_code)]

pub mod webdriver;

use std::sync::Arc;

use figment::Figment;
use figment::providers::{Format, Toml};
use iys_relay::app::App;
use iys_relay::config::{Config, DEFAULT_TOML};
use iys_relay::domain::time::ManualClock;
use iys_relay::secret::Secret;
use iys_relay::state::AppState;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "dev-token-change-me";
pub const START: &str = "2026-11-23T10:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// SQLite always; PostgreSQL too when `IYS_RELAY_TEST_PG_URL` names a server.
pub fn backends() -> Vec<Db> {
    let mut v = vec![Db::Sqlite];
    if std::env::var("IYS_RELAY_TEST_PG_URL").is_ok_and(|u| !u.is_empty()) {
        v.push(Db::Postgres);
    }
    v
}

/// The real service, serving HTTP on a free loopback port until dropped.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub clock: ManualClock,
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn(db: Db, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config =
        Config::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).expect("defaults");
    config.server.listen = addr.to_string();
    config.server.public_base_url = format!("http://{addr}");
    let (url, dir) = match db {
        Db::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            (
                format!("sqlite://{}/ledger.db", dir.path().display()),
                Some(dir),
            )
        }
        Db::Postgres => {
            let admin = std::env::var("IYS_RELAY_TEST_PG_URL").expect("pg url");
            (crate::common::fresh_pg_database(&admin).await, None)
        }
    };
    config.database.url = Secret::new(url);
    tweak(&mut config);
    let clock = ManualClock::new(crate::common::at(START));
    let app = App::build(config, Arc::new(clock.clone()))
        .await
        .expect("app starts");
    let state = app.state.clone();
    let shutdown = app.shutdown.clone();
    tokio::spawn(app.serve(listener, false));
    TestApp {
        base: format!("http://{addr}"),
        state,
        clock,
        shutdown,
        _dir: dir,
    }
}

/// An HTTP client that never follows redirects (a redirect would be a bug here).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    /// `POST /v1/links`; panics unless 200.
    pub async fn mint(&self, recipient: &str, consent_type: &str, campaign: Option<&str>) -> Value {
        let r = client()
            .post(format!("{}/v1/links", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({"recipient": recipient, "type": consent_type, "campaign": campaign}))
            .send()
            .await
            .expect("mint");
        assert_eq!(r.status(), 200, "mint answered {}", r.status());
        r.json().await.expect("json")
    }

    /// The short URL of a freshly minted link.
    pub async fn link(&self, recipient: &str, consent_type: &str) -> String {
        self.mint(recipient, consent_type, None).await["url"]
            .as_str()
            .expect("url")
            .to_string()
    }

    pub async fn events(&self, recipient: &str) -> Vec<iys_relay::store::StoredEvent> {
        crate::common::ledger_events(&self.state, recipient).await
    }
}
