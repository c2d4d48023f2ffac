//! Opting out inside the business's own calls, end to end: outbound calls replayed as
//! Twilio-signed webhooks through the real HTTP server (announcement, in-call entry, wrong keys,
//! timeouts, the return redirect, a retried webhook), then reported to the simulator; and the
//! PBX endpoint driven by exactly the HTTP request the dialplan in docs/voice.md makes. Both backends.

use std::collections::HashMap;

use crate::common::sim_world::SimWorld;
use crate::common::voice::{Call, Host, ids, signed_post};
use crate::common::{API_TOKEN, TestStore, intent, status_and_json};
use chrono::Duration;
use iys_relay::channels::voice::{Lang, PromptId, prompt};
use iys_relay::domain::{ConsentType, RecipientType, Source, Status};
use iys_relay::store::{JobState, StoredEvent};
use serde_json::{Value, json};

const PERSON: &str = "+905321234567";
const LANDLINE: &str = "+902121234567";
/// Configured for `demo` alone: its calls need no grant.
const DEMO_NUMBER: &str = "+908501234567";
/// Serves both brands: only a grant can say which one calls.
const SHARED_NUMBER: &str = "+908509876543";
const RETURN: &str = "https://dialer.example/campaign/next?lead=42";
const DEMO: i64 = 700000;
const TSA: i64 = 700001;

/// On top of `crate::common::TWO_BRANDS_TOML` (demo and tsa).
const CONFIG: &str = r#"
[[voice.numbers]]
number = "+908501234567"
brands = ["demo"]

[[voice.numbers]]
number = "+908509876543"
brands = ["demo", "tsa"]

[[api.tokens]]
name = "dev"
token = "dev-token-change-me"

[[api.tokens]]
name = "pbx-istanbul"
token = "pbx-token-0123456789"
"#;

struct World {
    sim: SimWorld,
    base: String,
    http: reqwest::Client,
    _store: TestStore,
}

