//! The IVR's prompt catalogue: texts from `voice-prompts/prompts.toml` (compiled in) and the ids
//! the call flow plays. The WAVs under `voice-prompts/{tr,en}/<id>.wav` are generated from the
//! same file by `voice-prompts/generate.sh`; tests check both stay complete.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

const PROMPTS_TOML: &str = include_str!("../../../voice-prompts/prompts.toml");

/// Caller language. Turkish first; English on request (key 0 in the main menu).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
pub enum Lang {
    #[default]
    #[serde(rename = "tr")]
    Tr,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Tr, Lang::En];
    /// Folder under `voice-prompts/` and key in prompts.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Tr => "tr",
            Lang::En => "en",
        }
    }
    /// BCP-47 tag for `<Say language=…>` / `<Gather language=…>`.
    pub fn bcp47(self) -> &'static str {
        match self {
            Lang::Tr => "tr-TR",
            Lang::En => "en-US",
        }
    }
    /// `tr` / `en` (the folder name); anything else is `None`.
    pub fn parse(s: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.as_str() == s)
    }
    pub fn other(self) -> Lang {
        match self {
            Lang::Tr => Lang::En,
            Lang::En => Lang::Tr,
        }
    }
}

macro_rules! prompt_ids {
    ($($variant:ident = $id:literal),+ $(,)?) => {
        /// Every prompt the flow can play; the string is the id in prompts.toml and the WAV name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum PromptId { $( #[serde(rename = $id)] $variant ),+ }

        impl PromptId {
            /// The list of ids used by the flow.
            pub const ALL: &'static [PromptId] = &[$(PromptId::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $(PromptId::$variant => $id),+ }
            }
            /// The recording (8 kHz mono 16-bit WAV), compiled into the binary so serving it
            /// does not depend on the working directory.
            pub fn wav(self, lang: Lang) -> &'static [u8] {
                match (self, lang) {
                    $(
                        (PromptId::$variant, Lang::Tr) => include_bytes!(concat!(
                            env!("CARGO_MANIFEST_DIR"), "/voice-prompts/tr/", $id, ".wav")),
                        (PromptId::$variant, Lang::En) => include_bytes!(concat!(
                            env!("CARGO_MANIFEST_DIR"), "/voice-prompts/en/", $id, ".wav")),
                    )+
                }
            }
        }
    };
}

prompt_ids! {
    Welcome = "welcome",
    BrandMenu = "brand_menu",
    BrandOption1 = "brand_option_1",
    BrandOption2 = "brand_option_2",
    BrandOption3 = "brand_option_3",
    BrandOption4 = "brand_option_4",
    BrandOption5 = "brand_option_5",
    BrandOption6 = "brand_option_6",
    BrandOption7 = "brand_option_7",
    BrandOption8 = "brand_option_8",
    MainMenuCalls = "main_menu_calls",
    MainMenuCallsMsgs = "main_menu_calls_msgs",
    SwitchLanguage = "switch_language",
    ConfirmOptoutCalls = "confirm_optout_calls",
    ConfirmOptoutCallsMsgs = "confirm_optout_calls_msgs",
    ConfirmOptinCalls = "confirm_optin_calls",
    ConfirmOptinCallsMsgs = "confirm_optin_calls_msgs",
    RecordedOptoutCalls = "recorded_optout_calls",
    RecordedOptoutCallsMsgs = "recorded_optout_calls_msgs",
    RecordedOptin = "recorded_optin",
    EnterNumber = "enter_number",
    InvalidNumber = "invalid_number",
    ReadbackIntro = "readback_intro",
    ReadbackConfirm = "readback_confirm",
    Digit0 = "digit_0",
    Digit1 = "digit_1",
    Digit2 = "digit_2",
    Digit3 = "digit_3",
    Digit4 = "digit_4",
    Digit5 = "digit_5",
    Digit6 = "digit_6",
    Digit7 = "digit_7",
    Digit8 = "digit_8",
    Digit9 = "digit_9",
    NoInput = "no_input",
    InvalidChoice = "invalid_choice",
    EndedNoChoice = "ended_no_choice",
    Goodbye = "goodbye",
    Unavailable = "unavailable",
    OutboundOfferCalls = "outbound_offer_calls",
    OutboundOfferCallsMsgs = "outbound_offer_calls_msgs",
    OutboundConfirmCalls = "outbound_confirm_calls",
    OutboundConfirmCallsMsgs = "outbound_confirm_calls_msgs",
    OutboundNotRecorded = "outbound_not_recorded",
    OutboundGoodbye = "outbound_goodbye",
}

