//! The IVR end to end: whole calls replayed as sequences of signed Twilio webhooks through the
//! real HTTP server; every TwiML answer is parsed and checked, then the ledger is inspected.

use std::collections::HashSet;

use crate::common::voice::{Call, Doc, ids, signed_post};
use crate::common::{TestApp, TestStore, at, spawn_app};
use iys_relay::channels::voice::{Lang, PromptId, prompt};
use iys_relay::domain::{ConsentType, Status};
use iys_relay::store::StoredEvent;

const CALLER: &str = "+905321234567";
const DEMO_NUMBER: &str = "+908501234567";
const SHARED_NUMBER: &str = "+908509876543";

const VOICE_NUMBERS_TOML: &str = r#"
[[voice.numbers]]
number = "+908501234567"
brands = ["demo"]

[[voice.numbers]]
number = "0850 987 65 43"
brands = ["demo", "tsa"]
"#;

async fn app(store: TestStore, extra: &str) -> TestApp {
    // Monday 2026-11-23 10:00 UTC.
    spawn_app(store, extra, at("2026-11-23T10:00:00Z")).await
}

async fn events(app: &TestApp, recipient: &str) -> Vec<StoredEvent> {
    app.state
        .ledger
        .store()
        .events_for_recipient(recipient)
        .await
        .unwrap()
}

fn versioned(lang: Lang, id: PromptId) -> String {
    format!("{}/{}", lang.as_str(), prompt(id, lang).versioned_id())
}

fn main_menu(lang: &str, other: &str) -> Vec<(&'static str, PromptId)> {
    let l: &'static str = if lang == "tr" { "tr" } else { "en" };
    let o: &'static str = if other == "tr" { "tr" } else { "en" };
    vec![
        (l, PromptId::MainMenuCallsMsgs),
        (o, PromptId::SwitchLanguage),
    ]
}

async fn opt_out_confirmed(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0001", CALLER, DEMO_NUMBER);
    let d = call.start().await;
    let mut want = vec![("tr", PromptId::Welcome)];
    want.extend(main_menu("tr", "en"));
    assert_eq!(d.plays(), ids(&want));
    let g = d.gather().expect("gathers");
    assert_eq!(g.attr("numDigits"), Some("1"));
    assert_eq!(g.attr("input"), Some("dtmf"));
    assert_eq!(g.attr("language"), Some("tr-TR"));

    let d = call.press("1").await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::ConfirmOptoutCallsMsgs)]));
    assert!(
        events(&app, CALLER).await.is_empty(),
        "nothing before confirming"
    );

    let confirm_url = call.next.clone().unwrap();
    let d = call.press("1").await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::RecordedOptoutCallsMsgs),
            ("tr", PromptId::Goodbye)
        ])
    );
    assert!(d.hangs_up() && d.gather().is_none());

    let evs = events(&app, CALLER).await;
    assert_eq!(evs.len(), 2);
    let types: HashSet<ConsentType> = evs.iter().map(|e| e.consent_type).collect();
    assert_eq!(
        types,
        HashSet::from([ConsentType::Arama, ConsentType::Mesaj])
    );
    for e in &evs {
        assert_eq!(e.status, Status::Ret);
        assert_eq!(e.brand_code, 700000);
        assert_eq!(e.source.as_str(), "HS_CAGRI_MERKEZI");
        assert_eq!(e.channel.as_str(), "voice");
        assert_eq!(e.provider, "twilio-voice");
        assert_eq!(
            e.provider_message_id,
            format!("CA0001:{}:RET", e.consent_type)
        );
        assert_eq!(e.evidence["call_id"], "CA0001");
        let raw = &e.evidence["raw"];
        assert_eq!(raw["digits_pressed"], serde_json::json!(["1", "1"]));
        assert_eq!(raw["params"]["CallSid"], "CA0001");
        assert_eq!(raw["params"]["Digits"], "1");
        let heard: Vec<String> = serde_json::from_value(raw["prompt_versions"].clone()).unwrap();
        for v in [
            versioned(Lang::Tr, PromptId::Welcome),
            versioned(Lang::Tr, PromptId::ConfirmOptoutCallsMsgs),
            versioned(Lang::Tr, PromptId::RecordedOptoutCallsMsgs),
        ] {
            assert!(heard.contains(&v), "{v} not in {heard:?}");
        }
        let job = app.state.ledger.store().job_for_event(e.id).await.unwrap();
        assert!(job.is_some(), "reported to İYS");
    }

    // Twilio retrying the confirm webhook (same signed URL, same digits) records nothing new.
    call.next = Some(confirm_url);
    let again = call.press("1").await;
    assert!(again.hangs_up());
    assert_eq!(events(&app, CALLER).await.len(), 2);

    let (status, body) = app
        .api_get("/v1/consents/%2B905321234567?brand=demo&type=ARAMA")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["reason"], "rejected");
}

