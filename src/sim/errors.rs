//! İYS error bodies: `{"errors":[{code,message,location?,value?,index?}]}` with the exact Turkish
//! messages of the official "HATA KODLARI" table (docs/iys-api-notes.md §6).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// The official code table: code, HTTP status, message. Where an operation example words a code
/// differently from the table and the example is the more specific text, the example is used
/// (noted per row).
const CATALOGUE: &[(&str, u16, &str)] = &[
    (
        "H014",
        400,
        "Gönderilen istek JSON formatına uygun olmalıdır.",
    ),
    ("H015", 500, "Beklenmedik bir hata oluştu."),
    (
        "H084",
        429,
        "Saatte kabul edilen kimlik doğrulama istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz.",
    ),
    ("H085", 400, "İzin ekleme isteği geçerli olmalıdır."),
    (
        "H086",
        429,
        "Saatte kabul edilen tekil izin durumu sorgulama istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz.",
    ),
    (
        "H089",
        429,
        "Saatte kabul edilen izin geçmişi listeleme istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz.",
    ),
    ("H091", 422, "İzin ekleme sayısı en fazla 1000 olmalıdır."),
    ("H092", 400, "Çoklu izin ekleme isteği geçerli olmalıdır."),
    // Push examples reuse H093 with field-specific texts (username/password).
    ("H093", 422, "transactionId bulunamadı."),
    ("H097", 400, "İzin sorgulama isteği geçerli olmalıdır."),
    (
        "H098",
        400,
        "Günlük izin değişim sorgulama isteği geçerli olmalıdır.",
    ),
    ("H110", 422, "Durum (status) bulunamadı."),
    ("H111", 422, "İzin tipi (type) bulunamadı."),
    ("H112", 422, "İzin tarihi (consentDate) bulunamadı."),
    ("H113", 422, "İzin kaynağı (source) bulunamadı."),
    ("H114", 422, "Alıcı (recipient) bulunamadı."),
    ("H115", 422, "Durum (status) için uygun değerler: ONAY, RET"),
    (
        "H116",
        422,
        "Alıcı tipi (recipientType) için uygun değerler: BIREYSEL, TACIR",
    ),
    (
        "H117",
        422,
        "İzin tipi (type) için uygun değerler: ARAMA, MESAJ, EPOSTA",
    ),
    (
        "H118",
        422,
        "Alan değeri kabul edilemedi. İstek gövdesinde bulunabilecek değerler: recipientType, retailerAccess, recipient, retailerCode, source, type, consentDate, status olmalıdır.",
    ),
    (
        "H119",
        422,
        "İzin kaynağı (source) için uygun değerler: HS_FIZIKSEL_ORTAM, HS_ISLAK_IMZA, HS_WEB, HS_CAGRI_MERKEZI, HS_SOSYAL_MEDYA, HS_EPOSTA, HS_MESAJ, HS_MOBIL, HS_EORTAM, HS_ETKINLIK, HS_2015, HS_ATM, HS_KARAR",
    ),
    (
        "H120",
        422,
        "Alıcı (recipient) kabul edilemedi. Geçerli bir eposta adresi giriniz.",
    ),
    (
        "H121",
        422,
        "Alıcı (recipient) için E164 uluslararası([+][country code][area code][local phone number]) formatına uygun bir telefon numarası girilmelidir. (örn. +905992000000)",
    ),
    (
        "H124",
        429,
        "Saniyede kabul edilen istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz.",
    ),
    // The table says 100; the addConsent schema and its example say 3000, which is the limit used.
    (
        "H126",
        422,
        "İzin erişimi olan bayilerin (retailer) liste uzunluğu en fazla 3000 olmalıdır.",
    ),
    // Multi-status over-1000 code is undocumented [U]; H127 is the nearest "list too long" code.
    (
        "H127",
        422,
        "Alıcı listesi (recipients) uzunluğu en fazla 1000 olmalıdır.",
    ),
    (
        "H155",
        422,
        "İzin kaynağı “1 Mayıs 2015 öncesi” olan izinler için, izin tarihi sadece 2015-05-01 00:00:00 olabilir.",
    ),
    (
        "H156",
        422,
        "İzinler için 1 Mayıs 2015’den önceki tarihler kabul edilmemektedir.",
    ),
    ("H157", 422, "Geçerli bir tarih girilmelidir."),
    (
        "H158",
        422,
        "İzin tarihi yyyy-mm-dd hh:mm:ss formatında olmalıdır.",
    ),
    (
        "H160",
        422,
        "Alıcı için telefon numaraları 15 karakterden uzun olmamalıdır.",
    ),
    (
        "H162",
        422,
        "Mevcut tarih ve saatten ileri bir tarih ve saat girilmemelidir.",
    ),
    // Example wording (the add-consent examples) rather than the table's generic one.
    (
        "H163",
        422,
        "İzin erişimi olan bayilerin (retailer) listesi boş olmamalıdır.",
    ),
    (
        "H164",
        422,
        "Alıcı listesi (recipients) kabul edilemedi. Liste boş olmamalıdır.",
    ),
    (
        "H166",
        422,
        "Alıcı (recipient) kabul edilemedi. Telefon numaraları 15 karakterden uzun olamaz.",
    ),
    ("H168", 422, "Alıcı listesi (recipients) bulunamadı."),
    (
        "H169",
        422,
        "İzin erişimi olan bayiler (retailerAccess) bulunamadı.",
    ),
    ("H170", 422, "Alıcı tipi (recipientType) bulunamadı."),
    (
        "H174",
        400,
        "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir. İzin durumu: RET",
    ),
    (
        "H175",
        400,
        "İlk defa kaydedilen bir iznin durum (status) bilgisi RET olmamalıdır.",
    ),
    (
        "H178",
        400,
        "Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz.",
    ),
    (
        "H180",
        403,
        "İstek gövdesinde yer alan bayi İYS numarasıyla (retailerCode) herhangi bir bayi bulunamadı.",
    ),
    ("H182", 422, "offset değeri geçerli olmalıdır."),
    ("H183", 422, "limit değeri geçerli olmalıdır."),
    (
        "H186",
        422,
        "Sayfalama (pagination) değeri en fazla 100 olabilir.",
    ),
    ("H187", 422, "limit değerleri sıfır olmamalıdır."),
    ("H190", 422, "iysCode integer bir değer olmalıdır."),
    ("H191", 422, "brandCode integer bir değer olmalıdır."),
    ("H192", 503, "İstek zaman aşımına uğradı."),
    // Multi-status example wording (the table row speaks of retailers).
    (
        "H193",
        422,
        "Alıcı (recipient) değeri liste içinde tekrarlanamaz.",
    ),
    (
        "H194",
        422,
        "İzin listede daha önce tanımlandı. Liste içinde izinler alıcı tipi (recipientType), tip (type) ve alıcı (recipient) değerleri için tekrarlanamaz.",
    ),
    ("H198", 422, "requestId 36 karakterden daha uzun olamaz."),
    ("H199", 422, "requestId sadece harflerden meydana gelemez."),
    // Example wording: the table text names iysCode, the examples retailerCode.
    ("H267", 400, "retailerCode değeri boş string olmamalıdır!"),
    ("H351", 401, "Eksik veya geçersiz jeton!"),
    ("H353", 403, "Alan, kullanıcı izinleriyle eşleştirilemiyor"),
    ("H400", 422, "requestId sadece sayılardan meydana gelemez."),
    (
        "H408",
        422,
        "HS_KARAR kaynağından iletilen izinler için durum bilgisi RET olmalıdır.",
    ),
    ("H412", 500, "Beklenmedik bir hata oluştu."),
    (
        "H462",
        400,
        "TACIR izinleri güncellenirken izin tarihi (consentDate) verilmelidir",
    ),
    (
        "H463",
        400,
        "TACIR izinleri güncellenirken izin kaynağı (source) verilmelidir.",
    ),
    (
        "H464",
        422,
        "İzin tipi (type) MESAJ için, alıcı (recipient) telefon formatında olmalıdır.",
    ),
    (
        "H467",
        422,
        "Üç iş günü öncesinde alınan izinler kaydedilemez.",
    ),
    ("H478", 422, "Alıcı listesi (recipients) liste olmalıdır."),
    ("H501", 422, "Tarih formatı yyyy-aa-gg şeklinde olmalıdır."),
    (
        "H502",
        422,
        "reportDate alanı en fazla 7 gün önce olabilir.",
    ),
    ("H506", 422, "İzin kaynağı (source) bulunamadı."),
    (
        "H507",
        422,
        "limit alanı için karakter üst sınırı 1000 olmalıdır.",
    ),
    (
        "H525",
        422,
        "Kullanılan izin sayısı maksimum sayıya ulaştığı için yeni izin eklenememektedir.",
    ),
    ("H530", 422, "Bağlantı oluşturulamadı."),
    ("H531", 422, "Bağlantı linki (url) https ile başlamalıdır."),
];

