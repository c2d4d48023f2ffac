//! The `iys-relay` command line. The only place that uses `anyhow`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Europe::Istanbul;
use clap::{Parser, Subcommand};

use iys_relay::app::{self, App};
use iys_relay::config::{Config, IysMode};
use iys_relay::domain::time::{Clock, SystemClock};
use iys_relay::ops;
use iys_relay::store;
use iys_relay::telemetry::{self, LogFormat};

// The webhook path allocates many small, short-lived objects across worker threads; glibc's
// allocator showed up as lock contention in the profile (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "iys-relay",
    version,
    about = "Telephony-facing İYS consent relay"
)]
struct Cli {
    /// Configuration file (TOML) merged over the embedded defaults.
    #[arg(long, global = true, env = "IYS_RELAY_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value = "pretty")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (webhooks, APIs) and its workers.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Print the legal İYS deadline for a receipt time (RFC 3339).
    Deadline {
        /// When the movement was received, e.g. 2026-11-23T10:00:00+03:00
        received: String,
        /// Treat half days (arife, 28 Oct) as non-business days.
        #[arg(long)]
        half_days_non_business: bool,
    },
    /// Show, as one JSON object, what the service would do with an inbound SMS (records nothing).
    ParseSms {
        /// The number or short code the message was sent to.
        #[arg(long)]
        to: String,
        /// The message text.
        body: String,
    },
    /// Print the report queue by state and the nearest deadlines.
    Status {
        #[arg(long, default_value_t = 10)]
        nearest: i64,
    },
    /// Send failed or expired report jobs back to the queue (after a fix).
    Requeue {
        /// Job ids (see `status`).
        ids: Vec<i64>,
        #[arg(long)]
        all_failed: bool,
        #[arg(long)]
        all_expired: bool,
        /// Requeue even when İYS is expected to refuse it (H467 window, H178 newer movement).
        #[arg(long)]
        force: bool,
        /// Who and why, kept in the alert row.
        #[arg(long)]
        note: Option<String>,
    },
    /// Everything recorded for one recipient (events, evidence, jobs, İYS attempts, state).
    Export {
        recipient: String,
        #[arg(long, value_enum, default_value = "json", conflicts_with = "pack")]
        format: ExportFormat,
        /// Brand key or brand code.
        #[arg(long)]
        brand: Option<String>,
        /// Write an evidence pack instead: a zip of evidence.json, evidence.pdf and SHA256SUMS.
        #[arg(long)]
        pack: bool,
        /// Where to write the pack (default: its own file name in the current directory).
        #[arg(long, requires = "pack")]
        out: Option<PathBuf>,
    },
    /// Compare the ledger with İYS's daily changes file for a date (YYYY-MM-DD).
    Reconcile {
        date: String,
        /// Brand key or code (default: every configured brand).
        #[arg(long)]
        brand: Option<String>,
        /// Record citizen movements the ledger lacks.
        #[arg(long)]
        apply: bool,
        /// İYS base URL to use instead of the configured one (e.g. a running `iys-sim`).
        #[arg(long)]
        iys_url: Option<String>,
    },
    /// Check that İYS holds the ledger's current word for every reported address.
    Audit {
        /// Carry the decisions out (record İYS's newer records, re-report the ledger's).
        #[arg(long)]
        repair: bool,
        /// Only print what the running service's audit last found (read-only: works beside a
        /// running `serve`, asks İYS nothing).
        #[arg(long, conflicts_with_all = ["repair", "iys_url"])]
        last: bool,
        /// İYS base URL to use instead of the configured one (e.g. a running `iys-sim`).
        #[arg(long)]
        iys_url: Option<String>,
    },
    /// Bulk-import existing consents from a CSV file (validated, per-row error report).
    Import {
        file: PathBuf,
        /// Validate only; record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Source for rows without one (an HS_* value).
        #[arg(long)]
        source: Option<String>,
        /// Write the per-row error report here instead of stderr.
        #[arg(long)]
        errors: Option<PathBuf>,
    },
    /// Manage the console's users (the password is read from standard input).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Run the İYS simulator alone (for manual testing against `iys.mode = "live"`).
    IysSim {
        #[arg(long, default_value_t = 8089)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Refuse MESAJ for anything but a Turkish mobile (+905…) with H121 (overrides
        /// `sim.strict_turkish_mobile`).
        #[arg(long)]
        strict_turkish_mobile: bool,
        /// How H467's three-business-day cutoff is computed (overrides `sim.three_day_cutoff`).
        #[arg(long, value_enum)]
        three_day_cutoff: Option<iys_relay::sim::ThreeDayCutoff>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password (at least 12 characters) is read from standard input.
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set a new password (read from standard input); lifts a lockout, ends the user's sessions.
    Passwd { name: String },
    /// Disable a user and end its sessions.
    Disable { name: String },
    /// Enable a disabled user again.
    Enable { name: String },
    /// List the users.
    List,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for iys_relay::store::console::Role {
    fn from(r: RoleArg) -> Self {
        use iys_relay::store::console::Role;
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Json,
    Csv,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Held to the end of main: dropping it writes out the log lines still queued.
    let _logs = telemetry::init(cli.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Deadline {
        received,
        half_days_non_business,
    } = &cli.command
    {
        return deadline(received, *half_days_non_business);
    }
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::CheckConfig => {
            app::load_calendar(&config)?;
            println!("# configuration is valid\n{}", config.redacted_toml());
        }
        Command::Migrate => {
            let store = store::connect(config.database.url.expose(), 2).await?;
            store.migrate().await?;
            println!("migrations applied ({:?})", store.backend());
        }
        Command::Status { nearest } => {
            let store = store::connect_read_only(config.database.url.expose(), 2).await?;
            let s = store.queue_summary(nearest).await?;
            println!("report jobs by state:");
            for (state, n) in &s.by_state {
                println!("  {state:<18} {n}");
            }
            if let Some(oldest) = s.oldest_open_created_at {
                println!(
                    "oldest open job created {}",
                    oldest.with_timezone(&Istanbul).to_rfc3339()
                );
            }
            let alerts = store.alerts(nearest).await?;
            if !alerts.is_empty() {
                println!("recent alerts:");
                for a in &alerts {
                    println!(
                        "  {:<7} {:<14} job {:>8}  {}  {}",
                        a.severity,
                        a.kind.as_str(),
                        a.job_id,
                        a.at.with_timezone(&Istanbul).to_rfc3339(),
                        a.detail
                    );
                }
            }
            println!("nearest deadlines:");
            for j in &s.nearest {
                println!(
                    "  job {:>8}  {:<8} {:<7} brand {}  deadline {}  attempts {}",
                    j.id,
                    j.state.as_str(),
                    j.address.consent_type.as_str(),
                    j.address.brand_code,
                    j.deadline_at.with_timezone(&Istanbul).to_rfc3339(),
                    j.attempts
                );
            }
        }
        Command::Serve => {
            let listen = config.server.listen.clone();
            tracing::info!("{}", app::banner(&config));
            let app = App::build(config, Arc::new(SystemClock)).await?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            app.serve(listener, true).await?;
        }
        Command::ParseSms { to, body } => parse_sms(&config, &to, &body)?,
        Command::IysSim {
            port,
            bind,
            strict_turkish_mobile,
            three_day_cutoff,
        } => {
            let addr = format!("{bind}:{port}");
            let mut sim_config = app::sim_config(&config);
            sim_config.strict_turkish_mobile |= strict_turkish_mobile;
            if let Some(c) = three_day_cutoff {
                sim_config.three_day_cutoff = c;
            }
            let sim = iys_relay::sim::Simulator::new(sim_config, Arc::new(SystemClock));
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            eprintln!(
                "İYS SIMULATOR (not İYS) on http://{addr}: user {:?}, iysCode {}, brands {:?}",
                config.iys.username,
                config.iys.iys_code,
                config
                    .brands
                    .iter()
                    .map(|b| b.brand_code)
                    .collect::<Vec<_>>()
            );
            sim.serve(listener).await?;
        }
        Command::Requeue {
            ids,
            all_failed,
            all_expired,
            force,
            note,
        } => {
            let req = ops::requeue::RequeueRequest {
                ids,
                all_failed,
                all_expired,
                force,
                note,
            };
            let store = store::connect(config.database.url.expose(), 2).await?;
            let cal = app::load_calendar(&config)?;
            let results =
                ops::requeue::requeue(store.as_ref(), &cal, SystemClock.now(), &req).await?;
            print!("{}", ops::requeue::render(&results));
            let refused = results.iter().filter(|r| !r.is_requeued()).count();
            anyhow::ensure!(refused == 0, "{refused} job(s) not requeued");
        }
        Command::Export {
            recipient,
            format,
            brand,
            pack,
            out,
        } => {
            let who = iys_relay::domain::Recipient::parse(&recipient)
                .context("the recipient is not a valid phone number or e-mail")?;
            let brand = brand.map(|b| brand_arg(&config, &b)).transpose()?;
            let store = store::connect_read_only(config.database.url.expose(), 2).await?;
            let now = SystemClock.now();
            let x = ops::export::export(store.as_ref(), &who, brand, now).await?;
            if pack {
                return write_pack(&config, &x, now, out);
            }
            match format {
                ExportFormat::Json => println!("{}", serde_json::to_string_pretty(&x)?),
                ExportFormat::Csv => print!("{}", ops::export::to_csv(&x)?),
            }
        }
        Command::Reconcile {
            date,
            brand,
            apply,
            iys_url,
        } => {
            let date = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                .with_context(|| format!("{date:?} is not a date such as 2026-03-04"))?;
            let brands = match brand {
                Some(b) => vec![brand_arg(&config, &b)?],
                None => config.brands.iter().map(|b| b.brand_code).collect(),
            };
            let base = iys_base(&config, iys_url)?;
            let client = ops::iys_client(&config, &base, Arc::new(SystemClock))?;
            let ledger = ops_ledger(config).await?;
            let r = ops::reconcile::reconcile(&ledger, &client, &brands, date, apply).await?;
            print!("{}", ops::reconcile::render(&r));
            anyhow::ensure!(r.remaining() == 0, "{} discrepancies remain", r.remaining());
        }
        Command::Audit { last: true, .. } => {
            let store = store::connect_read_only(config.database.url.expose(), 2).await?;
            let p = store.audit_progress().await?;
            let at = |t: Option<DateTime<Utc>>| {
                t.map(|t| t.with_timezone(&Istanbul).to_rfc3339())
                    .unwrap_or_else(|| "never".into())
            };
            println!("last full sweep started  {}", at(p.sweep_started_at));
            println!("last full sweep finished {}", at(p.sweep_finished_at));
            println!("divergences it left      {}", p.sweep_divergent);
            let open: Vec<_> = store
                .open_alerts(1000)
                .await?
                .into_iter()
                .filter(|a| a.kind == iys_relay::store::queue::AlertKind::AuditDivergence)
                .collect();
            println!("open divergence alerts   {}", open.len());
            for a in &open {
                println!(
                    "  job {:>8}  {}  {}",
                    a.job_id,
                    a.at.with_timezone(&Istanbul).to_rfc3339(),
                    iys_relay::domain::mask::text(&a.detail)
                );
            }
        }
        Command::Audit {
            repair, iys_url, ..
        } => {
            let base = iys_base(&config, iys_url)?;
            let store = store::connect(config.database.url.expose(), 2).await?;
            let mut app = App::with_store(config, Arc::new(SystemClock), store)?;
            app.attach_iys(&base, iys_relay::iys::paced::tokio_sleeper())?;
            let auditor = app
                .audit
                .take()
                .and_then(|a| Arc::try_unwrap(a).ok())
                .context("the audit worker was not built")?
                .repairing(repair);
            let r = auditor
                .run_once(iys_relay::iys::audit::AuditMode::Full)
                .await?;
            print!("{}", iys_relay::iys::audit::render(&r));
            let open = r.divergences.iter().filter(|d| !d.repaired).count()
                + r.divergent.saturating_sub(r.divergences.len());
            anyhow::ensure!(
                r.unchecked == 0,
                "{} address(es) could not be checked",
                r.unchecked
            );
            anyhow::ensure!(open == 0, "{open} divergence(s) not repaired");
        }
        Command::Import {
            file,
            dry_run,
            source,
            errors,
        } => {
            let default_source = source
                .map(|s| s.parse::<iys_relay::domain::Source>())
                .transpose()?
                .filter(|s| s.is_hs());
            let opts = ops::import::ImportOptions {
                dry_run,
                default_source,
                label: file.display().to_string(),
            };
            let input =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let brands = config.brands.clone();
            let ledger = ops_ledger(config).await?;
            let r = ops::import::import(&ledger, &brands, &input, &opts).await?;
            let report = ops::import::errors_csv(&r.errors);
            match errors {
                Some(path) => std::fs::write(&path, report)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None if !r.errors.is_empty() => eprint!("{report}"),
                None => {}
            }
            print!("{}", ops::import::render(&r, dry_run));
            anyhow::ensure!(r.invalid == 0, "{} row(s) were not imported", r.invalid);
        }
        Command::User { action } => user(&config, action).await?,
        Command::Deadline { .. } => unreachable!("handled above"),
    }
    Ok(())
}

/// The İYS the operations commands talk to. The simulator `serve` runs lives inside that
/// process, so in simulator mode these commands need the URL of a running one.
fn iys_base(config: &Config, iys_url: Option<String>) -> anyhow::Result<String> {
    Ok(match (iys_url, config.iys.mode) {
        (Some(u), _) => u,
        (None, IysMode::Live) => config.iys.base_url.clone(),
        (None, IysMode::Simulator) => anyhow::bail!(
            "iys.mode is \"simulator\": give --iys-url (e.g. a running `iys-relay iys-sim`)"
        ),
    })
}

/// `export --pack`: writes the zip and prints where, with the three hashes an operator quotes.
fn write_pack(
    config: &Config,
    x: &ops::export::Export,
    now: DateTime<Utc>,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let brands = ops::pack::brand_names(&config.brands);
    let meta = ops::pack::PackMeta {
        service_version: env!("CARGO_PKG_VERSION").into(),
        generated_by: "cli".into(),
        generated_at: now,
    };
    let p = ops::pack::build(x, &brands, &meta)?;
    let path = out.unwrap_or_else(|| PathBuf::from(&p.file_name));
    // The directory, not the path: the default file name carries the recipient in full.
    std::fs::write(&path, &p.zip).with_context(|| {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let dir = dir.unwrap_or(std::path::Path::new("."));
        format!("cannot write the evidence pack in {}", dir.display())
    })?;
    println!("{}", path.display());
    println!("sha256 zip            {}", p.sha256);
    println!("sha256 {:<14} {}", ops::pack::JSON_NAME, p.json_sha256);
    println!("sha256 {:<14} {}", ops::pack::PDF_NAME, p.pdf_sha256);
    Ok(())
}

/// A brand named by its config key or brand code.
fn brand_arg(config: &Config, s: &str) -> anyhow::Result<i64> {
    config
        .brand_named(s)
        .map(|b| b.brand_code)
        .with_context(|| format!("no configured brand has the key or code {s:?}"))
}

/// The ledger (with its writer) over the configured database, for the commands that record.
async fn ops_ledger(config: Config) -> anyhow::Result<iys_relay::ledger::Ledger> {
    let store = store::connect(config.database.url.expose(), 2).await?;
    let app = App::with_store(config, Arc::new(SystemClock), store)?;
    Ok(app.state.ledger)
}

/// The password: one line of standard input (a prompt when it is a terminal), so it stays out
/// of the shell's history and the process list.
fn read_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        eprint!("password (at least 12 characters): ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn user(config: &Config, action: UserAction) -> anyhow::Result<()> {
    use iys_relay::console::users;
    let now = SystemClock.now();
    if let UserAction::List = action {
        let store = store::connect_read_only(config.database.url.expose(), 2).await?;
        for u in store.console_users().await? {
            println!(
                "{:<24} {:<9} {}",
                u.username,
                u.role.as_str(),
                if u.disabled { "disabled" } else { "enabled" }
            );
        }
        return Ok(());
    }
    // Changing users writes: on SQLite that needs the database, so not while `serve` runs.
    let store = store::connect(config.database.url.expose(), 2).await?;
    store.migrate().await?;
    match action {
        UserAction::Add { name, role } => {
            let pw = read_password()?;
            users::add(store.as_ref(), &name, role.into(), &pw, now).await?;
            println!("user {name} added");
        }
        UserAction::Passwd { name } => {
            let pw = read_password()?;
            users::set_password(store.as_ref(), &name, &pw, now).await?;
            println!("password of {name} changed; its sessions ended");
        }
        UserAction::Disable { name } => {
            users::set_disabled(store.as_ref(), &name, true, now).await?;
            println!("user {name} disabled; its sessions ended");
        }
        UserAction::Enable { name } => {
            users::set_disabled(store.as_ref(), &name, false, now).await?;
            println!("user {name} enabled");
        }
        UserAction::List => {}
    }
    Ok(())
}

fn deadline(received: &str, half_days_non_business: bool) -> anyhow::Result<()> {
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339(received)
        .with_context(|| {
            format!("{received:?} is not an RFC 3339 time such as 2026-11-23T10:00:00+03:00")
        })?
        .with_timezone(&Utc);
    let cal = iys_relay::domain::calendar::BusinessCalendar::turkish()
        .with_half_days_business(!half_days_non_business);
    let dl = cal.iys_deadline(at)?;
    println!("{}", dl.with_timezone(&Istanbul).to_rfc3339());
    Ok(())
}

fn parse_sms(config: &Config, to: &str, body: &str) -> anyhow::Result<()> {
    use iys_relay::channels::sms::inbound;
    let sms =
        iys_relay::channels::sms::channel::SmsChannel::new(config.sms.clone(), &config.brands);
    let parsed = inbound::classify(&sms, to, body)?;
    let out = serde_json::json!({
        "intent": parsed.intent,
        "brand": parsed.brand_code,
        "brand_key": parsed.brand_code.and_then(|c| config.brand_by_code(c)).map(|b| b.key.as_str()),
        "keyword": parsed.keyword,
        "reply": inbound::reply_text(config, &sms, to, &parsed),
    });
    println!("{out}");
    Ok(())
}