async fn opt_in_confirmed(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0002", CALLER, DEMO_NUMBER);
    call.start().await;
    let d = call.press("2").await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::ConfirmOptinCallsMsgs)]));
    let d = call.press("1").await;
    assert_eq!(
        d.plays(),
        ids(&[("tr", PromptId::RecordedOptin), ("tr", PromptId::Goodbye)])
    );
    assert!(d.hangs_up());
    let evs = events(&app, CALLER).await;
    assert_eq!(evs.len(), 2);
    assert!(evs.iter().all(|e| e.status == Status::Onay));
    assert!(
        evs.iter()
            .any(|e| e.provider_message_id == "CA0002:MESAJ:ONAY")
    );
}

async fn back_out_then_hang_up_records_nothing(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0003", CALLER, DEMO_NUMBER);
    call.start().await;
    call.press("1").await;
    let d = call.press("2").await;
    assert_eq!(
        d.plays(),
        ids(&main_menu("tr", "en")),
        "back to the main menu"
    );
    assert!(d.gather().is_some());
    // The caller hangs up: Twilio posts the status callback, which is only logged.
    let url = format!("{}/webhooks/twilio/voice/status", app.base);
    let mut p = call.params(None);
    p.retain(|(k, _)| k != "CallStatus");
    p.push(("CallStatus".into(), "completed".into()));
    p.push(("CallDuration".into(), "21".into()));
    let r = signed_post(&app, &url, &p).await;
    assert_eq!(r.status(), 200);
    Doc::parse(&r.text().await.unwrap(), &app.base);
    assert!(events(&app, CALLER).await.is_empty());
}

async fn three_timeouts_end_the_call(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0004", CALLER, DEMO_NUMBER);
    call.start().await;
    let mut reprompt = vec![("tr", PromptId::NoInput)];
    reprompt.extend(main_menu("tr", "en"));
    for _ in 0..3 {
        let d = call.timeout().await;
        assert_eq!(d.plays(), ids(&reprompt));
        assert!(d.gather().is_some());
    }
    let d = call.timeout().await;
    assert_eq!(d.plays(), ids(&[("tr", PromptId::EndedNoChoice)]));
    assert!(d.hangs_up() && d.gather().is_none());
    assert!(events(&app, CALLER).await.is_empty());
}

async fn invalid_keys_reprompt_then_recover(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0005", CALLER, DEMO_NUMBER);
    call.start().await;
    let mut reprompt = vec![("tr", PromptId::InvalidChoice)];
    reprompt.extend(main_menu("tr", "en"));
    assert_eq!(call.press("7").await.plays(), ids(&reprompt));
    assert_eq!(call.press("*").await.plays(), ids(&reprompt));
    call.press("1").await;
    let d = call.press("5").await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::InvalidChoice),
            ("tr", PromptId::ConfirmOptoutCallsMsgs)
        ])
    );
    assert!(events(&app, CALLER).await.is_empty());
    assert!(call.press("1").await.hangs_up());
    let evs = events(&app, CALLER).await;
    assert_eq!(evs.len(), 2);
    assert_eq!(
        evs[0].evidence["raw"]["digits_pressed"],
        serde_json::json!(["7", "*", "1", "5", "1"])
    );
}

