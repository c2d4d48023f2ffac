//! `import`: a bulk CSV of consents collected before iys-relay, validated row by row.
//!
//! Columns (header required, any order): `brand,recipient,type,status,consent_date` and the
//! optional `recipient_type` (BIREYSEL), `source` (else `--source`), `reference`. Valid rows go
//! through the ledger with channel and provider `import`; the provider message id is the
//! `reference` or a hash of the row, so running the same file again records nothing new.
//!
//! İYS refuses movements older than 3 business days (H467). Such rows are kept as evidence and
//! state, but their report job is created `failed` ("outside İYS window; register manually")
//! with an alert, never left pending for the reporter to doom. `HS_2015` rows (dated
//! 2015-05-01 00:00:00, exempt from H467) are reported, with deadlines counted from the import.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{OpsError, outside_iys_window};
use crate::domain::calendar::BusinessCalendar;
use crate::domain::time::{from_iys, to_ms};
use crate::domain::{
    Brand, Channel, ConsentIntent, ConsentType, Evidence, Recipient, RecipientType, Source, Status,
};
use crate::ledger::Ledger;
use crate::store::JobTimes;

pub const PROVIDER: &str = "import";
pub const OUTSIDE_WINDOW: &str =
    "outside İYS window (older than 3 business days, H467); register manually";
const REQUIRED: [&str; 5] = ["brand", "recipient", "type", "status", "consent_date"];
const OPTIONAL: [&str; 3] = ["recipient_type", "source", "reference"];
const MAX_REFERENCE: usize = 128;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub dry_run: bool,
    /// Source for rows whose `source` cell is empty.
    pub default_source: Option<Source>,
    /// Shown in each event's evidence (the file name).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub field: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValidRow {
    pub line: u64,
    pub intent: ConsentIntent,
    /// Older than İYS accepts: recorded with a failed job.
    pub outside_window: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub valid: usize,
    pub invalid: usize,
    /// New events written (0 on a dry run).
    pub recorded: usize,
    /// Rows an earlier import already recorded.
    pub duplicates: usize,
    /// New events whose job waits for the reporter.
    pub reportable: usize,
    /// New events outside İYS's window: job created failed.
    pub outside_window: usize,
    pub errors: Vec<RowError>,
}

/// Upper-cases an enum cell the way Turkish users may type it (`bireysel`, `BİREYSEL`).
fn norm(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            'İ' | 'ı' | 'i' => 'I',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// RFC 3339, or İYS's `YYYY-MM-DD HH:mm:ss` in Istanbul time.
pub fn parse_consent_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| from_iys(s))
}

struct Cells<'a> {
    line: u64,
    get: HashMap<&'a str, &'a str>,
    errors: Vec<RowError>,
}

impl Cells<'_> {
    fn cell(&self, name: &str) -> &str {
        self.get.get(name).map_or("", |s| s.trim())
    }
    fn fail(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(RowError {
            line: self.line,
            field: field.into(),
            reason: reason.into(),
        });
    }
    fn required(&mut self, name: &str) -> Option<String> {
        let v = self.cell(name).to_string();
        if v.is_empty() {
            self.fail(name, "required");
            return None;
        }
        Some(v)
    }
}

