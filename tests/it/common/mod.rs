//! Shared test support: stores on both backends, intents, and a spawned app.
#![allow(dead_code)]

pub mod faulty_iys;
pub mod procs;
pub mod sim_world;
pub mod sms_fakes;
pub mod sms_world;
pub mod voice;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use iys_relay::domain::Address;
use iys_relay::domain::{
    Channel, ConsentIntent, ConsentType, Evidence, Recipient, RecipientType, Source, Status,
};
use iys_relay::store::{self, Store};

/// A store plus whatever keeps it alive (the SQLite temp dir).
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// A store that needs nothing kept alive (a PostgreSQL database made by the caller).
    pub fn from_parts(store: Arc<dyn Store>, url: String) -> Self {
        Self {
            store,
            url,
            _dir: None,
        }
    }
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/ledger.db", dir.path().display());
    let store = store::connect(&url, 8).await.expect("sqlite store");
    store.migrate().await.expect("migrate sqlite");
    TestStore {
        store,
        url,
        _dir: Some(dir),
    }
}

/// The PostgreSQL server for tests. Never silently skipped: without `IYS_RELAY_TEST_PG_URL` the
/// test fails unless `IYS_RELAY_TEST_SKIP_PG=1` says so explicitly.
pub fn pg_admin_url() -> Option<String> {
    match std::env::var("IYS_RELAY_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("IYS_RELAY_TEST_SKIP_PG").as_deref() == Ok("1") => None,
        _ => panic!(
            "IYS_RELAY_TEST_PG_URL is not set: run the suite with `bash .ci/test` (starts PostgreSQL), \
             or set IYS_RELAY_TEST_SKIP_PG=1 to skip the PostgreSQL half knowingly"
        ),
    }
}

/// A fresh, migrated PostgreSQL database for one test.
pub async fn postgres() -> Option<TestStore> {
    let admin = pg_admin_url()?;
    let url = fresh_pg_database(&admin).await;
    let store = store::connect(&url, 16).await.expect("pg store");
    store.migrate().await.expect("migrate pg");
    Some(TestStore {
        store,
        url,
        _dir: None,
    })
}

/// Creates an empty database on the test server and returns its URL.
pub async fn fresh_pg_database(admin: &str) -> String {
    sqlx::any::install_default_drivers();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(admin)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create database");
    pool.close().await;
    let mut u = url::Url::parse(admin).expect("pg url");
    u.set_path(&name);
    u.to_string()
}

/// Runs each listed async check against SQLite and PostgreSQL as separate tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($check:ident),+ $(,)?) => {
        mod sqlite_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $check() { let s = $crate::common::sqlite().await; super::$check(s.store.clone()).await; } )+
        }
        mod postgres_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $check() {
                   let Some(s) = $crate::common::postgres().await else { return };
                   super::$check(s.store.clone()).await;
               } )+
        }
    };
}

/// The brand of the default config.
pub const BRAND: i64 = 700000;
/// The one subscriber most scenarios are about.
pub const PHONE: &str = "+905321234567";

/// The ledger's key for an individual's MESAJ consent at [`BRAND`].
pub fn mesaj_key(recipient: &str) -> Address {
    Address {
        brand_code: BRAND,
        recipient: recipient.into(),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
    }
}

/// The kinds of the alerts raised on one job, oldest first.
pub async fn alert_kinds(store: &dyn Store, job_id: i64) -> Vec<store::queue::AlertKind> {
    let alerts = store.alerts_for_job(job_id).await.expect("alerts");
    alerts.iter().map(|a| a.kind).collect()
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("rfc3339")
        .with_timezone(&Utc)
}

pub fn intent(
    msg_id: &str,
    recipient: &str,
    status: Status,
    consent_at: DateTime<Utc>,
) -> ConsentIntent {
    ConsentIntent {
        brand_code: 700000,
        recipient: Recipient::parse(recipient).expect("recipient"),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
        status,
        source: Source::HsMesaj,
        channel: Channel::Sms,
        consent_at,
        provider: "twilio".into(),
        provider_message_id: msg_id.into(),
        evidence: Evidence {
            raw: serde_json::json!({"Body": "RET", "MessageSid": msg_id}),
            ip: Some("203.0.113.9".into()),
            user_agent: None,
            call_id: None,
        },
    }
}

