//! Wiring: builds the application state, the router and the background workers; graceful
//! shutdown.

use crate::telemetry::chain;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::channels::sms::channel::SmsChannel;
use crate::channels::sms::poller::ProviderPoller;
use crate::channels::sms::replies_outbox::ReplyWorker;
use crate::config::{Config, IysMode};
use crate::domain::calendar::{BusinessCalendar, Overrides};
use crate::domain::time::Clock;
use crate::http::quarantine::QuarantineExpiry;
use crate::http::ratelimit::{self, Limits};
use crate::iys::IysClientConfig;
use crate::iys::audit::Auditor;
use crate::iys::paced::{PacedIys, Sleeper, tokio_sleeper};
use crate::iys::reporter::Reporter;
use crate::iys::sync::IysSync;
use crate::ledger::{Ledger, SuppressionPolicy};
use crate::sim::{SimConfig, SimUser, Simulator};
use crate::state::AppState;
use crate::store::{self, Store};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("calendar overrides {0}: {1}")]
    Overrides(String, String),
    #[error("cannot bind {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("İYS client: {0}")]
    Iys(#[from] crate::iys::IysError),
}

/// Loads the calendar with the configured reading of half days and the operator's overrides.
pub fn load_calendar(config: &Config) -> Result<BusinessCalendar, StartError> {
    let mut cal =
        BusinessCalendar::turkish().with_half_days_business(config.calendar.half_days_business);
    if let Some(path) = &config.calendar.overrides_file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Overrides(shown.clone(), e.to_string()))?;
        let o: Overrides =
            toml::from_str(&text).map_err(|e| StartError::Overrides(shown, e.to_string()))?;
        cal = cal.apply_overrides(&o);
    }
    Ok(cal)
}

/// Everything a running service holds; tests build one on port 0 with a manual clock.
pub struct App {
    pub state: AppState,
    pub shutdown: CancellationToken,
    /// The İYS workers, once [`App::attach_iys`] ran (tests call their `run_once`).
    pub reporter: Option<Arc<Reporter>>,
    pub sync: Option<Arc<IysSync>>,
    pub audit: Option<Arc<Auditor>>,
    /// The in-process simulator when `iys.mode = "simulator"`.
    pub simulator: Option<Simulator>,
    /// One inbox poller per provider that has an inbox query and API credentials.
    pub sms_pollers: Vec<Arc<ProviderPoller>>,
    /// Sends the free SMS replies queued in the outbox.
    pub sms_replies: Arc<ReplyWorker>,
    /// Drops quarantine rows past their retention.
    pub quarantine_expiry: Arc<QuarantineExpiry>,
}

/// The simulator `serve` runs in-process: same users, HS number and brands as the config.
pub fn sim_config(config: &Config) -> SimConfig {
    SimConfig {
        users: vec![SimUser {
            username: config.iys.username.clone(),
            password: config.iys.password.expose().to_string(),
            iys_code: config.iys.iys_code,
        }],
        iys_code: config.iys.iys_code,
        brands: config.brands.iter().map(|b| b.brand_code).collect(),
        batch_processing_delay: config.sim.batch_processing_delay,
        pull_lag: config.sim.pull_lag,
        rate_limits_enabled: config.sim.rate_limits_enabled,
        strict_turkish_mobile: config.sim.strict_turkish_mobile,
        three_day_cutoff: config.sim.three_day_cutoff,
        half_days_business: config.calendar.half_days_business,
        ..SimConfig::default()
    }
}