/// Validates one row; every problem of the row is reported, not just the first.
fn validate_row(
    c: &mut Cells<'_>,
    brands: &[Brand],
    cal: &BusinessCalendar,
    now: DateTime<Utc>,
    opts: &ImportOptions,
) -> Option<ValidRow> {
    let brand = c.required("brand").and_then(|b| {
        let code = crate::domain::brand::named(brands, &b).map(|b| b.brand_code);
        if code.is_none() {
            c.fail(
                "brand",
                format!("unknown brand {b:?}: use a configured key or brand code"),
            );
        }
        code
    });
    let ctype = c.required("type").and_then(|t| {
        let r = norm(&t).parse::<ConsentType>().ok();
        if r.is_none() {
            c.fail("type", "must be ARAMA, MESAJ or EPOSTA");
        }
        r
    });
    let recipient = c.required("recipient").and_then(|r| {
        let parsed = Recipient::parse(&r).and_then(|p| match ctype {
            Some(t) => p.check_type(t).map(|_| p),
            None => Ok(p),
        });
        parsed.map_err(|e| c.fail("recipient", e.to_string())).ok()
    });
    let status = c.required("status").and_then(|s| {
        let n = norm(&s);
        let r = n.parse::<Status>().ok();
        if r.is_none() {
            let hint = if n == "RED" {
                " (İYS spells it RET)"
            } else {
                ""
            };
            c.fail("status", format!("must be ONAY or RET{hint}"));
        }
        r
    });
    let rtype = match c.cell("recipient_type") {
        "" => Some(RecipientType::Bireysel),
        t => {
            let r = norm(t).parse::<RecipientType>().ok();
            if r.is_none() {
                c.fail("recipient_type", "must be BIREYSEL or TACIR");
            }
            r
        }
    };
    let source = match (c.cell("source"), opts.default_source) {
        ("", Some(s)) => Some(s),
        ("", None) => {
            c.fail("source", "required (or give --source)");
            None
        }
        (s, _) => match norm(s).parse::<Source>() {
            Ok(s) if s.is_hs() => Some(s),
            Ok(_) => {
                c.fail(
                    "source",
                    "only HS_* sources can be imported: IYS_* movements come from İYS",
                );
                None
            }
            Err(_) => {
                c.fail(
                    "source",
                    "not an İYS source (HS_WEB, HS_ISLAK_IMZA, HS_2015, …)",
                );
                None
            }
        },
    };
    let hs2015 = from_iys("2015-05-01 00:00:00").unwrap_or_default();
    let consent_at = c.required("consent_date").and_then(|d| {
        let Some(at) = parse_consent_date(&d) else {
            c.fail(
                "consent_date",
                "use RFC 3339 or YYYY-MM-DD HH:mm:ss (Istanbul time)",
            );
            return None;
        };
        if at > now {
            c.fail("consent_date", "is in the future (H162)");
        } else if at < hs2015 {
            c.fail("consent_date", "is before 2015-05-01 (H156)");
        } else if source == Some(Source::Hs2015) && at != hs2015 {
            c.fail(
                "consent_date",
                "HS_2015 requires exactly 2015-05-01 00:00:00 (H155)",
            );
        } else {
            return Some(at);
        }
        None
    });
    if source == Some(Source::HsKarar) && status == Some(Status::Onay) {
        c.fail("status", "HS_KARAR can only carry RET (H408)");
    }
    let reference = c.cell("reference").to_string();
    if reference.chars().count() > MAX_REFERENCE {
        c.fail(
            "reference",
            format!("longer than {MAX_REFERENCE} characters"),
        );
    }
    if !c.errors.is_empty() {
        return None;
    }
    let (brand_code, recipient, consent_type, status, recipient_type, source, consent_at) = (
        brand?,
        recipient?,
        ctype?,
        status?,
        rtype?,
        source?,
        consent_at?,
    );
    let provider_message_id = if reference.is_empty() {
        let key = format!(
            "{brand_code}|{}|{recipient_type}|{consent_type}|{status}|{source}|{}",
            recipient.as_str(),
            to_ms(consent_at)
        );
        format!("row:{}", &hex::encode(Sha256::digest(key.as_bytes()))[..32])
    } else {
        reference
    };
    let row: serde_json::Map<String, serde_json::Value> = c
        .get
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    Some(ValidRow {
        line: c.line,
        outside_window: source != Source::Hs2015 && outside_iys_window(cal, consent_at, now),
        intent: ConsentIntent {
            brand_code,
            recipient,
            recipient_type,
            consent_type,
            status,
            source,
            channel: Channel::Import,
            consent_at,
            provider: PROVIDER.into(),
            provider_message_id,
            evidence: Evidence {
                raw: serde_json::json!({"import": {"file": opts.label, "line": c.line}, "row": row}),
                ..Evidence::default()
            },
        },
    })
}

