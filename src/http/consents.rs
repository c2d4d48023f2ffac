//! Suppression API: "may we send to this person?", single and bulk (≤ 1000).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::auth::ApiCaller;
use super::json::{ApiJson, ApiQuery};
use crate::domain::Address;
use crate::domain::{Brand, ConsentType, Recipient, RecipientType};
use crate::error::ApiError;
use crate::ledger::SuppressionAnswer;
use crate::state::AppState;

pub const MAX_BULK: usize = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LookupQuery {
    /// Brand key (`demo`) or İYS brand code; optional when only one brand is configured.
    pub brand: Option<String>,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    #[serde(default)]
    pub recipient_type: Option<RecipientType>,
}

/// Resolves `?brand=` (key or numeric code) against the configured brands.
pub fn resolve_brand<'a>(st: &'a AppState, brand: Option<&str>) -> Result<&'a Brand, ApiError> {
    match brand {
        None if st.config.brands.len() == 1 => Ok(&st.config.brands[0]),
        None => Err(ApiError::bad_request(
            "brand_required",
            "several brands are configured: pass brand=<key or code>",
        )),
        Some(b) => st.config.brand_named(b).ok_or_else(|| {
            ApiError::bad_request("unknown_brand", format!("brand {b:?} is not configured"))
        }),
    }
}

#[utoipa::path(
    get, path = "/v1/consents/{recipient}", tag = "suppression",
    summary = "May brand B send type T to this person?",
    params(("recipient" = String, Path, description = "phone (any Turkish form) or e-mail"), LookupQuery),
    responses(
        (status = 200, description = "the answer, from the current-state table", body = SuppressionAnswer),
        crate::error::ReadErrors
    ),
    security(("bearer" = []))
)]
pub async fn lookup(
    State(st): State<AppState>,
    _caller: ApiCaller,
    Path(recipient): Path<String>,
    ApiQuery(q): ApiQuery<LookupQuery>,
) -> Result<Json<SuppressionAnswer>, ApiError> {
    let brand = resolve_brand(&st, q.brand.as_deref())?;
    let recipient = Recipient::parse_for(&recipient, q.consent_type)
        .map_err(|e| ApiError::unprocessable("invalid_recipient", e.to_string()))?;
    let recipient_type = q.recipient_type.unwrap_or(RecipientType::Bireysel);
    let key = Address {
        brand_code: brand.brand_code,
        recipient: recipient.as_str().to_string(),
        recipient_type,
        consent_type: q.consent_type,
    };
    let answer = st
        .ledger
        .policy
        .ask(st.ledger.store().as_ref(), &key)
        .await?;
    Ok(Json(answer))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub brand: Option<String>,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    #[serde(default)]
    pub recipient_type: Option<RecipientType>,
    pub recipients: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvalidRecipient {
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckResponse {
    /// One answer per valid input, in input order (normalised recipient in each).
    pub results: Vec<SuppressionAnswer>,
    /// Inputs that are not valid recipients for this type (by index; the value is not echoed).
    pub invalid: Vec<InvalidRecipient>,
}

#[utoipa::path(
    post, path = "/v1/consents/check", tag = "suppression",
    summary = "May we send? For up to 1000 recipients, answered in input order",
    request_body = CheckRequest,
    responses(
        (status = 200, description = "one answer per valid input; invalid inputs by index", body = CheckResponse),
        crate::error::WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn check(
    State(st): State<AppState>,
    _caller: ApiCaller,
    ApiJson(req): ApiJson<CheckRequest>,
) -> Result<Json<CheckResponse>, ApiError> {
    if req.recipients.len() > MAX_BULK {
        return Err(ApiError::unprocessable(
            "too_many_recipients",
            format!("at most {MAX_BULK} recipients per call"),
        ));
    }
    let brand = resolve_brand(&st, req.brand.as_deref())?;
    let recipient_type = req.recipient_type.unwrap_or(RecipientType::Bireysel);
    let mut parsed = Vec::with_capacity(req.recipients.len());
    let mut invalid = Vec::new();
    for (index, raw) in req.recipients.iter().enumerate() {
        match Recipient::parse_for(raw, req.consent_type) {
            Ok(r) => parsed.push(r.as_str().to_string()),
            Err(e) => invalid.push(InvalidRecipient {
                index,
                error: e.to_string(),
            }),
        }
    }
    let results = st
        .ledger
        .policy
        .ask_many(
            st.ledger.store().as_ref(),
            brand.brand_code,
            recipient_type,
            req.consent_type,
            &parsed,
        )
        .await?;
    Ok(Json(CheckResponse { results, invalid }))
}
