//! The store contract: every `Store` method, on SQLite and on PostgreSQL.

use std::sync::Arc;

use crate::common::{at, intent};
use chrono::{DateTime, Utc};
use iys_relay::domain::calendar::BusinessCalendar;
use iys_relay::domain::time::ManualClock;
use iys_relay::domain::{Address, ConsentType, RecipientType, Source, Status};
use iys_relay::ledger::{Ledger, SuppressionPolicy};
use iys_relay::store::{JobState, JobTimes, NewEvent, QuarantineItem, RecordOutcome, Store};

const PHONE: &str = "+905321234567";

fn times() -> JobTimes {
    JobTimes {
        due_at: at("2026-11-23T10:00:00Z"),
        target_at: at("2026-11-24T20:59:59Z"),
        deadline_at: at("2026-11-26T20:59:59Z"),
    }
}

/// Records one SMS movement of PHONE at `now`.
async fn record_one(
    store: &Arc<dyn Store>,
    msg: &str,
    status: Status,
    consent_at: &str,
    now: DateTime<Utc>,
) -> Vec<RecordOutcome> {
    let event = new_event(msg, status, consent_at);
    store.record_batch(&[event], now).await.unwrap()
}

fn new_event(msg: &str, status: Status, consent_at: &str) -> NewEvent {
    NewEvent {
        intent: intent(msg, PHONE, status, at(consent_at)),
        received_at: at(consent_at),
        report: Some(times()),
    }
}

fn key() -> Address {
    Address {
        brand_code: 700000,
        recipient: PHONE.into(),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
    }
}

/// The console's movements from `at`'s Istanbul day on, per word (one brand and channel here).
async fn movements_by_word(store: &Arc<dyn Store>, at: DateTime<Utc>) -> Vec<(String, i64)> {
    let day = iys_relay::console::overview::istanbul_day(at);
    let days = store.movement_days(day).await.unwrap();
    days.into_iter().map(|d| (d.status, d.movements)).collect()
}

async fn readiness_reports_applied_migrations(store: Arc<dyn Store>) {
    let r = store.readiness().await.unwrap();
    assert!(r.is_ready(), "{r:?}");
    assert_eq!(r.applied_migrations, r.expected_migrations);
    // Migrating twice is harmless.
    store.migrate().await.unwrap();
}

async fn record_writes_event_state_and_job(store: Arc<dyn Store>) {
    let now = at("2026-11-23T10:00:01Z");
    let out = record_one(&store, "SM1", Status::Ret, "2026-11-23T10:00:00Z", now).await;
    assert_eq!(out.len(), 1);
    let o = &out[0];
    assert!(!o.duplicate);
    assert_eq!(o.deadline_at, Some(times().deadline_at));

    let ev = store
        .event(o.event_id)
        .await
        .unwrap()
        .expect("event stored");
    assert_eq!(ev.recipient, PHONE);
    assert_eq!(ev.status, Status::Ret);
    assert_eq!(ev.provider_message_id, "SM1");
    assert_eq!(ev.evidence["raw"]["Body"], "RET");
    assert_eq!(ev.evidence["ip"], "203.0.113.9");

    let st = store.consent_state(&key()).await.unwrap().expect("state");
    assert_eq!(st.status, Status::Ret);
    assert_eq!(st.event_id, o.event_id);
    assert!(
        !st.iys_confirmed,
        "an HS movement is not in İYS until reported"
    );

    let job = store.job_for_event(o.event_id).await.unwrap().expect("job");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.deadline_at, times().deadline_at);
    assert_eq!(job.address, key());
}

