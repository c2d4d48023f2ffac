//! `GET /console`: the queue by state, the nearest deadlines, what failed or expired, open
//! alerts (the agreement audit's divergences among them), İYS's success rate over 24 h against
//! its 70 % whitelist rule, and 30 days of charts. Every figure comes from a counter table, an
//! index range or a day-by-day table the triggers keep, so the page costs the same with a
//! million rows as with ten.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, NaiveDate};
use maud::{Markup, PreEscaped, html};

use super::auth::Signed;
use super::charts;
use super::view::{Refused, page, respond, t, when};
use crate::http::lang::Lang;
use crate::state::AppState;
use crate::store::console::{AcceptanceDay, MovementDay};
use crate::store::queue::AlertKind;
use crate::store::{JobState, ReportJob};

/// The day numbering of the day tables, here for the pages and tests that name it.
pub use crate::domain::time::istanbul_day;

/// Days the charts cover.
const DAYS: i64 = 30;
/// İYS's whitelist rule: an IP with at least this many calls in 24 h must keep its success
/// rate (client errors count against it) above 70 %.
const WHITELIST_MIN_CALLS: i64 = 20_000;
const WHITELIST_RATE: f64 = 0.70;
const LIST: i64 = 20;

pub const LATENCY_LABELS: [(&str, &str); 8] = [
    ("0–1 dk", "0–1 min"),
    ("1–5 dk", "1–5 min"),
    ("5–15 dk", "5–15 min"),
    ("15–60 dk", "15–60 min"),
    ("1–6 sa", "1–6 h"),
    ("6–24 sa", "6–24 h"),
    ("1–3 gün", "1–3 days"),
    ("3+ gün", "3+ days"),
];
pub const MARGIN_LABELS: [(&str, &str); 6] = [
    ("geç", "late"),
    ("0–6 sa", "0–6 h"),
    ("6–24 sa", "6–24 h"),
    ("24–48 sa", "24–48 h"),
    ("48–72 sa", "48–72 h"),
    ("72+ sa", "72+ h"),
];

fn day_label(day: i64) -> String {
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|d| d.checked_add_signed(Duration::days(day)))
        .map(|d| d.format("%d.%m").to_string())
        .unwrap_or_default()
}

pub fn state_name(lang: Lang, s: JobState) -> &'static str {
    match s {
        JobState::Pending => t(lang, "bekliyor", "pending"),
        JobState::Leased => t(lang, "gönderiliyor", "leased"),
        JobState::Batched => t(lang, "toplu gönderimde", "batched"),
        JobState::Done => t(lang, "İYS'de", "done"),
        JobState::Superseded => t(lang, "yenisiyle geçildi", "superseded"),
        JobState::NothingToRevoke => t(lang, "geri alınacak onay yok", "nothing to revoke"),
        JobState::Failed => t(lang, "başarısız", "failed"),
        JobState::Expired => t(lang, "süresi geçti", "expired"),
    }
}

/// A brand as people know it: its name (its İYS code when it is not configured any more).
pub fn brand_name(st: &AppState, code: i64) -> String {
    st.config
        .brand_by_code(code)
        .map(|b| b.name.clone())
        .unwrap_or_else(|| code.to_string())
}

/// A share as each language writes it: `%97,5` in Turkish, `97.5 %` in English.
fn percent(lang: Lang, share: f64) -> String {
    let n = format!("{:.1}", share * 100.0);
    match lang {
        Lang::Tr => format!("%{}", n.replace('.', ",")),
        Lang::En => format!("{n} %"),
    }
}

fn svg_or_nothing(drawn: Result<String, String>) -> Markup {
    match drawn {
        Ok(svg) => html! { (PreEscaped(svg)) },
        Err(e) => {
            tracing::warn!(error = %e, "console: a chart could not be drawn");
            html! {}
        }
    }
}

/// The jobs as a table; with `pickable`, each row starts with a checkbox `job` = its id (the
/// requeue form).
pub fn jobs_table(lang: Lang, st: &AppState, jobs: &[ReportJob], pickable: bool) -> Markup {
    html! {
        table {
            thead { tr {
                @if pickable { th { (t(lang, "Seç", "Pick")) } }
                th { (t(lang, "İş", "Job")) } th { (t(lang, "Durum", "State")) }
                th { (t(lang, "Marka", "Brand")) } th { (t(lang, "Tür", "Type")) }
                th { (t(lang, "Son gün", "Deadline")) } th { (t(lang, "Deneme", "Attempts")) }
                th { (t(lang, "Son hata", "Last error")) }
            } }
            tbody {
                @for j in jobs {
                    tr {
                        @if pickable {
                            td { input type="checkbox" name="job" value=(j.id) id={ "job-" (j.id) } aria-label={ "job " (j.id) }; }
                        }
                        td.n { (j.id) }
                        td { (state_name(lang, j.state)) }
                        td { (brand_name(st, j.address.brand_code)) }
                        td { (j.address.consent_type.as_str()) }
                        td { (when(j.deadline_at)) }
                        td.n { (j.attempts) }
                        td { (crate::domain::mask::text(j.last_error.as_deref().unwrap_or(""))) }
                    }
                }
            }
        }
    }
}

