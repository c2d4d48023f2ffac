//! Wiring: application state, router, background workers, graceful shutdown.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::channels::sms::inbound::SmsChannel;
use crate::config::{Config, IysMode};
use crate::domain::calendar::{BusinessCalendar, Overrides};
use crate::domain::time::Clock;
use crate::http::ratelimit::{self, Limits};
use crate::ledger::{Ledger, SuppressionPolicy};
use crate::store::{self, Store};

/// Shared by every handler (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub ledger: Ledger,
    pub sms: Arc<SmsChannel>,
    pub limits: Arc<Limits>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("calendar overrides {0}: {1}")]
    Overrides(String, String),
    #[error("cannot bind {0}: {1}")]
    Bind(String, std::io::Error),
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
        Self::with_store(config, clock, store)
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
        let state = AppState {
            config: Arc::new(config),
            ledger,
            sms,
            limits,
        };
        Ok(Self { state, shutdown })
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
            "İYS mode: LIVE ({}), listening on {} (database {})",
            config.iys.base_url,
            config.server.listen,
            store::redact_url(config.database.url.expose())
        ),
    }
}
