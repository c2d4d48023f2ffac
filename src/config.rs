//! Configuration: embedded defaults → optional file → `IYS_RELAY__*` environment variables
//! (figment), validated at start with every problem listed at once. Secrets never print.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};

use crate::domain::Brand;
use crate::secret::Secret;
use crate::sim::ThreeDayCutoff;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
const DEV_TOKEN: &str = "dev-token-change-me";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub ledger: LedgerConfig,
    pub calendar: CalendarConfig,
    pub suppression: SuppressionConfig,
    pub iys: IysConfig,
    pub reporter: ReporterConfig,
    #[serde(default)]
    pub audit: AuditConfig,
    /// The built-in İYS simulator (`iys.mode = "simulator"` and `iys-relay iys-sim`).
    #[serde(default)]
    pub sim: SimSection,
    #[serde(default)]
    pub brands: Vec<Brand>,
    pub api: ApiConfig,
    #[serde(default)]
    pub twilio: TwilioConfig,
    #[serde(default)]
    pub sms: crate::channels::sms::config::SmsConfig,
    #[serde(default)]
    pub links: crate::channels::web::config::LinksConfig,
    #[serde(default)]
    pub quarantine: QuarantineConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    pub voice: crate::channels::voice::config::VoiceConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_base_url: String,
    pub trusted_proxy: bool,
    pub max_body_bytes: usize,
    /// Webhook requests one client IP may make per minute (all webhooks together).
    pub webhook_requests_per_ip_per_minute: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    pub group_commit_max: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    pub half_days_business: bool,
    #[serde(default)]
    pub overrides_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionConfig {
    pub require_iys_confirmation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IysMode {
    Simulator,
    Live,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IysConfig {
    pub mode: IysMode,
    pub base_url: String,
    pub username: String,
    pub password: Secret,
    pub iys_code: i64,
    /// TEST-ONLY escape hatch: lets live mode use an `http://` base_url (a simulator process on
    /// 127.0.0.1 in the multi-process tests). Never set it in production: İYS is https only.
    #[serde(default)]
    pub allow_insecure_http: bool,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub push: PushConfig,
}

/// The pull loop on `consents/changes?source=IYS` (citizens' own changes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    pub enabled: bool,
    /// Seconds between pulls (İYS's pull lags by one hour anyway).
    pub interval_seconds: u64,
    /// Movements per page (İYS maximum 1000).
    pub page_limit: u32,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 300,
            page_limit: 1000,
        }
    }
}

/// The receiver for İYS's push (`POST /iys/push`, HTTP Basic auth, registered with İYS).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    pub enabled: bool,
    pub username: String,
    pub password: Secret,
}

/// Settings of the built-in simulator; its users, HS number and brands come from `[iys]` and
/// `[[brands]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSection {
    /// Seconds before the simulator processes an async batch (İYS: poll no sooner than 300 s).
    pub batch_processing_delay: u64,
    /// Seconds the simulator's pull lags behind now (İYS: one hour).
    pub pull_lag: u64,
    pub rate_limits_enabled: bool,
    /// MESAJ only for Turkish mobiles (`+905…`): a landline or foreign number gets H121.
    pub strict_turkish_mobile: bool,
    /// How the simulator computes İYS's H467 three-business-day cutoff: `timestamp` (now − 3
    /// business days, full timestamp), `calendar_days` (Mon–Fri days since the consent's date)
    /// or `end_of_third_business_day`.
    pub three_day_cutoff: ThreeDayCutoff,
}

