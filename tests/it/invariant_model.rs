//! Model-based test of the reporter's invariant, on SQLite and PostgreSQL.
//!
//! **Invariant.** For every İYS address (brand, recipient, recipientType, type): once the reporter
//! is idle (no open report job, no submitted batch, every İYS batch processed and the pull loop
//! caught up), İYS holds the status of the ledger's current movement for that address (the
//! store's `consent_state`), or holds no record at all where the current movement is a RET (a
//! first-ever RET has nothing to revoke; İYS never held an ONAY then, since records are never
//! deleted).
//!
//! Each proptest case is a random history for 3–20 people × 1–2 brands × MESAJ/ARAMA/EPOSTA:
//! movements recorded through `Ledger::record` (SMS keyword, IVR, web link, call-centre agent
//! with seconds and without: minute-truncated consent times) with gaps of 0 ms, a few ms, within
//! a second, seconds and minutes; bursts that make the reporter use async batches; reporter
//! rounds (`Reporter::run_once`); İYS outages (5xx, 503 with Retry-After, an HTML 502 from a
//! gateway) through the fault-injecting front of `tests/it/common/faulty_iys.rs`; the reporter
//! killed right after İYS answered the n-th request of a round (the answer is never stored: a
//! batch submitted but not recorded, a single add İYS accepted, a poll) and replaced by a new
//! one (new lease owner) on the same store; citizens changing their consent in İYS
//! (`Simulator::inject_citizen_action`) and the pull loop (`IysSync::run_once`). Then the world
//! quiesces (faults off, the clock moved 5 min per round past poll delays, leases, back-off and
//! the 1 h pull lag, reporter + pull rounds until nothing is open; bounded) and the invariant is
//! checked against the simulator's in-process state (`Simulator::record`), not through the
//! relay's client. A failure prints, per broken address, the ledger's movements with their job
//! outcomes and İYS's movement log, and the whole executed timeline; proptest then shrinks it.
//!
//! Everything runs on one ManualClock; pacing moves it (`manual_sleeper`), nothing sleeps.
//!
//! ```sh
//! export IYS_RELAY_TEST_PG_URL=postgres://postgres@127.0.0.1:55432/postgres   # or $(bash .ci/postgres.sh)
//! cargo test --test it invariant_model::                        # 24 cases per backend (debug: < 60 s each)
//! cargo test --test it invariant_model::sqlite                 # the SQLite half only
//! # Campaign (benchmark-style: many cases, release build, progress on stdout):
//! IYS_RELAY_MODEL_CASES=2000 cargo test --release --test it invariant_model:: -- --nocapture
//! # Replay one run: the failure message prints its seed.
//! PROPTEST_RNG_SEED=<seed> cargo test --test it invariant_model::sqlite
//! ```
//! `IYS_RELAY_MODEL_CASES` sets the number of cases (default 24), `IYS_RELAY_MODEL_SHRINK` the
//! shrink budget (default 48 iterations; every iteration is a full case), `IYS_RELAY_MODEL_OPS`
//! the longest history (default 40 operations); `IYS_RELAY_MODEL_TIMING=1` prints each case's
//! store set-up / run / tear-down times on stderr.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Instant;

use crate::common::faulty_iys::{FAST_REPORTER_TOML, Fault, IysWorld};
use chrono::{DateTime, Duration, DurationRound, Utc};
use iys_relay::domain::Address;
use iys_relay::domain::time::to_iys;
use iys_relay::domain::{
    Channel, ConsentIntent, ConsentType, Evidence, Recipient, RecipientType, Source, Status,
};
use iys_relay::store::JobState;
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, RngSeed, TestCaseError, TestRunner};

const BRANDS: [i64; 2] = [700000, 700001];
const START: &str = "2026-03-04 10:00:00"; // a Wednesday: deadlines are days away

// ---------------------------------------------------------------------------------------------
// The model: operations of a history.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Addr {
    person: u8,
    brand: u8,
    ctype: ConsentType,
}

impl Addr {
    fn brand_code(self) -> i64 {
        BRANDS[usize::from(self.brand)]
    }
    fn recipient(self) -> String {
        match self.ctype {
            ConsentType::Eposta => format!("kisi{}@example.com", self.person),
            _ => format!("+90532{:07}", self.person),
        }
    }
    fn key(self) -> Address {
        Address {
            brand_code: self.brand_code(),
            recipient: self.recipient(),
            recipient_type: RecipientType::Bireysel,
            consent_type: self.ctype,
        }
    }
}

