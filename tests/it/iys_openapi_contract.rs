//! Contract test: every request body the İYS client sends, captured from a fake server, must
//! satisfy the request schema of the matching operation in the official OpenAPI 3.2.0 document
//! (a copy lives in tests/data so that the build never reads outside the repository).
//!
//! The validator is a small one written for the subset the İYS request schemas use ($ref, oneOf,
//! type, properties, required, enum, items, maxItems, format, maximum) rather than the
//! `jsonschema` crate, because two parts of the document must be read the İYS way, not the
//! JSON-Schema way:
//! - `format: date-time` on `consentDate` is a documentation artefact; the wire format is
//!   `YYYY-MM-DD HH:mm:ss` (docs/iys-api-notes.md §2, §10.8), checked with that exact shape.
//! - `retailerCode` has `maximum: 8`, which means "8 digits" (§3.1), not a value of at most 8.
//!
//! Request objects are treated as closed although the schemas do not say
//! `additionalProperties: false`: İYS answers an unknown key with 422 H118.

#[allow(dead_code)]
#[path = "../../src/iys/fake_server.rs"]
mod fake_server;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Duration as CDuration, NaiveDateTime, Utc};
use serde_json::{Value, json};

use fake_server::{Seen, reply, serve};
use iys_relay::domain::time::ManualClock;
use iys_relay::domain::{ConsentType, Recipient, RecipientType, Source, Status};
use iys_relay::iys::wire::ConsentRequest;
use iys_relay::iys::{IysClient, IysClientConfig, PullSource};

fn spec() -> Value {
    let text = include_str!("../data/iys-openapi-3.2.0.json");
    serde_json::from_str(text).expect("the stored OpenAPI document is JSON")
}

/// Follows `$ref: "#/components/schemas/X"` chains.
fn resolve<'a>(spec: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = s.get("$ref").and_then(Value::as_str) else {
            return s;
        };
        let ptr = r.strip_prefix('#').expect("local $ref");
        s = spec
            .pointer(ptr)
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
    }
    panic!("$ref chain too deep")
}

/// The operation whose path template matches `path`, preferring the most literal segments.
fn operation<'a>(spec: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut best: Option<(usize, &str, &Value)> = None;
    for (template, ops) in spec["paths"].as_object()? {
        let t: Vec<&str> = template.trim_matches('/').split('/').collect();
        if t.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let fits = t.iter().zip(&segs).all(|(a, b)| {
            let is_param = a.starts_with('{') && a.ends_with('}');
            literal += usize::from(!is_param);
            is_param && !b.is_empty() || a == b
        });
        let Some(op) = ops.get(method.to_ascii_lowercase()) else {
            continue;
        };
        if fits && best.is_none_or(|(l, _, _)| literal > l) {
            best = Some((literal, template.as_str(), op));
        }
    }
    best.map(|(_, t, op)| (t, op))
}

fn is_iys_datetime(s: &str) -> bool {
    // ^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$ and a real calendar instant.
    let shape = s.len() == 19
        && s.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == ' ',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        });
    shape && NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
}

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

