//! `GET /console/person?q=…`: find a person by phone (any Turkish way of writing it) or e-mail;
//! show the current word per brand and type, "may we send?", and the timeline of every movement
//! with its evidence, its report job and every İYS attempt. Viewers see addresses and evidence
//! masked; operators see them whole, and can download the evidence pack.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::auth::Signed;
use super::overview::state_name;
use super::view::{Refused, page, respond, t, when};
use crate::domain::mask;
use crate::domain::{Address, ConsentType, Recipient, RecipientType, Status};
use crate::http::lang::Lang;
use crate::ledger::{MaySend, SuppressionAnswer};
use crate::ops::export::{EventRecord, Export, export};
use crate::state::AppState;
use crate::store::console::Role;

/// How the page shows an address or free text to this user.
struct Shown {
    masked: bool,
}

impl Shown {
    fn text(&self, s: &str) -> String {
        if self.masked {
            mask::text(s)
        } else {
            s.to_string()
        }
    }
    /// The evidence as JSON text; for a viewer without the client's IP and with every address
    /// in it masked.
    fn evidence(&self, e: &serde_json::Value) -> String {
        let mut e = e.clone();
        if self.masked
            && let Some(ip) = e.get_mut("ip")
        {
            *ip = serde_json::Value::String("***".into());
        }
        self.text(&serde_json::to_string_pretty(&e).unwrap_or_default())
    }

    fn recipient(&self, r: &str) -> String {
        if !self.masked {
            r.to_string()
        } else if r.contains('@') {
            mask::email(r)
        } else {
            mask::phone(r)
        }
    }
}

fn word(lang: Lang, s: Option<Status>) -> Markup {
    match s {
        Some(Status::Onay) => html! { span.badge.onay { "ONAY" } },
        Some(Status::Ret) => html! { span.badge.ret { "RET" } },
        None => html! { span.muted { (t(lang, "kayıt yok", "none")) } },
    }
}

fn may_send(lang: Lang, a: &SuppressionAnswer) -> Markup {
    let why = match a.reason {
        MaySend::Yes => t(lang, "gönderilebilir", "may send"),
        MaySend::NoConsent => t(lang, "onay yok", "no consent"),
        MaySend::Rejected => t(lang, "ret verdi", "rejected"),
        MaySend::PendingIysRegistration => t(
            lang,
            "onay İYS'ye henüz kaydedilmedi",
            "consent not yet in İYS",
        ),
    };
    html! {
        @if a.may_send { span.badge.ok { (t(lang, "EVET", "YES")) } } @else { span.badge.err { (t(lang, "HAYIR", "NO")) } }
        " " span.muted { (why) }
    }
}

