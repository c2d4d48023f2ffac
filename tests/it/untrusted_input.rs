//! Property tests for every parser that sees untrusted input: none may panic, whatever arrives.
//!
//! Case counts are modest so the suite stays fast. For a longer campaign raise them for one run:
//! `PROPTEST_CASES=100000 cargo test --release --test it untrusted_input::` (shrunk failures are kept in
//! tests/it/untrusted_input.proptest-regressions and replayed first on every run).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;
use proptest::prelude::*;
use serde_json::Value;

use iys_relay::channels::sms::generic::{parse_mo, parse_mo_value};
use iys_relay::channels::sms::signature::{
    form_params, twilio_signature, validate_twilio, validate_twilio_json,
};
use iys_relay::channels::twiml;
use iys_relay::channels::twiml_check;
use iys_relay::channels::voice::token;
use iys_relay::domain::Recipient;
use iys_relay::domain::calendar::BusinessCalendar;
use iys_relay::domain::keywords::{BrandWords, KeywordSet, SmsIntent, fold, parse_sms};
use iys_relay::iys::errors::parse_error_body;
use iys_relay::iys::wire;

fn config() -> ProptestConfig {
    // PROPTEST_CASES overrides this default (see the module docs).
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// Text that hits the interesting corners: Turkish letters, combining marks, full-width forms,
/// odd whitespace, emoji, controls, plus anything at all.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \\t\\n\\r\u{a0}\u{3000}iıIİşŞğĞüÜöÖçÇ̇RETEVTHLPİPTAL!?.,🙂＠Ｒ０-９a-z0-9+@%&=]{0,40}",
        prop::collection::vec(any::<char>(), 0..64).prop_map(|v| v.into_iter().collect()),
    ]
}

