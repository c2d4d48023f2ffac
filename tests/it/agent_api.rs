//! Call-centre agent API end to end: record consents taken on calls, refuse what İYS would
//! refuse, dedupe retries, and the agent-screen lookup.

use crate::common::{API_TOKEN, TestApp, TestStore, at, spawn_app, status_and_json};
use serde_json::{Value, json};

const PHONE: &str = "+905321234567";

async fn app(store: TestStore) -> TestApp {
    // Monday 2026-11-23 10:00 UTC (13:00 in Istanbul).
    spawn_app(store, "", at("2026-11-23T10:00:00Z")).await
}

fn body(status: &str, call_ref: &str) -> Value {
    json!({
        "brand": "demo",
        "type": "ARAMA",
        "status": status,
        "recipient": "0532 123 45 67",
        "call_reference": call_ref,
        "agent_id": "ayşe.yılmaz",
        "recording_url": "https://pbx.example.com/rec/1.wav",
    })
}

async fn post(app: &TestApp, b: &Value, key: Option<&str>) -> (u16, Value) {
    let mut r = app
        .http
        .post(format!("{}/v1/agent/consents", app.base))
        .bearer_auth(API_TOKEN)
        .json(b);
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    status_and_json(r).await
}

async fn event_count(app: &TestApp) -> usize {
    app.events_for(PHONE).await.len()
}

async fn records_with_evidence_and_dedupes_retries(store: TestStore) {
    let app = app(store).await;
    let (status, first) = post(&app, &body("RET", "PBX-1001"), None).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(
        first["deadline_at"], "2026-11-26T20:59:59Z",
        "Monday → Thursday"
    );
    let id = first["event_id"].as_i64().unwrap();
    let ev = app.event(id).await;
    assert_eq!(ev.recipient, PHONE);
    assert_eq!(ev.source.as_str(), "HS_CAGRI_MERKEZI");
    assert_eq!(ev.channel.as_str(), "agent");
    assert_eq!(ev.provider, "agent:dev");
    assert_eq!(ev.provider_message_id, "PBX-1001:ARAMA:RET");
    assert_eq!(ev.consent_at, at("2026-11-23T10:00:00Z"));
    assert_eq!(ev.evidence["call_id"], "PBX-1001");
    assert_eq!(ev.evidence["raw"]["agent_id"], "ayşe.yılmaz");
    assert_eq!(
        ev.evidence["raw"]["recording_url"],
        "https://pbx.example.com/rec/1.wav"
    );

    let (status, again) = post(&app, &body("RET", "PBX-1001"), None).await;
    assert_eq!(status, 200);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event_id"], first["event_id"]);
    // The same call may carry a later change of mind: that is a new movement.
    let (status, _) = post(&app, &body("ONAY", "PBX-1001"), None).await;
    assert_eq!(status, 201);
    assert_eq!(event_count(&app).await, 2);
}

async fn idempotency_key_replays_and_conflicts(store: TestStore) {
    let app = app(store).await;
    let (s1, a) = post(&app, &body("RET", "PBX-2001"), Some("req-7f3a")).await;
    assert_eq!(s1, 201);
    let id = a["event_id"].as_i64().unwrap();
    let ev = app.event(id).await;
    assert_eq!(ev.provider_message_id, "req-7f3a");
    // A retry (even with another call reference typed in) returns the original.
    let (s2, b) = post(&app, &body("RET", "PBX-2001-retry"), Some("req-7f3a")).await;
    assert_eq!(
        (s2, &b["event_id"], &b["duplicate"]),
        (200, &a["event_id"], &json!(true))
    );
    // The key reused for a different movement is a client bug.
    let (s3, c) = post(&app, &body("ONAY", "PBX-2002"), Some("req-7f3a")).await;
    assert_eq!(s3, 409, "{c}");
    assert_eq!(c["code"], "idempotency_key_reused");
    let (s4, _) = post(&app, &body("RET", "PBX-2003"), Some(&"x".repeat(300))).await;
    assert_eq!(s4, 422);
    assert_eq!(event_count(&app).await, 1);
}

