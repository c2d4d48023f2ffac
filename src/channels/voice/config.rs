//! `[voice]` configuration: which numbers serve which brands, how prompts are played, the key
//! that signs call-state tokens, and the call flow's limits (`[voice.flow]`).

use serde::{Deserialize, Serialize};

use super::flow::BrandRef;
use super::flow::FlowConfig;
use super::render::{PromptMode, Voices};
use crate::channels::sms::routing::normalise_number;
use crate::domain::Brand;
use crate::secret::Secret;

/// Embedded development key for call-state tokens; refused when `iys.mode = "live"`.
pub const DEV_STATE_SECRET: &str = "dev-voice-state-secret-CHANGE-ME-for-production";
/// HMAC-SHA256 keys shorter than this are guessable in practice.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VoiceConfig {
    /// Numbers callers dial and the brands (keys) each serves; several brands → brand menu.
    pub numbers: Vec<VoiceNumber>,
    /// `play`: the recorded WAVs (`<Play>`); `say`: the provider's text-to-speech (`<Say>`).
    pub prompt_mode: PromptMode,
    /// TTS voices for `<Say>` per language (brand names are always spoken).
    pub voices: Voices,
    /// Key for the signed call state in action URLs (at least 32 bytes).
    pub state_secret: Secret,
    /// Where providers fetch the WAVs (default: `{server.public_base_url}/voice-prompts`),
    /// e.g. a CDN holding a copy.
    pub prompts_base_url: Option<String>,
    pub flow: FlowConfig,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            numbers: Vec::new(),
            prompt_mode: PromptMode::Play,
            voices: Voices::default(),
            state_secret: Secret::new(DEV_STATE_SECRET),
            prompts_base_url: None,
            flow: FlowConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceNumber {
    /// E.164 or national form (`0850 123 45 67`).
    pub number: String,
    pub brands: Vec<String>,
}

