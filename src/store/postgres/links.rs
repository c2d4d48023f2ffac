//! Short links on PostgreSQL: a batch is minted with one upsert of the links and one of their
//! code hashes, whatever its size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::Tx;
use super::rows::{LinkRow, link_columns};
use crate::domain::time::to_ms;
use crate::store::{Link, NewLink, StoreError};

/// Minting again extends the expiry, never shortens it.
const UPSERT_LINKS: &str = concat!(
    "INSERT INTO links (brand_code, recipient, recipient_type, consent_type, campaign,
         created_at_ms, expires_at_ms)
     SELECT u.brand_code, u.recipient, u.recipient_type, u.consent_type, u.campaign, $6,
         u.expires_at_ms
     FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $7::bigint[])
         AS u(brand_code, recipient, recipient_type, consent_type, campaign, expires_at_ms)
     ON CONFLICT (brand_code, recipient, recipient_type, consent_type, campaign)
     DO UPDATE SET expires_at_ms = GREATEST(excluded.expires_at_ms, links.expires_at_ms)
     RETURNING ",
    link_columns!()
);

/// The no-op update makes RETURNING yield the owner of an existing code in the same statement.
const UPSERT_CODES: &str = "INSERT INTO link_codes (code_hash, link_id, created_at_ms)
     SELECT u.*, $3 FROM UNNEST($1::text[], $2::bigint[]) AS u
     ON CONFLICT (code_hash) DO UPDATE SET code_hash = excluded.code_hash
     RETURNING code_hash, link_id";

const BY_CODE_HASH: &str = concat!(
    "SELECT ",
    link_columns!(),
    " FROM links WHERE id = (SELECT link_id FROM link_codes WHERE code_hash = $1)"
);

/// A link's identity: (brand, recipient, recipient type, type, campaign or '').
type LinkKey<'a> = (i64, &'a str, &'static str, &'static str, &'a str);

fn link_key(l: &NewLink) -> LinkKey<'_> {
    (
        l.brand_code,
        l.recipient.as_str(),
        l.recipient_type.as_str(),
        l.consent_type.as_str(),
        l.campaign.as_deref().unwrap_or(""),
    )
}

fn collision(a: i64, b: i64) -> StoreError {
    StoreError::Corrupt(format!("link code collision between links {a} and {b}"))
}

pub(super) async fn mint(
    tx: &mut Tx,
    links: &[NewLink],
    now: DateTime<Utc>,
) -> Result<Vec<Link>, StoreError> {
    if links.is_empty() {
        return Ok(Vec::new());
    }
    // One row per link: an upsert may not touch a row twice, so a link named twice in the
    // batch is written once, with the later of its expiries.
    let mut expiry: HashMap<LinkKey<'_>, i64> = HashMap::new();
    let mut order: Vec<LinkKey<'_>> = Vec::new();
    for l in links {
        let k = link_key(l);
        let at = to_ms(l.expires_at);
        match expiry.get_mut(&k) {
            Some(e) => *e = (*e).max(at),
            None => {
                expiry.insert(k, at);
                order.push(k);
            }
        }
    }
    let n = order.len();
    let mut brand = Vec::with_capacity(n);
    let mut recipient = Vec::with_capacity(n);
    let mut recipient_type = Vec::with_capacity(n);
    let mut consent_type = Vec::with_capacity(n);
    let mut campaign = Vec::with_capacity(n);
    let mut expires = Vec::with_capacity(n);
    for k in &order {
        brand.push(k.0);
        recipient.push(k.1);
        recipient_type.push(k.2);
        consent_type.push(k.3);
        campaign.push(k.4);
        expires.push(expiry[k]);
    }
    let rows: Vec<LinkRow> = sqlx::query_as(UPSERT_LINKS)
        .bind(brand)
        .bind(recipient)
        .bind(recipient_type)
        .bind(consent_type)
        .bind(campaign)
        .bind(to_ms(now))
        .bind(expires)
        .fetch_all(&mut **tx)
        .await?;
    let mut minted: HashMap<(i64, String, &'static str, &'static str, String), Link> =
        HashMap::with_capacity(rows.len());
    for row in rows {
        let link = Link::try_from(row)?;
        let key = (
            link.brand_code,
            link.recipient.clone(),
            link.recipient_type.as_str(),
            link.consent_type.as_str(),
            link.campaign.clone().unwrap_or_default(),
        );
        minted.insert(key, link);
    }
    let link_of = |l: &NewLink| -> Result<&Link, StoreError> {
        let (b, r, rt, ct, c) = link_key(l);
        minted
            .get(&(b, r.to_string(), rt, ct, c.to_string()))
            .ok_or_else(|| StoreError::Corrupt("minted link not returned".into()))
    };

    // Each code once; one code for two links of the batch is a collision already.
    let mut code_owner: HashMap<&str, i64> = HashMap::new();
    for l in links {
        let id = link_of(l)?.id;
        match code_owner.get(l.code_hash.as_str()) {
            Some(&other) if other != id => return Err(collision(other, id)),
            Some(_) => {}
            None => {
                code_owner.insert(l.code_hash.as_str(), id);
            }
        }
    }
    let (hashes, ids): (Vec<&str>, Vec<i64>) = code_owner.iter().map(|(h, id)| (*h, *id)).unzip();
    let owners: Vec<(String, i64)> = sqlx::query_as(UPSERT_CODES)
        .bind(hashes)
        .bind(ids)
        .bind(to_ms(now))
        .fetch_all(&mut **tx)
        .await?;
    for (hash, owner) in owners {
        let want = code_owner[hash.as_str()];
        if owner != want {
            return Err(collision(owner, want));
        }
    }
    links.iter().map(|l| link_of(l).cloned()).collect()
}

pub(super) async fn by_code_hash(
    pool: &PgPool,
    code_hash: &str,
) -> Result<Option<Link>, StoreError> {
    sqlx::query_as::<_, LinkRow>(BY_CODE_HASH)
        .bind(code_hash)
        .fetch_optional(pool)
        .await?
        .map(Link::try_from)
        .transpose()
}
