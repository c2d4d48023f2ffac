//! The İYS error catalogue: every `H…` code with its documented HTTP status, what it means for a
//! retry, the official table text and, where it differs, the text İYS's examples answer with.
//! One table for the client (which decides on the class) and the simulator (which answers with
//! the status and text); the simulator's rules, which decide *when* a code is due, stay its own.

/// What the caller should do with a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Server trouble or network: retry later with back-off.
    Transient,
    /// 429: retry after the limit window (H124 per second, H084/H086/H089 per hour).
    RateLimited,
    /// 401 H351: the token was refused even after one refresh.
    AuthExpired,
    /// Validation, authorization or business rule: never resend as is.
    Permanent,
    /// H174: RET over RET; İYS already holds this status.
    AlreadyDone,
    /// H175: a first-ever RET; there is no consent to withdraw.
    NothingToRevoke,
    /// H467: older than three business days; İYS will not take it.
    TooLate,
    /// H178: İYS holds a movement with a later consentDate.
    OutOfOrder,
}

impl ErrorClass {
    /// True when the same request may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorClass::Transient | ErrorClass::RateLimited | ErrorClass::AuthExpired
        )
    }
}

/// One row of the official HATA KODLARI table (consent-relevant rows plus codes seen in examples).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub code: &'static str,
    /// The status the table documents; İYS does not always keep to it.
    pub http: u16,
    pub class: ErrorClass,
    /// Turkish text as the table spells it (placeholders such as `{{brandCode}}` kept).
    pub message: &'static str,
    /// The wording an operation's example answers with, where it differs from the table: what
    /// İYS is seen to send, so the simulator answers with it.
    pub example: Option<&'static str>,
}

impl CatalogueEntry {
    /// The text İYS answers with: the example's wording where there is one, else the table's.
    pub fn answer_text(&self) -> &'static str {
        self.example.unwrap_or(self.message)
    }
}

const fn e(
    code: &'static str,
    http: u16,
    class: ErrorClass,
    message: &'static str,
) -> CatalogueEntry {
    CatalogueEntry {
        code,
        http,
        class,
        message,
        example: None,
    }
}

const fn ex(
    code: &'static str,
    http: u16,
    class: ErrorClass,
    message: &'static str,
    example: &'static str,
) -> CatalogueEntry {
    CatalogueEntry {
        example: Some(example),
        ..e(code, http, class, message)
    }
}

use ErrorClass::{
    AlreadyDone, AuthExpired, NothingToRevoke, OutOfOrder, Permanent, RateLimited, TooLate,
    Transient,
};

