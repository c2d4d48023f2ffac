//! The provider workers' edges, on both backends, against the provider fakes: the reply outbox's
//! retries and give-up (5xx, connection refused, a permanent refusal), Twilio 21610 on a reply,
//! Netgsm's 30-day query limit after a long gap, and a message pulled after its İYS deadline.

use std::sync::Arc;

use crate::common::sms_fakes::TWILIO_TOKEN;
use crate::common::sms_world::{SENDERS, Setup, World, world, world_with};
use chrono::{DateTime, Duration, Utc};
use iys_relay::domain::Status;
use iys_relay::store::queue::AlertKind;
use iys_relay::store::sms::{ReplyState, SmsReply};
use iys_relay::store::{JobState, Store};

const VERIMOR_NUMBER: &str = "+908501234567";
/// The documented pauses before the 2nd … 6th attempt of a reply.
const BACK_OFF_MINUTES: [i64; 5] = [1, 5, 15, 60, 240];

/// A RET from `SENDERS[0]` pushed by Verimor and recorded; its job reported at once, before any
/// reply is attempted. Returns the event id and the Verimor message id.
async fn pushed_ret(x: &World) -> (i64, String) {
    let now = x.w.now();
    let from = SENDERS[0].trim_start_matches('+');
    let id = x.fake.verimor_receive(from, "908501234567", "RET", now);
    assert_eq!(x.fake.deliver_pushes(&x.push_url, now).await, 1);
    let rets = x.rets(SENDERS[0]).await;
    assert_eq!(rets.len(), 1);
    x.w.report().await;
    assert_eq!(x.w.job_state(rets[0].id).await, JobState::Done);
    (rets[0].id, id.to_string())
}

async fn reply(x: &World, provider: &str, msg: &str) -> SmsReply {
    x.w.store
        .sms_reply_for(provider, msg)
        .await
        .unwrap()
        .expect("reply queued")
}

/// The recorded movement is as it was: one RET, reported, nothing else queued for İYS.
async fn movement_untouched(x: &World, event: i64) {
    let rets = x.rets(SENDERS[0]).await;
    assert_eq!(rets.len(), 1);
    assert_eq!(rets[0].id, event);
    assert_eq!(x.w.job_state(event).await, JobState::Done);
    let moves = x.w.sim.movements(700000);
    let mine: Vec<Status> = moves
        .iter()
        .filter(|m| m.recipient == SENDERS[0])
        .map(|m| m.status)
        .collect();
    assert_eq!(mine, vec![Status::Onay, Status::Ret]);
}

/// Drives the outbox through every retry: nothing is attempted before a pause is over, one
/// attempt when it is, each counted on the row with its error; after the last the row is failed
/// and never tried again. `attempts_seen` reads how many sends reached the provider.
async fn gives_up_after_the_documented_back_off(
    x: &World,
    msg: &str,
    attempts_seen: impl Fn() -> Option<u32>,
    error_has: &str,
) {
    let worker = &x.w.app.sms_replies;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    for (i, pause) in BACK_OFF_MINUTES.iter().enumerate() {
        let r = reply(x, "verimor", msg).await;
        let tried = i as i64 + 1;
        assert_eq!((r.state, r.attempts), (ReplyState::Pending, tried), "{r:?}");
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.contains(error_has)),
            "{r:?}"
        );
        assert_eq!(r.due_at, x.w.now() + Duration::minutes(*pause), "{r:?}");
        if let Some(n) = attempts_seen() {
            assert_eq!(i64::from(n), tried);
        }
        x.w.clock
            .advance(Duration::minutes(*pause) - Duration::seconds(1));
        assert_eq!(
            worker.run_once().await.unwrap(),
            0,
            "before the pause is over"
        );
        x.w.clock.advance(Duration::seconds(1));
        assert_eq!(worker.run_once().await.unwrap(), 1, "attempt {}", tried + 1);
    }
    let r = reply(x, "verimor", msg).await;
    assert_eq!((r.state, r.attempts), (ReplyState::Failed, 6), "{r:?}");
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains(error_has))
    );
    x.w.clock.advance(Duration::days(2));
    assert_eq!(worker.run_once().await.unwrap(), 0, "given up for good");
    if let Some(n) = attempts_seen() {
        assert_eq!(n, 6);
    }
}

