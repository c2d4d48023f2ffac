//! Generic JSON MO (mobile-originated SMS) webhook for Turkish providers.
//!
//! Accepts one object or an array of them (Verimor pushes an array:
//! `[{"message_id":1234,"source_addr":"905319876543","destination_addr":"908501234567",
//! "content":"…","received_at":"2017-01-01 09:00:00",…}]`), with the field-name variants of the
//! providers in docs/telephony-notes.md §5.3 (Verimor push, Netgsm inbox `message/sender/receiver/
//! datetime`, generic `id/from/to/body`). Errors name the field and index, never a value.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// More than this in one push is not an MO batch we expect; refuse rather than churn.
pub const MAX_MESSAGES: usize = 1000;

const ID_FIELDS: &[&str] = &["message_id", "messageId", "MessageSid", "msg_id", "id"];
const FROM_FIELDS: &[&str] = &[
    "source_addr",
    "from",
    "From",
    "sender",
    "msisdn",
    "originator",
];
const TO_FIELDS: &[&str] = &[
    "destination_addr",
    "to",
    "To",
    "receiver",
    "recipient",
    "short_code",
    "shortcode",
];
const BODY_FIELDS: &[&str] = &["content", "body", "Body", "message", "text", "msg"];
const TIME_FIELDS: &[&str] = &[
    "received_at",
    "receivedAt",
    "datetime",
    "date",
    "timestamp",
    "created_at",
];

#[derive(Debug, Clone, PartialEq)]
pub struct MoMessage {
    /// The provider's message id; for providers without one (Netgsm) a hash of sender, receiver,
    /// time and text, prefixed `h:`, so that replays still de-duplicate.
    pub id: String,
    pub from: String,
    pub to: String,
    pub body: String,
    /// `None` when absent (a present value in a format we do not know is an item error).
    pub received_at: Option<DateTime<Utc>>,
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoError {
    #[error("body is not valid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object or an array of objects")]
    NotObjectOrArray,
    #[error("message {index}: not a JSON object")]
    NotAnObject { index: usize },
    #[error("message {index}: missing field `{field}` (accepted: {})", .accepted.join(", "))]
    MissingField {
        index: usize,
        field: &'static str,
        accepted: &'static [&'static str],
    },
    #[error("message {index}: field `{name}` must be a string or a number")]
    WrongType { index: usize, name: String },
    #[error("{0} messages in one request; at most {MAX_MESSAGES} accepted")]
    TooMany(usize),
    #[error(
        "message {index}: field `{name}` is not a time we can read (RFC 3339, unix seconds or Istanbul `YYYY-MM-DD HH:mm:ss`)"
    )]
    BadTime { index: usize, name: &'static str },
}

impl MoError {
    /// The item an error is about; `None` for errors of the whole body.
    pub fn index(&self) -> Option<usize> {
        match self {
            MoError::NotAnObject { index }
            | MoError::MissingField { index, .. }
            | MoError::WrongType { index, .. }
            | MoError::BadTime { index, .. } => Some(*index),
            MoError::Json(_) | MoError::NotObjectOrArray | MoError::TooMany(_) => None,
        }
    }
}

/// Parses a raw webhook body; the first bad item fails it all (see [`parse_mo_items`]).
pub fn parse_mo(raw_body: &[u8]) -> Result<Vec<MoMessage>, MoError> {
    parse_mo_items(raw_body)?.into_iter().collect()
}

/// Parses a raw webhook body into one result per item, so that one bad item does not hold up
/// the others; `Err` only when the body as a whole is unusable.
pub fn parse_mo_items(raw_body: &[u8]) -> Result<Vec<Result<MoMessage, MoError>>, MoError> {
    let value: Value =
        serde_json::from_slice(raw_body).map_err(|e| MoError::Json(e.to_string()))?;
    parse_mo_value(value)
}

/// Parses an already-decoded body: an object, an array, or `{"messages": [...]}` (Netgsm inbox).
pub fn parse_mo_value(value: Value) -> Result<Vec<Result<MoMessage, MoError>>, MoError> {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("messages") {
            Some(Value::Array(items)) if !has_any(&map, BODY_FIELDS) => items,
            Some(other) => {
                map.insert("messages".into(), other);
                vec![Value::Object(map)]
            }
            None => vec![Value::Object(map)],
        },
        _ => return Err(MoError::NotObjectOrArray),
    };
    if items.len() > MAX_MESSAGES {
        return Err(MoError::TooMany(items.len()));
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_one(index, item))
        .collect())
}

