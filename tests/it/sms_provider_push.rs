//! Provider pushes at the HTTP edge: authentication before anything is stored, one bad item
//! answering alone, implausible provider times, Twilio Advanced Opt-Out.

use crate::common::{TestApp, TestStore, at, spawn_app};
use iys_relay::domain::Status;

const TOML: &str = r#"
[[sms.numbers]]
number = "+908501234567"
brands = ["demo"]

[[sms.generic]]
name = "gen"
hmac_secret = "generic-shared-secret"

[[sms.providers]]
name = "vm"
kind = "verimor"
path_token = "push-token-0123456789"
allowed_ips = ["127.0.0.0/8"]
"#;

async fn app(store: TestStore) -> TestApp {
    spawn_app(store, TOML, at("2026-11-23T10:00:00Z")).await
}

async fn post(app: &TestApp, path: &str, body: &str) -> (u16, serde_json::Value) {
    let r = app
        .http
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

async fn push_needs_the_token_and_stores_nothing_otherwise(store: TestStore) {
    let app = app(store).await;
    let body = r#"[{"message_id":1,"source_addr":"905321234567","destination_addr":"908501234567","content":"RET","received_at":"2026-11-23 12:59:00"}]"#;
    assert_eq!(
        post(&app, "/webhooks/sms/vm/wrong-token-000000000", body)
            .await
            .0,
        403
    );
    assert_eq!(post(&app, "/webhooks/sms/vm", body).await.0, 403);
    assert_eq!(
        post(&app, "/webhooks/sms/nope/push-token-0123456789", body)
            .await
            .0,
        404
    );
    let s = app.state.ledger.store();
    assert!(
        s.events_for_recipient("+905321234567")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.quarantine_count().await.unwrap(), 0);
    let (status, v) = post(&app, "/webhooks/sms/vm/push-token-0123456789", body).await;
    assert_eq!(status, 200, "{v}");
    let e = &s.events_for_recipient("+905321234567").await.unwrap()[0];
    assert_eq!(
        (e.status, e.consent_at),
        (Status::Ret, at("2026-11-23T09:59:00Z"))
    );
}

async fn one_bad_item_one_bad_result(store: TestStore) {
    let app = app(store).await;
    // A time read as milliseconds since 1970, one in the future, a bad sender, a bad time
    // format, and a good one: every recordable RET is recorded, each bad item answers alone.
    let body = r#"[
      {"message_id":"a","source_addr":"905321111111","destination_addr":"908501234567","content":"RET","received_at":"010120260900"},
      {"message_id":"b","source_addr":"905322222222","destination_addr":"908501234567","content":"RET","received_at":"2027-01-01 09:00:00"},
      {"message_id":"c","source_addr":"12","destination_addr":"908501234567","content":"RET"},
      {"message_id":"d","source_addr":"905324444444","destination_addr":"908501234567","content":"RET","received_at":"yarın"},
      {"message_id":"e","source_addr":"905325555555","destination_addr":"908501234567","content":"RET","received_at":"2026-11-23 12:58:00"}]"#;
    let (status, v) = post(&app, "/webhooks/sms/vm/push-token-0123456789", body).await;
    assert_eq!(status, 200, "{v}");
    let r = &v["results"];
    let statuses: Vec<u64> = (0..5).map(|i| r[i]["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [422, 200, 422, 422, 200], "{v}");
    assert_eq!(r[0]["code"], "invalid_time");
    assert_eq!(r[2]["code"], "invalid_sender");
    let s = app.state.ledger.store();
    let b = &s.events_for_recipient("+905322222222").await.unwrap()[0];
    assert_eq!(
        b.consent_at,
        at("2026-11-23T10:00:00Z"),
        "future time → receipt time"
    );
    assert!(
        b.evidence.to_string().contains("2027-01-01 09:00:00"),
        "provider value kept"
    );
    assert_eq!(
        s.events_for_recipient("+905325555555").await.unwrap().len(),
        1
    );
    assert_eq!(s.quarantine_count().await.unwrap(), 3);

    // The generic webhook: the 1970 reading is a time outside the calendar → receipt time.
    let generic = r#"[{"id":"g1","from":"905326666666","to":"908501234567","body":"RET","timestamp":"010120260900"},
                  {"id":"g2","from":"905327777777","to":"908501234567","body":"RET"}]"#;
    let sig = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"generic-shared-secret").unwrap();
        m.update(generic.as_bytes());
        hex::encode(m.finalize().into_bytes())
    };
    let r = app
        .http
        .post(format!("{}/webhooks/generic/sms", app.base))
        .header("x-signature", sig)
        .body(generic)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let g1 = &s.events_for_recipient("+905326666666").await.unwrap()[0];
    assert_eq!(g1.consent_at, at("2026-11-23T10:00:00Z"));
    assert!(g1.evidence.to_string().contains("relay_time_note"));
    assert_eq!(
        s.events_for_recipient("+905327777777").await.unwrap().len(),
        1
    );
}

async fn twilio_advanced_opt_out_gets_no_second_reply(store: TestStore) {
    let app = app(store).await;
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let params = crate::common::pairs(&[
        ("MessageSid", "SMAOO1"),
        ("From", "+905321234567"),
        ("To", "+908501234567"),
        ("Body", "STOP"),
        ("OptOutType", "STOP"),
    ]);
    let r = crate::common::post_twilio_signed(&app, &url, &url, &params).await;
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(!xml.contains("<Message"), "{xml}");
    let s = app.state.ledger.store();
    let e = &s.events_for_recipient("+905321234567").await.unwrap()[0];
    assert_eq!(e.status, Status::Ret);
    assert_eq!(e.evidence["raw"]["OptOutType"], "STOP");
}

app_on_both_backends!(
    push_needs_the_token_and_stores_nothing_otherwise,
    one_bad_item_one_bad_result,
    twilio_advanced_opt_out_gets_no_second_reply,
);
