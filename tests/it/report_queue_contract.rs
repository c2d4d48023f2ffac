//! The `ReportQueue` contract: every reporter store method, on SQLite and on PostgreSQL.

use std::sync::Arc;

use crate::common::{PHONE, at, intent, mesaj_key};
use chrono::{DateTime, Duration, Utc};
use iys_relay::domain::{Source, Status};
use iys_relay::store::queue::{AlertKind, Attempt, BatchState, Fence, JobOutcome, NewBatch};
use iys_relay::store::{JobState, JobTimes, NewEvent, ReportJob, Store};

fn t0() -> DateTime<Utc> {
    at("2026-11-23T10:00:00Z")
}

fn times(received: DateTime<Utc>) -> JobTimes {
    JobTimes {
        due_at: received,
        target_at: at("2026-11-24T20:59:59Z"),
        deadline_at: at("2026-11-26T20:59:59Z"),
    }
}

/// Records one HS movement (with a job) and returns (event id, job id).
async fn record(
    store: &Arc<dyn Store>,
    msg: &str,
    recipient: &str,
    status: Status,
    consent_at: DateTime<Utc>,
) -> (i64, i64) {
    let ev = NewEvent {
        intent: intent(msg, recipient, status, consent_at),
        received_at: consent_at,
        report: Some(times(consent_at)),
    };
    let o = store.record_batch(&[ev], consent_at).await.unwrap();
    (o[0].event_id, o[0].job_id.expect("job"))
}

/// The subscriber's ONAY 30 s after `t0`, newer than a movement recorded at `t0`.
async fn newer_onay(store: &Arc<dyn Store>) -> (i64, i64) {
    let at = t0() + Duration::seconds(30);
    record(store, "b", PHONE, Status::Onay, at).await
}

/// Claims up to ten due jobs for `owner`, leased for five minutes from `now`.
async fn claim(store: &Arc<dyn Store>, owner: &str, now: DateTime<Utc>) -> Vec<ReportJob> {
    let until = now + Duration::minutes(5);
    store.claim_jobs(owner, now, until, 10).await.unwrap()
}

fn lease(job: &ReportJob, owner: &str) -> Fence {
    Fence::Lease {
        owner: owner.into(),
        attempts: job.attempts,
    }
}

