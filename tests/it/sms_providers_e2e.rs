//! Each Turkish provider end to end, on both backends: the relay is down longer than the
//! provider's push retries, RETs are sent meanwhile, the relay comes back → every RET is
//! recorded once (pushed and pulled copies dedupe), reported to İYS before its deadline, and
//! its reply sent once through the same provider. The providers are fakes built from their
//! documentation (`crate::common::sms_fakes`); İYS is the simulator.

use std::sync::Arc;

use crate::common::sms_world::{SENDERS, World, world};
use chrono::{DateTime, Duration, Utc};
use iys_relay::channels::sms::poller::ProviderPoller;
use iys_relay::domain::Status;
use iys_relay::store::{JobState, Store};

impl World {
    /// Every RET is recorded once with the provider's time, reported before its deadline, and
    /// answered once through the provider.
    async fn assert_each_ret_once(
        &self,
        times: &[DateTime<Utc>],
        sent_to: impl Fn(&str) -> String,
    ) {
        let store = &self.w.store;
        let mut deadlines = Vec::new();
        for (s, t) in SENDERS.iter().zip(times) {
            let rets = self.rets(s).await;
            assert_eq!(rets.len(), 1, "{s}: recorded exactly once");
            // Providers give whole seconds.
            assert_eq!(
                rets[0].consent_at.timestamp(),
                t.timestamp(),
                "{s}: the provider's receipt time"
            );
            deadlines.push((
                rets[0].id,
                store
                    .job_for_event(rets[0].id)
                    .await
                    .unwrap()
                    .unwrap()
                    .deadline_at,
            ));
        }
        for _ in 0..10 {
            self.w.report().await;
            self.w.clock.advance(Duration::minutes(1));
        }
        for (event, deadline) in deadlines {
            assert_eq!(self.w.job_state(event).await, JobState::Done);
            assert!(self.w.now() < deadline);
        }
        let moves = self.w.sim.movements(700000);
        for s in SENDERS {
            let mine: Vec<Status> = moves
                .iter()
                .filter(|m| m.recipient == s)
                .map(|m| m.status)
                .collect();
            assert_eq!(mine, vec![Status::Onay, Status::Ret], "{s}");
        }
        assert_eq!(self.w.app.sms_replies.run_once().await.unwrap(), 3);
        assert_eq!(self.w.app.sms_replies.run_once().await.unwrap(), 0);
        let sent = self.fake.sent();
        assert_eq!(sent.len(), 3, "{sent:?}");
        for s in SENDERS {
            let n = sent.iter().filter(|x| x.to == sent_to(s)).count();
            assert_eq!(n, 1, "one reply to {s}");
        }
        assert!(
            sent.iter()
                .all(|x| x.from == "DEMO" && x.text.contains("Ret talebiniz alındı"))
        );
    }

    /// An idle hour costs one inbox request per interval.
    async fn idle_hour_requests(&self, endpoint: &str) -> u32 {
        let before = self.fake.requests(endpoint);
        for _ in 0..60 {
            self.poller().run_once().await.unwrap();
            self.w.clock.advance(Duration::minutes(1));
        }
        self.fake.requests(endpoint) - before
    }
}

async fn verimor_pull_catches_what_the_push_gave_up_on(store: Arc<dyn Store>) {
    let x = world(store, "verimor", "+908501234567").await;
    let mut times = Vec::new();
    x.outage(25, |m, now| {
        if m == 0 || m == 7 {
            let s = SENDERS[times.len()].trim_start_matches('+');
            x.fake.verimor_receive(s, "908501234567", "RET", now);
            times.push(now);
        }
    })
    .await;
    assert_eq!(x.fake.pushes_given_up(), 2, "Verimor stopped retrying");
    // Back: the poll finds both; another replica's poller does not lead meanwhile.
    let r = x.poller().run_once().await.unwrap();
    assert_eq!((r.led, r.taken, r.late), (true, 2, 0), "{r:?}");
    let provider = x.w.app.state.sms.providers.get("verimor").unwrap().clone();
    let other = ProviderPoller::new(x.w.app.state.clone(), provider);
    assert!(!other.run_once().await.unwrap().led);
    // A RET pushed now is recorded by the push; its pulled copy is skipped.
    let now = x.w.now();
    x.fake.verimor_receive(
        SENDERS[2].trim_start_matches('+'),
        "908501234567",
        "RET",
        now,
    );
    times.push(now);
    assert_eq!(x.fake.deliver_pushes(&x.push_url, now).await, 1);
    x.w.clock.advance(Duration::minutes(1));
    let r = x.poller().run_once().await.unwrap();
    assert_eq!(
        (r.taken, r.known),
        (0, 1),
        "only the last 15 minutes are read again: {r:?}"
    );
    x.assert_each_ret_once(&times, |s| s.trim_start_matches('+').to_string())
        .await;
    assert_eq!(x.idle_hour_requests("verimor_inbox").await, 60);
}

async fn netgsm_pull_only(store: Arc<dyn Store>) {
    let x = world(store, "netgsm", "+908503050000").await;
    let mut times = Vec::new();
    x.outage(25, |m, now| {
        if m == 0 || m == 7 || m == 20 {
            let national = &SENDERS[times.len()][3..];
            x.fake.netgsm_receive(national, "8503050000", "RET", now);
            times.push(now);
        }
    })
    .await;
    let r = x.poller().run_once().await.unwrap();
    assert_eq!((r.taken, r.late), (3, 0), "{r:?}");
    x.w.clock.advance(Duration::minutes(1));
    let r = x.poller().run_once().await.unwrap();
    assert_eq!(
        (r.taken, r.known),
        (0, 1),
        "the overlap reads the last one again and skips it"
    );
    x.assert_each_ret_once(&times, |s| s[3..].to_string()).await;
    assert_eq!(x.idle_hour_requests("netgsm_inbox").await, 60);
}

async fn iletimerkezi_pull_only(store: Arc<dyn Store>) {
    let x = world(store, "iletimerkezi", "7889").await;
    let mut times = Vec::new();
    x.outage(25, |m, now| {
        if m == 0 || m == 7 || m == 20 {
            x.fake.ileti_receive(
                SENDERS[times.len()].trim_start_matches('+'),
                "7889",
                "RET",
                now,
            );
            times.push(now);
        }
    })
    .await;
    let r = x.poller().run_once().await.unwrap();
    assert_eq!(r.taken, 3, "{r:?}");
    let r = x.poller().run_once().await.unwrap();
    assert_eq!((r.taken, r.known), (0, 3));
    x.assert_each_ret_once(&times, |s| s.trim_start_matches('+').to_string())
        .await;
    assert_eq!(x.idle_hour_requests("ileti_inbox").await, 60);
}

on_both_backends!(
    verimor_pull_catches_what_the_push_gave_up_on,
    netgsm_pull_only,
    iletimerkezi_pull_only,
);
