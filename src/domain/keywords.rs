//! The SMS keyword grammar: which inbound texts are opt-out / opt-in / help commands, and for
//! which brand.
//!
//! Conservative on purpose (Twilio: "only single-word messages will trigger the block"): the whole
//! message must be one keyword, optionally with ONE brand word before or after it (`TSA RET`,
//! `ret, tsa!`). Anything else is [`SmsIntent::Unrecognised`] and left to a human. On a shared
//! short code a keyword without a brand word is [`SmsIntent::AmbiguousBrand`]: we never guess.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

use super::Brand;

/// Bodies longer than this cannot be a command; skip folding them.
const MAX_COMMAND_BYTES: usize = 512;

#[rustfmt::skip]
pub const DEFAULT_OPT_OUT: &[&str] = &[
    "RET", "RED", "REDDET", "İPTAL", "İPTAL ET", "DUR", "ÇIKIŞ", "ÇIK", "İSTEMİYORUM", "STOP",
    "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT",
    "REMOVE",
];
#[rustfmt::skip]
pub const DEFAULT_OPT_IN: &[&str] = &[
    "EVET", "ONAY", "ONAYLA", "ONAYLIYORUM", "KABUL", "BAŞLA", "START", "UNSTOP", "YES", "JOIN",
];
pub const DEFAULT_HELP: &[&str] = &["YARDIM", "BİLGİ", "HELP", "INFO"];

/// Folds text to a matching key: NFKC (full-width → ASCII), every kind of whitespace → one space,
/// Turkish-aware upper-casing where `i`, `ı`, `İ`, `I` all become `I`, Turkish (and other)
/// diacritics dropped (`Ş`→`S`, `Ğ`→`G`, …), and surrounding punctuation/emoji trimmed.
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        fold_ascii(s)
    } else {
        fold_unicode(s)
    }
}

