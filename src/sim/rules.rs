//! İYS's validation and business rules for one consent (docs/iys-api-notes.md §5), in the documented order:
//! stateless field checks accumulate into one errors array; stateful rules stop at the first.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::business_days::{self, SimCalendar};
use super::config::{EqualConsentDatePolicy, SimConfig, ThreeDayCutoff};
use super::errors::ErrorItem;
use super::state::SimRecord;
use super::validate;
use crate::domain::time::{IYS_FORMAT, from_iys};
use crate::domain::{ConsentType, RecipientType, Source, Status};

const ALLOWED_FIELDS: [&str; 8] = [
    "recipientType",
    "retailerAccess",
    "recipient",
    "retailerCode",
    "source",
    "type",
    "consentDate",
    "status",
];
const MAX_RETAILER_ACCESS: usize = 3000;
const H175_BATCH_TEXT: &str =
    "İlk izin kayıt işlemlerinde RET durum (status) bilgisi içeren izinler kaydedilmez.";

pub struct Ctx<'a> {
    pub cfg: &'a SimConfig,
    pub cal: &'a SimCalendar,
    pub now: DateTime<Utc>,
}

/// A consent that passed every stateless check, normalised (e-mail lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidConsent {
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub status: Status,
    pub source: Option<Source>,
    pub consent_date: Option<DateTime<Utc>>,
    pub retailer_code: Option<i64>,
    pub retailer_access: Option<Vec<i64>>,
    /// The request body re-serialised with sorted keys: v2's idempotency key.
    pub canonical: String,
}

fn text(v: &Value) -> Option<&str> {
    v.as_str()
}

fn present<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.get(k).filter(|v| !v.is_null())
}

/// Checks a recipient against its consent type. `too_long` is H160 on adds, H166 on queries.
pub fn check_recipient(
    raw: &str,
    t: Option<ConsentType>,
    strict_mobile: bool,
    too_long: &str,
) -> Result<String, Vec<ErrorItem>> {
    let val = Value::from(raw);
    let wants_email = match t {
        Some(ConsentType::Eposta) => true,
        Some(_) => false,
        None => raw.contains('@'),
    };
    if wants_email {
        return validate::email(raw)
            .ok_or_else(|| vec![ErrorItem::new("H120").at("recipient").value(val)]);
    }
    let check = validate::phone(raw);
    let mut errs = Vec::new();
    if check.too_long {
        errs.push(ErrorItem::new(too_long).at("recipient").value(val.clone()));
    }
    let strict_ok =
        !(strict_mobile && t == Some(ConsentType::Mesaj)) || validate::is_turkish_mobile(raw);
    if check.invalid || !strict_ok {
        errs.push(ErrorItem::new("H121").at("recipient").value(val));
    }
    if errs.is_empty() {
        Ok(raw.to_string())
    } else {
        Err(errs)
    }
}

fn parse_enum<T: std::str::FromStr>(
    o: &Map<String, Value>,
    field: &str,
    missing: Option<&str>,
    invalid: &str,
    errs: &mut Vec<ErrorItem>,
    invalid_errs: &mut Vec<ErrorItem>,
) -> Option<T> {
    match o.get(field) {
        None => {
            if let Some(code) = missing {
                errs.push(ErrorItem::new(code).at(field));
            }
            None
        }
        Some(v) => match text(v).and_then(|s| s.parse::<T>().ok()) {
            Some(x) => Some(x),
            None => {
                invalid_errs.push(ErrorItem::new(invalid).at(field).value(v.clone()));
                None
            }
        },
    }
}

