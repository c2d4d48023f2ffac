//! The one rule for identifiers a provider (or İYS) hands us that end up in a key column:
//! Twilio MessageSid and CallSid, a generic provider's `message_id`, İYS's `transactionId`, an
//! agent's call reference or Idempotency-Key.
//!
//! They are dedupe keys, so they reach unique indexes on both backends. PostgreSQL refuses a NUL
//! in `TEXT` and a btree entry over ~2.7 kB, SQLite takes both: without one rule at the edge the
//! same request would be a 4xx on one backend and a 5xx on the other. Every identifier we know of
//! is short visible ASCII (Twilio `SM` + 32 hex, UUIDs, Verimor's integers, İYS's 64 hex), so the
//! rule is exactly that: 1 to [`MAX_LEN`] visible ASCII characters, no spaces.

use std::fmt;

/// Longest identifier accepted, in bytes (= characters: only ASCII passes). Twice the longest
/// known one (İYS's 64 hex), far below any index limit.
pub const MAX_LEN: usize = 128;

/// A provider identifier that passed [`ProviderMessageId::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderMessageId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderIdError {
    #[error("is empty")]
    Empty,
    #[error("is {0} bytes long; at most {MAX_LEN} accepted")]
    TooLong(usize),
    #[error("contains a NUL byte at position {0}")]
    Nul(usize),
    #[error(
        "contains a character other than visible ASCII (letters, digits, punctuation; no spaces) at position {0}"
    )]
    Character(usize),
}

impl ProviderMessageId {
    pub fn parse(s: &str) -> Result<Self, ProviderIdError> {
        if s.is_empty() {
            return Err(ProviderIdError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(ProviderIdError::TooLong(s.len()));
        }
        if let Some(i) = s.bytes().position(|b| b == 0) {
            return Err(ProviderIdError::Nul(i));
        }
        if let Some(i) = s.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(ProviderIdError::Character(i));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ProviderMessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_formats_pass() {
        for id in [
            "SM1234567890abcdef1234567890abcdef",
            "CA1234567890abcdef1234567890abcdef",
            "d6c1a0f4-1f3e-4b5e-9c59-6b1a3c2d4e5f",
            "1234",
            "h:0123456789abcdef0123456789abcdef",
            "e52ee30512adfcd2a41fb3b4682f5bd61eee5b1c92bda665fc0b7e56644d429d",
            "PBX-1001",
            "1698765432.123",
        ] {
            assert_eq!(ProviderMessageId::parse(id).unwrap().as_str(), id);
        }
        assert!(ProviderMessageId::parse(&"a".repeat(MAX_LEN)).is_ok());
    }

    #[test]
    fn hostile_ids_are_refused_with_a_reason() {
        use ProviderIdError as E;
        let cases: [(&str, E); 8] = [
            ("", E::Empty),
            (&"a".repeat(MAX_LEN + 1), E::TooLong(MAX_LEN + 1)),
            ("SM12\0", E::Nul(4)),
            ("\0", E::Nul(0)),
            ("SM 12", E::Character(2)),
            ("SM12\n", E::Character(4)),
            ("SMİ", E::Character(2)),
            ("\u{7f}", E::Character(0)),
        ];
        for (id, want) in cases {
            let got = ProviderMessageId::parse(id).unwrap_err();
            assert_eq!(got, want, "{id:?}");
            assert!(!got.to_string().is_empty());
        }
        // A 5,000-character id (the PostgreSQL btree case) is refused by length, not by the index.
        assert_eq!(
            ProviderMessageId::parse(&"x".repeat(5000)),
            Err(E::TooLong(5000))
        );
    }

    proptest::proptest! {
        #[test]
        fn whatever_passes_is_short_visible_ascii(s in "\\PC{0,200}|[\\x00-\\x7f]{0,200}") {
            if let Ok(id) = ProviderMessageId::parse(&s) {
                proptest::prop_assert!(!id.as_str().is_empty() && id.as_str().len() <= MAX_LEN);
                proptest::prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
