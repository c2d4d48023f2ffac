//! Link minting API (bearer token): one link, or thousands for a campaign in one call.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::code::{self, LinkKey};
use crate::config::IysMode;
use crate::domain::{Brand, ConsentType, Recipient, RecipientType};
use crate::error::ApiError;
use crate::http::auth::ApiCaller;
use crate::http::consents::{InvalidRecipient, resolve_brand};
use crate::http::json::ApiJson;
use crate::state::AppState;
use crate::store::{Link, NewLink};

/// Body limit for the bulk route: 10,000 e-mail addresses of İYS's maximum length fit.
pub const BULK_BODY_LIMIT: usize = 4 * 1024 * 1024;
pub const LIST_UNSUBSCRIBE_POST: &str = "List-Unsubscribe=One-Click";
const MAX_CAMPAIGN_CHARS: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// Brand key or İYS brand code; optional when only one brand is configured.
    pub brand: Option<String>,
    pub recipient: String,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    #[serde(default)]
    pub recipient_type: Option<RecipientType>,
    #[serde(default)]
    pub campaign: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMintRequest {
    pub brand: Option<String>,
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    #[serde(default)]
    pub recipient_type: Option<RecipientType>,
    #[serde(default)]
    pub campaign: Option<String>,
    pub recipients: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MintedLink {
    pub url: String,
    pub link_id: i64,
    pub expires_at: DateTime<Utc>,
    /// E-mail only: the `List-Unsubscribe` header value (RFC 2369 / RFC 8058).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_unsubscribe: Option<String>,
    /// E-mail only: the `List-Unsubscribe-Post` header value (RFC 8058).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_unsubscribe_post: Option<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkItem {
    /// Position in the request's `recipients`.
    pub index: usize,
    /// The recipient as İYS spells it (E.164 or lower-case e-mail).
    pub recipient: String,
    #[serde(flatten)]
    pub link: MintedLink,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BulkMintResponse {
    pub links: Vec<BulkItem>,
    /// Inputs that are not valid recipients for this type (by index; the value is not echoed).
    pub invalid: Vec<InvalidRecipient>,
}

/// What every minted link of one call shares.
struct Minter<'a> {
    st: &'a AppState,
    brand: &'a Brand,
    consent_type: ConsentType,
    recipient_type: RecipientType,
    campaign: Option<String>,
    base: String,
    expires_at: DateTime<Utc>,
}

impl<'a> Minter<'a> {
    fn new(
        st: &'a AppState,
        brand: Option<&str>,
        consent_type: ConsentType,
        recipient_type: Option<RecipientType>,
        campaign: Option<String>,
    ) -> Result<Self, ApiError> {
        let cfg = &st.config.links;
        let problems = cfg.problems(st.config.iys.mode == IysMode::Live);
        if !problems.is_empty() {
            return Err(ApiError::unavailable(format!(
                "short links are not configured: {}",
                problems.join("; ")
            )));
        }
        let brand = resolve_brand(st, brand)?;
        let campaign = campaign
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if let Some(c) = &campaign
            && (c.chars().count() > MAX_CAMPAIGN_CHARS || c.chars().any(char::is_control))
        {
            return Err(ApiError::unprocessable(
                "invalid_campaign",
                format!("campaign must be at most {MAX_CAMPAIGN_CHARS} printable characters"),
            ));
        }
        let now = st.ledger.clock().now();
        Ok(Self {
            st,
            brand,
            consent_type,
            recipient_type: recipient_type.unwrap_or(RecipientType::Bireysel),
            campaign,
            base: cfg.link_base(&st.config.server.public_base_url),
            expires_at: now + Duration::days(i64::from(cfg.expiry_days)),
        })
    }

    /// The code (returned) and what the store keeps (its hash only).
    fn prepare(&self, recipient: &Recipient) -> (String, NewLink) {
        let cfg = &self.st.config.links;
        let key = LinkKey {
            brand_code: self.brand.brand_code,
            recipient: recipient.as_str(),
            recipient_type: self.recipient_type,
            consent_type: self.consent_type,
            campaign: self.campaign.as_deref(),
        };
        let code = code::derive(cfg.code_key.expose().as_bytes(), &key, cfg.code_length);
        let new = NewLink {
            code_hash: code::hash(&code),
            brand_code: self.brand.brand_code,
            recipient: recipient.as_str().to_string(),
            recipient_type: self.recipient_type,
            consent_type: self.consent_type,
            campaign: self.campaign.clone(),
            expires_at: self.expires_at,
        };
        (code, new)
    }

    async fn mint(&self, recipients: &[Recipient]) -> Result<Vec<MintedLink>, ApiError> {
        let (codes, new): (Vec<String>, Vec<NewLink>) =
            recipients.iter().map(|r| self.prepare(r)).unzip();
        let now = self.st.ledger.clock().now();
        let links = self.st.ledger.store().mint_links(&new, now).await?;
        Ok(codes
            .iter()
            .zip(links)
            .map(|(code, link)| self.minted(code, &link))
            .collect())
    }

    fn minted(&self, code: &str, link: &Link) -> MintedLink {
        let url = format!("{}{code}", self.base);
        let email = self.consent_type == ConsentType::Eposta;
        MintedLink {
            list_unsubscribe: email.then(|| format!("<{url}>")),
            list_unsubscribe_post: email.then_some(LIST_UNSUBSCRIBE_POST),
            url,
            link_id: link.id,
            expires_at: link.expires_at,
        }
    }
}

/// `POST /v1/links`: one link; minting the same (brand, recipient, type, campaign) again
/// returns the same URL.
#[utoipa::path(
    post, path = "/v1/links", tag = "links",
    summary = "Mint one rejection-only short link",
    request_body = MintRequest,
    responses(
        (status = 200, description = "the link (the same one again for the same address and campaign)", body = MintedLink),
        crate::error::WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn mint(
    State(st): State<AppState>,
    _caller: ApiCaller,
    ApiJson(req): ApiJson<MintRequest>,
) -> Result<Json<MintedLink>, ApiError> {
    mint_one(&st, req).await.map(Json)
}

/// One link, as `POST /v1/links` and the console's test link mint it.
pub async fn mint_one(st: &AppState, req: MintRequest) -> Result<MintedLink, ApiError> {
    let m = Minter::new(
        st,
        req.brand.as_deref(),
        req.consent_type,
        req.recipient_type,
        req.campaign,
    )?;
    let recipient = Recipient::parse_for(&req.recipient, req.consent_type)
        .map_err(|e| ApiError::unprocessable("invalid_recipient", e.to_string()))?;
    let mut out = m.mint(std::slice::from_ref(&recipient)).await?;
    out.pop()
        .ok_or_else(|| ApiError::unavailable("the store returned no link"))
}

/// `POST /v1/links/bulk`: up to `links.max_bulk` recipients of one brand, type and campaign.
/// The store may commit a large mint in slices (so webhooks are not held behind it); minting is
/// idempotent per address and campaign, so repeating a request that failed midway completes it
/// with the same links.
#[utoipa::path(
    post, path = "/v1/links/bulk", tag = "links",
    summary = "Mint links for a campaign (idempotent: repeat a failed request to complete it)",
    request_body = BulkMintRequest,
    responses(
        (status = 200, description = "one link per valid recipient; invalid inputs by index", body = BulkMintResponse),
        crate::error::WriteErrors
    ),
    security(("bearer" = []))
)]
pub async fn mint_bulk(
    State(st): State<AppState>,
    _caller: ApiCaller,
    ApiJson(req): ApiJson<BulkMintRequest>,
) -> Result<Json<BulkMintResponse>, ApiError> {
    let max = st.config.links.max_bulk;
    if req.recipients.len() > max {
        return Err(ApiError::unprocessable(
            "too_many_recipients",
            format!("at most {max} recipients per call"),
        ));
    }
    let m = Minter::new(
        &st,
        req.brand.as_deref(),
        req.consent_type,
        req.recipient_type,
        req.campaign,
    )?;
    let mut valid = Vec::with_capacity(req.recipients.len());
    let mut indices = Vec::with_capacity(req.recipients.len());
    let mut invalid = Vec::new();
    for (index, raw) in req.recipients.iter().enumerate() {
        match Recipient::parse_for(raw, req.consent_type) {
            Ok(r) => {
                valid.push(r);
                indices.push(index);
            }
            Err(e) => invalid.push(InvalidRecipient {
                index,
                error: e.to_string(),
            }),
        }
    }
    let minted = m.mint(&valid).await?;
    let links = indices
        .into_iter()
        .zip(valid)
        .zip(minted)
        .map(|((index, r), link)| BulkItem {
            index,
            recipient: r.as_str().to_string(),
            link,
        })
        .collect();
    Ok(Json(BulkMintResponse { links, invalid }))
}
