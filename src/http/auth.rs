//! Bearer-token authentication for the JSON APIs (constant-time comparison).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The name of the API token the caller presented (for audit fields and logs).
#[derive(Debug, Clone)]
pub struct ApiCaller(pub String);

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        let presented = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::unauthorized("Authorization must be a Bearer token"))?
            .trim();
        // Compare against every token so timing does not tell which one nearly matched.
        let mut found = None;
        for t in &state.config.api.tokens {
            if bool::from(t.token.expose().as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(t.name.clone());
            }
        }
        found
            .map(ApiCaller)
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}