async fn reply_5xx_is_retried_then_given_up(store: Arc<dyn Store>) {
    let x = world(store, "verimor", VERIMOR_NUMBER).await;
    let (event, msg) = pushed_ret(&x).await;
    x.fake.fail_next_sends(&[503; 6]);
    let fake = x.fake.clone();
    gives_up_after_the_documented_back_off(
        &x,
        &msg,
        || Some(fake.requests("verimor_send")),
        "HTTP 503",
    )
    .await;
    assert!(x.fake.sent().is_empty());
    movement_untouched(&x, event).await;
}

async fn reply_connection_refused_is_retried_then_given_up(store: Arc<dyn Store>) {
    // Nothing listens on the discard port: every send is refused before it reaches anyone.
    let x = world_with(
        store,
        Setup {
            api_base: Some("http://127.0.0.1:9"),
            ..Setup::new("verimor", VERIMOR_NUMBER)
        },
    )
    .await;
    let (event, msg) = pushed_ret(&x).await;
    gives_up_after_the_documented_back_off(&x, &msg, || None, "error sending request").await;
    assert_eq!(x.fake.requests("verimor_send"), 0);
    movement_untouched(&x, event).await;
}

async fn reply_recovers_after_5xx(store: Arc<dyn Store>) {
    let x = world(store, "verimor", VERIMOR_NUMBER).await;
    let (event, msg) = pushed_ret(&x).await;
    x.fake.fail_next_sends(&[500, 502]);
    let worker = &x.w.app.sms_replies;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    x.w.clock.advance(Duration::minutes(1));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    x.w.clock.advance(Duration::minutes(5));
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let r = reply(&x, "verimor", &msg).await;
    assert_eq!((r.state, r.attempts), (ReplyState::Sent, 3), "{r:?}");
    assert!(r.provider_ref.as_deref().is_some_and(|p| !p.is_empty()));
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 502"))
    );
    assert_eq!(x.fake.requests("verimor_send"), 3);
    assert_eq!(x.fake.sent().len(), 1);
    x.w.clock.advance(Duration::days(1));
    assert_eq!(worker.run_once().await.unwrap(), 0);
    movement_untouched(&x, event).await;
}

async fn reply_permanent_refusal_is_not_retried(store: Arc<dyn Store>) {
    let x = world(store, "verimor", VERIMOR_NUMBER).await;
    let (event, msg) = pushed_ret(&x).await;
    x.fake.fail_next_sends(&[400]);
    let worker = &x.w.app.sms_replies;
    assert_eq!(worker.run_once().await.unwrap(), 1);
    let r = reply(&x, "verimor", &msg).await;
    assert_eq!((r.state, r.attempts), (ReplyState::Failed, 1), "{r:?}");
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 400"))
    );
    for pause in BACK_OFF_MINUTES {
        x.w.clock.advance(Duration::minutes(pause));
        assert_eq!(worker.run_once().await.unwrap(), 0);
    }
    assert_eq!(x.fake.requests("verimor_send"), 1);
    movement_untouched(&x, event).await;
}

async fn twilio_21610_on_a_reply_is_opt_out_evidence(store: Arc<dyn Store>) {
    // The generic JSON kind replies through `sms.outbound`, a Twilio-style send API.
    let x = world_with(
        store,
        Setup {
            name: "gen",
            kind: "generic",
            extra_toml: &format!(
                "[sms.outbound]\nbase_url = \"{{fake}}\"\naccount_sid = \"AC0123456789\"\n\
                 auth_token = \"{TWILIO_TOKEN}\"\nfrom = \"{VERIMOR_NUMBER}\"\n"
            ),
            ..Setup::new("generic", VERIMOR_NUMBER)
        },
    )
    .await;
    x.fake.twilio_unsubscribe(SENDERS[0]);
    let body = serde_json::json!([
        {"id": "g1", "from": SENDERS[0], "to": VERIMOR_NUMBER, "text": "RET"},
        {"id": "g2", "from": SENDERS[1], "to": VERIMOR_NUMBER, "text": "RET"},
    ]);
    let r = reqwest::Client::new()
        .post(&x.push_url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let worker = &x.w.app.sms_replies;
    assert_eq!(worker.run_once().await.unwrap(), 2);
    let refused = reply(&x, "gen", "g1").await;
    assert_eq!(refused.state, ReplyState::OptedOut, "{refused:?}");
    assert!(
        refused
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("21610"))
    );
    assert_eq!(reply(&x, "gen", "g2").await.state, ReplyState::Sent);
    // The refusal is kept with the inbound messages as evidence of the opt-out at Twilio.
    let evidence = ["opted-out:g1".to_string(), "opted-out:g2".to_string()];
    assert_eq!(
        x.w.store
            .known_provider_messages("gen", &evidence)
            .await
            .unwrap(),
        ["opted-out:g1"]
    );
    // Not retried.
    for pause in BACK_OFF_MINUTES {
        x.w.clock.advance(Duration::minutes(pause));
        assert_eq!(worker.run_once().await.unwrap(), 0);
    }
    assert_eq!(x.fake.requests("twilio_send"), 2);
    let sent = x.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].to.as_str(), sent[0].provider),
        (SENDERS[1], "twilio")
    );
    // Both movements stand.
    for s in &SENDERS[..2] {
        assert_eq!(x.rets(s).await.len(), 1, "{s}");
    }
}

