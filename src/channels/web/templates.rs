//! The pages, server-rendered with maud (checked at compile time, escaped by default): Turkish
//! first, English second, no JavaScript, one button, inline CSS allowed by its CSP hash.

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::form::CONFIRM_FIELD;
use crate::domain::ConsentType;
use crate::http::lang::Lang;

const CSS: &str = "*{box-sizing:border-box}\
body{margin:0;font:1.0625rem/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}\
main{max-width:32rem;margin:0 auto;padding:1rem}\
nav{text-align:right;margin:0 0 .75rem}\
.card{background:#fff;border-radius:.75rem;padding:1.5rem 1.25rem;box-shadow:0 1px 3px rgba(0,0,0,.15)}\
h1{font-size:1.375rem;line-height:1.3;margin:0 0 1rem}\
p{margin:0 0 1rem}\
.card>:last-child{margin-bottom:0}\
button{display:block;width:100%;min-height:3rem;margin:1.5rem 0 1rem;padding:.75rem 1rem;font:inherit;font-weight:700;color:#fff;background:#0b5cad;border:2px solid #0b5cad;border-radius:.5rem;cursor:pointer}\
button:hover{background:#084a8c}\
button:focus-visible,a:focus-visible{outline:3px solid #b35c00;outline-offset:3px}\
a{color:#0b5cad}\
.note{font-size:.9375rem;color:#404040}\
.ok{color:#0a6b2d}";

static CSP: LazyLock<HeaderValue> = LazyLock::new(|| crate::http::page::csp_for(CSS));

/// A page with the security headers every response of this channel carries.
pub fn respond(status: StatusCode, lang: Lang, page: Markup) -> Response {
    crate::http::page::respond(status, lang, &CSP, page)
}

fn layout(lang: Lang, title: &str, toggle: bool, body: Markup) -> Markup {
    let other = lang.other();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex, nofollow";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    @if toggle {
                        nav {
                            a href={ "?lang=" (other.code()) } hreflang=(other.code())
                                lang=(other.code()) { (other.name()) }
                        }
                    }
                    div.card { (body) }
                }
            }
        }
    }
}

/// How each language names the channel (inside a sentence) and the button.
fn channel(lang: Lang, t: ConsentType) -> (&'static str, &'static str) {
    match (lang, t) {
        (Lang::Tr, ConsentType::Mesaj) => ("SMS (kısa mesaj)", "SMS iletilerini durdur"),
        (Lang::Tr, ConsentType::Arama) => ("telefon araması", "Aramaları durdur"),
        (Lang::Tr, ConsentType::Eposta) => ("e-posta", "E-postaları durdur"),
        (Lang::En, ConsentType::Mesaj) => ("text messages (SMS)", "Stop text messages"),
        (Lang::En, ConsentType::Arama) => ("phone calls", "Stop calls"),
        (Lang::En, ConsentType::Eposta) => ("e-mails", "Stop e-mails"),
    }
}

/// GET: names the brand and the channel, ONE button; opening it changes nothing.
pub fn confirm(lang: Lang, brand: &str, t: ConsentType) -> Markup {
    let (ch, button) = channel(lang, t);
    let title = match lang {
        Lang::Tr => format!("{brand}: ticari iletileri durdurma"),
        Lang::En => format!("{brand}: stop commercial messages"),
    };
    let body = html! {
        @match lang {
            Lang::Tr => {
                h1 { "Ticari iletileri durdurma" }
                p { strong { (brand) } " markasının size " strong { (ch) }
                    " yoluyla ticari ileti göndermesini istemiyorsanız aşağıdaki düğmeye basın." }
            }
            Lang::En => {
                h1 { "Stop commercial messages" }
                p { "If you no longer want " strong { (brand) } " to send you commercial "
                    strong { (ch) } ", press the button below." }
            }
        }
        form method="post" {
            input type="hidden" name=(CONFIRM_FIELD.0) value=(CONFIRM_FIELD.1);
            input type="hidden" name="lang" value=(lang.code());
            button type="submit" { (button) }
        }
        p.note { @match lang {
            Lang::Tr => "Bu sayfayı açmak hiçbir şeyi değiştirmez; isteğiniz yalnızca düğmeye \
                         bastığınızda kaydedilir ve İleti Yönetim Sistemi'ne (İYS) bildirilir.",
            Lang::En => "Opening this page changes nothing: your request is recorded only when \
                         you press the button, and is reported to Türkiye's consent register (İYS).",
        } }
    };
    layout(lang, &title, true, body)
}

/// POST result: recorded (or already recorded before). No event number: it would tell
/// strangers how many people opted out.
pub fn done(lang: Lang, brand: &str, t: ConsentType, duplicate: bool) -> Markup {
    let (ch, _) = channel(lang, t);
    let body = html! {
        @match lang {
            Lang::Tr => {
                h1.ok { "İsteğiniz alındı" }
                @if duplicate { p { "Bu isteğiniz daha önce kaydedilmişti; başka bir şey yapmanız gerekmiyor." } }
                p { strong { (brand) } " markası en geç 3 iş günü içinde size " (ch)
                    " yoluyla ticari ileti göndermeyi durduracak." }
            }
            Lang::En => {
                h1.ok { "Request received" }
                @if duplicate { p { "We had already recorded this request; there is nothing more to do." } }
                p { strong { (brand) } " will stop sending you commercial " (ch)
                    " within 3 business days at the latest." }
            }
        }
    };
    let title = match lang {
        Lang::Tr => "İsteğiniz alındı",
        Lang::En => "Request received",
    };
    layout(lang, title, false, body)
}

