//! One adapter per SMS provider: its push and inbox formats, its numbers and times, its push
//! authentication. Each turns the provider's items into [`MoItem`]s for the shared intake
//! (`super::intake`), which feeds the one SMS core (`super::inbound::handle`). Adding a provider
//! is one module here, one client in `crate::providers` and a config kind.

pub mod generic;
pub mod iletimerkezi;
pub mod netgsm;
pub mod verimor;

use crate::telemetry::chain;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::config::{ProviderConfig, ProviderKind, SmsConfig};
use crate::domain::Recipient;
use crate::error::ApiError;
use crate::http::credentials::{verify_basic, verify_hmac_sha256};
use crate::providers::SmsApi;

/// One inbound message as an adapter read it, numbers normalised, time in UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct MoItem {
    /// The provider's message id, or for providers without one a stable key (`h:…`) of sender,
    /// receiver, time and text, the same for a pushed and a pulled copy.
    pub id: String,
    /// E.164.
    pub from: String,
    pub to: String,
    pub body: String,
    /// The provider's receipt time (`None`: the provider sent none).
    pub time: Option<DateTime<Utc>>,
    pub raw: Value,
}

/// Why one item of a batch could not be taken; the others still are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {index}: {message}")]
pub struct ItemError {
    pub index: usize,
    /// The provider's id when it could be read.
    pub id: Option<String>,
    pub code: &'static str,
    pub message: String,
    pub raw: String,
}

impl ItemError {
    pub fn new(index: usize, raw: &Value, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            index,
            id: None,
            code,
            message: message.into(),
            raw: raw.to_string(),
        }
    }
}

pub type ItemResult = Result<MoItem, ItemError>;

/// A body none of whose items can be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BatchError(pub String);

/// At most this many items in one push or inbox page.
pub const MAX_ITEMS: usize = super::generic::MAX_MESSAGES;

/// The key for messages without a provider id: the same for every copy of one message
/// (pushed, pulled, pulled again), whatever the provider's formatting of numbers and times.
pub fn stable_key(from_e164: &str, to: &str, time: DateTime<Utc>, body: &str) -> String {
    let mut h = Sha256::new();
    let to = super::routing::normalise_number(to);
    let t = time.timestamp().to_string();
    for part in [from_e164, to.as_str(), t.as_str(), body] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("h:{}", hex::encode(&h.finalize()[..16]))
}

/// A sender number in any national or international form → E.164.
pub fn phone(s: &str) -> Option<String> {
    match Recipient::parse(s) {
        Ok(Recipient::Phone(p)) => Some(p),
        _ => None,
    }
}

/// Istanbul wall-clock time in one of `formats` (or RFC 3339 with its own offset) → UTC.
pub fn istanbul_time(s: &str, formats: &[&str]) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    formats
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .and_then(|naive| Istanbul.from_local_datetime(&naive).earliest())
        .map(|t| t.with_timezone(&Utc))
}

/// A string or number field of a JSON object (providers send ids and numbers as either).
pub fn text_field(v: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match v.get(*n) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Builds an item from the fields every adapter reads, with the checks they share.
pub struct Fields<'a> {
    pub index: usize,
    pub raw: &'a Value,
    pub id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub body: Option<String>,
    pub time_raw: Option<String>,
    pub time_formats: &'a [&'a str],
    /// Without a provider id, an item needs a time to get a stable key.
    pub time_required: bool,
}

impl Fields<'_> {
    pub fn build(self) -> ItemResult {
        if !self.raw.is_object() {
            return Err(ItemError::new(
                self.index,
                self.raw,
                "not_an_object",
                "not a JSON object",
            ));
        }
        let err = |code, msg: &str| {
            let mut e = ItemError::new(self.index, self.raw, code, msg);
            e.id = self.id.clone();
            e
        };
        let from = self
            .from
            .as_deref()
            .ok_or_else(|| err("missing_sender", "no sender number"))?;
        let from =
            phone(from).ok_or_else(|| err("invalid_sender", "sender is not a phone number"))?;
        let to = self
            .to
            .clone()
            .ok_or_else(|| err("missing_receiver", "no receiver number"))?;
        let body = self.body.clone().unwrap_or_default();
        if body.chars().count() > 2000 || body.contains('\0') {
            return Err(err("invalid_text", "text is too long or contains NUL"));
        }
        let time = match self.time_raw.as_deref() {
            None => None,
            Some(t) => Some(istanbul_time(t, self.time_formats).ok_or_else(|| {
                err(
                    "invalid_time",
                    "receipt time is not in the provider's format",
                )
            })?),
        };
        let id = match (&self.id, time) {
            (Some(id), _) => id.clone(),
            (None, Some(t)) => stable_key(&from, &to, t, &body),
            (None, None) if self.time_required => {
                return Err(err("missing_time", "no message id and no receipt time"));
            }
            (None, None) => return Err(err("missing_id", "no message id")),
        };
        Ok(MoItem {
            id,
            from,
            to,
            body,
            time,
            raw: self.raw.clone(),
        })
    }
}

/// The items of a JSON body that is one object or an array of them.
pub fn json_items(body: &[u8]) -> Result<Vec<Value>, BatchError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| BatchError(format!("body is not valid JSON: {e}")))?;
    let items = match v {
        Value::Array(a) => a,
        o @ Value::Object(_) => vec![o],
        _ => {
            return Err(BatchError(
                "expected a JSON object or an array of objects".into(),
            ));
        }
    };
    if items.len() > MAX_ITEMS {
        return Err(BatchError(format!(
            "{} messages in one request; at most {MAX_ITEMS} accepted",
            items.len()
        )));
    }
    Ok(items)
}

