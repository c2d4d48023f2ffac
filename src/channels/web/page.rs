//! `GET /r/{code}` shows the confirmation page and never changes anything (link previewers and
//! mail scanners fetch every link); `POST /r/{code}` records the rejection (button or RFC 8058
//! one-click) and answers 200 with the result page, never a redirect.

use crate::telemetry::chain;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::code;
use super::form::{self, PostKind, Provenance, Refusal};
use super::templates::{self, Problem};
use crate::domain::{Channel, ConsentIntent, Evidence, Recipient, Source, Status};
use crate::http::lang::Lang;
use crate::http::request_meta;
use crate::state::AppState;
use crate::store::Link;

const MAX_USER_AGENT_CHARS: usize = 512;

/// The client IP (see [`request_meta::client_ip`]).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let ip = request_meta::client_ip(&st.config.server, &parts.headers, peer);
        Ok(ClientIp(
            ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

fn header(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn query_lang(q: Option<&str>) -> Option<String> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "lang")
        .map(|(_, v)| v.into_owned())
}

/// The link behind a code, or the problem page to show instead.
async fn find(st: &AppState, code: &str) -> Result<Link, Problem> {
    if !code::is_well_formed(code) {
        return Err(Problem::NotFound);
    }
    let link = st
        .ledger
        .store()
        .link_by_code_hash(&code::hash(code))
        .await
        .map_err(|e| {
            tracing::warn!(error = %chain(&e), "link lookup failed");
            Problem::Unavailable
        })?
        .ok_or(Problem::NotFound)?;
    if link.is_expired(st.ledger.clock().now()) {
        return Err(Problem::Expired);
    }
    Ok(link)
}

fn brand_name(st: &AppState, brand_code: i64) -> String {
    st.config
        .brand_by_code(brand_code)
        .map(|b| b.name.clone())
        .unwrap_or_else(|| format!("İYS {brand_code}"))
}

pub async fn show(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let lang = Lang::pick(
        query_lang(q.as_deref()).as_deref(),
        header(&headers, header::ACCEPT_LANGUAGE),
    );
    if let Err(wait) = st.limits.link_get.check(&ip.to_string()) {
        return Problem::RateLimited(wait).respond(lang, false);
    }
    match find(&st, &code).await {
        Ok(link) => templates::respond(
            StatusCode::OK,
            lang,
            templates::confirm(lang, &brand_name(&st, link.brand_code), link.consent_type),
        ),
        Err(p) => p.respond(lang, true),
    }
}

/// Origins a confirmation may come from besides the request's own host.
fn allowed_origins(st: &AppState) -> Vec<String> {
    let cfg = &st.config;
    [
        cfg.links.link_base(&cfg.server.public_base_url),
        cfg.server.public_base_url.clone(),
    ]
    .iter()
    .filter_map(|u| url::Url::parse(u).ok())
    .map(|u| u.origin().ascii_serialization())
    .collect()
}

pub async fn submit(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let accept = header(&headers, header::ACCEPT_LANGUAGE);
    let fields = form::parse(header(&headers, header::CONTENT_TYPE), body).await;
    let explicit = fields
        .as_ref()
        .ok()
        .and_then(|f| f.iter().find(|(k, _)| k == "lang").map(|(_, v)| v.clone()))
        .or_else(|| query_lang(q.as_deref()));
    let lang = Lang::pick(explicit.as_deref(), accept);
    if let Err(wait) = st.limits.link_post.check(&ip.to_string()) {
        return Problem::RateLimited(wait).respond(lang, false);
    }
    let Ok(fields) = fields else {
        return Problem::BadRequest.respond(lang, false);
    };
    let provenance = Provenance {
        sec_fetch_site: headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        origin: header(&headers, header::ORIGIN),
        host: header(&headers, header::HOST),
    };
    let kind = match form::classify(&fields, &provenance, &allowed_origins(&st)) {
        Ok(k) => k,
        Err(Refusal::CrossSite) => return Problem::CrossSite.respond(lang, false),
        Err(Refusal::NotAConfirmation) => return Problem::BadRequest.respond(lang, false),
    };
    let link = match find(&st, &code).await {
        Ok(l) => l,
        Err(p) => return p.respond(lang, false),
    };
    let user_agent = header(&headers, header::USER_AGENT)
        .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>());
    match record(&st, &link, kind, fields, ip, user_agent).await {
        Ok(duplicate) => templates::respond(
            StatusCode::OK,
            lang,
            templates::done(
                lang,
                &brand_name(&st, link.brand_code),
                link.consent_type,
                duplicate,
            ),
        ),
        Err(p) => p.respond(lang, false),
    }
}

/// One RET per link: the dedupe key `link:<id>` makes repeated clicks (and a one-click POST
/// after a button press) return the first event unchanged.
async fn record(
    st: &AppState,
    link: &Link,
    kind: PostKind,
    fields: form::Fields,
    ip: IpAddr,
    user_agent: Option<String>,
) -> Result<bool, Problem> {
    let recipient = Recipient::parse_for(&link.recipient, link.consent_type).map_err(|e| {
        tracing::error!(link_id = link.id, error = %chain(&e), "stored link has an invalid recipient");
        Problem::Unavailable
    })?;
    let mut form = Map::new();
    for (k, v) in fields {
        form.entry(k).or_insert(Value::String(v));
    }
    let via = match kind {
        PostKind::OneClick => "one_click",
        PostKind::Page => "page",
    };
    let intent = ConsentIntent {
        brand_code: link.brand_code,
        recipient,
        recipient_type: link.recipient_type,
        consent_type: link.consent_type,
        status: Status::Ret,
        source: Source::HsWeb,
        channel: Channel::Web,
        consent_at: st.ledger.clock().now(),
        provider: "web".into(),
        provider_message_id: format!("link:{}", link.id),
        evidence: Evidence {
            raw: json!({ "form": form, "via": via, "link_id": link.id, "campaign": link.campaign }),
            ip: Some(ip.to_string()),
            user_agent,
            call_id: None,
        },
    };
    match st.ledger.record(intent).await {
        Ok(o) => {
            tracing::info!(
                link_id = link.id,
                event_id = o.event_id,
                duplicate = o.duplicate,
                via,
                "web opt-out"
            );
            Ok(o.duplicate)
        }
        Err(e) => {
            tracing::error!(link_id = link.id, error = %chain(&e), "web opt-out not recorded");
            Err(Problem::Unavailable)
        }
    }
}