/// Every (brand, recipient type, consent type) worth answering for this person: the configured
/// brands for the types this kind of address can have, plus any the ledger holds.
fn addresses(st: &AppState, who: &Recipient, x: &Export) -> Vec<Address> {
    let types: &[ConsentType] = match who {
        Recipient::Phone(_) => &[ConsentType::Mesaj, ConsentType::Arama],
        Recipient::Email(_) => &[ConsentType::Eposta],
    };
    let mut out: Vec<Address> = Vec::new();
    for b in &st.config.brands {
        for &ct in types {
            out.push(Address {
                brand_code: b.brand_code,
                recipient: who.as_str().to_string(),
                recipient_type: RecipientType::Bireysel,
                consent_type: ct,
            });
        }
    }
    for s in &x.states {
        let a = Address {
            brand_code: s.brand_code,
            recipient: s.recipient.clone(),
            recipient_type: s.recipient_type,
            consent_type: s.consent_type,
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

fn brand_name(st: &AppState, code: i64) -> String {
    st.config
        .brand_by_code(code)
        .map(|b| format!("{} ({code})", b.name))
        .unwrap_or_else(|| code.to_string())
}

fn timeline(lang: Lang, st: &AppState, shown: &Shown, events: &[EventRecord]) -> Markup {
    html! {
        @for r in events.iter().rev() {
            @let e = &r.event;
            article.event.card id={ "event-" (e.id) } {
                h3 {
                    (when(e.consent_at)) " · " (word(lang, Some(e.status))) " · "
                    (e.consent_type.as_str()) " · " (brand_name(st, e.brand_code))
                }
                table {
                    tbody {
                        tr { th { (t(lang, "Kanal / kaynak", "Channel / source")) } td { (e.channel.as_str()) " · " (e.source.as_str()) } }
                        tr { th { (t(lang, "Alındı", "Received")) } td { (when(e.received_at)) } }
                        tr { th { (t(lang, "Sağlayıcı / mesaj no", "Provider / message id")) } td { (e.provider) " · " code { (shown.text(&e.provider_message_id)) } } }
                        @if let Some(ip) = e.evidence.get("ip").and_then(|v| v.as_str()) {
                            tr { th { "IP" } td { (if shown.masked { "***".to_string() } else { ip.to_string() }) } }
                        }
                        @if let Some(ua) = e.evidence.get("user_agent").and_then(|v| v.as_str()) {
                            tr { th { (t(lang, "Tarayıcı", "User agent")) } td { (ua) } }
                        }
                        @if let Some(c) = e.evidence.get("call_id").and_then(|v| v.as_str()) {
                            tr { th { (t(lang, "Çağrı no", "Call id")) } td { code { (c) } } }
                        }
                        @if let Some(d) = e.evidence.pointer("/raw/digits_pressed") {
                            tr { th { (t(lang, "Basılan tuşlar", "Key presses")) } td { code { (d.to_string()) } } }
                        }
                        @if let Some(p) = e.evidence.pointer("/raw/prompt_versions") {
                            tr { th { (t(lang, "Dinletilen anonslar", "Prompts heard")) } td { code { (p.to_string()) } } }
                        }
                    }
                }
                details {
                    summary { (t(lang, "Ham kanıt", "Raw evidence")) }
                    pre { (shown.evidence(&e.evidence)) }
                }
                @if let Some(j) = &r.job {
                    h3 { (t(lang, "İYS bildirimi", "İYS report")) }
                    table {
                        tbody {
                            tr { th { (t(lang, "İş / durum", "Job / state")) } td { (j.id) " · " (state_name(lang, j.state)) } }
                            tr { th { (t(lang, "Yasal son gün", "Legal deadline")) } td { (when(j.deadline_at)) } }
                            tr { th { (t(lang, "İYS işlem no", "İYS transaction id")) } td { code { (j.transaction_id.as_deref().unwrap_or("—")) } } }
                            @if let Some(err) = &j.last_error { tr { th { (t(lang, "Son hata", "Last error")) } td { (shown.text(err)) } } }
                        }
                    }
                    @if !r.attempts.is_empty() {
                        table.attempts {
                            thead { tr {
                                th { (t(lang, "Deneme zamanı", "Attempt time")) } th { (t(lang, "İşlem", "Operation")) }
                                th { "HTTP" } th { (t(lang, "İYS kodu", "İYS code")) } th { "ms" }
                            } }
                            tbody {
                                @for a in &r.attempts {
                                    tr {
                                        td { (when(a.at)) } td { (a.operation) }
                                        td.n { (a.status.map(|s| s.to_string()).unwrap_or_else(|| "—".into())) }
                                        td { (a.code.as_deref().unwrap_or("")) } td.n { (a.duration_ms) }
                                    }
                                }
                            }
                        }
                    }
                } @else {
                    p.muted { (t(lang, "İYS'ye bildirilmez (İYS'den gelen veya bildirilmeyen hareket).", "Not reported to İYS (pulled from İYS, or not reportable).")) }
                }
            }
        }
    }
}

fn search_form(lang: Lang, q: &str) -> Markup {
    html! {
        form method="get" action="/console/person" role="search" {
            label for="q" { (t(lang, "Telefon (ör. 0532 123 45 67) veya e-posta", "Phone (e.g. 0532 123 45 67) or e-mail")) }
            input #q type="search" name="q" value=(q) required;
            " " button.primary type="submit" { (t(lang, "Ara", "Search")) }
        }
    }
}

pub async fn show(State(st): State<AppState>, signed: Signed) -> Result<Response, Refused> {
    let lang = signed.lang;
    let shown = Shown {
        masked: signed.role() < Role::Operator,
    };
    let q = signed.query("q").unwrap_or_default();
    let q = q.trim();
    let title = t(lang, "Kişi ara", "Find a person");
    if q.is_empty() {
        let body = html! { h1 { (title) } section { (search_form(lang, "")) } };
        return Ok(respond(
            StatusCode::OK,
            lang,
            page(&signed.frame(), title, body),
        ));
    }
    let Ok(who) = Recipient::parse(q) else {
        let body = html! {
            h1 { (title) }
            section {
                p.msg.err role="alert" { (t(lang, "Bu geçerli bir telefon numarası ya da e-posta adresi değil.", "That is not a valid phone number or e-mail address.")) }
                (search_form(lang, &shown.text(q)))
            }
        };
        return Ok(respond(
            StatusCode::BAD_REQUEST,
            lang,
            page(&signed.frame(), title, body),
        ));
    };
    let store = st.ledger.store();
    let now = st.ledger.clock().now();
    let x = export(store.as_ref(), &who, None, now).await?;
    let mut answers = Vec::new();
    for a in addresses(&st, &who, &x) {
        answers.push(st.ledger.policy.ask(store.as_ref(), &a).await?);
    }
    let body = html! {
        h1 { (title) }
        section { (search_form(lang, &shown.text(q))) }
        section #person {
            h2 #who { (shown.recipient(who.as_str())) }
            table #words {
                thead { tr {
                    th { (t(lang, "Marka", "Brand")) } th { (t(lang, "Alıcı tipi", "Recipient type")) }
                    th { (t(lang, "Tür", "Type")) } th { (t(lang, "Güncel durum", "Current word")) }
                    th { (t(lang, "İYS'de", "In İYS")) } th { (t(lang, "Gönderebilir miyiz?", "May we send?")) }
                } }
                tbody {
                    @for a in &answers {
                        tr {
                            td { (brand_name(&st, a.brand_code)) }
                            td { (a.recipient_type.as_str()) }
                            td { (a.consent_type.as_str()) }
                            td { (word(lang, a.status)) @if let Some(d) = a.consent_date { " " span.muted { (when(d)) } } }
                            td { @if a.iys_confirmed { (t(lang, "evet", "yes")) } @else { (t(lang, "hayır", "no")) } }
                            td.may { (may_send(lang, a)) }
                        }
                    }
                }
            }
            @if signed.role() >= Role::Operator {
                form method="post" action="/console/person/pack" {
                    input type="hidden" name="csrf" value=(signed.session.csrf_token);
                    input type="hidden" name="q" value=(who.as_str());
                    button.primary #pack type="submit" { (t(lang, "Kanıt dosyasını indir (PDF + JSON)", "Download the evidence pack (PDF + JSON)")) }
                }
            }
        }
        section #timeline {
            h2 { (t(lang, "Hareketler", "Movements")) " (" (x.events.len()) ")" }
            @if x.events.is_empty() {
                p.muted { (t(lang, "Bu kişi için kayıt yok.", "No records for this person.")) }
            }
            (timeline(lang, &st, &shown, &x.events))
        }
    };
    Ok(respond(
        StatusCode::OK,
        lang,
        page(&signed.frame(), title, body),
    ))
}

