//! The `iys-relay` command line. The only place that uses `anyhow`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Europe::Istanbul;
use clap::{Parser, Subcommand};

use iys_relay::app::{self, App};
use iys_relay::config::Config;
use iys_relay::domain::time::SystemClock;
use iys_relay::store;
use iys_relay::telemetry::{self, LogFormat};

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
    /// Run the İYS simulator alone (for manual testing against `iys.mode = "live"`).
    IysSim {
        #[arg(long, default_value_t = 8089)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
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
            let store = store::connect(config.database.url.expose(), 2).await?;
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
        Command::IysSim { port, bind } => {
            let addr = format!("{bind}:{port}");
            let sim =
                iys_relay::sim::Simulator::new(app::sim_config(&config), Arc::new(SystemClock));
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
        Command::Deadline { .. } => unreachable!("handled above"),
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
    let sms = inbound::SmsChannel::new(config.sms.clone(), &config.brands);
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