async fn withheld_caller_id_enters_number(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0006", "anonymous", DEMO_NUMBER);
    let d = call.start().await;
    assert_eq!(
        d.plays(),
        ids(&[("tr", PromptId::Welcome), ("tr", PromptId::EnterNumber)])
    );
    assert_eq!(d.gather().unwrap().attr("numDigits"), Some("10"));
    // A landline is refused, then the mobile is read back digit by digit.
    let d = call.press("2121234567").await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::InvalidNumber),
            ("tr", PromptId::EnterNumber)
        ])
    );
    let d = call.press("5321234567").await;
    let mut want = vec![("tr", PromptId::ReadbackIntro)];
    want.extend(
        "5321234567"
            .chars()
            .map(|c| ("tr", PromptId::digit(c).unwrap())),
    );
    want.push(("tr", PromptId::ReadbackConfirm));
    assert_eq!(d.plays(), ids(&want));
    assert_eq!(call.press("1").await.plays(), ids(&main_menu("tr", "en")));
    call.press("1").await;
    assert!(call.press("1").await.hangs_up());
    let evs = events(&app, CALLER).await;
    assert_eq!(evs.len(), 2, "recorded for the typed number");
    assert_eq!(evs[0].evidence["raw"]["params"]["From"], "anonymous");
    assert!(events(&app, "anonymous").await.is_empty());
}

async fn multi_brand_number_asks_for_the_brand(store: TestStore) {
    let app = app(
        store,
        &format!("{}{VOICE_NUMBERS_TOML}", crate::common::TWO_BRANDS_TOML),
    )
    .await;
    let mut call = Call::new(&app, "CA0007", CALLER, SHARED_NUMBER);
    let d = call.start().await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("tr", PromptId::Welcome),
            ("tr", PromptId::BrandMenu),
            ("tr", PromptId::BrandOption1),
            ("tr", PromptId::BrandOption2),
            ("en", PromptId::SwitchLanguage),
        ])
    );
    let names: Vec<String> = d.says().into_iter().map(|(t, _)| t).collect();
    assert_eq!(names, vec!["Demo Marka", "TSA Elektronik"]);
    assert!(d.says().iter().all(|(_, l)| l.as_deref() == Some("tr-TR")));
    assert_eq!(
        call.press("9").await.plays()[0],
        "tr/brand_menu",
        "9 repeats"
    );
    call.press("2").await;
    let d = call.press("2").await;
    assert_eq!(
        d.says()[0].0,
        "TSA Elektronik",
        "confirmation names the brand"
    );
    assert_eq!(d.plays(), ids(&[("tr", PromptId::ConfirmOptinCallsMsgs)]));
    call.press("1").await;
    let evs = events(&app, CALLER).await;
    assert_eq!(evs.len(), 2);
    assert!(
        evs.iter()
            .all(|e| e.brand_code == 700001 && e.status == Status::Onay)
    );

    // The single-brand number of the same config skips the brand menu.
    let mut other = Call::new(&app, "CA0008", CALLER, DEMO_NUMBER);
    let d = other.start().await;
    assert_eq!(d.plays()[1], "tr/main_menu_calls_msgs");
    assert!(d.says().is_empty());
}

async fn language_switch_to_english(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0009", CALLER, DEMO_NUMBER);
    call.start().await;
    let d = call.press("0").await;
    assert_eq!(d.plays(), ids(&main_menu("en", "tr")));
    assert_eq!(d.gather().unwrap().attr("language"), Some("en-US"));
    assert_eq!(
        call.press("1").await.plays(),
        ids(&[("en", PromptId::ConfirmOptoutCallsMsgs)])
    );
    let d = call.press("1").await;
    assert_eq!(
        d.plays(),
        ids(&[
            ("en", PromptId::RecordedOptoutCallsMsgs),
            ("en", PromptId::Goodbye)
        ])
    );
    let evs = events(&app, CALLER).await;
    assert_eq!(evs.len(), 2);
    let heard: Vec<String> =
        serde_json::from_value(evs[0].evidence["raw"]["prompt_versions"].clone()).unwrap();
    assert!(heard.contains(&versioned(Lang::Tr, PromptId::Welcome)));
    assert!(heard.contains(&versioned(Lang::En, PromptId::RecordedOptoutCallsMsgs)));
}

