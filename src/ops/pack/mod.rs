//! The evidence pack: one recipient's [`Export`] as a zip a complaint or an audit can keep.
//! `evidence.json` is the machine-readable record, `evidence.pdf` the same for a person (it
//! prints the SHA-256 of evidence.json, so a paper copy is bound to the data), and `SHA256SUMS`
//! lets anyone check both with `sha256sum -c`.
//!
//! The pack names the recipient in full (that is its purpose); nothing here logs it. Building
//! is a pure function of its inputs, byte for byte: the zip's timestamps are the pack's
//! `generated_at` and no part carries a random id, so the same data gives the same SHA-256.

mod pdf;

use std::io::Write;

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Europe::Istanbul;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::OpsError;
use super::export::Export;
use crate::domain::Brand;
use crate::domain::time::to_iys;

pub const JSON_NAME: &str = "evidence.json";
pub const PDF_NAME: &str = "evidence.pdf";
pub const SUMS_NAME: &str = "SHA256SUMS";

/// Who made the pack, when, and with which build.
#[derive(Debug, Clone)]
pub struct PackMeta {
    pub service_version: String,
    /// A console user name, or `cli`.
    pub generated_by: String,
    pub generated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct EvidencePack {
    /// `iys-kanit-<recipient>-<YYYYMMDD-HHMMSS Istanbul>.zip`.
    pub file_name: String,
    pub zip: Vec<u8>,
    /// Hex SHA-256 of `zip`.
    pub sha256: String,
    pub json_sha256: String,
    pub pdf_sha256: String,
}

/// The hashes and the size only: the file name carries the recipient in full, and a debug
/// print may end up in a log.
impl std::fmt::Debug for EvidencePack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidencePack")
            .field("bytes", &self.zip.len())
            .field("sha256", &self.sha256)
            .field("json_sha256", &self.json_sha256)
            .field("pdf_sha256", &self.pdf_sha256)
            .finish_non_exhaustive()
    }
}

/// The configured brands as [`build`] names them: (brand code, display name).
pub fn brand_names(brands: &[Brand]) -> Vec<(i64, String)> {
    brands
        .iter()
        .map(|b| (b.brand_code, b.name.clone()))
        .collect()
}

/// evidence.json: the export as `export --format json` prints it, under the pack's own facts.
#[derive(Serialize)]
struct EvidenceJson<'a> {
    service_version: &'a str,
    generated_by: &'a str,
    generated_at: DateTime<Utc>,
    export: &'a Export,
}