/// Looks up a code; unknown codes (only reachable through test hooks) become a 500 H015 text.
pub fn lookup(code: &str) -> (StatusCode, &'static str) {
    CATALOGUE
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, s, m)| {
            (
                StatusCode::from_u16(*s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                *m,
            )
        })
        .unwrap_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "Beklenmedik bir hata oluştu.",
        ))
}

/// One element of the `errors` array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorItem {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl ErrorItem {
    pub fn new(code: &str) -> Self {
        Self {
            code: code.to_string(),
            message: lookup(code).1.to_string(),
            location: None,
            value: None,
            index: None,
        }
    }
    /// Same code, a message from an operation example that differs from the table.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
    pub fn at(mut self, field: &str) -> Self {
        self.location = Some(vec![Value::from(field)]);
        self
    }
    pub fn at_path(mut self, path: Vec<Value>) -> Self {
        self.location = Some(path);
        self
    }
    pub fn value(mut self, v: Value) -> Self {
        self.value = Some(v);
        self
    }
    pub fn index(mut self, i: usize) -> Self {
        self.index = Some(i);
        self
    }
    pub fn status(&self) -> StatusCode {
        lookup(&self.code).0
    }
}

/// An error response: one HTTP status and one or more items.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
}

/// Marks a response with the İYS code it carries, so the request log can show it.
#[derive(Debug, Clone)]
pub struct LoggedCode(pub String);