impl Host for World {
    fn base(&self) -> &str {
        &self.base
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl World {
    async fn start(store: TestStore) -> Self {
        // A Wednesday morning in Istanbul: reporting runs without weekend effects.
        let (sim, base) = SimWorld::start_served(
            store.store.clone(),
            "2026-03-04 10:00:00",
            &format!("{}{CONFIG}", crate::common::TWO_BRANDS_TOML),
        )
        .await;
        Self {
            sim,
            base,
            http: reqwest::Client::new(),
            _store: store,
        }
    }

    /// ONAYs for ARAMA and MESAJ that İYS already holds, so a RET has something to revoke.
    async fn consented(&self, recipient: &str, brand_code: i64) {
        for t in [ConsentType::Arama, ConsentType::Mesaj] {
            let mut i = intent(
                &format!("pre-{recipient}-{brand_code}-{t}"),
                recipient,
                Status::Onay,
                self.sim.now() - Duration::minutes(5),
            );
            i.brand_code = brand_code;
            i.consent_type = t;
            let e = self.sim.app.state.ledger.record(i).await.unwrap().event_id;
            self.sim.report().await;
            assert_eq!(self.sim.job_state(e).await, JobState::Done);
        }
        self.sim.clock.advance(Duration::minutes(1));
    }

    async fn events(&self, recipient: &str) -> Vec<StoredEvent> {
        let mut evs = self
            .sim
            .store
            .events_for_recipient(recipient)
            .await
            .unwrap();
        evs.retain(|e| e.source == Source::HsCagriMerkezi);
        evs
    }

    /// A signed grant from the relay's API.
    async fn grant(&self, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/v1/voice/outbound-grants", self.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Runs the reporter and returns what İYS holds for (brand, recipient, type).
    async fn reported(&self, brand_code: i64, recipient: &str, t: ConsentType) -> (Status, Source) {
        // Dates sent to İYS are whole seconds never ahead of the clock: let one pass.
        self.sim.clock.advance(Duration::seconds(2));
        self.sim.report().await;
        let rec = self
            .sim
            .sim
            .record(brand_code, recipient, RecipientType::Bireysel, t)
            .expect("İYS holds a record");
        (rec.status, rec.source.expect("source"))
    }
}

fn versioned(lang: Lang, id: PromptId) -> String {
    format!("{}/{}", lang.as_str(), prompt(id, lang).versioned_id())
}

fn redirect_of(d: &crate::common::voice::Doc) -> Option<String> {
    let last = d.root.children.last()?;
    (last.name == "Redirect").then(|| last.text.clone())
}

/// Exactly one RET per type for the person, with the call's evidence, and each reported.
async fn assert_one_ret_per_type(w: &World, sid: &str, brand: i64, types: &[ConsentType]) {
    let evs = w.events(PERSON).await;
    let mut by_type: HashMap<ConsentType, usize> = HashMap::new();
    for e in &evs {
        *by_type.entry(e.consent_type).or_default() += 1;
        assert_eq!((e.status, e.brand_code), (Status::Ret, brand));
        assert_eq!(
            e.provider_message_id,
            format!("{sid}:{}:RET", e.consent_type)
        );
        assert_eq!(e.evidence["call_id"], sid);
    }
    let want: HashMap<ConsentType, usize> = types.iter().map(|t| (*t, 1)).collect();
    assert_eq!(by_type, want, "one RET per type");
    for t in types {
        assert_eq!(
            w.reported(brand, PERSON, *t).await,
            (Status::Ret, Source::HsCagriMerkezi),
            "{t} reported to İYS"
        );
    }
}

async fn announcement_with_wrong_keys_timeouts_and_return(store: TestStore) {
    let w = World::start(store).await;
    w.consented(PERSON, TSA).await;
    let g = w.grant(json!({"brand": "tsa", "return_url": RETURN})).await;
    assert_eq!(g["brand_code"], TSA);
    let announce = g["announcement_url"].as_str().unwrap().to_string();
    assert!(announce.starts_with(&format!(
        "{}/webhooks/twilio/voice/outbound/announce?o=",
        w.base
    )));

    // The shared number serves two brands; the grant names TSA.
    let mut call = Call::outbound(&w, "CAout0001", SHARED_NUMBER, PERSON);
    let d = call.start_at(&announce).await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::OutboundOfferCallsMsgs)]));
    assert_eq!(d.gather().unwrap().attr("numDigits"), Some("1"));
    let d = call.press("4").await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::InvalidChoice),
            ("tr", PromptId::OutboundOfferCallsMsgs)
        ])
    );
    let d = call.press("9").await;
    assert_eq!(
        d.plays(),
        ids(&[("tr", PromptId::OutboundConfirmCallsMsgs)])
    );
    let d = call.timeout().await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::NoInput),
            ("tr", PromptId::OutboundConfirmCallsMsgs)
        ])
    );
    assert!(
        w.events(PERSON).await.is_empty(),
        "nothing before confirming"
    );

    let confirm_url = call.next.clone().unwrap();
    let d = call.press("1").await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::RecordedOptoutCallsMsgs)]));
    assert!(!d.hangs_up() && d.gather().is_none());
    assert_eq!(
        redirect_of(&d).as_deref(),
        Some("https://dialer.example/campaign/next?lead=42&iys_relay=recorded"),
        "the dialer's own flow continues"
    );

    // Twilio retrying the confirming webhook: the same answer, nothing recorded twice.
    call.next = Some(confirm_url);
    let again = call.press("1").await;
    assert_eq!(redirect_of(&again), redirect_of(&d));

    assert_one_ret_per_type(
        &w,
        "CAout0001",
        TSA,
        &[ConsentType::Arama, ConsentType::Mesaj],
    )
    .await;
    let e = &w.events(PERSON).await[0];
    let raw = &e.evidence["raw"];
    assert_eq!(raw["call"]["direction"], "outbound-api");
    assert_eq!(raw["call"]["called"], PERSON);
    assert_eq!(raw["call"]["calling"], SHARED_NUMBER);
    assert_eq!(raw["params"]["CallSid"], "CAout0001");
    assert_eq!(raw["digits_pressed"], json!(["4", "9", "1"]));
    assert_eq!(raw["outbound"]["brand_from_grant"], true);
    assert_eq!(raw["outbound"]["return_url"], RETURN);
    let heard: Vec<String> = serde_json::from_value(raw["prompt_versions"].clone()).unwrap();
    for v in [
        versioned(Lang::Tr, PromptId::OutboundOfferCallsMsgs),
        versioned(Lang::Tr, PromptId::InvalidChoice),
        versioned(Lang::Tr, PromptId::OutboundConfirmCallsMsgs),
        versioned(Lang::Tr, PromptId::NoInput),
        versioned(Lang::Tr, PromptId::RecordedOptoutCallsMsgs),
    ] {
        assert!(heard.contains(&v), "{v} not in {heard:?}");
    }
    // Nothing for the other brand on the same number.
    let demo = w
        .sim
        .store
        .events_for_recipient(PERSON)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.brand_code == DEMO && e.status == Status::Ret)
        .count();
    assert_eq!(demo, 0);
}

