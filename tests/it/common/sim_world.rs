//! The app on a manual clock against the in-process simulator over a real socket, workers
//! driven by hand (`run_once`); pacing moves the clock instead of sleeping.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use figment::Figment;
use figment::providers::{Format, Toml};
use iys_relay::app::{self, App};
use iys_relay::config::{Config, DEFAULT_TOML};
use iys_relay::domain::Status;
use iys_relay::domain::time::{Clock, ManualClock, from_iys};
use iys_relay::iys::audit::{AuditMode, AuditReport};
use iys_relay::iys::paced::manual_sleeper;
use iys_relay::iys::reporter::{Report, Reporter};
use iys_relay::sim::Simulator;
use iys_relay::store::{ConsentState, JobState, ReportJob, Store};

use super::{BRAND, intent, mesaj_key};

pub struct SimWorld {
    pub app: App,
    pub sim: Simulator,
    /// Base URL of the simulator.
    pub sim_base: String,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
}

impl SimWorld {
    /// Starts at `local` (Istanbul time, `YYYY-MM-DD HH:mm:ss`) with the embedded defaults and
    /// `extra_toml` on top.
    pub async fn start(store: Arc<dyn Store>, local: &str, extra_toml: &str) -> Self {
        let clock = ManualClock::new(from_iys(local).expect("start time"));
        let config = Config::from_figment(
            Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(extra_toml)),
        )
        .expect("config");
        let sim = Simulator::new(app::sim_config(&config), Arc::new(clock.clone()));
        let mut app = App::with_store(config, Arc::new(clock.clone()), store.clone()).expect("app");
        let sim_base = app.start_simulator(sim.clone()).await.expect("simulator");
        app.attach_iys(&sim_base, manual_sleeper(clock.clone()))
            .expect("attach");
        Self {
            app,
            sim,
            sim_base,
            clock,
            store,
        }
    }

    /// [`SimWorld::start`] with the app's own HTTP API served on 127.0.0.1:0 and configured as
    /// `server.public_base_url` (webhook signatures are checked against it); returns its base.
    pub async fn start_served(
        store: Arc<dyn Store>,
        local: &str,
        extra_toml: &str,
    ) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let api = format!("http://{}", listener.local_addr().expect("addr"));
        let toml = format!("[server]\npublic_base_url = \"{api}\"\n{extra_toml}");
        let world = Self::start(store, local, &toml).await;
        let router = world
            .app
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (world, api)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The Istanbul calendar date of the clock.
    pub fn today(&self) -> chrono::NaiveDate {
        self.now()
            .with_timezone(&chrono_tz::Europe::Istanbul)
            .date_naive()
    }

    pub fn reporter(&self) -> &Reporter {
        self.app.reporter.as_deref().expect("reporter")
    }

    /// One reporter round.
    pub async fn report(&self) -> Report {
        self.reporter().run_once().await.expect("reporter round")
    }

    /// One round of the service's own auditor (the one that repairs).
    pub async fn audit(&self, mode: AuditMode) -> AuditReport {
        let auditor = self.app.audit.as_deref().expect("auditor");
        auditor.run_once(mode).await.expect("audit")
    }

    /// What the simulator holds for a MESAJ address at [`BRAND`]: `None` without a record.
    pub fn held(&self, recipient: &str) -> Option<Status> {
        self.sim.mesaj_status(BRAND, recipient)
    }

    /// The ledger's current state of a MESAJ address at [`BRAND`].
    pub async fn current(&self, recipient: &str) -> ConsentState {
        let key = mesaj_key(recipient);
        self.store
            .consent_state(&key)
            .await
            .unwrap()
            .expect("state")
    }

    /// Calls the simulator answered with `method` on a path ending in `suffix`.
    pub fn calls(&self, method: &str, suffix: &str) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }

    /// Records an SMS movement received now, consented `ago` earlier; returns its event id.
    pub async fn record(&self, msg: &str, recipient: &str, status: Status, ago: Duration) -> i64 {
        self.record_at(msg, recipient, status, self.now() - ago)
            .await
    }

    /// Records an SMS movement with an exact consent time; returns its event id.
    pub async fn record_at(
        &self,
        msg: &str,
        recipient: &str,
        status: Status,
        at: DateTime<Utc>,
    ) -> i64 {
        let i = intent(msg, recipient, status, at);
        self.app
            .state
            .ledger
            .record(i)
            .await
            .expect("record")
            .event_id
    }

    pub async fn job(&self, event_id: i64) -> ReportJob {
        self.store
            .job_for_event(event_id)
            .await
            .unwrap()
            .expect("job")
    }

    pub async fn job_state(&self, event_id: i64) -> JobState {
        self.job(event_id).await.state
    }
}