/// Stateless checks of one consent object, steps (4) of the notes' order except H180/H525.
pub fn validate_consent(v: &Value, ctx: &Ctx<'_>) -> Result<ValidConsent, Vec<ErrorItem>> {
    let Some(o) = v.as_object() else {
        return Err(vec![ErrorItem::new("H085")]);
    };
    let mut errs: Vec<ErrorItem> = o
        .iter()
        .filter(|(k, _)| !ALLOWED_FIELDS.contains(&k.as_str()))
        .map(|(k, val)| ErrorItem::new("H118").at(k).value(val.clone()))
        .collect();
    let mut invalid = Vec::new();
    let rt = match o.get("recipientType") {
        None => Some(RecipientType::Bireysel),
        Some(x) => match text(x).and_then(|s| s.parse().ok()) {
            Some(rt) => Some(rt),
            None => {
                invalid.push(ErrorItem::new("H116").at("recipientType").value(x.clone()));
                None
            }
        },
    };
    // TACIR may leave out source and consentDate on the first save (R7); updates are checked later.
    let tacir = rt == Some(RecipientType::Tacir);
    let status: Option<Status> =
        parse_enum(o, "status", Some("H110"), "H115", &mut errs, &mut invalid);
    let ctype: Option<ConsentType> =
        parse_enum(o, "type", Some("H111"), "H117", &mut errs, &mut invalid);
    let source_missing = (!tacir).then_some("H113");
    let source: Option<Source> =
        parse_enum(o, "source", source_missing, "H119", &mut errs, &mut invalid);
    if source.is_some_and(|s| !s.is_hs()) {
        let raw = o.get("source").cloned().unwrap_or_default();
        invalid.push(ErrorItem::new("H119").at("source").value(raw));
    }
    let source = source.filter(|s| s.is_hs());
    let recipient_raw = present(o, "recipient");
    if recipient_raw.is_none() {
        errs.push(ErrorItem::new("H114").at("recipient"));
    }
    let date_raw = present(o, "consentDate");
    if date_raw.is_none() && !tacir {
        errs.push(ErrorItem::new("H112").at("consentDate"));
    }
    errs.append(&mut invalid);

    let recipient = match recipient_raw {
        None => None,
        Some(r) => match text(r) {
            Some(s) => match check_recipient(s, ctype, ctx.cfg.strict_turkish_mobile, "H160") {
                Ok(r) => Some(r),
                Err(mut e) => {
                    errs.append(&mut e);
                    None
                }
            },
            None => {
                let code = if ctype == Some(ConsentType::Eposta) {
                    "H120"
                } else {
                    "H121"
                };
                errs.push(ErrorItem::new(code).at("recipient").value(r.clone()));
                None
            }
        },
    };

    let consent_date = date_raw.and_then(|d| check_date(d, source, ctx.now, &mut errs));
    if source == Some(Source::HsKarar) && status == Some(Status::Onay) {
        errs.push(ErrorItem::new("H408").at("status").value("ONAY".into()));
    }
    let retailer_code = match o.get("retailerCode") {
        None => None,
        Some(x) => match x.as_i64() {
            Some(n) => Some(n),
            None => {
                errs.push(ErrorItem::new("H267").at("retailerCode").value(x.clone()));
                None
            }
        },
    };
    let retailer_access = match o.get("retailerAccess") {
        None => None,
        Some(Value::Array(a)) if a.is_empty() => {
            errs.push(
                ErrorItem::new("H163")
                    .at("retailerAccess")
                    .value(Value::Array(vec![])),
            );
            None
        }
        Some(Value::Array(a)) if a.len() > MAX_RETAILER_ACCESS => {
            errs.push(ErrorItem::new("H126").at("retailerAccess"));
            None
        }
        Some(Value::Array(a)) => match a.iter().map(Value::as_i64).collect::<Option<Vec<_>>>() {
            Some(list) => Some(list),
            None => {
                errs.push(
                    ErrorItem::new("H169")
                        .at("retailerAccess")
                        .value(Value::Array(a.clone())),
                );
                None
            }
        },
        Some(x) => {
            errs.push(ErrorItem::new("H169").at("retailerAccess").value(x.clone()));
            None
        }
    };
    if let (Some(cd), Some(st)) = (consent_date, status)
        && source != Some(Source::Hs2015)
        && (st == Status::Onay || ctx.cfg.three_day_rule_applies_to_ret)
        && too_old(cd, ctx)
    {
        let raw = date_raw.cloned().unwrap_or_default();
        errs.push(ErrorItem::new("H467").at("consentDate").value(raw));
    }
    match (recipient, rt, ctype, status) {
        (Some(recipient), Some(recipient_type), Some(consent_type), Some(status))
            if errs.is_empty() =>
        {
            Ok(ValidConsent {
                recipient,
                recipient_type,
                consent_type,
                status,
                source,
                consent_date,
                retailer_code,
                retailer_access,
                canonical: v.to_string(),
            })
        }
        _ => Err(errs),
    }
}

