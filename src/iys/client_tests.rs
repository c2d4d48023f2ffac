//! The client against small scripted axum servers on 127.0.0.1:0.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Duration as CDuration, Utc};
use serde_json::{Value, json};

use super::client::{IysClient, IysClientConfig, PullSource, RecordingObserver};
use super::errors::{ErrorClass, IysErrorKind};
use super::fake_server::{Reply, Seen, reply, serve};
use super::wire::ConsentRequest;
use crate::domain::time::ManualClock;
use crate::domain::{ConsentType, Recipient, RecipientType, Source, Status};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn client(base_url: &str, clock: &ManualClock) -> (IysClient, Arc<RecordingObserver>) {
    let obs = Arc::new(RecordingObserver::default());
    let c = IysClient::new(
        IysClientConfig {
            base_url: base_url.to_string(),
            username: "api@firma.com".into(),
            password: "s3cret".into(),
            iys_code: 600000,
            timeout: Duration::from_secs(5),
        },
        Arc::new(clock.clone()),
    )
    .unwrap()
    .with_observer(obs.clone());
    (c, obs)
}

/// A client whose clock starts at [`t0`].
fn client_at_t0(base_url: &str) -> (ManualClock, IysClient, Arc<RecordingObserver>) {
    let clock = ManualClock::new(t0());
    let (c, obs) = client(base_url, &clock);
    (clock, c, obs)
}

/// İYS's refusal of an access token it no longer accepts.
fn h351() -> Reply {
    reply(
        401,
        json!({"errors":[{"code":"H351","message":"Eksik veya geçersiz jeton!"}]}),
    )
}

fn consent(n: u32) -> ConsentRequest {
    let r = Recipient::parse(&format!("+90532{:07}", 1_000_000 + n)).unwrap();
    ConsentRequest::new(
        &r,
        RecipientType::Bireysel,
        ConsentType::Mesaj,
        Status::Onay,
        Source::HsMesaj,
        t0(),
    )
    .unwrap()
}

/// A token endpoint that numbers its tokens (a1/r1, a2/r2, …) and an API that answers 200.
fn standard(seen: &Seen, counter: &Mutex<u32>) -> Reply {
    if seen.path == "/oauth2/token" {
        let mut n = counter.lock().unwrap();
        *n += 1;
        return reply(
            200,
            json!({"access_token": format!("a{n}"), "refresh_token": format!("r{n}"),
                   "expires_in": 7200, "refresh_expires_in": 14400, "token_type": "bearer"}),
        );
    }
    reply(
        200,
        json!({"transactionId": "tx", "creationDate": "2026-03-02 12:00:00"}),
    )
}

#[tokio::test]
async fn hundred_concurrent_calls_make_one_token_request() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| standard(s, &n)).await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    let c = Arc::new(c);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.add_consent_v2(600000, &consent(i)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().transaction_id, "tx");
    }
    assert_eq!(fake.token_grants(), ["password"]);
    assert_eq!(fake.api_calls(), 100);
    assert!(
        fake.seen()
            .iter()
            .filter(|s| s.path != "/oauth2/token")
            .all(|s| s.auth.as_deref() == Some("Bearer a1"))
    );
}

#[tokio::test]
async fn refresh_rotates_then_falls_back_to_password() {
    let n = Arc::new(Mutex::new(0));
    let refuse_refresh = Arc::new(Mutex::new(false));
    let (n2, rr) = (n.clone(), refuse_refresh.clone());
    let fake = serve(move |s| {
        if s.body["grant_type"] == "refresh_token" && *rr.lock().unwrap() {
            return reply(
                400,
                json!({"error":"invalid_grant","error_description":"Yenileme jetonu geçersiz."}),
            );
        }
        standard(s, &n2)
    })
    .await;
    let (clock, c, _) = client_at_t0(&fake.base_url);
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    // Still more than five minutes of access life: no token call.
    clock.advance(CDuration::minutes(114));
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    assert_eq!(fake.token_grants().len(), 1);
    // Under five minutes left: refresh with r1, then with the rotated r2.
    clock.advance(CDuration::minutes(2));
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    clock.advance(CDuration::minutes(116));
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    *refuse_refresh.lock().unwrap() = true;
    clock.advance(CDuration::minutes(116));
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    assert_eq!(
        fake.token_grants(),
        [
            "password",
            "refresh:r1",
            "refresh:r2",
            "refresh:r3",
            "password"
        ]
    );
    let last = fake.seen().last().unwrap().clone();
    assert_eq!(last.auth.as_deref(), Some("Bearer a4"));
}

