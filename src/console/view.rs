//! The console's page frame (maud, escaped by default): Turkish first, English on request, no
//! JavaScript, one inline stylesheet allowed by its CSP hash. Errors are pages too, in both
//! languages (an error may come before the language is known), never a bare 500.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Europe::Istanbul;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::http::lang::Lang;
use crate::store::console::Role;

const CSS: &str = "*{box-sizing:border-box}\
body{margin:0;font:.9375rem/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}\
header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:center;padding:.5rem 1rem;background:#0b3d6e;color:#fff}\
header a{color:#fff;text-decoration:none;padding:.25rem .5rem;border-radius:.25rem}\
header a:hover,header a[aria-current]{background:#1c5a96}\
header .who{margin-left:auto;display:flex;gap:.5rem;align-items:center}\
header form{margin:0}\
header button{font:inherit;background:none;border:1px solid #fff;color:#fff;border-radius:.25rem;padding:.125rem .5rem;cursor:pointer}\
main{max-width:72rem;margin:0 auto;padding:1rem}\
h1{font-size:1.375rem;margin:.5rem 0 1rem}\
h2{font-size:1.125rem;margin:1.5rem 0 .5rem}\
h3{font-size:1rem;margin:1rem 0 .25rem}\
section>h2:first-child,section>h1:first-child,article>h3:first-child{margin-top:0}\
article table th{width:16rem}\
section,.card{background:#fff;border-radius:.5rem;padding:1rem;margin:0 0 1rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(20rem,1fr));gap:1rem}\
table{border-collapse:collapse;width:100%;font-size:.875rem}\
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #e2e4e8;vertical-align:top}\
th{background:#f0f2f5;font-weight:600}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
pre{white-space:pre-wrap;word-break:break-all;background:#f6f7f9;padding:.5rem;border-radius:.25rem;font-size:.8125rem;margin:.25rem 0}\
.badge{display:inline-block;padding:0 .4rem;border-radius:.25rem;font-weight:600;font-size:.8125rem}\
.onay{background:#d7f0de;color:#0a5a25}.ret{background:#fbdcdc;color:#8a1010}\
.warn{background:#fff1cc;color:#6b4a00}.err{background:#fbdcdc;color:#8a1010}.ok{background:#d7f0de;color:#0a5a25}\
.muted{color:#5a5f66}\
form.inline{display:inline}\
label{display:block;margin:.5rem 0 .125rem;font-weight:600}\
input,select,textarea{font:inherit;padding:.375rem .5rem;border:1px solid #9aa0a8;border-radius:.25rem;max-width:100%}\
input[type=text],input[type=password],input[type=search],textarea{width:24rem}\
button.primary{font:inherit;font-weight:600;color:#fff;background:#0b5cad;border:0;border-radius:.25rem;padding:.4rem 1rem;margin-top:.5rem;cursor:pointer}\
button.primary:hover{background:#084a8c}\
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}\
.msg{padding:.5rem .75rem;border-radius:.25rem;margin:0 0 1rem}\
.login{max-width:26rem;margin:3rem auto}\
figure{margin:0}figcaption{font-weight:600;margin-bottom:.25rem}\
svg{max-width:100%;height:auto}";

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| crate::http::page::csp_for(CSS));

/// One text in each language; the page's language picks.
pub fn t(lang: Lang, tr: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Tr => tr,
        Lang::En => en,
    }
}

/// An instant as the Ministry and İYS write it: Istanbul time.
pub fn when(at: DateTime<Utc>) -> String {
    at.with_timezone(&Istanbul)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Who is looking, for the page frame.
pub struct Frame<'a> {
    pub lang: Lang,
    /// The path and query of this page, for the language toggle.
    pub here: &'a str,
    pub user: Option<(&'a str, Role)>,
    pub csrf: Option<&'a str>,
}

const NAV: [(&str, &str, &str); 5] = [
    ("/console", "Genel bakış", "Overview"),
    ("/console/person", "Kişi ara", "Find a person"),
    ("/console/jobs", "İşler", "Jobs"),
    ("/console/alerts", "Uyarılar", "Alerts"),
    ("/console/links", "Test bağlantısı", "Test link"),
];

/// `here` with `lang=<code>` instead of any `lang` it had.
fn with_lang(here: &str, lang: Lang) -> String {
    let (path, query) = here.split_once('?').unwrap_or((here, ""));
    let mut q: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k != "lang")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    q.push(("lang".into(), lang.code().into()));
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q)
        .finish();
    format!("{path}?{encoded}")
}

pub fn page(f: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let lang = f.lang;
    let other = lang.other();
    let path = f.here.split('?').next().unwrap_or("");
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · iys-relay" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    strong { "iys-relay" }
                    @if let Some((name, role)) = f.user {
                        nav {
                            @for (href, tr, en) in NAV {
                                a href=(href) aria-current=[(path == href).then_some("page")] { (t(lang, tr, en)) }
                            }
                            @if role >= Role::Admin {
                                a href="/console/actions" aria-current=[(path == "/console/actions").then_some("page")] {
                                    (t(lang, "İşlem kaydı", "Action log"))
                                }
                            }
                        }
                        div.who {
                            span.user { (name) " (" (role_name(lang, role)) ")" }
                            a href=(with_lang(f.here, other)) hreflang=(other.code()) lang=(other.code()) { (other.name()) }
                            @if let Some(csrf) = f.csrf {
                                form method="post" action="/console/logout" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button type="submit" { (t(lang, "Çıkış", "Sign out")) }
                                }
                            }
                        }
                    } @else {
                        div.who {
                            a href=(with_lang(f.here, other)) hreflang=(other.code()) lang=(other.code()) { (other.name()) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn role_name(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Viewer => t(lang, "izleyici", "viewer"),
        Role::Operator => t(lang, "operatör", "operator"),
        Role::Admin => t(lang, "yönetici", "admin"),
    }
}

pub fn respond(status: StatusCode, lang: Lang, markup: Markup) -> Response {
    crate::http::page::respond(status, lang, &CSP, markup)
}

/// What stops a console request, shown as a page in both languages.
#[derive(Debug)]
pub enum Refused {
    /// Not signed in (or the session ended): to the sign-in page, then back to `next`.
    SignIn {
        next: String,
    },
    Forbidden,
    /// A form post without its CSRF token, or from another site.
    Forged,
    BadRequest(String),
    NotFound,
    RateLimited(std::time::Duration),
    /// The database did not answer; nothing was changed.
    Unavailable,
}

impl From<crate::store::StoreError> for Refused {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %crate::telemetry::chain(&e), "console: the store failed");
        Refused::Unavailable
    }
}

impl From<crate::error::ApiError> for Refused {
    fn from(e: crate::error::ApiError) -> Self {
        if e.status.is_server_error() {
            tracing::error!(error = %e.message, "console: a service call failed");
            Refused::Unavailable
        } else {
            Refused::BadRequest(e.message)
        }
    }
}

impl From<crate::ops::OpsError> for Refused {
    fn from(e: crate::ops::OpsError) -> Self {
        use crate::ops::OpsError;
        match e {
            OpsError::Input(_) | OpsError::Calendar(_) => {
                Refused::BadRequest(crate::domain::mask::text(&e.to_string()))
            }
            other => {
                tracing::error!(error = %crate::telemetry::chain(&other), "console: an operation failed");
                Refused::Unavailable
            }
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, tr, en, detail): (StatusCode, &str, &str, Option<String>) = match self {
            Refused::SignIn { next } => {
                let to = format!(
                    "/console/login?{}",
                    form_urlencoded::Serializer::new(String::new())
                        .append_pair("next", &next)
                        .finish()
                );
                let mut r = StatusCode::SEE_OTHER.into_response();
                if let Ok(v) = HeaderValue::try_from(to) {
                    r.headers_mut().insert(header::LOCATION, v);
                }
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return r;
            }
            Refused::Forbidden => (
                StatusCode::FORBIDDEN,
                "Bu işlem için yetkiniz yok.",
                "Your role does not allow this.",
                None,
            ),
            Refused::Forged => (
                StatusCode::FORBIDDEN,
                "Form doğrulanamadı (güvenlik belirteci eksik veya yanlış). Sayfayı yenileyip yeniden deneyin.",
                "The form could not be verified (security token missing or wrong). Reload the page and try again.",
                None,
            ),
            Refused::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                "İstek anlaşılamadı.",
                "The request could not be understood.",
                Some(why),
            ),
            Refused::NotFound => (
                StatusCode::NOT_FOUND,
                "Böyle bir sayfa yok.",
                "No such page.",
                None,
            ),
            Refused::RateLimited(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Çok fazla deneme. Biraz bekleyip yeniden deneyin.",
                "Too many attempts. Wait a little and try again.",
                Some(format!("{} s", wait.as_secs().max(1))),
            ),
            Refused::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Veritabanı şu anda yanıt vermiyor; hiçbir şey değiştirilmedi.",
                "The database is not answering; nothing was changed.",
                None,
            ),
        };
        let f = Frame {
            lang: Lang::Tr,
            here: "/console",
            user: None,
            csrf: None,
        };
        let body = html! {
            section {
                h1 { (tr) }
                p lang="en" { (en) }
                @if let Some(d) = &detail { p.muted { (d) } }
                p { a href="/console" { "Konsola dön / Back to the console" } }
            }
        };
        let mut r = respond(status, Lang::Tr, page(&f, tr, body));
        if status == StatusCode::TOO_MANY_REQUESTS
            && let Some(d) = detail.as_deref().and_then(|d| d.strip_suffix(" s"))
            && let Ok(v) = HeaderValue::try_from(d)
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}
