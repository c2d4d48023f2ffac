//! İYS request and response bodies, spelled as on the wire (docs/iys-api-notes.md §1.1, §3, §8).
//!
//! Requests are strict: optional fields are left out, never sent as `""` or `null` (an empty
//! `retailerCode` gives 400 H267, an unknown key 422 H118). Responses are lenient: keys İYS spells
//! two ways are both accepted, and open-ended values (sources, `BEKLIYOR`) stay strings.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::errors::ErrorItem;
use crate::domain::time::{from_iys, to_iys};
use crate::domain::{ConsentIntent, ConsentType, Recipient, RecipientType, Source, Status};

/// Why a domain movement cannot become an İYS request (each would be a doomed 4xx call).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{0} is set by İYS itself and cannot be sent by an HS (H119)")]
    NotHsSource(Source),
    #[error("recipient does not fit the consent type: {0}")]
    RecipientType(#[from] crate::domain::recipient::RecipientError),
    #[error("HS_KARAR can only carry RET (H408)")]
    KararNeedsRet,
}

/// Body of `POST [/v2]/sps/{iysCode}/brands/{brandCode}/consents` and one item of a batch.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentRequest {
    pub recipient: String,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    pub source: Source,
    pub status: Status,
    /// `YYYY-MM-DD HH:mm:ss`, Istanbul time.
    pub consent_date: String,
    pub recipient_type: RecipientType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retailer_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retailer_access: Option<Vec<i64>>,
}

impl ConsentRequest {
    /// Builds a request from domain values, refusing the ones İYS would reject for sure.
    pub fn new(
        recipient: &Recipient,
        recipient_type: RecipientType,
        consent_type: ConsentType,
        status: Status,
        source: Source,
        consent_at: DateTime<Utc>,
    ) -> Result<Self, WireError> {
        if !source.is_hs() {
            return Err(WireError::NotHsSource(source));
        }
        if source == Source::HsKarar && status != Status::Ret {
            return Err(WireError::KararNeedsRet);
        }
        recipient.check_type(consent_type)?;
        Ok(Self {
            recipient: recipient.as_str().to_string(),
            consent_type,
            source,
            status,
            consent_date: to_iys(consent_at),
            recipient_type,
            retailer_code: None,
            retailer_access: None,
        })
    }

    pub fn from_intent(i: &ConsentIntent) -> Result<Self, WireError> {
        Self::new(
            &i.recipient,
            i.recipient_type,
            i.consent_type,
            i.status,
            i.source,
            i.consent_at,
        )
    }

    /// Adds retailer fields; an empty access list is dropped rather than sent (H163).
    pub fn with_retailer(mut self, code: Option<i64>, access: Vec<i64>) -> Self {
        self.retailer_code = code;
        self.retailer_access = (!access.is_empty()).then_some(access);
        self
    }
}

impl fmt::Debug for ConsentRequest {
    // Hand-written so that a request formatted into a log line never shows the recipient.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsentRequest")
            .field("recipient", &mask_recipient(&self.recipient))
            .field("type", &self.consent_type)
            .field("source", &self.source)
            .field("status", &self.status)
            .field("consentDate", &self.consent_date)
            .field("recipientType", &self.recipient_type)
            .field("retailerCode", &self.retailer_code)
            .field(
                "retailerAccess",
                &self.retailer_access.as_ref().map(Vec::len),
            )
            .finish()
    }
}

/// The loggable form of a wire recipient, even one our own parser would refuse.
pub fn mask_recipient(s: &str) -> String {
    match Recipient::parse(s) {
        Ok(r) => r.masked(),
        Err(_) => format!("<{} chars>", s.chars().count()),
    }
}

/// 200 from a single add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddConsentResponse {
    pub transaction_id: String,
    #[serde(default)]
    pub creation_date: String,
}

/// 202 from a batch add: the list was accepted, nothing is written yet (§3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchAccepted {
    pub request_id: String,
    #[serde(default)]
    pub sub_requests: Vec<SubRequest>,
}

/// One echoed item of a batch 202, in submission order. Values stay strings (`BEKLIYOR` exists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubRequest {
    #[serde(default, alias = "subrequestId")]
    pub sub_request_id: Option<String>,
    #[serde(default, rename = "type")]
    pub consent_type: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub consent_date: Option<String>,
    #[serde(default)]
    pub recipient_type: Option<String>,
    #[serde(default)]
    pub creation_date: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollStatus {
    Success,
    Failure,
    Enqueue,
    /// Anything new İYS may add: treat as not finished.
    #[serde(other)]
    Unknown,
}