/// H158 → H157 → H156 / H155 → H162 for one `consentDate` value.
fn check_date(
    raw: &Value,
    source: Option<Source>,
    now: DateTime<Utc>,
    errs: &mut Vec<ErrorItem>,
) -> Option<DateTime<Utc>> {
    let err = |code: &str| ErrorItem::new(code).at("consentDate").value(raw.clone());
    let Some(s) = raw.as_str().filter(|s| has_iys_shape(s)) else {
        errs.push(err("H158"));
        return None;
    };
    let Some(at) = NaiveDateTime::parse_from_str(s, IYS_FORMAT)
        .ok()
        .and_then(|_| from_iys(s))
    else {
        errs.push(err("H157"));
        return None;
    };
    let min = from_iys("2015-05-01 00:00:00")?;
    if at < min {
        errs.push(err("H156"));
    } else if source == Some(Source::Hs2015) && at != min {
        errs.push(err("H155"));
    } else if at > now {
        errs.push(err("H162"));
    } else {
        return Some(at);
    }
    None
}

/// `dddd-dd-dd dd:dd:dd`: the shape check behind H158 (a well-shaped impossible date is H157).
fn has_iys_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Business days İYS allows between taking a consent and registering it (H467).
const WINDOW_BUSINESS_DAYS: u32 = 3;

/// H467: was the consent taken more than three business days ago, in the configured reading?
pub fn too_old(consent: DateTime<Utc>, ctx: &Ctx<'_>) -> bool {
    match ctx.cfg.three_day_cutoff {
        ThreeDayCutoff::Timestamp => ctx
            .cal
            .minus_business_days(ctx.now, WINDOW_BUSINESS_DAYS)
            .is_some_and(|cutoff| consent < cutoff),
        ThreeDayCutoff::CalendarDays => {
            let days = business_days::weekdays_after(
                business_days::local_date(consent),
                business_days::local_date(ctx.now),
            );
            days >= i64::from(WINDOW_BUSINESS_DAYS)
        }
        ThreeDayCutoff::EndOfThirdBusinessDay => ctx
            .cal
            .end_of_nth_business_day_after(consent, WINDOW_BUSINESS_DAYS)
            .is_none_or(|deadline| ctx.now > deadline),
    }
}

/// Step (7): rules that need the stored record. `batch` picks the poll's wording of H175.
pub fn check_stateful(
    existing: Option<&SimRecord>,
    c: &ValidConsent,
    cfg: &SimConfig,
    batch: bool,
) -> Result<(), ErrorItem> {
    let Some(r) = existing else {
        if c.status == Status::Ret {
            let e = ErrorItem::new("H175");
            return Err(if batch {
                e.with_message(H175_BATCH_TEXT)
            } else {
                e
            });
        }
        return Ok(());
    };
    if c.recipient_type == RecipientType::Tacir {
        if c.consent_date.is_none() {
            return Err(ErrorItem::new("H462"));
        }
        if c.source.is_none() {
            return Err(ErrorItem::new("H463"));
        }
    }
    match (r.status, c.status) {
        (Status::Ret, Status::Ret) => return Err(ErrorItem::new("H174")),
        (Status::Onay, Status::Onay) if !cfg.allow_onay_over_onay => {
            return Err(ErrorItem::new("H174").with_message(
                "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir. İzin durumu: ONAY",
            ));
        }
        _ => {}
    }
    if let (Some(old), Some(new)) = (r.consent_date, c.consent_date) {
        let equal_rejected = cfg.equal_consent_date_policy == EqualConsentDatePolicy::Reject;
        if new < old || (new == old && equal_rejected) {
            return Err(ErrorItem::new("H178"));
        }
    }
    Ok(())
}

/// 403 H180 when a retailer number is not one of the HS's retailers.
pub fn check_retailers(c: &ValidConsent, cfg: &SimConfig) -> Option<ErrorItem> {
    let unknown = |n: &i64| !cfg.retailers.contains(n);
    let bad =
        c.retailer_code.iter().any(unknown) || c.retailer_access.iter().flatten().any(unknown);
    bad.then(|| ErrorItem::new("H180"))
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
