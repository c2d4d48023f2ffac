//! The simulator over a real socket, driven with reqwest the way the İYS client will be.

use std::sync::Arc;

use chrono::Duration;
use iys_relay::domain::time::{ManualClock, from_iys};
use iys_relay::domain::{ConsentType, RecipientType, Source, Status};
use iys_relay::sim::{SimConfig, Simulator};
use serde_json::{Value, json};

const B: &str = "/sps/700000/brands/700000";

async fn start() -> (Simulator, ManualClock, String) {
    let clock = ManualClock::new(from_iys("2026-03-04 12:00:00").unwrap());
    let cfg = SimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    };
    let sim = Simulator::new(cfg, Arc::new(clock.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sim.clone().serve(listener));
    (sim, clock, base)
}

async fn send_json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("request");
    response.json().await.expect("json body")
}

#[tokio::test]
async fn end_to_end_over_http() {
    let (sim, clock, base) = start().await;
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "password"),
        ("username", "sim"),
        ("password", "sim"),
    ];
    let tok = send_json(http.post(format!("{base}/oauth2/token")).form(&form)).await;
    let token = tok["access_token"].as_str().unwrap().to_string();

    let consent = json!({"recipient":"+905321234567","type":"MESAJ","source":"HS_CAGRI_MERKEZI",
        "status":"ONAY","consentDate":"2026-03-04 11:00:00","recipientType":"BIREYSEL"});
    let r = http
        .post(format!("{base}{B}/consents"))
        .bearer_auth(&token)
        .json(&consent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let added: Value = r.json().await.unwrap();
    assert_eq!(added["creationDate"], "2026-03-04 12:00:00");

    let r = http
        .post(format!("{base}{B}/consents/request"))
        .bearer_auth(&token)
        .json(
            &json!([{"recipient":"Ali@Firma.com","type":"EPOSTA","source":"HS_WEB",
            "status":"ONAY","consentDate":"2026-03-04 11:30:00"}]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let rid = r.json::<Value>().await.unwrap()["requestId"]
        .as_str()
        .unwrap()
        .to_string();
    clock.advance(Duration::seconds(300));
    let poll = http
        .get(format!("{base}{B}/consents/request/{rid}"))
        .bearer_auth(&token);
    let poll = send_json(poll).await;
    assert_eq!(poll[0]["status"], "success");

    let r = http
        .post(format!("{base}/__sim/citizen-actions"))
        .json(
            &json!({"brandCode":700000,"recipient":"+905321234567","type":"MESAJ",
            "status":"RET","source":"IYS_KISAMESAJ"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = sim
        .record(
            700000,
            "+905321234567",
            RecipientType::Bireysel,
            ConsentType::Mesaj,
        )
        .unwrap();
    assert_eq!(
        (rec.status, rec.source),
        (Status::Ret, Some(Source::IysKisamesaj))
    );

    clock.advance(Duration::hours(1));
    let r = http
        .get(format!("{base}{B}/consents/changes?source=IYS"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pulled: Value = r.json().await.unwrap();
    assert_eq!(pulled["list"][0]["status"], "RET");

    let calls = sim.request_log();
    assert_eq!(calls.len(), 5, "token, add, batch, poll, pull: {calls:?}");
    assert!(calls.iter().all(|c| c.status < 300));
}