impl Default for SimSection {
    fn default() -> Self {
        Self {
            batch_processing_delay: 300,
            pull_lag: 3600,
            rate_limits_enabled: true,
            strict_turkish_mobile: false,
            three_day_cutoff: ThreeDayCutoff::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReporterConfig {
    /// Internal target: in İYS by the end of this business day after receipt (legal: 3).
    pub target_business_days: u32,
    pub enabled: bool,
    /// From this many sendable movements per brand in one run on, use async batches.
    pub batch_threshold: usize,
    /// Movements per async batch (İYS maximum 1000).
    pub max_batch_size: usize,
    /// Jobs claimed at a time (a round claims again while full claims come back, up to ten
    /// times). Each claim is planned, dated and sent as one piece of work beside the webhooks,
    /// and a large one holds them up far beyond its size: with 250 the webhooks' p99 at 1 600/s was
    /// 8–10 ms, with 500 15–26 ms, with 1 000 or 5 000 33–62 ms (measured). The price is
    /// batches of at most 250 movements, four İYS requests per 1 000 movements of a backlog,
    /// so a backlog drains at about 1 100 movements/s under İYS's rate limit (4 000 with 5 000).
    pub claim_limit: i64,
    /// How long a claim protects a job from other workers.
    pub lease_seconds: u64,
    /// First batch poll after submission (İYS: no sooner than 300 s).
    pub poll_delay_seconds: u64,
    /// Next poll while a batch is still being processed.
    pub poll_interval_seconds: u64,
    /// A batch İYS has not processed after this long goes back to the queue.
    pub batch_give_up_hours: u64,
    /// Back-off for transient failures: base * 2^(attempt-1), capped, with jitter.
    pub retry_base_seconds: u64,
    pub retry_max_seconds: u64,
    /// İYS allows 10 requests/s per IP across all replicas; stay a little below.
    pub requests_per_second: u32,
    /// The worker wakes at least this often (it is also woken by every new movement).
    pub idle_seconds: u64,
    pub http_timeout_seconds: u64,
}

impl Default for ReporterConfig {
    fn default() -> Self {
        Self {
            target_business_days: 1,
            enabled: true,
            batch_threshold: 50,
            max_batch_size: 1000,
            claim_limit: 250,
            lease_seconds: 300,
            poll_delay_seconds: 300,
            poll_interval_seconds: 60,
            batch_give_up_hours: 24,
            retry_base_seconds: 30,
            retry_max_seconds: 3600,
            requests_per_second: 9,
            idle_seconds: 5,
            http_timeout_seconds: 30,
        }
    }
}

/// The İYS agreement audit (`crate::iys::audit`): İYS must hold the ledger's current word.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub enabled: bool,
    /// A full sweep of every reported address at least this often (shared by replicas).
    pub full_sweep_hours: u64,
    /// A report job that ended other than `done` has its address checked this long after.
    pub targeted_delay_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            full_sweep_hours: 24,
            targeted_delay_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub name: String,
    pub token: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration is not valid:\n  - {}", .0.join("\n  - "))]
    Invalid(Vec<String>),
}

impl Config {
    /// Defaults, then `file` (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        fig = fig.merge(Env::prefixed("IYS_RELAY__").split("__"));
        Self::from_figment(fig)
    }

    pub fn from_figment(fig: Figment) -> Result<Self, ConfigError> {
        let cfg: Config = fig.extract().map_err(Box::new)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every problem at once, so an operator fixes the file in one go.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Vec::new();
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!(
                "server.listen {:?} is not host:port",
                self.server.listen
            ));
        }
        match url::Url::parse(&self.server.public_base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => p.push(format!(
                "server.public_base_url {:?} must be an http(s) URL",
                self.server.public_base_url
            )),
        }
        if self.server.max_body_bytes < 1024 {
            p.push("server.max_body_bytes must be at least 1024".into());
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres:")
            || db.starts_with("postgresql:"))
        {
            p.push("database.url must start with sqlite: or postgres:".into());
        }
        if self.ledger.group_commit_max == 0 {
            p.push("ledger.group_commit_max must be at least 1".into());
        }
        if self.audit.full_sweep_hours == 0 {
            p.push("audit.full_sweep_hours must be at least 1".into());
        }
        if !(1..=3).contains(&self.reporter.target_business_days) {
            p.push("reporter.target_business_days must be 1, 2 or 3".into());
        }
        let r = &self.reporter;
        if r.poll_delay_seconds < 300 {
            p.push("reporter.poll_delay_seconds must be at least 300 (İYS: poll no sooner)".into());
        }
        if !(1..=10).contains(&r.requests_per_second) {
            p.push("reporter.requests_per_second must be 1..=10 (İYS limit: 10/s per IP)".into());
        }
        if !(1..=1000).contains(&r.max_batch_size) {
            p.push("reporter.max_batch_size must be 1..=1000".into());
        }
        if r.batch_threshold == 0 || r.claim_limit < 1 || r.lease_seconds < 30 {
            p.push(
                "reporter.batch_threshold and claim_limit must be positive, lease_seconds at least 30"
                    .into(),
            );
        }
        if r.retry_base_seconds == 0 || r.retry_max_seconds < r.retry_base_seconds {
            p.push(
                "reporter.retry_base_seconds must be positive and at most retry_max_seconds".into(),
            );
        }
        if !(1..=1000).contains(&self.iys.sync.page_limit) {
            p.push("iys.sync.page_limit must be 1..=1000".into());
        }
        let push = &self.iys.push;
        if push.enabled && (push.username.is_empty() || push.password.expose().len() < 12) {
            p.push("iys.push needs a username and a password of at least 12 characters".into());
        }
        if self.brands.is_empty() {
            p.push("at least one [[brands]] entry is needed".into());
        }
        let mut keys = std::collections::HashSet::new();
        for b in &self.brands {
            if !keys.insert(b.key.as_str()) {
                p.push(format!("brand key {:?} is used twice", b.key));
            }
            if b.brand_code <= 0 || b.iys_code <= 0 {
                p.push(format!(
                    "brand {:?}: iys_code and brand_code must be positive integers",
                    b.key
                ));
            }
            if b.iys_code != self.iys.iys_code {
                p.push(format!(
                    "brand {:?}: iys_code {} differs from iys.iys_code {}",
                    b.key, b.iys_code, self.iys.iys_code
                ));
            }
        }
        if self.api.tokens.iter().any(|t| t.token.expose().len() < 16) {
            p.push("api.tokens: every token must be at least 16 characters".into());
        }
        if self.iys.mode == IysMode::Live {
            if self
                .api
                .tokens
                .iter()
                .any(|t| t.token.expose() == DEV_TOKEN)
            {
                p.push(
                    "api.tokens: the development token must be replaced when iys.mode = \"live\""
                        .into(),
                );
            }
            let http_allowed =
                self.iys.allow_insecure_http && self.iys.base_url.starts_with("http://");
            if !self.iys.base_url.starts_with("https://") && !http_allowed {
                p.push("iys.base_url must be https:// in live mode".into());
            }
            if self.iys.username.is_empty() || self.iys.password.expose().is_empty() {
                p.push("iys.username and iys.password are required in live mode".into());
            }
        }
        let brand_keys: Vec<&str> = self.brands.iter().map(|b| b.key.as_str()).collect();
        p.extend(self.sms.problems(&brand_keys));
        p.extend(self.links.problems(self.iys.mode == IysMode::Live));
        p.extend(self.quarantine.problems());
        p.extend(
            self.voice
                .problems(&brand_keys, self.iys.mode == IysMode::Live),
        );
        if self.server.webhook_requests_per_ip_per_minute == 0 {
            p.push("server.webhook_requests_per_ip_per_minute must be at least 1".into());
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(p))
        }
    }

    pub fn brand_by_code(&self, brand_code: i64) -> Option<&Brand> {
        self.brands.iter().find(|b| b.brand_code == brand_code)
    }

    /// A brand by its key or brand code (`domain::brand::named`).
    pub fn brand_named(&self, name: &str) -> Option<&Brand> {
        crate::domain::brand::named(&self.brands, name)
    }

    /// The effective configuration with secrets redacted, as `check-config` prints it.
    pub fn redacted_toml(&self) -> String {
        let out = toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}"));
        // The database URL is not secret as a whole, only its password.
        let url = crate::store::redact_url(self.database.url.expose());
        out.replacen("url = \"***\"", &format!("url = {url:?}"), 1)
    }
}