/// Arbitrary JSON values, nested a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        nasty_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![
            prop::sample::select(vec![
                "messages",
                "from",
                "to",
                "body",
                "text",
                "message",
                "id",
                "msisdn",
                "sender",
                "errors",
                "code",
                "message",
                "status",
                "error",
                "transactionId",
                "subRequestId",
                "list",
                "after",
                "recipient",
                "consentDate",
                "source",
                "type",
            ])
            .prop_map(str::to_string),
            any::<String>(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn brands() -> Vec<BrandWords> {
    vec![
        BrandWords::new(700000, ["DEMO"], KeywordSet::default()),
        BrandWords::new(700001, ["TSA", "TEKNOSA"], KeywordSet::default()),
    ]
}

/// Every typed response İYS (or something in front of it) might send, from `bytes`.
fn decode_all_wire_types(bytes: &[u8]) {
    let _ = serde_json::from_slice::<wire::AddConsentResponse>(bytes);
    let _ = serde_json::from_slice::<wire::BatchAccepted>(bytes);
    let _ = serde_json::from_slice::<Vec<wire::PollItem>>(bytes);
    let _ = serde_json::from_slice::<wire::PollItem>(bytes);
    let _ = serde_json::from_slice::<wire::StatusResponse>(bytes);
    let _ = serde_json::from_slice::<wire::MultiStatusResponse>(bytes);
    let _ = serde_json::from_slice::<wire::PullPage>(bytes);
    let _ = serde_json::from_slice::<wire::PushPayload>(bytes);
    if let Ok(m) = serde_json::from_slice::<wire::Movement>(bytes) {
        let _ = (
            m.parsed_source(),
            m.is_iys(),
            m.consent_at(),
            m.created_at(),
        );
    }
    let _ = serde_json::from_slice::<wire::TokenResponse>(bytes);
}

proptest! {
    #![proptest_config(config())]

    // ---- SMS keywords ----

    #[test]
    fn keyword_parsing_never_panics(body in nasty_text()) {
        let _ = fold(&body);
        let _ = parse_sms(&body, &brands());
        let _ = parse_sms(&body, &brands()[..1]);
        let _ = parse_sms(&body, &[]);
    }

    #[test]
    fn a_bare_ret_is_an_opt_out_whatever_the_padding(
        pad_l in "[ \\t\\n\u{a0}.!]{0,4}",
        pad_r in "[ \\t\\n\u{a0}.!]{0,4}",
        word in prop::sample::select(vec!["RET", "ret", "Ret", "İPTAL", "ıptal", "Iptal"]),
    ) {
        let p = parse_sms(&format!("{pad_l}{word}{pad_r}"), &brands()[..1]);
        prop_assert_eq!(p.intent, SmsIntent::OptOut);
        prop_assert_eq!(p.brand_code, Some(700000));
    }

    #[test]
    fn huge_bodies_are_refused_cheaply(word in "[A-Z]{1,8}", n in 2_000usize..20_000) {
        let p = parse_sms(&word.repeat(n), &brands());
        prop_assert_eq!(p.intent, SmsIntent::Unrecognised);
    }

    // ---- Twilio form decoding and signatures ----

    #[test]
    fn form_decoding_never_panics(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = form_params(&raw);
    }

    #[test]
    fn form_decoding_inverts_encoding(
        pairs in prop::collection::vec((nasty_text(), nasty_text()), 0..8)
    ) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let back = form_params(body.as_bytes()).expect("our own encoding is valid UTF-8");
        prop_assert_eq!(back, pairs);
    }

    #[test]
    fn signatures_verify_only_for_the_signed_request(
        token in "[a-f0-9]{32}",
        url in nasty_text(),
        pairs in prop::collection::vec((nasty_text(), nasty_text()), 0..6),
        header in nasty_text(),
    ) {
        let sig = twilio_signature(&token, &url, &pairs);
        prop_assert!(validate_twilio(&token, &url, &pairs, &sig));
        prop_assert!(!validate_twilio(&token, &url, &pairs, &header) || header == sig);
        let mut other = pairs.clone();
        other.push(("Injected".into(), "1".into()));
        prop_assert!(!validate_twilio(&token, &url, &other, &sig));
    }

    #[test]
    fn json_signature_check_never_panics(
        url in nasty_text(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        header in nasty_text(),
        sha in "[0-9a-fA-F]{0,64}",
    ) {
        prop_assert!(!validate_twilio_json("tok", &url, &body, &header)
            || url.contains("bodySHA256"));
        let with_sha = format!("https://h.example/x?bodySHA256={sha}");
        let _ = validate_twilio_json("tok", &with_sha, &body, &header);
    }

    // ---- generic MO payloads ----

    #[test]
    fn generic_mo_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = parse_mo(&raw);
    }

    #[test]
    fn generic_mo_json_never_panics(v in json_value()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let _ = parse_mo(&bytes);
        let _ = parse_mo_value(v);
    }

    // ---- recipients ----

    #[test]
    fn recipient_parsing_never_panics_and_is_stable(s in nasty_text()) {
        if let Ok(r) = Recipient::parse(&s) {
            // The normal form parses to itself, and masking never shows it whole.
            let again = Recipient::parse(r.as_str()).expect("normal form reparses");
            prop_assert_eq!(again.as_str(), r.as_str());
            prop_assert_ne!(r.masked(), r.as_str().to_string());
        }
    }

    #[test]
    fn turkish_mobiles_in_any_common_form_agree(n in 0u32..10_000_000) {
        let want = format!("+90532{n:07}");
        for form in [
            format!("0532{n:07}"),
            format!("532 {n:07}"),
            format!("+90 532 {n:07}"),
            format!("0090532{n:07}"),
        ] {
            prop_assert_eq!(Recipient::parse(&form).map(|r| r.as_str().to_string()), Ok(want.clone()));
        }
    }

    // ---- İYS responses ----

    #[test]
    fn iys_error_bodies_never_panic(raw in prop::collection::vec(any::<u8>(), 0..1024)) {
        for item in parse_error_body(&raw) {
            let _ = item.class();
        }
        decode_all_wire_types(&raw);
    }

    #[test]
    fn iys_json_responses_never_panic(v in json_value()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        for item in parse_error_body(&bytes) {
            let _ = item.class();
        }
        decode_all_wire_types(&bytes);
    }

    // ---- calendar ----

    #[test]
    fn deadlines_are_three_business_days_later(secs in 0i64..(15 * 365 * 86_400)) {
        let cal = BusinessCalendar::turkish();
        let received = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
        let local = received.with_timezone(&Istanbul).date_naive();
        // Inside the calendar's coverage a deadline always exists.
        prop_assume!(local + Duration::days(30) < cal.valid_to());
        let dl = cal.iys_deadline(received).expect("deadline inside coverage");
        prop_assert!(dl > received);
        let dl_day = dl.with_timezone(&Istanbul).date_naive();
        prop_assert!(cal.is_business_day(dl_day).unwrap());
        prop_assert_eq!(cal.business_days_between(local, dl_day).unwrap(), 3);
        prop_assert!(dl - received < Duration::days(20));
    }

    #[test]
    fn deadlines_for_any_instant_never_panic(secs in any::<i64>(), half in any::<bool>()) {
        let cal = BusinessCalendar::turkish().with_half_days_business(half);
        if let Some(at) = DateTime::<Utc>::from_timestamp(secs / 1000, 0) {
            let _ = cal.iys_deadline(at);
        }
        if let Some(d) = NaiveDate::from_num_days_from_ce_opt((secs % 5_000_000) as i32) {
            let _ = (cal.is_business_day(d), cal.nth_business_day_after(d, 3), d.year());
        }
    }

    // ---- voice ----

    #[test]
    fn voice_tokens_from_strangers_never_open(
        t in nasty_text(),
        sid in nasty_text(),
        dotted in ("[A-Za-z0-9_-]{0,200}", "[A-Za-z0-9_-]{0,64}"),
    ) {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
        prop_assert!(token::open(&t, &sid, b"secret-secret-secret", now).is_err());
        let forged = format!("{}.{}", dotted.0, dotted.1);
        prop_assert!(token::open(&forged, &sid, b"secret-secret-secret", now).is_err());
    }

    #[test]
    fn twiml_checker_never_panics(xml in nasty_text()) {
        if let Ok(root) = twiml_check::parse(&xml) {
            let _ = twiml_check::check_allowed(&root);
            let _ = root.walk();
        }
        let wrapped = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{xml}</Response>");
        if let Ok(root) = twiml_check::parse(&wrapped) {
            let _ = twiml_check::check_allowed(&root);
        }
    }

    #[test]
    fn twiml_built_from_any_text_is_well_formed(text in nasty_text()) {
        let xml = twiml::Response::new().message(text).to_xml();
        let root = twiml_check::parse(&xml).expect("the builder emits well-formed XML");
        prop_assert!(twiml_check::check_allowed(&root).is_ok());
    }
}