/// Parses a push body of this provider's kind.
pub fn parse_push(
    kind: ProviderKind,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<ItemResult>, BatchError> {
    match kind {
        ProviderKind::Verimor => verimor::parse_push(body),
        ProviderKind::Netgsm => netgsm::parse_push(content_type, body),
        ProviderKind::Iletimerkezi => iletimerkezi::parse_push(body),
        ProviderKind::Generic => generic::parse_push(body),
    }
}

/// Parses the items one inbox query returned.
pub fn parse_pulled(kind: ProviderKind, items: &[Value]) -> Vec<ItemResult> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match kind {
            ProviderKind::Verimor => verimor::item(i, v),
            ProviderKind::Netgsm => netgsm::inbox_item(i, v),
            ProviderKind::Iletimerkezi => iletimerkezi::item(i, v),
            ProviderKind::Generic => generic::item(i, v),
        })
        .collect()
}

/// An allowed source: one address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRule {
    net: IpAddr,
    prefix: u8,
}

impl IpRule {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { net: addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.net, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            _ => ip,
        };
        let (a, b, bits) = match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
            (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
            _ => return false,
        };
        if self.prefix == 0 {
            return true;
        }
        let shift = bits - u32::from(self.prefix);
        (a >> shift) == (b >> shift)
    }
}

/// A configured provider as the running service holds it.
pub struct Provider {
    pub config: ProviderConfig,
    allowed: Vec<IpRule>,
    served: Vec<String>,
    /// The provider's API (inbox and send), when credentials are configured.
    pub api: Option<Arc<dyn SmsApi>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.config.name)
            .field("kind", &self.config.kind)
            .finish_non_exhaustive()
    }
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Self {
        let api = crate::providers::client_for(&config)
            .map_err(|e| tracing::error!(provider = %config.name, error = %chain(&e), "provider API is not usable"))
            .ok()
            .flatten();
        Self {
            allowed: config
                .allowed_ips
                .iter()
                .filter_map(|s| IpRule::parse(s))
                .collect(),
            served: config
                .numbers
                .iter()
                .map(|n| super::routing::normalise_number(n))
                .collect(),
            api,
            config,
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Whether a message to `to` is this provider's to deliver (any number when none listed).
    pub fn serves(&self, to: &str) -> bool {
        self.served.is_empty() || self.served.contains(&super::routing::normalise_number(to))
    }

    /// Checks a push: the path token, the source address, Basic credentials and (generic kind)
    /// the HMAC, each where configured; all configured ones must pass.
    pub fn authenticate_push(
        &self,
        token: Option<&str>,
        ip: Option<IpAddr>,
        authorization: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<(), ApiError> {
        let c = &self.config;
        let mut any = false;
        if let Some(want) = c.path_token.as_ref().filter(|t| !t.expose().is_empty()) {
            any = true;
            let ok =
                token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(want.expose().as_bytes())));
            if !ok {
                return Err(ApiError::forbidden(
                    "wrong or missing push token in the URL",
                ));
            }
        }
        if !self.allowed.is_empty() {
            any = true;
            if !ip.is_some_and(|ip| self.allowed.iter().any(|r| r.contains(ip))) {
                return Err(ApiError::forbidden("source address is not in allowed_ips"));
            }
        }
        if let (Some(u), Some(p)) = (&c.basic_user, &c.basic_password) {
            any = true;
            if !authorization.is_some_and(|h| verify_basic(h, u, p.expose())) {
                return Err(ApiError::unauthorized(
                    "HTTP Basic credentials are missing or wrong",
                ));
            }
        }
        if let Some(secret) = c.hmac_secret.as_ref().filter(|s| !s.expose().is_empty()) {
            any = true;
            if !signature.is_some_and(|s| verify_hmac_sha256(secret.expose().as_bytes(), body, s)) {
                return Err(ApiError::forbidden("X-Signature does not match the body"));
            }
        }
        if !any {
            return Err(ApiError::forbidden(
                "this provider is configured for polling only",
            ));
        }
        Ok(())
    }
}

/// The configured providers by name.
#[derive(Debug, Default)]
pub struct Registry {
    by_name: HashMap<String, Arc<Provider>>,
}

impl Registry {
    pub fn build(sms: &SmsConfig) -> Self {
        Self {
            by_name: sms
                .providers
                .iter()
                .map(|c| (c.name.clone(), Arc::new(Provider::new(c.clone()))))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.by_name.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.by_name.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_rules() {
        let r = IpRule::parse("203.0.113.0/24").unwrap();
        assert!(r.contains("203.0.113.77".parse().unwrap()));
        assert!(r.contains("::ffff:203.0.113.5".parse().unwrap()));
        assert!(!r.contains("203.0.114.1".parse().unwrap()));
        let one = IpRule::parse("198.51.100.7").unwrap();
        assert!(one.contains("198.51.100.7".parse().unwrap()));
        assert!(!one.contains("198.51.100.8".parse().unwrap()));
        assert!(
            IpRule::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        for bad in ["", "10.0.0.0/33", "nope", "10.0.0/8"] {
            assert!(IpRule::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn stable_key_ignores_number_and_time_formatting() {
        let t = istanbul_time("15.01.2023 14:30:00", &["%d.%m.%Y %H:%M:%S"]).unwrap();
        let u = istanbul_time("2023-01-15T14:30:00+03:00", &[]).unwrap();
        assert_eq!(t, u);
        let a = stable_key("+905551234567", "8503050000", t, "RET");
        let b = stable_key("+905551234567", "+908503050000", u, "RET");
        assert_eq!(a, b);
        assert_ne!(a, stable_key("+905551234567", "8503050000", t, "RET DEMO"));
        assert_eq!(phone("5551234567").as_deref(), Some("+905551234567"));
        assert_eq!(phone("905551234567").as_deref(), Some("+905551234567"));
        assert_eq!(phone("12"), None);
    }
}
