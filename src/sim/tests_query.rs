//! Router-level tests: status, multi status, history, pull, push, rate limits, test hooks.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use super::SimConfig;
use super::testkit::*;
use crate::domain::{ConsentType, RecipientType, Source, Status};

const PHONE: &str = "+905321234567";
const PHONE2: &str = "+905321234568";

fn key(recipient: &str, t: &str) -> Value {
    json!({"recipient": recipient, "recipientType": "BIREYSEL", "type": t})
}

#[tokio::test]
async fn single_status_found_and_not_found() {
    let kit = Kit::new();
    let (s, v) = kit.post(&b("/consents/status"), key(PHONE, "MESAJ")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(v["errors"].is_array());
    kit.post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 3))
        .await;
    let (s, v) = kit.post(&b("/consents/status"), key(PHONE, "MESAJ")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["status"], "ONAY");
    assert_eq!(v["source"], "HS_WEB");
    assert_eq!(v["consentDate"], "2026-03-04 11:57:00");
    assert_eq!(v["creationDate"], "2026-03-04 12:00:00");
    let (s, v) = kit
        .post(
            &b("/consents/status"),
            json!({"recipient": PHONE, "type": "MESAJ"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H170"));
    let (s, v) = kit
        .post(&b("/consents/status"), key("+9055436100000000", "MESAJ"))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H166"));
    let (s, v) = kit.post(&b("/consents/status"), json!([])).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "H097"));
}

#[tokio::test]
async fn status_not_found_switch() {
    let kit = Kit::with(SimConfig {
        status_not_found: 204,
        rate_limits_enabled: false,
        ..Default::default()
    });
    let (s, v) = kit.post(&b("/consents/status"), key(PHONE, "MESAJ")).await;
    assert_eq!((s, v), (StatusCode::NO_CONTENT, Value::Null));
}

#[tokio::test]
async fn multi_status_lists_only_onay() {
    let kit = Kit::new();
    kit.post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 3))
        .await;
    kit.post(&b("/consents"), consent(&kit, PHONE2, "MESAJ", "ONAY", 3))
        .await;
    kit.advance(1);
    kit.post(&b("/consents"), consent(&kit, PHONE2, "MESAJ", "RET", 1))
        .await;
    let path = b("/consents/BIREYSEL/status/MESAJ");
    let (s, v) = kit
        .post(
            &path,
            json!({"recipients": [PHONE, PHONE2, "+905321234569"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["list"], json!([PHONE]));
    assert_eq!(v["requestId"].as_str().unwrap().len(), 36);
    for (body, c) in [
        (json!({}), "H168"),
        (json!({"recipients": {}}), "H478"),
        (json!({"recipients": []}), "H164"),
        (json!({"recipients": [PHONE, PHONE]}), "H193"),
        (json!({"recipients": ["a@firma.com"]}), "H464"),
    ] {
        let (s, v) = kit.post(&path, body.clone()).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, c),
            "{body}"
        );
    }
    let (_, v) = kit.post(&path, json!({"recipients": [PHONE, PHONE]})).await;
    assert_eq!(v["errors"][0]["location"], json!(["recipients", 1]));
    let (s, v) = kit
        .post(
            &b("/consents/BIREYSEL/status/EPOSTA"),
            json!({"recipients": [PHONE]}),
        )
        .await;
    assert_eq!(code(&v), "H464");
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn history_newest_first_with_paging() {
    let kit = Kit::new();
    kit.post(&b("/consents"), consent(&kit, PHONE, "ARAMA", "ONAY", 30))
        .await;
    kit.advance(1);
    kit.post(&b("/consents"), consent(&kit, PHONE, "ARAMA", "RET", 10))
        .await;
    let (s, v) = kit.post(&b("/consents/history"), key(PHONE, "ARAMA")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["list"][0]["status"], "RET");
    assert_eq!(v["list"][1]["status"], "ONAY");
    assert_eq!(
        v["pagination"],
        json!({"totalCount": 2, "pageSize": 2, "offset": 0})
    );
    let (_, v) = kit
        .post(
            &b("/consents/history?limit=1&offset=1"),
            key(PHONE, "ARAMA"),
        )
        .await;
    assert_eq!(v["list"][0]["status"], "ONAY");
    assert_eq!(v["pagination"]["totalCount"], 2);
    for (q, c) in [
        ("limit=101", "H186"),
        ("limit=0", "H187"),
        ("limit=-1", "H183"),
        ("offset=-1", "H182"),
    ] {
        let (s, v) = kit
            .post(&b(&format!("/consents/history?{q}")), key(PHONE, "ARAMA"))
            .await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, c), "{q}");
    }
}

