//! Netgsm REST v2 (`netgsm/netgsm-sms-js` openapi.json): HTTP Basic usercode:password.
//! Send `POST /sms/rest/v2/send` `{"msgheader","messages":[{"msg","no"}],"encoding":"TR"}` →
//! `{"code":"00","jobid",…}` (406 with another code when refused; 30 = credentials or IP
//! restriction, 40 = unknown header). Inbox `GET /sms/rest/v2/inbox?startdate&stopdate`.

use async_trait::async_trait;

use super::{Account, ApiFailure, InboxQuery, SmsApi, status_failure, transport};
use crate::channels::sms::providers::netgsm::query_time;

pub const BASE_URL: &str = "https://api.netgsm.com.tr";

pub struct NetgsmApi(Account);

impl NetgsmApi {
    pub fn new(base: &str, user: &str, password: &str) -> Result<Self, ApiFailure> {
        Account::new(base, user, password).map(Self)
    }

    /// Netgsm answers `code` "00" on success, another code (HTTP 406) when it refuses.
    async fn answer(r: reqwest::Response, what: &str) -> Result<serde_json::Value, ApiFailure> {
        let status = r.status();
        let text = r.text().await.map_err(transport)?;
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if status.is_success() && code_of(&v) == "00" {
            return Ok(v);
        }
        if status.is_success() || status.as_u16() == 406 {
            return Err(ApiFailure::Permanent(format!(
                "Netgsm {what} code {:?}",
                code_of(&v)
            )));
        }
        Err(status_failure(status, &text))
    }
}

/// `+905321234567` → `5321234567`, the ten digits the `no` field takes.
fn national(e164: &str) -> String {
    e164.strip_prefix("+90").unwrap_or(e164).to_string()
}

fn code_of(v: &serde_json::Value) -> String {
    match v.get("code") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

#[async_trait]
impl SmsApi for NetgsmApi {
    async fn send(&self, from: &str, to: &str, text: &str) -> Result<String, ApiFailure> {
        let body = serde_json::json!({
            "msgheader": from,
            "encoding": "TR",
            "iysfilter": "0",
            "messages": [{"msg": text, "no": national(to)}],
        });
        let a = &self.0;
        let r = a
            .http
            .post(format!("{}/sms/rest/v2/send", a.base))
            .basic_auth(&a.user, Some(&a.secret))
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let v = Self::answer(r, "send").await?;
        Ok(v.get("jobid")
            .and_then(|j| j.as_str())
            .unwrap_or("")
            .to_string())
    }

    async fn inbox(&self, query: &InboxQuery) -> Result<Vec<serde_json::Value>, ApiFailure> {
        let InboxQuery::Between(from, to) = query else {
            return Err(ApiFailure::Permanent(
                "Netgsm's inbox is queried by time range".into(),
            ));
        };
        let a = &self.0;
        let r = a
            .http
            .get(format!("{}/sms/rest/v2/inbox", a.base))
            .basic_auth(&a.user, Some(&a.secret))
            .query(&[
                ("startdate", query_time(*from)),
                ("stopdate", query_time(*to)),
            ])
            .send()
            .await
            .map_err(transport)?;
        let v = Self::answer(r, "inbox").await?;
        Ok(match v.get("messages") {
            Some(serde_json::Value::Array(items)) => items.clone(),
            _ => Vec::new(),
        })
    }
}
