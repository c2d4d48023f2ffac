//! evidence.pdf: the pack for a person to read and print, Turkish first and English second on
//! every label. The lines are laid out first (wrapped by the font's own advance widths) and
//! then paged, so a page break is a plain loop rather than a drawing state to carry around.

use chrono::{DateTime, Datelike, Timelike, Utc};
use krilla::Document;
use krilla::geom::{PathBuilder, Point};
use krilla::metadata::{self, Metadata};
use krilla::page::PageSettings;
use krilla::paint::Stroke;
use krilla::text::{Font, TextDirection};
use serde_json::Value;
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::{FontRef, MetadataProvider, charmap::Charmap};

use super::{JSON_NAME, PackMeta};
use crate::domain::time::to_iys;
use crate::ops::OpsError;
use crate::ops::export::{EventRecord, Export};

/// DejaVu Sans (licence beside it): the PDF's built-in fonts have no İ ı Ş ş Ğ ğ, and the
/// machine making the pack may have no font of its own.
const FONT: &[u8] = include_bytes!("DejaVuSans.ttf");

// A4 in PDF points; krilla measures from the top left.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 48.0;
const BODY_BOTTOM: f32 = PAGE_H - 60.0;
const FOOTER_Y: f32 = PAGE_H - 30.0;
/// Indent of a field under its heading, and of a wrapped line's continuation.
const INDENT: f32 = 12.0;

const NO_RECORDS: &str = "Kayıt yok / No records";

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Title,
    Heading,
    Body,
    /// Raw payloads and the footer: long, rarely read in full.
    Small,
}

impl Style {
    fn size(self) -> f32 {
        match self {
            Style::Title => 15.0,
            Style::Heading => 11.5,
            Style::Body => 9.0,
            Style::Small => 7.5,
        }
    }
    fn height(self) -> f32 {
        self.size() * 1.35
    }
    /// Extra space above, so sections read as sections.
    fn space_before(self) -> f32 {
        if self == Style::Heading { 8.0 } else { 0.0 }
    }
}

enum Item {
    Text {
        style: Style,
        x: f32,
        text: String,
    },
    /// A thin line between movements.
    Rule,
}

impl Item {
    fn height(&self) -> f32 {
        match self {
            Item::Text { style, .. } => style.space_before() + style.height(),
            Item::Rule => 10.0,
        }
    }
}

/// Advance widths from the embedded font itself, so wrapping matches what is drawn.
struct Measure {
    charmap: Charmap<'static>,
    /// At 1 pt: a width times the font size.
    glyphs: GlyphMetrics<'static>,
}

impl Measure {
    fn new() -> Result<Self, OpsError> {
        let font = FontRef::new(FONT).map_err(|e| OpsError::Pack(format!("font: {e}")))?;
        Ok(Self {
            charmap: font.charmap(),
            glyphs: font.glyph_metrics(Size::new(1.0), LocationRef::default()),
        })
    }

    fn width(&self, s: &str, size: f32) -> f32 {
        let glyph = |c: char| self.charmap.map(c).unwrap_or_default();
        let units: f32 = s
            .chars()
            .map(|c| self.glyphs.advance_width(glyph(c)).unwrap_or(0.0))
            .sum();
        units * size
    }

    /// Greedy wrap at spaces, or anywhere in a run too long for a line (compact JSON, ids).
    /// Continuation lines are `INDENT` narrower: they hang under the first.
    fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut out = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for c in para.chars() {
                let c = if c.is_control() { ' ' } else { c };
                let max = if out.is_empty() {
                    width
                } else {
                    width - INDENT
                };
                line.push(c);
                if self.width(&line, size) <= max || line.chars().count() == 1 {
                    continue;
                }
                line.pop();
                let cut = line.rfind(' ').filter(|&i| i > 0).unwrap_or(line.len());
                let rest = line.split_off(cut);
                out.push(std::mem::take(&mut line));
                line = rest.trim_start().to_string();
                if !(c == ' ' && line.is_empty()) {
                    line.push(c);
                }
            }
            out.push(line);
        }
        out
    }
}

/// The document as a list of lines, before paging.
struct Layout<'a> {
    measure: Measure,
    items: Vec<Item>,
    brands: &'a [(i64, String)],
}

