//! A consent recipient as İYS identifies it: an E.164 phone number or a lower-cased e-mail.
//!
//! Phones are parsed with the `phonenumber` crate (a port of Google's libphonenumber, which is what
//! İYS itself validates with), so national forms such as `0532 123 45 67` are accepted and stored
//! as `+905321234567`. E-mails follow İYS's rules (TANIMLAR): 6–265 characters, ASCII only, no
//! spaces, `+ - _ .` as the only special characters, stored lower-case.

use std::fmt;

use phonenumber::{Mode, country::Id};
use serde::{Deserialize, Serialize};

use super::consent::ConsentType;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    Phone(String),
    Email(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("recipient is empty")]
    Empty,
    #[error("not a valid phone number")]
    InvalidPhone,
    #[error("phone numbers must be at most 15 characters in E.164 form")]
    PhoneTooLong,
    #[error("not a valid e-mail address for İYS: {0}")]
    InvalidEmail(&'static str),
    #[error("{0} consents need a phone number")]
    NeedsPhone(ConsentType),
    #[error("EPOSTA consents need an e-mail address")]
    NeedsEmail,
    #[error(
        "MESAJ consents need a Turkish mobile number (+905…); landlines and foreign numbers \
         can be recorded for ARAMA only"
    )]
    NeedsTurkishMobile,
}

impl Recipient {
    /// Parses user or provider input. Anything with an `@` is an e-mail, the rest a phone number
    /// (Turkish national forms assumed when there is no country code).
    pub fn parse(input: &str) -> Result<Self, RecipientError> {
        let s = input.trim().trim_matches('\u{a0}');
        if s.is_empty() {
            return Err(RecipientError::Empty);
        }
        if s.contains('@') {
            return parse_email(s).map(Recipient::Email);
        }
        parse_phone(s).map(Recipient::Phone)
    }

    /// Parses and checks the recipient fits the consent type (MESAJ/ARAMA: phone, EPOSTA: e-mail).
    pub fn parse_for(input: &str, t: ConsentType) -> Result<Self, RecipientError> {
        let r = Self::parse(input)?;
        r.check_type(t)?;
        Ok(r)
    }

    pub fn check_type(&self, t: ConsentType) -> Result<(), RecipientError> {
        match (self, t) {
            (Recipient::Email(_), ConsentType::Arama | ConsentType::Mesaj) => {
                Err(RecipientError::NeedsPhone(t))
            }
            (Recipient::Phone(_), ConsentType::Eposta) => Err(RecipientError::NeedsEmail),
            _ => Ok(()),
        }
    }

    /// [`Recipient::check_type`] plus the number plan İYS applies to SMS: a MESAJ consent must
    /// be for a Turkish mobile (`+905XXXXXXXXX`, docs/iys-api-notes.md §4). A landline cannot receive the
    /// messages the consent is for, and İYS's strict check answers H121 for it, so intake
    /// channels that create new MESAJ consents refuse it up front instead of queueing a
    /// movement İYS will refuse.
    pub fn check_registrable(&self, t: ConsentType) -> Result<(), RecipientError> {
        self.check_type(t)?;
        if t == ConsentType::Mesaj && !self.is_turkish_mobile() {
            return Err(RecipientError::NeedsTurkishMobile);
        }
        Ok(())
    }

    /// Parses and applies [`Recipient::check_registrable`].
    pub fn parse_registrable(input: &str, t: ConsentType) -> Result<Self, RecipientError> {
        let r = Self::parse(input)?;
        r.check_registrable(t)?;
        Ok(r)
    }

    /// `+905` and nine more digits: the Turkish mobile range (operators' 5xx prefixes).
    pub fn is_turkish_mobile(&self) -> bool {
        match self {
            Recipient::Phone(p) => {
                p.len() == 13 && p.starts_with("+905") && p[1..].bytes().all(|b| b.is_ascii_digit())
            }
            Recipient::Email(_) => false,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Recipient::Phone(s) | Recipient::Email(s) => s,
        }
    }

    pub fn is_phone(&self) -> bool {
        matches!(self, Recipient::Phone(_))
    }

    /// The form that may appear in logs: `+90532*****67`, `a***@example.com`.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Phone(p) => super::mask::phone(p),
            Recipient::Email(e) => super::mask::email(e),
        }
    }
}

