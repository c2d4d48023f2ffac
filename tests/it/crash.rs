//! Crash durability with a real process: one `iys-relay serve` takes
//! signed Twilio SMS webhooks from concurrent senders and is SIGKILLed mid-run; restarted on the
//! same database it must hold every message it acknowledged (HTTP 200) exactly once, an
//! unacknowledged one at most once, and its reporter must then report all of them.
//!
//! Both backends: SQLite (a file in a temp dir) and PostgreSQL (a fresh database; fails without
//! IYS_RELAY_TEST_PG_URL unless IYS_RELAY_TEST_SKIP_PG=1). Run alone:
//! `IYS_RELAY_TEST_PG_URL=$(bash .ci/postgres.sh) cargo test --test it crash::`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use iys_relay::store::{self, JobState};

use crate::common::procs::{Procs, free_port, sender, server_toml, signed_sms, wait_for};

/// Acknowledged webhooks before the kill (each becomes one İYS call after the restart, at 9/s).
const ACKS_BEFORE_KILL: usize = 60;
const WORKERS: u32 = 8;
/// Upper bound on messages sent, so a server that never dies cannot make the senders run on.
const MAX_MESSAGES: u32 = 2000;

/// The in-process simulator; the first run records only (its reporter would leave leases that
/// block the restart for `lease_seconds`; tests/it/replicas.rs covers lease take-over).
fn serve_toml(port: u16, db_url: &str, reporter: bool) -> String {
    format!(
        "{}
[iys.sync]
enabled = false

[reporter]
enabled = {reporter}
idle_seconds = 1
batch_threshold = 100000
retry_base_seconds = 1
retry_max_seconds = 5
",
        server_toml(port, db_url)
    )
}

#[derive(Debug, Clone)]
struct Sent {
    sid: String,
    from: String,
    acked: bool,
}

/// `state -> count` of the report jobs, from `/metrics` (works while SQLite is locked).
async fn job_gauges(http: &reqwest::Client, base: &str) -> Option<BTreeMap<String, f64>> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let gauges: BTreeMap<String, f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("iys_relay_report_jobs{state=\"")?;
            let (state, value) = rest.split_once("\"} ")?;
            Some((state.to_string(), value.trim().parse().ok()?))
        })
        .collect();
    (!gauges.is_empty()).then_some(gauges)
}

async fn crash_and_restart(db_url: String, mut procs: Procs) {
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    procs.spawn("relay", &serve_toml(port, &db_url, false), &["serve"]);
    procs.wait_http_ok("relay", &format!("{base}/readyz")).await;

    // Concurrent senders until the server dies under them.
    let run = rand::random::<u32>();
    let next = Arc::new(AtomicU32::new(0));
    let acks = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (http, base, next, acks) = (http.clone(), base.clone(), next.clone(), acks.clone());
        tasks.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= MAX_MESSAGES {
                    return sent;
                }
                let sid = format!("SMcrash{run:08x}{i:06}");
                let from = sender(run, i);
                let r = signed_sms(&http, &base, &sid, &from).send().await;
                // Only a whole 200 response is an acknowledgement; a broken connection means
                // the server is gone.
                let (acked, gone) = match r {
                    Ok(r) if r.status() == 200 => {
                        let whole = r.bytes().await.is_ok();
                        (whole, !whole)
                    }
                    Ok(_) => (false, false),
                    Err(_) => (false, true),
                };
                sent.push(Sent { sid, from, acked });
                if acked {
                    acks.fetch_add(1, Ordering::SeqCst);
                }
                if gone {
                    return sent;
                }
            }
        });
    }
    wait_for("enough acknowledged webhooks", || async {
        (acks.load(Ordering::SeqCst) >= ACKS_BEFORE_KILL).then_some(())
    })
    .await;
    procs.kill("relay");
    let mut sent = Vec::new();
    while let Some(r) = tasks.join_next().await {
        sent.extend(r.expect("sender task"));
    }
    let acked = sent.iter().filter(|s| s.acked).count();
    assert!(acked >= ACKS_BEFORE_KILL, "{acked} acknowledged");
    assert!(
        sent.iter().any(|s| !s.acked),
        "no request failed after the kill"
    );

    // Restart on the same database, reporter on: every recorded message must reach İYS.
    procs.spawn("relay", &serve_toml(port, &db_url, true), &["serve"]);
    procs.wait_http_ok("relay", &format!("{base}/readyz")).await;
    let gauges = wait_for("the restarted reporter to finish every job", || async {
        let g = job_gauges(&http, &base).await?;
        let open: f64 = ["pending", "leased", "batched"]
            .iter()
            .filter_map(|s| g.get(*s))
            .sum();
        (open == 0.0 && g.get("done").copied().unwrap_or(0.0) >= acked as f64).then_some(g)
    })
    .await;
    // SQLite is single-instance: stop the server before reading its file.
    procs.kill("relay");

    let store = store::connect(&db_url, 2).await.expect("reopen store");
    let mut found = 0;
    for s in &sent {
        let events: Vec<_> = store
            .events_for_recipient(&s.from)
            .await
            .expect("events")
            .into_iter()
            .filter(|e| e.provider_message_id == s.sid)
            .collect();
        if s.acked {
            assert_eq!(events.len(), 1, "acknowledged {} is not stored once", s.sid);
        } else {
            assert!(events.len() <= 1, "unacknowledged {} stored twice", s.sid);
        }
        for e in &events {
            found += 1;
            let job = store
                .job_for_event(e.id)
                .await
                .expect("job")
                .unwrap_or_else(|| panic!("{} has no report job", s.sid));
            assert_eq!(job.state, JobState::Done, "{}: {job:?}", s.sid);
            assert!(
                job.transaction_id.is_some(),
                "{}: no İYS transaction",
                s.sid
            );
        }
    }
    // Nothing else was recorded, and every job is done.
    let summary = store.queue_summary(1).await.expect("summary");
    let jobs: i64 = summary.by_state.iter().map(|(_, n)| n).sum();
    assert_eq!(
        jobs, found,
        "jobs {:?} for {found} stored messages",
        summary.by_state
    );
    assert_eq!(
        gauges.get("done").copied(),
        Some(found as f64),
        "{gauges:?}"
    );
    eprintln!(
        "{} sent, {acked} acknowledged, {found} stored and reported",
        sent.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_every_acknowledged_webhook_across_a_sigkill() {
    let procs = Procs::new();
    let db_url = format!("sqlite://{}/ledger.db", procs.dir().display());
    crash_and_restart(db_url, procs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keeps_every_acknowledged_webhook_across_a_sigkill() {
    let Some(admin) = crate::common::pg_admin_url() else {
        return;
    };
    let db_url = crate::common::fresh_pg_database(&admin).await;
    crash_and_restart(db_url, Procs::new()).await;
}
