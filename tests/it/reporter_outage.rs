//! The reporter during İYS outages, against the simulator behind the fault-injecting front of
//! `tests/it/common/faulty_iys.rs` (every request that reaches "İYS" is logged there with its
//! manual-clock time, faulted or not). Runs on SQLite and PostgreSQL.
//!
//! - The number of İYS requests during a 60 s outage grows with the outage's length, not with
//!   the queue: the same small number (at most [`OUTAGE_BUDGET`]) for 50 and for 5,000 waiting
//!   movements.
//! - After a 503 with `Retry-After: 12`, no request for that brand (nor a token request) is sent
//!   for 12 s.
//! - An HTML 403 page without an İYS error code (a WAF in front of İYS) is an outage, not
//!   İYS's verdict on the movements: no job may end `failed`.
//!
//! ```sh
//! export IYS_RELAY_TEST_PG_URL=postgres://postgres@127.0.0.1:55432/postgres
//! cargo test --test it reporter_outage::
//! ```

use crate::common::faulty_iys::{Fault, IysWorld};
use crate::common::{TestStore, intent};
use chrono::{DateTime, Duration, Utc};
use iys_relay::domain::Status;
use iys_relay::store::JobState;
use iys_relay::store::queue::AlertKind;

const BRAND: i64 = 700000;
const START: &str = "2026-03-04 10:00:00";
/// Production reporter settings, except the shortest lease the config allows.
const REPORTER_TOML: &str = "[reporter]\nlease_seconds = 30\n";
/// İYS requests allowed during a 60 s outage, whatever the queue's length.
const OUTAGE_BUDGET: usize = 10;

async fn store(pg: bool) -> Option<TestStore> {
    if pg {
        crate::common::postgres().await
    } else {
        Some(crate::common::sqlite().await)
    }
}

fn phone(prefix: &str, n: usize) -> String {
    format!("+90{prefix}{n:07}")
}

/// Records `recipients` × `status` concurrently (the ledger's group commit), consented 2 s ago.
async fn record_all(w: &IysWorld, tag: &str, recipients: &[String], status: Status) {
    let ledger = w.app.state.ledger.clone();
    let at = w.now() - Duration::seconds(2);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, r) in recipients.iter().enumerate() {
        let l = ledger.clone();
        let it = intent(&format!("{tag}-{i}"), r, status, at);
        tasks.spawn(async move { l.record(it).await.expect("record") });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("join");
    }
}

/// Rounds 5 min apart until nothing is open (bounded).
async fn settle(w: &IysWorld) {
    for _ in 0..60 {
        w.reporter().run_once().await.expect("round");
        if w.open_jobs().await == 0 {
            return;
        }
        w.clock.advance(Duration::minutes(5));
    }
    panic!("the queue did not drain: {} open jobs", w.open_jobs().await);
}

/// Rounds every `step` of manual-clock time until `until` (pacing may move the clock on too).
async fn rounds_until(w: &IysWorld, until: DateTime<Utc>, step: Duration) -> usize {
    let mut n = 0;
    while w.now() < until {
        w.reporter().run_once().await.expect("round");
        n += 1;
        w.clock.advance(step);
    }
    n
}

struct OutageCount {
    waiting: usize,
    requests: usize,
    attempts: i64,
    rounds: usize,
    by_path: Vec<(String, usize)>,
}