/// Reads and validates the whole file (nothing is written). A missing or unknown column is an
/// error for the whole file; everything else is reported per row.
pub fn validate(
    input: &[u8],
    brands: &[Brand],
    cal: &BusinessCalendar,
    now: DateTime<Utc>,
    opts: &ImportOptions,
) -> Result<(usize, Vec<ValidRow>, Vec<RowError>), OpsError> {
    let input = input.strip_prefix("\u{feff}".as_bytes()).unwrap_or(input);
    let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers: Vec<String> = rd
        .headers()
        .map_err(|e| OpsError::Input(format!("cannot read the header line: {e}")))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if let Some(h) = headers
        .iter()
        .find(|h| !REQUIRED.contains(&h.as_str()) && !OPTIONAL.contains(&h.as_str()))
    {
        return Err(OpsError::Input(format!(
            "unknown column {h:?}; columns are {} and optionally {}",
            REQUIRED.join(","),
            OPTIONAL.join(",")
        )));
    }
    if let Some(m) = REQUIRED.iter().find(|r| !headers.iter().any(|h| h == *r)) {
        return Err(OpsError::Input(format!(
            "the header lacks the column {m:?}"
        )));
    }
    let (mut rows, mut valid, mut errors) = (0, Vec::new(), Vec::new());
    let mut references: HashMap<String, u64> = HashMap::new();
    for rec in rd.records() {
        rows += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    line: e.position().map_or(0, |p| p.line()),
                    field: "-".into(),
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let get = headers.iter().map(String::as_str).zip(rec.iter()).collect();
        let mut cells = Cells {
            line,
            get,
            errors: Vec::new(),
        };
        let v = validate_row(&mut cells, brands, cal, now, opts);
        if rec.len() != headers.len() {
            cells.fail(
                "-",
                format!("{} fields, the header has {}", rec.len(), headers.len()),
            );
        }
        let reference = cells.cell("reference").to_string();
        if !reference.is_empty() {
            if let Some(first) = references.get(&reference) {
                cells.fail(
                    "reference",
                    format!("repeats the reference of line {first}"),
                );
            } else {
                references.insert(reference, line);
            }
        }
        match v {
            Some(v) if cells.errors.is_empty() => valid.push(v),
            _ => errors.append(&mut cells.errors),
        }
    }
    Ok((rows, valid, errors))
}

/// Validates, then (unless a dry run) records every valid row.
pub async fn import(
    ledger: &Ledger,
    brands: &[Brand],
    input: &[u8],
    opts: &ImportOptions,
) -> Result<ImportReport, OpsError> {
    let now = ledger.clock().now();
    let (rows, valid, errors) = validate(input, brands, ledger.calendar(), now, opts)?;
    let invalid_lines: std::collections::HashSet<u64> = errors.iter().map(|e| e.line).collect();
    let mut report = ImportReport {
        rows,
        valid: valid.len(),
        invalid: invalid_lines.len(),
        errors,
        ..ImportReport::default()
    };
    if opts.dry_run {
        return Ok(report);
    }
    for v in valid {
        let times = if v.outside_window {
            // Not due before it is marked failed just below, so no reporter can claim it.
            let later = now + Duration::days(1);
            JobTimes {
                due_at: later,
                target_at: later,
                deadline_at: later,
            }
        } else {
            // HS_2015 rows are exempt from H467: their clock starts with the import.
            let start = if v.intent.source == Source::Hs2015 {
                now
            } else {
                v.intent.consent_at
            };
            ledger.job_times(start, now)?
        };
        let out = ledger.record_with_times(v.intent, now, Some(times)).await?;
        if out.duplicate {
            report.duplicates += 1;
            continue;
        }
        report.recorded += 1;
        match out.job_id {
            Some(job) if v.outside_window => {
                ledger
                    .store()
                    .fail_pending_jobs(&[job], OUTSIDE_WINDOW, now)
                    .await?;
                report.outside_window += 1;
            }
            Some(_) => report.reportable += 1,
            None => {}
        }
    }
    if report.reportable > 0 {
        ledger.reporter_wake.notify_one();
    }
    Ok(report)
}

/// The per-row error report: `line,field,reason` with a header.
pub fn errors_csv(errors: &[RowError]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["line", "field", "reason"]);
    for e in errors {
        let _ = w.write_record([e.line.to_string(), e.field.clone(), e.reason.clone()]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The summary the CLI prints.
pub fn render(r: &ImportReport, dry_run: bool) -> String {
    let mut s = format!(
        "{}rows {}, valid {}, invalid {}\n",
        if dry_run {
            "DRY RUN (nothing recorded): "
        } else {
            ""
        },
        r.rows,
        r.valid,
        r.invalid
    );
    if !dry_run {
        s.push_str(&format!(
            "recorded {} (reportable {}, outside İYS window {}), already imported {}\n",
            r.recorded, r.reportable, r.outside_window, r.duplicates
        ));
    }
    s
}