#[tokio::test]
async fn expired_refresh_token_goes_straight_to_password() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| standard(s, &n)).await;
    let (clock, c, _) = client_at_t0(&fake.base_url);
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    clock.advance(CDuration::hours(5));
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    assert_eq!(fake.token_grants(), ["password", "password"]);
}

#[tokio::test]
async fn a_401_is_retried_once_with_a_fresh_token() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| {
        if s.path != "/oauth2/token" && s.auth.as_deref() == Some("Bearer a1") {
            return h351();
        }
        standard(s, &n)
    })
    .await;
    let (_, c, obs) = client_at_t0(&fake.base_url);
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    assert_eq!(fake.token_grants(), ["password", "refresh:r1"]);
    let calls: Vec<_> = obs
        .calls()
        .iter()
        .map(|c| (c.operation, c.status, c.code.clone()))
        .collect();
    assert_eq!(
        calls,
        [
            ("token", Some(200), None),
            ("add_consent_v2", Some(401), Some("H351".into())),
            ("token", Some(200), None),
            ("add_consent_v2", Some(200), None),
        ]
    );
}

#[tokio::test]
async fn a_second_401_is_auth_expired_without_a_third_try() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| {
        if s.path != "/oauth2/token" {
            return h351();
        }
        standard(s, &n)
    })
    .await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    let e = c.add_consent_v2(1, &consent(1)).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::AuthExpired);
    assert_eq!(e.status, Some(401));
    assert_eq!(fake.api_calls(), 2);
}

#[tokio::test]
async fn h084_silences_token_requests_for_an_hour() {
    let limited = Arc::new(Mutex::new(true));
    let n = Arc::new(Mutex::new(0));
    let l2 = limited.clone();
    let fake = serve(move |s| {
        if s.path == "/oauth2/token" && *l2.lock().unwrap() {
            return Reply {
                retry_after: Some(60),
                ..reply(429, json!({"code":"H084","message":"Saatte kabul edilen kimlik doğrulama istek limitine ulaşıldı."}))
            };
        }
        standard(s, &n)
    })
    .await;
    let (clock, c, _) = client_at_t0(&fake.base_url);
    let e = c.add_consent_v2(1, &consent(1)).await.unwrap_err();
    assert_eq!(
        (e.class(), e.code()),
        (ErrorClass::RateLimited, Some("H084"))
    );
    assert_eq!(e.retry_after, Some(Duration::from_secs(60)));
    *limited.lock().unwrap() = false;
    for (step, left) in [(0, 60), (30, 30), (29, 1)] {
        clock.advance(CDuration::minutes(step));
        let e = c.add_consent_v2(1, &consent(1)).await.unwrap_err();
        assert_eq!(e.kind, IysErrorKind::TokenLockout);
        assert_eq!(
            (e.class(), e.code()),
            (ErrorClass::RateLimited, Some("H084"))
        );
        assert_eq!(e.retry_after, Some(Duration::from_secs(left * 60)));
    }
    assert_eq!(
        fake.seen().len(),
        1,
        "no request of any kind while locked out"
    );
    clock.advance(CDuration::minutes(1));
    c.add_consent_v2(1, &consent(1)).await.unwrap();
    assert_eq!(fake.token_grants(), ["password", "password"]);
}