/// One item of the batch poll array (§3.3). `index` is 0-based into the submitted array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollItem {
    #[serde(default)]
    pub index: Option<usize>,
    pub status: PollStatus,
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub creation_date: Option<String>,
    #[serde(default)]
    pub error: Option<ErrorItem>,
    #[serde(default, alias = "subrequestId")]
    pub sub_request_id: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Boolean in the schema, the string `"true"` in the example: accept both.
    #[serde(default, deserialize_with = "bool_or_string")]
    pub is_add_consent_v2_service: Option<bool>,
    #[serde(default)]
    pub original_request_information: Option<OriginalRequest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginalRequest {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default, alias = "subrequestId")]
    pub sub_request_id: Option<String>,
}

fn bool_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => Some(b),
        Some(serde_json::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    })
}

/// Body of `POST {B}/consents/status` (all three keys required, H170).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRequest {
    pub recipient: String,
    pub recipient_type: RecipientType,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
}

impl fmt::Debug for StatusRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusRequest")
            .field("recipient", &mask_recipient(&self.recipient))
            .field("recipientType", &self.recipient_type)
            .field("type", &self.consent_type)
            .finish()
    }
}

/// 200 from the single status query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResponse {
    #[serde(default, deserialize_with = "non_empty")]
    pub consent_date: Option<String>,
    #[serde(default)]
    pub creation_date: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub status: Status,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retailer_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retailer_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retailer_access_count: Option<i64>,
    #[serde(default)]
    pub transaction_id: Option<String>,
}

/// Body of `POST {B}/consents/{recipientType}/status/{type}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiStatusRequest {
    pub recipients: Vec<String>,
}

/// `list` holds only the ONAY addresses; RET and unknown cannot be told apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MultiStatusResponse {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub list: Vec<String>,
}

/// One consent movement as pull (§3.7) and push (§8) report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Movement {
    /// Empty for TACIR records first saved without a date and for `IYS_AHS_HAT_KAPATMA` rows.
    #[serde(default, deserialize_with = "non_empty")]
    pub consent_date: Option<String>,
    pub creation_date: String,
    /// Kept as text: İYS adds new `IYS_*` sources over time. See [`Movement::parsed_source`].
    pub source: String,
    pub recipient: String,
    #[serde(default = "bireysel")]
    pub recipient_type: RecipientType,
    pub status: Status,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    pub transaction_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citizen_name: Option<String>,
}

fn bireysel() -> RecipientType {
    RecipientType::Bireysel
}

impl Movement {
    pub fn parsed_source(&self) -> Option<Source> {
        self.source.parse().ok()
    }
    /// True for movements the citizen made through İYS (unknown `IYS_*` spellings included).
    pub fn is_iys(&self) -> bool {
        self.source.starts_with("IYS_")
    }
    pub fn consent_at(&self) -> Option<DateTime<Utc>> {
        self.consent_date.as_deref().and_then(from_iys)
    }
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        from_iys(&self.creation_date)
    }
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    Ok(s.filter(|s| !s.trim().is_empty()))
}

/// One row of the daily changes file `GET {B}/changes/{reportDate}/file` (docs/iys-api-notes.md §3.11):
/// the same fields as a pulled movement, without `citizenName`.
pub type FileRow = Movement;

/// The header İYS puts on the daily changes file.
pub const CHANGES_FILE_HEADER: &str =
    "creationDate,transactionId,recipient,recipientType,type,status,consentDate,source";

/// Why a daily changes file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the changes file has no header line")]
    NoHeader,
    #[error("the changes file lacks the column {0:?}")]
    MissingColumn(&'static str),
    #[error("changes file line {line}: {reason}")]
    Row { line: u64, reason: String },
}

/// Parses the CSV of the daily changes file. Columns are found by name (order-free, extra
/// columns ignored); an empty body or a header alone is an empty day.
pub fn parse_changes_file(body: &[u8]) -> Result<Vec<FileRow>, FileError> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    if body.trim_ascii().is_empty() {
        return Ok(Vec::new());
    }
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(body);
    let headers = rd.headers().map_err(|_| FileError::NoHeader)?.clone();
    for col in CHANGES_FILE_HEADER
        .split(',')
        .filter(|c| *c != "consentDate")
    {
        if !headers.iter().any(|h| h == col) {
            return Err(FileError::MissingColumn(col));
        }
    }
    let mut out = Vec::new();
    for rec in rd.deserialize::<FileRow>() {
        let row = rec.map_err(|e| FileError::Row {
            line: e.position().map_or(0, |p| p.line()),
            reason: match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
                _ => e.to_string(),
            },
        })?;
        out.push(row);
    }
    Ok(out)
}

