use super::*;
use crate::domain::time::from_iys;
use serde_json::json;

/// Wednesday 2026-03-04 12:00 Istanbul.
fn now() -> DateTime<Utc> {
    from_iys("2026-03-04 12:00:00").unwrap()
}

fn check(v: Value) -> Result<ValidConsent, Vec<ErrorItem>> {
    check_with(v, &SimConfig::default(), now())
}

fn check_with(
    v: Value,
    cfg: &SimConfig,
    now: DateTime<Utc>,
) -> Result<ValidConsent, Vec<ErrorItem>> {
    let cal = SimCalendar::turkish(true);
    validate_consent(
        &v,
        &Ctx {
            cfg,
            cal: &cal,
            now,
        },
    )
}

fn codes(r: Result<ValidConsent, Vec<ErrorItem>>) -> Vec<String> {
    r.err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.code)
        .collect()
}

fn good() -> Value {
    json!({"recipient":"+905321234567","type":"MESAJ","source":"HS_WEB","status":"ONAY",
           "consentDate":"2026-03-04 10:00:00"})
}

fn with(k: &str, v: Value) -> Value {
    let mut g = good();
    g[k] = v;
    g
}

fn without(k: &str) -> Value {
    let mut g = good();
    g.as_object_mut().unwrap().remove(k);
    g
}

#[test]
fn valid_consent_is_normalised() {
    let c = check(good()).unwrap();
    assert_eq!(c.recipient_type, RecipientType::Bireysel);
    assert_eq!(c.consent_date, from_iys("2026-03-04 10:00:00"));
    let e = check(
        json!({"recipient":"Ali@Firma.COM","type":"EPOSTA","source":"HS_WEB",
        "status":"ONAY","consentDate":"2026-03-04 10:00:00"}),
    )
    .unwrap();
    assert_eq!(e.recipient, "ali@firma.com");
}

#[test]
fn unknown_field_is_h118_with_location_and_value() {
    let errs = check(with("foo", json!(1))).unwrap_err();
    assert_eq!(errs[0].code, "H118");
    assert_eq!(errs[0].location, Some(vec![json!("foo")]));
    assert_eq!(errs[0].value, Some(json!(1)));
}

#[test]
fn missing_fields() {
    assert_eq!(codes(check(without("status"))), ["H110"]);
    assert_eq!(codes(check(without("type"))), ["H111"]);
    assert_eq!(codes(check(without("consentDate"))), ["H112"]);
    assert_eq!(codes(check(without("source"))), ["H113"]);
    assert_eq!(codes(check(without("recipient"))), ["H114"]);
}

#[test]
fn invalid_enums() {
    assert_eq!(codes(check(with("status", json!("RED")))), ["H115"]);
    assert_eq!(
        codes(check(with("recipientType", json!("KURUMSAL")))),
        ["H116"]
    );
    assert_eq!(codes(check(with("type", json!("EMAIL")))), ["H117"]);
    assert_eq!(codes(check(with("source", json!("IYS_MOBIL")))), ["H119"]);
    assert_eq!(codes(check(with("source", json!("HS_201")))), ["H119"]);
}

#[test]
fn recipients() {
    assert_eq!(
        codes(check(with("recipient", json!("05321234567")))),
        ["H121"]
    );
    assert_eq!(codes(check(with("recipient", json!("a@b.com")))), ["H121"]);
    assert_eq!(
        codes(check(with("recipient", json!("+9055436100000000")))),
        ["H160", "H121"]
    );
    let mut e = with("type", json!("EPOSTA"));
    e["recipient"] = json!("örnek@mail.com");
    assert_eq!(codes(check(e)), ["H120"]);
    assert!(
        check(with("recipient", json!("+902121230000"))).is_ok(),
        "ARAMA/MESAJ landline E.164"
    );
}

#[test]
fn strict_turkish_mobile_switch() {
    let cfg = SimConfig {
        strict_turkish_mobile: true,
        ..Default::default()
    };
    let foreign = with("recipient", json!("+14158675309"));
    assert!(check(foreign.clone()).is_ok());
    assert_eq!(codes(check_with(foreign, &cfg, now())), ["H121"]);
}

#[test]
fn dates() {
    assert_eq!(
        codes(check(with("consentDate", json!("2026-03-04T10:00:00")))),
        ["H158"]
    );
    assert_eq!(
        codes(check(with("consentDate", json!("2020-15-01 13:35:00")))),
        ["H157"]
    );
    assert_eq!(
        codes(check(with("consentDate", json!("2015-04-30 23:59:00")))),
        ["H156"]
    );
    assert_eq!(
        codes(check(with("consentDate", json!("2026-03-04 12:00:01")))),
        ["H162"]
    );
    let mut h = with("source", json!("HS_2015"));
    h["consentDate"] = json!("2020-04-30 23:59:00");
    assert_eq!(codes(check(h.clone())), ["H155"]);
    h["consentDate"] = json!("2015-05-01 00:00:00");
    assert!(check(h).is_ok(), "HS_2015 is exempt from H467");
}