impl fmt::Display for Recipient {
    /// Display is the masked form, so that a recipient formatted into a log line never leaks.
    /// Use [`Recipient::as_str`] for the real value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Recipient::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn parse_phone(s: &str) -> Result<String, RecipientError> {
    if let Some(e164) = known_turkish_mobile(s) {
        return Ok(e164);
    }
    parse_phone_fully(s)
}

/// The forms providers and callers send almost every time (`+905321234567`, `905321234567`,
/// `05321234567`), answered without the full parser, which is a fifth of a webhook's CPU.
/// Only for operator prefixes where libphonenumber itself accepts every number: the table is
/// asked of it once (several numbers per prefix), so the two paths cannot disagree and a
/// metadata update moves both. Anything else takes the full parse.
fn known_turkish_mobile(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let national = match bytes.len() {
        13 if s.starts_with("+905") => &s[3..],
        12 if s.starts_with("905") => &s[2..],
        11 if s.starts_with("05") => &s[1..],
        _ => return None,
    };
    if !national.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix = usize::from(national.as_bytes()[1] - b'0') * 10
        + usize::from(national.as_bytes()[2] - b'0');
    MOBILE_PREFIXES[prefix].then(|| format!("+90{national}"))
}

/// `5xy` → every ten-digit national number starting so is a valid number for libphonenumber.
static MOBILE_PREFIXES: std::sync::LazyLock<[bool; 100]> = std::sync::LazyLock::new(|| {
    const SAMPLES: [&str; 6] = [
        "0000000", "9999999", "1234567", "7654321", "5050505", "0011223",
    ];
    std::array::from_fn(|xy| {
        SAMPLES.iter().all(|rest| {
            let full = format!("+905{xy:02}{rest}");
            parse_phone_fully(&full).as_deref() == Ok(full.as_str())
        })
    })
});

fn parse_phone_fully(s: &str) -> Result<String, RecipientError> {
    // Providers send Turkish numbers as `905321234567` (no plus) and people type `0090 532 ...`.
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let candidate = if !s.starts_with('+') && digits.starts_with("90") && digits.len() == 12 {
        format!("+{digits}")
    } else {
        s.to_string()
    };
    let n =
        phonenumber::parse(Some(Id::TR), &candidate).map_err(|_| RecipientError::InvalidPhone)?;
    if !phonenumber::is_valid(&n) || n.extension().is_some() {
        return Err(RecipientError::InvalidPhone);
    }
    let e164 = n.format().mode(Mode::E164).to_string();
    if e164.len() > 15 {
        return Err(RecipientError::PhoneTooLong);
    }
    Ok(e164)
}

