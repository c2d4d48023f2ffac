//! The reporter, the pull loop and the push receiver against the real simulator over a socket,
//! with one ManualClock shared by both. Workers are driven by `run_once`; pacing moves the clock
//! instead of sleeping. Runs on SQLite and PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::sim_world::SimWorld;
use crate::common::{BRAND, PHONE, intent};
use base64::Engine;
use chrono::Duration;
use iys_relay::domain::{ConsentType, RecipientType, Source, Status};
use iys_relay::sim::Simulator;
use iys_relay::store::queue::{AlertKind, BatchState};
use iys_relay::store::{JobState, Store};
use serde_json::{Value, json};

struct World {
    base: SimWorld,
    /// Base URL of our own HTTP API.
    api: String,
}

impl std::ops::Deref for World {
    type Target = SimWorld;
    fn deref(&self) -> &SimWorld {
        &self.base
    }
}

impl World {
    async fn start(store: Arc<dyn Store>, local: &str) -> Self {
        Self::start_with(store, local, "").await
    }

    /// With `extra_toml` appended to the scenario's configuration.
    async fn start_with(store: Arc<dyn Store>, local: &str, extra_toml: &str) -> Self {
        let config = format!(
            "[iys.push]\nenabled = true\nusername = \"iys-push\"\npassword = \"push-password-123\"\n{extra_toml}"
        );
        let (base, api) = SimWorld::start_served(store, local, &config).await;
        Self { base, api }
    }