/// `n` waiting movements for distinct addresses: a third RETs over ONAYs İYS is known to hold,
/// a third new ONAYs, a third RETs for addresses the ledger knows nothing about at İYS (these
/// need the multi-status pre-check). Then İYS is down (503 H192) for 60 s while the reporter
/// runs a round every second.
async fn outage_requests(ts: TestStore, n: usize) -> OutageCount {
    let w = IysWorld::start(ts, START, REPORTER_TOML).await;
    let third = n / 3;
    let confirmed: Vec<String> = (0..third).map(|i| phone("532", i)).collect();
    let fresh: Vec<String> = (0..third).map(|i| phone("533", i)).collect();
    let unknown: Vec<String> = (0..n - 2 * third).map(|i| phone("534", i)).collect();
    // The confirmed ONAYs: reported and accepted before the outage.
    record_all(&w, "pre", &confirmed, Status::Onay).await;
    settle(&w).await;
    assert_eq!(
        w.sim
            .movements(BRAND)
            .iter()
            .filter(|m| m.status == Status::Onay)
            .count(),
        confirmed.len()
    );
    w.clock.advance(Duration::minutes(1));
    // A token that is still valid when the outage starts: its first request is an İYS call.
    let attempts_before = w.store.attempt_count().await.expect("attempts");
    let seen_before = w.front.requests();
    w.front.set_fault(Some(Fault::unavailable()));
    let outage_start = w.now();
    record_all(&w, "ret", &confirmed, Status::Ret).await;
    record_all(&w, "onay", &fresh, Status::Onay).await;
    record_all(&w, "unknown", &unknown, Status::Ret).await;
    let rounds = rounds_until(
        &w,
        outage_start + Duration::seconds(60),
        Duration::seconds(1),
    )
    .await;
    w.front.set_fault(None);
    let during: Vec<_> = w.front.log()[seen_before..]
        .iter()
        .filter(|s| s.faulted)
        .cloned()
        .collect();
    let mut by_path: Vec<(String, usize)> = Vec::new();
    for s in &during {
        let key = format!("{} {}", s.method, s.path);
        match by_path.iter_mut().find(|(k, _)| *k == key) {
            Some((_, c)) => *c += 1,
            None => by_path.push((key, 1)),
        }
    }
    let attempts = w.store.attempt_count().await.expect("attempts") - attempts_before;
    OutageCount {
        waiting: n,
        requests: during.len(),
        attempts,
        rounds,
        by_path,
    }
}

async fn outage_requests_do_not_grow_with_the_queue(pg: bool) {
    let mut counts = Vec::new();
    for n in [50, 5000] {
        let Some(ts) = store(pg).await else { return };
        counts.push(outage_requests(ts, n).await);
    }
    let shown: Vec<String> = counts
        .iter()
        .map(|c| {
            format!(
                "{} waiting: {} İYS requests during the outage ({} attempt rows, {} rounds) {:?}",
                c.waiting, c.requests, c.attempts, c.rounds, c.by_path
            )
        })
        .collect();
    let shown = shown.join("\n  ");
    for c in &counts {
        assert!(
            c.requests <= OUTAGE_BUDGET,
            "a 60 s outage must cost at most {OUTAGE_BUDGET} İYS requests whatever the queue:\n  {shown}"
        );
    }
    assert!(
        counts[1].requests <= counts[0].requests + 2,
        "requests grew with the queue:\n  {shown}"
    );
}

/// After a 503 with `Retry-After: 12`, İYS sees nothing from us for 12 s.
async fn retry_after_is_honoured(pg: bool) {
    let Some(ts) = store(pg).await else { return };
    let w = IysWorld::start(ts, START, REPORTER_TOML).await;
    // Warm up: a token and one accepted movement.
    record_all(&w, "warm", &[phone("532", 9_999_999)], Status::Onay).await;
    w.reporter().run_once().await.expect("round");
    let onay: Vec<String> = (0..20).map(|i| phone("533", i)).collect();
    let rets: Vec<String> = (0..5).map(|i| phone("534", i)).collect();
    let seen_before = w.front.requests();
    w.front.set_fault(Some(Fault::retry_after(12)));
    let start = w.now();
    record_all(&w, "onay", &onay, Status::Onay).await;
    record_all(&w, "ret", &rets, Status::Ret).await;
    rounds_until(&w, start + Duration::seconds(40), Duration::seconds(1)).await;
    w.front.set_fault(None);
    let log: Vec<_> = w.front.log()[seen_before..].to_vec();
    assert!(!log.is_empty(), "the reporter tried İYS at all");
    let mut early = Vec::new();
    for (i, s) in log.iter().enumerate() {
        if !s.faulted {
            continue;
        }
        for later in &log[i + 1..] {
            let same_brand = later.brand().is_none_or(|b| Some(b) == s.brand());
            if same_brand && later.at < s.at + Duration::seconds(12) {
                early.push(format!(
                    "{} {} at +{} ms after the 503 (Retry-After: 12) to {} {}",
                    later.method,
                    later.path,
                    (later.at - s.at).num_milliseconds(),
                    s.method,
                    s.path
                ));
            }
        }
    }
    let timeline: Vec<String> = log
        .iter()
        .map(|s| {
            format!(
                "+{:>6} ms {} {} -> {}",
                (s.at - start).num_milliseconds(),
                s.method,
                s.path,
                s.status
            )
        })
        .collect();
    assert!(
        early.is_empty(),
        "{} request(s) inside a Retry-After window:\n  {}\nİYS requests during the 40 s window:\n  {}",
        early.len(),
        early.join("\n  "),
        timeline.join("\n  ")
    );
    // And afterwards everything still goes out.
    settle(&w).await;
}

