//! The in-process İYS simulator behind a fault-injecting front, plus an app wired to it, all on
//! one ManualClock (pacing moves the clock through `manual_sleeper`).
//!
//! The front is an axum middleware layered over `Simulator::router()` and served on its own
//! socket; the reporter and the pull loop talk to it exactly as to İYS. It adds what the
//! simulator's own hooks (`set_outage`, `fail_next`) cannot express:
//! - answers with a `Retry-After` header, and non-İYS pages (a WAF's HTML 403, a gateway 502);
//! - its own log of every İYS request that arrived, faulted or not, with the manual-clock time;
//! - a "kill switch": after the n-th request from now is answered by the simulator, it wakes
//!   [`IysWorld::round_killed_after`], which drops the reporter's `run_once` future before it
//!   can store what İYS answered (a reporter killed mid-batch), and starts a new reporter.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use figment::Figment;
use figment::providers::{Format, Toml};
use iys_relay::app::{self, App};
use iys_relay::config::{Config, DEFAULT_TOML};
use iys_relay::domain::time::{Clock, ManualClock, from_iys};
use iys_relay::iys::paced::manual_sleeper;
use iys_relay::iys::reporter::Reporter;
use iys_relay::iys::sync::IysSync;
use iys_relay::sim::Simulator;
use iys_relay::store::{JobState, Store};
use tokio::sync::Notify;

use super::TestStore;

/// What the front answers instead of passing a request to the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An İYS-shaped error (`{"errors":[{"code":…}]}`), optionally with `Retry-After: secs`.
    Iys {
        status: u16,
        code: &'static str,
        retry_after: Option<u64>,
    },
    /// A page from something in front of İYS (WAF, load balancer): HTML, no İYS error code.
    Html { status: u16 },
}

impl Fault {
    pub fn unavailable() -> Self {
        Fault::Iys {
            status: 503,
            code: "H192",
            retry_after: None,
        }
    }
    pub fn server_error() -> Self {
        Fault::Iys {
            status: 500,
            code: "H015",
            retry_after: None,
        }
    }
    pub fn retry_after(secs: u64) -> Self {
        Fault::Iys {
            status: 503,
            code: "H192",
            retry_after: Some(secs),
        }
    }
    pub fn waf_403() -> Self {
        Fault::Html { status: 403 }
    }

    fn render(&self) -> Response {
        match self {
            Fault::Iys {
                status,
                code,
                retry_after,
            } => {
                let body = serde_json::json!({"errors": [{"code": code,
                    "message": "İstek zaman aşımına uğradı."}]});
                let mut r = (status_code(*status), axum::Json(body)).into_response();
                if let Some(s) = retry_after {
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from_str(&s.to_string()).expect("header"),
                    );
                }
                r
            }
            Fault::Html { status } => {
                let page = "<html><head><title>403 Forbidden</title></head><body>\
                    <h1>Request blocked</h1><p>Incident ID: 4711-0815</p></body></html>";
                let mut r = (status_code(*status), page).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
        }
    }
}

fn status_code(s: u16) -> StatusCode {
    StatusCode::from_u16(s).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// One İYS request as the front saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Answered by the front (a fault), not by the simulator.
    pub faulted: bool,
}

impl Seen {
    /// The brand in `/sps/{iys}/brands/{brand}/…` (None for the token endpoint).
    pub fn brand(&self) -> Option<i64> {
        let mut parts = self.path.split('/');
        parts
            .by_ref()
            .find(|p| *p == "brands")
            .and_then(|_| parts.next())
            .and_then(|b| b.parse().ok())
    }
}

#[derive(Default)]
struct FrontState {
    fault: Option<Fault>,
    fail_next: VecDeque<Fault>,
    kill_after: Option<usize>,
    log: Vec<Seen>,
}

struct FrontInner {
    state: Mutex<FrontState>,
    killed: Notify,
    clock: ManualClock,
}

/// Handle to the front (cheap to clone).
#[derive(Clone)]
pub struct Front(Arc<FrontInner>);

impl Front {
    fn lock(&self) -> std::sync::MutexGuard<'_, FrontState> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// While set, every İYS call (token requests included) gets `fault`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
    }
    pub fn fault(&self) -> Option<Fault> {
        self.lock().fault.clone()
    }
    /// The next `n` İYS calls get `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut st = self.lock();
        st.fail_next.extend(std::iter::repeat_n(fault, n));
    }
    pub fn log(&self) -> Vec<Seen> {
        self.lock().log.clone()
    }
    pub fn requests(&self) -> usize {
        self.lock().log.len()
    }
    fn arm_kill(&self, after: usize) {
        self.lock().kill_after = Some(after.max(1));
    }
    fn disarm_kill(&self) {
        self.lock().kill_after = None;
    }
}