#[tokio::test]
async fn pull_204_is_none_and_query_is_encoded() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| {
        if s.path.ends_with("/consents/changes") {
            return if s.query.contains("after=") {
                reply(200, json!({"after":"17_b","list":[{"consentDate":"","creationDate":"2026-03-01 10:00:00",
                    "source":"IYS_WEB","recipient":"+905321234567","recipientType":"BIREYSEL",
                    "status":"RET","type":"MESAJ","transactionId":"b"}]}))
            } else {
                reply(204, Value::Null)
            };
        }
        standard(s, &n)
    })
    .await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    assert_eq!(
        c.pull_changes(77, PullSource::Iys, None, 5000)
            .await
            .unwrap(),
        None
    );
    let page = c
        .pull_changes(77, PullSource::Hs, Some("16_a&x=1"), 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.after, "17_b");
    assert_eq!(page.list[0].consent_date, None);
    let q: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.ends_with("changes"))
        .map(|s| s.query)
        .collect();
    assert_eq!(
        q,
        [
            "source=IYS&limit=1000",
            "source=HS&limit=10&after=16_a%26x%3D1"
        ]
    );
    assert_eq!(
        fake.seen()[1].path,
        "/sps/600000/brands/77/consents/changes"
    );
}

#[tokio::test]
async fn poll_empty_array_and_bad_request_ids() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| {
        if s.path.contains("/consents/request/") {
            return reply(200, json!([]));
        }
        standard(s, &n)
    })
    .await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    let id = "5a2edd8e-dd6e-4293-b09b-6180b2c5d021";
    assert!(c.poll_batch_v2(5, id).await.unwrap().is_empty());
    assert_eq!(
        fake.seen()[1].path,
        format!("/v2/sps/600000/brands/5/consents/request/{id}")
    );
    assert_eq!(fake.seen()[1].method, "GET");
    for bad in ["", "../x", &"a".repeat(37), "a b"] {
        let e = c.poll_batch_v2(5, bad).await.unwrap_err();
        assert_eq!(e.kind, IysErrorKind::InvalidRequest);
    }
    assert_eq!(fake.api_calls(), 1);
}

#[tokio::test]
async fn consent_status_not_found_shapes() {
    let n = Arc::new(Mutex::new(0));
    let mode = Arc::new(Mutex::new(0));
    let m2 = mode.clone();
    let fake = serve(move |s| {
        if s.path.ends_with("/consents/status") {
            return match *m2.lock().unwrap() {
                0 => reply(
                    404,
                    json!({"errors":[{"code":"H999","message":"kayıt yok"}]}),
                ),
                1 => reply(204, Value::Null),
                2 => reply(200, Value::Null),
                3 => reply(
                    404,
                    json!({"errors":[{"code":"H018","message":"Marka:5 bulunamadı."}]}),
                ),
                _ => reply(
                    200,
                    json!({"consentDate":"2026-03-01 10:00:00","creationDate":"2026-03-01 10:00:01",
                    "source":"HS_WEB","recipient":"+905321234567","recipientType":"BIREYSEL",
                    "status":"ONAY","type":"MESAJ","transactionId":"t"}),
                ),
            };
        }
        standard(s, &n)
    })
    .await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    let r = Recipient::parse("+905321234567").unwrap();
    let q = || c.consent_status(5, &r, RecipientType::Bireysel, ConsentType::Mesaj);
    for m in 0..3 {
        *mode.lock().unwrap() = m;
        assert_eq!(q().await.unwrap(), None, "mode {m}");
    }
    *mode.lock().unwrap() = 3;
    assert_eq!(q().await.unwrap_err().code(), Some("H018"));
    *mode.lock().unwrap() = 4;
    assert_eq!(q().await.unwrap().unwrap().status, Status::Onay);
    let body = &fake.seen()[1].body;
    assert_eq!(
        body,
        &json!({"recipient":"+905321234567","recipientType":"BIREYSEL","type":"MESAJ"})
    );
}

#[tokio::test]
async fn multi_status_dedupes_and_skips_empty() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| {
        if s.path.contains("/status/") {
            return reply(200, json!({"requestId":"r","list":["+905321000001"]}));
        }
        standard(s, &n)
    })
    .await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    assert!(
        c.multi_status(5, RecipientType::Bireysel, ConsentType::Mesaj, &[])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        fake.seen().is_empty(),
        "an empty query costs nothing, not even a token"
    );
    let rs = ["+905321000001", "+905321000002", "+905321000001"].map(String::from);
    let onay = c
        .multi_status(5, RecipientType::Tacir, ConsentType::Arama, &rs)
        .await
        .unwrap();
    assert_eq!(onay, ["+905321000001"]);
    let s = &fake.seen()[1];
    assert_eq!(s.path, "/sps/600000/brands/5/consents/TACIR/status/ARAMA");
    assert_eq!(
        s.body,
        json!({"recipients":["+905321000001","+905321000002"]})
    );
}