#[tokio::test]
async fn pull_window_lag_sources_and_cursor() {
    let kit = Kit::new();
    kit.post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 1))
        .await;
    kit.sim
        .inject_citizen_action(
            BRAND,
            "Ali@Firma.com",
            RecipientType::Bireysel,
            ConsentType::Eposta,
            Status::Onay,
            Source::IysWebYeni,
            Some("Ayşe Işık".into()),
        )
        .unwrap();
    kit.advance(1);
    kit.sim
        .citizen_mesaj(BRAND, PHONE, Status::Ret, Source::IysKisamesaj)
        .unwrap();
    let (s, _) = kit.get(&b("/consents/changes")).await;
    assert_eq!(
        s,
        StatusCode::NO_CONTENT,
        "nothing older than the 1 h lag yet"
    );
    kit.advance(3600);
    kit.forget();
    let (s, v) = kit.get(&b("/consents/changes?source=IYS&limit=1")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["list"][0]["recipient"], "ali@firma.com");
    assert_eq!(v["list"][0]["citizenName"], "Ayşe Işık");
    let after = v["after"].as_str().unwrap().to_string();
    let tx = v["list"][0]["transactionId"].as_str().unwrap();
    assert!(after.ends_with(&format!("_{tx}")));
    let (_, v) = kit
        .get(&b(&format!("/consents/changes?source=IYS&after={after}")))
        .await;
    assert_eq!(v["list"].as_array().unwrap().len(), 1);
    assert_eq!(v["list"][0]["source"], "IYS_KISAMESAJ");
    assert!(v["list"][0].get("citizenName").is_none());
    let last = v["after"].as_str().unwrap().to_string();
    let (s, _) = kit
        .get(&b(&format!("/consents/changes?after={last}")))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = kit.get(&b("/consents/changes?source=HS")).await;
    assert_eq!(v["list"].as_array().unwrap().len(), 1);
    assert_eq!(v["list"][0]["source"], "HS_WEB");
    kit.advance(7 * 24 * 3600);
    kit.forget();
    let (s, _) = kit.get(&b("/consents/changes?source=HS")).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "older than 7 days");
    let (s, v) = kit.get(&b("/consents/changes?source=SH")).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H506"));
    let (s, v) = kit.get(&b("/consents/changes?limit=1500")).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H507"));
}