/// `[twilio]`: the account's auth tokens (primary first, a secondary during rotation).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioConfig {
    pub auth_tokens: Vec<Secret>,
}

/// `[console]`: the compliance console at `/console` (users are added with `iys-relay user add`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
    /// Hours a session lasts at most, however active.
    pub session_hours: u32,
    /// Minutes without a request after which a session ends.
    pub idle_minutes: u32,
    /// Failed sign-ins in a row that lock a user ...
    pub max_failed_logins: u32,
    /// ... for this many minutes.
    pub lockout_minutes: u32,
    /// Sign-in attempts one client IP may make per minute.
    pub logins_per_ip_per_minute: u32,
    /// The session cookie's `Secure` flag. Browsers keep such a cookie over HTTPS and on
    /// localhost only; turn it off only for a plain-HTTP test host.
    pub secure_cookie: bool,
    /// Single sign-on: a header naming the user the reverse proxy authenticated (e.g.
    /// `X-Forwarded-User`). Read only when `server.trusted_proxy` is on; empty = off.
    pub trusted_user_header: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_hours: 8,
            idle_minutes: 30,
            max_failed_logins: 5,
            lockout_minutes: 15,
            logins_per_ip_per_minute: 10,
            secure_cookie: true,
            trusted_user_header: String::new(),
        }
    }
}

/// `[quarantine]`: how much of what could not be read is kept, and for how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuarantineConfig {
    /// Bytes of one request's body kept (longer ones are kept truncated).
    pub max_row_bytes: usize,
    /// Bytes of body the whole quarantine holds; beyond it the oldest rows are dropped.
    pub max_total_bytes: usize,
    /// Hours a row is kept.
    pub retention_hours: u64,
}

impl Default for QuarantineConfig {
    fn default() -> Self {
        Self {
            max_row_bytes: 16 * 1024,
            max_total_bytes: 64 * 1024 * 1024,
            retention_hours: 7 * 24,
        }
    }
}