impl Layout<'_> {
    fn text(&mut self, style: Style, indent: f32, text: &str) {
        let x = MARGIN + indent;
        let lines = self.measure.wrap(text, style.size(), PAGE_W - MARGIN - x);
        for (i, text) in lines.into_iter().enumerate() {
            let hang = if i == 0 { 0.0 } else { INDENT };
            self.items.push(Item::Text {
                style,
                x: x + hang,
                text,
            });
        }
    }

    fn heading(&mut self, text: &str) {
        self.text(Style::Heading, 0.0, text);
    }

    fn field(&mut self, indent: f32, label: &str, value: &str) {
        self.text(Style::Body, indent, &format!("{label}: {value}"));
    }

    /// A label that introduces the lines under it.
    fn label(&mut self, indent: f32, label: &str) {
        self.text(Style::Body, indent, &format!("{label}:"));
    }

    fn brand(&self, code: i64) -> String {
        match self.brands.iter().find(|(c, _)| *c == code) {
            Some((_, name)) => format!("{name} ({code})"),
            None => code.to_string(),
        }
    }

    fn header(&mut self, x: &Export, meta: &PackMeta, json_sha256: &str) {
        self.text(
            Style::Title,
            0.0,
            "İYS İzin Kanıt Dosyası / İYS consent evidence pack",
        );
        self.field(0.0, "Kişi / Person", &x.recipient);
        let brand = x.brand_code.map_or("tümü / all".into(), |b| self.brand(b));
        self.field(0.0, "Marka / Brand", &brand);
        let at = meta.generated_at;
        let utc = at.format("%Y-%m-%d %H:%M:%S");
        let generated = format!("{} İstanbul · {utc} UTC", to_iys(at));
        self.field(0.0, "Oluşturulma / Generated at", &generated);
        self.field(
            0.0,
            "Servis sürümü / Service version",
            &meta.service_version,
        );
        self.field(0.0, "Oluşturan / Generated by", &meta.generated_by);
        self.label(0.0, &format!("{JSON_NAME} SHA-256"));
        // On a line of its own: a hash broken across lines is hard to compare by eye.
        self.text(Style::Body, INDENT, json_sha256);
        self.text(
            Style::Small,
            0.0,
            &format!(
                "Bu belge aynı dosyadaki {JSON_NAME} verisinin okunur özetidir; yukarıdaki \
                 özet değeri bu kâğıdı o veriye bağlar. / This document summarises {JSON_NAME} \
                 in the same pack; the hash above binds this paper to that data."
            ),
        );
    }

    fn states(&mut self, x: &Export) {
        self.heading("Güncel durum / Current state");
        if x.states.is_empty() {
            self.text(Style::Body, INDENT, NO_RECORDS);
        }
        for s in &x.states {
            let confirmed = if s.iys_confirmed {
                "İYS'de kayıtlı / confirmed by İYS"
            } else {
                "İYS onayı bekleniyor / not yet confirmed by İYS"
            };
            let label = format!(
                "{} · {} · {}",
                self.brand(s.brand_code),
                s.consent_type,
                s.recipient_type
            );
            let value = format!(
                "{} — {confirmed} (izin tarihi / consent date {})",
                s.status,
                to_iys(s.consent_at)
            );
            self.field(INDENT, &label, &value);
        }
    }

    /// By consent date, the order İYS applies them in (the export lists them as recorded,
    /// and an import records old consents late).
    fn movements(&mut self, x: &Export) {
        self.heading(&format!(
            "Hareketler / Movements ({}) — izin tarihine göre / by consent date",
            x.events.len()
        ));
        if x.events.is_empty() {
            self.text(Style::Body, INDENT, NO_RECORDS);
        }
        let mut events: Vec<&EventRecord> = x.events.iter().collect();
        events.sort_by_key(|r| (r.event.consent_at, r.event.id));
        for (i, r) in events.into_iter().enumerate() {
            self.movement(i + 1, r);
        }
    }

    fn movement(&mut self, n: usize, r: &EventRecord) {
        let e = &r.event;
        self.items.push(Item::Rule);
        let brand = self.brand(e.brand_code);
        self.heading(&format!("{n}. {} · {} · {brand}", e.status, e.consent_type));
        let f = INDENT;
        self.field(f, "İzin tarihi / Consent date", &istanbul(e.consent_at));
        self.field(f, "Alınma zamanı / Received at", &istanbul(e.received_at));
        self.field(f, "Marka / Brand", &brand);
        let kind = format!(
            "{} · alıcı türü / recipient type {}",
            e.consent_type, e.recipient_type
        );
        self.field(f, "Tür / Type", &kind);
        self.field(f, "Durum / Status", e.status.as_str());
        self.field(f, "Kaynak / Source", e.source.as_str());
        self.field(f, "Kanal / Channel", e.channel.as_str());
        let provider = format!(
            "{} · mesaj no / message id {}",
            e.provider, e.provider_message_id
        );
        self.field(f, "Sağlayıcı / Provider", &provider);
        self.field(f, "Olay no / Event id", &e.id.to_string());

        self.label(f, "Kanıt / Evidence");
        for (label, value) in evidence_fields(&e.evidence) {
            self.field(2.0 * f, label, &value);
        }
        self.label(2.0 * f, "Ham veri / Raw payload");
        let raw = e.evidence.get("raw").unwrap_or(&e.evidence);
        self.text(Style::Small, 3.0 * f, &raw.to_string());

        match &r.job {
            Some(j) => {
                let job = format!("#{} · durum / state {}", j.id, j.state.as_str());
                self.field(f, "Bildirim işi / Report job", &job);
                self.field(2.0 * f, "Son tarih / Deadline", &istanbul(j.deadline_at));
                let tx = j.transaction_id.as_deref().unwrap_or("—");
                self.field(2.0 * f, "İYS işlem no / İYS transaction id", tx);
                if let Some(err) = &j.last_error {
                    self.field(2.0 * f, "Son hata / Last error", err);
                }
            }
            None => self.field(f, "Bildirim işi / Report job", "yok / none"),
        }
        self.label(f, &format!("Denemeler / Attempts ({})", r.attempts.len()));
        for a in &r.attempts {
            let status = a.status.map_or("—".into(), |s| s.to_string());
            let line = format!(
                "{} · {} {} · HTTP {status} · kod / code {} · {} ms",
                to_iys(a.at),
                a.method,
                a.operation,
                a.code.as_deref().unwrap_or("—"),
                a.duration_ms
            );
            self.text(Style::Body, 2.0 * f, &line);
        }
        if !r.alerts.is_empty() {
            self.label(f, &format!("Uyarılar / Alerts ({})", r.alerts.len()));
        }
        for a in &r.alerts {
            let line = format!(
                "{} · {} · {} · {}",
                to_iys(a.at),
                a.severity,
                a.kind.as_str(),
                a.detail
            );
            self.text(Style::Body, 2.0 * f, &line);
        }
    }
}