/// The most brands one number's menu offers (keys 1–8; 9 repeats, 0 switches language).
pub const MAX_BRAND_OPTIONS: usize = 8;

impl PromptId {
    /// The id as written in prompts.toml and the WAV name; anything else is `None`.
    pub fn parse(s: &str) -> Option<PromptId> {
        PromptId::ALL.iter().copied().find(|p| p.as_str() == s)
    }

    /// The read-back clip for an ASCII digit; `None` for anything else.
    pub fn digit(c: char) -> Option<PromptId> {
        const DIGITS: [PromptId; 10] = [
            PromptId::Digit0,
            PromptId::Digit1,
            PromptId::Digit2,
            PromptId::Digit3,
            PromptId::Digit4,
            PromptId::Digit5,
            PromptId::Digit6,
            PromptId::Digit7,
            PromptId::Digit8,
            PromptId::Digit9,
        ];
        c.to_digit(10).map(|d| DIGITS[d as usize])
    }

    /// "… press N" after the N-th brand name (1-based); `None` past the menu's size.
    pub fn brand_option(n: usize) -> Option<PromptId> {
        const OPTIONS: [PromptId; MAX_BRAND_OPTIONS] = [
            PromptId::BrandOption1,
            PromptId::BrandOption2,
            PromptId::BrandOption3,
            PromptId::BrandOption4,
            PromptId::BrandOption5,
            PromptId::BrandOption6,
            PromptId::BrandOption7,
            PromptId::BrandOption8,
        ];
        n.checked_sub(1).and_then(|i| OPTIONS.get(i)).copied()
    }
}

/// One prompt's text in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptText {
    pub id: String,
    pub version: u32,
    pub text: String,
}

impl PromptText {
    /// `welcome@1`: what a call's evidence records for each prompt heard.
    pub fn versioned_id(&self) -> String {
        format!("{}@{}", self.id, self.version)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    prompt: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    version: u32,
    tr: String,
    en: String,
}

type Catalog = HashMap<(String, Lang), PromptText>;

fn parse_catalog(src: &str) -> Result<Catalog, String> {
    let file: File = toml::from_str(src).map_err(|e| e.to_string())?;
    let mut map = HashMap::new();
    for e in file.prompt {
        for (lang, text) in [(Lang::Tr, e.tr.clone()), (Lang::En, e.en.clone())] {
            let t = PromptText {
                id: e.id.clone(),
                version: e.version,
                text: text.trim().into(),
            };
            if t.text.is_empty() {
                return Err(format!("prompt {} has no {} text", e.id, lang.as_str()));
            }
            if map.insert((e.id.clone(), lang), t).is_some() {
                return Err(format!("prompt {} is listed twice", e.id));
            }
        }
    }
    Ok(map)
}

fn catalog() -> &'static Result<Catalog, String> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG.get_or_init(|| parse_catalog(PROMPTS_TOML))
}

/// Problems with the compiled-in catalogue (parse errors, ids the flow needs but the file lacks).
/// Empty when all is well; call it at startup / in `check-config`.
pub fn check_catalog() -> Vec<String> {
    match catalog() {
        Err(e) => vec![format!("voice-prompts/prompts.toml: {e}")],
        Ok(map) => PromptId::ALL
            .iter()
            .flat_map(|id| Lang::ALL.map(|l| (*id, l)))
            .filter(|(id, l)| !map.contains_key(&(id.as_str().to_string(), *l)))
            .map(|(id, l)| format!("prompt {} missing in {}", id.as_str(), l.as_str()))
            .collect(),
    }
}

static MISSING: PromptText = PromptText {
    id: String::new(),
    version: 0,
    text: String::new(),
};

