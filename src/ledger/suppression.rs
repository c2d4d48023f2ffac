//! "May brand B send type T to recipient R?", answered from the current-state table.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Address;
use crate::domain::{ConsentType, RecipientType, Source, Status};
use crate::store::{ConsentState, Store, StoreError};

#[derive(Debug, Clone, Copy)]
pub struct SuppressionPolicy {
    /// An ONAY counts only once İYS holds it (the law: consent must be in İYS).
    pub require_iys_confirmation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaySend {
    Yes,
    /// No consent recorded for this address.
    NoConsent,
    /// The recipient rejected (RET).
    Rejected,
    /// ONAY recorded here but not yet registered in İYS.
    PendingIysRegistration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SuppressionAnswer {
    pub recipient: String,
    pub brand_code: i64,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    pub recipient_type: RecipientType,
    pub status: Option<Status>,
    pub consent_date: Option<DateTime<Utc>>,
    pub source: Option<Source>,
    pub iys_confirmed: bool,
    pub may_send: bool,
    pub reason: MaySend,
}

impl SuppressionPolicy {
    pub fn answer(
        &self,
        recipient: &str,
        brand_code: i64,
        consent_type: ConsentType,
        recipient_type: RecipientType,
        state: Option<&ConsentState>,
    ) -> SuppressionAnswer {
        let reason = match state {
            None => MaySend::NoConsent,
            Some(s) if s.status == Status::Ret => MaySend::Rejected,
            Some(s) if self.require_iys_confirmation && !s.iys_confirmed => {
                MaySend::PendingIysRegistration
            }
            Some(_) => MaySend::Yes,
        };
        SuppressionAnswer {
            recipient: recipient.to_string(),
            brand_code,
            consent_type,
            recipient_type,
            status: state.map(|s| s.status),
            consent_date: state.map(|s| s.consent_at),
            source: state.map(|s| s.source),
            iys_confirmed: state.is_some_and(|s| s.iys_confirmed),
            may_send: reason == MaySend::Yes,
            reason,
        }
    }
}

impl SuppressionPolicy {
    /// The answer for one address, read from the current-state table.
    pub async fn ask(
        &self,
        store: &dyn Store,
        key: &Address,
    ) -> Result<SuppressionAnswer, StoreError> {
        let state = store.consent_state(key).await?;
        Ok(self.answer(
            &key.recipient,
            key.brand_code,
            key.consent_type,
            key.recipient_type,
            state.as_ref(),
        ))
    }

    /// The answers for many recipients of one brand and type, in the order given (repeats
    /// answered again), read in one query.
    pub async fn ask_many(
        &self,
        store: &dyn Store,
        brand_code: i64,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        recipients: &[String],
    ) -> Result<Vec<SuppressionAnswer>, StoreError> {
        let mut unique = recipients.to_vec();
        unique.sort();
        unique.dedup();
        let states = store
            .consent_states(brand_code, recipient_type, consent_type, &unique)
            .await?;
        let by_recipient: std::collections::HashMap<&str, &ConsentState> =
            states.iter().map(|s| (s.recipient.as_str(), s)).collect();
        Ok(recipients
            .iter()
            .map(|r| {
                self.answer(
                    r,
                    brand_code,
                    consent_type,
                    recipient_type,
                    by_recipient.get(r.as_str()).copied(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Channel;
    use crate::domain::time::from_ms;

    fn state(status: Status, confirmed: bool) -> ConsentState {
        ConsentState {
            brand_code: 1,
            recipient: "+905321234567".into(),
            recipient_type: RecipientType::Bireysel,
            consent_type: ConsentType::Mesaj,
            status,
            source: Source::HsMesaj,
            channel: Channel::Sms,
            consent_at: from_ms(0),
            event_id: 1,
            iys_confirmed: confirmed,
            updated_at: from_ms(0),
        }
    }

    #[test]
    fn rules() {
        let strict = SuppressionPolicy {
            require_iys_confirmation: true,
        };
        let lax = SuppressionPolicy {
            require_iys_confirmation: false,
        };
        let a = |p: &SuppressionPolicy, s: Option<&ConsentState>| {
            p.answer(
                "+905321234567",
                1,
                ConsentType::Mesaj,
                RecipientType::Bireysel,
                s,
            )
            .reason
        };
        assert_eq!(a(&strict, None), MaySend::NoConsent);
        assert_eq!(
            a(&strict, Some(&state(Status::Ret, true))),
            MaySend::Rejected
        );
        assert_eq!(
            a(&strict, Some(&state(Status::Ret, false))),
            MaySend::Rejected
        );
        assert_eq!(
            a(&strict, Some(&state(Status::Onay, false))),
            MaySend::PendingIysRegistration
        );
        assert_eq!(a(&strict, Some(&state(Status::Onay, true))), MaySend::Yes);
        assert_eq!(a(&lax, Some(&state(Status::Onay, false))), MaySend::Yes);
    }
}