fn movements_chart(lang: Lang, st: &AppState, days: &[i64], rows: &[MovementDay]) -> Markup {
    let labels: Vec<String> = days.iter().map(|d| day_label(*d)).collect();
    let index = |d: i64| usize::try_from(d - days[0]).ok();
    let mut by_channel: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut by_brand: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in rows {
        let Some(i) = index(r.day).filter(|i| *i < days.len()) else {
            continue;
        };
        by_channel
            .entry(r.channel.clone())
            .or_insert_with(|| vec![0; days.len()])[i] += r.movements;
        by_brand
            .entry(brand_name(st, r.brand_code))
            .or_insert_with(|| vec![0; days.len()])[i] += r.movements;
    }
    let channel: Vec<(String, Vec<i64>)> = by_channel.into_iter().collect();
    let brand: Vec<(String, Vec<i64>)> = by_brand.into_iter().collect();
    let y = t(lang, "hareket", "movements");
    html! {
        div.grid {
            figure {
                figcaption { (t(lang, "Günlük hareketler, kanala göre", "Movements per day, by channel")) }
                (svg_or_nothing(charts::lines(&labels, &channel, y)))
            }
            figure {
                figcaption { (t(lang, "Günlük hareketler, markaya göre", "Movements per day, by brand")) }
                (svg_or_nothing(charts::lines(&labels, &brand, y)))
            }
        }
        table.movements {
            thead { tr { th { (t(lang, "Kanal", "Channel")) } th { (t(lang, "30 gün", "30 days")) } } }
            tbody {
                @for (name, v) in &channel {
                    tr { td { (name) } td.n { (v.iter().sum::<i64>()) } }
                }
            }
        }
    }
}

fn acceptance_charts(lang: Lang, rows: &[AcceptanceDay]) -> Markup {
    let mut latency = [0i64; LATENCY_LABELS.len()];
    let mut margin = [0i64; MARGIN_LABELS.len()];
    for r in rows {
        if let Some(v) = usize::try_from(r.latency_bucket)
            .ok()
            .and_then(|i| latency.get_mut(i))
        {
            *v += r.jobs;
        }
        if let Some(v) = usize::try_from(r.margin_bucket)
            .ok()
            .and_then(|i| margin.get_mut(i))
        {
            *v += r.jobs;
        }
    }
    let pick = |l: &[(&'static str, &'static str)]| -> Vec<&'static str> {
        l.iter().map(|(tr, en)| t(lang, tr, en)).collect()
    };
    let (ll, ml) = (pick(&LATENCY_LABELS), pick(&MARGIN_LABELS));
    let y = t(lang, "iş", "jobs");
    html! {
        div.grid {
            figure {
                figcaption { (t(lang, "Alındıktan İYS kabulüne kadar geçen süre (30 gün)", "Receipt to İYS acceptance (30 days)")) }
                (svg_or_nothing(charts::bars(&ll, &latency, y)))
            }
            figure {
                figcaption { (t(lang, "Kabulde yasal süreden kalan (30 gün)", "Deadline margin at acceptance (30 days)")) }
                (svg_or_nothing(charts::bars(&ml, &margin, y)))
            }
        }
        table.acceptance {
            thead { tr { th { (t(lang, "Kabule kadar", "To acceptance")) } th { (t(lang, "İş", "Jobs")) } } }
            tbody { @for (i, l) in ll.iter().enumerate() { tr { td { (l) } td.n { (latency[i]) } } } }
        }
    }
}

