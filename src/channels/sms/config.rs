//! `[sms]` configuration: which numbers serve which brands, provider credentials, replies, limits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::keywords::KeywordConfig;
use crate::secret::Secret;

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
    /// Providers with their own adapter (Netgsm, İleti Merkezi, Verimor, generic JSON): push
    /// to /webhooks/sms/{name}, inbox polling, replies through the provider's send API.
    pub providers: Vec<ProviderConfig>,
    /// Twilio Advanced Opt-Out already answered a keyword it recognised (`OptOutType`); a second
    /// confirmation from us is off unless this is set.
    pub reply_after_twilio_opt_out: bool,
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
            providers: Vec::new(),
            reply_after_twilio_opt_out: false,
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

/// Which adapter parses, authenticates, polls and replies for a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Netgsm,
    Iletimerkezi,
    Verimor,
    Generic,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Netgsm => "netgsm",
            ProviderKind::Iletimerkezi => "iletimerkezi",
            ProviderKind::Verimor => "verimor",
            ProviderKind::Generic => "generic",
        }
    }

    /// Whether the provider offers an inbox query the relay can poll.
    pub fn has_inbox(self) -> bool {
        !matches!(self, ProviderKind::Generic)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Unique name: the push path `/webhooks/sms/{name}` and the dedupe namespace.
    pub name: String,
    pub kind: ProviderKind,
    /// The numbers and short codes this provider serves (each also listed in `sms.numbers`);
    /// a message to another number is refused for this provider. Empty: any configured number.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Secret in the push URL (`/webhooks/sms/{name}/{token}`), for providers that sign nothing.
    #[serde(default)]
    pub path_token: Option<Secret>,
    /// Source addresses allowed to push (IPs or CIDR blocks); empty: any.
    #[serde(default)]
    pub allowed_ips: Vec<String>,
    #[serde(default)]
    pub basic_user: Option<String>,
    #[serde(default)]
    pub basic_password: Option<Secret>,
    /// HMAC-SHA256 of the body in `X-Signature` (generic kind only).
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// API credentials for polling and replies: Verimor username + API password, Netgsm
    /// usercode + password, İleti Merkezi API key + hash.
    #[serde(default)]
    pub api_user: Option<String>,
    #[serde(default)]
    pub api_secret: Option<Secret>,
    /// Override of the provider's API address (tests, proxies).
    #[serde(default)]
    pub api_base_url: Option<String>,
    /// Sender header (başlık) of the free replies; empty: no replies through this provider.
    #[serde(default)]
    pub reply_from: Option<String>,
    #[serde(default)]
    pub poll: PollConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// Poll the inbox (when the kind has one and API credentials are set).
    pub enabled: bool,
    pub interval_seconds: u64,
    /// Each query reaches this far back before the cursor, so a message the provider lists late
    /// is still seen; what was seen is skipped by its id.
    pub overlap_seconds: u64,
    /// How far back the very first poll reads.
    pub initial_lookback_hours: u64,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_seconds: 60,
            overlap_seconds: 900,
            initial_lookback_hours: 72,
        }
    }
}

impl ProviderConfig {
    pub fn api_credentials(&self) -> Option<(&str, &str)> {
        match (&self.api_user, &self.api_secret) {
            (Some(u), Some(p)) if !u.is_empty() && !p.expose().is_empty() => {
                Some((u.as_str(), p.expose()))
            }
            _ => None,
        }
    }

    pub fn polls(&self) -> bool {
        self.kind.has_inbox() && self.poll.enabled && self.api_credentials().is_some()
    }

    fn problems(&self, numbers: &[String], p: &mut Vec<String>) {
        let n = &self.name;
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            p.push(format!(
                "sms.providers {n:?}: name must be letters, digits, - or _ (it is a URL path segment)"
            ));
        }
        let token = self
            .path_token
            .as_ref()
            .is_some_and(|s| !s.expose().is_empty());
        if self
            .path_token
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            p.push(format!(
                "sms.providers {n:?}: path_token must be at least 16 characters"
            ));
        }
        let basic = self.basic_user.is_some()
            && self
                .basic_password
                .as_ref()
                .is_some_and(|s| !s.expose().is_empty());
        let hmac = self
            .hmac_secret
            .as_ref()
            .is_some_and(|s| !s.expose().is_empty());
        if hmac && self.kind != ProviderKind::Generic {
            p.push(format!(
                "sms.providers {n:?}: hmac_secret is for kind = \"generic\" ({} signs nothing); use path_token and/or allowed_ips",
                self.kind.as_str()
            ));
        }
        // Pull-only providers need no push credentials; a push route must not be open to anyone.
        let push_auth = token || basic || hmac || !self.allowed_ips.is_empty();
        if !push_auth && !self.polls() {
            p.push(format!(
                "sms.providers {n:?}: set path_token, allowed_ips or basic_user + basic_password for pushes, or api_user + api_secret to poll"
            ));
        }
        for ip in &self.allowed_ips {
            if super::providers::IpRule::parse(ip).is_none() {
                p.push(format!(
                    "sms.providers {n:?}: allowed_ips {ip:?} is not an IP or CIDR block"
                ));
            }
        }
        for num in &self.numbers {
            let norm = super::routing::normalise_number(num);
            if !numbers.contains(&norm) {
                p.push(format!(
                    "sms.providers {n:?}: number {num:?} is not listed in sms.numbers"
                ));
            }
        }
        if self.poll.interval_seconds == 0 {
            p.push(format!(
                "sms.providers {n:?}: poll.interval_seconds must be at least 1"
            ));
        }
        if self.kind == ProviderKind::Netgsm && self.poll.initial_lookback_hours > 24 * 30 {
            p.push(format!(
                "sms.providers {n:?}: poll.initial_lookback_hours is at most 720 for Netgsm (30 days per query)"
            ));
        }
    }
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
        let numbers: Vec<String> = self
            .numbers
            .iter()
            .map(|n| super::routing::normalise_number(&n.number))
            .collect();
        let mut names: Vec<&str> = self.generic.iter().map(|g| g.name.as_str()).collect();
        for pc in &self.providers {
            if names.contains(&pc.name.as_str()) {
                p.push(format!(
                    "sms.providers {:?}: name used twice (also in sms.generic or sms.providers)",
                    pc.name
                ));
            }
            names.push(&pc.name);
            pc.problems(&numbers, &mut p);
        }
        if self.rate_limit.per_sender_per_minute == 0 {
            p.push("sms.rate_limit values must be at least 1".into());
        }
        p
    }
}