/// 200 from `GET {B}/consents/changes`. Store `after` and pass it back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullPage {
    pub after: String,
    #[serde(default)]
    pub list: Vec<Movement>,
}

/// What İYS POSTs to our registered push URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPayload {
    #[serde(default)]
    pub list: Vec<PushItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushItem {
    pub iys_code: i64,
    pub brand_code: i64,
    #[serde(flatten)]
    pub movement: Movement,
}

impl PushItem {
    /// The fixed registration test record İYS sends to every HS: a no-op (§8).
    pub fn is_registration_test(&self) -> bool {
        self.iys_code == 121212 && self.movement.recipient == "pushtest@iys.org.tr"
    }
}

/// Body of `POST /oauth2/token` (JSON form; İYS also accepts form encoding).
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    Password { username: String, password: String },
    RefreshToken { refresh_token: String },
}

impl fmt::Debug for TokenRequest {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRequest::Password { .. } => f.write_str("TokenRequest::Password"),
            TokenRequest::RefreshToken { .. } => f.write_str("TokenRequest::RefreshToken"),
        }
    }
}

/// 200 from the token endpoint. Lifetimes default to İYS's documented 2 h / 4 h.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_expires_in: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn phone() -> Recipient {
        Recipient::parse("0532 123 45 67").unwrap()
    }

    fn sample() -> ConsentRequest {
        ConsentRequest::new(
            &phone(),
            RecipientType::Bireysel,
            ConsentType::Mesaj,
            Status::Ret,
            Source::HsMesaj,
            at("2026-03-01T06:30:05Z"),
        )
        .unwrap()
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(|s| s.as_str()).collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn optional_fields_are_absent_not_null() {
        let v = serde_json::to_value(sample()).unwrap();
        assert_eq!(
            keys(&v),
            [
                "consentDate",
                "recipient",
                "recipientType",
                "source",
                "status",
                "type"
            ]
        );
        assert_eq!(v["recipient"], "+905321234567");
        assert_eq!(v["type"], "MESAJ");
        assert_eq!(v["recipientType"], "BIREYSEL");
        // An empty retailer list is dropped too (H163).
        let v = serde_json::to_value(sample().with_retailer(None, vec![])).unwrap();
        assert!(v.get("retailerAccess").is_none() && v.get("retailerCode").is_none());
        let v =
            serde_json::to_value(sample().with_retailer(Some(11223344), vec![22233344])).unwrap();
        assert_eq!(v["retailerCode"], 11223344);
        assert_eq!(v["retailerAccess"], json!([22233344]));
    }

    #[test]
    fn consent_date_is_istanbul_wall_clock() {
        let c = sample();
        assert_eq!(c.consent_date, "2026-03-01 09:30:05");
        let re = |s: &str| {
            s.len() == 19
                && s.char_indices().all(|(i, ch)| match i {
                    4 | 7 => ch == '-',
                    10 => ch == ' ',
                    13 | 16 => ch == ':',
                    _ => ch.is_ascii_digit(),
                })
        };
        assert!(re(&c.consent_date));
    }

    #[test]
    fn doomed_requests_are_refused() {
        let t = at("2026-03-01T06:30:05Z");
        let r = phone();
        let (b, m, ret) = (RecipientType::Bireysel, ConsentType::Mesaj, Status::Ret);
        assert_eq!(
            ConsentRequest::new(&r, b, m, ret, Source::IysMobil, t),
            Err(WireError::NotHsSource(Source::IysMobil))
        );
        assert_eq!(
            ConsentRequest::new(&r, b, m, Status::Onay, Source::HsKarar, t),
            Err(WireError::KararNeedsRet)
        );
        assert!(ConsentRequest::new(&r, b, ConsentType::Eposta, ret, Source::HsWeb, t).is_err());
    }

    #[test]
    fn debug_masks_the_recipient() {
        let d = format!("{:?}", sample());
        assert!(!d.contains("1234567"), "{d}");
        assert!(d.contains("+90532"));
        let t = TokenRequest::Password {
            username: "u".into(),
            password: "sekret".into(),
        };
        assert!(!format!("{t:?}").contains("sekret"));
    }

    #[test]
    fn token_requests_carry_grant_type() {
        let p = TokenRequest::Password {
            username: "u@x.com".into(),
            password: "p".into(),
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"grant_type":"password","username":"u@x.com","password":"p"})
        );
        let r = TokenRequest::RefreshToken {
            refresh_token: "jwt".into(),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"grant_type":"refresh_token","refresh_token":"jwt"})
        );
    }

    #[test]
    fn batch_202_accepts_both_sub_request_spellings() {
        let b: BatchAccepted = serde_json::from_value(json!({"requestId":"5a2e",
            "subRequests":[{"subRequestId":"a","status":"BEKLIYOR"},{"subrequestId":"b"}]}))
        .unwrap();
        assert_eq!(b.sub_requests[0].sub_request_id.as_deref(), Some("a"));
        assert_eq!(b.sub_requests[1].sub_request_id.as_deref(), Some("b"));
    }

    #[test]
    fn poll_items_parse_the_spec_example() {
        let items: Vec<PollItem> = serde_json::from_value(json!([
            {"subRequestId":"cf15","index":0,"status":"failure",
             "error":{"code":"H175","message":"İlk izin kayıt işlemlerinde RET ..."}},
            {"requestId":"5480","subRequestId":"2666","index":1,"status":"success",
             "transactionId":"432c","creationDate":"2020-08-21 14:45:24",
             "isAddConsentV2Service":"true",
             "originalRequestInformation":{"requestId":"2d8a","subRequestId":"86ec"}},
            {"index":2,"status":"enqueue","subrequestId":"7ed0","isAddConsentV2Service":false},
            {"index":3,"status":"bekliyor"}
        ]))
        .unwrap();
        assert_eq!(items[0].status, PollStatus::Failure);
        assert_eq!(
            items[0].error.as_ref().unwrap().code.as_deref(),
            Some("H175")
        );
        assert_eq!(items[1].is_add_consent_v2_service, Some(true));
        assert_eq!(
            items[1]
                .original_request_information
                .as_ref()
                .unwrap()
                .request_id
                .as_deref(),
            Some("2d8a")
        );
        assert_eq!(items[2].sub_request_id.as_deref(), Some("7ed0"));
        assert_eq!(items[2].is_add_consent_v2_service, Some(false));
        assert_eq!(items[3].status, PollStatus::Unknown);
        assert!(
            serde_json::from_str::<Vec<PollItem>>("[]")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn pull_page_tolerates_empty_consent_date_and_new_sources() {
        let p: PullPage = serde_json::from_value(json!({"after":"1597740617_632c","list":[
            {"consentDate":"","creationDate":"2020-08-18 11:50:17","source":"IYS_AHS_HAT_KAPATMA",
             "recipient":"+905321234567","recipientType":"BIREYSEL","status":"RET","type":"ARAMA",
             "transactionId":"632c"},
            {"consentDate":"2018-04-10 09:50:02","creationDate":"2020-08-18 11:50:17",
             "source":"IYS_SOMETHING_NEW","recipient":"john@doe.com","recipientType":"BIREYSEL",
             "status":"ONAY","type":"EPOSTA","transactionId":"632d","citizenName":"Ahmet Tuna Yılmaz"}]}))
        .unwrap();
        assert_eq!(p.list[0].consent_date, None);
        assert_eq!(p.list[0].parsed_source(), Some(Source::IysAhsHatKapatma));
        assert!(p.list[1].is_iys() && p.list[1].parsed_source().is_none());
        assert_eq!(p.list[1].consent_at(), Some(at("2018-04-10T06:50:02Z")));
        assert_eq!(p.list[1].citizen_name.as_deref(), Some("Ahmet Tuna Yılmaz"));
    }

    #[test]
    fn push_payload_and_test_record() {
        let p: PushPayload = serde_json::from_value(json!({"list":[{"iysCode":121212,
            "brandCode":121212,"consentDate":"2015-05-01 15:00:00","creationDate":"2015-05-01 15:00:00",
            "source":"IYS_MOBIL","recipient":"pushtest@iys.org.tr","recipientType":"BIREYSEL",
            "status":"ONAY","type":"EPOSTA","transactionId":"e52e"}]}))
        .unwrap();
        assert!(p.list[0].is_registration_test());
        assert_eq!(p.list[0].movement.status, Status::Onay);
    }

    #[test]
    fn status_response_and_multi_status() {
        let s: StatusResponse = serde_json::from_value(json!({"consentDate":"2020-07-08 07:07:07",
            "creationDate":"2020-08-06 15:50:23","source":"HS_CAGRI_MERKEZI",
            "recipient":"a@b.co","recipientType":"BIREYSEL","status":"ONAY","type":"EPOSTA",
            "retailerCode":55550127,"retailerTitle":"XYZ TİCARET","retailerAccessCount":3,
            "transactionId":"abc6"}))
        .unwrap();
        assert_eq!(s.retailer_access_count, Some(3));
        let m: MultiStatusResponse =
            serde_json::from_value(json!({"requestId":"8da1","list":["+905055566790"]})).unwrap();
        assert_eq!(m.list.len(), 1);
    }
}
