//! `[sms]` configuration: which numbers serve which brands, provider credentials, replies, limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::domain::keywords::KeywordConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    /// Language of the free replies: "tr" (default) or "en".
    pub reply_language: ReplyLanguage,
    /// Answer messages that are not commands with a short help text (false: no reply).
    pub reply_to_unrecognised: bool,
    /// Inbound numbers / short codes and the brands (keys) each serves.
    pub numbers: Vec<SmsNumber>,
    /// Extra keywords per brand key, on top of the defaults.
    pub brand_keywords: BTreeMap<String, KeywordConfig>,
    /// Providers that push MO messages as JSON to /webhooks/generic/sms.
    pub generic: Vec<GenericProvider>,
    pub rate_limit: SmsRateLimit,
    /// Sends confirmations that cannot go inline (generic providers) through a Twilio-style API.
    pub outbound: Option<OutboundSms>,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            reply_language: ReplyLanguage::Tr,
            reply_to_unrecognised: true,
            numbers: Vec::new(),
            brand_keywords: BTreeMap::new(),
            generic: Vec::new(),
            rate_limit: SmsRateLimit::default(),
            outbound: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplyLanguage {
    Tr,
    En,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsNumber {
    /// E.164 number, national form, or a short code such as "3338".
    pub number: String,
    pub brands: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericProvider {
    /// Provider name, also the dedupe namespace (`verimor`).
    pub name: String,
    /// HMAC-SHA256 secret for the `X-Signature` header over the raw body...
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// ...or HTTP Basic credentials.
    #[serde(default)]
    pub basic_user: Option<String>,
    #[serde(default)]
    pub basic_password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsRateLimit {
    pub per_sender_per_minute: u32,
}

impl Default for SmsRateLimit {
    fn default() -> Self {
        Self {
            per_sender_per_minute: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSms {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    /// Sender number or alphanumeric sender id for confirmations.
    pub from: String,
}

impl SmsConfig {
    pub fn problems(&self, brand_keys: &[&str]) -> Vec<String> {
        let mut p = Vec::new();
        for n in &self.numbers {
            if n.brands.is_empty() {
                p.push(format!(
                    "sms.numbers {:?}: list at least one brand",
                    n.number
                ));
            }
            for b in &n.brands {
                if !brand_keys.contains(&b.as_str()) {
                    p.push(format!("sms.numbers {:?}: unknown brand {b:?}", n.number));
                }
            }
            if super::routing::normalise_number(&n.number).is_empty() {
                p.push(format!(
                    "sms.numbers {:?}: not a number or short code",
                    n.number
                ));
            }
        }
        for k in self.brand_keywords.keys() {
            if !brand_keys.contains(&k.as_str()) {
                p.push(format!("sms.brand_keywords: unknown brand {k:?}"));
            }
        }
        for g in &self.generic {
            let hmac = g
                .hmac_secret
                .as_ref()
                .is_some_and(|s| !s.expose().is_empty());
            let basic = g.basic_user.is_some()
                && g.basic_password
                    .as_ref()
                    .is_some_and(|s| !s.expose().is_empty());
            if !hmac && !basic {
                p.push(format!(
                    "sms.generic {:?}: set hmac_secret or basic_user + basic_password",
                    g.name
                ));
            }
        }
        if self.rate_limit.per_sender_per_minute == 0 {
            p.push("sms.rate_limit values must be at least 1".into());
        }
        p
    }
}
