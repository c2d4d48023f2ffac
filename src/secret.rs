//! A configuration value that must never reach a log, an error or a dump of the configuration.
//! Kept apart from `config` so that every layer holding a credential can name the type without
//! depending on the whole configuration.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string: `Debug` and `Serialize` print it redacted, and it has no `Display`, so it
/// cannot be formatted into a message by mistake; `expose()` is the one way to read it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}
impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.0.is_empty() { "" } else { "***" })
    }
}
