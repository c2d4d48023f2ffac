//! Signing in and staying signed in.
//!
//! - A session is a random 256-bit cookie (`HttpOnly`, `SameSite=Strict`, `Secure`, path
//!   `/console`); the database keeps only its SHA-256, with an absolute expiry and an idle one.
//! - Every form carries the session's CSRF token, compared in constant time; the sign-in form,
//!   before any session exists, carries a token it also sets as a cookie (double submit). Posts
//!   a browser marks as cross-site (`Sec-Fetch-Site`, `Origin`) are refused before either.
//! - Sign-ins are rate-limited per client IP; a user's `max_failed_logins`-th failure in a row
//!   locks it for `lockout_minutes`, correct password or not. An unknown name costs the same
//!   hash as a wrong password, so timing does not tell which names exist.
//! - Sign-ins, failures and sign-outs go to the console's action log like every action.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use maud::html;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::password;
use super::view::{Frame, Refused, page, respond, t, when};
use crate::http::lang::Lang;
use crate::state::AppState;
use crate::store::console::{ConsoleSession, NewAction, NewSession, Role};

pub const SESSION_COOKIE: &str = "iys_console";
const LOGIN_COOKIE: &str = "iys_console_login";
pub const LANG_COOKIE: &str = "iys_console_lang";
/// A session's last-seen time is written at most this often (a page view is not a write).
const TOUCH_EVERY_SECS: i64 = 60;

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(st: &AppState, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if st.config.console.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::try_from(format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(""))
}

/// The value of `name` in a query string.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The page language: `?lang=` first, then the remembered choice, then `Accept-Language`.
pub fn lang_of(parts_headers: &HeaderMap, query: Option<&str>) -> Lang {
    let explicit = query_param(query, "lang");
    let remembered = cookie(parts_headers, LANG_COOKIE).map(str::to_string);
    Lang::pick(
        explicit.or(remembered).as_deref(),
        parts_headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn client_ip(st: &AppState, parts: &Parts) -> Option<IpAddr> {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    crate::http::request_meta::client_ip(&st.config.server, &parts.headers, peer)
}

/// A post the browser says came from another site (or another origin) is refused outright.
/// `Sec-Fetch-Site` decides when the browser sends it; otherwise `Origin` must name this host.
/// (Under the pages' `Referrer-Policy: no-referrer` a browser sends `Origin: null` even for the
/// page's own forms, so `null` alone proves nothing.)
fn cross_site(h: &HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let origin = h.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(o), Some(host)) if o != "null" => url::Url::parse(o).ok().is_none_or(|u| {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}{port}", u.host_str().unwrap_or("")) != host
        }),
        _ => false,
    }
}

/// A urlencoded form body, read by name.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request from a signed-in user.
pub struct Signed {
    pub session: ConsoleSession,
    token_hash: String,
    pub lang: Lang,
    pub ip: Option<IpAddr>,
    /// Path and query, for the language toggle and the way back after signing in again.
    pub here: String,
    headers: HeaderMap,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Refused> {
        if !st.config.console.enabled {
            return Err(Refused::NotFound);
        }
        let here = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/console".into());
        let back = if parts.method == axum::http::Method::GET {
            here.clone()
        } else {
            "/console".into()
        };
        let sign_in = || Refused::SignIn { next: back.clone() };
        let store = st.ledger.store();
        let now = st.ledger.clock().now();
        let idle = Duration::minutes(i64::from(st.config.console.idle_minutes));
        let (hash, session) = match proxy_user(st, &parts.headers) {
            Some(name) => {
                let ip = client_ip(st, parts);
                single_sign_on(st, &name, ip, idle).await?
            }
            None => {
                let token = cookie(&parts.headers, SESSION_COOKIE).ok_or_else(sign_in)?;
                let hash = token_hash(token);
                let session = store
                    .console_session(&hash, now)
                    .await?
                    .ok_or_else(sign_in)?;
                if now - session.last_seen > idle {
                    store.end_session(&hash).await?;
                    return Err(sign_in());
                }
                (hash, session)
            }
        };
        if (now - session.last_seen).num_seconds() >= TOUCH_EVERY_SECS {
            store.touch_session(&hash, now).await?;
        }
        Ok(Signed {
            lang: lang_of(&parts.headers, parts.uri.query()),
            ip: client_ip(st, parts),
            token_hash: hash,
            session,
            here,
            headers: parts.headers.clone(),
        })
    }
}