    async fn suppression(&self, recipient: &str) -> Value {
        let enc = recipient.replace('+', "%2B");
        reqwest::Client::new()
            .get(format!("{}/v1/consents/{enc}?type=MESAJ", self.api))
            .bearer_auth("dev-token-change-me")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// An ONAY for `recipient` reported and accepted before the scenario starts.
    async fn confirmed_onay(&self, recipient: &str) -> i64 {
        let e = self
            .record(
                &format!("pre-{recipient}"),
                recipient,
                Status::Onay,
                Duration::minutes(5),
            )
            .await;
        self.report().await;
        assert_eq!(self.job_state(e).await, JobState::Done);
        self.clock.advance(Duration::minutes(1));
        e
    }
}

fn movements_by_recipient(sim: &Simulator) -> HashMap<String, Vec<Status>> {
    let mut m: HashMap<String, Vec<Status>> = HashMap::new();
    for mv in sim.movements(BRAND) {
        m.entry(mv.recipient).or_default().push(mv.status);
    }
    m
}

async fn sms_ret_is_reported_and_accepted(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    w.confirmed_onay(PHONE).await;
    let ret = w
        .record("SM-RET", PHONE, Status::Ret, Duration::seconds(2))
        .await;
    let r = w.report().await;
    assert_eq!((r.claimed, r.singles_sent, r.done), (1, 1, 1), "{r:?}");
    assert_eq!(
        r.status_checks, 0,
        "İYS is known to hold our ONAY: no pre-check"
    );
    assert_eq!(w.job_state(ret).await, JobState::Done);
    let rec = w
        .sim
        .record(BRAND, PHONE, RecipientType::Bireysel, ConsentType::Mesaj)
        .unwrap();
    assert_eq!(
        (rec.status, rec.source),
        (Status::Ret, Some(Source::HsMesaj))
    );
    let job = w.store.job_for_event(ret).await.unwrap().unwrap();
    assert_eq!(
        job.transaction_id.as_deref(),
        Some(rec.transaction_id.as_str())
    );
    let attempts = w.store.attempts_for_job(job.id).await.unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert_eq!(attempts[0].status, Some(200));
    assert_eq!(attempts[0].path, "/v2/sps/700000/brands/700000/consents");
    let s = w.suppression(PHONE).await;
    assert_eq!(
        (s["may_send"].clone(), s["reason"].clone()),
        (json!(false), json!("rejected"))
    );
}

async fn ret_prechecks_avoid_doomed_requests(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    // A first-ever RET: İYS holds nothing, so it ends "nothing to revoke" without an add call.
    let first = w
        .record("R1", "+905321234500", Status::Ret, Duration::seconds(1))
        .await;
    let r = w.report().await;
    assert_eq!(
        (r.status_checks, r.nothing_to_revoke, r.singles_sent),
        (1, 1, 0),
        "{r:?}"
    );
    assert_eq!(w.job_state(first).await, JobState::NothingToRevoke);
    assert_eq!(w.calls("POST", "/consents"), 0);
    // RET over a RET İYS already holds: done, nothing sent.
    w.confirmed_onay(PHONE).await;
    let ret1 = w
        .record("R2", PHONE, Status::Ret, Duration::seconds(1))
        .await;
    w.report().await;
    assert_eq!(w.job_state(ret1).await, JobState::Done);
    w.clock.advance(Duration::minutes(1));
    let sent_before = w.calls("POST", "/consents");
    let ret2 = w
        .record("R3", PHONE, Status::Ret, Duration::seconds(1))
        .await;
    let r = w.report().await;
    assert_eq!(
        (r.status_checks, r.done, r.singles_sent),
        (1, 1, 0),
        "{r:?}"
    );
    assert_eq!(w.job_state(ret2).await, JobState::Done);
    assert_eq!(w.calls("POST", "/consents"), sent_before);
    assert!(
        w.sim.request_log().iter().all(|l| l.status < 400),
        "no doomed request went out"
    );
}

async fn ret_then_onay_within_a_minute_sends_only_the_newest(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    w.confirmed_onay(PHONE).await;
    let ret = w
        .record("SM-A", PHONE, Status::Ret, Duration::seconds(0))
        .await;
    w.clock.advance(Duration::seconds(40));
    let onay = w
        .record("SM-B", PHONE, Status::Onay, Duration::seconds(0))
        .await;
    // Pacing moved the clock into a second: the date (rounded up) is due at the next one.
    w.clock.advance(Duration::seconds(1));
    let r = w.report().await;
    assert_eq!(
        (r.claimed, r.superseded, r.singles_sent),
        (2, 1, 1),
        "{r:?}"
    );
    assert_eq!(w.job_state(ret).await, JobState::Superseded);
    assert_eq!(w.job_state(onay).await, JobState::Done);
    let ret_ev = w.store.event(ret).await.unwrap();
    assert!(
        ret_ev.is_some(),
        "the superseded movement's evidence is kept"
    );
    assert_eq!(
        movements_by_recipient(&w.sim)[PHONE],
        vec![Status::Onay, Status::Onay]
    );
    assert_eq!(w.calls("POST", "/consents"), 2);
    assert_eq!(w.suppression(PHONE).await["may_send"], json!(true));
}

/// `movements` movements at once: one round sends them all, in `batches` batches, polled once
/// each after İYS's 300 s. `more`: the round used all its claims, so the loop goes on at once.
async fn long_queue(
    store: Arc<dyn Store>,
    extra_toml: &str,
    movements: usize,
    batches: usize,
    more: bool,
) {
    let w = World::start_with(store, "2026-03-04 10:00:00", extra_toml).await;
    let ledger = w.app.state.ledger.clone();
    let now = w.now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..movements {
        let l = ledger.clone();
        tasks.spawn(async move {
            let recipient = format!("+90532{n:07}");
            let i = intent(
                &format!("B{n}"),
                &recipient,
                Status::Onay,
                now - Duration::minutes(1),
            );
            l.record(i).await.expect("record")
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let r = w.report().await;
    assert_eq!(
        (r.claimed, r.batches_submitted, r.singles_sent),
        (movements, batches, 0),
        "{r:?}"
    );
    assert_eq!(r.more, more, "{r:?}");
    assert_eq!(w.calls("POST", "/consents/request"), batches);
    let submitted = w.now();
    // Not one poll before İYS's 300 s.
    w.clock.set(submitted + Duration::seconds(298));
    let r = w.report().await;
    assert_eq!(r.batches_polled, 0);
    assert_eq!(
        w.sim
            .request_log()
            .iter()
            .filter(|l| l.method == "GET")
            .count(),
        0
    );
    w.clock.set(submitted + Duration::seconds(301));
    let r = w.report().await;
    assert_eq!((r.batches_polled, r.done), (batches, movements), "{r:?}");
    assert!(!r.more, "nothing left to claim: {r:?}");
    let summary = w.store.queue_summary(5).await.unwrap();
    assert_eq!(
        summary.by_state,
        vec![("done".to_string(), movements as i64)]
    );
    assert_eq!(w.sim.movements(BRAND).len(), movements);
    let st = w.suppression(&format!("+90532{:07}", movements - 1)).await;
    assert_eq!(st["iys_confirmed"], json!(true));
}

/// By default a claim is 250 jobs and a round claims up to ten times: ten batches of 250, and
/// the tenth claim came back full, so the next round follows at once.
async fn long_queue_goes_out_in_batches_of_one_claim(store: Arc<dyn Store>) {
    long_queue(store, "", 2500, 10, true).await;
}

/// A claim larger than the batch size is cut into batches of that size (small numbers here:
/// the same cut applies to İYS's maximum of 1 000).
async fn a_claim_larger_than_a_batch_is_cut_into_batches(store: Arc<dyn Store>) {
    let config = "[reporter]\nclaim_limit = 25\nmax_batch_size = 10\nbatch_threshold = 5\n";
    long_queue(store, config, 25, 3, false).await;
}

async fn two_day_outage_recovers_before_the_deadline(store: Arc<dyn Store>) {
    // Friday morning; the outage runs over the weekend.
    let w = World::start(store, "2026-03-06 10:00:00").await;
    let rets: Vec<String> = (0..2).map(|n| format!("+90533000000{n}")).collect();
    for r in &rets {
        w.confirmed_onay(r).await;
    }
    let mut events = Vec::new();
    for n in 0..60 {
        events.push(
            w.record(
                &format!("O{n}"),
                &format!("+90534{n:07}"),
                Status::Onay,
                Duration::seconds(5),
            )
            .await,
        );
    }
    for (n, r) in rets.iter().enumerate() {
        events.push(
            w.record(&format!("R{n}"), r, Status::Ret, Duration::seconds(5))
                .await,
        );
    }
    let deadline = w
        .store
        .job_for_event(events[0])
        .await
        .unwrap()
        .unwrap()
        .deadline_at;
    w.sim.set_outage(Some((503, "H192".into())));
    for step in 0..(48 * 6) {
        if step == 24 * 6 {
            w.sim.set_outage(Some((429, "H124".into())));
        }
        w.report().await;
        w.clock.advance(Duration::minutes(10));
    }
    w.sim.set_outage(None);
    for _ in 0..30 {
        w.report().await;
        w.clock.advance(Duration::minutes(5));
    }
    assert!(w.now() < deadline);
    for e in &events {
        assert_eq!(w.job_state(*e).await, JobState::Done, "event {e}");
    }
    let moves = movements_by_recipient(&w.sim);
    for n in 0..60 {
        assert_eq!(
            moves[&format!("+90534{n:07}")],
            vec![Status::Onay],
            "no duplicate movement"
        );
    }
    for r in &rets {
        assert_eq!(moves[r], vec![Status::Onay, Status::Ret]);
    }
    let log = w.sim.request_log();
    assert!(log.iter().any(|l| l.status == 503) && log.iter().any(|l| l.status == 429));
    // Back-off kept the failed calls far below one per round.
    let failed = log
        .iter()
        .filter(|l| l.status >= 500 || l.status == 429)
        .count();
    assert!(failed < 200, "{failed} failed calls");
    assert!(
        w.store
            .alerts(10)
            .await
            .unwrap()
            .iter()
            .all(|a| a.kind != AlertKind::Expired)
    );
}

async fn unreachable_deadline_expires_with_an_alert(store: Arc<dyn Store>) {
    // Wednesday before Ramazan Bayramı: the deadline is Tuesday 24 March, end of day.
    let w = World::start(store, "2026-03-18 10:00:00").await;
    let e = w
        .record("LATE", PHONE, Status::Onay, Duration::seconds(5))
        .await;
    let job = w.store.job_for_event(e).await.unwrap().unwrap();
    assert_eq!(
        iys_relay::domain::time::to_iys(job.deadline_at),
        "2026-03-24 23:59:59"
    );
    w.sim.set_outage(Some((503, "H192".into())));
    while w.now() < job.deadline_at + Duration::hours(2) {
        w.report().await;
        w.clock.advance(Duration::hours(1));
    }
    assert_eq!(w.job_state(e).await, JobState::Expired);
    let alerts = w.store.alerts(10).await.unwrap();
    let kinds: Vec<AlertKind> = alerts
        .iter()
        .filter(|a| a.job_id == job.id)
        .map(|a| a.kind)
        .collect();
    assert_eq!(kinds, vec![AlertKind::Expired, AlertKind::TargetMissed]);
    let attempts = w.store.attempts_for_job(job.id).await.unwrap();
    assert!(!attempts.is_empty());
    assert!(
        attempts.iter().all(|a| a.at < job.deadline_at),
        "no call after the deadline"
    );
}

async fn citizen_ret_in_iys_reaches_suppression_after_one_pull(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    w.confirmed_onay(PHONE).await;
    assert_eq!(w.suppression(PHONE).await["may_send"], json!(true));
    w.sim
        .citizen_mesaj(BRAND, PHONE, Status::Ret, Source::IysKisamesaj)
        .unwrap();
    // İYS's pull lags one hour.
    w.clock.advance(Duration::minutes(61));
    let sync = w.app.sync.as_ref().expect("sync");
    let r = sync.run_once().await.unwrap();
    assert_eq!(r.recorded, 1, "{r:?}");
    let s = w.suppression(PHONE).await;
    assert_eq!(
        (s["may_send"].clone(), s["source"].clone()),
        (json!(false), json!("IYS_KISAMESAJ"))
    );
    assert_eq!(s["iys_confirmed"], json!(true));
    // Never reported back to İYS, and a second pull changes nothing.
    assert_eq!(w.report().await.claimed, 0);
    assert_eq!(sync.run_once().await.unwrap().recorded, 0);
    assert!(w.store.sync_cursor(BRAND, "IYS").await.unwrap().is_some());
}

async fn push_receiver_authenticates_dedupes_and_ignores_the_test_record(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    let item = json!({"iysCode": 700000, "brandCode": 700000, "consentDate": "2026-03-04 09:59:00",
        "creationDate": "2026-03-04 09:59:01", "source": "IYS_MOBIL", "recipient": PHONE,
        "recipientType": "BIREYSEL", "status": "RET", "type": "MESAJ", "transactionId": "tx-push-1"});
    // İYS's fixed registration test record (docs/iys-api-notes.md §8).
    let test = json!({"iysCode":121212,"brandCode":121212,"consentDate":"2015-05-01 15:00:00",
        "creationDate":"2015-05-01 15:00:00","source":"IYS_MOBIL","recipient":"pushtest@iys.org.tr",
        "recipientType":"BIREYSEL","status":"ONAY","type":"EPOSTA",
        "transactionId":"e52ee30512adfcd2a41fb3b4682f5bd61eee5b1c92bda665fc0b7e56644d429d"});
    let body = json!({"list": [test, item.clone(), item]});
    let http = reqwest::Client::new();
    let url = format!("{}/iys/push", w.api);
    let auth = |u: &str, p: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    };
    let r = http
        .post(&url)
        .header("Authorization", auth("iys-push", "wrong"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .header("Authorization", auth("iys-push", "push-password-123"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let a: Value = r.json().await.unwrap();
    assert_eq!(
        a,
        json!({"received": 3, "recorded": 1, "duplicates": 1, "ignored": 1})
    );
    let s = w.suppression(PHONE).await;
    assert_eq!(
        (s["reason"].clone(), s["source"].clone()),
        (json!("rejected"), json!("IYS_MOBIL"))
    );
    assert!(
        w.store
            .events_for_recipient("pushtest@iys.org.tr")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.report().await.claimed, 0, "never reported back");
}

async fn singles_are_paced_under_the_rate_limit(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    let started = w.now();
    for n in 0..45 {
        w.record(
            &format!("P{n}"),
            &format!("+90535{n:07}"),
            Status::Onay,
            Duration::seconds(1),
        )
        .await;
    }
    let r = w.report().await;
    assert_eq!((r.singles_sent, r.done), (45, 45), "{r:?}");
    assert!(
        w.sim.request_log().iter().all(|l| l.status == 200),
        "no H124"
    );
    // 45 calls at 9/s take about five seconds of (simulated) time.
    assert!(
        w.now() - started >= Duration::milliseconds(44 * 111),
        "{}",
        w.now() - started
    );
}

impl World {
    /// Reporter rounds with the clock moved on `step` between them, until nothing is open.
    async fn quiesce(&self, step: Duration) {
        for _ in 0..20 {
            let r = self.report().await;
            let open = self.store.queue_summary(0).await.unwrap().by_state;
            let open: i64 = open
                .iter()
                .filter(|(s, _)| matches!(s.as_str(), "pending" | "leased" | "batched"))
                .map(|(_, n)| n)
                .sum();
            if open == 0 && r.claimed == 0 {
                return;
            }
            self.clock.advance(step);
        }
        panic!("the reporter never went idle");
    }
}

/// 60 people say EVET, the ONAYs go out in a batch, then each says RET before İYS processed
/// the batch: every RET waits for its ONAY's outcome and İYS ends holding RET for all.
async fn ret_behind_a_batched_onay_is_not_lost(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    let people: Vec<String> = (0..60).map(|n| format!("+90533{n:07}")).collect();
    for (n, p) in people.iter().enumerate() {
        w.record(&format!("E{n}"), p, Status::Onay, Duration::seconds(2))
            .await;
    }
    let r = w.report().await;
    assert_eq!(r.batches_submitted, 1, "{r:?}");
    for (n, p) in people.iter().enumerate() {
        w.record(&format!("R{n}"), p, Status::Ret, Duration::zero())
            .await;
    }
    w.clock.advance(Duration::seconds(2));
    let r = w.report().await;
    assert_eq!(
        r.claimed, 0,
        "the RETs wait behind their batched ONAYs: {r:?}"
    );
    w.quiesce(Duration::seconds(301)).await;
    for p in &people {
        assert_eq!(w.held(p), Some(Status::Ret), "İYS must hold the RET");
    }
    assert_eq!(w.suppression(&people[0]).await["may_send"], json!(false));
}

/// A batch of ONAYs İYS accepted but the relay lost track of (here: given up on while İYS still
/// had it) goes back to the queue; a RET arrives for one of them before İYS processes the batch.
/// The RET must not conclude "nothing to revoke" while that ONAY may still land.
async fn ret_waits_for_an_onay_that_may_still_land(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    let people: Vec<String> = (0..60).map(|n| format!("+90534{n:07}")).collect();
    for (n, p) in people.iter().enumerate() {
        w.record(&format!("E{n}"), p, Status::Onay, Duration::seconds(2))
            .await;
    }
    w.report().await;
    let batch = w
        .store
        .job_for_event(1)
        .await
        .unwrap()
        .and_then(|j| j.batch_id)
        .expect("batched");
    w.store
        .update_batch(&batch, BatchState::Abandoned, w.now(), w.now())
        .await
        .unwrap();
    w.record("R0", &people[0], Status::Ret, Duration::zero())
        .await;
    w.clock.advance(Duration::seconds(1));
    let r = w.report().await;
    assert_eq!(r.nothing_to_revoke, 0, "{r:?}");
    w.quiesce(Duration::seconds(301)).await;
    assert_eq!(w.held(&people[0]), Some(Status::Ret));
    assert_eq!(w.held(&people[1]), Some(Status::Onay));
}

/// EVET then RET 140 ms apart (and a CRM's two movements both at 11:09:00): İYS keeps one
/// date per second, so the RET goes out one second later and İYS ends holding it.
async fn same_second_movements_end_with_the_last_word(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 11:09:00").await;
    let t = w.now();
    w.record_at("S1", PHONE, Status::Onay, t).await;
    let other = "+905329876543";
    w.record_at("M1", other, Status::Onay, t).await;
    w.report().await;
    w.record_at("S2", PHONE, Status::Ret, t + Duration::milliseconds(140))
        .await;
    w.record_at("M2", other, Status::Ret, t).await;
    w.quiesce(Duration::seconds(1)).await;
    assert_eq!(w.held(PHONE), Some(Status::Ret));
    assert_eq!(w.held(other), Some(Status::Ret));
    let rec = w
        .sim
        .record(BRAND, PHONE, RecipientType::Bireysel, ConsentType::Mesaj)
        .unwrap();
    assert_eq!(
        rec.consent_date,
        Some(t + Duration::seconds(1)),
        "never before the act, rounded up to the second"
    );
    assert!(
        w.sim.request_log().iter().all(|l| l.status < 400),
        "no request İYS had to refuse"
    );
}

/// An agent's ONAY dated before a RET already at İYS is evidence only: not sent, not refused.
async fn late_older_onay_is_not_sent(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    w.confirmed_onay(PHONE).await;
    w.record("R", PHONE, Status::Ret, Duration::minutes(2))
        .await;
    w.quiesce(Duration::seconds(1)).await;
    let before = w.sim.request_log().len();
    let late = w
        .record("A", PHONE, Status::Onay, Duration::minutes(3))
        .await;
    w.quiesce(Duration::seconds(1)).await;
    assert_eq!(w.job_state(late).await, JobState::Superseded);
    assert_eq!(w.sim.request_log().len(), before, "no doomed request");
    assert_eq!(w.held(PHONE), Some(Status::Ret));
}

/// H178 is read as a question. A citizen's ONAY in İYS newer than our ONAY: İYS already holds
/// the word, done. A citizen's RET dated after our ONAY: brought into the ledger, alerted.
async fn out_of_order_refusals_are_resolved_against_iys_record(store: Arc<dyn Store>) {
    let w = World::start(store, "2026-03-04 10:00:00").await;
    w.sim
        .citizen_mesaj(BRAND, PHONE, Status::Onay, Source::IysWeb)
        .unwrap();
    let ours = w
        .record("O-same", PHONE, Status::Onay, Duration::minutes(1))
        .await;
    w.quiesce(Duration::seconds(1)).await;
    let job = w.store.job_for_event(ours).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Done, "{job:?}");
    assert!(
        w.sim.request_log().iter().any(|l| l.status == 400),
        "the H178 was met and answered"
    );
    assert_eq!(w.held(PHONE), Some(Status::Onay));

    // A second person: our ONAY from a minute ago, the citizen's RET in İYS now (not pulled).
    let other = "+905329876543";
    w.sim
        .citizen_mesaj(BRAND, other, Status::Ret, Source::IysMobil)
        .ok();
    let onay = w
        .record("O-old", other, Status::Onay, Duration::minutes(1))
        .await;
    w.quiesce(Duration::seconds(1)).await;
    assert_eq!(w.job_state(onay).await, JobState::Superseded);
    assert_eq!(w.held(other), Some(Status::Ret), "İYS's newer word stands");
    assert_eq!(w.suppression(other).await["may_send"], json!(false));
    let alerts = w.store.alerts(10).await.unwrap();
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::IysNewer),
        "{alerts:?}"
    );
}

on_both_backends!(
    singles_are_paced_under_the_rate_limit,
    sms_ret_is_reported_and_accepted,
    ret_prechecks_avoid_doomed_requests,
    ret_then_onay_within_a_minute_sends_only_the_newest,
    long_queue_goes_out_in_batches_of_one_claim,
    a_claim_larger_than_a_batch_is_cut_into_batches,
    two_day_outage_recovers_before_the_deadline,
    unreachable_deadline_expires_with_an_alert,
    citizen_ret_in_iys_reaches_suppression_after_one_pull,
    push_receiver_authenticates_dedupes_and_ignores_the_test_record,
    ret_behind_a_batched_onay_is_not_lost,
    ret_waits_for_an_onay_that_may_still_land,
    same_second_movements_end_with_the_last_word,
    late_older_onay_is_not_sent,
    out_of_order_refusals_are_resolved_against_iys_record,
);
