//! The İYS agreement audit against the real simulator over a socket, with one ManualClock shared
//! by the simulator, the reporter and the audit (pacing moves the clock; nothing sleeps).
//! Runs on SQLite and PostgreSQL.

use std::sync::Arc;

use crate::common::intent;
use crate::common::procs::run_cli;
use crate::common::sim_world::SimWorld;
use crate::common::{BRAND, PHONE, alert_kinds};
use chrono::{DateTime, Duration, Utc};
use figment::Figment;
use figment::providers::{Format, Toml};
use iys_relay::app::{self, App};
use iys_relay::config::{AuditConfig, Config, DEFAULT_TOML};
use iys_relay::domain::time::{SystemClock, from_iys};
use iys_relay::domain::{Channel, ConsentType, Source, Status};
use iys_relay::iys::IysClientConfig;
use iys_relay::iys::audit::{AuditMode, AuditReport, Auditor, Decision};
use iys_relay::iys::paced::{PacedIys, manual_sleeper, tokio_sleeper};
use iys_relay::sim::Simulator;
use iys_relay::store::queue::AlertKind;
use iys_relay::store::{JobState, Store};

/// Wednesday morning, Istanbul: well inside İYS's 3-business-day window throughout.
async fn start(store: Arc<dyn Store>) -> SimWorld {
    SimWorld::start(store, "2026-03-04 10:00:00", "").await
}

/// What `iys-relay audit` without `--repair` runs.
async fn preview(w: &SimWorld) -> AuditReport {
    let cfg = &w.app.state.config;
    let paced = PacedIys::new(
        IysClientConfig {
            base_url: w.sim_base.clone(),
            username: cfg.iys.username.clone(),
            password: cfg.iys.password.expose().to_string(),
            iys_code: cfg.iys.iys_code,
            timeout: std::time::Duration::from_secs(5),
        },
        w.store.clone(),
        Arc::new(w.clock.clone()),
        manual_sleeper(w.clock.clone()),
        9,
    )
    .expect("client");
    Auditor::new(
        paced,
        w.app.state.ledger.clone(),
        AuditConfig::default(),
        false,
    )
    .run_once(AuditMode::Full)
    .await
    .expect("preview")
}

/// (a) İYS holds ONAY while the ledger's current word is a RET it reported and İYS accepted
/// (İYS lost it): the audit re-reports the RET and after the reporter runs İYS holds RET.
async fn lost_ret_at_iys_is_rereported(store: Arc<dyn Store>) {
    let w = start(store).await;
    let onay = w
        .record("a-onay", PHONE, Status::Onay, Duration::minutes(5))
        .await;
    w.report().await;
    w.clock.advance(Duration::minutes(1));
    let ret = w
        .record("a-ret", PHONE, Status::Ret, Duration::seconds(30))
        .await;
    w.report().await;
    assert_eq!(
        (w.job_state(onay).await, w.job_state(ret).await),
        (JobState::Done, JobState::Done)
    );
    assert_eq!(w.held(PHONE), Some(Status::Ret));
    assert_eq!(w.audit(AuditMode::Full).await.divergent, 0, "in agreement");

    let onay_at = w.store.event(onay).await.unwrap().unwrap().consent_at;
    w.sim
        .overwrite_mesaj(BRAND, PHONE, Status::Onay, Source::HsMesaj, onay_at)
        .unwrap();
    w.clock.advance(Duration::minutes(1));

    // The preview decides but changes nothing.
    let p = preview(&w).await;
    assert_eq!(p.divergent, 1, "{p:?}");
    assert_eq!(p.divergences[0].decision, Decision::Rereport);
    assert!(!p.divergences[0].repaired);
    assert_eq!(w.job_state(ret).await, JobState::Done);

    let r = w.audit(AuditMode::Full).await;
    assert_eq!(r.divergent, 1, "{r:?}");
    let d = &r.divergences[0];
    assert_eq!(
        (d.ledger_status, d.iys_status, d.decision, d.repaired),
        (Status::Ret, Some(Status::Onay), Decision::Rereport, true)
    );
    assert_ne!(d.recipient, PHONE, "recipients are masked");
    assert!(!d.recipient.contains("1234567"), "{}", d.recipient);
    let job = w.store.job_for_event(ret).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert!(
        job.last_error
            .as_deref()
            .unwrap_or("")
            .contains("İYS audit re-report"),
        "{job:?}"
    );
    assert!(
        !w.current(PHONE).await.iys_confirmed,
        "İYS does not hold it"
    );

    w.report().await;
    assert_eq!(w.job_state(ret).await, JobState::Done);
    assert_eq!(w.held(PHONE), Some(Status::Ret));
    assert!(w.current(PHONE).await.iys_confirmed);
    assert_eq!(w.audit(AuditMode::Full).await.divergent, 0);
    let alerts = w.store.alerts(10).await.unwrap();
    assert!(
        alerts.iter().all(|a| a.kind != AlertKind::AuditDivergence),
        "{alerts:?}"
    );

    // Lost again: a second re-report would change nothing, so an operator is alerted instead.
    w.sim
        .overwrite_mesaj(BRAND, PHONE, Status::Onay, Source::HsMesaj, onay_at)
        .unwrap();
    let r = w.audit(AuditMode::Full).await;
    assert_eq!(r.divergent, 1, "{r:?}");
    assert_eq!(r.divergences[0].decision, Decision::Alert);
    assert_eq!(w.job_state(ret).await, JobState::Done, "not re-opened");
    let alerts = w.store.alerts_for_job(job.id).await.unwrap();
    let a = alerts
        .iter()
        .find(|a| a.kind == AlertKind::AuditDivergence)
        .expect("divergence alert");
    assert_eq!(a.severity, "error");
    assert!(!a.detail.contains(PHONE), "{}", a.detail);
    assert!(a.detail.contains("re-reported"), "{}", a.detail);
}