impl fmt::Debug for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.brand_code(),
            self.recipient(),
            self.ctype
        )
    }
}

/// How a movement reached us; decides source, channel and the consent time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// SMS keyword (RET/EVET): consented when received.
    SmsKeyword,
    /// Voice menu: consented at the key press, a second before the call's webhook.
    Ivr,
    /// Web link click: consented when received.
    WebLink,
    /// Call-centre agent, a time with seconds a few seconds before the API call.
    Agent,
    /// Call-centre agent / CRM that keeps minutes only (11:09:00).
    AgentNoSeconds,
}

impl Via {
    fn source_channel(self) -> (Source, Channel) {
        match self {
            Via::SmsKeyword => (Source::HsMesaj, Channel::Sms),
            Via::Ivr => (Source::HsCagriMerkezi, Channel::Voice),
            Via::WebLink => (Source::HsWeb, Channel::Web),
            Via::Agent | Via::AgentNoSeconds => (Source::HsCagriMerkezi, Channel::Agent),
        }
    }
    fn consent_at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Via::SmsKeyword | Via::WebLink => now,
            Via::Ivr => now - Duration::seconds(1),
            Via::Agent => now - Duration::seconds(4),
            Via::AgentNoSeconds => now.duration_trunc(Duration::minutes(1)).expect("trunc"),
        }
    }
}

/// Clock movement before an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gap {
    Ms(u32),
    Secs(u32),
    Mins(u32),
}