async fn in_call_redirect_by_number_and_the_opt_out_line(store: TestStore) {
    let w = World::start(store).await;
    w.consented(PERSON, DEMO).await;
    // The dialer's flow <Redirect>s to the in-call entry: no grant, the number's single brand.
    let mut call = Call::outbound(&w, "CAout0002", DEMO_NUMBER, PERSON);
    call.direction = "outbound-dial".into();
    let d = call
        .start_at(&format!("{}/webhooks/twilio/voice/outbound", w.base))
        .await;
    assert_eq!(
        d.plays(),
        ids(&[("tr", PromptId::OutboundConfirmCallsMsgs)])
    );
    let d = call.press("1").await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::RecordedOptoutCallsMsgs),
            ("tr", PromptId::OutboundGoodbye)
        ])
    );
    assert!(d.hangs_up(), "no return URL: the relay ends the call");
    assert_one_ret_per_type(
        &w,
        "CAout0002",
        DEMO,
        &[ConsentType::Arama, ConsentType::Mesaj],
    )
    .await;

    // The dialer handing its call to the opt-out line's webhook gets the announcement; the
    // person pressing 9 in the dialer's own Gather (action = in-call URL) goes to the confirm.
    let mut handed = Call::outbound(&w, "CAout0003", DEMO_NUMBER, "+905329876543");
    let d = handed.start().await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::OutboundOfferCallsMsgs)]));
    let d = handed.timeout().await;
    assert!(d.hangs_up() && d.gather().is_none(), "silence: no refusal");
    assert_eq!(d.plays(), ids(&[("tr", PromptId::OutboundGoodbye)]));
    let mut gathered = Call::outbound(&w, "CAout0004", DEMO_NUMBER, LANDLINE);
    let url = format!("{}/webhooks/twilio/voice/outbound", w.base);
    let p = gathered.params(Some("9"));
    let d = gathered.post(&url, &p).await;
    assert_eq!(
        d.plays(),
        ids(&[("tr", PromptId::OutboundConfirmCalls)]),
        "landline: calls only"
    );
    gathered.press("1").await;
    let evs = w.events(LANDLINE).await;
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].consent_type, ConsentType::Arama);
    assert_eq!(evs[0].evidence["raw"]["digits_pressed"], json!(["9", "1"]));

    // An inbound call to the opt-out line still greets the caller and offers the main menu.
    let mut inbound = Call::new(&w, "CAin0001", "+905551112233", DEMO_NUMBER);
    let d = inbound.start().await;
    assert_eq!(d.plays()[0], "tr/welcome");
    assert_eq!(d.plays()[1], "tr/main_menu_calls_msgs");
    inbound.press("1").await;
    assert!(inbound.press("1").await.hangs_up());
    let evs = w.events("+905551112233").await;
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].evidence["raw"]["call"]["direction"], "inbound");
}