fn has_any(map: &serde_json::Map<String, Value>, names: &[&str]) -> bool {
    names.iter().any(|n| map.contains_key(*n))
}

fn parse_one(index: usize, raw: Value) -> Result<MoMessage, MoError> {
    let Value::Object(map) = &raw else {
        return Err(MoError::NotAnObject { index });
    };
    // First accepted name that is present and not null; numbers become strings (Verimor ids and
    // numbers are JSON numbers).
    let field = |names: &'static [&'static str]| -> Result<Option<String>, MoError> {
        for &name in names {
            match map.get(name) {
                None | Some(Value::Null) => continue,
                Some(Value::String(s)) => return Ok(Some(s.clone())),
                Some(Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(_) => {
                    return Err(MoError::WrongType {
                        index,
                        name: name.to_owned(),
                    });
                }
            }
        }
        Ok(None)
    };
    let required = |name: &'static str, names: &'static [&'static str]| {
        field(names)?
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or(MoError::MissingField {
                index,
                field: name,
                accepted: names,
            })
    };
    let from = required("from", FROM_FIELDS)?;
    let to = required("to", TO_FIELDS)?;
    // An empty text is still a message (and simply not a command).
    let body = field(BODY_FIELDS)?.ok_or(MoError::MissingField {
        index,
        field: "body",
        accepted: BODY_FIELDS,
    })?;
    let time_raw = field(TIME_FIELDS)?;
    let received_at = match time_raw.as_deref() {
        None => None,
        Some(t) => Some(parse_time(t).ok_or(MoError::BadTime {
            index,
            name: "time",
        })?),
    };
    let id = match (required("id", ID_FIELDS), &time_raw) {
        (Ok(id), _) => id,
        (Err(MoError::MissingField { .. }), Some(t)) => synthetic_id(&from, &to, t, &body),
        (Err(e), _) => return Err(e),
    };
    Ok(MoMessage {
        id,
        from,
        to,
        body,
        received_at,
        raw,
    })
}

fn synthetic_id(from: &str, to: &str, time: &str, body: &str) -> String {
    let mut h = Sha256::new();
    for part in [from, to, time, body] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("h:{}", hex::encode(&h.finalize()[..16]))
}

