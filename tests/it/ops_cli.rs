//! The operations CLI (`requeue`, `export` and its evidence pack, `reconcile`, `import`): the
//! OpsStore contract, the
//! commands' library functions against the real simulator on a ManualClock, and the real
//! binary on a SQLite file. Runs on SQLite and PostgreSQL.

use std::sync::Arc;

use crate::common::procs::{run_cli, run_cli_in};
use crate::common::sim_world::SimWorld;
use crate::common::{BRAND, PHONE, alert_kinds};
use crate::common::{TestStore, intent};
use chrono::{Duration, Utc};
use chrono_tz::Europe::Istanbul;
use iys_relay::domain::{ConsentType, Recipient, RecipientType, Source, Status};
use iys_relay::ops;
use iys_relay::ops::import::ImportOptions;
use iys_relay::ops::reconcile::Kind;
use iys_relay::ops::requeue::{RequeueRequest, RequeueResult};
use iys_relay::store::queue::{AlertKind, Fence, JobOutcome};
use iys_relay::store::{JobState, JobTimes, NewEvent, Store};

fn requeue_req(ids: Vec<i64>, force: bool) -> RequeueRequest {
    RequeueRequest {
        ids,
        force,
        note: Some("ticket 42".into()),
        ..RequeueRequest::default()
    }
}

async fn requeue(w: &SimWorld, req: &RequeueRequest) -> Vec<RequeueResult> {
    let cal = w.app.state.ledger.calendar();
    ops::requeue::requeue(w.store.as_ref(), cal, w.now(), req)
        .await
        .unwrap()
}

// ---- OpsStore contract -------------------------------------------------------------------