/// Appends one message per violation of `schema` by `v` (at JSON path `at`).
fn validate(spec: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let s = resolve(spec, schema);
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let passing = alts
            .iter()
            .filter(|alt| {
                let mut e = Vec::new();
                validate(spec, alt, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if passing != 1 {
            errs.push(format!(
                "{at}: matches {passing} of {} oneOf schemas",
                alts.len()
            ));
        }
    }
    if let Some(ty) = s.get("type").and_then(Value::as_str)
        && !type_ok(ty, v)
    {
        errs.push(format!("{at}: expected {ty}, got {v}"));
        return;
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        errs.push(format!("{at}: {v} not in enum"));
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let req = req.as_str().unwrap_or_default();
            if !obj.contains_key(req) {
                errs.push(format!("{at}: required {req} missing"));
            }
        }
        if let Some(props) = props {
            for (k, val) in obj {
                match props.get(k) {
                    Some(p) => validate(spec, p, val, &format!("{at}.{k}"), errs),
                    None => errs.push(format!("{at}: unknown property {k} (H118)")),
                }
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && items.len() as u64 > max
        {
            errs.push(format!("{at}: {} items > maxItems {max}", items.len()));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(spec, item_schema, item, &format!("{at}[{i}]"), errs);
            }
        }
    }
    if let Some(text) = v.as_str() {
        match s.get("format").and_then(Value::as_str) {
            Some("date-time") if !is_iys_datetime(text) => {
                errs.push(format!("{at}: {text:?} is not YYYY-MM-DD HH:mm:ss"));
            }
            _ => {}
        }
    }
    if let (Some(n), Some(max)) = (v.as_i64(), s.get("maximum").and_then(Value::as_i64)) {
        let ok = if at.ends_with(".retailerCode") && max == 8 {
            (10_000_000..=99_999_999).contains(&n)
        } else {
            n <= max
        };
        if !ok {
            errs.push(format!("{at}: {n} breaks maximum {max}"));
        }
    }
}

fn request_schema(op: &Value) -> &Value {
    &op["requestBody"]["content"]["application/json"]["schema"]
}

fn check(spec: &Value, method: &str, path: &str, body: &Value) -> Vec<String> {
    let Some((_, op)) = operation(spec, method, path) else {
        return vec![format!("{method} {path}: no such operation")];
    };
    let mut errs = Vec::new();
    validate(spec, request_schema(op), body, "$", &mut errs);
    errs
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn consent(
    r: &str,
    rt: RecipientType,
    t: ConsentType,
    status: Status,
    src: Source,
) -> ConsentRequest {
    ConsentRequest::new(&Recipient::parse(r).unwrap(), rt, t, status, src, t0()).unwrap()
}

/// Runs every client operation against a fake İYS and returns what it received.
async fn capture() -> Vec<Seen> {
    let n = Arc::new(Mutex::new(0u32));
    let fake = serve(move |s| {
        let p = s.path.as_str();
        if p == "/oauth2/token" {
            let mut n = n.lock().unwrap();
            *n += 1;
            return reply(
                200,
                json!({"access_token": format!("a{n}"), "refresh_token": format!("r{n}"),
                "expires_in": 7200, "refresh_expires_in": 14400, "token_type": "bearer"}),
            );
        }
        if p.ends_with("/consents/request") {
            return reply(
                202,
                json!({"requestId":"5a2edd8e-dd6e-4293-b09b-6180b2c5d021","subRequests":[]}),
            );
        }
        if p.contains("/consents/request/") {
            return reply(200, json!([]));
        }
        if p.ends_with("/consents/status") {
            return reply(404, json!({"errors":[]}));
        }
        if p.contains("/status/") {
            return reply(200, json!({"requestId":"x","list":[]}));
        }
        if p.ends_with("/consents/changes") {
            return reply(204, Value::Null);
        }
        reply(
            200,
            json!({"transactionId":"tx","creationDate":"2026-03-02 12:00:00"}),
        )
    })
    .await;
    let clock = ManualClock::new(t0());
    let c = IysClient::new(
        IysClientConfig {
            base_url: fake.base_url.clone(),
            username: "api@firma.com".into(),
            password: "s3cret".into(),
            iys_code: 600000,
            timeout: Duration::from_secs(5),
        },
        Arc::new(clock.clone()),
    )
    .unwrap();
    let (b, tacir) = (RecipientType::Bireysel, RecipientType::Tacir);
    let sms = consent(
        "+905321234567",
        b,
        ConsentType::Mesaj,
        Status::Onay,
        Source::HsMesaj,
    );
    c.add_consent_v2(600000, &sms).await.unwrap();
    let with_retailer = consent(
        "kisi@firma.com.tr",
        tacir,
        ConsentType::Eposta,
        Status::Ret,
        Source::HsKarar,
    )
    .with_retailer(Some(11223344), vec![22233344, 44222419]);
    c.add_consent_v2(600000, &with_retailer).await.unwrap();
    let batch = [
        sms.clone(),
        consent(
            "+902121230000",
            b,
            ConsentType::Arama,
            Status::Ret,
            Source::HsCagriMerkezi,
        ),
        consent(
            "kisi@firma.com.tr",
            b,
            ConsentType::Eposta,
            Status::Onay,
            Source::HsWeb,
        ),
    ];
    c.add_batch_v2(600000, &batch).await.unwrap();
    let r = Recipient::parse("+905321234567").unwrap();
    c.consent_status(600000, &r, b, ConsentType::Mesaj)
        .await
        .unwrap();
    let many = ["+905321234567".to_string(), "+905321234568".to_string()];
    c.multi_status(600000, b, ConsentType::Mesaj, &many)
        .await
        .unwrap();
    // Under five minutes of access life left: the next call refreshes.
    clock.advance(CDuration::minutes(116));
    c.poll_batch_v2(600000, "5a2edd8e-dd6e-4293-b09b-6180b2c5d021")
        .await
        .unwrap();
    c.pull_changes(600000, PullSource::Iys, Some("1597740617_632c"), 1000)
        .await
        .unwrap();
    fake.seen()
}

#[tokio::test]
async fn every_request_the_client_sends_fits_the_openapi_schema() {
    let spec = spec();
    let seen = capture().await;
    let mut ops = BTreeSet::new();
    let mut failures = Vec::new();
    for s in &seen {
        let (template, op) = operation(&spec, &s.method, &s.path)
            .unwrap_or_else(|| panic!("{} {} is not in the spec", s.method, s.path));
        ops.insert(op["operationId"].as_str().unwrap_or(template).to_string());
        if op.get("requestBody").is_some() {
            let mut errs = Vec::new();
            validate(&spec, request_schema(op), &s.body, "$", &mut errs);
            failures.extend(
                errs.into_iter()
                    .map(|e| format!("{} {template}: {e}", s.method)),
            );
        } else {
            assert!(s.body.is_null(), "{} {template} sent a body", s.method);
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query")
                .filter_map(|p| p["name"].as_str())
                .collect();
            for pair in s.query.split('&').filter(|q| !q.is_empty()) {
                let name = pair.split('=').next().unwrap_or_default();
                assert!(
                    declared.contains(&name),
                    "{template}: undeclared query {name}"
                );
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    let want = [
        "createToken2",
        "addConsentV2",
        "addBatchConsentV2",
        "searchRequestDetailsV2",
        "consentDetail",
        "batchConsentStatus",
        "PullPerBrandCode",
    ];
    for w in want {
        assert!(ops.contains(w), "operation {w} not exercised: {ops:?}");
    }
    let grants: BTreeSet<_> = seen
        .iter()
        .filter_map(|s| s.body.get("grant_type").and_then(Value::as_str))
        .collect();
    assert_eq!(grants, BTreeSet::from(["password", "refresh_token"]));
    let single = seen.iter().find(|s| s.path.ends_with("/consents")).unwrap();
    assert_eq!(
        single.body["consentDate"], "2026-03-02 12:00:00",
        "Istanbul wall clock"
    );
}

#[test]
fn the_specs_own_examples_pass() {
    // Guards against a validator stricter than İYS's own documentation.
    let spec = spec();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let examples = &op["requestBody"]["content"]["application/json"]["examples"];
            let id = op["operationId"].as_str().unwrap_or_default();
            let wanted = [
                "createToken2",
                "addConsentV2",
                "addBatchConsentV2",
                "consentDetail",
                "batchConsentStatus",
            ];
            if !wanted.contains(&id) {
                continue;
            }
            for (name, ex) in examples.as_object().unwrap() {
                let mut errs = Vec::new();
                validate(&spec, request_schema(op), &ex["value"], "$", &mut errs);
                assert!(errs.is_empty(), "{method} {path} example {name}: {errs:?}");
            }
        }
    }
}

#[test]
fn the_validator_rejects_what_iys_rejects() {
    let spec = spec();
    let add = "/v2/sps/1/brands/1/consents";
    let good = json!({"recipient":"+905321234567","type":"MESAJ","source":"HS_MESAJ","status":"ONAY",
        "consentDate":"2026-03-02 12:00:00","recipientType":"BIREYSEL"});
    assert!(check(&spec, "POST", add, &good).is_empty());
    let bad = |patch: Value| {
        let mut v = good.clone();
        for (k, val) in patch.as_object().unwrap() {
            if val.is_null() && k.starts_with('-') {
                v.as_object_mut().unwrap().remove(&k[1..]);
            } else {
                v[k] = val.clone();
            }
        }
        check(&spec, "POST", add, &v)
    };
    let cases = [
        json!({"-status": null}),
        json!({"extra": 1}),
        json!({"status": "RED"}),
        json!({"source": "IYS_MOBIL"}),
        json!({"consentDate": "2018-02-10T09:30Z"}),
        json!({"consentDate": "2026-02-30 12:00:00"}),
        json!({"retailerCode": ""}),
        json!({"retailerCode": null}),
        json!({"retailerCode": 8}),
        json!({"retailerAccess": vec![12345678; 3001]}),
    ];
    for patch in cases {
        assert!(!bad(patch.clone()).is_empty(), "accepted {patch}");
    }
    let batch = "/v2/sps/1/brands/1/consents/request";
    assert!(check(&spec, "POST", batch, &json!([good.clone()])).is_empty());
    assert!(
        !check(&spec, "POST", batch, &good).is_empty(),
        "a batch is an array"
    );
    let token = "/oauth2/token";
    for (body, valid) in [
        (
            json!({"grant_type":"refresh_token","refresh_token":"x"}),
            true,
        ),
        (json!({"grant_type":"password","refresh_token":"x"}), false),
        (json!({"grant_type":"client_credentials"}), false),
    ] {
        let problems = check(&spec, "POST", token, &body);
        assert_eq!(problems.is_empty(), valid, "{body}: {problems:?}");
    }
    let multi = "/sps/1/brands/1/consents/BIREYSEL/status/MESAJ";
    assert!(!check(&spec, "POST", multi, &json!({"recipients":"+905321234567"})).is_empty());
    assert!(
        !check(
            &spec,
            "POST",
            "/sps/1/brands/1/consents/status",
            &json!({"recipient":"a@b.co"})
        )
        .is_empty()
    );
}
