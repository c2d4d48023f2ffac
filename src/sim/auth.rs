//! `POST /oauth2/token` (password and refresh grants, JSON or form body) and the Bearer check
//! every API call starts with (H351, H190/H191, H353).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use serde_json::{Value, json};

use super::errors::{ApiError, ErrorItem, LoggedCode};
use super::limits::Limit;
use super::state::TokenInfo;
use super::{ClientIp, Simulator};

pub const ACCESS_LIFETIME_SECS: i64 = 2 * 3600;
pub const REFRESH_LIFETIME_SECS: i64 = 4 * 3600;

/// İYS's OAuth-style 400 body (not the `errors[]` shape).
fn oauth_error(error: &str, description: &str) -> Response {
    let mut r = (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    r.extensions_mut().insert(LoggedCode(error.to_string()));
    r
}

/// Reads the body as JSON or as `application/x-www-form-urlencoded`.
fn parse_fields(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, Value>> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        return Some(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        );
    }
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(m) => Some(m.into_iter().collect()),
        _ => None,
    }
}

/// One required string field, with the three documented failure texts:
/// (missing → invalid_request, wrong type → invalid_request, empty → invalid_grant).
fn field<'a>(
    f: &'a HashMap<String, Value>,
    key: &str,
    texts: [&'static str; 3],
) -> Result<&'a str, (&'static str, &'static str)> {
    match f.get(key) {
        None | Some(Value::Null) => Err(("invalid_request", texts[0])),
        Some(Value::String(s)) if s.is_empty() => Err(("invalid_grant", texts[2])),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(("invalid_request", texts[1])),
    }
}

/// A Keycloak-looking JWT: clients must treat it as opaque, but the shape is realistic.
fn mint(username: &str, exp: i64) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let jti = uuid::Uuid::new_v4();
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"jti": jti.to_string(), "exp": exp, "sub": username, "typ": "Bearer"}).to_string(),
    );
    let sig = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    format!("{header}.{payload}.{sig}")
}

pub async fn token(
    State(sim): State<Simulator>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = sim.now();
    if sim.config().rate_limits_enabled && !sim.lock().limiter.hit(Limit::TokenHourly, &ip, now) {
        return ApiError::code("H084").into_response();
    }
    let Some(f) = parse_fields(&headers, &body) else {
        return oauth_error("invalid_request", "Giriş yöntemi belirtilmemiş.");
    };
    let grant = match f.get("grant_type") {
        None | Some(Value::Null) => {
            return oauth_error("invalid_request", "Giriş yöntemi belirtilmemiş.");
        }
        Some(Value::String(s)) if s.is_empty() => {
            return oauth_error("invalid_grant", "Giriş yöntemi boş olamaz.");
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return oauth_error("invalid_grant", "Desteklenmeyen giriş yöntemi."),
    };
    let username = match grant {
        "password" => {
            let user = match field(
                &f,
                "username",
                [
                    "Kullanıcı adı verilmemiş.",
                    "Desteklenmeyen kullanıcı adı türü.",
                    "Kullanıcı adı boş bırakılamaz.",
                ],
            ) {
                Ok(u) => u,
                Err((e, d)) => return oauth_error(e, d),
            };
            let pass = match field(
                &f,
                "password",
                [
                    "Şifre verilmemiş.",
                    "Desteklenmeyen şifre türü.",
                    "Şifre boş bırakılamaz.",
                ],
            ) {
                Ok(p) => p,
                Err((e, d)) => return oauth_error(e, d),
            };
            let known = sim
                .config()
                .users
                .iter()
                .any(|u| u.username == user && u.password == pass);
            if !known {
                return oauth_error("invalid_request", "Kullanıcı kimlik bilgileri geçersiz.");
            }
            user.to_string()
        }
        "refresh_token" => {
            let rt = match field(
                &f,
                "refresh_token",
                [
                    "Yenileme jetonu verilmemiş.",
                    "Desteklenmeyen yenileme jetonu türü.",
                    "Yenileme jetonu boş olamaz.",
                ],
            ) {
                Ok(t) => t,
                Err((e, d)) => return oauth_error(e, d),
            };
            // Rotation: a refresh token works once; the answer carries its successor.
            let used = sim.lock().refresh_tokens.remove(rt);
            match used {
                Some(t) if t.expires_at > now => t.username,
                // Wording for an unknown/expired refresh token is undocumented [I].
                _ => return oauth_error("invalid_grant", "Geçersiz yenileme jetonu."),
            }
        }
        _ => return oauth_error("invalid_request", "Bilinmeyen giriş yöntemi."),
    };
    let access_exp = now + Duration::seconds(ACCESS_LIFETIME_SECS);
    let refresh_exp = now + Duration::seconds(REFRESH_LIFETIME_SECS);
    let access = mint(&username, access_exp.timestamp());
    let refresh = mint(&username, refresh_exp.timestamp());
    {
        let mut st = sim.lock();
        st.access_tokens.retain(|_, t| t.expires_at > now);
        st.refresh_tokens.retain(|_, t| t.expires_at > now);
        st.access_tokens.insert(
            access.clone(),
            TokenInfo {
                username: username.clone(),
                expires_at: access_exp,
            },
        );
        st.refresh_tokens.insert(
            refresh.clone(),
            TokenInfo {
                username,
                expires_at: refresh_exp,
            },
        );
    }
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": ACCESS_LIFETIME_SECS,
        "refresh_expires_in": REFRESH_LIFETIME_SECS,
        "token_type": "bearer",
    }))
    .into_response()
}

/// The bearer token from `Authorization`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl Simulator {
    /// [`Simulator::authorize`], then the JSON body: an unauthorised caller hears about its
    /// token, never about its body.
    pub(crate) fn authorize_json(
        &self,
        headers: &HeaderMap,
        iys: &str,
        brand: &str,
        body: &[u8],
    ) -> Result<(i64, serde_json::Value), ApiError> {
        let brand = self.authorize(headers, iys, brand)?;
        Ok((brand, super::consents::parse_json(body)?))
    }

    /// Steps (1) and (2) of every call: a live token, integer path codes, codes the user owns.
    /// Returns the brand code.
    pub(crate) fn authorize(
        &self,
        headers: &HeaderMap,
        iys: &str,
        brand: &str,
    ) -> Result<i64, ApiError> {
        let now = self.now();
        let user = bearer(headers)
            .and_then(|t| self.lock().access_tokens.get(t).cloned())
            .filter(|t| t.expires_at > now)
            .ok_or_else(|| ApiError::code("H351"))?;
        let iys_code: i64 = iys.parse().map_err(|_| {
            ApiError::from_item(ErrorItem::new("H190").at("iysCode").value(iys.into()))
        })?;
        let brand_code: i64 = brand.parse().map_err(|_| {
            ApiError::from_item(ErrorItem::new("H191").at("brandCode").value(brand.into()))
        })?;
        let cfg = self.config();
        let owns_hs = cfg
            .users
            .iter()
            .any(|u| u.username == user.username && u.iys_code == iys_code)
            && iys_code == cfg.iys_code;
        if !owns_hs {
            return Err(ApiError::from_item(
                ErrorItem::new("H353")
                    .with_message("iysCode, kullanıcı izinleriyle eşleştirilemiyor"),
            ));
        }
        if !cfg.brands.contains(&brand_code) {
            return Err(ApiError::from_item(
                ErrorItem::new("H353")
                    .with_message("brandCode, kullanıcı izinleriyle eşleştirilemiyor"),
            ));
        }
        Ok(brand_code)
    }
}
