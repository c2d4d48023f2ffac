//! SMS channel end to end: signed webhooks → ledger → report job → suppression API.

use crate::common::{TWILIO_TOKEN, TestApp, TestStore, at, spawn_app};
use iys_relay::channels::sms::signature::twilio_signature;
use iys_relay::channels::twiml_check;
use iys_relay::domain::Address;
use iys_relay::domain::{ConsentType, RecipientType, Status};
use iys_relay::store::JobState;

const SMS_NUMBERS_TOML: &str = r#"
[[sms.numbers]]
number = "+908501234567"
brands = ["demo"]

[[sms.numbers]]
number = "3338"
brands = ["demo", "tsa"]

[[sms.generic]]
name = "verimor"
hmac_secret = "generic-shared-secret"

[[sms.generic]]
name = "netgsm"
basic_user = "netgsm"
basic_password = "basic-secret"
"#;

const SENDER: &str = "+905321234567";
const DEDICATED: &str = "+908501234567";

async fn app(store: TestStore) -> TestApp {
    // Monday 2026-11-23 10:00 UTC.
    let toml = format!("{}{SMS_NUMBERS_TOML}", crate::common::TWO_BRANDS_TOML);
    spawn_app(store, &toml, at("2026-11-23T10:00:00Z")).await
}

fn form(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

fn sms_params<'a>(
    sid: &'a str,
    from: &'a str,
    to: &'a str,
    body: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", to),
        ("Body", body),
        ("NumMedia", "0"),
        ("FutureParam", "kept as evidence"),
    ]
}

/// Posts a Twilio-signed form to the SMS webhook, signing `signed_url` (defaults to the app URL).
async fn post_signed(
    app: &TestApp,
    params: &[(&str, &str)],
    signed_url: Option<&str>,
) -> reqwest::Response {
    let url = format!("{}/webhooks/twilio/sms", app.base);
    crate::common::post_twilio_signed(
        app,
        &url,
        signed_url.unwrap_or(&url),
        &crate::common::pairs(params),
    )
    .await
}

/// The texts of the `<Message>` verbs of a TwiML document (parsed and checked, not string-matched).
fn twiml_messages(xml: &str) -> Vec<String> {
    let root = twiml_check::parse(xml).expect("well-formed TwiML");
    twiml_check::check_allowed(&root).expect("only allowed verbs");
    root.children
        .iter()
        .filter(|n| n.name == "Message")
        .map(|n| n.text.clone())
        .collect()
}

fn mesaj_key(brand_code: i64) -> Address {
    Address {
        brand_code,
        recipient: SENDER.into(),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
    }
}

