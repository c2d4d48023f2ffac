//! İYS errors as the client meets them: a lenient body parser and the client's error type, classed
//! by the code catalogue (`catalogue.rs`).
//!
//! Decisions branch on the `H…` code, not on the HTTP status (H467 comes back as 400 in one
//! example and 422 elsewhere, docs/iys-api-notes.md §10.10). The status is only a fallback for bodies
//! without a known code (gateway pages, OAuth errors).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use super::catalogue::{CATALOGUE, CatalogueEntry, ErrorClass, lookup};
use serde_json::Value;

/// One entry of an `errors[]` array, read leniently: every field optional, `value` any JSON.
#[derive(Clone, Default, PartialEq)]
pub struct ErrorItem {
    /// `H…` code, or the OAuth `error` (`invalid_grant`) for token-endpoint failures.
    pub code: Option<String>,
    pub message: Option<String>,
    /// Offending field, e.g. `["consentDate"]` or `["retailerAccess", 0]`.
    pub location: Option<Value>,
    /// The bad value echoed back; may be a recipient, so it is never printed.
    pub value: Option<Value>,
    /// 0-based position within a batch.
    pub index: Option<usize>,
}

impl fmt::Debug for ErrorItem {
    // `value` can echo a phone number or e-mail: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorItem")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("location", &self.location)
            .field("index", &self.index)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl ErrorItem {
    pub fn new(code: &str, message: &str) -> Self {
        Self {
            code: Some(code.into()),
            message: Some(message.into()),
            ..Self::default()
        }
    }

    /// Reads one error object in any of the shapes İYS and its gateways use.
    fn from_object(o: &serde_json::Map<String, Value>) -> Option<Self> {
        // "code:" is a typo some 403 examples carry; OAuth bodies say error/error_description.
        let code = text(o.get("code"))
            .or_else(|| text(o.get("code:")))
            .or_else(|| text(o.get("error")));
        let message = text(o.get("message")).or_else(|| text(o.get("error_description")));
        let index = match o.get("index") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let item = Self {
            code,
            message,
            location: o.get("location").filter(|v| !v.is_null()).cloned(),
            value: o.get("value").cloned(),
            index,
        };
        (item.code.is_some() || item.message.is_some()).then_some(item)
    }

    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::Object(o) => Self::from_object(o),
            Value::String(s) if !s.trim().is_empty() => Some(Self {
                message: Some(s.trim().to_string()),
                ..Self::default()
            }),
            _ => None,
        }
    }

    pub fn class(&self) -> Option<ErrorClass> {
        self.code.as_deref().and_then(lookup).map(|e| e.class)
    }
}

impl<'de> Deserialize<'de> for ErrorItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(Self::from_value(&v).unwrap_or_default())
    }
}

/// Longest slice of a non-JSON body kept as a message (gateway HTML pages can be large).
const RAW_MESSAGE_MAX: usize = 200;

