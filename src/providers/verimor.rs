//! Verimor SMS API v2 (user guide): credentials in the body (send) or the query (inbox).
//! Send `POST /v2/send.json` `{"username","password","source_addr","messages":[{"msg","dest"}]}`
//! → `200` with the campaign id as plain text, `400` with an error word. Inbox
//! `GET /v2/inbound_messages?greater_than=` (100 a page) or `from_time`/`to_time`.

use async_trait::async_trait;
use chrono_tz::Europe::Istanbul;

use super::{Account, ApiFailure, InboxQuery, SmsApi, status_failure, transport};

pub const BASE_URL: &str = "https://sms.verimor.com.tr";

pub struct VerimorApi(Account);

impl VerimorApi {
    pub fn new(base: &str, user: &str, password: &str) -> Result<Self, ApiFailure> {
        Account::new(base, user, password).map(Self)
    }
}

#[async_trait]
impl SmsApi for VerimorApi {
    async fn send(&self, from: &str, to: &str, text: &str) -> Result<String, ApiFailure> {
        let a = &self.0;
        let body = serde_json::json!({
            "username": a.user,
            "password": a.secret,
            "source_addr": from,
            "messages": [{"msg": text, "dest": to.trim_start_matches('+')}],
        });
        let r = a
            .http
            .post(format!("{}/v2/send.json", a.base))
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = r.status();
        let text = r.text().await.map_err(transport)?;
        if status.is_success() {
            return Ok(text.trim().to_string());
        }
        Err(status_failure(status, &text))
    }

    async fn inbox(&self, query: &InboxQuery) -> Result<Vec<serde_json::Value>, ApiFailure> {
        let fmt = |t: &chrono::DateTime<chrono::Utc>| {
            t.with_timezone(&Istanbul)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let a = &self.0;
        let mut params = vec![("username", a.user.clone()), ("password", a.secret.clone())];
        match query {
            InboxQuery::After(id) => params.push(("greater_than", id.to_string())),
            InboxQuery::Between(from, to) => {
                params.push(("from_time", fmt(from)));
                params.push(("to_time", fmt(to)));
            }
            InboxQuery::All => {}
        }
        let r = a
            .http
            .get(format!("{}/v2/inbound_messages", a.base))
            .query(&params)
            .send()
            .await
            .map_err(transport)?;
        let status = r.status();
        let text = r.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(status_failure(status, &text));
        }
        match serde_json::from_str(&text) {
            Ok(serde_json::Value::Array(a)) => Ok(a),
            _ => Err(ApiFailure::Permanent(
                "Verimor inbox answer is not a JSON array".into(),
            )),
        }
    }
}
