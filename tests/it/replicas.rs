//! Two `iys-relay serve` replicas on ONE PostgreSQL database, reporting to ONE standalone İYS
//! simulator process (`iys-relay iys-sim`), all real processes.
//!
//! Proves: every event reaches İYS exactly once although two reporters claim from one queue
//! (FOR UPDATE SKIP LOCKED + fencing); both replicas together stay inside İYS's 10 requests/s
//! per IP (the shared `iys_pacing` row); and when a replica is SIGKILLed while holding leased
//! jobs, the other takes them over only after the lease lapsed, without a duplicate in İYS.
//!
//! PostgreSQL only (SQLite is single-instance). Fails without IYS_RELAY_TEST_PG_URL unless
//! IYS_RELAY_TEST_SKIP_PG=1. Run alone:
//! `IYS_RELAY_TEST_PG_URL=$(bash .ci/postgres.sh) cargo test --test it replicas::`

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sqlx::AnyPool;

use crate::common::procs::{
    BRAND, LIVE_SECRETS, Procs, free_port, sender, server_toml, signal, signed_sms, wait_for,
};

/// Webhooks fed (each an opt-in from its own sender). At 9 İYS requests/s this is ~25 s of
/// reporting, long enough to kill a replica in the middle.
const N: u32 = 240;
/// Kept at the minimum the config allows, so the survivor takes over within the test.
const LEASE_SECONDS: i64 = 30;
/// İYS: 10 requests per second per IP, over every endpoint.
const IYS_LIMIT_PER_SECOND: usize = 10;

/// The simulator process: production rules and rate limits, batches processed after 1 s.
const SIM_TOML: &str = "[sim]\nbatch_processing_delay = 1\nrate_limits_enabled = true\n";

fn replica_toml(port: u16, db_url: &str, sim_port: u16) -> String {
    format!(
        "{server}
[iys]
mode = \"live\"
base_url = \"http://127.0.0.1:{sim_port}\"
allow_insecure_http = true

[reporter]
# Small claims so both replicas share the work; singles only (a batch may not be polled
# before 300 s, longer than this test).
claim_limit = 10
lease_seconds = {LEASE_SECONDS}
idle_seconds = 1
batch_threshold = 100000
http_timeout_seconds = 10
retry_base_seconds = 1
retry_max_seconds = 5
{LIVE_SECRETS}",
        server = server_toml(port, db_url),
    )
}

async fn job_states(db: &AnyPool) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>("SELECT state, COUNT(*) FROM report_jobs GROUP BY state")
        .fetch_all(db)
        .await
        .expect("job states")
        .into_iter()
        .collect()
}