impl ApiError {
    /// A single catalogue error with its catalogue status.
    pub fn code(code: &str) -> Self {
        Self::from_item(ErrorItem::new(code))
    }
    pub fn from_item(item: ErrorItem) -> Self {
        Self {
            status: item.status(),
            errors: vec![item],
        }
    }
    /// Several items at once; the status is the first item's (they share one in practice).
    pub fn many(items: Vec<ErrorItem>) -> Self {
        let status = items
            .first()
            .map(ErrorItem::status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            errors: items,
        }
    }
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
    pub fn first_code(&self) -> Option<&str> {
        self.errors.first().map(|e| e.code.as_str())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.first_code().map(str::to_string);
        let body = serde_json::json!({ "errors": self.errors });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(c) = code {
            resp.extensions_mut().insert(LoggedCode(c));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_codes_are_unique_and_statuses_valid() {
        let mut seen = std::collections::HashSet::new();
        for (c, s, m) in CATALOGUE {
            assert!(seen.insert(*c), "duplicate {c}");
            assert!(StatusCode::from_u16(*s).is_ok());
            assert!(!m.is_empty());
        }
    }

    #[test]
    fn item_serialises_only_present_fields() {
        let e = ErrorItem::new("H467")
            .at("consentDate")
            .value("2020-01-13 13:35:13".into())
            .index(0);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "H467");
        assert_eq!(
            v["message"],
            "Üç iş günü öncesinde alınan izinler kaydedilemez."
        );
        assert_eq!(v["location"][0], "consentDate");
        assert_eq!(v["index"], 0);
        let bare = serde_json::to_value(ErrorItem::new("H175")).unwrap();
        assert_eq!(bare.as_object().unwrap().len(), 2);
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn every_code_the_simulator_emits_is_catalogued() {
        let sources = [
            include_str!("auth.rs"),
            include_str!("batch.rs"),
            include_str!("consents.rs"),
            include_str!("limits.rs"),
            include_str!("mod.rs"),
            include_str!("pull.rs"),
            include_str!("push.rs"),
            include_str!("rules.rs"),
        ];
        for src in sources {
            for (i, _) in src.match_indices("\"H") {
                let code: String = src[i + 1..].chars().take_while(|c| *c != '"').collect();
                if code.len() == 4 && code[1..].chars().all(|c| c.is_ascii_digit()) {
                    assert!(
                        CATALOGUE.iter().any(|(c, _, _)| *c == code),
                        "{code} missing"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_code_is_a_500() {
        assert_eq!(lookup("H999").0, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::code("H351").status, StatusCode::UNAUTHORIZED);
    }
}