/// (b) İYS holds a newer citizen RET (IYS_*) the ledger has not pulled yet: the audit records
/// it, the ledger's current word becomes RET, and no report job is created for it.
async fn newer_citizen_ret_is_recorded_without_a_job(store: Arc<dyn Store>) {
    let w = start(store).await;
    let onay = w
        .record("b-onay", PHONE, Status::Onay, Duration::minutes(5))
        .await;
    w.report().await;
    assert_eq!(w.job_state(onay).await, JobState::Done);
    w.clock.advance(Duration::minutes(10));
    w.sim
        .citizen_mesaj(BRAND, PHONE, Status::Ret, Source::IysMobil)
        .unwrap();
    w.clock.advance(Duration::minutes(1));

    let r = w.audit(AuditMode::Full).await;
    assert_eq!(r.divergent, 1, "{r:?}");
    let d = &r.divergences[0];
    assert_eq!(
        (d.ledger_status, d.iys_status, d.decision, d.repaired),
        (
            Status::Onay,
            Some(Status::Ret),
            Decision::RecordFromIys,
            true
        )
    );
    assert_eq!(r.remaining(), 0);
    let metrics = iys_relay::metrics::install().expect("recorder").render();
    assert!(
        metrics.contains("iys_relay_audit_repairs_total{kind=\"recorded_from_iys\"}"),
        "{metrics}"
    );
    let s = w.current(PHONE).await;
    assert_eq!(
        (s.status, s.source, s.channel, s.iys_confirmed),
        (Status::Ret, Source::IysMobil, Channel::Iys, true)
    );
    assert!(w.store.job_for_event(s.event_id).await.unwrap().is_none());
    let q = w.store.queue_summary(5).await.unwrap();
    assert_eq!(
        q.by_state,
        vec![("done".to_string(), 1)],
        "no job was created"
    );
    assert_eq!(w.audit(AuditMode::Full).await.divergent, 0);

    // The pull loop later meets the same movement: recorded once (same dedupe key).
    w.clock.advance(Duration::hours(2));
    let pulled = w.app.sync.as_deref().unwrap().run_once().await.unwrap();
    assert_eq!((pulled.recorded, pulled.duplicates), (0, 1), "{pulled:?}");
}

