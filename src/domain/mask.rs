//! The one masking rule for what may reach a log, an error text or a viewer's screen: a phone
//! number shows its operator prefix and last two digits (`+90532*****67`, `0532*****67`), an
//! e-mail its first letter and domain (`a***@example.com`). Structured values and free text
//! (provider error messages, log lines) are masked by the same rule.

use std::sync::LazyLock;

use regex::{Captures, Regex};

/// Digits always hidden in a number, and digits always shown at its end.
const HIDDEN: usize = 5;
const SHOWN_TAIL: usize = 2;
/// The most of a number's start that stays visible (`90532`: country code and operator).
const MAX_SHOWN_HEAD: usize = 5;

/// A phone number in any written form (`+905321234567`, `0532 123 45 67`): the leading `+`,
/// at most five leading digits, five or more stars, the last two digits.
pub fn phone(p: &str) -> String {
    let plus = if p.trim_start().starts_with('+') {
        "+"
    } else {
        ""
    };
    let digits: String = p.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len();
    if n < HIDDEN + SHOWN_TAIL + 1 {
        return "*".repeat(p.chars().count());
    }
    let head = (n - HIDDEN - SHOWN_TAIL).min(MAX_SHOWN_HEAD);
    format!(
        "{plus}{}{}{}",
        &digits[..head],
        "*".repeat(n - head - SHOWN_TAIL),
        &digits[n - SHOWN_TAIL..]
    )
}

/// An e-mail address: the local part's first character and the domain.
pub fn email(e: &str) -> String {
    match e.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().unwrap_or('*');
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

// A number must start a token: digit runs inside identifiers (hex lease owners, request ids)
// are not phone numbers, and masking them breaks what operators and tests read from the log.
// Ten digits is the shortest way to write a Turkish number (`5321234567`); shorter runs are
// ids, counts and durations. Single spaces may group the digits, as people write them.
static PHONE_IN_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(^|[^0-9A-Za-z_])(\+?\d(?: ?\d){9,14})\b").expect("valid regex"));
static EMAIL_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}").expect("valid regex")
});

/// Free text with every phone number and e-mail address in it masked.
pub fn text(s: &str) -> String {
    let s = PHONE_IN_TEXT.replace_all(s, |c: &Captures<'_>| format!("{}{}", &c[1], phone(&c[2])));
    EMAIL_IN_TEXT
        .replace_all(&s, |c: &Captures<'_>| email(&c[0]))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_every_written_form() {
        assert_eq!(phone("+905321234567"), "+90532*****67");
        assert_eq!(phone("905321234567"), "90532*****67");
        assert_eq!(phone("05321234567"), "0532*****67");
        assert_eq!(phone("5321234567"), "532*****67");
        assert_eq!(phone("0532 123 45 67"), "0532*****67");
        assert_eq!(phone("+4915112345678901"), "+49151*********01");
        assert_eq!(phone("12345"), "*****");
    }

    #[test]
    fn free_text() {
        assert_eq!(text("from +905321234567 ok"), "from +90532*****67 ok");
        assert_eq!(text("to 905321234567"), "to 90532*****67");
        assert_eq!(text("telno=5321234567&x"), "telno=532*****67&x");
        assert_eq!(text("arayan 0532 123 45 67."), "arayan 0532*****67.");
        assert_eq!(
            text(r#"{"sender":"+905321234567"}"#),
            r#"{"sender":"+90532*****67"}"#
        );
        assert_eq!(
            text("The 'To' number +905321234567 is not valid, code 21610"),
            "The 'To' number +90532*****67 is not valid, code 21610"
        );
        // Digits inside an identifier, ids, dates and durations are left alone.
        let owner = "reporter-ce86d01f6f73495eaee2356012345678975";
        assert_eq!(text(owner), owner);
        let plain = "job 4211 took 120 ms at 2026-11-23 10:00:00, brand 700000";
        assert_eq!(text(plain), plain);
        assert_eq!(text("mail Ali.Veli@Firma.com.tr"), "mail A***@Firma.com.tr");
    }
}
