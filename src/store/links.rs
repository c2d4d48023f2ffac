//! Short links (web opt-out channel): minting and lookup by code hash.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{SqlStore, StoreError};
use crate::domain::time::{from_ms, to_ms};
use crate::domain::{ConsentType, RecipientType};

/// A link to mint: the caller has already derived the code; only its hash reaches the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// Lower-case hex SHA-256 of the code.
    pub code_hash: String,
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub campaign: Option<String>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub id: i64,
    pub brand_code: i64,
    pub recipient: String,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub campaign: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Link {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

const LINK_COLUMNS: &str = "id, brand_code, recipient, recipient_type, consent_type, campaign, created_at_ms, expires_at_ms";

fn link_from_row(row: &AnyRow) -> Result<Link, StoreError> {
    let parse = |col: &str| -> Result<String, StoreError> { Ok(row.try_get::<String, _>(col)?) };
    let campaign = parse("campaign")?;
    Ok(Link {
        id: row.try_get("id")?,
        brand_code: row.try_get("brand_code")?,
        recipient: parse("recipient")?,
        recipient_type: parse("recipient_type")?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("recipient_type: {e}")))?,
        consent_type: parse("consent_type")?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("consent_type: {e}")))?,
        campaign: (!campaign.is_empty()).then_some(campaign),
        created_at: from_ms(row.try_get("created_at_ms")?),
        expires_at: from_ms(row.try_get("expires_at_ms")?),
    })
}

impl SqlStore {
    /// One transaction for the whole batch. Minting again extends the expiry, never shortens it.
    pub(super) async fn mint_links_impl(
        &self,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<Vec<Link>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut out = Vec::with_capacity(links.len());
        for l in links {
            out.push(Self::mint_one(&mut tx, l, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn mint_one(
        tx: &mut Transaction<'static, Any>,
        l: &NewLink,
        now: DateTime<Utc>,
    ) -> Result<Link, StoreError> {
        let sql = format!(
            "INSERT INTO links (brand_code, recipient, recipient_type, consent_type, campaign,
                 created_at_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (brand_code, recipient, recipient_type, consent_type, campaign)
             DO UPDATE SET expires_at_ms = CASE WHEN excluded.expires_at_ms > links.expires_at_ms
                 THEN excluded.expires_at_ms ELSE links.expires_at_ms END
             RETURNING {LINK_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(l.brand_code)
            .bind(l.recipient.as_str())
            .bind(l.recipient_type.as_str())
            .bind(l.consent_type.as_str())
            .bind(l.campaign.as_deref().unwrap_or(""))
            .bind(to_ms(now))
            .bind(to_ms(l.expires_at))
            .fetch_one(&mut **tx)
            .await?;
        let link = link_from_row(&row)?;
        // The no-op update makes RETURNING yield the owner of an existing code in the same query.
        let owner: i64 = sqlx::query_scalar(
            "INSERT INTO link_codes (code_hash, link_id, created_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (code_hash) DO UPDATE SET code_hash = excluded.code_hash
             RETURNING link_id",
        )
        .bind(l.code_hash.as_str())
        .bind(link.id)
        .bind(to_ms(now))
        .fetch_one(&mut **tx)
        .await?;
        if owner != link.id {
            return Err(StoreError::Corrupt(format!(
                "link code collision between links {owner} and {}",
                link.id
            )));
        }
        Ok(link)
    }

    pub(super) async fn link_by_code_hash_impl(
        &self,
        code_hash: &str,
    ) -> Result<Option<Link>, StoreError> {
        let sql = format!(
            "SELECT {LINK_COLUMNS} FROM links
             WHERE id = (SELECT link_id FROM link_codes WHERE code_hash = $1)"
        );
        let row = sqlx::query(&sql)
            .bind(code_hash)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(link_from_row).transpose()
    }
}