/// Builds the pack. `brands` (code, display name) names the brands in the PDF; a code missing
/// there is printed by its number alone.
pub fn build(
    x: &Export,
    brands: &[(i64, String)],
    meta: &PackMeta,
) -> Result<EvidencePack, OpsError> {
    let mut json = serde_json::to_vec_pretty(&EvidenceJson {
        service_version: &meta.service_version,
        generated_by: &meta.generated_by,
        generated_at: meta.generated_at,
        export: x,
    })
    .map_err(|e| OpsError::Pack(format!("{JSON_NAME}: {e}")))?;
    json.push(b'\n');
    let json_sha256 = sha256_hex(&json);
    let pdf = pdf::render(x, brands, meta, &json_sha256)?;
    let pdf_sha256 = sha256_hex(&pdf);
    // Two spaces: `sha256sum`'s own text-mode line, which `sha256sum -c` reads back.
    let sums = format!("{json_sha256}  {JSON_NAME}\n{pdf_sha256}  {PDF_NAME}\n");
    let zip = zip_files(
        &[
            (JSON_NAME, &json),
            (PDF_NAME, &pdf),
            (SUMS_NAME, sums.as_bytes()),
        ],
        meta.generated_at,
    )?;
    Ok(EvidencePack {
        file_name: file_name(&x.recipient, meta.generated_at),
        sha256: sha256_hex(&zip),
        zip,
        json_sha256,
        pdf_sha256,
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A phone by its digits, an e-mail with anything unusual in a file name made `_`; then the
/// time as the operator reads it (Istanbul), from İYS's own form.
fn file_name(recipient: &str, at: DateTime<Utc>) -> String {
    let who: String = if recipient.contains('@') {
        recipient
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@.-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    } else {
        recipient.chars().filter(char::is_ascii_digit).collect()
    };
    let who = if who.is_empty() { "kisi".into() } else { who };
    let stamp = to_iys(at).replace(['-', ':'], "").replace(' ', "-");
    format!("iys-kanit-{who}-{stamp}.zip")
}

/// A deflated zip of `files` in order, every entry stamped `at` (Istanbul wall time: zip
/// times have no zone, and the file name uses the same clock).
fn zip_files(files: &[(&str, &[u8])], at: DateTime<Utc>) -> Result<Vec<u8>, OpsError> {
    let err = |e: zip::result::ZipError| OpsError::Pack(format!("zip: {e}"));
    let local = at.with_timezone(&Istanbul);
    let stamp = u16::try_from(local.year())
        .ok()
        .and_then(|year| {
            zip::DateTime::from_date_and_time(
                year,
                local.month() as u8,
                local.day() as u8,
                local.hour() as u8,
                local.minute() as u8,
                local.second() as u8,
            )
            .ok()
        })
        .ok_or_else(|| OpsError::Pack(format!("zip cannot date a file at {}", to_iys(at))))?;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .unix_permissions(0o644);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        w.start_file(*name, options).map_err(err)?;
        w.write_all(bytes)?;
    }
    Ok(w.finish().map_err(err)?.into_inner())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::{Address, Channel, ConsentType, RecipientType, Source, Status};
    use crate::ops::export::EventRecord;
    use crate::store::queue::{Alert, AlertKind, Attempt};
    use crate::store::{ConsentState, JobState, ReportJob, StoredEvent};

    const PHONE: &str = "+905321234567";
    const BRAND: i64 = 700000;
    const BRAND_NAME: &str = "Şişli Çiçekçilik İğneada Ötüken Ümraniye";

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn meta() -> PackMeta {
        PackMeta {
            service_version: "9.9.9".into(),
            generated_by: "ayşe.yılmaz".into(),
            generated_at: at("2026-03-04T10:15:30+03:00"),
        }
    }

    fn brands() -> Vec<(i64, String)> {
        vec![(BRAND, BRAND_NAME.into())]
    }

    /// `n` voice movements, alternating ONAY and RET, each reported once after one refusal.
    fn export(n: usize) -> Export {
        let start = at("2026-03-04T09:00:00+03:00");
        let events = (0..n)
            .map(|i| {
                let t = start + Duration::minutes(i as i64);
                let status = if i % 2 == 0 {
                    Status::Onay
                } else {
                    Status::Ret
                };
                let event = StoredEvent {
                    id: i as i64 + 1,
                    brand_code: BRAND,
                    recipient: PHONE.into(),
                    recipient_type: RecipientType::Bireysel,
                    consent_type: ConsentType::Arama,
                    status,
                    source: Source::HsCagriMerkezi,
                    channel: Channel::Voice,
                    consent_at: t,
                    received_at: t + Duration::seconds(2),
                    provider: "twilio".into(),
                    provider_message_id: format!("CA{i:032}:ARAMA:{status}"),
                    evidence: serde_json::json!({
                        "raw": {
                            "params": { "CallSid": format!("CA{i:032}"), "Digits": "1" },
                            "digits_pressed": ["2", "1"],
                            "prompt_versions": ["tr/welcome@1", "tr/main_menu_calls@1"],
                        },
                        "ip": "203.0.113.7",
                        "user_agent": "TwilioProxy/1.1",
                        "call_id": format!("CA{i:032}"),
                    }),
                };
                let job = ReportJob {
                    id: 100 + i as i64,
                    event_id: event.id,
                    address: Address {
                        brand_code: BRAND,
                        recipient: PHONE.into(),
                        recipient_type: RecipientType::Bireysel,
                        consent_type: ConsentType::Arama,
                    },
                    consent_at: t,
                    state: JobState::Done,
                    due_at: t,
                    target_at: t + Duration::hours(1),
                    deadline_at: t + Duration::days(3),
                    attempts: 2,
                    lease_owner: None,
                    lease_until: None,
                    batch_id: None,
                    transaction_id: Some(format!("tx-{i}")),
                    last_error: Some("H500 İYS geçici hata".into()),
                    iys_date: Some(t),
                };
                let attempt = |status: i64, code: Option<&str>, secs: i64| Attempt {
                    job_id: Some(job.id),
                    batch_id: None,
                    brand_code: Some(BRAND),
                    operation: "add_consent".into(),
                    method: "POST".into(),
                    path: "/sps/1/brands/700000/consents".into(),
                    status: Some(status),
                    code: code.map(str::to_string),
                    duration_ms: 42,
                    at: t + Duration::seconds(secs),
                };
                EventRecord {
                    attempts: vec![attempt(503, Some("H500"), 10), attempt(200, None, 70)],
                    alerts: vec![Alert {
                        id: i as i64,
                        job_id: job.id,
                        kind: AlertKind::TargetMissed,
                        severity: "warning".into(),
                        detail: "hedef süre aşıldı".into(),
                        at: t + Duration::hours(1),
                    }],
                    job: Some(job),
                    event,
                }
            })
            .collect::<Vec<_>>();
        let states = events
            .last()
            .map(|r: &EventRecord| ConsentState {
                brand_code: BRAND,
                recipient: PHONE.into(),
                recipient_type: RecipientType::Bireysel,
                consent_type: ConsentType::Arama,
                status: r.event.status,
                source: r.event.source,
                channel: r.event.channel,
                consent_at: r.event.consent_at,
                event_id: r.event.id,
                iys_confirmed: true,
                updated_at: r.event.received_at,
            })
            .into_iter()
            .collect();
        Export {
            recipient: PHONE.into(),
            brand_code: None,
            generated_at: meta().generated_at,
            events,
            states,
        }
    }

    fn unzip(zip: &[u8]) -> Vec<(String, Vec<u8>, zip::DateTime)> {
        let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
        (0..a.len())
            .map(|i| {
                let mut f = a.by_index(i).unwrap();
                assert_eq!(f.compression(), zip::CompressionMethod::Deflated);
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).unwrap();
                (
                    f.name().unwrap().to_string(),
                    bytes,
                    f.last_modified().unwrap(),
                )
            })
            .collect()
    }

    fn file<'a>(files: &'a [(String, Vec<u8>, zip::DateTime)], name: &str) -> &'a [u8] {
        &files.iter().find(|f| f.0 == name).unwrap().1
    }

    /// Every page's text, as a PDF reader extracts it (through the font's ToUnicode map).
    fn pdf_pages(pdf: &[u8]) -> Vec<String> {
        let doc = lopdf::Document::load_mem(pdf).unwrap();
        let n = doc.get_pages().len() as u32;
        (1..=n).map(|p| doc.extract_text(&[p]).unwrap()).collect()
    }

    #[test]
    fn zip_holds_the_three_files_and_sums_that_match_them() {
        let pack = build(&export(2), &brands(), &meta()).unwrap();
        assert_eq!(pack.sha256, sha256_hex(&pack.zip));
        let files = unzip(&pack.zip);
        let names: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        assert_eq!(names, [JSON_NAME, PDF_NAME, SUMS_NAME]);
        let (json, pdf) = (file(&files, JSON_NAME), file(&files, PDF_NAME));
        assert_eq!(pack.json_sha256, sha256_hex(json));
        assert_eq!(pack.pdf_sha256, sha256_hex(pdf));
        let sums = String::from_utf8(file(&files, SUMS_NAME).to_vec()).unwrap();
        assert_eq!(
            sums,
            format!(
                "{}  evidence.json\n{}  evidence.pdf\n",
                pack.json_sha256, pack.pdf_sha256
            )
        );
        // Stamped with the pack's own time, on the Istanbul clock the file name uses.
        let stamp = &files[0].2;
        assert_eq!(
            (stamp.year(), stamp.month(), stamp.day(), stamp.hour()),
            (2026, 3, 4, 10)
        );
        assert_eq!(pack.file_name, "iys-kanit-905321234567-20260304-101530.zip");
    }

    #[test]
    fn evidence_json_is_the_export_under_the_pack_facts() {
        let x = export(3);
        let pack = build(&x, &brands(), &meta()).unwrap();
        let files = unzip(&pack.zip);
        let text = std::str::from_utf8(file(&files, JSON_NAME)).unwrap();
        assert!(text.contains("\n  \"service_version\""), "pretty JSON");
        assert!(text.contains("ayşe.yılmaz"), "UTF-8, not escaped");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["service_version"], "9.9.9");
        assert_eq!(v["generated_by"], "ayşe.yılmaz");
        assert_eq!(v["generated_at"], "2026-03-04T07:15:30Z");
        assert_eq!(v["export"], serde_json::to_value(&x).unwrap());
        let events = v["export"]["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[1]["event"]["status"], "RET");
        assert_eq!(
            events[0]["event"]["evidence"]["raw"]["digits_pressed"][0],
            "2"
        );
    }

    #[test]
    fn pdf_prints_the_json_hash_the_movements_and_turkish_text() {
        let pack = build(&export(1), &brands(), &meta()).unwrap();
        let files = unzip(&pack.zip);
        let pdf = file(&files, PDF_NAME);
        assert!(pdf.starts_with(b"%PDF-"));
        let pages = pdf_pages(pdf);
        assert_eq!(pages.len(), 1);
        let first = &pages[0];
        for want in [
            "İYS İzin Kanıt Dosyası / İYS consent evidence pack",
            "Kişi / Person: +905321234567",
            pack.json_sha256.as_str(),
            BRAND_NAME,
            "Oluşturan / Generated by: ayşe.yılmaz",
            "2026-03-04 10:15:30 İstanbul · 2026-03-04 07:15:30 UTC",
            "İzin tarihi / Consent date: 2026-03-04 09:00:00",
            "Kaynak / Source: HS_CAGRI_MERKEZI",
            "Kanal / Channel: voice",
            "Dinlenen anonslar / Prompts heard: tr/welcome@1, tr/main_menu_calls@1",
            "Tuşlamalar / Key presses: 2, 1",
            "Çağrı no / Call id: CA",
            "İYS işlem no / İYS transaction id: tx-0",
            "Denemeler / Attempts (2)",
            "HTTP 503 · kod / code H500",
            "ONAY — İYS'de kayıtlı / confirmed",
            "Sayfa 1 / Page 1",
        ] {
            assert!(first.contains(want), "{want:?} not in page 1:\n{first}");
        }
        // The document's metadata carries it too, for tools that do not render.
        let doc = lopdf::Document::load_mem(pdf).unwrap();
        let info = doc.trailer.get(b"Info").unwrap().as_reference().unwrap();
        let subject = doc.get_dictionary(info).unwrap().get(b"Subject").unwrap();
        let subject = lopdf::decode_text_string(subject).unwrap();
        assert_eq!(
            subject,
            format!("evidence.json SHA-256 {}", pack.json_sha256)
        );
    }

    #[test]
    fn pages_are_added_and_numbered_as_movements_grow() {
        let one = pdf_pages(&pdf::render(&export(1), &brands(), &meta(), "ab").unwrap());
        let many = pdf_pages(&pdf::render(&export(30), &brands(), &meta(), "ab").unwrap());
        assert_eq!(one.len(), 1);
        // A movement with its payload, job, attempts and alert takes about half a page.
        assert!((12..=20).contains(&many.len()), "{} pages", many.len());
        for (i, text) in many.iter().enumerate() {
            let n = i + 1;
            assert!(text.contains(&format!("Sayfa {n} / Page {n}")), "page {n}");
        }
        let all = many.concat();
        for n in 1..=30 {
            assert!(all.contains(&format!("{n}. ")), "movement {n} printed");
        }
        assert!(
            many.last().unwrap().contains("tx-29"),
            "the last one ends the document"
        );
    }

    #[test]
    fn movements_are_printed_by_consent_date() {
        let mut x = export(2);
        // Recorded first, consented last: an import of an old paper form does the reverse.
        x.events[0].event.consent_at = x.events[1].event.consent_at + Duration::hours(1);
        let text = pdf_pages(&pdf::render(&x, &brands(), &meta(), "ab").unwrap()).concat();
        let at = |id: &str| text.find(&format!("Olay no / Event id: {id}")).unwrap();
        assert!(at("2") < at("1"), "{text}");
    }

    #[test]
    fn a_recipient_without_records_still_gets_a_pack_that_says_so() {
        let pack = build(&export(0), &brands(), &meta()).unwrap();
        let files = unzip(&pack.zip);
        let pages = pdf_pages(file(&files, PDF_NAME));
        assert_eq!(pages.len(), 1);
        assert!(pages[0].contains("Hareketler / Movements (0)"));
        assert_eq!(pages[0].matches("Kayıt yok / No records").count(), 2);
        let v: serde_json::Value = serde_json::from_slice(file(&files, JSON_NAME)).unwrap();
        assert_eq!(v["export"]["events"], serde_json::json!([]));
    }

    #[test]
    fn odd_values_are_printed_not_fatal() {
        let mut x = export(1);
        let e = &mut x.events[0].event;
        e.provider_message_id = "x".repeat(3000);
        e.evidence = serde_json::json!({
            "raw": { "Body": "satır 1\nsatır\t2\r\u{0}🙂 مرحبا \u{200b}" },
            "user_agent": "",
            "ip": null,
        });
        x.events[0].job = None;
        x.recipient = String::new();
        let pack = build(&x, &[], &meta()).unwrap();
        let files = unzip(&pack.zip);
        let text = pdf_pages(file(&files, PDF_NAME)).concat();
        assert!(
            text.contains("Bildirim işi / Report job: yok / none"),
            "{text}"
        );
        assert!(
            text.contains("Marka / Brand: 700000"),
            "a brand not configured, by code"
        );
        assert!(
            !text.contains("Tarayıcı / User agent"),
            "empty evidence is left out"
        );
        assert!(format!("{pack:?}").contains(&pack.sha256));
    }

    #[test]
    fn building_twice_gives_the_same_bytes() {
        let x = export(4);
        let a = build(&x, &brands(), &meta()).unwrap();
        let b = build(&x, &brands(), &meta()).unwrap();
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.zip, b.zip);
        let other = PackMeta {
            generated_by: "cli".into(),
            ..meta()
        };
        let c = build(&x, &brands(), &other).unwrap();
        assert_ne!(a.json_sha256, c.json_sha256);
        assert_ne!(a.pdf_sha256, c.pdf_sha256);
    }

    #[test]
    fn file_name_is_the_recipient_and_the_istanbul_time() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 22, 0, 5).unwrap();
        assert_eq!(
            file_name("+905321234567", t),
            "iys-kanit-905321234567-20270101-010005.zip"
        );
        assert_eq!(
            file_name("ali.veli+kanit@ornek.com.tr", t),
            "iys-kanit-ali.veli_kanit@ornek.com.tr-20270101-010005.zip"
        );
        assert_eq!(file_name("", t), "iys-kanit-kisi-20270101-010005.zip");
    }
}