async fn cancel_give_up_forgeries_and_ambiguity_record_nothing(store: TestStore) {
    let w = World::start(store).await;
    let g = w
        .grant(json!({"brand": "demo", "return_url": RETURN, "lang": "en"}))
        .await;
    let in_call = g["in_call_url"].as_str().unwrap().to_string();

    // 2 at the confirmation: back to the dialer, nothing changed (English from the grant).
    let mut call = Call::outbound(&w, "CAout0010", DEMO_NUMBER, PERSON);
    let d = call.start_at(&in_call).await;
    assert_eq!(
        d.plays(),
        ids(&[("en", PromptId::OutboundConfirmCallsMsgs)])
    );
    let d = call.press("2").await;
    assert_eq!(d.plays(), ids(&[("en", PromptId::OutboundNotRecorded)]));
    assert!(redirect_of(&d).unwrap().ends_with("&iys_relay=cancelled"));

    // Wrong keys past max_reprompts at the confirmation.
    let mut call = Call::outbound(&w, "CAout0011", DEMO_NUMBER, PERSON);
    call.start_at(&in_call).await;
    for _ in 0..3 {
        assert_eq!(call.press("7").await.plays()[0], "en/invalid_choice");
    }
    let d = call.press("7").await;
    assert!(redirect_of(&d).unwrap().ends_with("&iys_relay=no_choice"));

    // The shared number without a grant: the relay cannot tell the brand.
    let mut call = Call::outbound(&w, "CAout0012", SHARED_NUMBER, PERSON);
    let d = call
        .start_at(&format!(
            "{}/webhooks/twilio/voice/outbound/announce",
            w.base
        ))
        .await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::Unavailable),
            ("tr", PromptId::OutboundGoodbye)
        ])
    );
    assert!(d.hangs_up());

    // An edited grant (validly Twilio-signed URL): apology, hang-up.
    let (head, token) = in_call.split_once("?o=").unwrap();
    let mut bytes = token.as_bytes().to_vec();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}?o={}", String::from_utf8(bytes).unwrap());
    let mut call = Call::outbound(&w, "CAout0013", DEMO_NUMBER, PERSON);
    let d = call.start_at(&forged).await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::Unavailable)]));
    assert!(d.hangs_up() && redirect_of(&d).is_none());

    // Unsigned: refused before the flow runs.
    let r = w
        .http
        .post(&in_call)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CAout0014&Direction=outbound-api&To=%2B905321234567")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A withheld or foreign callee cannot be recorded.
    let mut call = Call::outbound(&w, "CAout0015", DEMO_NUMBER, "+442071234567");
    let d = call.start_at(&in_call).await;
    assert!(redirect_of(&d).unwrap().ends_with("&iys_relay=unavailable"));
    assert!(w.events(PERSON).await.is_empty());

    // Grant requests are checked.
    for (body, code) in [
        (json!({"brand": "nope"}), 400),
        (json!({"brand": "demo", "return_url": "ftp://x"}), 422),
        (json!({"brand": "demo", "valid_days": 0}), 422),
        (json!({"brand": "demo", "extra": 1}), 422),
    ] {
        let r = w
            .http
            .post(format!("{}/v1/voice/outbound-grants", w.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), code, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["code"].is_string() && e["request_id"].is_string(), "{e}");
    }
    let r = w
        .http
        .post(format!("{}/v1/voice/outbound-grants", w.base))
        .json(&json!({"brand": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The status callback of a finished outbound call is only logged.
    let p = Call::outbound(&w, "CAout0010", DEMO_NUMBER, PERSON).params(None);
    let r = signed_post(&w, &format!("{}/webhooks/twilio/voice/status", w.base), &p).await;
    assert_eq!(r.status(), 200);
}

/// The `System(curl …)` line of the dialplan in docs/voice.md, as the HTTP request it makes.
struct DialplanCurl {
    headers: Vec<(String, String)>,
    form: Vec<(String, String)>,
    url: String,
}

/// Splits a shell command line on spaces, honouring single quotes (all the dialplan uses).
fn shell_words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in s.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Reads the dialplan example from docs/voice.md and fills in the channel variables.
fn readme_dialplan_curl(vars: &[(&str, &str)], base: &str) -> DialplanCurl {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/voice.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("System(curl "))
        .expect("docs/voice.md has the dialplan's System(curl …) line");
    let mut cmd = line
        .split_once("System(")
        .unwrap()
        .1
        .trim_end()
        .strip_suffix(')')
        .expect("System(...) closes on its line")
        .to_string();
    for (k, v) in vars {
        cmd = cmd.replace(&format!("${{{k}}}"), v);
    }
    assert!(!cmd.contains("${"), "unfilled variable in {cmd}");
    let words = shell_words(&cmd);
    assert_eq!(words[0], "curl");
    let mut c = DialplanCurl {
        headers: vec![],
        form: vec![],
        url: String::new(),
    };
    let mut it = words.into_iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-H" => {
                let h = it.next().unwrap();
                let (k, v) = h.split_once(": ").unwrap();
                c.headers.push((k.into(), v.into()));
            }
            "--data-urlencode" => {
                let d = it.next().unwrap();
                let (k, v) = d.split_once('=').unwrap();
                c.form.push((k.into(), v.into()));
            }
            "--max-time" | "-X" => {
                it.next();
            }
            flag if flag.starts_with('-') => {}
            url => c.url = url.replace("https://relay.example.com", base),
        }
    }
    c
}