impl QuarantineConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.max_row_bytes == 0 || self.max_row_bytes > self.max_total_bytes {
            p.push(
                "quarantine.max_row_bytes must be at least 1 and at most quarantine.max_total_bytes"
                    .into(),
            );
        }
        if self.retention_hours == 0 {
            p.push("quarantine.retention_hours must be at least 1".into());
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).unwrap();
        assert_eq!(c.iys.mode, IysMode::Simulator);
        assert_eq!(c.brands.len(), 1);
        assert!(c.database.url.expose().starts_with("sqlite:"));
    }

    #[test]
    fn every_problem_is_listed() {
        let fig = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(
            r#"
            [server]
            listen = "nope"
            [iys]
            mode = "live"
            base_url = "http://x"
            "#,
        ));
        let err = Config::from_figment(fig).unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");
        assert!(err.contains("development token"), "{err}");
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn http_base_url_needs_the_explicit_test_switch() {
        let live = r#"
            [iys]
            mode = "live"
            base_url = "http://127.0.0.1:8089"
            "#;
        let fig = || Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(live));
        let err = Config::from_figment(fig()).unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
        let fig = fig().merge(Toml::string("[iys]\nallow_insecure_http = true\n"));
        let err = Config::from_figment(fig).unwrap_err().to_string();
        assert!(!err.contains("https://"), "{err}");
        // The switch allows plain http, not any scheme.
        let fig = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(
            "[iys]\nmode = \"live\"\nbase_url = \"ftp://x\"\nallow_insecure_http = true\n",
        ));
        let err = Config::from_figment(fig).unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let fig = Figment::from(Toml::string(DEFAULT_TOML))
            .merge(Toml::string("[server]\nlisten_port = 1\n"));
        assert!(Config::from_figment(fig).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).unwrap();
        let shown = c.redacted_toml();
        assert!(!shown.contains("sim-password"), "{shown}");
        assert!(!shown.contains(DEV_TOKEN), "{shown}");
        assert!(shown.contains("sqlite://data/iys-relay.db"), "{shown}");
        assert!(!format!("{c:?}").contains("sim-password"));
    }

    #[test]
    fn reporter_defaults_and_limits() {
        let c = Config::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).unwrap();
        assert_eq!(c.reporter.poll_delay_seconds, 300);
        assert_eq!(c.reporter.max_batch_size, 1000);
        assert!(c.iys.sync.enabled && !c.iys.push.enabled);
        let fig = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(
            "[reporter]\npoll_delay_seconds = 60\nrequests_per_second = 11\n[iys.push]\nenabled = true\n",
        ));
        let err = Config::from_figment(fig).unwrap_err().to_string();
        assert!(err.contains("poll_delay_seconds"), "{err}");
        assert!(err.contains("requests_per_second"), "{err}");
        assert!(err.contains("iys.push"), "{err}");
    }

    #[test]
    fn sms_provider_problems_are_named() {
        let load = |provider: &str| {
            let toml = format!(
                "[[sms.numbers]]\nnumber = \"+908501234567\"\nbrands = [\"demo\"]\n\
                 [[sms.providers]]\n{provider}\n"
            );
            Config::from_figment(
                Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(&toml)),
            )
        };
        let good = "name = \"vm\"\nkind = \"verimor\"\nnumbers = [\"08501234567\"]\n\
                    path_token = \"0123456789abcdef\"\nallowed_ips = [\"203.0.113.0/24\"]";
        load(good).expect("the baseline is valid");
        let netgsm = "name = \"ng\"\nkind = \"netgsm\"\napi_user = \"u\"\napi_secret = \"p\"";
        let cases = [
            (
                good.replace("\"vm\"", "\"vm/1\""),
                "name must be letters, digits, - or _",
            ),
            (
                good.replace("0123456789abcdef", "short"),
                "path_token must be at least 16 characters",
            ),
            (
                good.replace("203.0.113.0/24", "203.0.113.0/33"),
                "allowed_ips \"203.0.113.0/33\" is not an IP or CIDR block",
            ),
            (
                good.replace("08501234567", "08509999999"),
                "number \"08509999999\" is not listed in sms.numbers",
            ),
            (
                format!("{netgsm}\npoll = {{ initial_lookback_hours = 721 }}"),
                "poll.initial_lookback_hours is at most 720 for Netgsm",
            ),
            (
                format!("{good}\nhmac_secret = \"shared\""),
                "hmac_secret is for kind = \"generic\" (verimor signs nothing)",
            ),
        ];
        load(&format!(
            "{netgsm}\npoll = {{ initial_lookback_hours = 720 }}"
        ))
        .expect("30 days is allowed");
        for (provider, want) in cases {
            let err = load(&provider).expect_err(want).to_string();
            assert!(err.contains(want), "{provider}\n→ {err}");
            assert!(err.contains("sms.providers \""), "{err}");
        }
    }
}