#[tokio::test]
async fn batch_is_checked_before_sending() {
    let n = Arc::new(Mutex::new(0));
    let fake = serve(move |s| {
        if s.path.ends_with("/consents/request") {
            return reply(202, json!({"requestId":"5a2e","subRequests":[{"subrequestId":"x"},{"subRequestId":"y"}]}));
        }
        standard(s, &n)
    })
    .await;
    let (_, c, _) = client_at_t0(&fake.base_url);
    let dup = [consent(1), consent(2), consent(1)];
    assert_eq!(
        c.add_batch_v2(5, &dup).await.unwrap_err().kind,
        IysErrorKind::InvalidRequest
    );
    assert_eq!(
        c.add_batch_v2(5, &[]).await.unwrap_err().class(),
        ErrorClass::Permanent
    );
    let too_many: Vec<_> = (0..1001).map(consent).collect();
    assert!(c.add_batch_v2(5, &too_many).await.is_err());
    assert!(fake.seen().is_empty());
    let ok = c.add_batch_v2(5, &[consent(1), consent(2)]).await.unwrap();
    assert_eq!(ok.request_id, "5a2e");
    assert_eq!(ok.sub_requests[0].sub_request_id.as_deref(), Some("x"));
    let sent = &fake.seen()[1];
    assert_eq!(sent.path, "/v2/sps/600000/brands/5/consents/request");
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn errors_carry_status_items_and_retry_after() {
    let n = Arc::new(Mutex::new(0));
    let mode = Arc::new(Mutex::new(0));
    let m2 = mode.clone();
    let fake = serve(move |s| {
        if s.path == "/oauth2/token" {
            return standard(s, &n);
        }
        match *m2.lock().unwrap() {
            0 => Reply {
                retry_after: Some(2),
                ..reply(429, json!({"errors":[{"code":"H124","message":"Saniyede ..."}]}))
            },
            1 => reply(422, json!({"errors":[{"code":"H467","message":"Üç iş günü öncesinde alınan izinler kaydedilemez.",
                "location":["consentDate"],"value":"2026-02-20 10:00:00"}]})),
            2 => reply(400, json!({"errors":[{"code":"H175","message":"İlk defa ..."}]})),
            3 => reply(503, json!({"errors":[{"code":"H192","message":"İstek zaman aşımına uğradı."}]})),
            _ => reply(200, json!({"unexpected": true})),
        }
    })
    .await;
    let (_, c, obs) = client_at_t0(&fake.base_url);
    let want = [
        (ErrorClass::RateLimited, Some(429)),
        (ErrorClass::TooLate, Some(422)),
        (ErrorClass::NothingToRevoke, Some(400)),
        (ErrorClass::Transient, Some(503)),
        (ErrorClass::Transient, None),
    ];
    for (m, (class, status)) in want.into_iter().enumerate() {
        *mode.lock().unwrap() = m;
        let e = c.add_consent_v2(5, &consent(1)).await.unwrap_err();
        assert_eq!((e.class(), e.status), (class, status), "mode {m}: {e}");
    }
    *mode.lock().unwrap() = 0;
    let e = c.add_consent_v2(5, &consent(1)).await.unwrap_err();
    assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
    let codes: Vec<_> = obs.calls().into_iter().skip(1).map(|c| c.code).collect();
    assert_eq!(
        codes[..4],
        [
            Some("H124".into()),
            Some("H467".into()),
            Some("H175".into()),
            Some("H192".into())
        ]
    );
    for call in obs.calls() {
        assert!(!call.path.contains("532"), "recipient in a logged path");
    }
}

#[tokio::test]
async fn network_failure_is_observed_and_transient() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let (_, c, obs) = client_at_t0(&format!("http://{addr}"));
    let e = c.add_consent_v2(5, &consent(1)).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient);
    let calls = obs.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0].operation,
            calls[0].status,
            calls[0].code.as_deref()
        ),
        ("token", None, Some("NETWORK"))
    );
}
