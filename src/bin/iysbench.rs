//! İYS efficiency benchmark: İYS requests per reported event, against the built-in simulator.
//!
//! * `backlog`: N pending movements (default 100 000), reporter rounds driven by hand with a
//!   manual clock (pacing and the 300 s poll delay move the clock, not the wall), every İYS
//!   request counted in the simulator's log.
//! * `trickle`: movements arriving one at a time in real time with the real reporter loop; reports
//!   İYS requests per event and receipt → acceptance latency (median, p90, max).
//!
//! * `outage`: N pending movements while İYS answers 503 for `--outage-seconds` (manual clock,
//!   one reporter round a second); counts İYS requests during the outage and until all is done.
//!
//! Usage: `iysbench backlog [--events N] [--database-url URL]`,
//!        `iysbench trickle [--events N] [--interval-ms MS] [--database-url URL]`,
//!        `iysbench outage [--events N] [--outage-seconds S] [--database-url URL]`.
//! The default database is a fresh SQLite file in a temp directory.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use figment::Figment;
use figment::providers::{Format, Toml};
use iys_relay::app::{self, App};
use iys_relay::config::{Config, DEFAULT_TOML};
use iys_relay::domain::time::{Clock, ManualClock, SystemClock};
use iys_relay::domain::{
    Channel, ConsentIntent, ConsentType, Evidence, Recipient, RecipientType, Source, Status,
};
use iys_relay::iys::paced::{manual_sleeper, tokio_sleeper};
use iys_relay::sim::Simulator;
use iys_relay::store::{self, JobState, NewEvent, Store};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    Backlog {
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        #[arg(long)]
        database_url: Option<String>,
    },
    Outage {
        #[arg(long, default_value_t = 5000)]
        events: usize,
        #[arg(long, default_value_t = 60)]
        outage_seconds: i64,
        #[arg(long)]
        database_url: Option<String>,
    },
    Trickle {
        #[arg(long, default_value_t = 50)]
        events: usize,
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn config(database_url: &str) -> anyhow::Result<Config> {
    let fig = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(&format!(
        "[database]\nurl = \"{database_url}\"\nmax_connections = 8\n[iys.sync]\nenabled = false\n"
    )));
    Ok(Config::from_figment(fig)?)
}

fn intent(n: usize, at: DateTime<Utc>) -> anyhow::Result<ConsentIntent> {
    Ok(ConsentIntent {
        brand_code: 700000,
        recipient: Recipient::parse(&format!("+90532{n:07}"))?,
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
        status: Status::Onay,
        source: Source::HsMesaj,
        channel: Channel::Sms,
        consent_at: at,
        provider: "bench".into(),
        provider_message_id: format!("bench-{n}"),
        evidence: Evidence::default(),
    })
}

async fn open_store(url: Option<String>) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let url = match url {
        Some(u) => u,
        None => {
            let dir =
                std::env::temp_dir().join(format!("iysbench-{}", uuid::Uuid::new_v4().simple()));
            format!("sqlite://{}/bench.db", dir.display())
        }
    };
    let s = store::connect(&url, 8).await?;
    s.migrate().await?;
    Ok((s, url))
}

fn open_jobs(by_state: &[(String, i64)]) -> i64 {
    by_state
        .iter()
        .filter(|(s, _)| JobState::parse(s).is_some_and(|j| j.is_open()))
        .map(|(_, n)| n)
        .sum()
}

