//! İleti Merkezi API v1 (iletimerkezi.com/docs/api): every call a JSON POST with
//! `request.authentication.{key,hash}`; answers `response.status.{code,message}` (200 = done,
//! 401 = credentials or API access off in the panel). Send `POST /v1/send-sms/json`
//! `request.order.{sender, iys, message:{text, receipents:{number[]}}}` → `response.order.id`.
//! Inbox `POST /v1/get-inbox/json` with the authentication block only.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{Account, ApiFailure, InboxQuery, SmsApi, status_failure, transport};

pub const BASE_URL: &str = "https://api.iletimerkezi.com";

/// The account's API key is `user`, its hash `secret`.
pub struct IletiMerkeziApi(Account);

impl IletiMerkeziApi {
    pub fn new(base: &str, key: &str, hash: &str) -> Result<Self, ApiFailure> {
        Account::new(base, key, hash).map(Self)
    }

    async fn call(&self, path: &str, mut request: Value) -> Result<Value, ApiFailure> {
        let a = &self.0;
        request["authentication"] = json!({"key": a.user, "hash": a.secret});
        let r = a
            .http
            .post(format!("{}{path}", a.base))
            .json(&json!({ "request": request }))
            .send()
            .await
            .map_err(transport)?;
        let status = r.status();
        let text = r.text().await.map_err(transport)?;
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        let code = match &v["response"]["status"]["code"] {
            Value::String(s) => s.parse::<u16>().ok(),
            Value::Number(n) => n.as_u64().map(|n| n as u16),
            _ => None,
        };
        match code {
            Some(200) if status.is_success() => Ok(v),
            Some(503) => Err(ApiFailure::Retryable("İleti Merkezi status 503".into())),
            Some(c) => Err(ApiFailure::Permanent(format!("İleti Merkezi status {c}"))),
            None if status.is_success() => Err(ApiFailure::Permanent(
                "İleti Merkezi answer without a status".into(),
            )),
            None => Err(status_failure(status, &text)),
        }
    }
}

/// The inbox items: an array, or a single object where the page holds one message.
fn items(v: &Value) -> Vec<Value> {
    let r = &v["response"];
    let list = [
        &r["inbox"]["message"],
        &r["inbox"]["messages"],
        &r["messages"],
        &r["inbox"],
    ]
    .into_iter()
    .find(|x| !x.is_null());
    match list {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(m)) if !m.contains_key("message") => vec![o.clone()],
        _ => Vec::new(),
    }
}

#[async_trait]
impl SmsApi for IletiMerkeziApi {
    async fn send(&self, from: &str, to: &str, text: &str) -> Result<String, ApiFailure> {
        let order = json!({"order": {
            "sender": from,
            // A confirmation the person asked for is not a commercial message.
            "iys": "0",
            "message": {"text": text, "receipents": {"number": [to.trim_start_matches('+')]}},
        }});
        let v = self.call("/v1/send-sms/json", order).await?;
        Ok(match &v["response"]["order"]["id"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        })
    }

    async fn inbox(&self, _query: &InboxQuery) -> Result<Vec<Value>, ApiFailure> {
        let v = self.call("/v1/get-inbox/json", json!({})).await?;
        Ok(items(&v))
    }
}