/// `POST /console/person/pack`: the evidence pack (zip: PDF, JSON, SHA256SUMS) for one person;
/// its SHA-256 goes to the action log with who made it.
pub async fn pack(
    State(st): State<AppState>,
    signed: Signed,
    body: Bytes,
) -> Result<Response, Refused> {
    let form = signed.form(&body)?;
    signed.require(Role::Operator)?;
    let who = Recipient::parse(form.get("q").unwrap_or(""))
        .map_err(|e| Refused::BadRequest(e.to_string()))?;
    let action = signed
        .record(
            &st,
            "evidence_pack",
            who.as_str(),
            None,
            serde_json::json!({}),
        )
        .await?;
    let now = st.ledger.clock().now();
    let x = export(st.ledger.store().as_ref(), &who, None, now).await?;
    let built = crate::ops::pack::build(
        &x,
        &crate::ops::pack::brand_names(&st.config.brands),
        &crate::ops::pack::PackMeta {
            service_version: env!("CARGO_PKG_VERSION").into(),
            generated_by: signed.username().to_string(),
            generated_at: now,
        },
    )?;
    signed
        .record(
            &st,
            "evidence_pack_made",
            who.as_str(),
            None,
            serde_json::json!({"request": action, "sha256": built.sha256, "json_sha256": built.json_sha256, "pdf_sha256": built.pdf_sha256, "file": built.file_name}),
        )
        .await?;
    let mut r = built.zip.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::try_from(format!("attachment; filename=\"{}\"", built.file_name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::try_from(built.sha256.as_str()) {
        h.insert("x-pack-sha256", v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