/// The text of a prompt. Never fails: a prompt missing from the catalogue (which
/// [`check_catalog`] and the tests rule out) yields an empty text with version 0.
pub fn prompt(id: PromptId, lang: Lang) -> &'static PromptText {
    match catalog() {
        Ok(map) => map
            .get(&(id.as_str().to_string(), lang))
            .unwrap_or(&MISSING),
        Err(_) => &MISSING,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn catalogue_has_every_flow_prompt_in_both_languages() {
        assert_eq!(check_catalog(), Vec::<String>::new());
        for id in PromptId::ALL {
            for lang in Lang::ALL {
                let p = prompt(*id, lang);
                assert_eq!(p.id, id.as_str());
                assert!(p.version >= 1 && !p.text.is_empty(), "{id:?} {lang:?}");
            }
        }
        assert_eq!(prompt(PromptId::Digit7, Lang::Tr).text, "yedi");
        assert_eq!(prompt(PromptId::Digit7, Lang::En).text, "seven");
        assert!(
            prompt(PromptId::MainMenuCalls, Lang::Tr)
                .text
                .contains("bire basın")
        );
    }

    #[test]
    fn catalogue_parser_rejects_gaps_and_duplicates() {
        let dup = "[[prompt]]\nid='a'\nversion=1\ntr='x'\nen='y'\n[[prompt]]\nid='a'\nversion=2\ntr='x'\nen='y'\n";
        assert!(parse_catalog(dup).unwrap_err().contains("twice"));
        let empty = "[[prompt]]\nid='a'\nversion=1\ntr=' '\nen='y'\n";
        assert!(parse_catalog(empty).unwrap_err().contains("no tr text"));
        assert!(parse_catalog("[[prompt]]\nid='a'\nversion=1\ntr='x'\n").is_err());
    }

    #[test]
    fn digit_and_option_lookups() {
        assert_eq!(PromptId::digit('0'), Some(PromptId::Digit0));
        assert_eq!(PromptId::digit('9'), Some(PromptId::Digit9));
        assert_eq!(PromptId::digit('#'), None);
        assert_eq!(PromptId::brand_option(1), Some(PromptId::BrandOption1));
        assert_eq!(PromptId::brand_option(8), Some(PromptId::BrandOption8));
        assert_eq!(PromptId::brand_option(0), None);
        assert_eq!(PromptId::brand_option(9), None);
    }

    /// Format of a WAV file: (audio format, channels, sample rate, bits, data bytes).
    pub(crate) fn wav_format(bytes: &[u8]) -> Result<(u16, u16, u32, u16, usize), String> {
        let u16_at = |i: usize| {
            bytes
                .get(i..i + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        let u32_at = |i: usize| {
            bytes
                .get(i..i + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
            return Err("not a RIFF/WAVE file".into());
        }
        let (mut fmt, mut data, mut pos) = (None, None, 12usize);
        while let (Some(tag), Some(len)) = (bytes.get(pos..pos + 4), u32_at(pos + 4)) {
            let len = len as usize;
            let body = pos + 8;
            match tag {
                b"fmt " => {
                    let f = (
                        u16_at(body),
                        u16_at(body + 2),
                        u32_at(body + 4),
                        u16_at(body + 14),
                    );
                    match f {
                        (Some(a), Some(c), Some(r), Some(b)) => fmt = Some((a, c, r, b)),
                        _ => return Err("truncated fmt chunk".into()),
                    }
                }
                b"data" => data = Some(len.min(bytes.len().saturating_sub(body))),
                _ => {}
            }
            pos = body + len + (len & 1);
        }
        let (a, c, r, b) = fmt.ok_or("no fmt chunk")?;
        Ok((a, c, r, b, data.ok_or("no data chunk")?))
    }

    #[test]
    fn every_prompt_has_a_telephony_wav_in_both_languages() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("voice-prompts");
        for id in PromptId::ALL {
            for lang in Lang::ALL {
                let path = root
                    .join(lang.as_str())
                    .join(format!("{}.wav", id.as_str()));
                let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (run voice-prompts/generate.sh)", path.display())
                });
                let (format, channels, rate, bits, data) =
                    wav_format(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(
                    (format, channels, rate, bits),
                    (1, 1, 8000, 16),
                    "{}",
                    path.display()
                );
                // At least 0.1 s of audio: an empty or silent-only stub would fail here.
                assert!(
                    data >= 1600,
                    "{} has only {data} bytes of audio",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn compiled_in_wavs_match_the_files_and_names_parse() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("voice-prompts");
        for id in PromptId::ALL {
            assert_eq!(PromptId::parse(id.as_str()), Some(*id));
            for lang in Lang::ALL {
                let file = root
                    .join(lang.as_str())
                    .join(format!("{}.wav", id.as_str()));
                assert_eq!(id.wav(lang), std::fs::read(&file).unwrap().as_slice());
            }
        }
        assert_ne!(
            PromptId::Welcome.wav(Lang::Tr),
            PromptId::Welcome.wav(Lang::En)
        );
        assert_eq!(PromptId::parse("welcome.wav"), None);
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("TR"), None);
    }

    #[test]
    fn wav_parser_rejects_wrong_formats() {
        let mut wav = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0\x40\x1f\0\0\0\0\0\0\x04\0\x10\0data\x04\0\0\0abcd".to_vec();
        assert_eq!(wav_format(&wav).unwrap(), (1, 2, 8000, 16, 4));
        wav.truncate(30);
        assert!(wav_format(&wav).is_err());
        assert!(wav_format(b"RIFX").is_err());
    }
}