/// Distinct senders for messages that arrive while the relay is away.
fn gap_sender(i: usize) -> String {
    format!("53240000{i:02}")
}

async fn netgsm_reads_a_long_gap_in_30_day_windows(store: Arc<dyn Store>) {
    let x = world(store, "netgsm", "+908503050000").await;
    let r = x.poller().run_once().await.unwrap();
    assert_eq!(
        (r.led, r.requests, r.error.as_deref()),
        (true, 1, None),
        "{r:?}"
    );
    let last_poll = x.w.now();
    // Away for 75 days; messages all through the gap, one exactly 30 days in.
    let offsets = [
        Duration::hours(1),
        Duration::days(10),
        Duration::days(30) - Duration::minutes(15),
        Duration::days(30),
        Duration::days(31),
        Duration::days(59),
        Duration::days(61),
        Duration::days(74) + Duration::hours(23),
    ];
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    for (i, off) in offsets.iter().enumerate() {
        let t = last_poll + *off;
        x.fake
            .netgsm_receive(&gap_sender(i), "8503050000", "RET", t);
        times.push(t);
    }
    x.w.clock.advance(Duration::days(75));
    let windows_before = x.fake.netgsm_windows().len();
    let r = x.poller().run_once().await.unwrap();
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.taken, offsets.len(), "{r:?}");
    let windows = x.fake.netgsm_windows()[windows_before..].to_vec();
    assert!(windows.len() >= 3, "{windows:?}");
    for (f, t) in &windows {
        assert!(*t - *f <= Duration::days(30), "window {f} – {t}");
        assert!(f < t);
    }
    // Contiguous from the cursor (less the overlap) to now.
    assert!(windows[0].0 <= last_poll);
    for pair in windows.windows(2) {
        assert!(pair[1].0 <= pair[0].1, "a hole between {pair:?}");
    }
    // The query format has whole seconds.
    assert_eq!(windows.last().unwrap().1.timestamp(), x.w.now().timestamp());
    for (i, t) in times.iter().enumerate() {
        let s = format!("+90{}", gap_sender(i));
        let rets = x.rets(&s).await;
        assert_eq!(rets.len(), 1, "{s} recorded once");
        assert_eq!(
            rets[0].consent_at.timestamp(),
            t.timestamp(),
            "the provider's receipt time"
        );
    }
    // The next poll reads only the overlap and finds nothing new.
    x.w.clock.advance(Duration::minutes(1));
    let r = x.poller().run_once().await.unwrap();
    assert_eq!(
        (r.requests, r.taken, r.error.as_deref()),
        (1, 0, None),
        "{r:?}"
    );
}