fn fold_unicode(s: &str) -> String {
    let mut upper = String::with_capacity(s.len());
    for c in s.nfkc() {
        match c {
            // Invisible joiners and soft hyphens glue letters together; a ZWSP separates words.
            '\u{AD}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' => {}
            '\u{200B}' => upper.push(' '),
            c if c.is_whitespace() || c.is_control() => upper.push(' '),
            // Turkish pairs İ/i and I/ı; a default upper-case would leave İ and miss ı.
            'i' | 'ı' | 'İ' => upper.push('I'),
            c => upper.extend(c.to_uppercase()),
        }
    }
    // NFD then drop marks: Ş→S, Ç→C, Ğ→G, Ö→O, Ü→U, Â→A, and the stray U+0307 of `i̇`.
    let bare: String = upper.nfd().filter(|c| !is_combining_mark(*c)).collect();
    let trimmed = bare.trim_matches(|c: char| !c.is_alphanumeric());
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `fold` for ASCII text, which almost every keyword is: normalisation and mark-stripping
/// change nothing there, so they are skipped (a property test holds the two paths equal).
fn fold_ascii(s: &str) -> String {
    let upper: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_whitespace() || c.is_ascii_control() {
                ' '
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    let trimmed = upper.trim_matches(|c: char| !c.is_alphanumeric());
    trimmed.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The form keywords and brand words are compared in: folded words joined by single spaces,
/// punctuation anywhere counting as a separator (`Ret-TSA` → `RET TSA`).
fn key(s: &str) -> String {
    fold(s)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordKind {
    OptOut,
    OptIn,
    Help,
}

/// Per-brand additions from config; words are folded when the set is built.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordConfig {
    #[serde(default)]
    pub opt_out: Vec<String>,
    #[serde(default)]
    pub opt_in: Vec<String>,
    #[serde(default)]
    pub help: Vec<String>,
}

/// Keywords in folded form. Fields are private so every word is guaranteed folded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeywordSet {
    opt_out: BTreeSet<String>,
    opt_in: BTreeSet<String>,
    help: BTreeSet<String>,
}

impl Default for KeywordSet {
    fn default() -> Self {
        Self::new(DEFAULT_OPT_OUT, DEFAULT_OPT_IN, DEFAULT_HELP)
    }
}

impl KeywordSet {
    pub fn new<S: AsRef<str>>(opt_out: &[S], opt_in: &[S], help: &[S]) -> Self {
        let set = |words: &[S]| {
            words
                .iter()
                .map(|w| key(w.as_ref()))
                .filter(|w| !w.is_empty())
                .collect()
        };
        Self {
            opt_out: set(opt_out),
            opt_in: set(opt_in),
            help: set(help),
        }
    }

    /// The defaults plus a brand's configured words.
    pub fn from_config(cfg: &KeywordConfig) -> Self {
        Self::default().extended(cfg)
    }

    pub fn extended(mut self, cfg: &KeywordConfig) -> Self {
        let extra = Self::new(&cfg.opt_out, &cfg.opt_in, &cfg.help);
        self.opt_out.extend(extra.opt_out);
        self.opt_in.extend(extra.opt_in);
        self.help.extend(extra.help);
        self
    }

    /// Classifies raw text that should be exactly one keyword (no brand word).
    pub fn classify(&self, text: &str) -> Option<KeywordKind> {
        self.classify_key(&key(text))
    }

    // A word configured as both opt-out and something else counts as opt-out: missing a refusal
    // is the costly mistake.
    fn classify_key(&self, k: &str) -> Option<KeywordKind> {
        if self.opt_out.contains(k) {
            Some(KeywordKind::OptOut)
        } else if self.opt_in.contains(k) {
            Some(KeywordKind::OptIn)
        } else if self.help.contains(k) {
            Some(KeywordKind::Help)
        } else {
            None
        }
    }
}

/// A brand served by an inbound number, with the words that name it in an SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandWords {
    pub brand_code: i64,
    /// Short names (`TSA`, `TEKNOSA`), raw, as configured (replies name the brand with them).
    pub words: Vec<String>,
    pub keywords: KeywordSet,
    /// The same words in the form messages are compared in, folded once here rather than for
    /// every message.
    keyed: Vec<String>,
}

impl BrandWords {
    pub fn new<S: Into<String>>(
        brand_code: i64,
        words: impl IntoIterator<Item = S>,
        keywords: KeywordSet,
    ) -> Self {
        let words: Vec<String> = words.into_iter().map(Into::into).collect();
        let keyed = words
            .iter()
            .map(|w| key(w))
            .filter(|w| !w.is_empty())
            .collect();
        Self {
            brand_code,
            words,
            keywords,
            keyed,
        }
    }

    /// Uses the brand's `short_names` as its words.
    pub fn from_brand(brand: &Brand, keywords: KeywordSet) -> Self {
        Self::new(
            brand.brand_code,
            brand.short_names.iter().cloned(),
            keywords,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmsIntent {
    OptOut,
    OptIn,
    Help,
    Unrecognised,
    AmbiguousBrand,
}

impl From<KeywordKind> for SmsIntent {
    fn from(k: KeywordKind) -> Self {
        match k {
            KeywordKind::OptOut => SmsIntent::OptOut,
            KeywordKind::OptIn => SmsIntent::OptIn,
            KeywordKind::Help => SmsIntent::Help,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParsedSms {
    pub intent: SmsIntent,
    pub brand_code: Option<i64>,
    /// The folded keyword that matched (`IPTAL` for `ıptal`).
    pub keyword: Option<String>,
}

impl ParsedSms {
    fn unrecognised() -> Self {
        Self {
            intent: SmsIntent::Unrecognised,
            brand_code: None,
            keyword: None,
        }
    }

    fn new(intent: SmsIntent, brand_code: Option<i64>, keyword: &str) -> Self {
        Self {
            intent,
            brand_code,
            keyword: Some(keyword.to_owned()),
        }
    }
}

/// Parses an inbound SMS sent to a number serving `brands` (one brand: a dedicated number; several:
/// a shared short code). See the module docs for the grammar.
pub fn parse_sms(body: &str, brands: &[BrandWords]) -> ParsedSms {
    if body.len() > MAX_COMMAND_BYTES {
        return ParsedSms::unrecognised();
    }
    let k = key(body);
    if k.is_empty() {
        return ParsedSms::unrecognised();
    }
    if let Some(parsed) = parse_branded(&k, brands) {
        return parsed;
    }

    // A bare keyword. With no brands configured the defaults still tell us what it was (folded
    // once: folding the Turkish defaults costs more than the rest of a webhook's parsing).
    static FALLBACK: LazyLock<KeywordSet> = LazyLock::new(KeywordSet::default);
    let sets: Vec<(Option<i64>, &KeywordSet)> = if brands.is_empty() {
        vec![(None, &*FALLBACK)]
    } else {
        brands
            .iter()
            .map(|b| (Some(b.brand_code), &b.keywords))
            .collect()
    };
    let hits: Vec<(Option<i64>, KeywordKind)> = sets
        .iter()
        .filter_map(|(code, set)| set.classify_key(&k).map(|kind| (*code, kind)))
        .collect();
    let dedicated = single_brand(brands);
    let Some(&(_, first_kind)) = hits.first() else {
        return ParsedSms::unrecognised();
    };
    let consent: Vec<_> = hits.iter().filter(|h| h.1 != KeywordKind::Help).collect();
    match consent.as_slice() {
        [] => ParsedSms::new(first_kind.into(), dedicated, &k),
        [(code, kind), ..] if dedicated.is_some() => ParsedSms::new((*kind).into(), *code, &k),
        // A brand's own custom word that no other brand on the code knows names that brand.
        [(Some(code), kind)] if hits.len() == 1 => ParsedSms::new((*kind).into(), Some(*code), &k),
        _ => ParsedSms::new(SmsIntent::AmbiguousBrand, None, &k),
    }
}

/// `BRAND KEYWORD` or `KEYWORD BRAND`, judged by that brand's own keyword set.
fn parse_branded(k: &str, brands: &[BrandWords]) -> Option<ParsedSms> {
    let mut hits: Vec<(i64, KeywordKind, &str)> = Vec::new();
    for b in brands {
        for w in &b.keyed {
            let before = k.strip_prefix(w.as_str()).and_then(|r| r.strip_prefix(' '));
            let after = k.strip_suffix(w.as_str()).and_then(|r| r.strip_suffix(' '));
            for rest in [before, after].into_iter().flatten() {
                if let Some(kind) = b.keywords.classify_key(rest) {
                    hits.push((b.brand_code, kind, rest));
                }
            }
        }
    }
    let &(code, kind, word) = hits.first()?;
    if hits.iter().all(|h| h.0 == code) {
        Some(ParsedSms::new(kind.into(), Some(code), word))
    } else {
        // Two brands on one code share a short name: a config error, and not ours to guess.
        Some(ParsedSms::new(SmsIntent::AmbiguousBrand, None, word))
    }
}

fn single_brand(brands: &[BrandWords]) -> Option<i64> {
    let first = brands.first()?.brand_code;
    brands
        .iter()
        .all(|b| b.brand_code == first)
        .then_some(first)
}

#[cfg(test)]
mod tests {
    use super::SmsIntent::{AmbiguousBrand as Amb, Help, OptIn, OptOut, Unrecognised as Unr};
    use super::*;

    fn dedicated() -> Vec<BrandWords> {
        vec![BrandWords::new(
            100,
            ["TSA", "Teknosa"],
            KeywordSet::default(),
        )]
    }

    fn shared() -> Vec<BrandWords> {
        let ikiz = KeywordConfig {
            opt_out: vec!["İkizret".into()],
            ..Default::default()
        };
        vec![
            BrandWords::new(100, ["TSA", "Teknosa"], KeywordSet::default()),
            BrandWords::new(200, ["POLAT", "plt"], KeywordSet::default()),
            BrandWords::new(300, ["İkiz"], KeywordSet::from_config(&ikiz)),
        ]
    }

    #[rustfmt::skip]
    const DEDICATED: &[(&str, SmsIntent, Option<i64>, Option<&str>)] = &[
        ("RET", OptOut, Some(100), Some("RET")),
        ("ret", OptOut, Some(100), Some("RET")),
        ("Ret.", OptOut, Some(100), Some("RET")),
        ("  RET  ", OptOut, Some(100), Some("RET")),
        ("RET\r\n", OptOut, Some(100), Some("RET")),
        ("\u{a0}RET\u{a0}", OptOut, Some(100), Some("RET")),
        ("\u{feff}RET", OptOut, Some(100), Some("RET")),
        ("ＲＥＴ", OptOut, Some(100), Some("RET")),
        ("ｒｅｔ", OptOut, Some(100), Some("RET")),
        ("RET!!!", OptOut, Some(100), Some("RET")),
        ("RET 🛑", OptOut, Some(100), Some("RET")),
        ("🙏ret🙏", OptOut, Some(100), Some("RET")),
        ("\"RET\"", OptOut, Some(100), Some("RET")),
        ("İPTAL", OptOut, Some(100), Some("IPTAL")),
        ("iptal", OptOut, Some(100), Some("IPTAL")),
        ("IPTAL", OptOut, Some(100), Some("IPTAL")),
        ("ıptal", OptOut, Some(100), Some("IPTAL")),
        ("İptal", OptOut, Some(100), Some("IPTAL")),
        ("i\u{307}ptal", OptOut, Some(100), Some("IPTAL")),
        ("İPTAL ET", OptOut, Some(100), Some("IPTAL ET")),
        ("iptal et!", OptOut, Some(100), Some("IPTAL ET")),
        ("DUR", OptOut, Some(100), Some("DUR")),
        ("dur.", OptOut, Some(100), Some("DUR")),
        ("STOP", OptOut, Some(100), Some("STOP")),
        ("Stop.", OptOut, Some(100), Some("STOP")),
        ("STOPALL", OptOut, Some(100), Some("STOPALL")),
        ("stop all", OptOut, Some(100), Some("STOP ALL")),
        ("UNSUBSCRIBE", OptOut, Some(100), Some("UNSUBSCRIBE")),
        ("Cancel", OptOut, Some(100), Some("CANCEL")),
        ("end", OptOut, Some(100), Some("END")),
        ("QUIT", OptOut, Some(100), Some("QUIT")),
        ("opt-out", OptOut, Some(100), Some("OPT OUT")),
        ("ÇIKIŞ", OptOut, Some(100), Some("CIKIS")),
        ("çıkış", OptOut, Some(100), Some("CIKIS")),
        ("CIKIS", OptOut, Some(100), Some("CIKIS")),
        ("RED", OptOut, Some(100), Some("RED")),
        ("İstemiyorum!", OptOut, Some(100), Some("ISTEMIYORUM")),
        ("TSA RET", OptOut, Some(100), Some("RET")),
        ("RET TSA", OptOut, Some(100), Some("RET")),
        ("tsa ret", OptOut, Some(100), Some("RET")),
        ("ret, tsa!", OptOut, Some(100), Some("RET")),
        ("Ret-TSA", OptOut, Some(100), Some("RET")),
        ("TSA.RET", OptOut, Some(100), Some("RET")),
        ("Teknosa Ret", OptOut, Some(100), Some("RET")),
        ("TEKNOSA İPTAL", OptOut, Some(100), Some("IPTAL")),
        ("RET\u{a0}TSA", OptOut, Some(100), Some("RET")),
        ("TSA\tRET", OptOut, Some(100), Some("RET")),
        ("TSA   RET", OptOut, Some(100), Some("RET")),
        ("TSA 🛑 RET", OptOut, Some(100), Some("RET")),
        ("ＴＳＡ　ＲＥＴ", OptOut, Some(100), Some("RET")),
        ("EVET", OptIn, Some(100), Some("EVET")),
        ("evet", OptIn, Some(100), Some("EVET")),
        ("Onay", OptIn, Some(100), Some("ONAY")),
        ("KABUL", OptIn, Some(100), Some("KABUL")),
        ("başla", OptIn, Some(100), Some("BASLA")),
        ("BAŞLA", OptIn, Some(100), Some("BASLA")),
        ("START", OptIn, Some(100), Some("START")),
        ("unstop", OptIn, Some(100), Some("UNSTOP")),
        ("yes", OptIn, Some(100), Some("YES")),
        ("TSA EVET", OptIn, Some(100), Some("EVET")),
        ("YARDIM", Help, Some(100), Some("YARDIM")),
        ("yardım", Help, Some(100), Some("YARDIM")),
        ("HELP", Help, Some(100), Some("HELP")),
        ("bilgi", Help, Some(100), Some("BILGI")),
        ("BİLGİ", Help, Some(100), Some("BILGI")),
        ("INFO?", Help, Some(100), Some("INFO")),
        ("TSA yardım", Help, Some(100), Some("YARDIM")),
    ];

    /// Must NOT be commands on the dedicated number (Cyrillic look-alikes are not folded).
    #[rustfmt::skip]
    const NOT_COMMANDS: &[&str] = &[
        "POLAT RET", "RET POLAT", "TSA", "TSA TSA RET", "RET TSA TSA", "TSARET",
        "lütfen beni aramayın artık", "RET değil", "stop it please", "Stop. Thank you",
        "please cancel", "RETT", "reti", "STOPS", "DURUM", "İptal mi ettiniz?", "", "   ", "🛑",
        "...", "R E T", "ret ret", "HAYIR", "EVET RET", "Merhaba, siparişim nerede?", "12345",
        "РЕТ",
    ];

    #[rustfmt::skip]
    const SHARED: &[(&str, SmsIntent, Option<i64>, Option<&str>)] = &[
        ("RET", Amb, None, Some("RET")),
        ("iptal", Amb, None, Some("IPTAL")),
        ("STOP", Amb, None, Some("STOP")),
        ("EVET", Amb, None, Some("EVET")),
        ("TSA RET", OptOut, Some(100), Some("RET")),
        ("POLAT RET", OptOut, Some(200), Some("RET")),
        ("ret polat", OptOut, Some(200), Some("RET")),
        ("PLT İPTAL", OptOut, Some(200), Some("IPTAL")),
        ("ＰＯＬＡＴ　ＲＥＴ", OptOut, Some(200), Some("RET")),
        ("POLAT EVET", OptIn, Some(200), Some("EVET")),
        ("ikiz ret", OptOut, Some(300), Some("RET")),
        ("IKIZ RET", OptOut, Some(300), Some("RET")),
        ("ıkız ret", OptOut, Some(300), Some("RET")),
        ("IKIZRET", OptOut, Some(300), Some("IKIZRET")),
        ("ikizret!", OptOut, Some(300), Some("IKIZRET")),
        ("YARDIM", Help, None, Some("YARDIM")),
        ("TSA YARDIM", Help, Some(100), Some("YARDIM")),
    ];

    fn check(table: &[(&str, SmsIntent, Option<i64>, Option<&str>)], brands: &[BrandWords]) {
        for &(body, intent, brand, kw) in table {
            let want = ParsedSms {
                intent,
                brand_code: brand,
                keyword: kw.map(String::from),
            };
            assert_eq!(parse_sms(body, brands), want, "body {body:?}");
        }
    }

    #[test]
    fn table_has_at_least_80_real_world_bodies() {
        assert!(DEDICATED.len() + NOT_COMMANDS.len() + SHARED.len() >= 80 + 8);
    }

    #[test]
    fn dedicated_number_table() {
        check(DEDICATED, &dedicated());
        for body in NOT_COMMANDS {
            assert_eq!(
                parse_sms(body, &dedicated()),
                ParsedSms::unrecognised(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn shared_short_code_table() {
        check(SHARED, &shared());
        #[rustfmt::skip]
        let not_commands = [
            "Polat'a RET", "XYZ RET", "RET XYZ", "POLAT", "TSA IKIZRET", "TSA POLAT RET",
            "POLAT RET TSA", "RET SDXIYS",
        ];
        for body in not_commands {
            assert_eq!(
                parse_sms(body, &shared()),
                ParsedSms::unrecognised(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn fold_handles_turkish_casing_and_noise() {
        for s in [
            "iptal",
            "İPTAL",
            "IPTAL",
            "ıptal",
            "İptal",
            "i\u{307}PTAL",
            "ＩＰＴＡＬ",
        ] {
            assert_eq!(fold(s), "IPTAL", "{s:?}");
        }
        assert_eq!(fold("  ğüşöç ĞÜŞÖÇ "), "GUSOC GUSOC");
        assert_eq!(fold("\u{a0}a\u{2003}\u{200b}b\n\tc !"), "A B C");
        assert_eq!(fold("«Ret-TSA»"), "RET-TSA");
        assert_eq!(fold("🙂🙂"), "");
    }

    #[test]
    fn no_brands_configured_still_flags_keywords_as_ambiguous() {
        assert_eq!(parse_sms("RET", &[]).intent, Amb);
        assert_eq!(parse_sms("yardım", &[]).intent, Help);
        assert_eq!(parse_sms("merhaba", &[]).intent, Unr);
    }

    #[test]
    fn brands_sharing_a_short_name_are_ambiguous() {
        let b = vec![
            BrandWords::new(1, ["ABC"], KeywordSet::default()),
            BrandWords::new(2, ["abc"], KeywordSet::default()),
        ];
        assert_eq!(parse_sms("ABC RET", &b).intent, Amb);
    }

    #[test]
    fn config_extends_defaults_and_opt_out_wins_conflicts() {
        let cfg: KeywordConfig =
            toml::from_str("opt_out = ['abonelik iptal', 'evet']\nhelp = ['Nasıl']").unwrap();
        let set = KeywordSet::from_config(&cfg);
        assert_eq!(set.classify("ABONELİK İPTAL"), Some(KeywordKind::OptOut));
        assert_eq!(set.classify("evet"), Some(KeywordKind::OptOut));
        assert_eq!(set.classify("nasil"), Some(KeywordKind::Help));
        assert_eq!(set.classify("RET"), Some(KeywordKind::OptOut));
        assert!(toml::from_str::<KeywordConfig>("optout = ['x']").is_err());
    }

    #[test]
    fn from_brand_uses_short_names() {
        let brand: Brand = toml::from_str(
            "key = 'tsa'\niys_code = 1\nbrand_code = 7\nname = 'Teknosa'\nshort_names = ['TSA']",
        )
        .unwrap();
        let b = [BrandWords::from_brand(&brand, KeywordSet::default())];
        assert_eq!(parse_sms("tsa ret", &b).brand_code, Some(7));
    }

    #[test]
    fn intents_serialise_snake_case() {
        let p = parse_sms("RET", &shared());
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"intent":"ambiguous_brand","brand_code":null,"keyword":"RET"}"#
        );
        assert_eq!(serde_json::to_string(&OptOut).unwrap(), r#""opt_out""#);
        assert_eq!(serde_json::to_string(&Unr).unwrap(), r#""unrecognised""#);
    }

    #[test]
    fn long_bodies_are_not_commands() {
        let body = format!("RET{}", " ".repeat(MAX_COMMAND_BYTES));
        assert_eq!(parse_sms(&body, &dedicated()).intent, Unr);
    }

    proptest::proptest! {
        #[test]
        fn parse_sms_never_panics(s in "\\PC{0,40}|.{0,600}") {
            let _ = parse_sms(&s, &shared());
            let _ = parse_sms(&s, &dedicated());
        }

        #[test]
        fn ascii_fast_path_folds_like_the_general_one(s in "[\\x00-\\x7f]{0,40}") {
            proptest::prop_assert_eq!(fold_ascii(&s), fold_unicode(&s));
        }

        #[test]
        fn fold_is_idempotent_on_turkish_text(s in "[a-zA-ZçğıöşüÇĞİÖŞÜ .,!?\u{a0}]{0,30}") {
            let once = fold(&s);
            proptest::prop_assert_eq!(fold(&once), once);
        }
    }
}