fn istanbul(at: DateTime<Utc>) -> String {
    format!("{} (İstanbul)", to_iys(at))
}

/// What the channels keep beside the raw payload (ip, user agent, call id), and what a call's
/// payload says was heard and pressed; only those present.
fn evidence_fields(ev: &Value) -> Vec<(&'static str, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .filter(|i| !i.is_null())
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    let raw = ev.get("raw");
    [
        ("IP", ev.get("ip")),
        ("Tarayıcı / User agent", ev.get("user_agent")),
        ("Çağrı no / Call id", ev.get("call_id")),
        (
            "Dinlenen anonslar / Prompts heard",
            raw.and_then(|r| r.get("prompt_versions")),
        ),
        (
            "Tuşlamalar / Key presses",
            raw.and_then(|r| r.get("digits_pressed")),
        ),
    ]
    .into_iter()
    .filter_map(|(label, v)| v.filter(|v| !v.is_null()).map(|v| (label, text(v))))
    .filter(|(_, v)| !v.is_empty())
    .collect()
}

/// Pages the items top to bottom; a heading never ends a page.
fn paginate(items: &[Item]) -> Vec<Vec<(f32, &Item)>> {
    let top = MARGIN;
    let mut pages = vec![Vec::new()];
    let mut y = top;
    for item in items {
        let keep = match item {
            Item::Text {
                style: Style::Heading,
                ..
            } => 3.0 * Style::Body.height(),
            _ => 0.0,
        };
        let page_empty = pages.last().is_some_and(Vec::is_empty);
        if y + item.height() + keep > BODY_BOTTOM && !page_empty {
            pages.push(Vec::new());
            y = top;
        }
        let page_empty = pages.last().is_some_and(Vec::is_empty);
        if page_empty && matches!(item, Item::Rule) {
            continue;
        }
        y += item.height();
        if let Some(page) = pages.last_mut() {
            page.push((y, item));
        }
    }
    pages
}

