//! Load generator for a LOCAL iys-relay (127.0.0.1 / localhost only), and a ledger seeder.
//!
//! `loadgen sms|noop|lookup|bulk-check` drives one route either open-loop at `--rate` requests/s
//! (latency measured from the intended send time, so a stalled server cannot hide its queue) or
//! flat out with `--concurrency` workers, bounded by `--duration` and `--requests`; it reports
//! throughput, p50/p90/p99/max and errors by status. `loadgen seed` writes ledger rows straight
//! through `iys_relay::store` in batches of 1000. See BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::mpsc;

use iys_relay::channels::sms::signature::twilio_signature;
use iys_relay::domain::{
    Channel, ConsentIntent, ConsentType, Evidence, Recipient, RecipientType, Source, Status,
};
use iys_relay::store::{self, JobTimes, NewEvent};

/// Hard bounds: a load run is a measurement, never an open-ended flood.
const MAX_DURATION_SECS: u64 = 600;
const MAX_REQUESTS: u64 = 10_000_000;
const MAX_CONCURRENCY: usize = 1024;

#[derive(Parser)]
#[command(name = "loadgen", about = "Load generator for a local iys-relay")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Signed Twilio SMS webhooks (unique MessageSid, varying senders, RET/EVET/other).
    Sms(Load),
    /// GET /healthz: the same server doing no IO, the baseline.
    Noop(Load),
    /// GET /v1/consents/{recipient}?type=MESAJ for varying recipients.
    Lookup(Load),
    /// POST /v1/consents/check with 1000 recipients.
    BulkCheck(Load),
    /// Insert N ledger rows (events + state + report jobs) directly through the store.
    Seed(Seed),
    /// Writes wrk scripts (and pre-signed webhooks) for the same requests, so that a light
    /// client can measure them too: `wrk -s <out>/sms.lua …`.
    WrkScripts(WrkScripts),
}

#[derive(clap::Args)]
struct WrkScripts {
    #[command(flatten)]
    load: Load,
    /// Directory the scripts and request files are written to.
    #[arg(long)]
    out: std::path::PathBuf,
    /// wrk threads the sms script is prepared for (`wrk -t`), one request file each.
    #[arg(long, default_value_t = 2)]
    threads: u32,
}

#[derive(clap::Args, Clone)]
struct Load {
    /// Base URL of the server; only 127.0.0.1, ::1 or localhost are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Open loop at this many requests per second (else flat out with --concurrency).
    #[arg(long)]
    rate: Option<u32>,
    /// Workers (flat out) or the most requests in flight (with --rate).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many requests.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// API bearer token (lookup, bulk-check).
    #[arg(long, env = "LOADGEN_API_TOKEN", default_value = "dev-token-change-me")]
    token: String,
    /// Twilio auth token the server checks signatures with (sms).
    #[arg(
        long,
        env = "LOADGEN_TWILIO_TOKEN",
        default_value = "dev-twilio-auth-token"
    )]
    twilio_token: String,
    /// The server's server.public_base_url (what the signature covers); defaults to --target.
    #[arg(long)]
    public_url: Option<String>,
    /// The inbound number the SMS are sent to (must be in [[sms.numbers]]).
    #[arg(long, default_value = "+908501234567")]
    to: String,
}