async fn invalid_requests_get_4xx_and_record_nothing(store: TestStore) {
    let app = app(store).await;
    let url = format!("{}/v1/agent/consents", app.base);
    let r = app
        .http
        .post(&url)
        .json(&body("RET", "X"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let with = |k: &str, v: Value| {
        let mut b = body("RET", "PBX-3001");
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = body("RET", "PBX-3001");
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (without("call_reference"), 422, "invalid_body"),
        (without("agent_id"), 422, "invalid_body"),
        (with("call_reference", json!("  ")), 422, "invalid_field"),
        (with("agent_id", json!("a\u{0007}b")), 422, "invalid_field"),
        (
            with("recording_url", json!("http://pbx.example.com/1.wav")),
            422,
            "invalid_recording_url",
        ),
        (
            with("recording_url", json!("not a url")),
            422,
            "invalid_recording_url",
        ),
        (with("recipient", json!("12")), 422, "invalid_recipient"),
        (with("type", json!("EPOSTA")), 422, "invalid_recipient"),
        (with("type", json!("FAX")), 422, "invalid_body"),
        (with("status", json!("RED")), 422, "invalid_body"),
        (with("brand", json!("nope")), 400, "unknown_brand"),
        (with("consent_at", json!("yesterday")), 422, "invalid_body"),
        (
            with("consent_at", json!("2026-11-23T10:10:00Z")),
            422,
            "consent_at_in_future",
        ),
        (with("surprise", json!(1)), 422, "invalid_body"),
        // serde would read the fields by position from an array.
        (
            json!(["demo", "ARAMA", "RET", "+905321234567", null, "PBX-1", "a"]),
            422,
            "invalid_body",
        ),
    ];
    for (b, status, code) in cases {
        let (s, r) = post(&app, &b, None).await;
        assert_eq!((s, r["code"].as_str().unwrap_or("")), (status, code), "{b}");
    }
    let r = app
        .http
        .post(&url)
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(event_count(&app).await, 0);

    // Within the clock-skew allowance the consent counts as taken now.
    let (s, r) = post(
        &app,
        &with("consent_at", json!("2026-11-23T13:03:00+03:00")),
        None,
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let ev = app.event(r["event_id"].as_i64().unwrap()).await;
    assert_eq!(ev.consent_at, at("2026-11-23T10:00:00Z"));
}

/// Posts a consent taken at `consent_at`; returns (status, code or "").
async fn taken_at(app: &TestApp, consent_at: &str, call_ref: &str) -> (u16, Value) {
    let mut b = body("RET", call_ref);
    b["consent_at"] = json!(consent_at);
    post(app, &b, None).await
}

async fn consents_older_than_three_business_days_are_refused(store: TestStore) {
    // Now: Monday 23 Nov 2026 13:00 Istanbul. Minus three business days (Fri, Thu, Wed, across
    // the weekend) is Wed 18 Nov 13:00 Istanbul = 10:00Z; İYS refuses anything older (H467).
    let app = app(store).await;
    // Tue 17 Nov: four business days ago.
    let (s, r) = taken_at(&app, "2026-11-17T09:00:00Z", "PBX-4001").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("consent_too_old")),
        "{r}"
    );
    assert!(r["message"].as_str().unwrap().contains("H467"), "{r}");
    // Three business days and 30 minutes: the old end-of-day reading accepted this, İYS does not.
    let (s, r) = taken_at(&app, "2026-11-18T09:30:00Z", "PBX-4002").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("consent_too_old")),
        "{r}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("2026-11-18 13:10:00"),
        "the message names the earliest accepted time: {r}"
    );
    // Inside İYS's window but inside the safety margin: refused too.
    let (s, r) = taken_at(&app, "2026-11-18T10:09:59Z", "PBX-4003").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("consent_too_old")),
        "{r}"
    );
    assert_eq!(event_count(&app).await, 0);

    // Exactly three business days minus the margin: accepted; the deadline counts from the
    // consent date.
    let (s, r) = taken_at(&app, "2026-11-18T10:10:00Z", "PBX-4004").await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["deadline_at"], "2026-11-23T20:59:59Z");
    // Far outside the holiday calendar: refused, not a 500.
    let (s, r) = taken_at(&app, "1990-01-01T00:00:00Z", "PBX-4005").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("consent_too_old")),
        "{r}"
    );
    assert_eq!(event_count(&app).await, 1);
}

async fn the_window_skips_holidays_and_moves_with_the_clock(store: TestStore) {
    // Mon 2 Nov 2026 13:00 Istanbul. Back three business days: Fri 30 Oct, (Thu 29 Oct is
    // Cumhuriyet Bayramı), Wed 28 Oct (half day, counts), Tue 27 Oct: cutoff 27 Oct 10:00Z.
    let app = spawn_app(store, "", at("2026-11-02T10:00:00Z")).await;
    let (s, r) = taken_at(&app, "2026-10-27T09:30:00Z", "PBX-6001").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("consent_too_old")),
        "{r}"
    );
    let (s, r) = taken_at(&app, "2026-10-27T10:10:00Z", "PBX-6002").await;
    assert_eq!(s, 201, "{r}");
    // Thirty minutes later on the manual clock the same consent time is too old.
    app.clock.advance(chrono::Duration::minutes(30));
    let (s, r) = taken_at(&app, "2026-10-27T10:10:00Z", "PBX-6003").await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("consent_too_old")),
        "{r}"
    );
    let (s, r) = taken_at(&app, "2026-10-27T10:40:00Z", "PBX-6004").await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(event_count(&app).await, 2);
}