/// Parses any error body: `{"errors":[…]}`, a bare array, top-level `{code,message}`,
/// `{message,status}`, OAuth `{error,error_description}`, or plain text. Never fails.
pub fn parse_error_body(body: &[u8]) -> Vec<ErrorItem> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => match o.get("errors") {
            Some(Value::Array(items)) if !items.is_empty() => {
                items.iter().filter_map(ErrorItem::from_value).collect()
            }
            Some(single @ Value::Object(_)) => ErrorItem::from_value(single).into_iter().collect(),
            _ => ErrorItem::from_object(&o).into_iter().collect(),
        },
        Ok(Value::Array(items)) => items.iter().filter_map(ErrorItem::from_value).collect(),
        Ok(other) => ErrorItem::from_value(&other).into_iter().collect(),
        Err(_) => {
            let s = String::from_utf8_lossy(body);
            let s = s.trim();
            if s.is_empty() {
                return Vec::new();
            }
            vec![ErrorItem {
                message: Some(s.chars().take(RAW_MESSAGE_MAX).collect()),
                ..ErrorItem::default()
            }]
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IysErrorKind {
    /// İYS (or something in front of it) answered with a non-success status.
    Http,
    /// Could not connect, or the connection broke.
    Network,
    Timeout,
    /// A success status with a body we could not read.
    Decode,
    /// H084 earlier: no token requests until the lock-out ends (`retry_after`).
    TokenLockout,
    /// Refused before sending: İYS would reject it and count it against our success rate.
    InvalidRequest,
}

/// A failed İYS call. `class()` says what to do next.
#[derive(Debug, Clone, PartialEq)]
pub struct IysError {
    pub kind: IysErrorKind,
    pub status: Option<u16>,
    pub errors: Vec<ErrorItem>,
    /// From the `Retry-After` header, or the remaining lock-out for [`IysErrorKind::TokenLockout`].
    pub retry_after: Option<Duration>,
    /// Short technical detail (never a body or a recipient).
    pub detail: String,
}

impl IysError {
    pub fn http(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        Self {
            kind: IysErrorKind::Http,
            status: Some(status),
            errors: parse_error_body(body),
            retry_after,
            detail: String::new(),
        }
    }

    pub fn other(kind: IysErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            errors: Vec::new(),
            retry_after: None,
            detail: detail.into(),
        }
    }

    /// The first error code in the body (an `H…` code or an OAuth error name).
    pub fn code(&self) -> Option<&str> {
        self.errors.iter().find_map(|e| e.code.as_deref())
    }

    pub fn class(&self) -> ErrorClass {
        match self.kind {
            IysErrorKind::Network | IysErrorKind::Timeout => return ErrorClass::Transient,
            // A 2xx we cannot read: for v2 adds a resend is idempotent, so retrying is safe.
            IysErrorKind::Decode => return ErrorClass::Transient,
            IysErrorKind::TokenLockout => return ErrorClass::RateLimited,
            IysErrorKind::InvalidRequest => return ErrorClass::Permanent,
            IysErrorKind::Http => {}
        }
        if let Some(class) = self.errors.iter().find_map(ErrorItem::class) {
            return class;
        }
        match self.status.unwrap_or(0) {
            401 => ErrorClass::AuthExpired,
            429 => ErrorClass::RateLimited,
            408 | 500..=599 => ErrorClass::Transient,
            // İYS itself always names its refusals with a code; a 4xx without one comes from
            // something in front of it (an edge, a WAF page): an outage, not a verdict.
            400..=499 if self.code().is_none() => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        }
    }
}

