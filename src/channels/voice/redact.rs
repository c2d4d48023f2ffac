//! Debug by hand for the flow types: the derived form would print full phone numbers and the
//! digits a caller typed (KVKK; house rule). Masked forms only.

use std::fmt;

use super::flow::{CallState, Input, Outcome, Stage};
use crate::domain::Recipient;

impl fmt::Debug for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stage::ReadBack { number } => write!(f, "ReadBack({})", number.masked()),
            other => f.write_str(other.name()),
        }
    }
}

impl fmt::Debug for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallState")
            .field("stage", &self.stage)
            .field("lang", &self.lang)
            .field("brand", &self.brand.as_ref().map(|b| b.brand_code))
            .field("recipient", &self.recipient.as_ref().map(Recipient::masked))
            .field("failures", &self.failures)
            .field("turns", &self.turns)
            .field("keys_pressed", &self.pressed.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Start { caller, brands } => write!(
                f,
                "Start {{ caller: {}, brands: {} }}",
                if caller.is_some() { "<set>" } else { "<none>" },
                brands.len()
            ),
            Input::StartOutbound(o) => write!(
                f,
                "StartOutbound {{ entry: {:?}, direction: {}, brand: {:?}, recipient: {} }}",
                o.entry,
                o.call.direction,
                o.brand.as_ref().map(|b| b.brand_code),
                o.recipient
                    .as_ref()
                    .map_or_else(|| "<none>".to_string(), Recipient::masked),
            ),
            Input::Digits(d) => write!(f, "Digits({} keys)", d.chars().count()),
            Input::Timeout => f.write_str("Timeout"),
            Input::Hangup => f.write_str("Hangup"),
        }
    }
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("brand_code", &self.brand_code)
            .field("status", &self.status)
            .field("types", &self.types)
            .field("recipient", &self.recipient.masked())
            .field("prompt_versions", &self.prompt_versions)
            .finish_non_exhaustive()
    }
}