/// The value of the sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn a_message_pulled_after_its_deadline_is_kept_and_alerted(store: Arc<dyn Store>) {
    let metrics = iys_relay::metrics::install().expect("metrics recorder");
    // Counters are process-wide: a name of its own keeps this test's count apart.
    let name = format!(
        "ng-late-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let x = world_with(
        store,
        Setup {
            name: &name,
            ..Setup::new("netgsm", "+908503050000")
        },
    )
    .await;
    assert_eq!(x.poller().run_once().await.unwrap().error, None);
    // The relay is away for ten days; a RET came in an hour after it left, a second one just
    // before it is back (its deadline has not passed).
    let t_late = x.w.now() + Duration::hours(1);
    let t_fresh = x.w.now() + Duration::days(10) - Duration::minutes(5);
    x.fake
        .netgsm_receive(&SENDERS[0][3..], "8503050000", "RET", t_late);
    x.fake
        .netgsm_receive(&SENDERS[1][3..], "8503050000", "RET", t_fresh);
    x.w.clock.advance(Duration::days(10));
    let r = x.poller().run_once().await.unwrap();
    assert_eq!((r.taken, r.late, r.error.as_deref()), (2, 1, None), "{r:?}");
    let series = format!("iys_relay_sms_late_total{{provider=\"{name}\"}}");
    assert_eq!(sample(&metrics.render(), &series), Some(1.0), "{series}");
    // Kept as evidence with the provider's time, never dropped.
    let late = x.rets(SENDERS[0]).await;
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].consent_at.timestamp(), t_late.timestamp());
    assert!(late[0].evidence.to_string().contains("RET"));
    let job = x.w.job(late[0].id).await;
    assert!(job.deadline_at < x.w.now());
    // The reporter does not send it past its deadline; it expires the job with an alert.
    x.w.report().await;
    assert_eq!(x.w.job_state(late[0].id).await, JobState::Expired);
    let alerts = x.w.store.alerts_for_job(job.id).await.unwrap();
    assert!(
        alerts.iter().any(|a| a.kind == AlertKind::Expired),
        "{alerts:?}"
    );
    // The fresh one is reported as usual; a second poll counts nothing again.
    let fresh = x.rets(SENDERS[1]).await;
    for _ in 0..5 {
        x.w.report().await;
        x.w.clock.advance(Duration::minutes(1));
    }
    assert_eq!(x.w.job_state(fresh[0].id).await, JobState::Done);
    x.w.clock.advance(Duration::minutes(1));
    assert_eq!(x.poller().run_once().await.unwrap().late, 0);
    assert_eq!(sample(&metrics.render(), &series), Some(1.0));
    assert_eq!(x.rets(SENDERS[0]).await.len(), 1);
}

on_both_backends!(
    reply_5xx_is_retried_then_given_up,
    reply_connection_refused_is_retried_then_given_up,
    reply_recovers_after_5xx,
    reply_permanent_refusal_is_not_retried,
    twilio_21610_on_a_reply_is_opt_out_evidence,
    netgsm_reads_a_long_gap_in_30_day_windows,
    a_message_pulled_after_its_deadline_is_kept_and_alerted,
);

/// p50 and p99 of `d`, in milliseconds.
fn percentiles(mut d: Vec<std::time::Duration>) -> (f64, f64) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let ms = |x: std::time::Duration| x.as_secs_f64() * 1000.0;
    (ms(at(0.50)), ms(at(0.99)))
}

/// A RET at the provider → in the ledger, measured (not asserted: a benchmark, not a timed test).
/// Push: the Verimor fake posts one message and the relay has answered 200, i.e. recorded it.
/// Pull: one poll that finds one new message (and re-reads the overlap); a pulled RET waits for
/// the next poll on top of that, up to `poll.interval_seconds`.
/// `cargo test --test it -- --ignored --nocapture ret_to_ledger`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures for BENCHMARKS.md"]
async fn ret_to_ledger_push_and_pull() {
    const N: usize = 200;
    for backend in ["sqlite", "postgres"] {
        let fresh = || async {
            match backend {
                "sqlite" => Some(crate::common::sqlite().await),
                _ => crate::common::postgres().await,
            }
        };
        let (Some(s), Some(t)) = (fresh().await, fresh().await) else {
            continue;
        };
        let x = world(s.store.clone(), "verimor", VERIMOR_NUMBER).await;
        let mut push = Vec::with_capacity(N);
        for i in 0..N {
            let from = format!("9053250{i:05}");
            let now = x.w.now();
            x.fake.verimor_receive(&from, "908501234567", "RET", now);
            let started = std::time::Instant::now();
            assert_eq!(x.fake.deliver_pushes(&x.push_url, now).await, 1);
            push.push(started.elapsed());
            assert_eq!(x.rets(&format!("+{from}")).await.len(), 1);
            x.w.clock.advance(Duration::seconds(1));
        }
        let y = world(t.store.clone(), "netgsm", "+908503050000").await;
        y.poller().run_once().await.unwrap();
        let mut pull = Vec::with_capacity(N);
        for i in 0..N {
            let from = format!("53260{i:05}");
            y.fake.netgsm_receive(
                &from,
                "8503050000",
                "RET",
                y.w.now() - Duration::seconds(30),
            );
            let started = std::time::Instant::now();
            let r = y.poller().run_once().await.unwrap();
            pull.push(started.elapsed());
            assert_eq!(r.taken, 1, "{r:?}");
            y.w.clock.advance(Duration::minutes(1));
        }
        let (p50, p99) = percentiles(push);
        let (q50, q99) = percentiles(pull);
        println!(
            "{backend}: push (Verimor fake → 200, recorded) N={N}: p50 {p50:.1} ms, p99 {p99:.1} ms; \
             one poll finding one new RET (Netgsm fake) N={N}: p50 {q50:.1} ms, p99 {q99:.1} ms"
        );
    }
}