impl fmt::Display for IysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "İYS {:?}", self.kind)?;
        if let Some(s) = self.status {
            write!(f, " HTTP {s}")?;
        }
        if let Some(c) = self.code() {
            write!(f, " {c}")?;
        }
        if let Some(m) = self.errors.iter().find_map(|e| e.message.as_deref()) {
            write!(f, ": {m}")?;
        }
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for IysError {}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorClass::{
        AlreadyDone, AuthExpired, NothingToRevoke, OutOfOrder, Permanent, RateLimited, TooLate,
        Transient,
    };
    use serde_json::json;

    #[test]
    fn a_4xx_without_an_iys_code_is_an_outage() {
        let waf = IysError::http(403, b"<html><body>Request blocked</body></html>", None);
        assert_eq!(waf.class(), Transient);
        let unknown_code = IysError::http(400, br#"{"errors":[{"code":"H999"}]}"#, None);
        assert_eq!(unknown_code.class(), Permanent, "İYS named it: a verdict");
    }

    #[test]
    fn every_catalogue_code_has_its_class() {
        let rate = ["H124", "H083", "H084", "H086", "H089"];
        let special = [
            ("H174", AlreadyDone),
            ("H175", NothingToRevoke),
            ("H467", TooLate),
            ("H178", OutOfOrder),
            ("H351", AuthExpired),
            ("H162", Transient),
        ];
        let mut seen = std::collections::HashSet::new();
        for e in CATALOGUE {
            assert!(seen.insert(e.code), "duplicate {}", e.code);
            assert!(e.code.len() == 4 && e.code.starts_with('H'), "{}", e.code);
            assert!(!e.message.is_empty());
            let want = if let Some((_, c)) = special.iter().find(|(c, _)| *c == e.code) {
                *c
            } else if e.http >= 500 || e.code == "H123" {
                Transient
            } else if rate.contains(&e.code) {
                RateLimited
            } else {
                Permanent
            };
            assert_eq!(e.class, want, "{}", e.code);
            let err = IysError::http(
                e.http,
                format!(r#"{{"errors":[{{"code":"{}"}}]}}"#, e.code).as_bytes(),
                None,
            );
            assert_eq!(err.class(), want, "{} through IysError", e.code);
        }
        for c in [
            "H015", "H101", "H103", "H470", "H476", "H412", "H192", "H123",
        ] {
            assert_eq!(lookup(c).unwrap().class, Transient, "{c}");
        }
        for c in rate {
            assert_eq!(lookup(c).unwrap().http, 429, "{c}");
        }
        assert!(CATALOGUE.len() > 90);
    }

    #[test]
    fn code_beats_status() {
        // H467 once documented as 400: still TooLate. H123 is a 400 but transient.
        assert_eq!(
            IysError::http(400, br#"{"errors":[{"code":"H467"}]}"#, None).class(),
            TooLate
        );
        assert_eq!(
            IysError::http(422, br#"{"errors":[{"code":"H467"}]}"#, None).class(),
            TooLate
        );
        assert_eq!(
            IysError::http(400, br#"{"errors":[{"code":"H123"}]}"#, None).class(),
            Transient
        );
        // Unknown code or no code: the status decides.
        assert_eq!(
            IysError::http(502, b"<html>Bad Gateway</html>", None).class(),
            Transient
        );
        assert_eq!(IysError::http(429, b"", None).class(), RateLimited);
        assert_eq!(IysError::http(401, b"", None).class(), AuthExpired);
        assert_eq!(
            IysError::http(400, br#"{"error":"invalid_grant"}"#, None).class(),
            Permanent
        );
        assert_eq!(
            IysError::http(500, br#"{"errors":[{"code":"H999"}]}"#, None).class(),
            Transient
        );
        assert_eq!(
            IysError::other(IysErrorKind::Timeout, "t").class(),
            Transient
        );
        assert_eq!(
            IysError::other(IysErrorKind::TokenLockout, "t").class(),
            RateLimited
        );
        assert!(!NothingToRevoke.is_retryable() && RateLimited.is_retryable());
    }

    #[test]
    fn lenient_body_shapes() {
        type Want = &'static [(Option<&'static str>, Option<&'static str>)];
        let cases: &[(&str, Want)] = &[
            (
                r#"{"errors":[{"code":"H121","message":"m","location":["recipient"],"value":123}]}"#,
                &[(Some("H121"), Some("m"))],
            ),
            (
                r#"{"errors":[{"code:":"H353","message":"yetki"}]}"#,
                &[(Some("H353"), Some("yetki"))],
            ),
            (
                r#"{"code":"H084","message":"Saatte ..."}"#,
                &[(Some("H084"), Some("Saatte ..."))],
            ),
            (
                r#"{"message":"Forbidden","status":403}"#,
                &[(None, Some("Forbidden"))],
            ),
            (
                r#"{"error":"invalid_request","error_description":"Kullanıcı kimlik bilgileri geçersiz."}"#,
                &[(
                    Some("invalid_request"),
                    Some("Kullanıcı kimlik bilgileri geçersiz."),
                )],
            ),
            (
                r#"[{"code":"H111","index":"2"},{"code":"H194","index":3}]"#,
                &[(Some("H111"), None), (Some("H194"), None)],
            ),
            (r#"{"errors":{"code":"H015"}}"#, &[(Some("H015"), None)]),
            (
                "<html><body>502 Bad Gateway</body></html>",
                &[(None, Some("<html><body>502 Bad Gateway</body></html>"))],
            ),
            ("", &[]),
            ("null", &[]),
            (r#"{"errors":[]}"#, &[]),
            (r#"{"errors":[null, 5, {"value":{"x":1}}]}"#, &[]),
        ];
        for (body, want) in cases {
            let got = parse_error_body(body.as_bytes());
            let got: Vec<_> = got
                .iter()
                .map(|e| (e.code.as_deref(), e.message.as_deref()))
                .collect();
            assert_eq!(&got, want, "{body}");
        }
        let items = parse_error_body(
            br#"[{"code":"H111","index":"2"},{"code":"H194","index":3,"value":[1,"a"]}]"#,
        );
        assert_eq!(items[0].index, Some(2));
        assert_eq!(items[1].value, Some(json!([1, "a"])));
        let long = vec![b'x'; 5000];
        assert_eq!(
            parse_error_body(&long)[0].message.as_ref().unwrap().len(),
            RAW_MESSAGE_MAX
        );
    }

    #[test]
    fn display_and_debug_hide_the_echoed_value() {
        let err = IysError::http(
            422,
            br#"{"errors":[{"code":"H121","message":"telefon","value":"+905321234567"}]}"#,
            None,
        );
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("1234567"), "{shown}");
        assert!(shown.contains("H121") && shown.contains("telefon"));
    }
}