async fn say_mode_speaks_turkish(store: TestStore) {
    let app = app(store, "[voice]\nprompt_mode = \"say\"\n").await;
    let mut call = Call::new(&app, "CA0010", CALLER, DEMO_NUMBER);
    let d = call.start().await;
    assert!(d.plays().is_empty());
    let g = d.gather().unwrap();
    let first = &g.children[0];
    assert_eq!(first.name, "Say");
    assert_eq!(first.attr("language"), Some("tr-TR"));
    assert_eq!(first.attr("voice"), Some("Polly.Filiz"));
    assert!(
        first
            .text
            .starts_with(&prompt(PromptId::Welcome, Lang::Tr).text)
    );
    call.press("1").await;
    assert!(call.press("1").await.hangs_up());
    assert_eq!(events(&app, CALLER).await.len(), 2);
}

async fn forged_state_and_unsigned_requests_record_nothing(store: TestStore) {
    let app = app(store, "").await;
    let mut call = Call::new(&app, "CA0011", CALLER, DEMO_NUMBER);
    call.start().await;
    call.press("1").await;
    let good = call.next.clone().unwrap();
    let unavailable = ids(&[("tr", PromptId::Unavailable)]);

    // A state token edited in the URL (validly Twilio-signed): apology, hang-up, nothing kept.
    let (head, token) = good.split_once("?t=").unwrap();
    let mut bytes = token.as_bytes().to_vec();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    let forged = format!("{head}?t={}", String::from_utf8(bytes).unwrap());
    for url in [forged, head.to_string()] {
        call.next = Some(url);
        let d = call.press("1").await;
        assert_eq!(d.plays(), unavailable);
        assert!(d.hangs_up());
    }
    // The token of this call presented by another call.
    let mut thief = Call::new(&app, "CA0012", CALLER, DEMO_NUMBER);
    thief.next = Some(good.clone());
    assert_eq!(thief.press("1").await.plays(), unavailable);
    assert!(events(&app, CALLER).await.is_empty());

    // No / wrong X-Twilio-Signature: refused before the flow runs.
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(call.params(Some("1")))
        .finish();
    let r = app
        .http
        .post(&good)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .post(&good)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "bm9wZQ==")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(events(&app, CALLER).await.is_empty());

    // An unknown dialled number: "unavailable" and hang up.
    let mut stray = Call::new(&app, "CA0013", CALLER, "+908500000000");
    let d = stray.start().await;
    assert_eq!(d.plays(), unavailable);
    assert!(d.hangs_up());
    // No CallSid: 400.
    let url = format!("{}/webhooks/twilio/voice", app.base);
    let mut p = call.params(None);
    p.retain(|(k, _)| k != "CallSid");
    assert_eq!(signed_post(&app, &url, &p).await.status(), 400);
}

async fn prompts_are_served_with_caching(store: TestStore) {
    let app = app(store, "").await;
    let url = format!("{}/voice-prompts/tr/welcome.wav", app.base);
    let r = app.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = r.headers()["etag"].clone();
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..], PromptId::Welcome.wav(Lang::Tr));
    assert_eq!(&bytes[..4], b"RIFF");
    let r = app
        .http
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    for bad in [
        "tr/welcome.mp3",
        "de/welcome.wav",
        "tr/nope.wav",
        "tr/..%2Fprompts.toml",
    ] {
        let r = app.get(&format!("/voice-prompts/{bad}")).await;
        assert_eq!(r.status(), 404, "{bad}");
    }
}

app_on_both_backends!(
    opt_out_confirmed,
    opt_in_confirmed,
    back_out_then_hang_up_records_nothing,
    three_timeouts_end_the_call,
    invalid_keys_reprompt_then_recover,
    withheld_caller_id_enters_number,
    multi_brand_number_asks_for_the_brand,
    language_switch_to_english,
    say_mode_speaks_turkish,
    forged_state_and_unsigned_requests_record_nothing,
    prompts_are_served_with_caching,
);