/// The user a trusted reverse proxy says it authenticated (single sign-on), when
/// `console.trusted_user_header` names a header and `server.trusted_proxy` is on.
fn proxy_user(st: &AppState, h: &HeaderMap) -> Option<String> {
    let header = st.config.console.trusted_user_header.trim();
    if header.is_empty() || !st.config.server.trusted_proxy {
        return None;
    }
    h.get(header)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The session of a user the proxy signed in: one database row per user, keyed `sso:<name>`
/// (never a hex digest, so no cookie can name it), opened on the first request, with the same
/// expiry rules and its own CSRF token. The user must exist here and be enabled: the proxy
/// says who, the console's own table says what they may do.
async fn single_sign_on(
    st: &AppState,
    name: &str,
    ip: Option<IpAddr>,
    idle: Duration,
) -> Result<(String, ConsoleSession), Refused> {
    let store = st.ledger.store();
    let now = st.ledger.clock().now();
    let key = format!("sso:{name}");
    if let Some(s) = store.console_session(&key, now).await? {
        if now - s.last_seen <= idle {
            return Ok((key, s));
        }
        store.end_session(&key).await?;
    }
    let user = match store.console_user(name).await? {
        Some(u) if !u.disabled => u,
        _ => {
            log_sign_in(
                st,
                name,
                "login_refused",
                ip,
                serde_json::json!({"why": "proxy user unknown or disabled"}),
            )
            .await?;
            return Err(Refused::Forbidden);
        }
    };
    store
        .login_succeeded(
            &NewSession {
                token_hash: key.clone(),
                user_id: user.id,
                csrf_token: random_token(),
                expires_at: now
                    + Duration::hours(i64::from(st.config.console.session_hours.max(1))),
            },
            now,
        )
        .await?;
    log_sign_in(
        st,
        name,
        "login",
        ip,
        serde_json::json!({"via": "proxy header"}),
    )
    .await?;
    let s = store
        .console_session(&key, now)
        .await?
        .ok_or(Refused::Unavailable)?;
    Ok((key, s))
}

impl Signed {
    pub fn role(&self) -> Role {
        self.session.user.role
    }

    pub fn username(&self) -> &str {
        &self.session.user.username
    }

    /// A query parameter of this request.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(self.here.split_once('?').map(|(_, q)| q), name)
    }

    /// Refuses a user whose role is below `role`.
    pub fn require(&self, role: Role) -> Result<(), Refused> {
        if self.role() >= role {
            Ok(())
        } else {
            Err(Refused::Forbidden)
        }
    }

    /// A form post of this session: same site, with this session's CSRF token.
    pub fn form(&self, body: &[u8]) -> Result<Form, Refused> {
        if cross_site(&self.headers) {
            return Err(Refused::Forged);
        }
        let form = Form::parse(body);
        if !same(form.get("csrf").unwrap_or(""), &self.session.csrf_token) {
            return Err(Refused::Forged);
        }
        Ok(form)
    }

    pub fn frame(&self) -> Frame<'_> {
        Frame {
            lang: self.lang,
            here: &self.here,
            user: Some((self.username(), self.role())),
            csrf: Some(&self.session.csrf_token),
        }
    }

    /// Writes the action to the log before it is carried out: nothing is done unrecorded.
    pub async fn record(
        &self,
        st: &AppState,
        action: &str,
        target: &str,
        reason: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<i64, Refused> {
        Ok(st
            .ledger
            .store()
            .record_action(&NewAction {
                at: st.ledger.clock().now(),
                username: self.username().to_string(),
                action: action.into(),
                target: target.into(),
                reason: reason.map(str::to_string),
                detail,
                ip: self.ip.map(|i| i.to_string()),
            })
            .await?)
    }
}

fn safe_next(next: Option<&str>) -> &str {
    // Only a path of this console: never an open redirect to another site.
    match next {
        Some(n) if n.starts_with("/console") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/console",
    }
}

/// The sign-in form, with a fresh double-submit token.
fn login_page(
    st: &AppState,
    lang: Lang,
    status: StatusCode,
    next: &str,
    msg: Option<String>,
) -> Response {
    let token = random_token();
    let f = Frame {
        lang,
        here: "/console/login",
        user: None,
        csrf: None,
    };
    let body = html! {
        section.login {
            h1 { (t(lang, "Uyum konsolu: giriş", "Compliance console: sign in")) }
            @if let Some(m) = &msg { p.msg.err role="alert" { (m) } }
            form method="post" action="/console/login" {
                input type="hidden" name="login_csrf" value=(token);
                input type="hidden" name="next" value=(next);
                label for="username" { (t(lang, "Kullanıcı adı", "User name")) }
                input #username type="text" name="username" autocomplete="username" required autofocus;
                label for="password" { (t(lang, "Parola", "Password")) }
                input #password type="password" name="password" autocomplete="current-password" required;
                div { button.primary type="submit" { (t(lang, "Giriş", "Sign in")) } }
            }
        }
    };
    let mut r = respond(status, lang, page(&f, t(lang, "Giriş", "Sign in"), body));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(st, LOGIN_COOKIE, &token, 3600),
    );
    r
}

pub async fn login_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, Refused> {
    if !st.config.console.enabled {
        return Err(Refused::NotFound);
    }
    let lang = lang_of(&headers, uri.query());
    let next = query_param(uri.query(), "next");
    Ok(login_page(
        &st,
        lang,
        StatusCode::OK,
        safe_next(next.as_deref()),
        None,
    ))
}

async fn log_sign_in(
    st: &AppState,
    username: &str,
    action: &str,
    ip: Option<IpAddr>,
    detail: serde_json::Value,
) -> Result<(), Refused> {
    st.ledger
        .store()
        .record_action(&NewAction {
            at: st.ledger.clock().now(),
            username: username.chars().take(64).collect(),
            action: action.into(),
            target: "console".into(),
            reason: None,
            detail,
            ip: ip.map(|i| i.to_string()),
        })
        .await?;
    Ok(())
}