impl Gap {
    fn duration(self) -> Duration {
        match self {
            Gap::Ms(n) => Duration::milliseconds(n.into()),
            Gap::Secs(n) => Duration::seconds(n.into()),
            Gap::Mins(n) => Duration::minutes(n.into()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutageKind {
    /// 503 H192.
    Unavailable,
    /// 500 H015.
    ServerError,
    /// 503 H192 with `Retry-After: 12`.
    RetryAfter12,
    /// An HTML 502 from a gateway in front of İYS (no İYS code).
    GatewayHtml502,
}

impl OutageKind {
    fn fault(self) -> Fault {
        match self {
            OutageKind::Unavailable => Fault::unavailable(),
            OutageKind::ServerError => Fault::server_error(),
            OutageKind::RetryAfter12 => Fault::retry_after(12),
            OutageKind::GatewayHtml502 => Fault::Html { status: 502 },
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Move the clock by `gap`, then record one movement.
    Record {
        gap: Gap,
        addr: Addr,
        status: Status,
        via: Via,
    },
    /// `count` movements for consecutive people of one brand and type at the same instant
    /// (a campaign reply wave): long enough for an async batch. Bit i of `statuses` = RET.
    Burst {
        brand: u8,
        ctype: ConsentType,
        from: u8,
        count: u8,
        statuses: u32,
        via: Via,
    },
    Wait(Gap),
    /// One `Reporter::run_once`.
    Round,
    /// A reporter round killed right after İYS answered its `after`-th request; a new
    /// reporter (new owner) takes over the store.
    Kill {
        after: u8,
    },
    /// İYS goes down (every call, token included, gets the fault) …
    OutageStart(OutageKind),
    /// … and comes back.
    OutageEnd,
    /// A citizen changes the consent in İYS itself (e-Devlet, 3338 SMS, app, İYS call centre).
    Citizen {
        addr: Addr,
        status: Status,
        source: Source,
    },
    /// One `IysSync::run_once` (pulls what is older than İYS's 1 h lag).
    Pull,
}

#[derive(Clone)]
struct History {
    people: u8,
    brands: u8,
    ops: Vec<Op>,
}

/// One operation per line (proptest prints the minimal failing input with this).
impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "History: {} people x {} brand(s), {} ops",
            self.people,
            self.brands,
            self.ops.len()
        )?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:>3}: {op:?}")?;
        }
        Ok(())
    }
}

fn env_u32(name: &str) -> Option<u32> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn gap() -> impl Strategy<Value = Gap> {
    prop_oneof![
        2 => Just(Gap::Ms(0)),
        2 => (1u32..20).prop_map(Gap::Ms),
        2 => (100u32..999).prop_map(Gap::Ms),
        3 => (1u32..59).prop_map(Gap::Secs),
        2 => (1u32..30).prop_map(Gap::Mins),
    ]
}

fn via() -> impl Strategy<Value = Via> {
    prop_oneof![
        Just(Via::SmsKeyword),
        Just(Via::Ivr),
        Just(Via::WebLink),
        Just(Via::Agent),
        Just(Via::AgentNoSeconds),
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![Just(Status::Onay), Just(Status::Ret)]
}

fn ctype() -> impl Strategy<Value = ConsentType> {
    prop_oneof![
        Just(ConsentType::Mesaj),
        Just(ConsentType::Arama),
        Just(ConsentType::Eposta),
    ]
}

fn history() -> impl Strategy<Value = History> {
    let max_ops = env_u32("IYS_RELAY_MODEL_OPS").unwrap_or(40).max(2) as usize;
    (3u8..=20, 1u8..=2).prop_flat_map(move |(people, brands)| {
        let addr = (0..people, 0..brands, ctype())
            .prop_map(|(person, brand, ctype)| Addr {
                person,
                brand,
                ctype,
            })
            .boxed();
        let op = prop_oneof![
            10 => (gap(), addr.clone(), status(), via())
                .prop_map(|(gap, addr, status, via)| Op::Record { gap, addr, status, via }),
            2 => (0..brands, ctype(), 0..people, 4u8..=12, any::<u32>(), via()).prop_map(
                |(brand, ctype, from, count, statuses, via)| Op::Burst {
                    brand, ctype, from, count, statuses, via,
                }
            ),
            4 => gap().prop_map(Op::Wait),
            6 => Just(Op::Round),
            2 => (1u8..=4).prop_map(|after| Op::Kill { after }),
            1 => prop_oneof![
                Just(OutageKind::Unavailable),
                Just(OutageKind::ServerError),
                Just(OutageKind::RetryAfter12),
                Just(OutageKind::GatewayHtml502),
            ]
            .prop_map(Op::OutageStart),
            1 => Just(Op::OutageEnd),
            2 => (
                addr,
                status(),
                prop_oneof![
                    Just(Source::IysKisamesaj),
                    Just(Source::IysWeb),
                    Just(Source::IysMobil),
                    Just(Source::IysCm),
                ]
            )
                .prop_map(|(addr, status, source)| Op::Citizen { addr, status, source }),
            1 => Just(Op::Pull),
        ];
        proptest::collection::vec(op, 1..=max_ops).prop_map(move |ops| History {
            people,
            brands,
            ops,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Running a history.

struct Run {
    w: IysWorld,
    start: DateTime<Utc>,
    timeline: Vec<String>,
    msg: u64,
    touched: BTreeSet<Addr>,
}

impl Run {
    fn t(&self) -> String {
        let d = self.w.now() - self.start;
        let ms = d.num_milliseconds();
        format!(
            "+{:02}:{:02}:{:02}.{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    }

    fn note(&mut self, line: String) {
        let t = self.t();
        self.timeline.push(format!("{t}  {line}"));
    }

    async fn record(&mut self, addr: Addr, status: Status, via: Via) -> Result<(), String> {
        let now = self.w.now();
        let (source, channel) = via.source_channel();
        let consent_at = via.consent_at(now);
        self.msg += 1;
        let id = format!("model-{}", self.msg);
        let intent = ConsentIntent {
            brand_code: addr.brand_code(),
            recipient: Recipient::parse(&addr.recipient()).map_err(|e| e.to_string())?,
            recipient_type: RecipientType::Bireysel,
            consent_type: addr.ctype,
            status,
            source,
            channel,
            consent_at,
            provider: "model".into(),
            provider_message_id: id.clone(),
            evidence: Evidence {
                raw: serde_json::json!({"model": id}),
                ..Evidence::default()
            },
        };
        let out = self
            .w
            .app
            .state
            .ledger
            .record(intent)
            .await
            .map_err(|e| format!("harness: ledger.record failed: {e}"))?;
        self.touched.insert(addr);
        self.note(format!(
            "record {status:<4} {addr:?} via {via:?}, consent {} (event {})",
            hms_ms(consent_at),
            out.event_id
        ));
        Ok(())
    }

    async fn apply(&mut self, op: &Op, h: &History) -> Result<(), String> {
        match op {
            Op::Record {
                gap,
                addr,
                status,
                via,
            } => {
                self.w.clock.advance(gap.duration());
                self.record(*addr, *status, *via).await?;
            }
            Op::Burst {
                brand,
                ctype,
                from,
                count,
                statuses,
                via,
            } => {
                let n = (*count).min(h.people);
                for i in 0..n {
                    let addr = Addr {
                        person: (from + i) % h.people,
                        brand: *brand,
                        ctype: *ctype,
                    };
                    let status = if (statuses >> i) & 1 == 1 {
                        Status::Ret
                    } else {
                        Status::Onay
                    };
                    self.record(addr, status, *via).await?;
                }
            }
            Op::Wait(gap) => {
                self.w.clock.advance(gap.duration());
                self.note(format!("wait {gap:?}"));
            }
            Op::Round => {
                let r = self
                    .w
                    .reporter()
                    .run_once()
                    .await
                    .map_err(|e| format!("harness: reporter round failed: {e}"))?;
                self.note(format!("reporter round: {}", brief(&r)));
            }
            Op::Kill { after } => {
                let before = self.w.front.requests();
                let killed = self.w.round_killed_after(usize::from(*after)).await;
                let made = self.w.front.requests() - before;
                let last = self.w.front.log().last().cloned();
                if killed {
                    let last = last
                        .map(|s| format!("{} {} -> {}", s.method, s.path, s.status))
                        .unwrap_or_default();
                    self.note(format!(
                        "reporter KILLED after İYS answered request {after} of the round ({last}); reporter #{} takes over",
                        self.w.generation
                    ));
                } else {
                    self.note(format!(
                        "reporter round (kill armed after {after} requests, only {made} made): completed"
                    ));
                }
            }
            Op::OutageStart(kind) => {
                self.w.front.set_fault(Some(kind.fault()));
                self.note(format!("İYS outage starts: {kind:?}"));
            }
            Op::OutageEnd => {
                if self.w.front.fault().is_some() {
                    self.w.front.set_fault(None);
                    self.note("İYS outage ends".into());
                }
            }
            Op::Citizen {
                addr,
                status,
                source,
            } => {
                // Two citizen movements of one address in one second would share İYS's
                // transactionId (a documented İYS quirk the ledger dedupes on).
                self.w.clock.advance(Duration::seconds(1));
                let m = self
                    .w
                    .sim
                    .inject_citizen_action(
                        addr.brand_code(),
                        &addr.recipient(),
                        RecipientType::Bireysel,
                        addr.ctype,
                        *status,
                        *source,
                        None,
                    )
                    .map_err(|e| format!("harness: citizen action refused: {e}"))?;
                self.touched.insert(*addr);
                self.note(format!(
                    "citizen in İYS: {status:<4} {addr:?} via {source}, consentDate {}",
                    m.consent_date.map(hms_ms).unwrap_or_default()
                ));
            }
            Op::Pull => {
                let r = self
                    .w
                    .sync()
                    .run_once()
                    .await
                    .map_err(|e| format!("harness: pull failed: {e}"))?;
                self.note(format!(
                    "pull: {} recorded, {} duplicates, {} failed brands",
                    r.recorded, r.duplicates, r.failed_brands
                ));
            }
        }
        Ok(())
    }

    /// Faults off, then reporter and pull rounds 5 min apart until nothing is open, every İYS
    /// batch is processed and the pull has passed İYS's 1 h lag with nothing new. Bounded.
    async fn quiesce(&mut self) -> Result<(), String> {
        self.w.front.set_fault(None);
        self.note("quiesce: İYS up; reporter + pull every 5 min".into());
        let (mut open, mut batches) = (0, 0);
        let mut jumped = false;
        for i in 0..150 {
            self.w.clock.advance(Duration::minutes(5));
            let r = self
                .w
                .reporter()
                .run_once()
                .await
                .map_err(|e| format!("harness: reporter round failed: {e}"))?;
            if r != Default::default() {
                self.note(format!("quiesce round {i}: {}", brief(&r)));
            }
            let s = self
                .w
                .sync()
                .run_once()
                .await
                .map_err(|e| format!("harness: pull failed: {e}"))?;
            if s.recorded > 0 {
                self.note(format!("quiesce pull {i}: {} recorded", s.recorded));
            }
            open = self.w.open_jobs().await;
            if open > 0 {
                continue;
            }
            batches = self.w.submitted_batches().await;
            if batches > 0 {
                continue;
            }
            if !jumped {
                // Past İYS's 1 h pull lag (and every İYS batch's processing delay), then one
                // more reporter round and pull.
                self.w.clock.advance(Duration::minutes(65));
                jumped = true;
                continue;
            }
            if s.recorded == 0 && r == Default::default() {
                self.note(format!("idle after {} quiesce rounds", i + 1));
                return Ok(());
            }
        }
        Err(format!(
            "LIVENESS: the reporter did not become idle within 150 rounds (12.5 h): {open} open jobs, {batches} submitted batches"
        ))
    }

    /// The invariant, per touched address, against the simulator's own state.
    async fn check(&self) -> Result<(), String> {
        let mut broken = Vec::new();
        for &addr in &self.touched {
            let key = addr.key();
            let ledger = self
                .w
                .store
                .consent_state(&key)
                .await
                .map_err(|e| format!("harness: consent_state: {e}"))?;
            let iys = self.w.sim.record(
                key.brand_code,
                &key.recipient,
                RecipientType::Bireysel,
                addr.ctype,
            );
            let ok = match (&ledger, &iys) {
                (None, None) => true,
                (None, Some(_)) => false,
                (Some(l), Some(r)) => l.status == r.status,
                (Some(l), None) => l.status == Status::Ret,
            };
            if !ok {
                let want = ledger
                    .as_ref()
                    .map(|l| format!("{} (event {})", l.status, l.event_id))
                    .unwrap_or_else(|| "nothing".into());
                let got = iys
                    .as_ref()
                    .map(|r| {
                        format!(
                            "{} consentDate {}",
                            r.status,
                            r.consent_date.map(hms_ms).unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "no record".into());
                broken.push(format!(
                    "{addr:?}: ledger's current movement is {want}, İYS holds {got}\n{}",
                    self.explain(addr).await?
                ));
            }
        }
        if broken.is_empty() {
            return Ok(());
        }
        Err(format!(
            "INVARIANT broken for {} of {} addresses once the reporter was idle:\n\n{}\n\nexecuted timeline (reporter generations: {}):\n{}",
            broken.len(),
            self.touched.len(),
            broken.join("\n"),
            self.w.generation,
            self.timeline.join("\n")
        ))
    }

    /// The ledger's movements of one address with their jobs, and İYS's movement log for it.
    async fn explain(&self, addr: Addr) -> Result<String, String> {
        let key = addr.key();
        let mut out = String::new();
        let events = self
            .w
            .store
            .events_for_recipient(&key.recipient)
            .await
            .map_err(|e| format!("harness: events: {e}"))?;
        let mut hints = BTreeSet::new();
        for e in events
            .iter()
            .filter(|e| e.brand_code == key.brand_code && e.consent_type == key.consent_type)
        {
            let job = self
                .w
                .store
                .job_for_event(e.id)
                .await
                .map_err(|x| format!("harness: job: {x}"))?;
            let job_txt = match &job {
                Some(j) => {
                    if j.state == JobState::NothingToRevoke && e.status == Status::Ret {
                        hints.insert("a RET ended nothing_to_revoke although İYS holds (or was about to hold) an ONAY");
                    }
                    if j.state == JobState::Superseded
                        && j.last_error.as_deref().unwrap_or("").contains("H178")
                    {
                        hints.insert("İYS refused a movement with H178 (consentDate not strictly later: same second / minute-truncated time?) and the job was closed as superseded");
                    }
                    if j.state == JobState::Failed {
                        hints.insert("a job ended failed");
                    }
                    format!(
                        "job {} {} attempts {}{}",
                        j.id,
                        j.state.as_str(),
                        j.attempts,
                        j.last_error
                            .as_deref()
                            .map(|x| format!(", last error: {x}"))
                            .unwrap_or_default()
                    )
                }
                None => "no job (İYS's own movement)".into(),
            };
            out += &format!(
                "    ledger event {:>3}: {:<4} consent {} received {} {} — {job_txt}\n",
                e.id,
                e.status,
                hms_ms(e.consent_at),
                hms_ms(e.received_at),
                e.source
            );
        }
        for m in self.w.sim.movements(key.brand_code).iter().filter(|m| {
            m.recipient == key.recipient.to_lowercase() && m.consent_type == key.consent_type
        }) {
            out += &format!(
                "    İYS movement: {:<4} consentDate {} created {} {}\n",
                m.status,
                m.consent_date.map(hms_ms).unwrap_or_default(),
                hms_ms(m.creation_date),
                m.source.map(|s| s.as_str()).unwrap_or("-")
            );
        }
        for h in hints {
            out += &format!("    hint: {h}\n");
        }
        Ok(out)
    }
}

fn hms_ms(t: DateTime<Utc>) -> String {
    format!("{}.{:03}", &to_iys(t)[11..], t.timestamp_subsec_millis())
}

fn brief(r: &iys_relay::iys::reporter::Report) -> String {
    let mut parts = Vec::new();
    let fields = [
        ("claimed", r.claimed),
        ("superseded", r.superseded),
        ("status_checks", r.status_checks),
        ("singles", r.singles_sent),
        ("batches", r.batches_submitted),
        ("polled", r.batches_polled),
        ("done", r.done),
        ("nothing_to_revoke", r.nothing_to_revoke),
        ("failed", r.failed),
        ("expired", r.expired),
        ("retried", r.retried),
    ];
    for (name, n) in fields {
        if n > 0 {
            parts.push(format!("{name} {n}"));
        }
    }
    if parts.is_empty() {
        "nothing to do".into()
    } else {
        parts.join(", ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn new_store(backend: Backend) -> crate::common::TestStore {
    match backend {
        Backend::Sqlite => crate::common::sqlite().await,
        Backend::Postgres => pg_from_template().await,
    }
}

async fn run_case(ts: crate::common::TestStore, h: &History) -> Result<(), String> {
    let toml = format!(
        "{}{}",
        FAST_REPORTER_TOML,
        if h.brands > 1 {
            crate::common::TWO_BRANDS_TOML
        } else {
            ""
        }
    );
    let w = IysWorld::start(ts, START, &toml).await;
    let start = w.now();
    let mut run = Run {
        w,
        start,
        timeline: Vec::new(),
        msg: 0,
        touched: BTreeSet::new(),
    };
    for op in &h.ops {
        run.apply(op, h).await?;
    }
    if let Err(e) = run.quiesce().await {
        return Err(format!(
            "{e}\n\nexecuted timeline:\n{}",
            run.timeline.join("\n")
        ));
    }
    run.check().await
}

/// Name of a migrated, empty database that cases copy (`CREATE DATABASE … TEMPLATE`), which is
/// much faster than migrating a fresh database for every case (and every shrink step). Made
/// once per process, on a runtime of its own that is gone (connections closed) before any copy.
fn pg_template(admin: &str) -> String {
    static TEMPLATE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let mut t = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(name) = &*t {
        return name.clone();
    }
    let admin = admin.to_string();
    let name = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let url = crate::common::fresh_pg_database(&admin).await;
            let s = iys_relay::store::connect(&url, 1).await.expect("pg store");
            s.migrate().await.expect("migrate template");
            url::Url::parse(&url)
                .expect("url")
                .path()
                .trim_start_matches('/')
                .to_string()
        })
    })
    .join()
    .expect("template thread");
    *t = Some(name.clone());
    name
}

async fn pg_from_template() -> crate::common::TestStore {
    let admin = crate::common::pg_admin_url().expect("PostgreSQL");
    sqlx::any::install_default_drivers();
    let template = pg_template(&admin);
    let name = format!("m_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::AnyPool::connect(&admin).await.expect("connect admin");
    // The template's last pool may still be closing its connections.
    let mut tries = 0;
    loop {
        match sqlx::query(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&pool)
            .await
        {
            Ok(_) => break,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create database from template: {e}"),
        }
    }
    // Durability across a crash of the test cluster is not what is tested here.
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET synchronous_commit TO off"
    ))
    .execute(&pool)
    .await
    .expect("alter database");
    pool.close().await;
    let mut u = url::Url::parse(&admin).expect("pg url");
    u.set_path(&name);
    let url = u.to_string();
    let store = iys_relay::store::connect(&url, 8).await.expect("pg store");
    store
        .migrate()
        .await
        .expect("migrate (no-op on the template copy)");
    crate::common::TestStore::from_parts(store, url)
}

/// A campaign makes thousands of databases: each goes when its case ends.
async fn drop_pg(url: &str) {
    let admin = crate::common::pg_admin_url().expect("PostgreSQL");
    let name = url::Url::parse(url)
        .expect("url")
        .path()
        .trim_start_matches('/')
        .to_string();
    let pool = sqlx::AnyPool::connect(&admin).await.expect("connect admin");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&pool)
        .await
        .expect("drop database");
    pool.close().await;
}

fn campaign(backend: Backend) {
    if backend == Backend::Postgres && crate::common::pg_admin_url().is_none() {
        return;
    }
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(rand_seed);
    let mut cfg = PtConfig {
        cases: env_u32("IYS_RELAY_MODEL_CASES").unwrap_or(24),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..PtConfig::default()
    };
    cfg.max_shrink_iters = env_u32("IYS_RELAY_MODEL_SHRINK").unwrap_or(48);
    let cases = cfg.cases;
    let mut runner = TestRunner::new(cfg);
    let started = Instant::now();
    let done = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&history(), |h| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let t0 = Instant::now();
        let ts = rt.block_on(new_store(backend));
        let url = ts.url.clone();
        let t1 = Instant::now();
        let r = rt.block_on(run_case(ts, &h));
        let t2 = Instant::now();
        if backend == Backend::Postgres {
            rt.block_on(drop_pg(&url));
        }
        if std::env::var("IYS_RELAY_MODEL_TIMING").is_ok() {
            eprintln!(
                "timing: store {:?} case {:?} drop {:?}",
                t1 - t0,
                t2 - t1,
                t2.elapsed()
            );
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_multiple_of(50) {
            println!(
                "[{backend:?}] {n} cases run ({:.0?}), latest {}",
                started.elapsed(),
                if r.is_ok() { "ok" } else { "FAILED" }
            );
        }
        r.map_err(TestCaseError::fail)
    });
    let runs = done.load(std::sync::atomic::Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "[{backend:?}] {runs} case runs (of {cases} cases, shrinking included) in {secs:.1} s, {:.0} ms per case",
        secs * 1000.0 / f64::from(runs.max(1))
    );
    if let Err(e) = result {
        panic!(
            "{e}\n\n[{backend:?}] replay with PROPTEST_RNG_SEED={seed} (and the same IYS_RELAY_MODEL_CASES)"
        );
    }
}

fn rand_seed() -> u64 {
    // u32 range so the seed can be passed back through PROPTEST_RNG_SEED as printed.
    u64::from(rand::random::<u32>())
}

#[test]
fn sqlite_ledger_and_iys_agree_once_idle() {
    campaign(Backend::Sqlite);
}

#[test]
fn postgres_ledger_and_iys_agree_once_idle() {
    campaign(Backend::Postgres);
}

// ---------------------------------------------------------------------------------------------
// Fixed histories: the known failure modes (and two controls) as named tests, so a report says
// which one broke. They run through the same harness as the random ones.

fn one(person: u8, ctype: ConsentType) -> Addr {
    Addr {
        person,
        brand: 0,
        ctype,
    }
}

fn rec(gap: Gap, person: u8, status: Status, via: Via) -> Op {
    Op::Record {
        gap,
        addr: one(person, ConsentType::Mesaj),
        status,
        via,
    }
}

fn hist(ops: Vec<Op>) -> History {
    History {
        people: 6,
        brands: 1,
        ops,
    }
}

/// Five ONAYs go out in an async batch; a RET for one of them arrives before the batch is
/// polled. İYS does not list the ONAY yet, so the RET must not end `nothing_to_revoke`.
fn ret_behind_onay_in_unpolled_batch() -> History {
    hist(vec![
        Op::Burst {
            brand: 0,
            ctype: ConsentType::Mesaj,
            from: 0,
            count: 5,
            statuses: 0,
            via: Via::SmsKeyword,
        },
        Op::Round,
        rec(Gap::Secs(40), 0, Status::Ret, Via::SmsKeyword),
        Op::Round,
    ])
}

/// ONAY reported, then a RET in the same second (İYS's consentDate has whole seconds and must
/// be strictly later: H178).
fn two_movements_in_one_second() -> History {
    hist(vec![
        rec(Gap::Ms(0), 0, Status::Onay, Via::SmsKeyword),
        Op::Round,
        rec(Gap::Ms(300), 0, Status::Ret, Via::SmsKeyword),
        Op::Round,
    ])
}

/// A CRM that keeps minutes only: ONAY at 10:09:00 reported, then RET also at 10:09:00.
fn agent_minutes_only_onay_then_ret() -> History {
    hist(vec![
        Op::Wait(Gap::Mins(9)),
        rec(Gap::Secs(5), 0, Status::Onay, Via::AgentNoSeconds),
        Op::Round,
        rec(Gap::Secs(20), 0, Status::Ret, Via::AgentNoSeconds),
        Op::Round,
    ])
}

/// The reporter is killed right after İYS accepted its batch (the relay never stored the
/// requestId); a RET for one of those ONAYs arrives while İYS is still processing the batch.
fn killed_after_batch_accepted_then_ret() -> History {
    hist(vec![
        Op::Burst {
            brand: 0,
            ctype: ConsentType::Mesaj,
            from: 0,
            count: 5,
            statuses: 0,
            via: Via::SmsKeyword,
        },
        // Request 1 is the token, request 2 the batch.
        Op::Kill { after: 2 },
        rec(Gap::Secs(40), 0, Status::Ret, Via::SmsKeyword),
        Op::Round,
    ])
}

/// A RET (minutes-only time 10:00:00) finds nothing to revoke; then an older ONAY (10:59:56,
/// an agent with seconds, entered later) arrives. The ledger's current movement stays the RET;
/// the reporter must not put the older ONAY into İYS.
fn late_older_onay_after_ret() -> History {
    hist(vec![
        rec(Gap::Ms(100), 0, Status::Ret, Via::AgentNoSeconds),
        Op::Round,
        rec(Gap::Ms(10), 0, Status::Onay, Via::Agent),
    ])
}

/// An ONAY whose send İYS refused outright (503 in an outage) never reached İYS, so its date
/// must not push the next movement's date later: the person's newer ONAY, said before the
/// citizen's RET in İYS, would otherwise be dated after that RET and overwrite it.
fn refused_send_does_not_move_the_next_date_past_a_citizen_word() -> History {
    // The shrunk history a campaign found (PostgreSQL, seed 194314604).
    let arama = |person| one(person, ConsentType::Arama);
    History {
        people: 10,
        brands: 1,
        ops: vec![
            Op::Burst {
                brand: 0,
                ctype: ConsentType::Mesaj,
                from: 0,
                count: 4,
                statuses: 975755334,
                via: Via::AgentNoSeconds,
            },
            Op::Round,
            Op::Record {
                gap: Gap::Ms(4),
                addr: one(8, ConsentType::Eposta),
                status: Status::Ret,
                via: Via::Agent,
            },
            Op::Round,
            rec(Gap::Ms(615), 3, Status::Onay, Via::Agent),
            Op::OutageStart(OutageKind::Unavailable),
            Op::Citizen {
                addr: arama(2),
                status: Status::Ret,
                source: Source::IysCm,
            },
            Op::Burst {
                brand: 0,
                ctype: ConsentType::Arama,
                from: 9,
                count: 12,
                statuses: 4235814800,
                via: Via::Ivr,
            },
            Op::Round,
            Op::Record {
                gap: Gap::Ms(677),
                addr: arama(2),
                status: Status::Onay,
                via: Via::Ivr,
            },
        ],
    }
}

/// Control (passes today): movements during a 503 outage go out once İYS is back.
fn control_outage_then_recovery() -> History {
    hist(vec![
        rec(Gap::Ms(0), 0, Status::Onay, Via::SmsKeyword),
        Op::Round,
        Op::OutageStart(OutageKind::Unavailable),
        rec(Gap::Secs(30), 0, Status::Ret, Via::WebLink),
        rec(Gap::Secs(1), 1, Status::Onay, Via::Ivr),
        Op::Round,
        Op::Wait(Gap::Secs(20)),
        Op::Round,
        Op::OutageEnd,
        Op::Wait(Gap::Mins(2)),
        Op::Round,
    ])
}

/// Control (passes today): a citizen's RET in İYS reaches the ledger through the pull.
fn control_citizen_ret_in_iys() -> History {
    hist(vec![
        rec(Gap::Ms(0), 0, Status::Onay, Via::SmsKeyword),
        Op::Round,
        Op::Wait(Gap::Mins(5)),
        Op::Citizen {
            addr: one(0, ConsentType::Mesaj),
            status: Status::Ret,
            source: Source::IysKisamesaj,
        },
        Op::Wait(Gap::Mins(1)),
        rec(Gap::Secs(1), 1, Status::Onay, Via::WebLink),
        Op::Round,
    ])
}

fn scenario(backend: Backend, h: History) {
    if backend == Backend::Postgres && crate::common::pg_admin_url().is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let ts = rt.block_on(new_store(backend));
    let url = ts.url.clone();
    let r = rt.block_on(run_case(ts, &h));
    if backend == Backend::Postgres {
        rt.block_on(drop_pg(&url));
    }
    if let Err(e) = r {
        panic!("[{backend:?}] {e}\nhistory: {h:?}");
    }
}

macro_rules! scenarios {
    ($($name:ident),+ $(,)?) => {
        mod sqlite_scenarios {
            $( #[test] fn $name() { super::scenario(super::Backend::Sqlite, super::$name()) } )+
        }
        mod postgres_scenarios {
            $( #[test] fn $name() { super::scenario(super::Backend::Postgres, super::$name()) } )+
        }
    };
}

scenarios!(
    ret_behind_onay_in_unpolled_batch,
    two_movements_in_one_second,
    agent_minutes_only_onay_then_ret,
    killed_after_batch_accepted_then_ret,
    late_older_onay_after_ret,
    refused_send_does_not_move_the_next_date_past_a_citizen_word,
    control_outage_then_recovery,
    control_citizen_ret_in_iys,
);
