//! The simulator's in-memory world: consent records, the movement log, batches, tokens, push
//! registrations and the request log. Everything sits behind one mutex in [`super::Simulator`];
//! no lock is held across an `.await`.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::limits::Limiter;
use super::rules::ValidConsent;
use crate::domain::time::to_iys;
use crate::domain::{ConsentType, RecipientType, Source, Status};

/// The identity of a consent inside a brand (docs/iys-api-notes.md §5): recipient (e-mails lower-cased),
/// recipient type and consent type.
pub type Key = (String, RecipientType, ConsentType);

/// Current state of one consent, as `POST {B}/consents/status` would show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimRecord {
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub status: Status,
    /// `None` for a TACIR first save without a date and for operator line closures.
    pub consent_date: Option<DateTime<Utc>>,
    pub source: Option<Source>,
    /// When İYS first stored the record (the status query's `creationDate`).
    pub first_creation_date: DateTime<Utc>,
    /// When the last movement was stored.
    pub creation_date: DateTime<Utc>,
    pub transaction_id: String,
    pub retailer_code: Option<i64>,
    /// The batch (requestId, subRequestId) that last wrote this record, for v2 polls.
    pub origin: Option<(String, String)>,
}

/// One row of the append-only movement log (what pull, push and history return).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SimMovement {
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub status: Status,
    pub consent_date: Option<DateTime<Utc>>,
    pub source: Option<Source>,
    pub creation_date: DateTime<Utc>,
    pub transaction_id: String,
    pub citizen_name: Option<String>,
}

impl SimMovement {
    /// The wire form shared by pull, push and history. `citizenName` is added only when asked
    /// (pull with `source=IYS`) and only for `IYS_WEB_YENI` rows.
    pub fn to_wire(&self, with_citizen: bool) -> Value {
        let mut v = json!({
            "consentDate": self.consent_date.map(to_iys).unwrap_or_default(),
            "creationDate": to_iys(self.creation_date),
            "source": self.source.map(|s| s.as_str()).unwrap_or_default(),
            "recipient": self.recipient,
            "recipientType": self.recipient_type,
            "status": self.status,
            "type": self.consent_type,
            "transactionId": self.transaction_id,
        });
        if with_citizen
            && self.source == Some(Source::IysWebYeni)
            && let Some(name) = &self.citizen_name
        {
            v["citizenName"] = json!(name);
        }
        v
    }
}

/// `hex(sha256(brand|recipient|recipientType|type|creationDate))`: movements for one address and
/// type in the same second share a transactionId, the quirk İYS documents.
pub fn transaction_id(
    brand_code: i64,
    recipient: &str,
    rt: RecipientType,
    t: ConsentType,
    creation: DateTime<Utc>,
) -> String {
    let input = format!("{brand_code}|{recipient}|{rt}|{t}|{}", to_iys(creation));
    hex::encode(Sha256::digest(input.as_bytes()))
}

/// İYS timestamps have whole seconds.
pub fn whole_second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

#[derive(Debug, Clone)]
pub struct BatchItem {
    pub sub_request_id: String,
    pub consent: ValidConsent,
}

#[derive(Debug, Clone)]
pub struct Batch {
    pub created_at: DateTime<Utc>,
    pub v2: bool,
    pub items: Vec<BatchItem>,
    /// `None` until processed; then the poll's array.
    pub results: Option<Vec<Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushRegistration {
    pub url: String,
    pub consent_type: ConsentType,
    pub username: String,
    pub password: String,
    pub register_time: DateTime<Utc>,
    /// False when the test payload could not be delivered ("Bağlantı Oluşturulamadı").
    pub active: bool,
}

/// One push İYS made to an HS, for inspection in tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushAttempt {
    pub url: String,
    pub transaction_id: String,
    /// HTTP status the HS answered, `None` on a transport error or timeout.
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
pub struct BrandState {
    pub records: HashMap<Key, SimRecord>,
    pub movements: Vec<SimMovement>,
    pub batches: HashMap<String, Batch>,
    pub push_regs: Vec<PushRegistration>,
    /// v2 single add: canonical body → (transactionId, creationDate) of the first answer.
    pub v2_seen: HashMap<String, (String, DateTime<Utc>)>,
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub username: String,
    pub expires_at: DateTime<Utc>,
}

/// One API call as the simulator answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggedRequest {
    /// When the call arrived (the simulator's clock), so tests can check request rates.
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub code: Option<String>,
}