/// docs/iys-api-notes.md §6. Transient: every 5xx, 503 H192 and 400 H123 ("servis meşgul").
#[rustfmt::skip]
pub static CATALOGUE: &[CatalogueEntry] = &[
    e("H001", 404, Permanent, "Hizmet Sağlayıcı:{{iysCode}} bulunamadı."),
    e("H014", 400, Permanent, "Gönderilen istek JSON formatına uygun olmalıdır."),
    e("H015", 500, Transient, "Beklenmedik bir hata oluştu."),
    e("H018", 404, Permanent, "Marka:{{brandCode}} bulunamadı."),
    e("H058", 404, Permanent, "Bayi:{{retailerCode}} bulunamadı.!"),
    e("H083", 429, RateLimited, "Saniyede kabul edilen istek limitinine ulaşıldı. Lütfen daha sonra tekrar deneyiniz."),
    e("H084", 429, RateLimited, "Saatte kabul edilen kimlik doğrulama istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz."),
    e("H085", 400, Permanent, "İzin ekleme isteği geçerli olmalıdır."),
    e("H086", 429, RateLimited, "Saatte kabul edilen tekil izin durumu sorgulama istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz."),
    e("H089", 429, RateLimited, "Saatte kabul edilen izin geçmişi listeleme istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz."),
    e("H091", 422, Permanent, "İzin ekleme sayısı en fazla 1000 olmalıdır."),
    e("H092", 400, Permanent, "Çoklu izin ekleme isteği geçerli olmalıdır."),
    e("H093", 422, Permanent, "transactionId bulunamadı."),
    e("H097", 400, Permanent, "İzin sorgulama isteği geçerli olmalıdır."),
    e("H098", 400, Permanent, "Günlük izin değişim sorgulama isteği geçerli olmalıdır."),
    e("H100", 500, Transient, "Sunucuya kurtarma verisi kaydedilemedi."),
    e("H101", 500, Transient, "Sunucuya esas veri kaydedilemedi."),
    e("H103", 500, Transient, "Sunucuda arama yapılamadı."),
    e("H107", 500, Transient, "İzinler listelenemedi."),
    e("H110", 422, Permanent, "Durum (status) bulunamadı."),
    e("H111", 422, Permanent, "İzin tipi (type) bulunamadı."),
    e("H112", 422, Permanent, "İzin tarihi (consentDate) bulunamadı."),
    e("H113", 422, Permanent, "İzin kaynağı (source) bulunamadı."),
    e("H114", 422, Permanent, "Alıcı (recipient) bulunamadı."),
    e("H115", 422, Permanent, "Durum (status) için uygun değerler: ONAY, RET"),
    e("H116", 422, Permanent, "Alıcı tipi (recipientType) için uygun değerler: BIREYSEL, TACIR"),
    e("H117", 422, Permanent, "İzin tipi (type) için uygun değerler: ARAMA, MESAJ, EPOSTA"),
    e("H118", 422, Permanent, "Alan değeri kabul edilemedi. İstek gövdesinde bulunabilecek değerler: recipientType, retailerAccess, recipient, retailerCode, source, type, consentDate, status olmalıdır."),
    e("H119", 422, Permanent, "İzin kaynağı (source) için uygun değerler: HS_FIZIKSEL_ORTAM, HS_ISLAK_IMZA, HS_WEB, HS_CAGRI_MERKEZI, HS_SOSYAL_MEDYA, HS_EPOSTA, HS_MESAJ, HS_MOBIL, HS_EORTAM, HS_ETKINLIK, HS_2015, HS_ATM, HS_KARAR"),
    e("H120", 422, Permanent, "Alıcı (recipient) kabul edilemedi. Geçerli bir eposta adresi giriniz."),
    e("H121", 422, Permanent, "Alıcı (recipient) için E164 uluslararası([+][country code][area code][local phone number]) formatına uygun bir telefon numarası girilmelidir. (örn. +905992000000)"),
    e("H122", 422, Permanent, "Alıcı (recipient) için E164 uluslararası ([+][country code][area code][local phone number]) formatına uygun bir telefon numarası (örn. +905992000000) ya da geçerli bir e-posta adresi girilmelidir."),
    e("H123", 400, Transient, "Ulaşmaya çalıştığınız servis şu anda meşguldür. Lütfen daha sonra tekrar deneyiniz."),
    e("H124", 429, RateLimited, "Saniyede kabul edilen istek limitine ulaşıldı. Lütfen daha sonra tekrar deneyiniz."),
    e("H125", 422, Permanent, "Tek seferde eklenecek izin sayısı en fazla 1000 olmalıdır."),
    // The table says 100; the addConsent schema and its example say 3000, the limit İYS applies.
    ex("H126", 422, Permanent, "İzin erişimi olan bayilerin (retailer) liste uzunluğu en fazla 100 olmalıdır.", "İzin erişimi olan bayilerin (retailer) liste uzunluğu en fazla 3000 olmalıdır."),
    e("H127", 422, Permanent, "Alıcı listesi (recipients) uzunluğu en fazla 100 olmalıdır."),
    e("H155", 422, Permanent, "İzin kaynağı “1 Mayıs 2015 öncesi” olan izinler için, izin tarihi sadece 2015-05-01 00:00:00 olabilir."),
    e("H156", 422, Permanent, "İzinler için 1 Mayıs 2015’den önceki tarihler kabul edilmemektedir."),
    e("H157", 422, Permanent, "Geçerli bir tarih girilmelidir."),
    e("H158", 422, Permanent, "İzin tarihi yyyy-mm-dd hh:mm:ss formatında olmalıdır."),
    e("H160", 422, Permanent, "Alıcı için telefon numaraları 15 karakterden uzun olmamalıdır."),
    // The reporter never dates a movement ahead of its own clock: a "future date" answer means
    // İYS's clock is behind, which waiting fixes.
    e("H162", 422, Transient, "Mevcut tarih ve saatten ileri bir tarih ve saat girilmemelidir."),
    // The add-consent examples word it for retailerAccess.
    ex("H163", 422, Permanent, "Bayiler kabul edilemedi. Lütfen boş liste eklemeyiniz.", "İzin erişimi olan bayilerin (retailer) listesi boş olmamalıdır."),
    e("H164", 422, Permanent, "Alıcı listesi (recipients) kabul edilemedi. Liste boş olmamalıdır."),
    e("H166", 422, Permanent, "Alıcı (recipient) kabul edilemedi. Telefon numaraları 15 karakterden uzun olamaz."),
    e("H168", 422, Permanent, "Alıcı listesi (recipients) bulunamadı."),
    e("H169", 422, Permanent, "İzin erişimi olan bayiler (retailerAccess) bulunamadı."),
    e("H170", 422, Permanent, "Alıcı tipi (recipientType) bulunamadı."),
    // The add-consent example, for a RET over a RET.
    ex("H174", 400, AlreadyDone, "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir. İzin durumu: ONAY / RET", "İzin durumu (status) güncellemesi için farklı bir durum girilmelidir. İzin durumu: RET"),
    e("H175", 400, NothingToRevoke, "İlk defa kaydedilen bir iznin durum (status) bilgisi RET olmamalıdır."),
    e("H178", 400, OutOfOrder, "Sistemdeki iznin tarihinden önceki tarihli izinlerle güncelleme yapılamaz."),
    e("H179", 500, Transient, "İzin tarihi karşılaştırması yapılamadı."),
    e("H180", 403, Permanent, "İstek gövdesinde yer alan bayi İYS numarasıyla (retailerCode) herhangi bir bayi bulunamadı."),
    e("H182", 422, Permanent, "offset değeri geçerli olmalıdır."),
    e("H183", 422, Permanent, "limit değeri geçerli olmalıdır."),
    e("H186", 422, Permanent, "Sayfalama (pagination) değeri en fazla 100 olabilir."),
    e("H187", 422, Permanent, "limit değerleri sıfır olmamalıdır."),
    e("H190", 422, Permanent, "iysCode integer bir değer olmalıdır."),
    e("H191", 422, Permanent, "brandCode integer bir değer olmalıdır."),
    e("H192", 503, Transient, "İstek zaman aşımına uğradı."),
    // The multi-status example (the table row speaks of retailers).
    ex("H193", 422, Permanent, "Bayi İYS numarası ve alıcı değeri liste içinde tekrarlanamaz.", "Alıcı (recipient) değeri liste içinde tekrarlanamaz."),
    e("H194", 422, Permanent, "İzin listede daha önce tanımlandı. Liste içinde izinler alıcı tipi (recipientType), tip (type) ve alıcı (recipient) değerleri için tekrarlanamaz."),
    e("H198", 422, Permanent, "requestId 36 karakterden daha uzun olamaz."),
    e("H199", 422, Permanent, "requestId sadece harflerden meydana gelemez."),
    e("H250", 400, Permanent, "Kullanıcı adı veya şifre eksik!"),
    e("H251", 401, Permanent, "Kullanıcı kimlik bilgileri geçersiz!"),
    e("H252", 400, Permanent, "Kimlik doğrulaması yapılamadı. Kimlik bilgileri eksik!"),
    e("H266", 400, Permanent, "iysCode değeri istek üzerinde bulunamadı."),
    // The examples name retailerCode where the table names iysCode.
    ex("H267", 400, Permanent, "iysCode değeri boş olmamalıdır.", "retailerCode değeri boş string olmamalıdır!"),
    e("H351", 401, AuthExpired, "Eksik veya geçersiz jeton!"),
    e("H353", 403, Permanent, "Alan, kullanıcı izinleriyle eşleştirilemiyor"),
    e("H363", 400, Permanent, "Bu servisi kullanabilmek için yetkiniz bulunmamaktadır."),
    e("H400", 422, Permanent, "requestId sadece sayılardan meydana gelemez."),
    e("H401", 400, Permanent, "Bayi eklenmesi beklenen izin sistemde bulunmamaktadır."),
    e("H403", 400, Permanent, "İzin durumu sorgulama isteği geçerli olmalıdır."),
    e("H408", 422, Permanent, "HS_KARAR kaynağından iletilen izinler için durum bilgisi RET olmalıdır."),
    e("H412", 500, Transient, "Beklenmedik bir hata oluştu."),
    e("H462", 400, Permanent, "TACIR izinleri güncellenirken izin tarihi (consentDate) verilmelidir"),
    e("H463", 400, Permanent, "TACIR izinleri güncellenirken izin kaynağı (source) verilmelidir."),
    e("H464", 422, Permanent, "İzin tipi (type) MESAJ için, alıcı (recipient) telefon formatında olmalıdır."),
    e("H467", 422, TooLate, "Üç iş günü öncesinde alınan izinler kaydedilemez."),
    e("H470", 500, Transient, "Beklenmedik bir hata oluştu."),
    e("H476", 500, Transient, "Beklenmedik bir hata oluştu."),
    e("H478", 422, Permanent, "Alıcı listesi (recipients) liste olmalıdır."),
    e("H486", 400, Permanent, "İzin kaynağı (source) kabul edilemedi. İzin verilen değerler: HS_FIZIKSEL_ORTAM, HS_ISLAK_IMZA, HS_WEB, HS_CAGRI_MERKEZI, HS_SOSYAL_MEDYA, HS_EPOSTA, HS_MESAJ, HS_MOBIL, HS_EORTAM, HS_ETKINLIK, HS_2015, HS_ATM"),
    e("H501", 422, Permanent, "Tarih formatı yyyy-aa-gg şeklinde olmalıdır."),
    e("H502", 422, Permanent, "reportDate alanı en fazla 7 gün önce olabilir."),
    e("H506", 422, Permanent, "İzin kaynağı (source) bulunamadı."),
    e("H507", 422, Permanent, "limit alanı için karakter üst sınırı 1000 olmalıdır."),
    e("H520", 403, Permanent, "Abonelik durumu {{PAUSED|EXPIRED}} iken sadece {{HS|Entegratör}} abonelik sorgulama servisine istek atılabilir."),
    e("H521", 403, Permanent, "Abonelik durumu CLOSED iken api kullanılamamaktadır."),
    e("H524", 403, Permanent, "{{iysCode}} için ait abonelik kaydı bulunamadı"),
    e("H525", 422, Permanent, "Kullanılan izin sayısı maksimum sayıya ulaştığı için yeni izin eklenememektedir."),
    // The push registration example (removal answers the second half).
    ex("H530", 422, Permanent, "Bağlantı oluşturulamadı. / Bağlantı kaldırılamadı.", "Bağlantı oluşturulamadı."),
    e("H531", 422, Permanent, "Bağlantı linki (url) https ile başlamalıdır."),
    e("H586", 403, Permanent, "Aboneliğiniz API kullanımını içermemektedir."),
];

/// The entry for a code, case and surrounding blanks ignored.
pub fn lookup(code: &str) -> Option<&'static CatalogueEntry> {
    let code = code.trim();
    CATALOGUE.iter().find(|e| e.code.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_differ_from_the_table_they_stand_beside() {
        for e in CATALOGUE {
            assert!(
                axum::http::StatusCode::from_u16(e.http).is_ok(),
                "{}",
                e.code
            );
            assert!(
                e.example != Some("") && e.example != Some(e.message),
                "{}",
                e.code
            );
        }
    }

    #[test]
    fn the_answer_is_the_example_where_one_differs() {
        let h174 = lookup("h174").unwrap();
        assert!(h174.message.ends_with("ONAY / RET"));
        assert!(h174.answer_text().ends_with("İzin durumu: RET"));
        assert_eq!(
            lookup("H467").unwrap().answer_text(),
            lookup("H467").unwrap().message
        );
        assert!(lookup("H999").is_none());
    }
}
