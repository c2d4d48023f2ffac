//! Verimor (Verimor SMS API user guide, "GELEN SMS ALIMI").
//!
//! Push: a JSON array POSTed to the URL set in OİM (SMS Ayarlarım), items
//! `{"message_id":1234,"type":"inbound","received_at":"2017-01-01 09:00:00","network":"TURKCELL",
//! "source_addr":"905319876543","destination_addr":"908501234567","keyword":"","content":"…"}`;
//! anything but `200 OK` is retried three more times at five-minute intervals, then never again.
//! Nothing is signed: authenticate with a path token and/or the source address.
//! Pull: `GET /v2/inbound_messages?greater_than=<message_id>` (100 per page) or
//! `from_time`/`to_time`; there `received_at` carries its offset (`2017-01-01T09:00:00.000+03:00`).

use serde_json::Value;

use super::{BatchError, Fields, ItemResult, json_items, text_field};

/// Push times are Istanbul wall-clock; pulled ones are RFC 3339 (read by `istanbul_time`).
const TIME_FORMATS: &[&str] = &["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%.f"];

/// Items per `greater_than` page, as documented.
pub const PAGE_SIZE: usize = 100;

pub fn parse_push(body: &[u8]) -> Result<Vec<ItemResult>, BatchError> {
    Ok(json_items(body)?
        .iter()
        .enumerate()
        .map(|(i, v)| item(i, v))
        .collect())
}

pub fn item(index: usize, v: &Value) -> ItemResult {
    Fields {
        index,
        raw: v,
        id: text_field(v, &["message_id"]),
        from: text_field(v, &["source_addr"]),
        to: text_field(v, &["destination_addr"]),
        body: v.get("content").and_then(Value::as_str).map(str::to_string),
        time_raw: text_field(v, &["received_at"]),
        time_formats: TIME_FORMATS,
        time_required: false,
    }
    .build()
}

/// The numeric message id, for the `greater_than` cursor.
pub fn message_id(v: &Value) -> Option<i64> {
    text_field(v, &["message_id"]).and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_copies_read_alike() {
        let push = br#"[{"message_id":1234,"type":"inbound","received_at":"2017-01-01 09:00:00",
            "network":"TURKCELL","source_addr":"905319876543","destination_addr":"908501234567",
            "keyword":"","content":"verimor deneme"}]"#;
        let pulled: Value = serde_json::from_str(
            r#"{"message_id":1234,"received_at":"2017-01-01T09:00:00.000+03:00","network":"TURKCELL",
            "source_addr":"905319876543","destination_addr":"908501234567","keyword":"","content":"verimor deneme"}"#,
        )
        .unwrap();
        let a = parse_push(push).unwrap().remove(0).unwrap();
        let b = item(0, &pulled).unwrap();
        assert_eq!((a.id.as_str(), a.from.as_str()), ("1234", "+905319876543"));
        assert_eq!(a.time, b.time);
        assert_eq!(a.time.unwrap().to_rfc3339(), "2017-01-01T06:00:00+00:00");
        assert_eq!((a.id, a.body), (b.id, b.body));
        assert_eq!(message_id(&pulled), Some(1234));
    }

    #[test]
    fn one_bad_item_alone() {
        let body = br#"[{"message_id":1,"source_addr":"905319876543","destination_addr":"4609","content":"RET","received_at":"010120260900"},
            {"message_id":2,"source_addr":"12","destination_addr":"4609","content":"RET"},
            {"message_id":3,"source_addr":"905319876543","destination_addr":"4609","content":"RET"}]"#;
        let r = parse_push(body).unwrap();
        assert_eq!(r[0].as_ref().unwrap_err().code, "invalid_time");
        assert_eq!(r[1].as_ref().unwrap_err().code, "invalid_sender");
        assert_eq!(r[1].as_ref().unwrap_err().id.as_deref(), Some("2"));
        assert!(r[2].is_ok());
        assert!(parse_push(b"{nope").is_err());
    }
}