pub(super) fn render(
    x: &Export,
    brands: &[(i64, String)],
    meta: &PackMeta,
    json_sha256: &str,
) -> Result<Vec<u8>, OpsError> {
    let mut layout = Layout {
        measure: Measure::new()?,
        items: Vec::new(),
        brands,
    };
    layout.header(x, meta, json_sha256);
    layout.states(x);
    layout.movements(x);
    let pages = paginate(&layout.items);

    let err = |e: krilla::error::KrillaError| OpsError::Pack(format!("pdf: {e}"));
    let font = Font::new(FONT.into(), 0).ok_or_else(|| OpsError::Pack("font".into()))?;
    let settings =
        PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| OpsError::Pack("page size".into()))?;
    let mut doc = Document::new();
    doc.set_metadata(
        Metadata::new()
            .title("İYS İzin Kanıt Dosyası / İYS consent evidence pack".into())
            // Readable without rendering: tools and tests find the binding hash here too.
            .description(format!("{JSON_NAME} SHA-256 {json_sha256}"))
            .creator(format!("iys-relay {}", meta.service_version))
            .language("tr".into())
            .creation_date(pdf_date(meta.generated_at)),
    );
    for (i, items) in pages.iter().enumerate() {
        let mut page = doc.start_page_with(settings.clone());
        let mut surface = page.surface();
        let mut draw = |x: f32, y: f32, size: f32, text: &str| {
            surface.draw_text(
                Point::from_xy(x, y),
                font.clone(),
                size,
                text,
                false,
                TextDirection::LeftToRight,
            );
        };
        for (y, item) in items {
            if let Item::Text { style, x, text } = item {
                // `y` is the line's bottom; the baseline sits a little above it.
                draw(*x, *y - style.height() * 0.25, style.size(), text);
            }
        }
        let n = i + 1;
        let footer = format!("Sayfa {n} / Page {n} · {JSON_NAME} SHA-256 {json_sha256}");
        draw(MARGIN, FOOTER_Y, Style::Small.size(), &footer);
        let rules: Vec<f32> = items
            .iter()
            .filter(|(_, item)| matches!(item, Item::Rule))
            .map(|(y, _)| *y - 5.0)
            .collect();
        if !rules.is_empty() {
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke {
                width: 0.5,
                ..Stroke::default()
            }));
            for y in rules {
                let mut pb = PathBuilder::new();
                pb.move_to(MARGIN, y);
                pb.line_to(PAGE_W - MARGIN, y);
                if let Some(path) = pb.finish() {
                    surface.draw_path(&path);
                }
            }
        }
        surface.finish();
        page.finish();
    }
    doc.finish().map_err(err)
}

fn pdf_date(at: DateTime<Utc>) -> metadata::DateTime {
    metadata::DateTime::new(u16::try_from(at.year()).unwrap_or(0))
        .month(at.month() as u8)
        .day(at.day() as u8)
        .hour(at.hour() as u8)
        .minute(at.minute() as u8)
        .second(at.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_wraps_within_the_line_at_words_or_anywhere() {
        let m = Measure::new().unwrap();
        let words = "Şu kişi bu hareketi iptal etti ".repeat(12);
        let json = format!("{{\"k\":\"{}\"}}", "ğ".repeat(400));
        for text in [words.trim_end(), json.as_str()] {
            let lines = m.wrap(text, 9.0, 300.0);
            assert!(lines.len() > 2, "{lines:?}");
            for (i, l) in lines.iter().enumerate() {
                let max = if i == 0 { 300.0 } else { 300.0 - INDENT };
                assert!(m.width(l, 9.0) <= max, "{l:?}");
            }
            assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
        }
        let known = ["Şu", "kişi", "bu", "hareketi", "iptal", "etti"];
        for l in m.wrap(words.trim_end(), 9.0, 300.0) {
            assert!(
                l.split(' ').all(|w| known.contains(&w)),
                "a word was cut: {l:?}"
            );
        }
    }

    #[test]
    fn a_heading_never_ends_a_page() {
        let body = || Item::Text {
            style: Style::Body,
            x: MARGIN,
            text: "x".into(),
        };
        let per_page = ((BODY_BOTTOM - MARGIN) / Style::Body.height()) as usize;
        let mut items: Vec<Item> = (0..per_page - 1).map(|_| body()).collect();
        items.push(Item::Text {
            style: Style::Heading,
            x: MARGIN,
            text: "h".into(),
        });
        items.push(body());
        let pages = paginate(&items);
        assert_eq!(pages.len(), 2);
        assert!(matches!(
            pages[1][0].1,
            Item::Text {
                style: Style::Heading,
                ..
            }
        ));
    }
}