/// A WAF's HTML 403 (no İYS error code) is an outage: the jobs wait, none ends `failed`.
async fn waf_html_403_is_an_outage_not_a_verdict(pg: bool) {
    let Some(ts) = store(pg).await else { return };
    let w = IysWorld::start(ts, START, REPORTER_TOML).await;
    record_all(&w, "warm", &[phone("532", 9_999_999)], Status::Onay).await;
    w.reporter().run_once().await.expect("round");
    let confirmed: Vec<String> = (0..4).map(|i| phone("535", i)).collect();
    record_all(&w, "pre", &confirmed, Status::Onay).await;
    settle(&w).await;
    let onay: Vec<String> = (0..8).map(|i| phone("533", i)).collect();
    let unknown: Vec<String> = (0..3).map(|i| phone("534", i)).collect();
    w.front.set_fault(Some(Fault::waf_403()));
    let start = w.now();
    record_all(&w, "onay", &onay, Status::Onay).await;
    record_all(&w, "ret", &confirmed, Status::Ret).await;
    record_all(&w, "unknown", &unknown, Status::Ret).await;
    rounds_until(&w, start + Duration::seconds(30), Duration::seconds(1)).await;
    w.front.set_fault(None);
    let failed_now = w
        .store
        .jobs_in_state(JobState::Failed, 100)
        .await
        .expect("jobs");
    // İYS is back: what waited goes out.
    for _ in 0..30 {
        w.reporter().run_once().await.expect("round");
        if w.open_jobs().await == 0 {
            break;
        }
        w.clock.advance(Duration::minutes(5));
    }
    let failed = w
        .store
        .jobs_in_state(JobState::Failed, 100)
        .await
        .expect("jobs");
    let alerts = w.store.alerts(100).await.expect("alerts");
    let failed_alerts = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Failed)
        .count();
    let errors: Vec<String> = failed
        .iter()
        .map(|j| {
            format!(
                "job {} {}: {}",
                j.id,
                j.address.recipient,
                j.last_error.as_deref().unwrap_or("")
            )
        })
        .collect();
    assert!(
        failed_now.is_empty() && failed.is_empty() && failed_alerts == 0,
        "an HTML 403 from a WAF ended {} of {} jobs as failed ({} failed alerts):\n  {}",
        failed.len(),
        onay.len() + confirmed.len() + unknown.len(),
        failed_alerts,
        errors.join("\n  ")
    );
    for r in onay.iter().chain(&confirmed) {
        let rec = w
            .sim
            .record(
                BRAND,
                r,
                iys_relay::domain::RecipientType::Bireysel,
                iys_relay::domain::ConsentType::Mesaj,
            )
            .expect("in İYS");
        let want = if confirmed.contains(r) {
            Status::Ret
        } else {
            Status::Onay
        };
        assert_eq!(rec.status, want, "{r}");
    }
}

macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(false).await } )+
        }
        mod postgres_backend {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(true).await } )+
        }
    };
}

both!(
    outage_requests_do_not_grow_with_the_queue,
    retry_after_is_honoured,
    waf_html_403_is_an_outage_not_a_verdict,
);