fn parse_email(s: &str) -> Result<String, RecipientError> {
    use RecipientError::InvalidEmail;
    let len = s.chars().count();
    if !(6..=265).contains(&len) {
        return Err(InvalidEmail("must be 6 to 265 characters"));
    }
    if !s.is_ascii() {
        return Err(InvalidEmail(
            "Turkish or other non-ASCII characters are not allowed",
        ));
    }
    let lower = s.to_ascii_lowercase();
    let (local, domain) = lower.split_once('@').ok_or(InvalidEmail("missing @"))?;
    if domain.contains('@') {
        return Err(InvalidEmail("more than one @"));
    }
    if local.is_empty()
        || !local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.".contains(c))
    {
        return Err(InvalidEmail(
            "local part may hold letters, digits and + - _ . only",
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels
            .iter()
            .any(|l| l.is_empty() || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        || labels.last().is_some_and(|tld| tld.len() < 2)
    {
        return Err(InvalidEmail("domain must look like example.com"));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shortcut answers exactly as the full parser, for every operator prefix and every form
    /// it takes (and for numbers the table leaves to the full parser).
    #[test]
    fn the_mobile_shortcut_agrees_with_the_full_parser() {
        let mut taken = 0;
        for xy in 0..100 {
            for rest in ["0000001", "4820193", "9999998", "3141592"] {
                let national = format!("5{xy:02}{rest}");
                for input in [
                    format!("+90{national}"),
                    format!("90{national}"),
                    format!("0{national}"),
                ] {
                    let fast = known_turkish_mobile(&input);
                    if let Some(f) = &fast {
                        taken += 1;
                        assert_eq!(Ok(f.clone()), parse_phone_fully(&input), "{input}");
                    }
                    assert_eq!(parse_phone(&input), parse_phone_fully(&input), "{input}");
                }
            }
        }
        // 53x, 54x, 55x and the rest of the operators' ranges: most prefixes go the short way.
        assert!(taken > 3 * 4 * 30, "{taken}");
        // 561 is valid only in part (561 011…, 561 61…): left to the full parser.
        assert_eq!(known_turkish_mobile("+905610000000"), None);
        assert_eq!(known_turkish_mobile("+90532123456x"), None);
        assert_eq!(known_turkish_mobile("+9053212345678"), None);
    }

    #[test]
    fn turkish_mobile_forms_normalise() {
        for input in [
            "+905321234567",
            "0532 123 45 67",
            "05321234567",
            "5321234567",
            "905321234567",
            "+90 (532) 123-45-67",
            "0090 532 123 45 67",
            "\u{a0}0532 123 45 67 ",
        ] {
            assert_eq!(
                Recipient::parse(input),
                Ok(Recipient::Phone("+905321234567".into())),
                "{input}"
            );
        }
    }

    #[test]
    fn landline_and_foreign_numbers() {
        assert_eq!(
            Recipient::parse("0212 123 00 00").unwrap().as_str(),
            "+902121230000"
        );
        assert_eq!(
            Recipient::parse("+14158675309").unwrap().as_str(),
            "+14158675309"
        );
    }

    #[test]
    fn invalid_phones() {
        for input in [
            "123",
            "+90532",
            "0532 123 45 6",
            "abc",
            "+9053212345678901",
            "0532 123 45 67 ext. 5",
        ] {
            assert!(Recipient::parse(input).is_err(), "{input}");
        }
        assert_eq!(Recipient::parse("  "), Err(RecipientError::Empty));
    }

    #[test]
    fn emails_follow_iys_rules() {
        assert_eq!(
            Recipient::parse("Ali.Veli+x@Example.COM").unwrap().as_str(),
            "ali.veli+x@example.com"
        );
        assert_eq!(Recipient::parse("_a-b@x.co").unwrap().as_str(), "_a-b@x.co");
        for bad in [
            "örnek@firma.com",
            "a b@x.com",
            "a@x",
            "a@@x.com",
            "a!b@x.com",
            "a@x.c",
            "@x.com",
            "a@.com",
        ] {
            assert!(Recipient::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(260));
        assert!(Recipient::parse(&long).is_err());
    }

    #[test]
    fn type_match() {
        assert!(Recipient::parse_for("0532 123 45 67", ConsentType::Eposta).is_err());
        assert!(Recipient::parse_for("a@b.com", ConsentType::Mesaj).is_err());
        assert!(Recipient::parse_for("a@bc.com", ConsentType::Eposta).is_ok());
    }

    #[test]
    fn mesaj_needs_a_turkish_mobile() {
        let landline = Recipient::parse("0212 123 00 00").unwrap();
        assert!(!landline.is_turkish_mobile());
        assert_eq!(landline.check_registrable(ConsentType::Arama), Ok(()));
        assert_eq!(
            landline.check_registrable(ConsentType::Mesaj),
            Err(RecipientError::NeedsTurkishMobile)
        );
        assert_eq!(
            Recipient::parse_registrable("+14158675309", ConsentType::Mesaj),
            Err(RecipientError::NeedsTurkishMobile)
        );
        let mobile = Recipient::parse_registrable("0532 123 45 67", ConsentType::Mesaj).unwrap();
        assert!(mobile.is_turkish_mobile());
        assert_eq!(
            Recipient::parse_registrable("a@bc.com", ConsentType::Mesaj),
            Err(RecipientError::NeedsPhone(ConsentType::Mesaj))
        );
        assert!(Recipient::parse_registrable("a@bc.com", ConsentType::Eposta).is_ok());
    }

    #[test]
    fn masking_hides_the_middle() {
        let p = Recipient::parse("+905321234567").unwrap();
        assert_eq!(p.masked(), "+90532*****67");
        assert_eq!(format!("{p}"), "+90532*****67");
        assert_eq!(
            Recipient::parse("ali@firma.com").unwrap().masked(),
            "a***@firma.com"
        );
    }
}
