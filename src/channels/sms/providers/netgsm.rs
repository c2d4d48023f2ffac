//! Netgsm.
//!
//! Pull (REST v2, `netgsm/netgsm-sms-js` openapi.json): `GET /sms/rest/v2/inbox?startdate&stopdate`
//! (`ddMMyyyyHHmmss`, HTTP Basic usercode:password) → `{"code":"00","description":…,
//! "messages":[{"message","sender","receiver","datetime"}]}`; the SDK's fixtures show national
//! senders (`5551234567`) and `dd.MM.yyyy HH:mm:ss` Istanbul times. No message id: the key is
//! derived from sender, receiver, time and text. At most 30 days per query.
//! Push: not in the v2 specification. Older integrations report a URL push with Turkish fields
//! (`ceptel`/`telno`, `mesaj`, `tarih`, `aboneno`), form-encoded or JSON; it is accepted in that
//! shape, unconfirmed, behind a path token and/or source-address list.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Istanbul;
use serde_json::Value;

use super::{BatchError, Fields, ItemResult, json_items, text_field};

const TIME_FORMATS: &[&str] = &[
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d%m%Y%H%M%S",
    "%d%m%Y%H%M",
    "%Y-%m-%d %H:%M:%S",
];

/// Longest window one inbox query may cover.
pub const MAX_QUERY_DAYS: i64 = 30;

/// `ddMMyyyyHHmmss` in Istanbul time, the inbox query's parameter format.
pub fn query_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Istanbul)
        .format("%d%m%Y%H%M%S")
        .to_string()
}

pub fn inbox_item(index: usize, v: &Value) -> ItemResult {
    Fields {
        index,
        raw: v,
        id: None,
        from: text_field(v, &["sender"]),
        to: text_field(v, &["receiver"]),
        body: v.get("message").and_then(Value::as_str).map(str::to_string),
        time_raw: text_field(v, &["datetime"]),
        time_formats: TIME_FORMATS,
        time_required: true,
    }
    .build()
}

fn push_item(index: usize, v: &Value) -> ItemResult {
    Fields {
        index,
        raw: v,
        id: None,
        from: text_field(v, &["ceptel", "telno", "sender"]),
        to: text_field(v, &["aboneno", "receiver"]),
        body: v
            .get("mesaj")
            .or_else(|| v.get("message"))
            .and_then(Value::as_str)
            .map(str::to_string),
        time_raw: text_field(v, &["tarih", "datetime"]),
        time_formats: TIME_FORMATS,
        time_required: true,
    }
    .build()
}

pub fn parse_push(content_type: Option<&str>, body: &[u8]) -> Result<Vec<ItemResult>, BatchError> {
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let items = if form {
        let map: serde_json::Map<String, Value> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        vec![Value::Object(map)]
    } else {
        json_items(body)?
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, v)| push_item(i, v))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_items_get_e164_and_a_key_shared_with_the_push() {
        let pulled: Value = serde_json::from_str(
            r#"{"message":"RET DEMO","sender":"5551234567","receiver":"8503050000","datetime":"15.01.2023 14:30:00"}"#,
        )
        .unwrap();
        let a = inbox_item(0, &pulled).unwrap();
        assert_eq!(a.from, "+905551234567");
        assert_eq!(a.time.unwrap().to_rfc3339(), "2023-01-15T11:30:00+00:00");
        assert!(a.id.starts_with("h:"));
        let pushed = parse_push(
            Some("application/x-www-form-urlencoded"),
            b"ceptel=05551234567&mesaj=RET+DEMO&tarih=15012023143000&aboneno=908503050000",
        )
        .unwrap()
        .remove(0)
        .unwrap();
        assert_eq!(pushed.id, a.id);
        let no_time: Value = serde_json::from_str(
            r#"{"message":"RET","sender":"5551234567","receiver":"8503050000"}"#,
        )
        .unwrap();
        assert_eq!(inbox_item(0, &no_time).unwrap_err().code, "missing_time");
        assert_eq!(query_time(a.time.unwrap()), "15012023143000");
    }
}