impl App {
    /// Connects the store, applies migrations and starts the ledger writer.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let store = store::connect(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .await?;
        store.migrate().await?;
        let mut app = Self::with_store(config, clock.clone(), store)?;
        let base_url = match app.state.config.iys.mode {
            IysMode::Live => app.state.config.iys.base_url.clone(),
            IysMode::Simulator => {
                let sim = Simulator::new(sim_config(&app.state.config), clock);
                app.start_simulator(sim).await?
            }
        };
        app.attach_iys(&base_url, tokio_sleeper())?;
        Ok(app)
    }

    /// Serves `sim` on 127.0.0.1:0 and returns its base URL. A real socket (rather than routes
    /// mounted in our router) keeps the client's path identical to production and the
    /// simulator's endpoints off the public listener.
    pub async fn start_simulator(&mut self, sim: Simulator) -> Result<String, StartError> {
        let addr = "127.0.0.1:0";
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Bind(addr.into(), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| StartError::Bind(addr.into(), e))?;
        let base = format!("http://{local}");
        tracing::warn!(
            "İYS SIMULATOR running in-process at {base}: NOTHING is reported to the real İYS"
        );
        let serving = sim.clone();
        let token = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = serving.serve(listener) => if let Err(e) = r {
                    tracing::error!(error = %chain(&e), "the İYS simulator stopped");
                },
                _ = token.cancelled() => {}
            }
        });
        self.simulator = Some(sim);
        Ok(base)
    }

    /// Builds the reporter, the pull loop and the audit against `base_url`. Each gets its own
    /// client (and token), because attempt rows are collected per client; all share the global
    /// pacing.
    pub fn attach_iys(&mut self, base_url: &str, sleeper: Sleeper) -> Result<(), StartError> {
        let cfg = self.state.config.clone();
        let ledger = &self.state.ledger;
        let client = IysClientConfig {
            base_url: base_url.to_string(),
            username: cfg.iys.username.clone(),
            password: cfg.iys.password.expose().to_string(),
            iys_code: cfg.iys.iys_code,
            timeout: std::time::Duration::from_secs(cfg.reporter.http_timeout_seconds.max(1)),
        };
        let paced = || {
            PacedIys::new(
                client.clone(),
                ledger.store().clone(),
                ledger.clock().clone(),
                sleeper.clone(),
                cfg.reporter.requests_per_second,
            )
        };
        self.reporter = Some(Arc::new(Reporter::new(
            ledger.clone(),
            paced()?,
            cfg.reporter.clone(),
            ledger.reporter_wake.clone(),
        )));
        self.sync = Some(Arc::new(IysSync::new(
            paced()?,
            ledger.clone(),
            cfg.brands.iter().map(|b| b.brand_code).collect(),
            cfg.iys.sync.page_limit,
            cfg.iys.sync.interval_seconds,
        )));
        self.audit = Some(Arc::new(Auditor::new(
            paced()?,
            ledger.clone(),
            cfg.audit.clone(),
            true,
        )));
        Ok(())
    }

    /// Starts the enabled background workers; they stop when `shutdown` is cancelled.
    pub fn spawn_workers(&self) {
        let cfg = &self.state.config;
        if let Some(r) = &self.reporter
            && cfg.reporter.enabled
        {
            r.clone().spawn(self.shutdown.clone());
        }
        if let Some(s) = &self.sync
            && cfg.iys.sync.enabled
        {
            s.clone().spawn(self.shutdown.clone());
        }
        if let Some(a) = &self.audit
            && cfg.audit.enabled
        {
            a.clone().spawn(self.shutdown.clone());
        }
        for p in &self.sms_pollers {
            p.clone().spawn(self.shutdown.clone());
        }
        self.sms_replies.clone().spawn(self.shutdown.clone());
        self.quarantine_expiry.clone().spawn(self.shutdown.clone());
    }

    pub fn with_store(
        config: Config,
        clock: Arc<dyn Clock>,
        store: Arc<dyn Store>,
    ) -> Result<Self, StartError> {
        crate::metrics::install();
        let calendar = load_calendar(&config)?;
        let left = calendar.days_of_coverage_left(clock.now().date_naive());
        if left < 365 {
            tracing::warn!(
                days_left = left,
                "the holiday calendar runs out within a year: extend config/tr-holidays-*.csv"
            );
        }
        let ledger = Ledger::start(
            store,
            Arc::new(calendar),
            clock,
            config.ledger.group_commit_max,
            config.reporter.target_business_days,
            SuppressionPolicy {
                require_iys_confirmation: config.suppression.require_iys_confirmation,
            },
        );
        let sms = Arc::new(SmsChannel::new(config.sms.clone(), &config.brands));
        let limits = Arc::new(Limits::from_config(&config));
        let shutdown = CancellationToken::new();
        ratelimit::spawn_pruner(
            limits.clone(),
            std::time::Duration::from_secs(60),
            shutdown.clone(),
        );
        let quarantine_expiry = Arc::new(QuarantineExpiry::new(
            ledger.store().clone(),
            ledger.clock().clone(),
            &config.quarantine,
        ));
        let state = AppState {
            config: Arc::new(config),
            ledger,
            sms,
            limits,
        };
        let sms_pollers = state
            .sms
            .providers
            .all()
            .filter(|p| p.config.polls())
            .map(|p| Arc::new(ProviderPoller::new(state.clone(), p.clone())))
            .collect();
        let sms_replies = Arc::new(ReplyWorker::new(state.clone()));
        Ok(Self {
            state,
            shutdown,
            reporter: None,
            sync: None,
            audit: None,
            simulator: None,
            sms_pollers,
            sms_replies,
            quarantine_expiry,
        })
    }

    pub fn router(&self) -> axum::Router {
        crate::http::router(self.state.clone())
    }

    /// Serves until `shutdown` is cancelled (or Ctrl-C / SIGTERM when `signals` is set).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        signals: bool,
    ) -> std::io::Result<()> {
        self.spawn_workers();
        let token = self.shutdown.clone();
        if signals {
            let t = token.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                t.cancel();
            });
        }
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The start-up banner: loud when İYS is the built-in simulator.
pub fn banner(config: &Config) -> String {
    match config.iys.mode {
        IysMode::Simulator => format!(
            "\n*************************************************************************\n\
             *  İYS MODE: BUILT-IN SIMULATOR. Nothing is reported to the real İYS.  *\n\
             *  Set iys.mode = \"live\" with real credentials for production.         *\n\
             *************************************************************************\n\
             listening on {} (database {})",
            config.server.listen,
            store::redact_url(config.database.url.expose())
        ),
        IysMode::Live => format!(
            "İYS mode: LIVE ({}{}), listening on {} (database {})",
            config.iys.base_url,
            if config.iys.allow_insecure_http {
                "; iys.allow_insecure_http is set: TEST ONLY"
            } else {
                ""
            },
            config.server.listen,
            store::redact_url(config.database.url.expose())
        ),
    }
}