/// (c) Auditing N addresses costs ceil(N/1000) multi-status requests per group plus one status
/// query per divergence; addresses with open jobs are skipped.
async fn a_sweep_costs_one_request_per_thousand_per_group(store: Arc<dyn Store>) {
    let w = start(store).await;
    let ledger = w.app.state.ledger.clone();
    let now = w.now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..1003 {
        let l = ledger.clone();
        tasks.spawn(async move {
            let mut i = intent(
                &format!("C{n}"),
                &format!("+90532{n:07}"),
                Status::Onay,
                now - Duration::minutes(1),
            );
            // 1001 MESAJ and 2 ARAMA addresses: two groups.
            if n >= 1001 {
                i.consent_type = ConsentType::Arama;
                i.source = Source::HsCagriMerkezi;
            }
            l.record(i).await.expect("record")
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    w.report().await;
    w.clock.advance(Duration::seconds(301));
    w.report().await;
    let q = w.store.queue_summary(5).await.unwrap();
    assert_eq!(q.by_state, vec![("done".to_string(), 1003)], "{q:?}");

    // Two MESAJ ONAYs İYS lost, and one address the reporter still has to send.
    for n in [7, 500] {
        let r = format!("+90532{n:07}");
        w.sim
            .overwrite_mesaj(
                BRAND,
                &r,
                Status::Ret,
                Source::HsMesaj,
                now - Duration::hours(1),
            )
            .unwrap();
    }
    w.record(
        "C-open",
        "+905339999999",
        Status::Onay,
        Duration::seconds(5),
    )
    .await;
    w.sim.clear_request_log();

    let r = w.audit(AuditMode::Full).await;
    assert_eq!(
        (r.checked, r.skipped_open, r.divergent),
        (1003, 1, 2),
        "{r:?}"
    );
    assert!(
        r.divergences
            .iter()
            .all(|d| d.decision == Decision::Rereport && d.repaired),
        "{r:?}"
    );
    assert_eq!(w.calls("POST", "/status/MESAJ"), 2, "ceil(1001 / 1000)");
    assert_eq!(w.calls("POST", "/status/ARAMA"), 1);
    assert_eq!(w.calls("POST", "/consents/status"), 2, "one per divergence");
    assert_eq!((r.multi_status_requests, r.status_queries), (3, 2));

    let progress = w.store.audit_progress().await.unwrap();
    assert_eq!(progress.sweep_finished_at, Some(w.now()));
    assert_eq!(progress.sweep_divergent, 2, "re-reported, not yet at İYS");
}

/// A job that ends other than `done` has its address checked once the delay has passed, and
/// only once.
async fn ended_job_gets_a_targeted_check(store: Arc<dyn Store>) {
    let w = start(store).await;
    // A first-ever RET: İYS has nothing to revoke.
    let ret = w
        .record("d-ret", PHONE, Status::Ret, Duration::seconds(30))
        .await;
    w.report().await;
    assert_eq!(w.job_state(ret).await, JobState::NothingToRevoke);
    // İYS did hold an earlier ONAY after all (it had not shown it).
    w.sim
        .overwrite_mesaj(
            BRAND,
            PHONE,
            Status::Onay,
            Source::HsWeb,
            w.now() - Duration::hours(2),
        )
        .unwrap();
    w.sim.clear_request_log();
    let early = w.audit(AuditMode::Targeted).await;
    assert_eq!(early.checked, 0, "not before targeted_delay_seconds");
    assert_eq!(w.sim.request_log().len(), 0);

    w.clock.advance(Duration::seconds(61));
    let r = w.audit(AuditMode::Targeted).await;
    assert_eq!((r.checked, r.divergent), (1, 1), "{r:?}");
    assert_eq!(r.divergences[0].decision, Decision::Rereport);
    assert_eq!(w.job_state(ret).await, JobState::Pending);
    w.report().await;
    assert_eq!(w.job_state(ret).await, JobState::Done);
    assert_eq!(w.held(PHONE), Some(Status::Ret));

    w.clock.advance(Duration::seconds(61));
    let again = w.audit(AuditMode::Targeted).await;
    assert_eq!(again.checked, 0, "the cursor moved past it: {again:?}");
}

/// A job İYS refused permanently is not resent by the audit (it would be refused again): an
/// operator is alerted.
async fn failed_job_is_alerted_not_resent(store: Arc<dyn Store>) {
    let w = start(store).await;
    let onay = w
        .record("f-onay", PHONE, Status::Onay, Duration::seconds(30))
        .await;
    w.sim.fail_next(1, 422, "H121");
    w.report().await;
    assert_eq!(w.job_state(onay).await, JobState::Failed);
    w.clock.advance(Duration::seconds(61));
    let r = w.audit(AuditMode::Targeted).await;
    assert_eq!((r.checked, r.divergent), (1, 1), "{r:?}");
    let d = &r.divergences[0];
    assert_eq!((d.iys_status, d.decision), (None, Decision::Alert), "{d:?}");
    assert_eq!(w.job_state(onay).await, JobState::Failed, "not resent");
    let job = w.store.job_for_event(onay).await.unwrap().unwrap();
    let kinds = alert_kinds(w.store.as_ref(), job.id).await;
    assert!(kinds.contains(&AlertKind::AuditDivergence), "{kinds:?}");
}

/// The sweep schedule lives in the store, so replicas and restarts agree on it.
async fn full_sweep_claims_are_shared(store: Arc<dyn Store>) {
    let t = from_iys("2026-03-04 10:00:00").unwrap();
    let claim = |now: DateTime<Utc>| {
        let store = store.clone();
        async move {
            store
                .claim_full_sweep(now - Duration::hours(24), now - Duration::hours(1), now)
                .await
                .unwrap()
        }
    };
    assert!(claim(t).await, "never swept");
    assert!(!claim(t).await, "another replica holds it");
    store
        .full_sweep_finished(t + Duration::minutes(1), 0)
        .await
        .unwrap();
    assert!(!claim(t + Duration::hours(2)).await, "swept recently");
    assert!(claim(t + Duration::hours(25)).await, "due again");
    // A claimed sweep that never finished is taken over after its lease.
    assert!(!claim(t + Duration::hours(25) + Duration::minutes(30)).await);
    assert!(claim(t + Duration::hours(26) + Duration::minutes(1)).await);
    let p = store.audit_progress().await.unwrap();
    assert_eq!(p.sweep_finished_at, Some(t + Duration::minutes(1)));
}

/// `iys-relay audit` previews (non-zero exit while divergent), `--repair` repairs. On
/// PostgreSQL, because the binary and this test share the database (SQLite is single-instance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_audit_previews_then_repairs_on_postgres() {
    let Some(ts) = crate::common::postgres().await else {
        return;
    };
    let config = Config::from_figment(Figment::from(Toml::string(DEFAULT_TOML))).expect("config");
    let clock = Arc::new(SystemClock);
    let sim = Simulator::new(app::sim_config(&config), clock.clone());
    let mut app = App::with_store(config, clock, ts.store.clone()).expect("app");
    let base = app.start_simulator(sim.clone()).await.expect("simulator");
    app.attach_iys(&base, tokio_sleeper()).expect("attach");
    let now = Utc::now();
    let e = app
        .state
        .ledger
        .record(intent(
            "cli-onay",
            PHONE,
            Status::Onay,
            now - Duration::minutes(1),
        ))
        .await
        .expect("record")
        .event_id;
    app.reporter.as_deref().unwrap().run_once().await.unwrap();
    let job = ts.store.job_for_event(e).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Done);
    sim.overwrite_mesaj(
        BRAND,
        PHONE,
        Status::Ret,
        Source::HsMesaj,
        now - Duration::hours(1),
    )
    .unwrap();

    let (url, b) = (ts.url.clone(), base.clone());
    let out = tokio::task::spawn_blocking(move || run_cli(&url, &["audit", "--iys-url", &b]))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "divergent: {stdout}");
    assert!(stdout.contains("yeniden bildirilir"), "{stdout}");
    assert!(stdout.contains("1 ayrışma"), "{stdout}");
    assert!(!stdout.contains(PHONE), "masked: {stdout}");
    let job = ts.store.job_for_event(e).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Done, "a preview changes nothing");

    let (url, b) = (ts.url.clone(), base.clone());
    let out =
        tokio::task::spawn_blocking(move || run_cli(&url, &["audit", "--repair", "--iys-url", &b]))
            .await
            .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let job = ts.store.job_for_event(e).await.unwrap().unwrap();
    assert_eq!(
        job.state,
        JobState::Pending,
        "re-reported through the queue"
    );
}

on_both_backends!(
    lost_ret_at_iys_is_rereported,
    newer_citizen_ret_is_recorded_without_a_job,
    a_sweep_costs_one_request_per_thousand_per_group,
    ended_job_gets_a_targeted_check,
    failed_job_is_alerted_not_resent,
    full_sweep_claims_are_shared,
);