#[derive(clap::Args)]
struct Seed {
    /// The server's database.url (stop the server first when it is SQLite: it holds a lock).
    #[arg(long, default_value = "sqlite://data/iys-relay.db")]
    database_url: String,
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    #[arg(long, default_value_t = 700000)]
    brand_code: i64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (kind, load) = match cli.mode {
        Mode::Seed(s) => return seed(s).await,
        Mode::WrkScripts(w) => return wrk_scripts(w),
        Mode::Sms(l) => (Kind::Sms, l),
        Mode::Noop(l) => (Kind::Noop, l),
        Mode::Lookup(l) => (Kind::Lookup, l),
        Mode::BulkCheck(l) => (Kind::BulkCheck, l),
    };
    check_target(&load.target)?;
    if load.duration == 0 || load.duration > MAX_DURATION_SECS {
        bail!("--duration must be 1..={MAX_DURATION_SECS} seconds");
    }
    check_requests(load.requests)?;
    if load.concurrency == 0 || load.concurrency > MAX_CONCURRENCY {
        bail!("--concurrency must be 1..={MAX_CONCURRENCY}");
    }
    if load.rate == Some(0) {
        bail!("--rate must be at least 1");
    }
    let report = drive(kind, &load).await?;
    if load.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// Writes `sms.lua` (replays pre-signed webhooks from `sms-<thread>.txt`, each once while the
/// files last), `lookup.lua` and the request files. wrk's own Lua cannot sign, so the webhooks
/// are signed here, ahead of the run, and the client spends nothing on them.
fn wrk_scripts(w: WrkScripts) -> anyhow::Result<()> {
    use std::io::Write;
    check_target(&w.load.target)?;
    check_requests(w.load.requests)?;
    if !(1..=64).contains(&w.threads) {
        bail!("--threads must be 1..=64");
    }
    std::fs::create_dir_all(&w.out)?;
    let reqs = Requests::new(Kind::Sms, &w.load);
    let per_thread = w.load.requests.div_ceil(u64::from(w.threads));
    for t in 0..u64::from(w.threads) {
        let path = w.out.join(format!("sms-{t}.txt"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for i in t * per_thread..(t + 1) * per_thread {
            let (sig, form) = reqs.sms(i);
            writeln!(f, "{sig}\t{form}")?;
        }
        f.flush()?;
    }
    let dir = w.out.canonicalize()?;
    let host = url::Url::parse(&w.load.target)?
        .host_str()
        .unwrap_or("127.0.0.1")
        .to_string();
    let sms = WRK_SMS
        .replace("@DIR@", &dir.display().to_string())
        .replace("@HOST@", &host);
    std::fs::write(w.out.join("sms.lua"), sms)?;
    std::fs::write(
        w.out.join("lookup.lua"),
        WRK_LOOKUP.replace("@TOKEN@", &w.load.token),
    )?;
    println!(
        "wrote {} signed webhooks for {} wrk threads to {}",
        per_thread * u64::from(w.threads),
        w.threads,
        dir.display()
    );
    Ok(())
}

const WRK_SMS: &str = r#"-- Written by `loadgen wrk-scripts`: replays pre-signed Twilio SMS webhooks.
-- Each thread reads its own file; past its end it starts again, and those repeats are
-- duplicates (cheaper for the server), so size --requests above rate x duration.
local made = 0
function setup(thread)
  thread:set("file", "@DIR@/sms-" .. made .. ".txt")
  made = made + 1
end
local reqs, n, i = {}, 0, 0
function init(args)
  for line in io.lines(file) do
    local sig, body = line:match("^([^\t]*)\t(.*)$")
    n = n + 1
    reqs[n] = "POST /webhooks/twilio/sms HTTP/1.1\r\nHost: @HOST@\r\n" ..
      "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: " .. sig ..
      "\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body
  end
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
"#;

const WRK_LOOKUP: &str = r#"-- Written by `loadgen wrk-scripts`: "may we send?" for a million different recipients.
local i = 0
function request()
  i = i + 1
  return wrk.format("GET", string.format("/v1/consents/%%2B90532%07d?type=MESAJ", 1000000 + i % 1000000),
    { ["Authorization"] = "Bearer @TOKEN@" })
end
"#;

fn check_requests(n: u64) -> anyhow::Result<()> {
    if n == 0 || n > MAX_REQUESTS {
        bail!("--requests must be 1..={MAX_REQUESTS}");
    }
    Ok(())
}

/// Workplace rule: load is only ever aimed at this machine.
fn check_target(target: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(target).with_context(|| format!("--target {target:?}"))?;
    if url.scheme() != "http" {
        bail!("--target must be http:// (a local server)");
    }
    match url.host() {
        Some(url::Host::Domain("localhost")) => Ok(()),
        Some(url::Host::Ipv4(ip)) if ip == std::net::Ipv4Addr::LOCALHOST => Ok(()),
        Some(url::Host::Ipv6(ip)) if ip == std::net::Ipv6Addr::LOCALHOST => Ok(()),
        _ => bail!("refusing {target}: loadgen only targets 127.0.0.1, ::1 or localhost"),
    }
}

#[derive(Clone, Copy, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Sms,
    Noop,
    Lookup,
    BulkCheck,
}

/// Builds request number `i` of a run.
struct Requests {
    kind: Kind,
    base: String,
    sign_url: String,
    load: Load,
    run_id: String,
    /// One body shared by every request of a bulk-check run.
    bulk_body: Arc<Vec<u8>>,
}

/// A valid Turkish mobile number that varies with `i` (a million distinct ones).
fn phone(i: u64) -> String {
    format!("+90532{:07}", 1_000_000 + i % 1_000_000)
}

impl Requests {
    fn new(kind: Kind, load: &Load) -> Self {
        let base = load.target.trim_end_matches('/').to_string();
        let public = load.public_url.clone().unwrap_or_else(|| base.clone());
        let recipients: Vec<String> = (0..1000).map(phone).collect();
        let bulk = serde_json::json!({"type": "MESAJ", "recipients": recipients});
        Self {
            kind,
            sign_url: format!("{}/webhooks/twilio/sms", public.trim_end_matches('/')),
            base,
            load: load.clone(),
            run_id: format!("{:08x}", rand::random::<u32>()),
            bulk_body: Arc::new(serde_json::to_vec(&bulk).unwrap_or_default()),
        }
    }

    /// Webhook `i`: its Twilio signature and form body (unique MessageSid, a sender out of a
    /// million, RET / EVET / a message that is not a command in turn).
    fn sms(&self, i: u64) -> (String, String) {
        let sid = format!("SM{}{:024x}", self.run_id, i);
        let body = ["RET", "EVET", "merhaba"][(i % 3) as usize];
        let params: Vec<(String, String)> = [
            ("MessageSid", sid.as_str()),
            ("SmsSid", sid.as_str()),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", &phone(i.wrapping_mul(7919))),
            ("To", &self.load.to),
            ("Body", body),
            ("NumMedia", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sig = twilio_signature(&self.load.twilio_token, &self.sign_url, &params);
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        (sig, form)
    }

    fn build(&self, http: &reqwest::Client, i: u64) -> reqwest::RequestBuilder {
        match self.kind {
            Kind::Noop => http.get(format!("{}/healthz", self.base)),
            Kind::Lookup => http
                .get(format!(
                    "{}/v1/consents/%2B{}?type=MESAJ",
                    self.base,
                    &phone(i)[1..]
                ))
                .bearer_auth(&self.load.token),
            Kind::BulkCheck => http
                .post(format!("{}/v1/consents/check", self.base))
                .bearer_auth(&self.load.token)
                .header("content-type", "application/json")
                .body(self.bulk_body.as_ref().clone()),
            Kind::Sms => {
                let (sig, form) = self.sms(i);
                http.post(format!("{}/webhooks/twilio/sms", self.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header("x-twilio-signature", sig)
                    .body(form)
            }
        }
    }
}

/// One finished request: latency in microseconds and status (0 = transport error).
type Sample = (u64, u16);

async fn send(reqs: &Requests, http: &reqwest::Client, i: u64, started: Instant) -> Sample {
    let status = match reqs.build(http, i).send().await {
        // Read the whole body: the response is not served until it is.
        Ok(r) => {
            let s = r.status().as_u16();
            match r.bytes().await {
                Ok(_) => s,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    };
    (started.elapsed().as_micros() as u64, status)
}

async fn drive(kind: Kind, load: &Load) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(load.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let reqs = Arc::new(Requests::new(kind, load));
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(load.duration);
    let next = Arc::new(AtomicU64::new(0));
    let limit = load.requests;

    let producer = match load.rate {
        None => {
            // Closed loop: each worker sends its next request when the previous one is answered.
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..load.concurrency {
                let (reqs, http, tx, next) = (reqs.clone(), http.clone(), tx.clone(), next.clone());
                set.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= limit || Instant::now() >= deadline {
                            break;
                        }
                        let _ = tx.send(send(&reqs, &http, i, Instant::now()).await);
                    }
                });
            }
            tokio::spawn(async move { while set.join_next().await.is_some() {} })
        }
        Some(rate) => {
            // Open loop: request i is due at start + i/rate whatever the server does.
            let sem = Arc::new(tokio::sync::Semaphore::new(load.concurrency));
            let (reqs, http, tx) = (reqs.clone(), http.clone(), tx.clone());
            tokio::spawn(async move {
                let period = Duration::from_secs_f64(1.0 / f64::from(rate));
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let mut set = tokio::task::JoinSet::new();
                for i in 0..limit {
                    let due = tick.tick().await.into_std();
                    if due >= deadline {
                        break;
                    }
                    let Ok(permit) = sem.clone().acquire_owned().await else {
                        break;
                    };
                    let (reqs, http, tx) = (reqs.clone(), http.clone(), tx.clone());
                    set.spawn(async move {
                        let _ = tx.send(send(&reqs, &http, i, due).await);
                        drop(permit);
                    });
                    while set.try_join_next().is_some() {}
                }
                while set.join_next().await.is_some() {}
            })
        }
    };
    drop(tx);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    while let Some((us, status)) = rx.recv().await {
        hist.saturating_record(us.max(1));
        let key = if status == 0 {
            "transport_error".to_string()
        } else {
            status.to_string()
        };
        *by_status.entry(key).or_default() += 1;
    }
    producer.await?;
    let elapsed = start.elapsed().as_secs_f64();
    let ok = by_status
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    Ok(Report {
        mode: kind,
        target: load.target.clone(),
        rate: load.rate,
        concurrency: load.concurrency,
        requests: hist.len(),
        ok,
        elapsed_s: elapsed,
        throughput_rps: hist.len() as f64 / elapsed.max(1e-9),
        latency_ms: Latency {
            p50: hist.value_at_quantile(0.50) as f64 / 1000.0,
            p90: hist.value_at_quantile(0.90) as f64 / 1000.0,
            p99: hist.value_at_quantile(0.99) as f64 / 1000.0,
            max: hist.max() as f64 / 1000.0,
            mean: hist.mean() / 1000.0,
        },
        by_status,
    })
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

#[derive(Serialize)]
struct Report {
    mode: Kind,
    target: String,
    rate: Option<u32>,
    concurrency: usize,
    requests: u64,
    ok: u64,
    elapsed_s: f64,
    throughput_rps: f64,
    latency_ms: Latency,
    by_status: BTreeMap<String, u64>,
}

impl Report {
    fn text(&self) -> String {
        let mode = serde_json::to_value(self.mode).unwrap_or_default();
        let how = match self.rate {
            Some(r) => format!("open loop at {r}/s, ≤{} in flight", self.concurrency),
            None => format!("flat out, {} workers", self.concurrency),
        };
        let l = &self.latency_ms;
        let mut s = format!(
            "mode {} against {} ({how})\n\
             requests {} ({} 2xx) in {:.2} s = {:.1} req/s\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}\n\
             by status:",
            mode.as_str().unwrap_or("?"),
            self.target,
            self.requests,
            self.ok,
            self.elapsed_s,
            self.throughput_rps,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            l.mean,
        );
        for (k, n) in &self.by_status {
            s.push_str(&format!(" {k}={n}"));
        }
        s.push('\n');
        s
    }
}

/// Writes `rows` RET movements for distinct recipients, 1000 per transaction.
async fn seed(s: Seed) -> anyhow::Result<()> {
    const BATCH: u64 = 1000;
    let store = store::connect(&s.database_url, 4).await?;
    store.migrate().await?;
    let run = format!("{:08x}", rand::random::<u32>());
    let started = Instant::now();
    let mut done = 0u64;
    while done < s.rows {
        let n = BATCH.min(s.rows - done);
        let now = Utc::now();
        let times = JobTimes {
            due_at: now,
            target_at: now + chrono::Duration::days(1),
            deadline_at: now + chrono::Duration::days(3),
        };
        let items: Vec<NewEvent> = (done..done + n)
            .map(|i| {
                let sid = format!("seed-{run}-{i}");
                Ok(NewEvent {
                    intent: ConsentIntent {
                        brand_code: s.brand_code,
                        // Ten million distinct numbers: rows beyond that repeat addresses.
                        recipient: Recipient::parse(&format!("+90533{:07}", i % 10_000_000))?,
                        recipient_type: RecipientType::Bireysel,
                        consent_type: ConsentType::Mesaj,
                        status: Status::Ret,
                        source: Source::HsMesaj,
                        channel: Channel::Sms,
                        consent_at: now,
                        provider: "loadgen-seed".into(),
                        provider_message_id: sid.clone(),
                        evidence: Evidence {
                            raw: serde_json::json!({"Body": "RET", "MessageSid": sid}),
                            ..Evidence::default()
                        },
                    },
                    received_at: now,
                    report: Some(times),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        store.record_batch(&items, now).await?;
        done += n;
        if done.is_multiple_of(100_000) || done == s.rows {
            eprintln!(
                "seeded {done}/{} rows ({:.0} rows/s)",
                s.rows,
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "seeded {done} rows into {} in {:.1} s",
        store::redact_url(&s.database_url),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_targets_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080/",
        ] {
            assert!(check_target(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "https://127.0.0.1:8080",
            "http://127.0.0.2",
            "http://localhost.example.com",
            "nonsense",
        ] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_are_valid_and_vary() {
        assert_ne!(phone(1), phone(2));
        for i in [0, 1, 999_999, 1_000_000, u64::MAX] {
            assert!(Recipient::parse(&phone(i)).is_ok(), "{}", phone(i));
        }
        assert!(Recipient::parse("+905330000000").is_ok());
        assert!(Recipient::parse("+905339999999").is_ok());
    }
}