fn locked_message(lang: Lang, until: DateTime<Utc>) -> String {
    match lang {
        Lang::Tr => format!(
            "Çok sayıda hatalı deneme: hesap {} saatine kadar kilitli.",
            when(until)
        ),
        Lang::En => format!(
            "Too many failed attempts: the account is locked until {} (Istanbul time).",
            when(until)
        ),
    }
}

pub async fn login(
    State(st): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, Refused> {
    if !st.config.console.enabled {
        return Err(Refused::NotFound);
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, st.config.server.max_body_bytes)
        .await
        .map_err(|_| Refused::BadRequest("the form is too large".into()))?;
    let lang = lang_of(&parts.headers, parts.uri.query());
    let ip = client_ip(&st, &parts);
    if let Some(ip) = ip {
        st.limits
            .console_login
            .check(&ip.to_string())
            .map_err(Refused::RateLimited)?;
    }
    let form = Form::parse(&body);
    if cross_site(&parts.headers)
        || !same(
            form.get("login_csrf").unwrap_or(""),
            cookie(&parts.headers, LOGIN_COOKIE).unwrap_or(""),
        )
    {
        return Err(Refused::Forged);
    }
    let next = safe_next(form.get("next")).to_string();
    let username = form.get("username").unwrap_or("").trim();
    let pw = form.get("password").unwrap_or("");
    let wrong = t(
        lang,
        "Kullanıcı adı veya parola yanlış.",
        "Wrong user name or password.",
    );
    let cfg = &st.config.console;
    let store = st.ledger.store();
    let now = st.ledger.clock().now();
    let user = match store.console_user(username).await? {
        Some(u) if !u.disabled => u,
        _ => {
            password::verify_nobody(pw);
            log_sign_in(
                &st,
                username,
                "login_failed",
                ip,
                serde_json::json!({"why": "unknown or disabled user"}),
            )
            .await?;
            return Ok(login_page(
                &st,
                lang,
                StatusCode::UNAUTHORIZED,
                &next,
                Some(wrong.into()),
            ));
        }
    };
    if let Some(until) = user.locked_until.filter(|u| *u > now) {
        log_sign_in(
            &st,
            username,
            "login_refused",
            ip,
            serde_json::json!({"why": "locked", "until": until}),
        )
        .await?;
        return Ok(login_page(
            &st,
            lang,
            StatusCode::FORBIDDEN,
            &next,
            Some(locked_message(lang, until)),
        ));
    }
    let hash = user.password_hash.clone();
    let given = pw.to_string();
    let ok = tokio::task::spawn_blocking(move || password::verify(&hash, &given))
        .await
        .unwrap_or(false);
    if !ok {
        let until = now + Duration::minutes(i64::from(cfg.lockout_minutes));
        let max = i64::from(cfg.max_failed_logins.max(1));
        store.login_failed(user.id, max, until, now).await?;
        let locks = user.failed_logins + 1 >= max;
        log_sign_in(
            &st,
            username,
            "login_failed",
            ip,
            serde_json::json!({"why": "wrong password", "locked": locks}),
        )
        .await?;
        let msg = if locks {
            locked_message(lang, until)
        } else {
            wrong.to_string()
        };
        return Ok(login_page(
            &st,
            lang,
            StatusCode::UNAUTHORIZED,
            &next,
            Some(msg),
        ));
    }
    let token = random_token();
    let hours = i64::from(cfg.session_hours.max(1));
    store
        .login_succeeded(
            &NewSession {
                token_hash: token_hash(&token),
                user_id: user.id,
                csrf_token: random_token(),
                expires_at: now + Duration::hours(hours),
            },
            now,
        )
        .await?;
    log_sign_in(&st, username, "login", ip, serde_json::json!({})).await?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::try_from(next).unwrap_or(HeaderValue::from_static("/console")),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&st, SESSION_COOKIE, &token, hours * 3600),
    );
    h.append(header::SET_COOKIE, set_cookie(&st, LOGIN_COOKIE, "", 0));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub async fn logout(
    State(st): State<AppState>,
    signed: Signed,
    body: Bytes,
) -> Result<Response, Refused> {
    signed.form(&body)?;
    signed
        .record(&st, "logout", "console", None, serde_json::json!({}))
        .await?;
    st.ledger.store().end_session(&signed.token_hash).await?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_static("/console/login"));
    h.append(header::SET_COOKIE, set_cookie(&st, SESSION_COOKIE, "", 0));
    Ok(r)
}

/// Remembers an explicit `?lang=` choice for the console's later pages.
pub async fn remember_lang(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let chosen = query_param(req.uri().query(), "lang");
    let mut r = next.run(req).await;
    if let Some(code) = chosen.filter(|c| c == "tr" || c == "en")
        && let Ok(v) = HeaderValue::try_from(format!(
            "{LANG_COOKIE}={code}; Path=/console; SameSite=Strict; Max-Age=31536000"
        ))
    {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