type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A local HS push endpoint recording (Authorization header, body).
async fn hs_endpoint() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/push",
        post(move |h: HeaderMap, axum::Json(v): axum::Json<Value>| {
            let s2 = s2.clone();
            async move {
                let auth = h
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                s2.lock().unwrap().push((auth, v));
                StatusCode::OK
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/push", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, seen)
}

#[tokio::test]
async fn push_registration_test_payload_and_movements() {
    let kit = Kit::with(SimConfig {
        allow_http_push: true,
        rate_limits_enabled: false,
        ..Default::default()
    });
    let (url, seen) = hs_endpoint().await;
    let conn = json!({"url": url, "type": "MESAJ", "username": "hs", "password": "gizli"});
    let (s, v) = kit
        .post(
            &b("/push/registration"),
            json!({"connection": [conn.clone()]}),
        )
        .await;
    assert_eq!(
        (s, &v["message"]),
        (StatusCode::OK, &json!("Bağlantı oluşturuldu"))
    );
    {
        let got = seen.lock().unwrap();
        assert_eq!(got[0].0, "Basic aHM6Z2l6bGk=", "base64(hs:gizli)");
        assert_eq!(got[0].1, super::push::test_payload());
    }
    let (_, list) = kit.get(&b("/push/registration")).await;
    assert_eq!(list[0]["status"], "Bağlantı Oluşturuldu");
    assert_eq!(list[0]["registerTime"], "2026-03-04 12:00:00");
    kit.sim
        .citizen_mesaj(BRAND, PHONE, Status::Ret, Source::IysMobil)
        .unwrap();
    // EPOSTA has no connection: not pushed.
    kit.sim
        .inject_citizen_action(
            BRAND,
            "a@firma.com",
            RecipientType::Bireysel,
            ConsentType::Eposta,
            Status::Ret,
            Source::IysWeb,
            None,
        )
        .unwrap();
    kit.sim.flush_pushes().await;
    {
        let got = seen.lock().unwrap();
        assert_eq!(got.len(), 2);
        let row = &got[1].1["list"][0];
        assert_eq!(row["recipient"], PHONE);
        assert_eq!(row["iysCode"], IYS);
        assert_eq!(row["brandCode"], BRAND);
        assert_eq!(row["source"], "IYS_MOBIL");
    }
    assert_eq!(kit.sim.push_log().len(), 2);
    let (s, v) = kit.post(&b("/push/unregistration"), conn.clone()).await;
    assert_eq!(
        (s, &v["message"]),
        (StatusCode::OK, &json!("Bağlantı Kaldırıldı"))
    );
    let (s, v) = kit.post(&b("/push/unregistration"), conn).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H530"));
}

#[tokio::test]
async fn push_registration_validation() {
    let kit = Kit::new();
    let reg = |c: Value| json!({"connection": [c]});
    for (c, want) in [
        (
            json!({"url": "http://hs.example/push", "type": "MESAJ", "username": "u", "password": "p"}),
            "H531",
        ),
        (
            json!({"url": "https://hs.example/push", "username": "u", "password": "p"}),
            "H111",
        ),
        (
            json!({"url": "https://hs.example/push", "type": "SMS", "username": "u", "password": "p"}),
            "H117",
        ),
        (
            json!({"url": "https://hs.example/push", "type": "MESAJ", "password": "p"}),
            "H093",
        ),
    ] {
        let (s, v) = kit.post(&b("/push/registration"), reg(c.clone())).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, want),
            "{c}"
        );
    }
    // Unreachable HS: registration fails and is listed as failed.
    let c = json!({"url": "https://127.0.0.1:1/push", "type": "MESAJ", "username": "u", "password": "p"});
    let (s, v) = kit.post(&b("/push/registration"), reg(c)).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H530"));
    let (_, list) = kit.get(&b("/push/registration")).await;
    assert_eq!(list[0]["status"], "Bağlantı Oluşturulamadı");
}

#[tokio::test]
async fn per_second_limit_h124_uses_the_clock() {
    let kit = Kit::with(SimConfig::default());
    let body = key(PHONE, "MESAJ");
    kit.token().await;
    // The token call counted against this second too.
    kit.advance(1);
    for _ in 0..10 {
        assert_ne!(
            kit.post(&b("/consents/status"), body.clone()).await.0,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    let (s, v) = kit.post(&b("/consents/status"), body.clone()).await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "H124"));
    kit.advance(1);
    assert_eq!(
        kit.post(&b("/consents/status"), body).await.0,
        StatusCode::NOT_FOUND
    );
}

/// A single status call with `token` from `peer`.
async fn status_as(kit: &Kit, peer: Option<SocketAddr>, token: &str) -> (StatusCode, Value) {
    let body = key(PHONE, "MESAJ").to_string();
    kit.raw_from(
        peer,
        "POST",
        &b("/consents/status"),
        Some(token),
        Some(body),
        "application/json",
    )
    .await
}

#[tokio::test]
async fn per_second_limit_is_per_ip_not_per_token() {
    let kit = Kit::with(SimConfig::default());
    let ip = |last: u8| {
        Some(SocketAddr::from((
            [10, 0, 0, last],
            40000 + u16::from(last),
        )))
    };
    let (t1, t2) = (kit.new_token().await, kit.new_token().await);
    kit.advance(1);
    for i in 0..10 {
        let t = if i % 2 == 0 { &t1 } else { &t2 };
        // Another source port of the same address is the same client.
        let peer = ip(1).map(|mut a| {
            a.set_port(50000 + i);
            a
        });
        assert_eq!(
            status_as(&kit, peer, t).await.0,
            StatusCode::NOT_FOUND,
            "call {i}"
        );
    }
    let (s, v) = status_as(&kit, ip(1), &t2).await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "H124"));
    // Another address has its own budget, even with a token already used above.
    assert_eq!(status_as(&kit, ip(2), &t1).await.0, StatusCode::NOT_FOUND);
    kit.advance(1);
    assert_eq!(status_as(&kit, ip(1), &t1).await.0, StatusCode::NOT_FOUND);
}