/// Everything that is not a confirmation or a result. Never says whether a person exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    NotFound,
    Expired,
    RateLimited(Duration),
    CrossSite,
    BadRequest,
    Unavailable,
}

impl Problem {
    pub fn status(self) -> StatusCode {
        match self {
            Problem::NotFound => StatusCode::NOT_FOUND,
            Problem::Expired => StatusCode::GONE,
            Problem::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Problem::CrossSite => StatusCode::FORBIDDEN,
            Problem::BadRequest => StatusCode::BAD_REQUEST,
            Problem::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn text(self, lang: Lang) -> (&'static str, &'static str) {
        use Lang::*;
        match (self, lang) {
            (Problem::NotFound, Tr) => (
                "Bağlantı geçersiz",
                "Bu bağlantı tanınmadı. Mesajdaki bağlantıyı eksiksiz açtığınızdan emin olun.",
            ),
            (Problem::NotFound, En) => (
                "Link not valid",
                "This link was not recognised. Make sure you opened the whole link from the message.",
            ),
            (Problem::Expired, Tr) => (
                "Bağlantının süresi dolmuş",
                "Bu bağlantı artık geçerli değil.",
            ),
            (Problem::Expired, En) => ("Link expired", "This link is no longer valid."),
            (Problem::RateLimited(_), Tr) => (
                "Çok fazla istek",
                "Lütfen bir dakika sonra yeniden deneyin.",
            ),
            (Problem::RateLimited(_), En) => ("Too many requests", "Please try again in a minute."),
            (Problem::CrossSite, Tr) => (
                "İstek reddedildi",
                "Bu istek başka bir siteden geldiği için kabul edilmedi. Mesajınızdaki bağlantıyı açıp düğmeye basın.",
            ),
            (Problem::CrossSite, En) => (
                "Request refused",
                "This request came from another website and was not accepted. Open the link in your message and press the button.",
            ),
            (Problem::BadRequest, Tr) => (
                "İstek anlaşılamadı",
                "Lütfen bağlantıyı yeniden açıp düğmeye basın.",
            ),
            (Problem::BadRequest, En) => (
                "Request not understood",
                "Please open the link again and press the button.",
            ),
            (Problem::Unavailable, Tr) => (
                "Şu anda kaydedemiyoruz",
                "Lütfen birkaç dakika sonra yeniden deneyin.",
            ),
            (Problem::Unavailable, En) => (
                "We cannot record this right now",
                "Please try again in a few minutes.",
            ),
        }
    }

    pub fn page(self, lang: Lang, toggle: bool) -> Markup {
        let (title, detail) = self.text(lang);
        let elsewhere = matches!(self, Problem::NotFound | Problem::Expired);
        let body = html! {
            h1 { (title) }
            p { (detail) }
            @if elsewhere { p.note { @match lang {
                Lang::Tr => { "İzinlerinizi her zaman " a href="https://www.iys.org.tr" { "İleti Yönetim Sistemi" } " üzerinden de yönetebilirsiniz." }
                Lang::En => { "You can always manage your consents at " a href="https://www.iys.org.tr" { "İYS" } " as well." }
            } } }
        };
        layout(lang, title, toggle, body)
    }

    pub fn respond(self, lang: Lang, toggle: bool) -> Response {
        let mut r = respond(self.status(), lang, self.page(lang, toggle));
        if let Problem::RateLimited(wait) = self {
            let secs = wait.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::try_from(secs) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_page_names_brand_and_channel_and_escapes() {
        let s = confirm(Lang::Tr, "Ayşe & <Kardeşler>", ConsentType::Mesaj).into_string();
        assert!(s.starts_with("<!DOCTYPE html><html lang=\"tr\">"), "{s}");
        assert!(s.contains("Ayşe &amp; &lt;Kardeşler&gt;"), "{s}");
        assert!(s.contains("SMS iletilerini durdur"));
        assert_eq!(s.matches("<button").count(), 1, "ONE button");
        assert!(s.contains("name=\"viewport\""));
        assert!(!s.contains("<script"));
        let en = confirm(Lang::En, "Demo", ConsentType::Eposta).into_string();
        assert!(
            en.contains("lang=\"en\"") && en.contains("Stop e-mails"),
            "{en}"
        );
        assert!(
            en.contains("href=\"?lang=tr\""),
            "toggle back to Turkish: {en}"
        );
    }

    #[test]
    fn problems_have_their_statuses_and_no_personal_hints() {
        assert_eq!(Problem::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(Problem::Expired.status(), StatusCode::GONE);
        let r = Problem::RateLimited(Duration::from_millis(1500)).respond(Lang::Tr, false);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        let s = Problem::NotFound.page(Lang::Tr, true).into_string();
        assert!(s.contains("Bağlantı geçersiz"));
    }

    #[test]
    fn security_headers_and_style_hash() {
        let r = respond(StatusCode::OK, Lang::En, html! { p { "x" } });
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(csp.contains("form-action 'self'"));
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(r.headers()[header::CONTENT_LANGUAGE], "en");
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