/// A manual-clock world with `events` pending ONAYs: the store, the simulator, the app.
async fn seeded(
    events: usize,
    url: Option<String>,
) -> anyhow::Result<(Arc<dyn Store>, ManualClock, Simulator, App)> {
    let (store, url) = open_store(url).await?;
    // Monday 10:00 Istanbul: the whole backlog is well inside its deadline.
    let clock =
        ManualClock::new(DateTime::parse_from_rfc3339("2026-11-23T07:00:00Z")?.with_timezone(&Utc));
    let cfg = config(&url)?;
    let sim = Simulator::new(app::sim_config(&cfg), Arc::new(clock.clone()));
    let mut app = App::with_store(cfg, Arc::new(clock.clone()), store.clone())?;
    let base = app.start_simulator(sim.clone()).await?;
    app.attach_iys(&base, manual_sleeper(clock.clone()))?;
    let ledger = &app.state.ledger;

    let started = Instant::now();
    let now = clock.now();
    let times = ledger.job_times(now, now)?;
    for chunk in (0..events).collect::<Vec<_>>().chunks(1000) {
        let items = chunk
            .iter()
            .map(|n| {
                Ok(NewEvent {
                    intent: intent(*n, now)?,
                    received_at: now,
                    report: Some(times),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.record_batch(&items, now).await?;
    }
    eprintln!(
        "seeded {events} pending movements in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((store, clock, sim, app))
}

/// Reporter rounds until no job is open, `step` of simulated time between rounds.
async fn drain(
    app: &App,
    store: &Arc<dyn Store>,
    clock: &ManualClock,
    events: usize,
    step: chrono::Duration,
) -> anyhow::Result<()> {
    let reporter = app.reporter.clone().context("reporter")?;
    let started = Instant::now();
    for round in 0..100_000 {
        reporter.run_once().await?;
        let q = store.queue_summary(1).await?;
        if open_jobs(&q.by_state) == 0 {
            eprintln!(
                "all reported after {round} rounds ({:.1} s wall)",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        // Nothing due now (batches waiting for their poll): let simulated time pass.
        clock.advance(step);
    }
    let q = store.queue_summary(1).await?;
    let done = q
        .by_state
        .iter()
        .find(|(s, _)| s == "done")
        .map_or(0, |(_, n)| *n);
    if done as usize != events {
        bail!("only {done} of {events} done: {:?}", q.by_state);
    }
    Ok(())
}

async fn backlog(events: usize, url: Option<String>) -> anyhow::Result<()> {
    let (store, clock, sim, app) = seeded(events, url).await?;
    drain(&app, &store, &clock, events, chrono::Duration::seconds(30)).await?;
    report("backlog", events, &sim, None);
    Ok(())
}

async fn outage(events: usize, seconds: i64, url: Option<String>) -> anyhow::Result<()> {
    let (store, clock, sim, app) = seeded(events, url).await?;
    let reporter = app.reporter.clone().context("reporter")?;
    sim.set_outage(Some((503, "H192".into())));
    let end = clock.now() + chrono::Duration::seconds(seconds);
    while clock.now() < end {
        reporter.run_once().await?;
        clock.advance(chrono::Duration::seconds(1));
    }
    sim.set_outage(None);
    let during = sim.request_log().len();
    eprintln!("{during} İYS requests during a {seconds} s outage with {events} movements waiting");
    drain(&app, &store, &clock, events, chrono::Duration::seconds(30)).await?;
    report("outage", events, &sim, None);
    Ok(())
}

async fn trickle(events: usize, interval: u64, url: Option<String>) -> anyhow::Result<()> {
    let (store, url) = open_store(url).await?;
    let cfg = config(&url)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sim = Simulator::new(app::sim_config(&cfg), clock.clone());
    let mut app = App::with_store(cfg, clock.clone(), store.clone())?;
    let base = app.start_simulator(sim.clone()).await?;
    app.attach_iys(&base, tokio_sleeper())?;
    app.spawn_workers();
    let mut latencies = Vec::with_capacity(events);
    for n in 0..events {
        let t0 = Instant::now();
        let out = app.state.ledger.record(intent(n, clock.now())?).await?;
        loop {
            let job = store.job_for_event(out.event_id).await?.context("job")?;
            if job.state == JobState::Done {
                break;
            }
            if t0.elapsed() > StdDuration::from_secs(60) {
                bail!("event {n} not accepted within 60 s (state {:?})", job.state);
            }
            tokio::time::sleep(StdDuration::from_millis(2)).await;
        }
        latencies.push(t0.elapsed());
        tokio::time::sleep(StdDuration::from_millis(interval)).await;
    }
    latencies.sort();
    report("trickle", events, &sim, Some(&latencies));
    app.shutdown.cancel();
    Ok(())
}

fn report(mode: &str, events: usize, sim: &Simulator, latencies: Option<&[StdDuration]>) {
    let log = sim.request_log();
    let mut by_kind = std::collections::BTreeMap::new();
    for r in &log {
        let kind = if r.path.contains("/oauth2/token") {
            "token"
        } else if r.path.ends_with("/consents/request") {
            "batch add"
        } else if r.path.contains("/consents/request/") {
            "batch poll"
        } else if r.path.contains("/status") {
            "status query"
        } else if r.path.ends_with("/consents") {
            "single add"
        } else {
            "other"
        };
        *by_kind.entry(kind).or_insert(0usize) += 1;
    }
    let errors = log.iter().filter(|r| r.status >= 400).count();
    let mut out = serde_json::json!({
        "mode": mode,
        "events": events,
        "iys_requests": log.len(),
        "iys_requests_per_event": log.len() as f64 / events as f64,
        "iys_error_responses": errors,
        "by_kind": by_kind,
    });
    if let Some(l) = latencies {
        let pick = |q: f64| l[((l.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
        out["receipt_to_acceptance_ms"] =
            serde_json::json!({"p50": pick(0.5), "p90": pick(0.9), "max": pick(1.0)});
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Backlog {
            events,
            database_url,
        } => backlog(events, database_url).await,
        Mode::Outage {
            events,
            outage_seconds,
            database_url,
        } => outage(events, outage_seconds, database_url).await,
        Mode::Trickle {
            events,
            interval_ms,
            database_url,
        } => trickle(events, interval_ms, database_url).await,
    }
}