#[test]
fn hs_karar_needs_ret() {
    assert_eq!(codes(check(with("source", json!("HS_KARAR")))), ["H408"]);
    let mut r = with("source", json!("HS_KARAR"));
    r["status"] = json!("RET");
    assert!(check(r).is_ok());
}

#[test]
fn retailer_fields() {
    assert_eq!(codes(check(with("retailerCode", json!("")))), ["H267"]);
    assert_eq!(codes(check(with("retailerAccess", json!([])))), ["H163"]);
    assert_eq!(
        codes(check(with("retailerAccess", json!(vec![1; 3001])))),
        ["H126"]
    );
    assert_eq!(codes(check(with("retailerAccess", json!("x")))), ["H169"]);
    let c = check(with("retailerCode", json!(11223344))).unwrap();
    assert!(check_retailers(&c, &SimConfig::default()).is_some());
    let cfg = SimConfig {
        retailers: vec![11223344],
        ..Default::default()
    };
    assert!(check_retailers(&c, &cfg).is_none());
}

#[test]
fn tacir_first_save_may_omit_source_and_date() {
    let mut t = without("source");
    t.as_object_mut().unwrap().remove("consentDate");
    t["recipientType"] = json!("TACIR");
    let c = check(t).unwrap();
    assert_eq!((c.source, c.consent_date), (None, None));
}

#[test]
fn three_business_days_cross_weekend_and_holidays() {
    // Monday 2026-03-09 12:00: three business days back is Wednesday 2026-03-04 12:00.
    let monday = from_iys("2026-03-09 12:00:00").unwrap();
    let at = |s: &str| with("consentDate", json!(s));
    assert!(check_with(at("2026-03-04 12:00:00"), &SimConfig::default(), monday).is_ok());
    assert_eq!(
        codes(check_with(
            at("2026-03-04 11:59:59"),
            &SimConfig::default(),
            monday
        )),
        ["H467"]
    );
    // Friday 2026-05-22; Tuesday 2026-05-19 is a holiday, so the cutoff is Monday 18 May.
    let friday = from_iys("2026-05-22 12:00:00").unwrap();
    assert!(check_with(at("2026-05-18 12:00:00"), &SimConfig::default(), friday).is_ok());
    assert_eq!(
        codes(check_with(
            at("2026-05-18 11:00:00"),
            &SimConfig::default(),
            friday
        )),
        ["H467"]
    );
}

#[test]
fn three_day_rule_and_ret_switch() {
    let monday = from_iys("2026-03-09 12:00:00").unwrap();
    let mut ret = with("status", json!("RET"));
    ret["consentDate"] = json!("2026-03-02 12:00:00");
    assert_eq!(
        codes(check_with(ret.clone(), &SimConfig::default(), monday)),
        ["H467"]
    );
    let cfg = SimConfig {
        three_day_rule_applies_to_ret: false,
        ..Default::default()
    };
    assert!(check_with(ret, &cfg, monday).is_ok());
}

#[test]
fn end_of_third_business_day_cutoff() {
    let cfg = SimConfig {
        three_day_cutoff: ThreeDayCutoff::EndOfThirdBusinessDay,
        ..Default::default()
    };
    // Received Wednesday 10:00; deadline Monday 23:59:59.
    let c = with("consentDate", json!("2026-03-04 10:00:00"));
    assert!(check_with(c.clone(), &cfg, from_iys("2026-03-09 23:59:59").unwrap()).is_ok());
    assert_eq!(
        codes(check_with(
            c,
            &cfg,
            from_iys("2026-03-10 00:00:00").unwrap()
        )),
        ["H467"]
    );
}

#[test]
fn calendar_days_cutoff() {
    let cfg = SimConfig {
        three_day_cutoff: ThreeDayCutoff::CalendarDays,
        ..Default::default()
    };
    let c = |date: &str| with("consentDate", json!(date));
    // Now Monday 09:00. Taken Thursday 23:59: Fri, Mon = 2 weekdays, accepted although the
    // timestamp reading (cutoff Wednesday 09:00) would accept it too.
    let monday = from_iys("2026-03-09 09:00:00").unwrap();
    assert!(check_with(c("2026-03-05 23:59:59"), &cfg, monday).is_ok());
    // Taken Wednesday 23:59: Thu, Fri, Mon = 3, refused whatever the time of day; the
    // timestamp reading accepts it (later than Wednesday 09:00).
    assert_eq!(
        codes(check_with(c("2026-03-04 23:59:59"), &cfg, monday)),
        ["H467"]
    );
    assert!(check_with(c("2026-03-04 23:59:59"), &SimConfig::default(), monday).is_ok());
    // Holidays are not skipped: Mon 18 May 2026 → Tue 19 (holiday), Wed, Thu = 3.
    let thursday = from_iys("2026-05-21 09:00:00").unwrap();
    assert_eq!(
        codes(check_with(c("2026-05-18 10:00:00"), &cfg, thursday)),
        ["H467"]
    );
}

