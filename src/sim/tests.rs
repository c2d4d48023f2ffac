//! Router-level tests: auth, single add, batches, faults and the request log.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::testkit::*;
use super::{SimConfig, SimUser};
use crate::domain::{ConsentType, RecipientType, Status};

const PHONE: &str = "+905321234567";

#[tokio::test]
async fn token_password_grant_json_and_form() {
    let kit = Kit::new();
    let (s, v) = kit
        .token_call(json!({"username":"sim","password":"sim","grant_type":"password"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["expires_in"], 7200);
    assert_eq!(v["refresh_expires_in"], 14400);
    assert_eq!(v["token_type"], "bearer");
    let form = "grant_type=password&username=sim&password=sim".to_string();
    let (s, v) = kit
        .raw(
            "POST",
            "/oauth2/token",
            None,
            Some(form),
            "application/x-www-form-urlencoded",
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn token_oauth_errors() {
    let kit = Kit::new();
    let cases = [
        (
            json!({"username":"sim","password":"x","grant_type":"password"}),
            "invalid_request",
            "Kullanıcı kimlik bilgileri geçersiz.",
        ),
        (
            json!({"username":"sim","password":"sim"}),
            "invalid_request",
            "Giriş yöntemi belirtilmemiş.",
        ),
        (
            json!({"grant_type":"client_credentials"}),
            "invalid_request",
            "Bilinmeyen giriş yöntemi.",
        ),
        (
            json!({"grant_type":""}),
            "invalid_grant",
            "Giriş yöntemi boş olamaz.",
        ),
        (
            json!({"grant_type":"password","password":"sim"}),
            "invalid_request",
            "Kullanıcı adı verilmemiş.",
        ),
        (
            json!({"grant_type":"password","username":"sim"}),
            "invalid_request",
            "Şifre verilmemiş.",
        ),
        (
            json!({"grant_type":"refresh_token"}),
            "invalid_request",
            "Yenileme jetonu verilmemiş.",
        ),
    ];
    for (body, error, text) in cases {
        let (s, v) = kit.token_call(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["error"], error, "{body}");
        assert_eq!(v["error_description"], text, "{body}");
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_and_expire() {
    let kit = Kit::new();
    let (_, v) = kit
        .token_call(json!({"username":"sim","password":"sim","grant_type":"password"}))
        .await;
    let r1 = v["refresh_token"].as_str().unwrap().to_string();
    let (s, v2) = kit
        .token_call(json!({"grant_type":"refresh_token","refresh_token":r1}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let r2 = v2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    let (s, v) = kit
        .token_call(json!({"grant_type":"refresh_token","refresh_token":r1}))
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "old refresh token is spent"
    );
    kit.advance(4 * 3600);
    let (s, _) = kit
        .token_call(json!({"grant_type":"refresh_token","refresh_token":r2}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "refresh token lives 4 h");
}

#[tokio::test]
async fn access_token_expires_after_two_hours() {
    let kit = Kit::new();
    let body = consent(&kit, PHONE, "MESAJ", "ONAY", 1);
    assert_eq!(
        kit.post(&b("/consents"), body.clone()).await.0,
        StatusCode::OK
    );
    kit.advance(2 * 3600);
    let (s, v) = kit.post(&b("/consents"), body).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "H351"));
    assert_eq!(v["errors"][0]["message"], "Eksik veya geçersiz jeton!");
}

#[tokio::test]
async fn missing_token_and_foreign_codes() {
    let kit = Kit::new();
    let (s, v) = kit
        .raw(
            "POST",
            &b("/consents"),
            None,
            Some("{}".into()),
            "application/json",
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "H351"));
    let (s, v) = kit.post("/sps/1/brands/700000/consents", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "H353"));
    assert_eq!(
        v["errors"][0]["message"],
        "iysCode, kullanıcı izinleriyle eşleştirilemiyor"
    );
    let (s, v) = kit.post("/sps/700000/brands/5/consents", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "H353"));
    let (s, v) = kit.post("/sps/abc/brands/700000/consents", json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H190"));
}

#[tokio::test]
async fn user_of_another_hs_is_h353() {
    let mut cfg = SimConfig {
        rate_limits_enabled: false,
        ..Default::default()
    };
    cfg.users.push(SimUser {
        username: "other".into(),
        password: "p".into(),
        iys_code: 1,
    });
    let kit = Kit::with(cfg);
    let (_, v) = kit
        .token_call(json!({"username":"other","password":"p","grant_type":"password"}))
        .await;
    let t = v["access_token"].as_str().unwrap();
    let (s, v) = kit
        .raw(
            "POST",
            &b("/consents"),
            Some(t),
            Some("{}".into()),
            "application/json",
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "H353"));
}

#[tokio::test]
async fn single_add_shape_and_rules() {
    let kit = Kit::new();
    let (s, v) = kit
        .post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "RET", 5))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "H175"));
    let (s, v) = kit
        .post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 5))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["transactionId"].as_str().unwrap().len(), 64);
    assert_eq!(v["creationDate"], "2026-03-04 12:00:00");
    let (s, v) = kit
        .post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "RET", 10))
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "H178"),
        "older date"
    );
    kit.advance(1);
    assert_eq!(
        kit.post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "RET", 1))
            .await
            .0,
        StatusCode::OK
    );
    kit.advance(1);
    let (s, v) = kit
        .post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "RET", 0))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "H174"));
    let rec = kit
        .sim
        .record(BRAND, PHONE, RecipientType::Bireysel, ConsentType::Mesaj)
        .unwrap();
    assert_eq!(rec.status, Status::Ret);
    assert_eq!(kit.sim.movements(BRAND).len(), 2);
}