async fn opt_out_is_recorded_reported_and_suppressed(store: TestStore) {
    let app = app(store).await;
    let r = post_signed(
        &app,
        &sms_params("SM0001", SENDER, DEDICATED, " ıptal! "),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml")
    );
    let msgs = twiml_messages(&r.text().await.unwrap());
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].contains("Ret talebiniz alındı"), "{msgs:?}");
    assert!(msgs[0].contains("3 iş günü"), "{msgs:?}");

    // Right after the one request: event, job with its deadline, suppression says no.
    let store = app.state.ledger.store();
    let state = store
        .consent_state(&mesaj_key(700000))
        .await
        .unwrap()
        .expect("state");
    assert_eq!(state.status, Status::Ret);
    let event = store.event(state.event_id).await.unwrap().unwrap();
    assert_eq!(event.source.as_str(), "HS_MESAJ");
    assert_eq!(event.provider_message_id, "SM0001");
    assert_eq!(event.evidence["raw"]["FutureParam"], "kept as evidence");
    assert_eq!(event.evidence["raw"]["Body"], " ıptal! ");
    let job = store
        .job_for_event(event.id)
        .await
        .unwrap()
        .expect("report job");
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(
        job.deadline_at,
        at("2026-11-26T20:59:59Z"),
        "Monday → Thursday 23:59:59 Istanbul"
    );

    let (status, body) = app
        .api_get(&format!(
            "/v1/consents/{}?brand=demo&type=MESAJ",
            "%2B905321234567"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["may_send"], false);
    assert_eq!(body["reason"], "rejected");
    assert_eq!(body["status"], "RET");
    assert_eq!(body["source"], "HS_MESAJ");
    // Other brands and types are untouched.
    let (_, other) = app
        .api_get("/v1/consents/05321234567?brand=tsa&type=MESAJ")
        .await;
    assert_eq!(other["reason"], "no_consent");

    // The bulk check answers in input order, repeats and every written form included, and
    // lists what is not a recipient by index without echoing it.
    let (status, bulk) = app
        .api_post(
            "/v1/consents/check",
            &serde_json::json!({"brand": "demo", "type": "MESAJ", "recipients": [
                "0532 123 45 67", "+905551112233", "not a number", "+905321234567"]}),
        )
        .await;
    assert_eq!(status, 200, "{bulk}");
    let results = bulk["results"].as_array().unwrap();
    let got: Vec<(&str, &str)> = results
        .iter()
        .map(|r| {
            (
                r["recipient"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (SENDER, "rejected"),
            ("+905551112233", "no_consent"),
            (SENDER, "rejected")
        ]
    );
    assert_eq!(bulk["invalid"][0]["index"], 2);
    assert!(!bulk.to_string().contains("not a number"));
}

async fn retried_webhook_records_once_and_replies_the_same(store: TestStore) {
    let app = app(store).await;
    let p = sms_params("SM0002", SENDER, DEDICATED, "RET");
    let first = post_signed(&app, &p, None).await.text().await.unwrap();
    let second = post_signed(&app, &p, None).await.text().await.unwrap();
    assert_eq!(first, second);
    let events = app
        .state
        .ledger
        .store()
        .events_for_recipient(SENDER)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}

async fn forged_requests_are_refused_and_leave_no_trace(store: TestStore) {
    let app = app(store).await;
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let body = form(&sms_params("SM0003", SENDER, DEDICATED, "RET"));
    let missing = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone());
    assert_eq!(missing.send().await.unwrap().status(), 400);
    let wrong = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
        .body(body.clone());
    assert_eq!(wrong.send().await.unwrap().status(), 403);
    // Signed for other parameters than the ones sent.
    let mut tampered = sms_params("SM0003", SENDER, DEDICATED, "EVET");
    let sig = {
        let owned: Vec<(String, String)> = tampered
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        twilio_signature(TWILIO_TOKEN, &url, &owned)
    };
    tampered[5] = ("Body", "RET");
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(form(&tampered))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let store = app.state.ledger.store();
    assert!(store.events_for_recipient(SENDER).await.unwrap().is_empty());
    assert_eq!(store.quarantine_count().await.unwrap(), 0);
}

async fn tls_terminating_proxy_validates_against_the_public_url(store: TestStore) {
    // The provider calls https://relay.example.com; the proxy forwards plain http to us.
    let app = spawn_app(
        store,
        "[server]\npublic_base_url = \"https://relay.example.com\"\n",
        at("2026-11-23T10:00:00Z"),
    )
    .await;
    let params = sms_params("SM0004", SENDER, DEDICATED, "RET");
    let r = post_signed(
        &app,
        &params,
        Some("https://relay.example.com/webhooks/twilio/sms"),
    )
    .await;
    assert_eq!(r.status(), 200);
    // The same request signed for the inner http URL is refused: headers do not choose the URL.
    let r = post_signed(&app, &sms_params("SM0005", SENDER, DEDICATED, "RET"), None).await;
    assert_eq!(r.status(), 403);
}

async fn trusted_proxy_mode_uses_forwarded_headers(store: TestStore) {
    let app = spawn_app(
        store,
        "[server]\ntrusted_proxy = true\n",
        at("2026-11-23T10:00:00Z"),
    )
    .await;
    let params = sms_params("SM0006", SENDER, DEDICATED, "RET");
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig = twilio_signature(
        TWILIO_TOKEN,
        "https://edge.example.net/webhooks/twilio/sms",
        &owned,
    );
    let r = app
        .http
        .post(format!("{}/webhooks/twilio/sms", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "edge.example.net")
        .header("x-twilio-signature", sig)
        .body(form(&params))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn bad_input_gets_4xx_and_is_quarantined(store: TestStore) {
    let app = app(store).await;
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let store = app.state.ledger.store().clone();
    let post = |body: Vec<u8>, signature: String| {
        app.http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(body)
            .send()
    };
    let odd = b"Body=%FF&From=x".to_vec();
    let big = form(&[("Body", &"R".repeat(70_000))]).into_bytes();
    // Unsigned, however odd or large: refused and never stored.
    assert_eq!(post(odd.clone(), "x".into()).await.unwrap().status(), 403);
    assert_eq!(post(big.clone(), "x".into()).await.unwrap().status(), 403);
    assert_eq!(store.quarantine_count().await.unwrap(), 0);
    // Signed invalid UTF-8: unreadable, kept for review.
    let sig = crate::common::twilio_signature_raw(TWILIO_TOKEN, &url, &odd);
    assert_eq!(post(odd, sig).await.unwrap().status(), 400);
    assert_eq!(store.quarantine_count().await.unwrap(), 1);
    // Signed and oversized: kept, truncated to quarantine.max_row_bytes.
    let sig = crate::common::twilio_signature_raw(TWILIO_TOKEN, &url, &big);
    assert_eq!(post(big, sig).await.unwrap().status(), 413);
    assert_eq!(store.quarantine_count().await.unwrap(), 2);
    let kept = store.quarantine_bytes().await.unwrap();
    assert_eq!(
        kept,
        15 + 16 * 1024,
        "the first row whole, the second capped"
    );
    // A sender that is not a phone number.
    let r = post_signed(
        &app,
        &sms_params("SM0007", "not-a-number", DEDICATED, "RET"),
        None,
    )
    .await;
    assert_eq!(r.status(), 422);
    // A number we do not serve.
    let r = post_signed(
        &app,
        &sms_params("SM0008", SENDER, "+905559999999", "RET"),
        None,
    )
    .await;
    assert_eq!(r.status(), 422);
    // Missing parameters.
    let r = post_signed(&app, &[("Body", "RET")], None).await;
    assert_eq!(r.status(), 400);
    assert_eq!(store.quarantine_count().await.unwrap(), 5);
    assert!(store.events_for_recipient(SENDER).await.unwrap().is_empty());
}

async fn shared_short_code_asks_which_brand(store: TestStore) {
    let app = app(store).await;
    let r = post_signed(&app, &sms_params("SM0009", SENDER, "3338", "RET"), None).await;
    let msgs = twiml_messages(&r.text().await.unwrap());
    assert!(
        msgs[0].contains("DEMO RET") || msgs[0].contains("TSA RET"),
        "{msgs:?}"
    );
    let store = app.state.ledger.store();
    assert!(
        store.events_for_recipient(SENDER).await.unwrap().is_empty(),
        "no guessing"
    );
    assert_eq!(store.inbound_count().await.unwrap(), 1, "kept for review");

    let r = post_signed(&app, &sms_params("SM0010", SENDER, "3338", "RET tsa"), None).await;
    assert!(twiml_messages(&r.text().await.unwrap())[0].contains("TSA Elektronik"));
    assert_eq!(
        store
            .consent_state(&mesaj_key(700001))
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Ret
    );
    assert!(
        store
            .consent_state(&mesaj_key(700000))
            .await
            .unwrap()
            .is_none()
    );
}

async fn opt_in_waits_for_iys_before_may_send(store: TestStore) {
    let app = app(store).await;
    let r = post_signed(&app, &sms_params("SM0011", SENDER, DEDICATED, "Evet"), None).await;
    assert!(twiml_messages(&r.text().await.unwrap())[0].contains("Onayınız alındı"));
    let (_, body) = app
        .api_get("/v1/consents/05321234567?type=MESAJ&brand=700000")
        .await;
    assert_eq!(body["status"], "ONAY");
    assert_eq!(body["may_send"], false);
    assert_eq!(body["reason"], "pending_iys_registration");
}

async fn unrecognised_text_is_kept_and_answered_with_help(store: TestStore) {
    let app = app(store).await;
    let r = post_signed(
        &app,
        &sms_params("SM0012", SENDER, DEDICATED, "lütfen beni bir daha aramayın"),
        None,
    )
    .await;
    assert!(twiml_messages(&r.text().await.unwrap())[0].contains("RET"));
    let store = app.state.ledger.store();
    assert!(store.events_for_recipient(SENDER).await.unwrap().is_empty());
    assert_eq!(store.inbound_count().await.unwrap(), 1);
}

async fn per_sender_rate_limit_answers_429(store: TestStore) {
    let app = app(store).await;
    for n in 0..10 {
        let sid = format!("SMRL{n}");
        assert_eq!(
            post_signed(&app, &sms_params(&sid, SENDER, DEDICATED, "YARDIM"), None)
                .await
                .status(),
            200
        );
    }
    let r = post_signed(&app, &sms_params("SMRL10", SENDER, DEDICATED, "RET"), None).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Another sender is not affected.
    let r = post_signed(
        &app,
        &sms_params("SMRL11", "+905329876543", DEDICATED, "RET"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

async fn generic_provider_webhook(store: TestStore) {
    let app = app(store).await;
    let url = format!("{}/webhooks/generic/sms", app.base);
    let body = serde_json::json!([
        {"message_id": "vm-1", "source_addr": "905321234567", "destination_addr": "908501234567", "content": "İPTAL",
         "received_at": "2026-11-23 12:59:00"},
        {"message_id": "vm-2", "source_addr": "905329876543", "destination_addr": "3338", "content": "TSA EVET"},
        {"message_id": "vm-3", "source_addr": "12", "destination_addr": "3338", "content": "RET"}
    ])
    .to_string();
    let r = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .header(
            "x-signature",
            format!(
                "sha256={}",
                hmac_hex("generic-shared-secret", body.as_bytes())
            ),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["provider"], "verimor");
    assert_eq!(v["results"][0]["intent"], "opt_out");
    assert_eq!(v["results"][1]["intent"], "opt_in");
    assert_eq!(v["results"][1]["brand_code"], 700001);
    assert!(
        v["results"][2]["error"]
            .as_str()
            .unwrap()
            .contains("sender")
    );
    let store = app.state.ledger.store();
    let state = store
        .consent_state(&mesaj_key(700000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.status, Status::Ret);
    // The provider's own receipt time (Istanbul local) is the consent date.
    assert_eq!(state.consent_at, at("2026-11-23T09:59:00Z"));

    // Basic auth identifies the other provider; its ids are a separate dedupe namespace.
    let r = app
        .http
        .post(&url)
        .basic_auth("netgsm", Some("basic-secret"))
        .header("content-type", "application/json")
        .body(r#"{"message_id": "vm-1", "from": "905321112233", "to": "908501234567", "text": "RET"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        store
            .events_for_recipient("+905321112233")
            .await
            .unwrap()
            .len(),
        1
    );

    let no_auth = app.http.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(no_auth.status(), 401);
    let wrong = app
        .http
        .post(&url)
        .header("x-signature", "00".repeat(32))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let bad = b"{not json".to_vec();
    let r = app
        .http
        .post(&url)
        .header("x-signature", hmac_hex("generic-shared-secret", &bad))
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        store.quarantine_count().await.unwrap() >= 2,
        "bad sender + malformed body"
    );
}

app_on_both_backends!(
    opt_out_is_recorded_reported_and_suppressed,
    retried_webhook_records_once_and_replies_the_same,
    forged_requests_are_refused_and_leave_no_trace,
    tls_terminating_proxy_validates_against_the_public_url,
    trusted_proxy_mode_uses_forwarded_headers,
    bad_input_gets_4xx_and_is_quarantined,
    shared_short_code_asks_which_brand,
    opt_in_waits_for_iys_before_may_send,
    unrecognised_text_is_kept_and_answered_with_help,
    per_sender_rate_limit_answers_429,
    generic_provider_webhook,
);