/// RFC 3339, unix seconds/milliseconds, or Istanbul wall-clock time in the formats Turkish
/// providers use (`2017-01-01 09:00:00`, `01.01.2017 09:00:00`, Netgsm's `01012017090000`).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if s.len() >= 9 && s.bytes().all(|b| b.is_ascii_digit()) && s.len() != 14 {
        let n: i64 = s.parse().ok()?;
        // Seconds until the year 2286; beyond that it must be milliseconds.
        return if n < 10_000_000_000 {
            Utc.timestamp_opt(n, 0).single()
        } else {
            Utc.timestamp_millis_opt(n).single()
        };
    }
    [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
        "%d.%m.%Y %H:%M",
        "%d%m%Y%H%M%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .and_then(|naive| Istanbul.from_local_datetime(&naive).earliest())
    .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const VERIMOR: &str = r#"[{"message_id":1234,"type":"inbound","created_at":"2017-01-01 09:00:00",
        "network":"TURKCELL","source_addr":"905319876543","destination_addr":"908501234567",
        "keyword":"","content":"verimor deneme","received_at":"2017-01-01 09:00:00"}]"#;

    #[test]
    fn verimor_array() {
        let msgs = parse_mo(VERIMOR.as_bytes()).unwrap();
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(
            (m.id.as_str(), m.from.as_str(), m.to.as_str()),
            ("1234", "905319876543", "908501234567")
        );
        assert_eq!(m.body, "verimor deneme");
        // 09:00 Istanbul (UTC+3) = 06:00 UTC.
        assert_eq!(
            m.received_at.unwrap().to_rfc3339(),
            "2017-01-01T06:00:00+00:00"
        );
        assert_eq!(m.raw["network"], "TURKCELL");
    }

    #[test]
    fn single_object_with_generic_names() {
        let body = json!({"id": "abc", "from": "+905321234567", "to": "4609", "body": "TSA RET",
            "timestamp": "2026-03-01T10:00:00Z"});
        let m = &parse_mo(body.to_string().as_bytes()).unwrap()[0];
        assert_eq!((m.id.as_str(), m.body.as_str()), ("abc", "TSA RET"));
        assert_eq!(
            m.received_at.unwrap().to_rfc3339(),
            "2026-03-01T10:00:00+00:00"
        );
    }

    #[test]
    fn netgsm_inbox_without_ids_gets_a_stable_hash() {
        let body = json!({"code": "00", "messages": [
            {"message": "RET", "sender": "905321234567", "receiver": "8508400000", "datetime": "01032026100000"},
            {"message": "RET", "sender": "905321234567", "receiver": "8508400000", "datetime": "01032026100001"}]});
        let a = parse_mo(body.to_string().as_bytes()).unwrap();
        let b = parse_mo(body.to_string().as_bytes()).unwrap();
        assert_eq!(a[0].id, b[0].id);
        assert_ne!(a[0].id, a[1].id);
        assert!(a[0].id.starts_with("h:"));
        assert_eq!(
            a[0].received_at.unwrap().to_rfc3339(),
            "2026-03-01T07:00:00+00:00"
        );
    }

    #[test]
    fn time_formats() {
        let cases = [
            ("01.03.2026 10:00:00", "2026-03-01T07:00:00+00:00"),
            ("2026-03-01T10:00:00", "2026-03-01T07:00:00+00:00"),
            ("1772359200", "2026-03-01T10:00:00+00:00"),
            ("1772359200000", "2026-03-01T10:00:00+00:00"),
        ];
        for (s, want) in cases {
            assert_eq!(
                parse_time(s).map(|t| t.to_rfc3339()).as_deref(),
                Some(want),
                "{s}"
            );
        }
        assert_eq!(parse_time("yesterday"), None);
        let items =
            parse_mo_items(br#"[{"id":1,"from":"1","to":"2","body":"x","date":"soon"},{"id":2,"from":"1","to":"2","body":"y"}]"#)
                .unwrap();
        assert_eq!(
            items[0],
            Err(MoError::BadTime {
                index: 0,
                name: "time"
            })
        );
        assert_eq!(items[1].as_ref().unwrap().received_at, None);
    }

    #[test]
    fn typed_errors_name_field_and_index() {
        let e =
            parse_mo(br#"[{"id":1,"from":"1","to":"2","body":"a"},{"id":2,"to":"2","body":"b"}]"#);
        assert!(matches!(
            e,
            Err(MoError::MissingField {
                index: 1,
                field: "from",
                ..
            })
        ));
        let msg = e.unwrap_err().to_string();
        assert!(
            msg.contains("message 1") && msg.contains("source_addr"),
            "{msg}"
        );
        let e = parse_mo(br#"{"from":"1","to":"2","body":"a"}"#);
        assert!(matches!(e, Err(MoError::MissingField { field: "id", .. })));
        let e = parse_mo(br#"{"id":1,"from":"1","to":"  ","body":"a"}"#);
        assert!(matches!(e, Err(MoError::MissingField { field: "to", .. })));
        let e = parse_mo(br#"{"id":1,"from":"1","to":"2"}"#);
        assert!(matches!(
            e,
            Err(MoError::MissingField { field: "body", .. })
        ));
        let e = parse_mo(br#"{"id":1,"from":["1"],"to":"2","body":"a"}"#);
        assert_eq!(
            e,
            Err(MoError::WrongType {
                index: 0,
                name: "from".into()
            })
        );
        assert_eq!(parse_mo(br#"[1]"#), Err(MoError::NotAnObject { index: 0 }));
        assert_eq!(parse_mo(b"\"RET\""), Err(MoError::NotObjectOrArray));
        assert!(matches!(parse_mo(b"{not json"), Err(MoError::Json(_))));
        assert_eq!(parse_mo(b"[]"), Ok(vec![]));
        let many = format!("[{}]", vec!["{}"; MAX_MESSAGES + 1].join(","));
        assert_eq!(
            parse_mo(many.as_bytes()),
            Err(MoError::TooMany(MAX_MESSAGES + 1))
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), s in "\\PC{0,80}") {
            let _ = parse_mo(&bytes);
            let _ = parse_time(&s);
        }
    }
}