async fn ops_store_contract(store: Arc<dyn Store>) {
    let now = crate::common::at("2026-03-04T10:00:00+03:00");
    let times = JobTimes {
        due_at: now,
        target_at: now + Duration::hours(20),
        deadline_at: now + Duration::days(3),
    };
    let items: Vec<NewEvent> = (0..3)
        .map(|n| NewEvent {
            intent: intent(
                &format!("m{n}"),
                &format!("+90532123450{n}"),
                Status::Onay,
                now,
            ),
            received_at: now,
            report: Some(times),
        })
        .collect();
    let out = store.record_batch(&items, now).await.unwrap();
    let ids: Vec<i64> = out.iter().map(|o| o.job_id.unwrap()).collect();
    assert_eq!(store.jobs_by_ids(&ids).await.unwrap().len(), 3);
    assert!(store.jobs_by_ids(&[999_999]).await.unwrap().is_empty());

    // Job 0: claimed and failed → requeued, with its failed alert folded into the requeue note.
    let claimed = store
        .claim_jobs("w", now, now + Duration::minutes(1), 1)
        .await
        .unwrap();
    let j = &claimed[0];
    let fence = Fence::Lease {
        owner: "w".into(),
        attempts: j.attempts,
    };
    let failed = JobOutcome::Failed {
        error: "H121 bad number".into(),
    };
    assert!(store.finish_job(j.id, &fence, &failed, now).await.unwrap());
    assert_eq!(
        store.jobs_in_state(JobState::Failed, 10).await.unwrap()[0].id,
        j.id
    );
    let later = now + Duration::hours(1);
    let new_times = JobTimes {
        due_at: later,
        ..times
    };
    assert!(
        store
            .requeue_job(j.id, new_times, "op: fixed", later)
            .await
            .unwrap()
    );
    let after = &store.jobs_by_ids(&[j.id]).await.unwrap()[0];
    assert_eq!(
        (after.state, after.attempts, after.due_at),
        (JobState::Pending, 1, later)
    );
    let alerts = store.alerts_for_job(j.id).await.unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::Requeued);
    assert!(alerts[0].detail.contains("op: fixed") && alerts[0].detail.contains("H121"));
    // A pending job cannot be requeued; a second requeue after a second failure accumulates.
    assert!(
        !store
            .requeue_job(j.id, new_times, "again", later)
            .await
            .unwrap()
    );
    let c = store
        .claim_jobs("w", later, later + Duration::minutes(1), 1)
        .await
        .unwrap();
    let again = c.iter().find(|x| x.id == j.id).unwrap();
    let fence = Fence::Lease {
        owner: "w".into(),
        attempts: again.attempts,
    };
    assert!(
        store
            .finish_job(j.id, &fence, &failed, later)
            .await
            .unwrap()
    );
    let kinds = alert_kinds(store.as_ref(), j.id).await;
    assert_eq!(kinds, vec![AlertKind::Requeued, AlertKind::Failed]);
    assert!(
        store
            .requeue_job(j.id, new_times, "second", later)
            .await
            .unwrap()
    );
    let a = store.alerts_for_job(j.id).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(a[0].detail.contains("op: fixed") && a[0].detail.contains("second"));
    assert!(
        store
            .alerts(10)
            .await
            .unwrap()
            .iter()
            .any(|x| x.kind == AlertKind::Requeued)
    );

    // Job 1: failed straight from pending; job 2 rescheduled.
    let others: Vec<i64> = ids[1..].to_vec();
    assert_eq!(
        store
            .fail_pending_jobs(&others[..1], "outside", now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .fail_pending_jobs(&others[..1], "x", now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.alerts_for_job(others[0]).await.unwrap()[0].kind,
        AlertKind::Failed
    );
    let moved = JobTimes {
        due_at: later,
        target_at: later,
        deadline_at: later + Duration::days(5),
    };
    assert!(
        store
            .reschedule_pending_job(others[1], moved, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .reschedule_pending_job(others[0], moved, now)
            .await
            .unwrap()
    );
    assert_eq!(
        store.jobs_by_ids(&[others[1]]).await.unwrap()[0].deadline_at,
        moved.deadline_at
    );

    // Done with a transaction id: found by id and by its finishing day.
    let c = store
        .claim_jobs("w", later, later + Duration::minutes(1), 10)
        .await
        .unwrap();
    let d = c.iter().find(|x| x.id == others[1]).unwrap();
    let fence = Fence::Lease {
        owner: "w".into(),
        attempts: d.attempts,
    };
    let done = JobOutcome::Done {
        transaction_id: Some("tx-ours".into()),
    };
    assert!(store.finish_job(d.id, &fence, &done, later).await.unwrap());
    let known = store
        .known_transaction_ids(BRAND, &["tx-ours".into(), "tx-other".into()])
        .await
        .unwrap();
    assert_eq!(known, vec!["tx-ours".to_string()]);
    assert!(
        store
            .known_transaction_ids(1, &["tx-ours".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let day = store
        .done_jobs_between(BRAND, now, now + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(day.iter().map(|j| j.id).collect::<Vec<_>>(), vec![d.id]);
    assert!(
        store
            .done_jobs_between(BRAND, now + Duration::days(1), now + Duration::days(2))
            .await
            .unwrap()
            .is_empty()
    );

    // Batch attempt rows are found by request id.
    let attempt = iys_relay::store::queue::Attempt {
        job_id: None,
        batch_id: Some("req-1".into()),
        brand_code: Some(BRAND),
        operation: "add_batch_v2".into(),
        method: "POST".into(),
        path: "/v2/x".into(),
        status: Some(202),
        code: None,
        duration_ms: 5,
        at: now,
    };
    store
        .record_attempts(std::slice::from_ref(&attempt))
        .await
        .unwrap();
    assert_eq!(
        store.attempts_for_batch("req-1").await.unwrap(),
        vec![attempt]
    );
}

// ---- requeue ---------------------------------------------------------------------------

async fn requeue_failed_and_expired_jobs(s: TestStore) {
    let w = SimWorld::start(s.store.clone(), "2026-03-04 10:00:00", "").await;
    // A permanent refusal: the job fails; after the "fix" a requeue gets it through.
    w.sim.fail_next(1, 422, "H121");
    let e = w
        .record("F1", PHONE, Status::Onay, Duration::seconds(5))
        .await;
    w.report().await;
    let job = w.job(e).await;
    assert_eq!(job.state, JobState::Failed);
    let r = requeue(&w, &requeue_req(vec![job.id], false)).await;
    assert!(r[0].is_requeued(), "{r:?}");
    let again = w.job(e).await;
    assert_eq!(
        (again.state, again.attempts),
        (JobState::Pending, job.attempts)
    );
    assert!(again.due_at <= w.now());
    w.report().await;
    assert_eq!(w.job(e).await.state, JobState::Done);
    // Only failed or expired jobs: a done job and an unknown id are refused.
    let r = requeue(&w, &requeue_req(vec![job.id, 987_654], false)).await;
    assert!(r.iter().all(|x| !x.is_requeued()), "{r:?}");
    let text = ops::requeue::render(&r);
    assert!(
        text.contains("only failed or expired") && text.contains("no such job"),
        "{text}"
    );

    // Consented 10 days ago: expires at once, and İYS would refuse it (H467).
    let old = w
        .record("OLD", "+905321234599", Status::Onay, Duration::days(10))
        .await;
    w.report().await;
    let job = w.job(old).await;
    assert_eq!(job.state, JobState::Expired);
    let all = RequeueRequest {
        all_expired: true,
        ..RequeueRequest::default()
    };
    let r = requeue(&w, &all).await;
    match &r[..] {
        [RequeueResult::Refused { reason, .. }] => assert!(reason.contains("H467"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.job(old).await.state, JobState::Expired);
    let r = requeue(&w, &requeue_req(vec![job.id], true)).await;
    match &r[..] {
        [
            RequeueResult::Requeued {
                warning: Some(w),
                deadline_at,
                ..
            },
        ] => {
            assert!(w.contains("H467"));
            assert!(*deadline_at > job.deadline_at);
        }
        other => panic!("{other:?}"),
    }
    // İYS refuses it (H467): expired again, and alerted again.
    w.report().await;
    assert_eq!(w.job(old).await.state, JobState::Expired);
    let kinds = alert_kinds(w.store.as_ref(), job.id).await;
    assert_eq!(kinds, vec![AlertKind::Requeued, AlertKind::Expired]);
}

// ---- export ----------------------------------------------------------------------------

async fn export_shows_events_evidence_jobs_and_attempts(s: TestStore) {
    let w = SimWorld::start(s.store.clone(), "2026-03-04 10:00:00", "").await;
    w.record("E1", PHONE, Status::Onay, Duration::seconds(5))
        .await;
    w.report().await;
    w.clock.advance(Duration::minutes(1));
    w.record("E2", PHONE, Status::Ret, Duration::seconds(5))
        .await;
    w.record("OTHER", "+905321230000", Status::Onay, Duration::seconds(5))
        .await;
    w.report().await;
    let who = Recipient::parse("0532 123 45 67").unwrap();
    let x = ops::export::export(w.store.as_ref(), &who, None, w.now())
        .await
        .unwrap();
    assert_eq!(x.events.len(), 2, "only this recipient");
    assert_eq!(x.events[0].event.evidence["raw"]["MessageSid"], "E1");
    for r in &x.events {
        let job = r.job.as_ref().expect("job");
        assert_eq!(job.state, JobState::Done);
        assert!(!r.attempts.is_empty(), "every İYS attempt is exported");
    }
    assert_eq!(x.states.len(), 1);
    assert_eq!(x.states[0].status, Status::Ret);
    let json = serde_json::to_value(&x).unwrap();
    assert_eq!(json["events"][1]["event"]["status"], "RET");
    let csv = ops::export::to_csv(&x).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("event_id,brand_code,recipient"));
    assert!(
        lines[1].contains(PHONE) && lines[1].contains(",done,"),
        "{}",
        lines[1]
    );
    let other_brand = ops::export::export(w.store.as_ref(), &who, Some(1), w.now())
        .await
        .unwrap();
    assert!(other_brand.events.is_empty());
}

/// `export --pack` through the real binary on the test's own database (both backends): the
/// zip it writes holds what it printed, checks with its own SHA256SUMS, and says the same as
/// `export` does; a person without records still gets a pack, a bad recipient a clear error.
async fn export_pack_from_the_binary(s: TestStore) {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let sha = |b: &[u8]| hex::encode(Sha256::digest(b));

    let w = SimWorld::start(s.store.clone(), "2026-03-04 10:00:00", "").await;
    w.record("E1", PHONE, Status::Onay, Duration::seconds(5))
        .await;
    w.report().await;
    w.clock.advance(Duration::minutes(1));
    w.record("E2", PHONE, Status::Ret, Duration::seconds(5))
        .await;
    w.report().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = |args: Vec<String>| {
        let (url, dir) = (s.url.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli_in(&dir, &url, &args)
        })
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let path = dir.path().join("pack.zip");
    let out = cli(args(&[
        "export",
        PHONE,
        "--pack",
        "--out",
        path.to_str().unwrap(),
    ]))
    .await
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("1234567"),
        "nothing logs the recipient: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], path.to_str().unwrap(), "{stdout}");
    let printed = |name: &str| {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("sha256 {name} ")));
        line.and_then(|l| l.split_whitespace().nth(2))
            .unwrap()
            .to_string()
    };
    let zip_bytes = std::fs::read(&path).unwrap();
    assert_eq!(printed("zip"), sha(&zip_bytes));

    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let mut files = std::collections::BTreeMap::new();
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        files.insert(f.name().unwrap().to_string(), bytes);
    }
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, ["SHA256SUMS", "evidence.json", "evidence.pdf"]);
    let sums = String::from_utf8(files["SHA256SUMS"].clone()).unwrap();
    for name in ["evidence.json", "evidence.pdf"] {
        let hex = sha(&files[name]);
        assert!(sums.contains(&format!("{hex}  {name}\n")), "{sums}");
        assert_eq!(printed(name), hex);
    }

    let v: serde_json::Value = serde_json::from_slice(&files["evidence.json"]).unwrap();
    assert_eq!(v["generated_by"], "cli");
    assert_eq!(v["service_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["export"]["recipient"], PHONE);
    let events = v["export"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"]["evidence"]["raw"]["MessageSid"], "E1");
    assert_eq!(events[1]["event"]["status"], "RET");
    assert!(
        events
            .iter()
            .all(|e| !e["attempts"].as_array().unwrap().is_empty())
    );

    let pdf = &files["evidence.pdf"];
    assert!(pdf.starts_with(b"%PDF-"));
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let text = doc.extract_text(&[1]).unwrap();
    for want in [
        format!("Kişi / Person: {PHONE}"),
        printed("evidence.json"),
        "Hareketler / Movements (2)".to_string(),
        "Sayfa 1 / Page 1".to_string(),
    ] {
        assert!(text.contains(&want), "{want:?} not in:\n{text}");
    }

    // Someone the ledger never heard of: a pack that says so, under its default name.
    let out = cli(args(&["export", "0532 999 00 00", "--pack"]))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert!(written.starts_with("iys-kanit-905329990000-"), "{written}");
    let mut a =
        zip::ZipArchive::new(std::fs::File::open(dir.path().join(&written)).unwrap()).unwrap();
    let mut pdf = Vec::new();
    a.by_name("evidence.pdf")
        .unwrap()
        .read_to_end(&mut pdf)
        .unwrap();
    let text = lopdf::Document::load_mem(&pdf)
        .unwrap()
        .extract_text(&[1])
        .unwrap();
    assert!(text.contains("Kayıt yok / No records"), "{text}");

    // Not a recipient at all: a plain error, no panic, nothing written.
    let bad = dir.path().join("bad.zip");
    let out = cli(args(&[
        "export",
        "not-a-number",
        "--pack",
        "--out",
        bad.to_str().unwrap(),
    ]))
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("not a valid phone number or e-mail"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!bad.exists());
    let out = cli(args(&["export", PHONE, "--pack", "--format", "csv"]))
        .await
        .unwrap();
    assert!(!out.status.success(), "--pack and --format conflict");
}

// ---- reconcile -------------------------------------------------------------------------

async fn reconcile_finds_and_applies_discrepancies(s: TestStore) {
    let w = SimWorld::start(s.store.clone(), "2026-03-04 10:00:00", "").await;
    let config = w.app.state.config.clone();
    let client = ops::iys_client(&config, &w.sim_base, Arc::new(w.clock.clone())).unwrap();
    let ledger = &w.app.state.ledger;
    // In agreement: our ONAY reported and accepted.
    w.record("R1", PHONE, Status::Onay, Duration::seconds(5))
        .await;
    w.report().await;
    w.clock.advance(Duration::minutes(1));
    let clean = ops::reconcile::reconcile(ledger, &client, &[BRAND], w.today(), false)
        .await
        .unwrap();
    assert_eq!(
        (clean.file_rows, clean.done_jobs, clean.remaining()),
        (1, 1, 0),
        "{clean:?}"
    );

    // A citizen's RET not pulled yet, and an HS movement someone else sent for our brand.
    w.sim
        .citizen_mesaj(BRAND, PHONE, Status::Ret, Source::IysMobil)
        .unwrap();
    let foreign = iys_relay::iys::wire::ConsentRequest::new(
        &Recipient::parse("+905329999999").unwrap(),
        RecipientType::Bireysel,
        ConsentType::Mesaj,
        Status::Onay,
        Source::HsWeb,
        w.now() - Duration::minutes(1),
    )
    .unwrap();
    client.add_consent_v2(BRAND, &foreign).await.unwrap();
    let r = ops::reconcile::reconcile(ledger, &client, &[BRAND], w.today(), false)
        .await
        .unwrap();
    let kinds: Vec<Kind> = r.discrepancies.iter().map(|d| d.kind).collect();
    assert!(kinds.contains(&Kind::MissingInLedger), "{r:?}");
    assert!(kinds.contains(&Kind::UnknownHsMovement), "{r:?}");
    let text = ops::reconcile::render(&r);
    assert!(!text.contains(PHONE), "recipients are masked: {text}");
    assert!(text.contains("missing_in_ledger"));

    let r = ops::reconcile::reconcile(ledger, &client, &[BRAND], w.today(), true)
        .await
        .unwrap();
    assert_eq!(r.applied(), 1, "{r:?}");
    let state = w.current(PHONE).await;
    assert_eq!(
        (state.status, state.source),
        (Status::Ret, Source::IysMobil)
    );
    // Only the foreign HS movement (and the ledger's lack of its address) remain.
    let r = ops::reconcile::reconcile(ledger, &client, &[BRAND], w.today(), true)
        .await
        .unwrap();
    assert!(
        r.discrepancies
            .iter()
            .all(|d| d.recipient.starts_with("+90532*"))
    );
    assert!(
        r.discrepancies
            .iter()
            .all(|d| matches!(d.kind, Kind::UnknownHsMovement | Kind::StateMismatch)),
        "{r:?}"
    );
    assert!(r.remaining() > 0);

    // Too old for İYS's file.
    let e = ops::reconcile::reconcile(
        ledger,
        &client,
        &[BRAND],
        w.today() - Duration::days(8),
        false,
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("H502"), "{e}");
}

// ---- import ----------------------------------------------------------------------------

const IMPORT_CSV: &str = "brand,recipient,type,status,consent_date,recipient_type,source,reference
demo,0532 123 45 01,MESAJ,ONAY,2026-03-04 09:00:00,,HS_WEB,crm-1
700000,a.b@example.com,eposta,onay,2026-03-03T10:00:00+03:00,bireysel,HS_ISLAK_IMZA,
demo,+905321234502,ARAMA,ONAY,2015-05-01 00:00:00,,HS_2015,crm-3
demo,+905321234503,MESAJ,ONAY,2025-01-10 10:00:00,,HS_ISLAK_IMZA,crm-4
nope,a.b@example.com,MESAJ,RED,2027-01-01 00:00:00,,IYS_WEB,crm-5
demo,+905321234504,MESAJ,ONAY,2026-03-04 09:00:00,,HS_KARAR,crm-1
demo,+905321234505,MESAJ,ONAY,2020-01-01 00:00:00,,HS_2015,
";

async fn import_validates_records_and_is_idempotent(s: TestStore) {
    let w = SimWorld::start(s.store.clone(), "2026-03-04 10:00:00", "").await;
    let ledger = &w.app.state.ledger;
    let brands = w.app.state.config.brands.clone();
    let opts = ImportOptions {
        label: "crm.csv".into(),
        ..ImportOptions::default()
    };
    let dry = ImportOptions {
        dry_run: true,
        ..opts.clone()
    };
    let r = ops::import::import(ledger, &brands, IMPORT_CSV.as_bytes(), &dry)
        .await
        .unwrap();
    assert_eq!(
        (r.rows, r.valid, r.invalid, r.recorded),
        (7, 4, 3, 0),
        "{r:?}"
    );
    assert!(
        w.store
            .events_for_recipient("+905321234501")
            .await
            .unwrap()
            .is_empty()
    );
    let fields = |line: u64| -> Vec<String> {
        r.errors
            .iter()
            .filter(|e| e.line == line)
            .map(|e| e.field.clone())
            .collect()
    };
    assert_eq!(
        fields(6),
        ["brand", "recipient", "status", "source", "consent_date"]
    );
    assert_eq!(
        fields(7),
        ["status", "reference"],
        "HS_KARAR needs RET; crm-1 repeats"
    );
    assert_eq!(fields(8), ["consent_date"], "HS_2015 needs 2015-05-01");
    let report = ops::import::errors_csv(&r.errors);
    assert!(
        report.starts_with("line,field,reason\n6,brand,"),
        "{report}"
    );

    let r = ops::import::import(ledger, &brands, IMPORT_CSV.as_bytes(), &opts)
        .await
        .unwrap();
    assert_eq!(
        (r.recorded, r.reportable, r.outside_window, r.duplicates),
        (4, 3, 1, 0),
        "{r:?}"
    );
    let ev = &w.store.events_for_recipient("+905321234501").await.unwrap()[0];
    assert_eq!(
        (ev.provider.as_str(), ev.provider_message_id.as_str()),
        ("import", "crm-1")
    );
    assert_eq!(ev.evidence["raw"]["import"]["line"], 2);
    let job_of = |r: &str| {
        let r = r.to_string();
        let st = w.store.clone();
        async move {
            let e = &st.events_for_recipient(&r).await.unwrap()[0];
            st.job_for_event(e.id).await.unwrap().unwrap()
        }
    };
    let old = job_of("+905321234503").await;
    assert_eq!(old.state, JobState::Failed);
    assert_eq!(old.last_error.as_deref(), Some(ops::import::OUTSIDE_WINDOW));
    let legacy = job_of("+905321234502").await;
    assert_eq!(legacy.state, JobState::Pending);
    assert!(legacy.deadline_at > w.now(), "HS_2015 is not doomed");
    // The reporter gets the reportable ones (HS_2015 included) into İYS.
    w.report().await;
    assert_eq!(job_of("+905321234502").await.state, JobState::Done);
    assert_eq!(job_of("+905321234501").await.state, JobState::Done);

    let r = ops::import::import(ledger, &brands, IMPORT_CSV.as_bytes(), &opts)
        .await
        .unwrap();
    assert_eq!(
        (r.recorded, r.duplicates),
        (0, 4),
        "re-running changes nothing"
    );
    let bad = ops::import::import(ledger, &brands, b"brand,recipient,type,status\n", &opts).await;
    assert!(bad.unwrap_err().to_string().contains("consent_date"));
}

on_both_backends!(ops_store_contract);

mod e2e {
    use super::*;
    app_on_both_backends!(
        requeue_failed_and_expired_jobs,
        export_shows_events_evidence_jobs_and_attempts,
        export_pack_from_the_binary,
        reconcile_finds_and_applies_discrepancies,
        import_validates_records_and_is_idempotent
    );
}

// ---- the real binary -------------------------------------------------------------------

#[test]
fn binary_import_export_requeue_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/ops.db", dir.path().display());
    assert!(run_cli(&db, &["migrate"]).status.success());
    let now = Utc::now().with_timezone(&Istanbul);
    let recent = (now - Duration::minutes(10)).format("%Y-%m-%d %H:%M:%S");
    let csv = format!(
        "brand,recipient,type,status,consent_date,source,reference\n\
         demo,+905321234501,MESAJ,ONAY,{recent},HS_WEB,r1\n\
         demo,+905321234502,MESAJ,ONAY,2024-01-02 10:00:00,HS_WEB,r2\n\
         demo,+905321234503,MESAJ,RED,{recent},HS_WEB,r3\n"
    );
    let file = dir.path().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    let errors = dir.path().join("errors.csv");
    let out = run_cli(
        &db,
        &[
            "import",
            file.to_str().unwrap(),
            "--errors",
            errors.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "an invalid row fails the command: {stdout}"
    );
    assert!(stdout.contains("rows 3, valid 2, invalid 1"), "{stdout}");
    assert!(stdout.contains("outside İYS window 1"), "{stdout}");
    let report = std::fs::read_to_string(&errors).unwrap();
    assert!(
        report.contains("4,status,must be ONAY or RET (İYS spells it RET)"),
        "{report}"
    );

    let out = run_cli(&db, &["export", "+905321234502", "--format", "csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains(",failed,"), "{stdout}");
    let job_id = stdout
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(12)
        .unwrap()
        .to_string();
    let out = run_cli(&db, &["export", "+905321234502"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"][0]["event"]["channel"], "import");

    let out = run_cli(&db, &["requeue", &job_id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("H467"), "{stdout}");
    let out = run_cli(
        &db,
        &["requeue", &job_id, "--force", "--note", "auditor asked"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 of 1 job(s) requeued"),
        "{stdout}"
    );
    let out = run_cli(&db, &["status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("requeued"));
    let out = run_cli(&db, &["reconcile", "2026-13-01"]);
    assert!(!out.status.success());
}

/// `serve` holds the SQLite database (its single-instance lock and the one writer); an operator
/// must still be able to look at the queue and export a person's evidence beside it, while the
/// commands that write keep refusing.
#[tokio::test]
async fn read_only_commands_work_while_serve_holds_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/ro.db", dir.path().display());
    assert!(run_cli(&db, &["migrate"]).status.success());
    let held = iys_relay::store::connect(&db, 2).await.unwrap();

    let out = run_cli(&db, &["status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("report jobs by state"));
    let out = run_cli(&db, &["export", "+905321234502"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for args in [&["audit", "--last"][..], &["user", "list"]] {
        let out = run_cli(&db, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        String::from_utf8_lossy(&run_cli(&db, &["audit", "--last"]).stdout)
            .contains("last full sweep finished never")
    );

    let out = run_cli(&db, &["requeue", "--all-failed"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds the SQLite database lock"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The read-only store refuses writes rather than racing the writer.
    let ro = iys_relay::store::connect_read_only(&db, 1).await.unwrap();
    assert!(ro.queue_summary(5).await.is_ok());
    assert!(ro.inbound_count().await.is_ok());
    let write = ro
        .quarantine(
            &iys_relay::store::QuarantineItem {
                received_at: Utc::now(),
                route: "/test".into(),
                reason: "read-only check".into(),
                content_type: None,
                ip: None,
                body: b"x".to_vec(),
            },
            1 << 20,
        )
        .await;
    assert!(write.is_err(), "a write through the read-only store fails");
    assert_eq!(held.quarantine_count().await.unwrap(), 0);
    drop(held);
    let missing = format!("sqlite://{}/none.db", dir.path().display());
    let err = iys_relay::store::connect_read_only(&missing, 1)
        .await
        .err()
        .expect("no database there");
    assert!(err.to_string().contains("no database at"), "{err}");
    assert!(!dir.path().join("none.db").exists());
}