impl VoiceConfig {
    /// The brands offered on the dialled number `to`, in configured order; empty when the number
    /// is not configured (the caller then hears "unavailable").
    pub fn brands_for(&self, to: &str, brands: &[Brand]) -> Vec<BrandRef> {
        let to = normalise_number(to);
        self.numbers
            .iter()
            .find(|n| !to.is_empty() && normalise_number(&n.number) == to)
            .map(|n| {
                n.brands
                    .iter()
                    .filter_map(|k| brands.iter().find(|b| &b.key == k))
                    .map(BrandRef::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The IVR's settings for requests arriving under `public_base` (no trailing slash).
    pub fn settings(&self, public_base: &str) -> IvrSettings {
        let base = public_base.trim_end_matches('/');
        IvrSettings {
            flow: self.flow.clone(),
            secret: self.state_secret.expose().as_bytes().to_vec(),
            prompts_base: self
                .prompts_base_url
                .clone()
                .unwrap_or_else(|| format!("{base}/voice-prompts")),
            action_base: format!("{base}{}", super::paths::GATHER_ROUTE),
            mode: self.prompt_mode,
            voices: self.voices.clone(),
        }
    }

    pub fn problems(&self, brand_keys: &[&str], live: bool) -> Vec<String> {
        let mut p = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in &self.numbers {
            let norm = normalise_number(&n.number);
            if norm.is_empty() {
                p.push(format!("voice.numbers {:?}: not a phone number", n.number));
            } else if !seen.insert(norm) {
                p.push(format!("voice.numbers {:?}: listed twice", n.number));
            }
            if n.brands.is_empty() {
                p.push(format!(
                    "voice.numbers {:?}: list at least one brand",
                    n.number
                ));
            }
            if n.brands.len() > super::prompts::MAX_BRAND_OPTIONS {
                p.push(format!(
                    "voice.numbers {:?}: the brand menu offers at most {} brands",
                    n.number,
                    super::prompts::MAX_BRAND_OPTIONS
                ));
            }
            for b in &n.brands {
                if !brand_keys.contains(&b.as_str()) {
                    p.push(format!("voice.numbers {:?}: unknown brand {b:?}", n.number));
                }
            }
        }
        let secret = self.state_secret.expose();
        if secret.len() < MIN_SECRET_BYTES {
            p.push(format!(
                "voice.state_secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        if live && secret == DEV_STATE_SECRET {
            p.push(
                "voice.state_secret: the development secret must be replaced when iys.mode = \"live\""
                    .into(),
            );
        }
        if let Some(u) = &self.prompts_base_url
            && !url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            p.push(format!(
                "voice.prompts_base_url {u:?} must be an http(s) URL"
            ));
        }
        let f = &self.flow;
        if f.max_reprompts > 9 {
            p.push("voice.flow.max_reprompts must be at most 9".into());
        }
        for (name, v) in [
            ("menu_timeout_secs", f.menu_timeout_secs),
            ("number_timeout_secs", f.number_timeout_secs),
        ] {
            // Telnyx accepts 1–120 s; the same range suits every TwiML provider.
            if !(1..=120).contains(&v) {
                p.push(format!("voice.flow.{name} must be between 1 and 120"));
            }
        }
        if f.max_turns == 0 {
            p.push("voice.flow.max_turns must be at least 1".into());
        }
        p.extend(super::prompts::check_catalog());
        p
    }
}

/// Static settings the handler holds for the IVR (from config).
#[derive(Debug, Clone)]
pub struct IvrSettings {
    pub flow: FlowConfig,
    /// HMAC key for call-state tokens: at least 32 random bytes.
    pub secret: Vec<u8>,
    /// Public base URL of `voice-prompts/` (served statically).
    pub prompts_base: String,
    /// Public URL of the IVR action route (the Gather action and timeout redirect).
    pub action_base: String,
    pub mode: PromptMode,
    pub voices: Voices,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand(key: &str, code: i64) -> Brand {
        Brand::sample(key, code)
    }

    #[test]
    fn numbers_map_to_brands_in_order_in_any_form() {
        let cfg = VoiceConfig {
            numbers: vec![VoiceNumber {
                number: "0850 123 45 67".into(),
                brands: vec!["b".into(), "a".into(), "gone".into()],
            }],
            ..VoiceConfig::default()
        };
        let brands = [brand("a", 1), brand("b", 2)];
        let got: Vec<i64> = cfg
            .brands_for("+908501234567", &brands)
            .iter()
            .map(|b| b.brand_code)
            .collect();
        assert_eq!(got, vec![2, 1]);
        assert!(cfg.brands_for("+905321234567", &brands).is_empty());
        assert!(cfg.brands_for("", &brands).is_empty());
    }

    #[test]
    fn problems_are_listed() {
        let ok = VoiceConfig::default();
        assert_eq!(ok.problems(&["a"], false), Vec::<String>::new());
        let live = ok.problems(&["a"], true);
        assert!(
            live.iter().any(|p| p.contains("development secret")),
            "{live:?}"
        );

        let bad = VoiceConfig {
            numbers: vec![
                VoiceNumber {
                    number: "abc".into(),
                    brands: vec![],
                },
                VoiceNumber {
                    number: "+908501234567".into(),
                    brands: vec!["zz".into()],
                },
                VoiceNumber {
                    number: "08501234567".into(),
                    brands: vec!["a".into()],
                },
            ],
            state_secret: Secret::new("short"),
            prompts_base_url: Some("ftp://x".into()),
            flow: FlowConfig {
                menu_timeout_secs: 0,
                max_turns: 0,
                ..FlowConfig::default()
            },
            ..VoiceConfig::default()
        };
        let p = bad.problems(&["a"], false).join("\n");
        for needle in [
            "not a phone number",
            "at least one brand",
            "unknown brand \"zz\"",
            "listed twice",
            "at least 32 bytes",
            "prompts_base_url",
            "menu_timeout_secs",
            "max_turns",
        ] {
            assert!(p.contains(needle), "{needle} missing in:\n{p}");
        }
    }

    #[test]
    fn settings_use_the_public_base() {
        let s = VoiceConfig::default().settings("https://relay.example/");
        assert_eq!(s.prompts_base, "https://relay.example/voice-prompts");
        assert_eq!(
            s.action_base,
            "https://relay.example/webhooks/twilio/voice/gather"
        );
        assert!(s.secret.len() >= MIN_SECRET_BYTES);
    }
}