pub async fn show(State(st): State<AppState>, signed: Signed) -> Result<Response, Refused> {
    let lang = signed.lang;
    let store = st.ledger.store();
    let now = st.ledger.clock().now();
    let summary = store.queue_summary(10).await?;
    let failed = store.jobs_in_state(JobState::Failed, LIST).await?;
    let expired = store.jobs_in_state(JobState::Expired, LIST).await?;
    let alerts = store.open_alerts(LIST).await?;
    let outcomes = store.attempt_outcomes(now - Duration::hours(24)).await?;
    let today = istanbul_day(now);
    let days: Vec<i64> = (today - DAYS + 1..=today).collect();
    let movements = store.movement_days(days[0]).await?;
    let acceptance = store.acceptance_days(days[0]).await?;
    let progress = store.audit_progress().await?;
    let divergences = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::AuditDivergence)
        .count();
    let rate = (outcomes.total > 0)
        .then(|| (outcomes.total - outcomes.client_errors) as f64 / outcomes.total as f64);
    let at_risk = rate.is_some_and(|r| r <= WHITELIST_RATE);
    let body = html! {
        h1 { (t(lang, "Genel bakış", "Overview")) }
        div.grid {
            section #queue {
                h2 { (t(lang, "Bildirim kuyruğu", "Report queue")) }
                table {
                    tbody {
                        @for (state, n) in &summary.by_state {
                            tr {
                                td { (JobState::parse(state).map(|s| state_name(lang, s)).unwrap_or(state)) }
                                td.n { (n) }
                            }
                        }
                    }
                }
                @if let Some(o) = summary.oldest_open_created_at {
                    p.muted { (t(lang, "En eski açık iş: ", "Oldest open job: ")) (when(o)) }
                }
            }
            section #iys-rate {
                h2 { (t(lang, "İYS başarı oranı (24 saat)", "İYS success rate (24 h)")) }
                @match rate {
                    Some(r) => {
                        p {
                            span.badge.(if at_risk { "err" } else { "ok" }) { (percent(lang, r)) }
                            " " (t(lang, "eşik %70", "threshold 70 %"))
                        }
                    }
                    None => p.muted { (t(lang, "Son 24 saatte İYS çağrısı yok.", "No İYS calls in the last 24 h.")) }
                }
                p.muted {
                    (outcomes.total) (t(lang, " çağrı, ", " calls, ")) (outcomes.succeeded)
                    (t(lang, " başarılı, ", " succeeded, ")) (outcomes.client_errors)
                    (t(lang, " istemci hatası (400/401/403/404/422).", " client errors (400/401/403/404/422)."))
                }
                @if at_risk && outcomes.total >= WHITELIST_MIN_CALLS {
                    p.msg.err { (t(lang, "İYS, oran 96 saat içinde %70'in üstüne çıkmazsa bu IP'yi beyaz listeden çıkarır.", "İYS removes this IP from its whitelist if the rate is not above 70 % within 96 h.")) }
                }
            }
            section #audit {
                h2 { (t(lang, "Uyum denetimi", "Agreement audit")) }
                p { (t(lang, "Açık ayrışma uyarısı: ", "Open divergence alerts: ")) strong { (divergences) } }
                p.muted {
                    (t(lang, "Son tam tarama: ", "Last full sweep: "))
                    @match progress.sweep_finished_at { Some(f) => (when(f)), None => (t(lang, "henüz yok", "none yet")) }
                    " · " (t(lang, "kalan ayrışma: ", "divergences left: ")) (progress.sweep_divergent)
                }
            }
        }
        section #nearest {
            h2 { (t(lang, "En yakın son günler", "Nearest deadlines")) }
            (jobs_table(lang, &st, &summary.nearest, false))
        }
        div.grid {
            section #failed {
                h2 { (t(lang, "Başarısız işler", "Failed jobs")) }
                (jobs_table(lang, &st, &failed, false))
                p { a href="/console/jobs?state=failed" { (t(lang, "Tümü ve yeniden kuyruğa alma", "All, and requeue")) } }
            }
            section #expired {
                h2 { (t(lang, "Süresi geçen işler", "Expired jobs")) }
                (jobs_table(lang, &st, &expired, false))
                p { a href="/console/jobs?state=expired" { (t(lang, "Tümü ve yeniden kuyruğa alma", "All, and requeue")) } }
            }
        }
        section #alerts {
            h2 { (t(lang, "Açık uyarılar", "Open alerts")) }
            (super::actions::alerts_table(lang, &alerts, None))
        }
        section #movements {
            h2 { (t(lang, "Hareketler", "Movements")) }
            (movements_chart(lang, &st, &days, &movements))
        }
        section #acceptance {
            h2 { (t(lang, "İYS kabulü", "İYS acceptance")) }
            (acceptance_charts(lang, &acceptance))
        }
    };
    Ok(respond(
        StatusCode::OK,
        lang,
        page(&signed.frame(), t(lang, "Genel bakış", "Overview"), body),
    ))
}