/// (job id, lease_until_ms) of the jobs `owner` holds leased.
async fn leased_by(db: &AnyPool, owner: &str) -> Vec<(i64, i64)> {
    sqlx::query_as::<_, (i64, i64)>(
        "SELECT id, lease_until_ms FROM report_jobs WHERE state = 'leased' AND lease_owner = $1",
    )
    .bind(owner)
    .fetch_all(db)
    .await
    .expect("leased jobs")
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    http.get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// Requests İYS would refuse if it counted all calls from our IP together, with the simulator's
/// own window rule (a window opens at its first request and lasts one second).
fn over_global_limit(times: &[DateTime<Utc>]) -> usize {
    let mut start: Option<DateTime<Utc>> = None;
    let (mut count, mut over) = (0, 0);
    for &t in times {
        if start.is_none_or(|s| t - s >= Duration::seconds(1)) {
            start = Some(t);
            count = 0;
        }
        count += 1;
        if count > IYS_LIMIT_PER_SECOND {
            over += 1;
        }
    }
    over
}

/// The most requests inside any one-second interval (stricter than any fixed window).
fn max_in_any_second(times: &[DateTime<Utc>]) -> usize {
    let mut j = 0;
    let mut best = 0;
    for i in 0..times.len() {
        while times[i] - times[j] >= Duration::seconds(1) {
            j += 1;
        }
        best = best.max(i + 1 - j);
    }
    best
}

#[test]
fn rate_helpers_count_what_they_claim() {
    let t0 = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    let every = |ms: i64, n: i64| -> Vec<_> {
        (0..n)
            .map(|i| t0 + Duration::milliseconds(i * ms))
            .collect()
    };
    // 9/s pacing: 10 calls fit in the 999 ms after a window opens, never 11.
    assert_eq!(over_global_limit(&every(111, 100)), 0);
    assert_eq!(max_in_any_second(&every(111, 100)), 10);
    // 20/s: half of each second's calls are over.
    assert_eq!(over_global_limit(&every(50, 40)), 20);
    assert_eq!(max_in_any_second(&every(50, 40)), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_report_once_within_the_global_rate_and_survive_a_kill() {
    let Some(admin) = crate::common::pg_admin_url() else {
        return;
    };
    let db_url = crate::common::fresh_pg_database(&admin).await;
    let db = AnyPool::connect(&db_url).await.expect("connect test db");
    let http = reqwest::Client::new();
    let mut procs = Procs::new();

    let sim_port = free_port();
    let sim = format!("http://127.0.0.1:{sim_port}");
    procs.spawn(
        "sim",
        SIM_TOML,
        &["iys-sim", "--port", &sim_port.to_string()],
    );
    procs
        .wait_http_ok("sim", &format!("{sim}/__sim/request-log"))
        .await;

    let ports = [free_port(), free_port()];
    assert_ne!(ports[0], ports[1]);
    for (name, port) in ["a", "b"].into_iter().zip(ports) {
        procs.spawn(name, &replica_toml(port, &db_url, sim_port), &["serve"]);
    }
    let bases = ports.map(|p| format!("http://127.0.0.1:{p}"));
    for (name, base) in ["a", "b"].into_iter().zip(&bases) {
        procs.wait_http_ok(name, &format!("{base}/readyz")).await;
    }
    let owner_a = procs.reporter_owner("a").await;

    // Feed N signed webhooks, alternating replicas, from 8 concurrent senders.
    let run = rand::random::<u32>();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..8u32 {
        let (http, bases) = (http.clone(), bases.clone());
        tasks.spawn(async move {
            let mut sent = Vec::new();
            for i in (w..N).step_by(8) {
                let sid = format!("SMrep{run:08x}{i:06}");
                let from = sender(run, i);
                let r = signed_sms(&http, &bases[(i % 2) as usize], &sid, &from)
                    .send()
                    .await
                    .expect("webhook");
                assert_eq!(r.status(), 200, "webhook {i}: {:?}", r.text().await);
                sent.push(from);
            }
            sent
        });
    }
    let mut senders = Vec::new();
    while let Some(r) = tasks.join_next().await {
        senders.extend(r.expect("sender task"));
    }
    assert_eq!(senders.len(), N as usize);

    // SIGKILL replica a while it holds leased jobs, once reporting is well under way. It is
    // stopped (SIGSTOP) before its leases are read and killed while still stopped: running, it
    // could finish every lease it was seen holding before the kill landed (seen in CI).
    let pid_a = procs.pid("a");
    wait_for("replica a to hold leases mid-run", || async {
        let done = job_states(&db).await.get("done").copied().unwrap_or(0);
        if done < i64::from(N / 4) {
            return None;
        }
        signal(pid_a, "STOP");
        if leased_by(&db, &owner_a).await.is_empty() {
            signal(pid_a, "CONT");
            return None;
        }
        Some(())
    })
    .await;
    procs.kill("a");
    let orphans = leased_by(&db, &owner_a).await;
    assert!(
        !orphans.is_empty(),
        "replica a's leases finished while it was stopped; nothing was left to take over"
    );

    let states = wait_for("every report job to be done", || async {
        let s = job_states(&db).await;
        let open: i64 = ["pending", "leased", "batched"]
            .iter()
            .filter_map(|k| s.get(*k))
            .sum();
        (open == 0).then_some(s)
    })
    .await;
    assert_eq!(
        states,
        BTreeMap::from([("done".to_string(), i64::from(N))]),
        "every job done, none failed, expired or superseded"
    );
    procs.assert_running("b");

    // The survivor took a's jobs over only once the lease had lapsed (a new claim: attempts 2).
    for (id, lease_until_ms) in &orphans {
        let (attempts, finished_ms): (i64, i64) =
            sqlx::query_as("SELECT attempts, updated_at_ms FROM report_jobs WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .expect("orphan job");
        assert!(
            finished_ms >= *lease_until_ms,
            "job {id} finished before a's lease ran out"
        );
        assert!(attempts >= 2, "job {id} was not claimed again");
    }

    // İYS holds exactly one movement per sender, the one whose transactionId the job stored.
    let movements = get_json(&http, &format!("{sim}/__sim/movements?brand={BRAND}")).await;
    let movements = movements.as_array().expect("movements");
    let mut per_recipient: HashMap<&str, Vec<&str>> = HashMap::new();
    for m in movements {
        per_recipient
            .entry(m["recipient"].as_str().expect("recipient"))
            .or_default()
            .push(m["transaction_id"].as_str().expect("transaction_id"));
    }
    assert_eq!(movements.len(), N as usize, "one movement per event");
    let jobs: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT recipient, transaction_id FROM report_jobs")
            .fetch_all(&db)
            .await
            .expect("jobs");
    for (recipient, txid) in &jobs {
        let seen = per_recipient.get(recipient.as_str());
        assert_eq!(
            seen.map(|v| v.len()),
            Some(1),
            "{recipient}: movements {seen:?}"
        );
        assert_eq!(seen.map(|v| v[0]), txid.as_deref(), "{recipient}");
    }
    for s in &senders {
        assert!(
            per_recipient.contains_key(s.as_str()),
            "{s} never reached İYS"
        );
    }

    // Request count: one add per event, plus at most one resend per orphan (a call a made
    // just before dying); the rest is tokens and pulls.
    let log = get_json(&http, &format!("{sim}/__sim/request-log")).await;
    let log = log.as_array().expect("request log");
    let adds = log
        .iter()
        .filter(|l| {
            l["method"] == "POST" && l["path"].as_str().is_some_and(|p| p.ends_with("/consents"))
        })
        .count();
    assert!(
        (N as usize..=N as usize + orphans.len()).contains(&adds),
        "{adds} add calls for {N} events and {} orphans",
        orphans.len()
    );
    assert!(
        log.len() <= adds + 20,
        "{} İYS calls for {adds} adds",
        log.len()
    );
    let refused: Vec<&Value> = log
        .iter()
        .filter(|l| l["status"].as_u64().is_none_or(|s| s >= 400))
        .collect();
    assert!(
        refused.is_empty(),
        "İYS refused calls (H124 = rate): {refused:?}"
    );

    // Both replicas together stayed inside İYS's per-IP limit.
    let mut calls: Vec<(DateTime<Utc>, String)> = log
        .iter()
        .map(|l| {
            let at = l["at"].as_str().and_then(|s| s.parse().ok());
            (
                at.expect("arrival time"),
                format!("{} {}", l["method"], l["path"]),
            )
        })
        .collect();
    calls.sort();
    let times: Vec<DateTime<Utc>> = calls.iter().map(|c| c.0).collect();
    let busiest = max_in_any_second(&times);
    eprintln!("{} İYS calls; busiest second: {busiest}", times.len());
    let timeline: Vec<String> = calls
        .iter()
        .map(|(t, c)| format!("{} {c}", t.format("%H:%M:%S%.3f")))
        .collect();
    assert_eq!(
        over_global_limit(&times),
        0,
        "the replicas together broke İYS's {IYS_LIMIT_PER_SECOND}/s limit (busiest second: \
         {busiest}); calls:\n{}",
        timeline.join("\n")
    );
}
