//! `[links]`: short links for the web opt-out channel.

use serde::{Deserialize, Serialize};

use super::code::{MAX_CODE_LEN, MIN_CODE_LEN};
use crate::secret::Secret;

/// Upper bound for `links.max_bulk`.
pub const MAX_BULK_LIMIT: usize = 10_000;

/// The development key in `config/default.toml`; refused in live mode.
pub const DEV_CODE_KEY: &str = "dev-link-key-change-me-0123456789";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinksConfig {
    /// A short link is this base followed by the code, e.g. `https://r.example.com/`.
    /// Empty: `{server.public_base_url}/r/`.
    pub public_link_base: String,
    /// Characters per code (base62, ~5.95 bits each; 12 ≈ 71 bits).
    pub code_length: usize,
    /// HMAC key that turns (brand, recipient, type, campaign) into a code. Keep it secret and
    /// stable: the same key gives the same link again. Old links keep working after a change.
    pub code_key: Secret,
    /// Days a freshly minted link stays valid (minting it again extends it).
    pub expiry_days: u32,
    /// Most links one bulk call may mint.
    pub max_bulk: usize,
    /// Page views per client IP per minute (GET /r/{code}).
    pub get_per_minute: u32,
    /// Confirmations per client IP per minute (POST /r/{code}).
    pub post_per_minute: u32,
}

impl Default for LinksConfig {
    fn default() -> Self {
        Self {
            public_link_base: String::new(),
            code_length: 12,
            code_key: Secret::new(DEV_CODE_KEY),
            expiry_days: 400,
            max_bulk: 5_000,
            get_per_minute: 60,
            post_per_minute: 20,
        }
    }
}

impl LinksConfig {
    /// Every problem with this section; `live` when `iys.mode = "live"`.
    pub fn problems(&self, live: bool) -> Vec<String> {
        let mut p = Vec::new();
        if !self.public_link_base.is_empty() {
            match url::Url::parse(&self.public_link_base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.query().is_none() => {}
                _ => p.push(format!(
                    "links.public_link_base {:?} must be an http(s) URL without a query",
                    self.public_link_base
                )),
            }
        }
        if !(MIN_CODE_LEN..=MAX_CODE_LEN).contains(&self.code_length) {
            p.push(format!(
                "links.code_length must be {MIN_CODE_LEN}..={MAX_CODE_LEN} (at least 60 bits)"
            ));
        }
        if self.code_key.expose().len() < 32 {
            p.push("links.code_key must be at least 32 characters".into());
        }
        if live && self.code_key.expose() == DEV_CODE_KEY {
            p.push("links.code_key: the development key must be replaced in live mode".into());
        }
        if self.expiry_days == 0 {
            p.push("links.expiry_days must be at least 1".into());
        }
        if !(1..=MAX_BULK_LIMIT).contains(&self.max_bulk) {
            p.push(format!("links.max_bulk must be 1..={}", MAX_BULK_LIMIT));
        }
        if self.get_per_minute == 0 || self.post_per_minute == 0 {
            p.push("links.get_per_minute and links.post_per_minute must be at least 1".into());
        }
        p
    }

    /// The prefix a code is appended to (always ends in `/`).
    pub fn link_base(&self, public_base_url: &str) -> String {
        let base = if self.public_link_base.is_empty() {
            format!("{}/r/", public_base_url.trim_end_matches('/'))
        } else {
            self.public_link_base.clone()
        };
        if base.ends_with('/') {
            base
        } else {
            format!("{base}/")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_outside_live_mode_only() {
        let c = LinksConfig::default();
        assert!(c.problems(false).is_empty(), "{:?}", c.problems(false));
        let live = c.problems(true);
        assert!(
            live.iter().any(|p| p.contains("development key")),
            "{live:?}"
        );
    }

    #[test]
    fn short_codes_and_bad_bases_are_refused() {
        let c = LinksConfig {
            code_length: 8,
            public_link_base: "ftp://x/".into(),
            code_key: Secret::new("short"),
            ..LinksConfig::default()
        };
        let p = c.problems(false).join("\n");
        assert!(p.contains("code_length"), "{p}");
        assert!(p.contains("public_link_base"), "{p}");
        assert!(p.contains("32 characters"), "{p}");
    }

    #[test]
    fn link_base_defaults_to_the_public_url() {
        let c = LinksConfig::default();
        assert_eq!(c.link_base("https://x.example/"), "https://x.example/r/");
        let c = LinksConfig {
            public_link_base: "https://r.example.com".into(),
            ..LinksConfig::default()
        };
        assert_eq!(c.link_base("https://x.example"), "https://r.example.com/");
    }
}