async fn mesaj_needs_a_turkish_mobile(store: TestStore) {
    let app = app(store).await;
    let landline = |t: &str, call_ref: &str| {
        let mut b = body("ONAY", call_ref);
        b["type"] = json!(t);
        b["recipient"] = json!("0212 123 00 00");
        b
    };
    let (s, r) = post(&app, &landline("MESAJ", "PBX-7001"), None).await;
    assert_eq!(
        (s, r["code"].as_str()),
        (422, Some("invalid_recipient")),
        "{r}"
    );
    assert!(
        r["message"].as_str().unwrap().contains("Turkish mobile"),
        "{r}"
    );
    let mut foreign = landline("MESAJ", "PBX-7002");
    foreign["recipient"] = json!("+14158675309");
    assert_eq!(post(&app, &foreign, None).await.0, 422);
    // ARAMA may be a landline.
    let (s, r) = post(&app, &landline("ARAMA", "PBX-7003"), None).await;
    assert_eq!(s, 201, "{r}");
    let ev = app.event(r["event_id"].as_i64().unwrap()).await;
    assert_eq!(ev.recipient, "+902121230000");
    // A mobile for MESAJ is fine.
    let mut mobile = landline("MESAJ", "PBX-7004");
    mobile["recipient"] = json!("0532 123 45 67");
    assert_eq!(post(&app, &mobile, None).await.0, 201);
}

async fn lookup_for_the_agent_screen(store: TestStore) {
    let app = app(store).await;
    let (s, _) = app
        .api_get("/v1/agent/consents/05321234567?brand=demo")
        .await;
    assert_eq!(s, 200);
    post(&app, &body("RET", "PBX-5000"), None).await;
    let mut mesaj = body("ONAY", "PBX-5000");
    mesaj["type"] = json!("MESAJ");
    post(&app, &mesaj, None).await;
    for i in 1..=21 {
        post(
            &app,
            &body(
                if i % 2 == 0 { "RET" } else { "ONAY" },
                &format!("PBX-51{i:02}"),
            ),
            None,
        )
        .await;
    }
    let (s, v) = app
        .api_get("/v1/agent/consents/05321234567?brand=demo")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["recipient"], PHONE);
    let answers = v["answers"].as_array().unwrap();
    let by_type = |t: &str| answers.iter().find(|a| a["type"] == t).cloned();
    assert_eq!(answers.len(), 2, "EPOSTA does not apply to a phone: {v}");
    assert_eq!(
        by_type("ARAMA").unwrap()["status"],
        "ONAY",
        "last of the 21 is ONAY"
    );
    assert_eq!(
        by_type("MESAJ").unwrap()["reason"],
        "pending_iys_registration"
    );
    let recent = v["recent_events"].as_array().unwrap();
    assert_eq!(recent.len(), 20);
    let ids: Vec<i64> = recent.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    assert!(recent.iter().all(|e| e.get("evidence").is_none()));
    assert_eq!(recent[0]["provider"], "agent:dev");
    assert_eq!(recent[0]["source"], "HS_CAGRI_MERKEZI");

    let (s, v) = app
        .api_get("/v1/agent/consents/Ali@Example.com?brand=demo")
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["answers"].as_array().unwrap().len(), 1);
    assert_eq!(v["answers"][0]["type"], "EPOSTA");
    assert_eq!(v["answers"][0]["reason"], "no_consent");
    assert_eq!(
        app.api_get("/v1/agent/consents/garbage?brand=demo").await.0,
        422
    );
    assert_eq!(
        app.api_get("/v1/agent/consents/05321234567?brand=zz")
            .await
            .0,
        400
    );
    let r = app.get("/v1/agent/consents/05321234567").await;
    assert_eq!(r.status(), 401);
}

app_on_both_backends!(
    records_with_evidence_and_dedupes_retries,
    idempotency_key_replays_and_conflicts,
    invalid_requests_get_4xx_and_record_nothing,
    consents_older_than_three_business_days_are_refused,
    the_window_skips_holidays_and_moves_with_the_clock,
    mesaj_needs_a_turkish_mobile,
    lookup_for_the_agent_screen,
);
