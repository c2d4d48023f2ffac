//! One Turkish provider in front of the app: the provider fakes (`sms_fakes`), the app on a
//! manual clock against the İYS simulator (`sim_world`), the provider's push route served on a
//! real socket. Workers are driven by hand (`run_once`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use iys_relay::channels::sms::poller::ProviderPoller;
use iys_relay::domain::Status;
use iys_relay::store::{JobState, Store};

use super::sim_world::SimWorld;
use super::sms_fakes::{FakeProviders, SECRET, USER};

pub const TOKEN: &str = "push-token-0123456789";
/// Each holds an ONAY at İYS before the test starts, so a RET from it has something to revoke.
pub const SENDERS: [&str; 3] = ["+905321111111", "+905322222222", "+905323333333"];

/// What differs between the worlds the tests need.
pub struct Setup<'a> {
    /// The provider's name (push path, dedupe namespace, metric label).
    pub name: &'a str,
    pub kind: &'a str,
    pub number: &'a str,
    /// The provider's API address; `None`: the fake. `{fake}` in `extra_toml` is the fake too.
    pub api_base: Option<&'a str>,
    pub extra_toml: &'a str,
}

impl<'a> Setup<'a> {
    pub fn new(kind: &'a str, number: &'a str) -> Self {
        Self {
            name: kind,
            kind,
            number,
            api_base: None,
            extra_toml: "",
        }
    }
}

fn toml(s: &Setup<'_>, fake: &str) -> String {
    let (name, kind, number) = (s.name, s.kind, s.number);
    let api = s.api_base.unwrap_or(fake);
    format!(
        r#"
[[sms.numbers]]
number = "{number}"
brands = ["demo"]

[[sms.providers]]
name = "{name}"
kind = "{kind}"
numbers = ["{number}"]
path_token = "{TOKEN}"
api_user = "{USER}"
api_secret = "{SECRET}"
api_base_url = "{api}"
reply_from = "DEMO"
poll = {{ interval_seconds = 60, overlap_seconds = 900, initial_lookback_hours = 72 }}
{}
"#,
        s.extra_toml.replace("{fake}", fake)
    )
}

pub struct World {
    pub w: SimWorld,
    pub fake: FakeProviders,
    pub push_url: String,
}

pub async fn world(store: Arc<dyn Store>, kind: &str, number: &str) -> World {
    world_with(store, Setup::new(kind, number)).await
}

pub async fn world_with(store: Arc<dyn Store>, setup: Setup<'_>) -> World {
    let fake = FakeProviders::start().await;
    let w = SimWorld::start(store, "2026-11-23 10:00:00", &toml(&setup, &fake.base)).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let push_url = format!(
        "http://{}/webhooks/sms/{}/{TOKEN}",
        listener.local_addr().unwrap(),
        setup.name
    );
    let router = w
        .app
        .router()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, router).await });
    for s in SENDERS {
        let e = w
            .record(&format!("pre-{s}"), s, Status::Onay, Duration::minutes(5))
            .await;
        w.report().await;
        assert_eq!(w.job_state(e).await, JobState::Done);
    }
    w.clock.advance(Duration::minutes(1));
    World { w, fake, push_url }
}

impl World {
    pub fn poller(&self) -> &ProviderPoller {
        &self.w.app.sms_pollers[0]
    }

    /// The relay is unreachable for `minutes`; the provider's pushes (if any) fail meanwhile.
    pub async fn outage(&self, minutes: i64, mut during: impl FnMut(i64, DateTime<Utc>)) {
        for m in 0..minutes {
            during(m, self.w.now());
            self.fake
                .deliver_pushes("http://127.0.0.1:9/down", self.w.now())
                .await;
            self.w.clock.advance(Duration::minutes(1));
        }
    }

    /// The RET events the ledger holds for `sender`.
    pub async fn rets(&self, sender: &str) -> Vec<iys_relay::store::StoredEvent> {
        self.w
            .store
            .events_for_recipient(sender)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.status == Status::Ret)
            .collect()
    }
}
