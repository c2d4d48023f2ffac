//! Recipient formats as İYS states them (docs/iys-api-notes.md §4), written for the simulator alone.
//!
//! This deliberately does not call `crate::domain::recipient` or the `phonenumber` crate the
//! relay parses with. The simulator is the oracle the relay is tested against; an oracle that
//! reused the relay's parser would accept exactly what the relay accepts, so a number or
//! address the relay gets wrong would never be caught. These checks follow the documented
//! wire rules instead: İYS takes only the canonical forms (E.164 with `+`, lower-case-able
//! ASCII e-mails) and normalises nothing but e-mail case.

/// What is wrong with a phone recipient, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhoneCheck {
    /// More than 15 characters (H160 on adds, H166 on queries).
    pub too_long: bool,
    /// Not an E.164 number İYS would take (H121).
    pub invalid: bool,
}

const MAX_PHONE_CHARS: usize = 15;

/// E.164: `+`, a country code not starting with 0, digits only, at most 15 characters.
/// Turkish numbers (+90) are checked against the national plan: ten digits starting with 2–5
/// (geographic and mobile) or 8–9 (non-geographic), `444` and four digits, or the `+9005…`
/// form İYS documents as accepted. Other countries get the shape check only.
pub fn phone(raw: &str) -> PhoneCheck {
    let too_long = raw.chars().count() > MAX_PHONE_CHARS;
    let Some(digits) = raw.strip_prefix('+') else {
        return PhoneCheck {
            too_long,
            invalid: true,
        };
    };
    let shape_ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    let plan_ok = match digits.strip_prefix("90") {
        Some(national) => turkish_national(national),
        None => (7..=14).contains(&digits.len()),
    };
    PhoneCheck {
        too_long,
        invalid: !(shape_ok && plan_ok),
    }
}

fn turkish_national(n: &str) -> bool {
    let b = n.as_bytes();
    match b.len() {
        10 => matches!(b[0], b'2'..=b'5' | b'8' | b'9'),
        7 => n.starts_with("444"),
        // `+9005XXXXXXXXX`: accepted by İYS but invisible to citizens (§4).
        11 => n.starts_with("05"),
        _ => false,
    }
}

/// `^\+905\d{9}$`: a Turkish mobile, the only MESAJ recipient under `strict_turkish_mobile`.
pub fn is_turkish_mobile(raw: &str) -> bool {
    raw.len() == 13 && raw.starts_with("+905") && raw[1..].bytes().all(|b| b.is_ascii_digit())
}

/// An e-mail as İYS stores it (lower case), or `None` when İYS would answer H120: 6–265
/// characters, ASCII only (no Turkish letters), no spaces, one `@`, a local part of letters,
/// digits and `+ - _ .`, and a dotted domain of letters, digits and `- _` with a top-level
/// label of at least two characters.
pub fn email(raw: &str) -> Option<String> {
    let len = raw.chars().count();
    if !(6..=265).contains(&len) || !raw.is_ascii() {
        return None;
    }
    let (local, domain) = raw.split_once('@')?;
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-_.".contains(&b));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2);
    (local_ok && domain_ok).then(|| raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> bool {
        phone(raw) == PhoneCheck::default()
    }

    #[test]
    fn phones() {
        for good in [
            "+905321234567",
            "+902121230000",
            "+908501234567",
            "+904441234",
            "+9005321234567",
            "+14158675309",
            "+4930123456",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "05321234567",
            "905321234567",
            "+90 532 123 45 67",
            "+90532123456",
            "+901321234567",
            "+0123456789",
            "+",
            "+12345",
            "a@b.com",
        ] {
            assert!(phone(bad).invalid, "{bad}");
        }
        assert_eq!(
            phone("+9055436100000000"),
            PhoneCheck {
                too_long: true,
                invalid: true
            }
        );
        assert!(ok("+12345678901234"), "15 characters is the maximum");
    }

    #[test]
    fn turkish_mobiles() {
        assert!(is_turkish_mobile("+905321234567"));
        assert!(!is_turkish_mobile("+902121230000"));
        assert!(!is_turkish_mobile("+9005321234567"));
        assert!(!is_turkish_mobile("+90532123456x"));
    }

    #[test]
    fn emails() {
        assert_eq!(
            email("Ali.Veli+x@Example.COM").as_deref(),
            Some("ali.veli+x@example.com")
        );
        assert_eq!(email("_a-b@x.co").as_deref(), Some("_a-b@x.co"));
        for bad in [
            "örnek@firma.com",
            "a b@x.com",
            "ab@x",
            "a@@x.com",
            "a!b@x.com",
            "abc@x.c",
            "@x.com",
            "a@.com",
            "a@b",
        ] {
            assert_eq!(email(bad), None, "{bad}");
        }
        assert_eq!(email(&format!("{}@example.com", "a".repeat(260))), None);
    }
}