impl DialplanCurl {
    /// The same request with form field `k` set to `v` (added if absent), or removed (`None`).
    fn with(mut self, k: &str, v: Option<&str>) -> Self {
        self.form.retain(|(f, _)| f != k);
        if let Some(v) = v {
            self.form.push((k.into(), v.into()));
        }
        self
    }
}

async fn send(w: &World, c: &DialplanCurl) -> (u16, Value) {
    let mut r = w
        .http
        .post(&c.url)
        .header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in &c.headers {
        r = r.header(k, v);
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&c.form)
        .finish();
    status_and_json(r.body(body)).await
}

async fn pbx_endpoint_as_the_readme_dialplan_calls_it(store: TestStore) {
    let w = World::start(store).await;
    w.consented(PERSON, DEMO).await;
    let vars = |token: &'static str, callee: &'static str, id: &'static str, key: &'static str| {
        vec![
            ("IYS_RELAY_TOKEN", token),
            ("CALLEE", callee),
            ("BRAND", "demo"),
            ("UNIQUEID", id),
            ("KEY", key),
            ("CONFIRM", "1"),
            ("CALLERID(num)", "08501234567"),
        ]
    };
    let good = readme_dialplan_curl(
        &vars("pbx-token-0123456789", "05321234567", "1741078800.42", "9"),
        &w.base,
    );
    assert!(good.url.ends_with("/v1/voice/pbx/opt-outs"), "{}", good.url);

    // Auth first: no token, a wrong token.
    let mut anon = readme_dialplan_curl(&vars("x", "05321234567", "1741078800.42", "9"), &w.base);
    anon.headers.clear();
    assert_eq!(send(&w, &anon).await.0, 401);
    let wrong = readme_dialplan_curl(
        &vars("not-a-token", "05321234567", "1741078800.42", "9"),
        &w.base,
    );
    let (status, e) = send(&w, &wrong).await;
    assert_eq!(status, 401, "{e}");
    assert!(w.events(PERSON).await.is_empty());

    let (status, first) = send(&w, &good).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["result"], "recorded");
    assert_eq!(first["recorded"].as_array().unwrap().len(), 2);
    // The dialplan retried (curl timed out after the relay had recorded): same events.
    let (status, again) = send(&w, &good).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["recorded"][0]["event_id"],
        first["recorded"][0]["event_id"]
    );
    assert!(
        again["recorded"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["duplicate"] == true)
    );
    // The same call id for another person is a dialplan bug.
    let reused = readme_dialplan_curl(
        &vars("pbx-token-0123456789", "05329876543", "1741078800.42", "9"),
        &w.base,
    );
    assert_eq!(send(&w, &reused).await.0, 409);

    let evs = w.events(PERSON).await;
    assert_eq!(evs.len(), 2);
    for e in &evs {
        assert_eq!(e.provider, "pbx:pbx-istanbul");
        assert_eq!(e.channel.as_str(), "voice");
        assert_eq!(e.evidence["call_id"], "1741078800.42");
        let raw = &e.evidence["raw"];
        assert_eq!(raw["call"]["direction"], "outbound-pbx");
        assert_eq!(raw["call"]["called"], "05321234567");
        assert_eq!(raw["call"]["calling"], "08501234567");
        assert_eq!(raw["digits_pressed"], json!(["9", "1"]));
        assert_eq!(
            raw["prompt_versions"][0],
            versioned(Lang::Tr, PromptId::OutboundOfferCallsMsgs)
        );
    }
    for t in [ConsentType::Arama, ConsentType::Mesaj] {
        assert_eq!(
            w.reported(DEMO, PERSON, t).await,
            (Status::Ret, Source::HsCagriMerkezi)
        );
    }

    // Bad input: a clear 4xx with a reason, nothing recorded.
    let other = "05051112233";
    let mut cases: Vec<(DialplanCurl, u16, &str)> = vec![
        (
            readme_dialplan_curl(&vars("pbx-token-0123456789", other, "c2", "5"), &w.base),
            422,
            "not_an_opt_out",
        ),
        (
            readme_dialplan_curl(&vars("pbx-token-0123456789", "12345", "c3", "9"), &w.base),
            422,
            "invalid_recipient",
        ),
    ];
    let base = || readme_dialplan_curl(&vars("pbx-token-0123456789", other, "c4", "9"), &w.base);
    for (field, value, status, code) in [
        ("confirm", None, 400, "malformed_body"),
        ("confirm", Some("2"), 422, "not_confirmed"),
        ("colour", Some("blue"), 400, "malformed_body"),
        ("brand", Some("nope"), 400, "unknown_brand"),
        ("call_id", Some(" "), 422, "invalid_field"),
    ] {
        cases.push((base().with(field, value), status, code));
    }
    for (c, status, code) in &cases {
        let (got, body) = send(&w, c).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (*status, Some(*code)),
            "{body}"
        );
        assert!(body["request_id"].is_string());
    }
    let r = w
        .http
        .post(&good.url)
        .bearer_auth("pbx-token-0123456789")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(w.events("+905051112233").await.is_empty());

    // The recordings the dialplan plays are served as 8 kHz WAVs.
    for id in [
        "outbound_offer_calls_msgs",
        "outbound_confirm_calls_msgs",
        "recorded_optout_calls_msgs",
        "outbound_not_recorded",
    ] {
        let r = w
            .http
            .get(format!("{}/voice-prompts/tr/{id}.wav", w.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id}");
        let b = r.bytes().await.unwrap();
        assert_eq!(
            u32::from_le_bytes([b[24], b[25], b[26], b[27]]),
            8000,
            "{id}"
        );
    }
}

app_on_both_backends!(
    announcement_with_wrong_keys_timeouts_and_return,
    in_call_redirect_by_number_and_the_opt_out_line,
    cancel_give_up_forgeries_and_ambiguity_record_nothing,
    pbx_endpoint_as_the_readme_dialplan_calls_it,
);
