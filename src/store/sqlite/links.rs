//! Short links on SQLite: minting in bounded slices, lookup by code hash.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row, params};

use super::{SqliteStore, one};
use crate::domain::time::{from_ms, to_ms};
use crate::store::{Link, NewLink, StoreError};

macro_rules! link_columns {
    () => {
        "id, brand_code, recipient, recipient_type, consent_type, campaign, created_at_ms, \
         expires_at_ms"
    };
}

fn link(row: &Row<'_>) -> rusqlite::Result<Link> {
    let campaign: String = row.get(5)?;
    Ok(Link {
        id: row.get(0)?,
        brand_code: row.get(1)?,
        recipient: row.get(2)?,
        recipient_type: super::rows::named(row, 3)?,
        consent_type: super::rows::named(row, 4)?,
        campaign: (!campaign.is_empty()).then_some(campaign),
        created_at: from_ms(row.get(6)?),
        expires_at: from_ms(row.get(7)?),
    })
}

/// Minting again extends the expiry, never shortens it.
fn mint_one(c: &Connection, l: &NewLink, now: DateTime<Utc>) -> Result<Link, StoreError> {
    let link = c
        .prepare_cached(concat!(
            "INSERT INTO links (brand_code, recipient, recipient_type, consent_type, campaign,
                 created_at_ms, expires_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (brand_code, recipient, recipient_type, consent_type, campaign)
             DO UPDATE SET expires_at_ms = MAX(excluded.expires_at_ms, links.expires_at_ms)
             RETURNING ",
            link_columns!()
        ))?
        .query_row(
            params![
                l.brand_code,
                l.recipient,
                l.recipient_type.as_str(),
                l.consent_type.as_str(),
                l.campaign.as_deref().unwrap_or(""),
                to_ms(now),
                to_ms(l.expires_at)
            ],
            link,
        )?;
    // The no-op update makes RETURNING yield the owner of an existing code in the same query.
    let owner: i64 = c
        .prepare_cached(
            "INSERT INTO link_codes (code_hash, link_id, created_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (code_hash) DO UPDATE SET code_hash = excluded.code_hash
             RETURNING link_id",
        )?
        .query_row(params![l.code_hash, link.id, to_ms(now)], |r| r.get(0))?;
    if owner != link.id {
        return Err(StoreError::Corrupt(format!(
            "link code collision between links {owner} and {}",
            link.id
        )));
    }
    Ok(link)
}

pub(super) fn by_code_hash(c: &Connection, code_hash: &str) -> Result<Option<Link>, StoreError> {
    one(
        c,
        concat!(
            "SELECT ",
            link_columns!(),
            " FROM links WHERE id = (SELECT link_id FROM link_codes WHERE code_hash = ?1)"
        ),
        [code_hash],
        link,
    )
}

impl SqliteStore {
    /// A 10 000-link mint is forty writes, and the webhooks queued behind it wait for one slice
    /// (a few milliseconds), not for the whole mint. Minting is idempotent per (brand,
    /// recipient, type, campaign), so a mint cut short is completed by repeating it.
    pub(super) async fn mint_links_in_slices(
        &self,
        links: &[NewLink],
        now: DateTime<Utc>,
    ) -> Result<Vec<Link>, StoreError> {
        let slices = self
            .write_sliced(links, move |c, slice: &[NewLink], _| {
                slice
                    .iter()
                    .map(|l| mint_one(c, l, now))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(slices.into_iter().flatten().collect())
    }
}
