//! What operators do from the console, each written to the action log before it is carried
//! out: requeue failed or expired jobs with a reason, acknowledge alerts, mint a test link.
//! And what admins read: that log.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::auth::Signed;
use super::overview::{jobs_table, state_name};
use super::view::{Refused, page, respond, t, when};
use crate::channels::web::api::{MintRequest, mint_one};
use crate::domain::ConsentType;
use crate::http::lang::Lang;
use crate::ops::requeue::{RequeueRequest, RequeueResult, requeue};
use crate::state::AppState;
use crate::store::JobState;
use crate::store::console::Role;
use crate::store::queue::Alert;

/// Jobs listed (and requeued) at once from one page.
const PAGE: i64 = 200;
const MAX_REASON_CHARS: usize = 500;

fn see_other(to: &'static str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

/// A reason an operator must give: trimmed, not empty, bounded.
fn reason(form_value: Option<&str>) -> Result<String, Refused> {
    let r = form_value.unwrap_or("").trim();
    if r.is_empty() {
        return Err(Refused::BadRequest(
            "bir gerekçe yazın / give a reason".into(),
        ));
    }
    if r.chars().count() > MAX_REASON_CHARS {
        return Err(Refused::BadRequest(format!(
            "gerekçe en çok {MAX_REASON_CHARS} karakter / at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(r.to_string())
}

pub fn alerts_table(lang: Lang, alerts: &[Alert], csrf: Option<&str>) -> Markup {
    html! {
        table {
            thead { tr {
                th { (t(lang, "Zaman", "Time")) } th { (t(lang, "Önem", "Severity")) }
                th { (t(lang, "Tür", "Kind")) } th { (t(lang, "İş", "Job")) } th { (t(lang, "Ayrıntı", "Detail")) }
                @if csrf.is_some() { th {} }
            } }
            tbody {
                @for a in alerts {
                    tr {
                        td { (when(a.at)) }
                        td { span.badge.(if a.severity == "error" { "err" } else { "warn" }) { (a.severity) } }
                        td { (a.kind.as_str()) }
                        td.n { (a.job_id) }
                        td { (crate::domain::mask::text(&a.detail)) }
                        @if let Some(csrf) = csrf {
                            td {
                                form.inline method="post" action={ "/console/alerts/" (a.id) "/ack" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (t(lang, "Gördüm", "Acknowledge")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if alerts.is_empty() { p.muted { (t(lang, "Açık uyarı yok.", "No open alerts.")) } }
    }
}

pub async fn jobs(State(st): State<AppState>, signed: Signed) -> Result<Response, Refused> {
    let lang = signed.lang;
    let state = match signed.query("state").as_deref().unwrap_or("failed") {
        "failed" => JobState::Failed,
        "expired" => JobState::Expired,
        other => {
            return Err(Refused::BadRequest(format!(
                "state {:?}: failed or expired",
                other.chars().take(20).collect::<String>()
            )));
        }
    };
    let list = st.ledger.store().jobs_in_state(state, PAGE).await?;
    let can_act = signed.role() >= Role::Operator;
    let body = html! {
        h1 { (t(lang, "İşler", "Jobs")) ": " (state_name(lang, state)) }
        p {
            a href="/console/jobs?state=failed" { (state_name(lang, JobState::Failed)) } " · "
            a href="/console/jobs?state=expired" { (state_name(lang, JobState::Expired)) }
        }
        section {
            @if list.is_empty() {
                p.muted { (t(lang, "Bu durumda iş yok.", "No jobs in this state.")) }
            } @else if can_act {
                form method="post" action="/console/jobs/requeue" {
                    input type="hidden" name="csrf" value=(signed.session.csrf_token);
                    (jobs_table(lang, &st, &list, true))
                    label for="reason" { (t(lang, "Gerekçe (kayda geçer)", "Reason (kept in the log)")) }
                    textarea #reason name="reason" rows="2" required maxlength=(MAX_REASON_CHARS) {}
                    label { input type="checkbox" name="force" value="1"; " "
                        (t(lang, "İYS'nin reddedeceği beklense de gönder (H467 süresi, H178 daha yeni hareket)", "Send even if İYS is expected to refuse it (H467 window, H178 newer movement)")) }
                    div { button.primary type="submit" { (t(lang, "Yeniden kuyruğa al", "Requeue")) } }
                }
            } @else {
                (jobs_table(lang, &st, &list, false))
                p.muted { (t(lang, "Yeniden kuyruğa almak için operatör yetkisi gerekir.", "Requeueing needs the operator role.")) }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        lang,
        page(&signed.frame(), t(lang, "İşler", "Jobs"), body),
    ))
}

pub async fn requeue_jobs(
    State(st): State<AppState>,
    signed: Signed,
    body: Bytes,
) -> Result<Response, Refused> {
    let form = signed.form(&body)?;
    signed.require(Role::Operator)?;
    let lang = signed.lang;
    let ids: Vec<i64> = form
        .all("job")
        .map(|v| {
            v.trim().parse::<i64>().map_err(|_| {
                Refused::BadRequest(format!(
                    "job {:?} is not a job id",
                    v.chars().take(20).collect::<String>()
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err(Refused::BadRequest(
            "en az bir iş seçin / pick at least one job".into(),
        ));
    }
    if ids.len() > PAGE as usize {
        return Err(Refused::BadRequest(format!("at most {PAGE} jobs at once")));
    }
    let why = reason(form.get("reason"))?;
    let force = form.get("force") == Some("1");
    signed
        .record(
            &st,
            "requeue",
            &format!("jobs {ids:?}"),
            Some(&why),
            serde_json::json!({"jobs": ids, "force": force}),
        )
        .await?;
    let req = RequeueRequest {
        ids,
        all_failed: false,
        all_expired: false,
        force,
        note: Some(format!("{} (console): {why}", signed.username())),
    };
    let now = st.ledger.clock().now();
    let results = requeue(st.ledger.store().as_ref(), st.ledger.calendar(), now, &req).await?;
    let body = html! {
        h1 { (t(lang, "Yeniden kuyruğa alma", "Requeue")) }
        section {
            table {
                thead { tr { th { (t(lang, "İş", "Job")) } th { (t(lang, "Sonuç", "Result")) } th { (t(lang, "Not", "Note")) } } }
                tbody {
                    @for r in &results {
                        @match r {
                            RequeueResult::Requeued { job_id, deadline_at, warning, .. } => tr.requeued {
                                td.n { (job_id) }
                                td { span.badge.ok { (t(lang, "kuyrukta", "requeued")) } }
                                td { (t(lang, "son gün ", "deadline ")) (when(*deadline_at)) @if let Some(w) = warning { " · " (w) } }
                            },
                            RequeueResult::Refused { job_id, reason } => tr.refused {
                                td.n { (job_id) }
                                td { span.badge.err { (t(lang, "reddedildi", "refused")) } }
                                td { (reason) }
                            },
                        }
                    }
                }
            }
            p { a href="/console/jobs" { (t(lang, "İşlere dön", "Back to jobs")) } }
        }
    };
    Ok(respond(
        StatusCode::OK,
        lang,
        page(
            &signed.frame(),
            t(lang, "Yeniden kuyruğa alma", "Requeue"),
            body,
        ),
    ))
}

pub async fn alerts(State(st): State<AppState>, signed: Signed) -> Result<Response, Refused> {
    let lang = signed.lang;
    let open = st.ledger.store().open_alerts(PAGE).await?;
    let csrf = (signed.role() >= Role::Operator).then_some(signed.session.csrf_token.as_str());
    let body = html! {
        h1 { (t(lang, "Açık uyarılar", "Open alerts")) }
        section { (alerts_table(lang, &open, csrf)) }
    };
    Ok(respond(
        StatusCode::OK,
        lang,
        page(&signed.frame(), t(lang, "Uyarılar", "Alerts"), body),
    ))
}

pub async fn acknowledge(
    State(st): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Refused> {
    signed.form(&body)?;
    signed.require(Role::Operator)?;
    let id: i64 = id.parse().map_err(|_| Refused::NotFound)?;
    signed
        .record(
            &st,
            "acknowledge_alert",
            &format!("alert {id}"),
            None,
            serde_json::json!({"alert": id}),
        )
        .await?;
    let now = st.ledger.clock().now();
    if !st
        .ledger
        .store()
        .acknowledge_alert(id, signed.username(), now)
        .await?
    {
        return Err(Refused::NotFound);
    }
    Ok(see_other("/console/alerts"))
}

fn link_form(st: &AppState, signed: &Signed, minted: Option<Markup>) -> Response {
    let lang = signed.lang;
    let body = html! {
        h1 { (t(lang, "Test bağlantısı", "Test link")) }
        section {
            p.muted { (t(lang, "Bir kampanyadan önce ret bağlantısının çalıştığını kendi numaranızla deneyin. Bağlantı “console-test” kampanyasıyla üretilir; açmak hiçbir şeyi değiştirmez, düğmesine basmak RET kaydeder.", "Check the rejection link works with your own number before a campaign. The link is minted for the campaign “console-test”; opening it changes nothing, pressing its button records a RET.")) }
            @if let Some(m) = minted { (m) }
            @if signed.role() >= Role::Operator {
                form method="post" action="/console/links" {
                    input type="hidden" name="csrf" value=(signed.session.csrf_token);
                    label for="brand" { (t(lang, "Marka", "Brand")) }
                    select #brand name="brand" {
                        @for b in &st.config.brands { option value=(b.key) { (b.name) " (" (b.brand_code) ")" } }
                    }
                    label for="recipient" { (t(lang, "Telefon veya e-posta", "Phone or e-mail")) }
                    input #recipient type="text" name="recipient" required;
                    label for="type" { (t(lang, "Tür", "Type")) }
                    select #type name="type" {
                        option value="MESAJ" { "MESAJ (SMS)" }
                        option value="ARAMA" { (t(lang, "ARAMA (arama)", "ARAMA (calls)")) }
                        option value="EPOSTA" { (t(lang, "EPOSTA (e-posta)", "EPOSTA (e-mail)")) }
                    }
                    div { button.primary type="submit" { (t(lang, "Bağlantı üret", "Mint link")) } }
                }
            } @else {
                p.muted { (t(lang, "Bağlantı üretmek için operatör yetkisi gerekir.", "Minting needs the operator role.")) }
            }
        }
    };
    respond(
        StatusCode::OK,
        lang,
        page(
            &signed.frame(),
            t(lang, "Test bağlantısı", "Test link"),
            body,
        ),
    )
}

pub async fn link_page(State(st): State<AppState>, signed: Signed) -> Result<Response, Refused> {
    Ok(link_form(&st, &signed, None))
}

pub async fn mint_link(
    State(st): State<AppState>,
    signed: Signed,
    body: Bytes,
) -> Result<Response, Refused> {
    let form = signed.form(&body)?;
    signed.require(Role::Operator)?;
    let consent_type: ConsentType = form
        .get("type")
        .unwrap_or("")
        .parse()
        .map_err(|_| Refused::BadRequest("type: MESAJ, ARAMA or EPOSTA".into()))?;
    let recipient = form.get("recipient").unwrap_or("").to_string();
    let brand = form.get("brand").map(str::to_string);
    signed
        .record(
            &st,
            "mint_test_link",
            &crate::domain::mask::text(&recipient),
            None,
            serde_json::json!({"brand": brand, "type": consent_type.as_str()}),
        )
        .await?;
    let link = mint_one(
        &st,
        MintRequest {
            brand,
            recipient,
            consent_type,
            recipient_type: None,
            campaign: Some("console-test".into()),
        },
    )
    .await?;
    let lang = signed.lang;
    let shown = html! {
        p.msg.ok role="status" {
            (t(lang, "Bağlantı hazır: ", "Link ready: "))
            a #minted href=(link.url) { (link.url) }
            " · " (t(lang, "geçerlilik ", "valid until ")) (when(link.expires_at))
        }
    };
    Ok(link_form(&st, &signed, Some(shown)))
}

pub async fn action_log(State(st): State<AppState>, signed: Signed) -> Result<Response, Refused> {
    signed.require(Role::Admin)?;
    let lang = signed.lang;
    let before = signed
        .query("before")
        .map(|b| b.parse::<i64>())
        .transpose()
        .map_err(|_| Refused::BadRequest("before: a log entry number".into()))?;
    let rows = st.ledger.store().console_actions(before, PAGE).await?;
    let users = st.ledger.store().console_users().await?;
    let body = html! {
        h1 { (t(lang, "İşlem kaydı", "Action log")) }
        section {
            p.muted { (t(lang, "Konsolda yapılan her işlem ve giriş; kayıtlar değiştirilemez ve silinemez.", "Every action and sign-in on the console; entries cannot be changed or removed.")) }
            table #log {
                thead { tr {
                    th { "#" } th { (t(lang, "Zaman", "Time")) } th { (t(lang, "Kullanıcı", "User")) }
                    th { (t(lang, "İşlem", "Action")) } th { (t(lang, "Hedef", "Target")) }
                    th { (t(lang, "Gerekçe", "Reason")) } th { "IP" } th { (t(lang, "Ayrıntı", "Detail")) }
                } }
                tbody {
                    @for a in &rows {
                        tr {
                            td.n { (a.id) } td { (when(a.at)) } td { (a.username) } td { (a.action) }
                            td { (a.target) } td { (a.reason.as_deref().unwrap_or("")) }
                            td { (a.ip.as_deref().unwrap_or("")) } td { code { (a.detail.to_string()) } }
                        }
                    }
                }
            }
            @if let Some(last) = rows.last().filter(|_| rows.len() as i64 == PAGE) {
                p { a href={ "/console/actions?before=" (last.id) } { (t(lang, "Daha eski", "Older")) } }
            }
        }
        section {
            h2 { (t(lang, "Kullanıcılar", "Users")) }
            p.muted { (t(lang, "Kullanıcılar komut satırından yönetilir: iys-relay user add|disable|passwd.", "Users are managed from the command line: iys-relay user add|disable|passwd.")) }
            table {
                thead { tr { th { (t(lang, "Kullanıcı", "User")) } th { (t(lang, "Rol", "Role")) } th { (t(lang, "Durum", "Status")) } } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.username) }
                            td { (super::view::role_name(lang, u.role)) }
                            td { @if u.disabled { (t(lang, "kapalı", "disabled")) } @else { (t(lang, "açık", "enabled")) } }
                        }
                    }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        lang,
        page(&signed.frame(), t(lang, "İşlem kaydı", "Action log"), body),
    ))
}