#[derive(Debug, Default)]
pub struct State {
    pub brands: HashMap<i64, BrandState>,
    pub access_tokens: HashMap<String, TokenInfo>,
    pub refresh_tokens: HashMap<String, TokenInfo>,
    pub limiter: Limiter,
    pub log: Vec<LoggedRequest>,
    pub outage: Option<(u16, String)>,
    pub fail_next: VecDeque<(u16, String)>,
    pub push_log: Vec<PushAttempt>,
}

impl State {
    pub fn brand(&mut self, brand_code: i64) -> &mut BrandState {
        self.brands.entry(brand_code).or_default()
    }

    /// Records across all brands, the number the subscription quota (H525) counts.
    pub fn total_records(&self) -> usize {
        self.brands.values().map(|b| b.records.len()).sum()
    }

    /// Writes a validated, rule-checked consent: updates the record, appends a movement.
    pub fn commit(
        &mut self,
        brand_code: i64,
        c: &ValidConsent,
        now: DateTime<Utc>,
        origin: Option<(String, String)>,
        citizen_name: Option<String>,
    ) -> SimMovement {
        let creation = whole_second(now);
        let txid = transaction_id(
            brand_code,
            &c.recipient,
            c.recipient_type,
            c.consent_type,
            creation,
        );
        let b = self.brand(brand_code);
        let key = (c.recipient.clone(), c.recipient_type, c.consent_type);
        let first = b
            .records
            .get(&key)
            .map(|r| r.first_creation_date)
            .unwrap_or(creation);
        let retailer_code = c
            .retailer_code
            .or_else(|| b.records.get(&key).and_then(|r| r.retailer_code));
        b.records.insert(
            key,
            SimRecord {
                recipient: c.recipient.clone(),
                recipient_type: c.recipient_type,
                consent_type: c.consent_type,
                status: c.status,
                consent_date: c.consent_date,
                source: c.source,
                first_creation_date: first,
                creation_date: creation,
                transaction_id: txid.clone(),
                retailer_code,
                origin,
            },
        );
        let m = SimMovement {
            brand_code,
            recipient: c.recipient.clone(),
            recipient_type: c.recipient_type,
            consent_type: c.consent_type,
            status: c.status,
            consent_date: c.consent_date,
            source: c.source,
            creation_date: creation,
            transaction_id: txid,
            citizen_name,
        };
        b.movements.push(m.clone());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_iys;

    #[test]
    fn same_second_same_transaction_id() {
        let t = from_iys("2026-03-02 10:00:00").unwrap();
        let a = transaction_id(
            1,
            "+905321234567",
            RecipientType::Bireysel,
            ConsentType::Mesaj,
            t,
        );
        let b = transaction_id(
            1,
            "+905321234567",
            RecipientType::Bireysel,
            ConsentType::Mesaj,
            whole_second(t + chrono::Duration::milliseconds(900)),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        let c = transaction_id(
            1,
            "+905321234567",
            RecipientType::Bireysel,
            ConsentType::Mesaj,
            t + chrono::Duration::seconds(1),
        );
        assert_ne!(a, c);
        let other_type = transaction_id(
            1,
            "+905321234567",
            RecipientType::Bireysel,
            ConsentType::Arama,
            t,
        );
        assert_ne!(a, other_type);
    }

    #[test]
    fn citizen_name_only_for_iys_web_yeni() {
        let t = from_iys("2026-03-02 10:00:00").unwrap();
        let mut m = SimMovement {
            brand_code: 1,
            recipient: "a@bc.com".into(),
            recipient_type: RecipientType::Bireysel,
            consent_type: ConsentType::Eposta,
            status: Status::Onay,
            consent_date: Some(t),
            source: Some(Source::IysWebYeni),
            creation_date: t,
            transaction_id: "x".into(),
            citizen_name: Some("Ayşe Işık".into()),
        };
        assert_eq!(m.to_wire(true)["citizenName"], "Ayşe Işık");
        assert!(m.to_wire(false).get("citizenName").is_none());
        m.source = Some(Source::IysMobil);
        assert!(m.to_wire(true).get("citizenName").is_none());
        assert_eq!(m.to_wire(true)["consentDate"], "2026-03-02 10:00:00");
    }
}