async fn front_layer(State(f): State<Front>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/__sim/") {
        return next.run(req).await;
    }
    let method = req.method().to_string();
    let at = f.0.clock.now();
    let (fault, kill) = {
        let mut st = f.lock();
        let fault = st.fail_next.pop_front().or_else(|| st.fault.clone());
        let kill = match st.kill_after {
            Some(n) if n <= 1 => {
                st.kill_after = None;
                true
            }
            Some(n) => {
                st.kill_after = Some(n - 1);
                false
            }
            None => false,
        };
        (fault, kill)
    };
    let faulted = fault.is_some();
    let resp = match fault {
        Some(x) => x.render(),
        None => next.run(req).await,
    };
    f.lock().log.push(Seen {
        at,
        method,
        path,
        status: resp.status().as_u16(),
        faulted,
    });
    if kill {
        // İYS has acted on the request; the reporter must not see the answer.
        f.0.killed.notify_waiters();
    }
    resp
}

/// Reporter settings for these tests: batches from a handful of movements, short leases, and a
/// back-off cap that lets a history quiesce in simulated hours, not days.
pub const FAST_REPORTER_TOML: &str = r#"
[reporter]
batch_threshold = 4
max_batch_size = 10
lease_seconds = 30
poll_delay_seconds = 300
poll_interval_seconds = 60
retry_base_seconds = 30
retry_max_seconds = 600
"#;

pub struct IysWorld {
    pub app: App,
    pub sim: Simulator,
    pub clock: ManualClock,
    pub front: Front,
    pub store: Arc<dyn Store>,
    pub iys_base: String,
    /// Reporters started so far (1 + kills).
    pub generation: usize,
    db_url: String,
    inspect: tokio::sync::OnceCell<sqlx::AnyPool>,
    _store: TestStore,
}

impl IysWorld {
    /// `start_local` is Istanbul time (`YYYY-MM-DD HH:mm:ss`); `extra_toml` is merged over the
    /// embedded defaults.
    pub async fn start(ts: TestStore, start_local: &str, extra_toml: &str) -> Self {
        let clock = ManualClock::new(from_iys(start_local).expect("start time"));
        let config = Config::from_figment(
            Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(extra_toml)),
        )
        .expect("test config");
        let sim = Simulator::new(app::sim_config(&config), Arc::new(clock.clone()));
        let mut app =
            App::with_store(config, Arc::new(clock.clone()), ts.store.clone()).expect("app");
        let front = Front(Arc::new(FrontInner {
            state: Mutex::new(FrontState::default()),
            killed: Notify::new(),
            clock: clock.clone(),
        }));
        let router = sim
            .router()
            .layer(middleware::from_fn_with_state(front.clone(), front_layer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let iys_base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = app.shutdown.clone();
        tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            );
            tokio::select! {
                _ = serve => {}
                _ = shutdown.cancelled() => {}
            }
        });
        app.attach_iys(&iys_base, manual_sleeper(clock.clone()))
            .expect("attach");
        Self {
            app,
            sim,
            clock,
            front,
            store: ts.store.clone(),
            iys_base,
            generation: 1,
            db_url: ts.url.clone(),
            inspect: tokio::sync::OnceCell::new(),
            _store: ts,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn reporter(&self) -> Arc<Reporter> {
        self.app.reporter.clone().expect("reporter")
    }

    pub fn sync(&self) -> Arc<IysSync> {
        self.app.sync.clone().expect("sync")
    }

    /// A new reporter (new lease owner, new İYS client and token) on the same store, as after a
    /// process restart. The pull loop is rebuilt too; its cursor is in the store.
    pub fn restart_reporter(&mut self) {
        self.app
            .attach_iys(&self.iys_base, manual_sleeper(self.clock.clone()))
            .expect("attach");
        self.generation += 1;
    }

    /// One reporter round that is killed right after İYS answered the `after`-th request of the
    /// round (İYS acted; the reporter never stored the answer). Returns whether the kill
    /// happened (a round making fewer requests simply completes). A killed reporter is
    /// replaced by a new one.
    pub async fn round_killed_after(&mut self, after: usize) -> bool {
        self.front.arm_kill(after);
        let reporter = self.reporter();
        let killed = {
            let kill = self.front.0.killed.notified();
            tokio::pin!(kill);
            kill.as_mut().enable();
            tokio::select! {
                biased;
                _ = &mut kill => true,
                r = reporter.run_once() => {
                    r.expect("reporter round");
                    false
                }
            }
        };
        self.front.disarm_kill();
        drop(reporter);
        if killed {
            self.restart_reporter();
        }
        killed
    }

    /// Jobs in pending, leased or batched.
    pub async fn open_jobs(&self) -> i64 {
        let s = self.store.queue_summary(0).await.expect("queue summary");
        s.by_state
            .iter()
            .filter(|(st, _)| JobState::parse(st).is_some_and(|s| s.is_open()))
            .map(|(_, n)| *n)
            .sum()
    }

    /// Async batches the relay still waits for (state `submitted`).
    pub async fn submitted_batches(&self) -> i64 {
        let pool = self
            .inspect
            .get_or_init(|| async {
                sqlx::any::install_default_drivers();
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(1)
                    .connect(&self.db_url)
                    .await
                    .expect("inspect db")
            })
            .await;
        sqlx::query_scalar("SELECT COUNT(*) FROM iys_batches WHERE state = 'submitted'")
            .fetch_one(pool)
            .await
            .expect("count batches")
    }
}