#[test]
fn strict_mobile_refuses_landline_mesaj_not_arama() {
    let cfg = SimConfig {
        strict_turkish_mobile: true,
        ..Default::default()
    };
    let landline = with("recipient", json!("+902121230000"));
    assert_eq!(codes(check_with(landline.clone(), &cfg, now())), ["H121"]);
    let mut arama = landline;
    arama["type"] = json!("ARAMA");
    assert!(check_with(arama, &cfg, now()).is_ok());
    assert!(check_with(good(), &cfg, now()).is_ok());
}

fn record(status: Status, date: &str) -> SimRecord {
    let t = from_iys(date).unwrap();
    SimRecord {
        recipient: "+905321234567".into(),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
        status,
        consent_date: Some(t),
        source: Some(Source::HsWeb),
        first_creation_date: t,
        creation_date: t,
        transaction_id: "t".into(),
        retailer_code: None,
        origin: None,
    }
}

fn stateful(existing: Option<&SimRecord>, v: Value, cfg: &SimConfig) -> Option<String> {
    let c = check(v).unwrap();
    check_stateful(existing, &c, cfg, false)
        .err()
        .map(|e| e.code)
}

#[test]
fn stateful_rules() {
    let cfg = SimConfig::default();
    let ret = with("status", json!("RET"));
    assert_eq!(stateful(None, ret.clone(), &cfg).as_deref(), Some("H175"));
    assert_eq!(stateful(None, good(), &cfg), None);
    let onay = record(Status::Onay, "2026-03-04 09:00:00");
    let rret = record(Status::Ret, "2026-03-04 09:00:00");
    assert_eq!(stateful(Some(&onay), ret.clone(), &cfg), None);
    assert_eq!(stateful(Some(&rret), ret, &cfg).as_deref(), Some("H174"));
    assert_eq!(
        stateful(Some(&onay), good(), &cfg),
        None,
        "ONAY over ONAY allowed"
    );
    let strict = SimConfig {
        allow_onay_over_onay: false,
        ..Default::default()
    };
    assert_eq!(
        stateful(Some(&onay), good(), &strict).as_deref(),
        Some("H174")
    );
    let older = with("consentDate", json!("2026-03-04 08:00:00"));
    assert_eq!(stateful(Some(&onay), older, &cfg).as_deref(), Some("H178"));
    let equal = with("consentDate", json!("2026-03-04 09:00:00"));
    assert_eq!(
        stateful(Some(&onay), equal.clone(), &cfg).as_deref(),
        Some("H178")
    );
    let lax = SimConfig {
        equal_consent_date_policy: EqualConsentDatePolicy::Accept,
        ..Default::default()
    };
    assert_eq!(stateful(Some(&onay), equal, &lax), None);
}

#[test]
fn batch_h175_wording() {
    let c = check(with("status", json!("RET"))).unwrap();
    let e = check_stateful(None, &c, &SimConfig::default(), true).unwrap_err();
    assert_eq!(e.message, H175_BATCH_TEXT);
}

#[test]
fn tacir_updates_need_source_and_date() {
    let mut existing = record(Status::Onay, "2026-03-04 09:00:00");
    existing.recipient_type = RecipientType::Tacir;
    let mut no_date = good();
    no_date["recipientType"] = json!("TACIR");
    no_date.as_object_mut().unwrap().remove("consentDate");
    let cfg = SimConfig::default();
    assert_eq!(
        stateful(Some(&existing), no_date.clone(), &cfg).as_deref(),
        Some("H462")
    );
    let mut no_source = no_date.clone();
    no_source["consentDate"] = json!("2026-03-04 10:00:00");
    no_source.as_object_mut().unwrap().remove("source");
    assert_eq!(
        stateful(Some(&existing), no_source, &cfg).as_deref(),
        Some("H463")
    );
}

#[test]
fn multi_status_recipient_checks_use_h166() {
    let e = check_recipient(
        "+0554321323223333333333",
        Some(ConsentType::Mesaj),
        false,
        "H166",
    )
    .unwrap_err();
    assert_eq!(e[0].code, "H166");
    assert_eq!(
        check_recipient("A@B.co", None, false, "H166").unwrap(),
        "a@b.co"
    );
}