/// Through a real socket: the key comes from the peer address `serve` records.
#[tokio::test]
async fn per_second_limit_per_ip_over_a_socket() {
    let kit = Kit::with(SimConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(kit.sim.clone().serve(listener));
    let http = reqwest::Client::new();
    let token = || async {
        let v: Value = http
            .post(format!("{base}/oauth2/token"))
            .json(&json!({"username":"sim","password":"sim","grant_type":"password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    };
    let (t1, t2) = (token().await, token().await);
    assert_ne!(t1, t2);
    kit.advance(1);
    let mut statuses = Vec::new();
    for i in 0..11 {
        let r = http
            .post(format!("{base}{}", b("/consents/status")))
            .bearer_auth(if i % 2 == 0 { &t1 } else { &t2 })
            .json(&key(PHONE, "MESAJ"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    server.abort();
    assert_eq!(statuses[..10], [404; 10], "{statuses:?}");
    assert_eq!(statuses[10], 429, "{statuses:?}");
}

#[tokio::test]
async fn hourly_limits_h086_h089_h084() {
    let kit = Kit::with(SimConfig::default());
    let body = key(PHONE, "MESAJ");
    kit.token().await;
    for i in 0..1000 {
        if i % 10 == 0 {
            kit.advance(1);
        }
        assert_eq!(
            kit.post(&b("/consents/status"), body.clone()).await.0,
            StatusCode::NOT_FOUND,
            "call {i}"
        );
    }
    kit.advance(1);
    let (s, v) = kit.post(&b("/consents/status"), body.clone()).await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "H086"));
    for i in 0..100 {
        if i % 10 == 0 {
            kit.advance(1);
        }
        assert_eq!(
            kit.post(&b("/consents/history"), body.clone()).await.0,
            StatusCode::OK
        );
    }
    kit.advance(1);
    let (s, v) = kit.post(&b("/consents/history"), body).await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "H089"));
    let login = json!({"username":"sim","password":"sim","grant_type":"password"});
    for i in 0..99 {
        if i % 10 == 0 {
            kit.advance(1);
        }
        assert_eq!(
            kit.token_call(login.clone()).await.0,
            StatusCode::OK,
            "token {i}"
        );
    }
    kit.advance(1);
    let (s, v) = kit.token_call(login.clone()).await;
    assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "H084"));
    kit.advance(3599);
    assert_eq!(
        kit.token_call(login.clone()).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "retry restarts the hour"
    );
    kit.advance(3600);
    assert_eq!(kit.token_call(login).await.0, StatusCode::OK);
}

#[tokio::test]
async fn citizen_action_http_hook() {
    let kit = Kit::new();
    let body = json!({"brandCode": BRAND, "recipient": PHONE, "type": "MESAJ", "status": "RET",
                      "source": "IYS_AHS_HAT_KAPATMA"});
    let (s, v) = kit
        .raw(
            "POST",
            "/__sim/citizen-actions",
            None,
            Some(body.to_string()),
            "application/json",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["consentDate"], "", "line closures carry no consent date");
    let rec = kit
        .sim
        .record(BRAND, PHONE, RecipientType::Bireysel, ConsentType::Mesaj)
        .unwrap();
    assert_eq!(rec.status, Status::Ret);
    let bad = json!({"brandCode": BRAND, "recipient": PHONE, "type": "MESAJ", "status": "RET", "source": "HS_WEB"});
    let (s, _) = kit
        .raw(
            "POST",
            "/__sim/citizen-actions",
            None,
            Some(bad.to_string()),
            "application/json",
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(kit.sim.request_log().is_empty(), "hooks are not İYS calls");
}