async fn duplicate_returns_original_and_changes_nothing(store: Arc<dyn Store>) {
    let now = at("2026-11-23T10:00:01Z");
    let first = record_one(&store, "SM2", Status::Ret, "2026-11-23T10:00:00Z", now).await;
    // Same provider message id, different content: still the original.
    let again = record_one(&store, "SM2", Status::Onay, "2026-11-23T11:00:00Z", now).await;
    assert!(again[0].duplicate);
    assert_eq!(again[0].event_id, first[0].event_id);
    assert_eq!(again[0].job_id, first[0].job_id);
    assert_eq!(store.events_for_recipient(PHONE).await.unwrap().len(), 1);
    assert_eq!(
        store.consent_state(&key()).await.unwrap().unwrap().status,
        Status::Ret
    );
    // Within one batch too.
    let both = store
        .record_batch(
            &[
                new_event("SM3", Status::Onay, "2026-11-23T12:00:00Z"),
                new_event("SM3", Status::Onay, "2026-11-23T12:00:00Z"),
            ],
            now,
        )
        .await
        .unwrap();
    assert!(!both[0].duplicate && both[1].duplicate);
    assert_eq!(both[0].event_id, both[1].event_id);
    // The queue's and the console's counters count each movement once, however often it came.
    let summary = store.queue_summary(1).await.unwrap();
    assert_eq!(summary.by_state, vec![("pending".to_string(), 2)]);
    assert_eq!(
        movements_by_word(&store, now).await,
        vec![("ONAY".to_string(), 1), ("RET".to_string(), 1)]
    );
}

async fn newest_consent_date_wins(store: Arc<dyn Store>) {
    let now = at("2026-11-23T12:00:00Z");
    record_one(&store, "A", Status::Onay, "2026-11-23T11:00:00Z", now).await;
    // An older movement arriving late is kept as evidence but does not change the state.
    record_one(&store, "B", Status::Ret, "2026-11-23T10:00:00Z", now).await;
    assert_eq!(
        store.consent_state(&key()).await.unwrap().unwrap().status,
        Status::Onay
    );
    record_one(&store, "C", Status::Ret, "2026-11-23T11:30:00Z", now).await;
    assert_eq!(
        store.consent_state(&key()).await.unwrap().unwrap().status,
        Status::Ret
    );
    assert_eq!(store.events_for_recipient(PHONE).await.unwrap().len(), 3);
}

async fn citizen_changes_are_confirmed_and_not_reported(store: Arc<dyn Store>) {
    let mut e = new_event("iys-tx-1", Status::Ret, "2026-11-23T10:00:00Z");
    e.intent.source = Source::IysMobil;
    e.report = None;
    let out = store
        .record_batch(&[e], at("2026-11-23T10:00:01Z"))
        .await
        .unwrap();
    assert_eq!(out[0].job_id, None);
    assert!(
        store
            .job_for_event(out[0].event_id)
            .await
            .unwrap()
            .is_none()
    );
    let st = store.consent_state(&key()).await.unwrap().unwrap();
    assert!(st.iys_confirmed);
    assert_eq!(st.source, Source::IysMobil);
}

