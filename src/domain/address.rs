//! An address: İYS's identity of one consent record, the unit every movement, report job and
//! "may we send?" answer is about. Channels build it when they record a movement, the ledger
//! and the store key states and jobs by it, and the reporter sends and checks by it, so no layer
//! splits it into loose fields or reads it back out of a string.

use serde::Serialize;

use super::{ConsentType, RecipientType};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Address {
    pub brand_code: i64,
    /// As İYS spells it: E.164 phone or lower-case e-mail (`Recipient::as_str`).
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
}

/// Addresses as İYS groups them in a status query: (brand, recipient type, type), recipients
/// sorted and once each.
pub type AddressGroups<'a> =
    std::collections::BTreeMap<(i64, RecipientType, ConsentType), Vec<&'a str>>;

impl Address {
    pub fn group(keys: &[Address]) -> AddressGroups<'_> {
        let mut groups: AddressGroups<'_> = Default::default();
        for k in keys {
            groups
                .entry((k.brand_code, k.recipient_type, k.consent_type))
                .or_default()
                .push(k.recipient.as_str());
        }
        for r in groups.values_mut() {
            r.sort_unstable();
            r.dedup();
        }
        groups
    }
}
