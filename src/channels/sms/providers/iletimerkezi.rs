//! İleti Merkezi.
//!
//! Inbound SMS only by pull: `POST /v1/get-inbox/json` with the authentication block only
//! (`{"request":{"authentication":{"key","hash"}}}`), no paging or time parameters documented;
//! its webhook carries delivery reports only, so no push is accepted for this kind. The item
//! fields (date, sender, text, account number, maybe an id) are read under the names below; the
//! published page lists them in prose only, so the names are an assumption to confirm.

use serde_json::Value;

use super::{BatchError, Fields, ItemResult, text_field};

const TIME_FORMATS: &[&str] = &["%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"];

pub fn parse_push(_body: &[u8]) -> Result<Vec<ItemResult>, BatchError> {
    Err(BatchError(
        "İleti Merkezi pushes delivery reports only; inbound SMS are polled (get-inbox)".into(),
    ))
}

pub fn item(index: usize, v: &Value) -> ItemResult {
    Fields {
        index,
        raw: v,
        id: text_field(v, &["id", "messageId"]),
        from: text_field(v, &["sender", "from", "gsm"]),
        to: text_field(v, &["number", "receiver", "to", "shortcode"]),
        body: ["text", "message", "content", "body"]
            .iter()
            .find_map(|n| v.get(*n).and_then(Value::as_str))
            .map(str::to_string),
        time_raw: text_field(v, &["date", "receivedAt", "received_at"]),
        time_formats: TIME_FORMATS,
        time_required: true,
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_with_and_without_an_id() {
        let v: Value = serde_json::from_str(
            r#"{"id":"77","date":"2026-11-23 12:00:00","sender":"905321234567","text":"DEMO RET","number":"7889"}"#,
        )
        .unwrap();
        let m = item(0, &v).unwrap();
        assert_eq!(
            (m.id.as_str(), m.from.as_str(), m.to.as_str()),
            ("77", "+905321234567", "7889")
        );
        assert_eq!(m.time.unwrap().to_rfc3339(), "2026-11-23T09:00:00+00:00");
        let v: Value = serde_json::from_str(
            r#"{"date":"2026-11-23 12:00:00","sender":"905321234567","text":"DEMO RET","number":"7889"}"#,
        )
        .unwrap();
        assert!(item(0, &v).unwrap().id.starts_with("h:"));
        assert!(parse_push(b"{}").is_err());
    }
}