#[tokio::test]
async fn single_add_validation_errors() {
    let kit = Kit::new();
    let (s, v) = kit
        .raw(
            "POST",
            &b("/consents"),
            Some(&kit.token().await),
            Some("{nope".into()),
            "application/json",
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "H014"));
    let (s, v) = kit.post(&b("/consents"), json!([1])).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "H085"));
    let mut bad = consent(&kit, "9055436100000000", "MESAJ", "ONAY", 1);
    bad["extra"] = json!(true);
    let (s, v) = kit.post(&b("/consents"), bad).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let codes: Vec<_> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["H118", "H160", "H121"]);
    let mut old = consent(&kit, PHONE, "MESAJ", "ONAY", 0);
    old["consentDate"] = json!("2026-02-27 11:00:00");
    let (s, v) = kit.post(&b("/consents"), old).await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H467"));
    assert_eq!(v["errors"][0]["location"][0], "consentDate");
    let mut retailer = consent(&kit, PHONE, "MESAJ", "ONAY", 1);
    retailer["retailerCode"] = json!(11223344);
    let (s, v) = kit.post(&b("/consents"), retailer).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "H180"));
}

#[tokio::test]
async fn emails_are_stored_lower_case() {
    let kit = Kit::new();
    let (s, _) = kit
        .post(
            &b("/consents"),
            consent(&kit, "Ali.Veli@Firma.COM", "EPOSTA", "ONAY", 1),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        kit.sim
            .record(
                BRAND,
                "ali.veli@firma.com",
                RecipientType::Bireysel,
                ConsentType::Eposta
            )
            .is_some()
    );
    assert_eq!(kit.sim.movements(BRAND)[0].recipient, "ali.veli@firma.com");
}

#[tokio::test]
async fn v2_is_idempotent_v1_is_not() {
    let kit = Kit::new();
    let body = consent(&kit, PHONE, "ARAMA", "ONAY", 1);
    let (_, a) = kit.post(&v2("/consents"), body.clone()).await;
    kit.advance(5);
    let (s, b2) = kit.post(&v2("/consents"), body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(a, b2, "same body → same transactionId and creationDate");
    let (s, v) = kit.post(&b("/consents"), body).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "H178"),
        "v1 resend falls under R3"
    );
    assert_eq!(kit.sim.movements(BRAND).len(), 1);
}

#[tokio::test]
async fn consent_limit_h525() {
    let kit = Kit::with(SimConfig {
        consent_limit: Some(1),
        rate_limits_enabled: false,
        ..Default::default()
    });
    assert_eq!(
        kit.post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 2))
            .await
            .0,
        StatusCode::OK
    );
    kit.advance(1);
    assert_eq!(
        kit.post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 1))
            .await
            .0,
        StatusCode::OK,
        "updates don't count"
    );
    let (s, v) = kit
        .post(&b("/consents"), consent(&kit, PHONE, "ARAMA", "ONAY", 1))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H525"));
}