async fn claim_leases_due_jobs_once(store: Arc<dyn Store>) {
    let (_, j1) = record(&store, "a", PHONE, Status::Onay, t0()).await;
    let (_, j2) = record(
        &store,
        "b",
        "+905321234568",
        Status::Onay,
        t0() + Duration::hours(2),
    )
    .await;
    let now = t0() + Duration::minutes(1);
    let lease_until = now + Duration::minutes(5);
    let got = store.claim_jobs("w1", now, lease_until, 10).await.unwrap();
    assert_eq!(
        got.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![j1],
        "j2 is not due yet"
    );
    assert_eq!(got[0].state, JobState::Leased);
    assert_eq!(got[0].attempts, 1);
    assert_eq!(got[0].lease_owner.as_deref(), Some("w1"));
    // Leased and unexpired: nobody else gets it.
    assert!(
        store
            .claim_jobs("w2", now, lease_until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A lapsed lease is claimable again, with a new attempt number.
    let later = t0() + Duration::hours(3);
    let again = claim(&store, "w2", later).await;
    let ids: Vec<i64> = again.iter().map(|j| j.id).collect();
    assert!(ids.contains(&j1) && ids.contains(&j2), "{ids:?}");
    let j = again.iter().find(|j| j.id == j1).unwrap();
    assert_eq!(j.attempts, 2);
    assert_eq!(j.lease_owner.as_deref(), Some("w2"));
}

async fn finish_is_fenced_and_done_confirms_state(store: Arc<dyn Store>) {
    let (_, old) = record(&store, "a", PHONE, Status::Ret, t0()).await;
    let now = t0() + Duration::minutes(1);
    let jobs = claim(&store, "w1", now).await;
    let claimed = jobs[0].clone();
    // A newer movement arrives while the older one is leased, then the older is released.
    let (ev_new, new) = newer_onay(&store).await;
    let stale = Fence::Lease {
        owner: "w1".into(),
        attempts: claimed.attempts + 1,
    };
    let done = JobOutcome::Done {
        transaction_id: Some("tx1".into()),
    };
    assert!(
        !store.finish_job(old, &stale, &done, now).await.unwrap(),
        "wrong attempt"
    );
    let wrong_owner = Fence::Lease {
        owner: "w9".into(),
        attempts: claimed.attempts,
    };
    assert!(
        !store
            .finish_job(old, &wrong_owner, &done, now)
            .await
            .unwrap()
    );
    let release = JobOutcome::Release { due_at: now };
    assert!(
        store
            .finish_job(old, &lease(&claimed, "w1"), &release, now)
            .await
            .unwrap()
    );
    let j = store
        .job_for_event(claimed.event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (j.state, j.attempts, j.lease_owner),
        (JobState::Pending, 0, None)
    );

    // The newer one is accepted: state confirmed, the older pending one superseded.
    let jobs = claim(&store, "w1", now).await;
    let newer = jobs.iter().find(|j| j.id == new).unwrap().clone();
    assert!(
        store
            .finish_job(new, &lease(&newer, "w1"), &done, now)
            .await
            .unwrap()
    );
    let st = store
        .consent_state(&mesaj_key(PHONE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.event_id, ev_new);
    assert!(st.iys_confirmed);
    let j = store.job_for_event(ev_new).await.unwrap().unwrap();
    assert_eq!(
        (j.state, j.transaction_id.as_deref()),
        (JobState::Done, Some("tx1"))
    );
    let older = store
        .job_for_event(claimed.event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        older.state,
        JobState::Leased,
        "leased elsewhere: left to its owner"
    );
}

async fn done_supersedes_older_pending_jobs(store: Arc<dyn Store>) {
    let (ev_old, _) = record(&store, "a", PHONE, Status::Ret, t0()).await;
    let (_, new) = newer_onay(&store).await;
    let now = t0() + Duration::minutes(1);
    // Only the newer one is claimed (the older is pushed into the future first).
    let all = claim(&store, "w", now).await;
    let old_job = all.iter().find(|j| j.event_id == ev_old).unwrap().clone();
    let later = JobOutcome::Retry {
        due_at: now + Duration::hours(1),
        error: "503".into(),
    };
    assert!(
        store
            .finish_job(old_job.id, &lease(&old_job, "w"), &later, now)
            .await
            .unwrap()
    );
    let pending = store.job_for_event(ev_old).await.unwrap().unwrap();
    assert_eq!(
        (pending.state, pending.last_error.as_deref()),
        (JobState::Pending, Some("503"))
    );
    assert_eq!(pending.due_at, now + Duration::hours(1));
    let newer = all.iter().find(|j| j.id == new).unwrap().clone();
    let done = JobOutcome::Done {
        transaction_id: None,
    };
    assert!(
        store
            .finish_job(new, &lease(&newer, "w"), &done, now)
            .await
            .unwrap()
    );
    let older = store.job_for_event(ev_old).await.unwrap().unwrap();
    assert_eq!(older.state, JobState::Superseded);
}

async fn terminal_outcomes_and_alerts(store: Arc<dyn Store>) {
    let (e1, _) = record(&store, "a", PHONE, Status::Onay, t0()).await;
    let (e2, _) = record(&store, "b", "+905321234568", Status::Onay, t0()).await;
    let (e3, _) = record(&store, "c", "+905321234569", Status::Ret, t0()).await;
    let (e4, _) = record(&store, "d", "+905321234560", Status::Ret, t0()).await;
    let now = t0() + Duration::minutes(1);
    let jobs = claim(&store, "w", now).await;
    let by_event = |e: i64| jobs.iter().find(|j| j.event_id == e).unwrap().clone();
    let cases = [
        (
            e1,
            JobOutcome::Failed {
                error: "H121".into(),
            },
            JobState::Failed,
        ),
        (
            e2,
            JobOutcome::Expired {
                error: "H467".into(),
            },
            JobState::Expired,
        ),
        (e3, JobOutcome::NothingToRevoke, JobState::NothingToRevoke),
        (
            e4,
            JobOutcome::Superseded {
                reason: "H178".into(),
            },
            JobState::Superseded,
        ),
    ];
    for (e, outcome, want) in &cases {
        let j = by_event(*e);
        assert!(
            store
                .finish_job(j.id, &lease(&j, "w"), outcome, now)
                .await
                .unwrap()
        );
        assert_eq!(store.job_for_event(*e).await.unwrap().unwrap().state, *want);
    }
    let alerts = store.alerts(10).await.unwrap();
    let kinds: Vec<(AlertKind, &str)> = alerts
        .iter()
        .map(|a| (a.kind, a.severity.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![(AlertKind::Expired, "error"), (AlertKind::Failed, "error")]
    );
    assert_eq!(alerts[0].job_id, by_event(e2).id);
    // A finished job cannot be finished again.
    let j = by_event(e1);
    let done = JobOutcome::Done {
        transaction_id: None,
    };
    assert!(
        !store
            .finish_job(j.id, &lease(&j, "w"), &done, now)
            .await
            .unwrap()
    );
}

async fn known_status_prefers_newest_accepted_or_citizen(store: Arc<dyn Store>) {
    let other = "+905321234568";
    let (e1, _) = record(&store, "a", PHONE, Status::Onay, t0()).await;
    record(&store, "b", other, Status::Onay, t0()).await;
    let now = t0() + Duration::minutes(1);
    assert!(
        store
            .iys_known_status(&[mesaj_key(PHONE)])
            .await
            .unwrap()
            .is_empty(),
        "nothing accepted yet"
    );
    let jobs = claim(&store, "w", now).await;
    let j = jobs.iter().find(|j| j.event_id == e1).unwrap();
    let done = JobOutcome::Done {
        transaction_id: None,
    };
    store
        .finish_job(j.id, &lease(j, "w"), &done, now)
        .await
        .unwrap();
    // A citizen RET through İYS, later than our ONAY.
    let mut citizen = intent("tx-c", PHONE, Status::Ret, t0() + Duration::hours(1));
    citizen.source = Source::IysKisamesaj;
    citizen.provider = "iys".into();
    let ev = NewEvent {
        intent: citizen,
        received_at: now,
        report: None,
    };
    store.record_batch(&[ev], now).await.unwrap();
    let got = store
        .iys_known_status(&[mesaj_key(PHONE), mesaj_key(other)])
        .await
        .unwrap();
    assert_eq!(got, vec![(mesaj_key(PHONE), Status::Ret)]);
}

async fn batches_submit_claim_and_finish(store: Arc<dyn Store>) {
    let (e1, _) = record(&store, "a", PHONE, Status::Onay, t0()).await;
    let (e2, _) = record(&store, "b", "+905321234568", Status::Onay, t0()).await;
    let now = t0() + Duration::minutes(1);
    let jobs = claim(&store, "w", now).await;
    let fences: Vec<(i64, Fence)> = jobs.iter().map(|j| (j.id, lease(j, "w"))).collect();
    let batch = NewBatch {
        request_id: "5a2edd8e-dd6e-4293-b09b-6180b2c5d021".into(),
        brand_code: 700000,
        submitted_at: now,
        poll_after: now + Duration::seconds(300),
    };
    assert_eq!(
        store.batch_submitted(&batch, &fences, now).await.unwrap(),
        2
    );
    let b = store.batch(&batch.request_id).await.unwrap().unwrap();
    assert_eq!((b.state, b.items, b.polls), (BatchState::Submitted, 2, 0));
    let in_batch = store.batch_jobs(&batch.request_id).await.unwrap();
    assert_eq!(
        in_batch.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(in_batch.iter().all(|(_, j)| j.state == JobState::Batched));
    // Batched jobs are neither claimable nor expirable.
    let far = at("2026-12-30T00:00:00Z");
    assert!(
        store
            .claim_jobs("w", far, far, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.expire_overdue(far).await.unwrap().is_empty());

    // Not before poll_after; once claimed, pushed out of other pollers' reach.
    let early = now + Duration::seconds(299);
    assert!(
        store
            .claim_due_batches(early, early + Duration::minutes(2), 5)
            .await
            .unwrap()
            .is_empty()
    );
    let due = now + Duration::seconds(300);
    let got = store
        .claim_due_batches(due, due + Duration::minutes(2), 5)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        store
            .claim_due_batches(due, due + Duration::minutes(2), 5)
            .await
            .unwrap()
            .is_empty()
    );

    // Only the batch's own poll may finish its jobs.
    let (_, j0) = &in_batch[0];
    let wrong = Fence::Batch {
        request_id: "other".into(),
    };
    let done = JobOutcome::Done {
        transaction_id: Some("tx".into()),
    };
    assert!(!store.finish_job(j0.id, &wrong, &done, due).await.unwrap());
    let right = Fence::Batch {
        request_id: batch.request_id.clone(),
    };
    assert!(store.finish_job(j0.id, &right, &done, due).await.unwrap());
    assert_eq!(
        store.job_for_event(e1).await.unwrap().unwrap().state,
        JobState::Done
    );
    // Abandoning sends the rest back to the queue.
    store
        .update_batch(&batch.request_id, BatchState::Abandoned, due, due)
        .await
        .unwrap();
    let j = store.job_for_event(e2).await.unwrap().unwrap();
    assert_eq!((j.state, j.batch_id), (JobState::Pending, None));
    let b = store.batch(&batch.request_id).await.unwrap().unwrap();
    assert_eq!((b.state, b.polls), (BatchState::Abandoned, 1));
}

async fn attempts_are_logged_per_call(store: Arc<dyn Store>) {
    let (e, job) = record(&store, "a", PHONE, Status::Onay, t0()).await;
    let a = |status: Option<i64>, code: Option<&str>| Attempt {
        job_id: Some(job),
        batch_id: None,
        brand_code: Some(700000),
        operation: "add_consent_v2".into(),
        method: "POST".into(),
        path: "/v2/sps/700000/brands/700000/consents".into(),
        status,
        code: code.map(str::to_string),
        duration_ms: 12,
        at: t0(),
    };
    store
        .record_attempts(&[a(Some(503), Some("H192")), a(Some(200), None)])
        .await
        .unwrap();
    store.record_attempts(&[]).await.unwrap();
    let got = store.attempts_for_job(job).await.unwrap();
    assert_eq!(got, vec![a(Some(503), Some("H192")), a(Some(200), None)]);
    assert_eq!(store.attempt_count().await.unwrap(), 2);
    let evs = store.events_by_ids(&[e, e + 1000]).await.unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!((evs[0].id, evs[0].status), (e, Status::Onay));
    assert!(store.attempts_for_job(e + 1000).await.unwrap().is_empty());
}

async fn pacing_slots_are_spaced_globally(store: Arc<dyn Store>) {
    let now = t0();
    let s1 = store.reserve_iys_slot(now, 100).await.unwrap();
    let s2 = store.reserve_iys_slot(now, 100).await.unwrap();
    let s3 = store.reserve_iys_slot(now, 100).await.unwrap();
    assert_eq!(
        (s1, s2 - s1, s3 - s2),
        (
            now,
            Duration::milliseconds(100),
            Duration::milliseconds(100)
        )
    );
    // After a quiet spell the next slot is "now", not a backlog.
    let later = now + Duration::seconds(10);
    assert_eq!(store.reserve_iys_slot(later, 100).await.unwrap(), later);
    // Concurrent reservations never share a slot.
    let mut handles = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.reserve_iys_slot(later, 100).await.unwrap()
        }));
    }
    let mut slots = Vec::new();
    for h in handles {
        slots.push(h.await.unwrap());
    }
    slots.sort();
    slots.dedup();
    assert_eq!(slots.len(), 20);
}

async fn sync_cursor_round_trips(store: Arc<dyn Store>) {
    assert_eq!(store.sync_cursor(700000, "IYS").await.unwrap(), None);
    store
        .set_sync_cursor(700000, "IYS", "1597740617_632c", t0())
        .await
        .unwrap();
    store
        .set_sync_cursor(700000, "IYS", "1597740618_aa11", t0())
        .await
        .unwrap();
    store
        .set_sync_cursor(700001, "IYS", "x", t0())
        .await
        .unwrap();
    assert_eq!(
        store.sync_cursor(700000, "IYS").await.unwrap().as_deref(),
        Some("1597740618_aa11")
    );
    assert_eq!(store.sync_cursor(700000, "HS").await.unwrap(), None);
}

async fn deadlines_expire_and_targets_warn(store: Arc<dyn Store>) {
    let (e, _) = record(&store, "a", PHONE, Status::Onay, t0()).await;
    let past_target = at("2026-11-25T00:00:00Z");
    let flagged = store.flag_past_target(past_target).await.unwrap();
    assert_eq!(flagged.len(), 1);
    assert!(
        store
            .flag_past_target(past_target)
            .await
            .unwrap()
            .is_empty(),
        "warned once"
    );
    assert!(store.expire_overdue(past_target).await.unwrap().is_empty());
    let past_deadline = at("2026-11-27T00:00:00Z");
    let expired = store.expire_overdue(past_deadline).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(
        store.job_for_event(e).await.unwrap().unwrap().state,
        JobState::Expired
    );
    let kinds: Vec<AlertKind> = store
        .alerts(10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.kind)
        .collect();
    assert_eq!(kinds, vec![AlertKind::Expired, AlertKind::TargetMissed]);
}

on_both_backends!(
    claim_leases_due_jobs_once,
    finish_is_fenced_and_done_confirms_state,
    done_supersedes_older_pending_jobs,
    terminal_outcomes_and_alerts,
    known_status_prefers_newest_accepted_or_citizen,
    batches_submit_claim_and_finish,
    attempts_are_logged_per_call,
    pacing_slots_are_spaced_globally,
    sync_cursor_round_trips,
    deadlines_expire_and_targets_warn,
);