/// A running app on 127.0.0.1:0 with a manual clock.
pub struct TestApp {
    pub base: String,
    pub state: iys_relay::state::AppState,
    pub clock: iys_relay::domain::time::ManualClock,
    pub http: reqwest::Client,
    pub _store: TestStore,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub const API_TOKEN: &str = "dev-token-change-me";
pub const TWILIO_TOKEN: &str = "dev-twilio-auth-token";

/// Starts the app on `store` with the embedded defaults plus `extra_toml`. `{base}` in
/// `extra_toml` is replaced by the app's own http://127.0.0.1:port.
pub async fn spawn_app(store: TestStore, extra_toml: &str, now: DateTime<Utc>) -> TestApp {
    use figment::providers::{Format, Toml};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let fig = figment::Figment::from(Toml::string(iys_relay::config::DEFAULT_TOML))
        .merge(Toml::string(&format!(
            "[server]\npublic_base_url = \"{base}\"\n"
        )))
        .merge(Toml::string(&extra_toml.replace("{base}", &base)))
        .merge(figment::providers::Serialized::default(
            "database.url",
            &store.url,
        ));
    let config = iys_relay::config::Config::from_figment(fig).expect("test config");
    let clock = iys_relay::domain::time::ManualClock::new(now);
    let app = iys_relay::app::App::with_store(config, Arc::new(clock.clone()), store.store.clone())
        .expect("app");
    let state = app.state.clone();
    let shutdown = app.shutdown.clone();
    tokio::spawn(async move { app.serve(listener, false).await });
    TestApp {
        base,
        state,
        clock,
        http: reqwest::Client::new(),
        _store: store,
        shutdown,
    }
}

impl TestApp {
    /// Every event the ledger holds for `recipient` (its normal form).
    pub async fn events_for(&self, recipient: &str) -> Vec<iys_relay::store::StoredEvent> {
        ledger_events(&self.state, recipient).await
    }

    /// The ledger's event `id`; panics when there is none.
    pub async fn event(&self, id: i64) -> iys_relay::store::StoredEvent {
        let store = self.state.ledger.store();
        store
            .event(id)
            .await
            .expect("event")
            .expect("no such event")
    }

    /// GET a path without credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let url = format!("{}{path}", self.base);
        self.http.get(url).send().await.expect("request")
    }

    /// GET a JSON API path with the bearer token.
    pub async fn api_get(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        status_and_json(self.http.get(url).bearer_auth(API_TOKEN)).await
    }

    /// POST a JSON body to an API path with the bearer token.
    pub async fn api_post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        status_and_json(self.http.post(url).bearer_auth(API_TOKEN).json(body)).await
    }
}

/// Sends `request`; its status and JSON body (`Null` when the body is not JSON).
pub async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let r = request.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Every event the app's ledger holds for `recipient` (its normal form).
pub async fn ledger_events(
    state: &iys_relay::state::AppState,
    recipient: &str,
) -> Vec<iys_relay::store::StoredEvent> {
    let store = state.ledger.store();
    store.events_for_recipient(recipient).await.expect("events")
}

/// Runs an async check against a fresh app on SQLite and on PostgreSQL as separate tests.
#[macro_export]
macro_rules! app_on_both_backends {
    ($($check:ident),+ $(,)?) => {
        mod sqlite_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $check() { super::$check($crate::common::sqlite().await).await; } )+
        }
        mod postgres_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $check() {
                   let Some(s) = $crate::common::postgres().await else { return };
                   super::$check(s).await;
               } )+
        }
    };
}

/// Two brands on one business: `demo` (the default) and `tsa`, for shared numbers.
pub const TWO_BRANDS_TOML: &str = r#"
[[brands]]
key = "demo"
iys_code = 700000
brand_code = 700000
name = "Demo Marka"
short_names = ["DEMO"]

[[brands]]
key = "tsa"
iys_code = 700000
brand_code = 700001
name = "TSA Elektronik"
short_names = ["TSA"]
"#;

/// Posts `params` form-encoded to `url`, signed with X-Twilio-Signature for `signed_url`.
pub async fn post_twilio_signed(
    app: &TestApp,
    url: &str,
    signed_url: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    post_twilio_signed_with(&app.http, url, signed_url, params).await
}

/// [`post_twilio_signed`] with any client.
pub async fn post_twilio_signed_with(
    http: &reqwest::Client,
    url: &str,
    signed_url: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    let sig =
        iys_relay::channels::sms::signature::twilio_signature(TWILIO_TOKEN, signed_url, params);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(body)
        .send()
        .await
        .expect("webhook request")
}

/// Twilio's published signing algorithm over a form body's raw bytes (parameters as sent,
/// percent-decoded, possibly not UTF-8): HMAC-SHA1 of the URL followed by each parameter's key
/// and value, sorted by key and then value, base64. Written from Twilio's security docs, apart
/// from the relay's validator, so a body that is not UTF-8 can be signed for a test.
pub fn twilio_signature_raw(token: &str, url: &str, form_body: &[u8]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = form_body
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut kv = p.splitn(2, |&b| b == b'=');
            let dec = |part: Option<&[u8]>| {
                let plus: Vec<u8> = part
                    .unwrap_or_default()
                    .iter()
                    .map(|&b| if b == b'+' { b' ' } else { b })
                    .collect();
                percent_encoding::percent_decode(&plus).collect::<Vec<u8>>()
            };
            (dec(kv.next()), dec(kv.next()))
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(url.as_bytes());
    for (k, v) in &pairs {
        mac.update(k);
        mac.update(v);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Owned pairs from borrowed ones.
pub fn pairs(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