fn batch_of(kit: &Kit, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| consent(kit, &format!("a{i}@firma.com"), "EPOSTA", "ONAY", 1))
            .collect(),
    )
}

#[tokio::test]
async fn batch_sync_validation() {
    let kit = Kit::new();
    let (s, v) = kit
        .post(&b("/consents/request"), batch_of(&kit, 1001))
        .await;
    assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H091"));
    let (s, v) = kit.post(&b("/consents/request"), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "H092"));
    let mut list = batch_of(&kit, 3);
    list[2] = list[0].clone();
    list[1]["type"] = json!("EMAIL");
    let (s, v) = kit.post(&b("/consents/request"), list).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errors"][0]["code"], "H117");
    assert_eq!(v["errors"][0]["index"], 1);
    assert_eq!(v["errors"][1]["code"], "H194");
    assert_eq!(v["errors"][1]["index"], 2);
}

#[tokio::test]
async fn batch_is_processed_after_the_delay() {
    let kit = Kit::new();
    let mut list = batch_of(&kit, 2);
    list[1] = consent(&kit, PHONE, "MESAJ", "RET", 1);
    let (s, v) = kit.post(&b("/consents/request"), list).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let rid = v["requestId"].as_str().unwrap().to_string();
    assert_eq!(rid.len(), 36);
    assert_eq!(v["subRequests"][1]["recipient"], PHONE);
    assert_eq!(v["subRequests"][0]["creationDate"], "2026-03-04 12:00:00");
    let path = b(&format!("/consents/request/{rid}"));
    kit.advance(299);
    assert_eq!(kit.get(&path).await, (StatusCode::OK, json!([])));
    kit.advance(1);
    let (_, r) = kit.get(&path).await;
    assert_eq!(r[0]["index"], 0);
    assert_eq!(r[0]["status"], "success");
    assert_eq!(r[0]["requestId"], rid.as_str());
    assert_eq!(r[0]["transactionId"].as_str().unwrap().len(), 64);
    assert_eq!(r[1]["status"], "failure");
    assert_eq!(r[1]["error"]["code"], "H175");
    assert!(
        kit.sim
            .record(
                BRAND,
                "a0@firma.com",
                RecipientType::Bireysel,
                ConsentType::Eposta
            )
            .is_some()
    );
}

#[tokio::test]
async fn v2_batch_resend_points_at_the_original() {
    let kit = Kit::new();
    let list = batch_of(&kit, 1);
    let (_, v) = kit.post(&v2("/consents/request"), list.clone()).await;
    let first = v["requestId"].as_str().unwrap().to_string();
    kit.sim.process_batches_now().await;
    let (_, v) = kit.post(&v2("/consents/request"), list).await;
    let second = v["requestId"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    kit.sim.process_batches_now().await;
    let (_, r) = kit.get(&v2(&format!("/consents/request/{second}"))).await;
    assert_eq!(r[0]["status"], "success");
    assert_eq!(r[0]["isAddConsentV2Service"], true);
    assert_eq!(
        r[0]["originalRequestInformation"]["requestId"],
        first.as_str()
    );
    assert_eq!(kit.sim.movements(BRAND).len(), 1);
}

#[tokio::test]
async fn poll_request_id_checks() {
    let kit = Kit::new();
    for (rid, c) in [
        ("a".repeat(37), "H198"),
        ("abcde".into(), "H199"),
        ("12345".into(), "H400"),
    ] {
        let (s, v) = kit.get(&b(&format!("/consents/request/{rid}"))).await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, c));
    }
    let (s, v) = kit
        .get(&b("/consents/request/5a2edd8e-dd6e-4293-b09b-6180b2c5d021"))
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn outage_fail_next_and_request_log() {
    let kit = Kit::new();
    let body = consent(&kit, PHONE, "MESAJ", "ONAY", 1);
    kit.token().await;
    kit.sim.fail_next(1, 503, "H192");
    let (s, v) = kit.post(&b("/consents"), body.clone()).await;
    assert_eq!((s, code(&v)), (StatusCode::SERVICE_UNAVAILABLE, "H192"));
    assert_eq!(
        kit.post(&b("/consents"), body.clone()).await.0,
        StatusCode::OK
    );
    kit.sim.set_outage(Some((429, "H124".into())));
    for _ in 0..3 {
        let (s, v) = kit.post(&b("/consents"), body.clone()).await;
        assert_eq!((s, code(&v)), (StatusCode::TOO_MANY_REQUESTS, "H124"));
    }
    kit.sim.set_outage(None);
    let log = kit.sim.request_log();
    assert_eq!(log.len(), 6, "token + 5 consent calls");
    assert_eq!(log[1].code.as_deref(), Some("H192"));
    assert_eq!(log[2].status, 200);
    assert_eq!(
        log.iter().filter(|l| l.path.ends_with("/consents")).count(),
        5
    );
}