async fn bulk_states(store: Arc<dyn Store>) {
    let now = at("2026-11-23T12:00:00Z");
    let mut items = Vec::new();
    for n in 0..50 {
        let phone = format!("+90532123{n:04}");
        let mut e = new_event(&format!("M{n}"), Status::Onay, "2026-11-23T11:00:00Z");
        e.intent.recipient = iys_relay::domain::Recipient::parse(&phone).unwrap();
        items.push(e);
    }
    let out = store.record_batch(&items, now).await.unwrap();
    assert_eq!(out.iter().filter(|o| !o.duplicate).count(), 50);
    let ask: Vec<String> = (0..60).map(|n| format!("+90532123{n:04}")).collect();
    let states = store
        .consent_states(700000, RecipientType::Bireysel, ConsentType::Mesaj, &ask)
        .await
        .unwrap();
    assert_eq!(states.len(), 50);
    assert!(
        store
            .consent_states(700000, RecipientType::Bireysel, ConsentType::Arama, &ask)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .consent_states(700000, RecipientType::Bireysel, ConsentType::Mesaj, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn queue_summary_counts_and_orders(store: Arc<dyn Store>) {
    let now = at("2026-11-23T12:00:00Z");
    let mut late = new_event("Q1", Status::Ret, "2026-11-23T11:00:00Z");
    late.report = Some(JobTimes {
        deadline_at: at("2026-11-30T20:59:59Z"),
        ..times()
    });
    store
        .record_batch(
            &[late, new_event("Q2", Status::Ret, "2026-11-23T11:00:00Z")],
            now,
        )
        .await
        .unwrap();
    let s = store.queue_summary(10).await.unwrap();
    assert_eq!(s.by_state, vec![("pending".to_string(), 2)]);
    assert_eq!(s.nearest.len(), 2);
    assert!(s.nearest[0].deadline_at < s.nearest[1].deadline_at);
    assert_eq!(s.oldest_open_created_at, Some(now));
}

async fn quarantine_keeps_raw_bytes(store: Arc<dyn Store>) {
    let item = QuarantineItem {
        received_at: at("2026-11-23T12:00:00Z"),
        route: "/webhooks/twilio/sms".into(),
        reason: "invalid UTF-8".into(),
        content_type: Some("application/x-www-form-urlencoded".into()),
        ip: None,
        body: vec![0xff, 0xfe, b'R'],
    };
    let kept = store.quarantine(&item, 1 << 20).await.unwrap();
    assert!(kept.id > 0);
    assert_eq!(kept.dropped, 0);
    assert_eq!(store.quarantine_count().await.unwrap(), 1);
    assert_eq!(store.quarantine_bytes().await.unwrap(), 3);
}

/// The total cap drops the oldest rows first, in the insert's transaction; expiry drops by age.
async fn quarantine_is_bounded_oldest_first(store: Arc<dyn Store>) {
    let item = |minute: u32, len: usize| QuarantineItem {
        received_at: at(&format!("2026-11-23T12:{minute:02}:00Z")),
        route: "/webhooks/generic/sms".into(),
        reason: "malformed".into(),
        content_type: None,
        ip: Some("203.0.113.9".into()),
        body: vec![b'x'; len],
    };
    let mut ids = Vec::new();
    for m in 0..4 {
        let kept = store.quarantine(&item(m, 100), 350).await.unwrap();
        assert_eq!(kept.dropped, u64::from(m == 3), "row {m}");
        ids.push(kept.id);
    }
    assert_eq!(store.quarantine_count().await.unwrap(), 3);
    assert_eq!(store.quarantine_bytes().await.unwrap(), 300);
    // A larger body pushes out as many of the oldest as needed, never itself.
    let kept = store.quarantine(&item(4, 300), 350).await.unwrap();
    assert_eq!(kept.dropped, 3);
    assert_eq!(store.quarantine_count().await.unwrap(), 1);
    assert_eq!(store.quarantine_bytes().await.unwrap(), 300);
    store.quarantine(&item(5, 10), 350).await.unwrap();
    // Expiry: everything received before 12:05 goes.
    let dropped = store
        .expire_quarantine(at("2026-11-23T12:05:00Z"))
        .await
        .unwrap();
    assert_eq!(dropped, 1);
    assert_eq!(store.quarantine_bytes().await.unwrap(), 10);
    assert_eq!(
        store
            .expire_quarantine(at("2026-11-23T12:05:00Z"))
            .await
            .unwrap(),
        0
    );
}

/// 100 concurrent writers of one provider message id straight at the store: one event.
async fn concurrent_store_writes_dedupe(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.record_batch(
                &[new_event("SAME", Status::Ret, "2026-11-23T10:00:00Z")],
                at("2026-11-23T10:00:01Z"),
            )
            .await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let mut fresh = 0;
    for t in tasks {
        let o = t.await.unwrap().unwrap().remove(0);
        ids.insert(o.event_id);
        fresh += usize::from(!o.duplicate);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(fresh, 1);
    assert_eq!(store.events_for_recipient(PHONE).await.unwrap().len(), 1);
}

/// 100 concurrent `Ledger::record()` calls of one provider message id: one event (group commit).
async fn concurrent_ledger_records_dedupe(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(at("2026-11-23T10:00:00Z")));
    let ledger = Ledger::start(
        store.clone(),
        Arc::new(BusinessCalendar::turkish()),
        clock,
        64,
        1,
        SuppressionPolicy {
            require_iys_confirmation: true,
        },
    );
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let l = ledger.clone();
        tasks.push(tokio::spawn(async move {
            l.record(intent(
                "SAME-L",
                PHONE,
                Status::Ret,
                at("2026-11-23T10:00:00Z"),
            ))
            .await
        }));
    }
    let mut fresh = 0;
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let o = t.await.unwrap().unwrap();
        ids.insert(o.event_id);
        fresh += usize::from(!o.duplicate);
        // Monday 10:00 UTC → Thursday 23:59:59 Istanbul.
        assert_eq!(o.deadline_at, Some(at("2026-11-26T20:59:59Z")));
    }
    assert_eq!((ids.len(), fresh), (1, 1));
    assert_eq!(store.events_for_recipient(PHONE).await.unwrap().len(), 1);
    let job = store
        .job_for_event(*ids.iter().next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        job.target_at,
        at("2026-11-24T20:59:59Z"),
        "internal target: end of the next business day"
    );
}

/// Group commits side by side whose movements (several addresses, both words, a message id they
/// share) come in opposite orders all commit: a backend that locks rows in the order a batch
/// holds them deadlocks here, and the store answers with an error.
async fn concurrent_batches_in_opposite_orders_commit(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const ROUNDS: usize = 20;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                // Each round on a day of its own: the day counts are keyed by day.
                let day = at("2026-11-23T10:00:00Z") + chrono::Duration::days(round as i64);
                let mut batch: Vec<NewEvent> = (0..6)
                    .map(|n| NewEvent {
                        intent: intent(
                            &format!("T{task}-R{round}-{n}"),
                            &format!("+90532123456{}", n % 3),
                            if n % 2 == 0 {
                                Status::Onay
                            } else {
                                Status::Ret
                            },
                            day,
                        ),
                        received_at: day,
                        report: Some(times()),
                    })
                    .collect();
                batch.push(new_event(
                    &format!("SHARED-{round}"),
                    Status::Ret,
                    "2026-11-23T10:00:00Z",
                ));
                if task % 2 == 1 {
                    batch.reverse();
                }
                s.record_batch(&batch, at("2026-11-23T10:00:01Z"))
                    .await
                    .unwrap_or_else(|e| panic!("task {task} round {round}: {e}"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut events = 0;
    for n in 0..3 {
        events += store
            .events_for_recipient(&format!("+90532123456{n}"))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(events, TASKS * ROUNDS * 6);
    assert_eq!(
        store.events_for_recipient(PHONE).await.unwrap().len(),
        ROUNDS
    );
}

/// The queue's and the console's counters stay exact when commits run side by side and jobs are
/// counted in by one commit and moved on by another (PostgreSQL keeps each count in several
/// rows, one per connection, and a reader must add them up: any lost or doubled update shows
/// here).
async fn counters_stay_exact_when_commits_run_side_by_side(store: Arc<dyn Store>) {
    const TASKS: usize = 6;
    const ROUNDS: usize = 10;
    const PER_BATCH: usize = 5;
    let now = at("2026-11-23T12:00:00Z");
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..ROUNDS {
                let batch: Vec<NewEvent> = (0..PER_BATCH)
                    .map(|n| {
                        let i = (task * ROUNDS + round) * PER_BATCH + n;
                        NewEvent {
                            intent: intent(
                                &format!("C{i}"),
                                &format!("+90532{:07}", 1_000_000 + i),
                                if n % 2 == 0 {
                                    Status::Onay
                                } else {
                                    Status::Ret
                                },
                                at("2026-11-23T11:00:00Z"),
                            ),
                            received_at: now,
                            report: Some(times()),
                        }
                    })
                    .collect();
                s.record_batch(&batch, now).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    const JOBS: i64 = (TASKS * ROUNDS * PER_BATCH) as i64;
    // Claims side by side, on other connections than the inserts.
    let mut claims = Vec::new();
    for c in 0..4 {
        let s = store.clone();
        claims.push(tokio::spawn(async move {
            s.claim_jobs(
                &format!("w{c}"),
                now,
                now + chrono::Duration::minutes(1),
                25,
            )
            .await
            .unwrap()
            .len() as i64
        }));
    }
    let mut leased = 0;
    for c in claims {
        leased += c.await.unwrap();
    }
    assert_eq!(leased, 100);
    let s = store.queue_summary(1).await.unwrap();
    assert_eq!(
        s.by_state,
        vec![
            ("leased".to_string(), leased),
            ("pending".to_string(), JOBS - leased)
        ]
    );
    // One row per (day, brand, channel, word), whatever number of rows the store keeps it in.
    assert_eq!(
        movements_by_word(&store, now).await,
        vec![
            ("ONAY".to_string(), JOBS / 5 * 3),
            ("RET".to_string(), JOBS / 5 * 2)
        ]
    );
}

on_both_backends!(
    readiness_reports_applied_migrations,
    counters_stay_exact_when_commits_run_side_by_side,
    concurrent_batches_in_opposite_orders_commit,
    record_writes_event_state_and_job,
    duplicate_returns_original_and_changes_nothing,
    newest_consent_date_wins,
    citizen_changes_are_confirmed_and_not_reported,
    bulk_states,
    queue_summary_counts_and_orders,
    quarantine_keeps_raw_bytes,
    quarantine_is_bounded_oldest_first,
    concurrent_store_writes_dedupe,
    concurrent_ledger_records_dedupe,
);

/// PostgreSQL URLs open the native store, for writers and for the CLI's read-only commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_urls_open_the_native_store() {
    let Some(s) = crate::common::postgres().await else {
        return;
    };
    let any: Arc<dyn std::any::Any + Send + Sync> = s.store.clone();
    assert!(any.downcast::<iys_relay::store::PgStore>().is_ok());
    let ro = iys_relay::store::connect_read_only(&s.url, 1)
        .await
        .unwrap();
    let any: Arc<dyn std::any::Any + Send + Sync> = ro;
    assert!(any.downcast::<iys_relay::store::PgStore>().is_ok());
}

#[test]
fn migrations_have_the_same_versions_on_both_backends() {
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    let (s, p) = (names("sqlite"), names("postgres"));
    assert!(!s.is_empty());
    assert_eq!(
        s, p,
        "migrations/sqlite and migrations/postgres must hold the same versions and names"
    );
}

/// A SQLite database made by an earlier release, whose migrations sqlx's own migrator applied
/// (up to 0010), is recognised and upgraded in place by the store's migration runner, and the
/// current word it held survives the state table's new layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_made_by_sqlx_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("migrations-of-an-earlier-release");
    std::fs::create_dir(&old).unwrap();
    let all = format!("{}/migrations/sqlite", env!("CARGO_MANIFEST_DIR"));
    for e in std::fs::read_dir(all).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0011" {
            std::fs::copy(&path, old.join(&name)).unwrap();
        }
    }
    let url = format!("sqlite://{}", dir.path().join("ledger.db").display());
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO consent_events (id, brand_code, recipient, recipient_type, consent_type,
             status, source, channel, consent_at_ms, received_at_ms, provider,
             provider_message_id, evidence)
         VALUES (1, 700000, '+905321234567', 'BIREYSEL', 'MESAJ', 'RET', 'HS_MESAJ', 'sms',
                 1000, 1000, 'twilio', 'SM1', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO consent_state VALUES (700000, '+905321234567', 'BIREYSEL', 'MESAJ', 'RET',
             'HS_MESAJ', 'sms', 1000, 1, 0, 1000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = iys_relay::store::connect(&url, 2).await.unwrap();
    assert!(!store.readiness().await.unwrap().is_ready());
    store.migrate().await.unwrap();
    let r = store.readiness().await.unwrap();
    assert!(r.is_ready(), "{r:?}");
    let held = store
        .consent_state(&key())
        .await
        .unwrap()
        .expect("state kept");
    assert_eq!((held.status, held.event_id), (Status::Ret, 1));
}