/// Every read (single and multi status, history, the daily changes file, pull and the Rust
/// accessors) answers from processed state: a movement waiting in a batch is invisible until
/// the batch is processed, as in İYS, where a 202 means only "list accepted".
#[tokio::test]
async fn batch_items_are_invisible_until_processed() {
    let kit = Kit::with(SimConfig {
        rate_limits_enabled: false,
        pull_lag: 0,
        ..Default::default()
    });
    const OTHER: &str = "+905321234568";
    // A stored ONAY that the batch turns into RET, and a new address the batch creates.
    let (s, _) = kit
        .post(&b("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 10))
        .await;
    assert_eq!(s, StatusCode::OK);
    kit.advance(1);
    let list = json!([
        consent(&kit, PHONE, "MESAJ", "RET", 1),
        consent(&kit, OTHER, "MESAJ", "ONAY", 1),
    ]);
    let (s, v) = kit.post(&b("/consents/request"), list).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let status_of = |r: &str| json!({"recipient": r, "recipientType": "BIREYSEL", "type": "MESAJ"});
    let multi = json!({"recipients": [PHONE, OTHER]});
    let history_len = |v: &Value| v["list"].as_array().map_or(0, Vec::len);
    let today = "/changes/2026-03-04/file";
    let csv_rows = |v: &Value| v.as_str().unwrap_or("").lines().count() - 1;

    for wait in [0, 299] {
        kit.advance(wait);
        let (s, v) = kit.post(&b("/consents/status"), status_of(PHONE)).await;
        assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ONAY")));
        let (s, _) = kit.post(&b("/consents/status"), status_of(OTHER)).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, v) = kit
            .post(&b("/consents/BIREYSEL/status/MESAJ"), multi.clone())
            .await;
        assert_eq!(v["list"], json!([PHONE]), "after {wait} s");
        let (_, v) = kit.post(&b("/consents/history"), status_of(PHONE)).await;
        assert_eq!(history_len(&v), 1);
        let (_, v) = kit.post(&b("/consents/history"), status_of(OTHER)).await;
        assert_eq!(history_len(&v), 0);
        let (_, v) = kit.get(&b(today)).await;
        assert_eq!(csv_rows(&v), 1, "{v}");
        let (_, v) = kit.get(&b("/consents/changes?source=HS")).await;
        assert_eq!(history_len(&v), 1);
        let rec = kit
            .sim
            .record(BRAND, PHONE, RecipientType::Bireysel, ConsentType::Mesaj);
        assert_eq!(rec.map(|r| r.status), Some(Status::Onay));
        assert_eq!(kit.sim.movements(BRAND).len(), 1);
    }

    // The poll delay has passed: the next call of any kind sees both movements.
    kit.advance(1);
    let (_, v) = kit.post(&b("/consents/status"), status_of(PHONE)).await;
    assert_eq!(v["status"], "RET");
    let (_, v) = kit.post(&b("/consents/BIREYSEL/status/MESAJ"), multi).await;
    assert_eq!(v["list"], json!([OTHER]));
    let (_, v) = kit.post(&b("/consents/history"), status_of(PHONE)).await;
    assert_eq!(history_len(&v), 2);
    let (_, v) = kit.get(&b(today)).await;
    assert_eq!(csv_rows(&v), 3);
    assert_eq!(kit.sim.movements(BRAND).len(), 3);
}
