//! The short-link part of the store contract, on SQLite and on PostgreSQL.

use std::sync::Arc;

use crate::common::at;
use iys_relay::domain::{ConsentType, RecipientType};
use iys_relay::store::{Link, NewLink, Store};

const PHONE: &str = "+905321234567";

fn new_link(hash: &str, recipient: &str, campaign: Option<&str>, expires: &str) -> NewLink {
    NewLink {
        code_hash: hash.into(),
        brand_code: 700000,
        recipient: recipient.into(),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
        campaign: campaign.map(str::to_string),
        expires_at: at(expires),
    }
}

/// Mints one campaign-less MESAJ link for PHONE at `now`; the link the store answers with.
async fn mint_one(store: &Arc<dyn Store>, hash: &str, expires: &str, now: &str) -> Link {
    let link = new_link(hash, PHONE, None, expires);
    store.mint_links(&[link], at(now)).await.unwrap().remove(0)
}

async fn minted_links_are_found_by_code_hash(store: Arc<dyn Store>) {
    let now = at("2026-11-23T10:00:00Z");
    let out = store
        .mint_links(
            &[new_link(
                "h1",
                PHONE,
                Some("kampanya-7"),
                "2027-11-23T10:00:00Z",
            )],
            now,
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    let l = &out[0];
    assert_eq!(l.recipient, PHONE);
    assert_eq!(l.consent_type, ConsentType::Mesaj);
    assert_eq!(l.campaign.as_deref(), Some("kampanya-7"));
    assert_eq!(l.created_at, now);
    assert_eq!(l.expires_at, at("2027-11-23T10:00:00Z"));
    assert_eq!(
        store.link_by_code_hash("h1").await.unwrap().as_ref(),
        Some(l)
    );
    assert_eq!(store.link_by_code_hash("h2").await.unwrap(), None);
    assert!(!l.is_expired(now));
    assert!(l.is_expired(at("2027-11-23T10:00:00Z")));
}

async fn minting_again_returns_the_same_link_and_only_extends_expiry(store: Arc<dyn Store>) {
    let first = mint_one(&store, "h1", "2027-01-01T00:00:00Z", "2026-01-01T00:00:00Z").await;
    let later = mint_one(&store, "h1", "2027-06-01T00:00:00Z", "2026-06-01T00:00:00Z").await;
    assert_eq!(later.id, first.id);
    assert_eq!(later.created_at, first.created_at);
    assert_eq!(later.expires_at, at("2027-06-01T00:00:00Z"));
    let shorter = mint_one(&store, "h1", "2026-12-01T00:00:00Z", "2026-06-02T00:00:00Z").await;
    assert_eq!(shorter.expires_at, at("2027-06-01T00:00:00Z"));
}

async fn every_tuple_field_makes_its_own_link(store: Arc<dyn Store>) {
    let exp = "2027-01-01T00:00:00Z";
    let mut arama = new_link("h4", PHONE, None, exp);
    arama.consent_type = ConsentType::Arama;
    let mut tacir = new_link("h5", PHONE, None, exp);
    tacir.recipient_type = RecipientType::Tacir;
    let mut other_brand = new_link("h6", PHONE, None, exp);
    other_brand.brand_code = 700001;
    let links = store
        .mint_links(
            &[
                new_link("h1", PHONE, None, exp),
                new_link("h2", PHONE, Some("c1"), exp),
                new_link("h3", "+905321234568", None, exp),
                arama,
                tacir,
                other_brand,
            ],
            at("2026-01-01T00:00:00Z"),
        )
        .await
        .unwrap();
    let mut ids: Vec<i64> = links.iter().map(|l| l.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    assert_eq!(links[0].campaign, None);
}

async fn a_second_code_leads_to_the_same_link(store: Arc<dyn Store>) {
    // After a key rotation the same tuple arrives with a new code; the old one must keep working.
    let exp = "2027-01-01T00:00:00Z";
    let a = mint_one(&store, "old", exp, "2026-01-01T00:00:00Z").await;
    let b = mint_one(&store, "new", exp, "2026-01-02T00:00:00Z").await;
    assert_eq!(a.id, b.id);
    assert_eq!(
        store.link_by_code_hash("old").await.unwrap().unwrap().id,
        a.id
    );
    assert_eq!(
        store.link_by_code_hash("new").await.unwrap().unwrap().id,
        a.id
    );
}

async fn a_code_collision_fails_the_whole_batch(store: Arc<dyn Store>) {
    let exp = "2027-01-01T00:00:00Z";
    store
        .mint_links(
            &[new_link("h1", PHONE, None, exp)],
            at("2026-01-01T00:00:00Z"),
        )
        .await
        .unwrap();
    let err = store
        .mint_links(
            &[
                new_link("h2", "+905321234568", None, exp),
                new_link("h1", "+905321234569", None, exp),
            ],
            at("2026-01-01T00:00:00Z"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("collision"), "{err}");
    assert_eq!(
        store.link_by_code_hash("h2").await.unwrap(),
        None,
        "rolled back"
    );
    assert_eq!(
        store
            .link_by_code_hash("h1")
            .await
            .unwrap()
            .unwrap()
            .recipient,
        PHONE
    );
}

async fn thousands_mint_in_one_call(store: Arc<dyn Store>) {
    let links: Vec<NewLink> = (0..2000)
        .map(|n| {
            new_link(
                &format!("bulk{n}"),
                &format!("+90532{n:07}"),
                Some("kampanya"),
                "2027-01-01T00:00:00Z",
            )
        })
        .collect();
    let out = store
        .mint_links(&links, at("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(out.len(), 2000);
    assert_eq!(out[1999].recipient, "+905320001999");
    let again = store
        .mint_links(&links[..10], at("2026-01-02T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again[9].id, out[9].id);
}

on_both_backends!(
    minted_links_are_found_by_code_hash,
    minting_again_returns_the_same_link_and_only_extends_expiry,
    every_tuple_field_makes_its_own_link,
    a_second_code_leads_to_the_same_link,
    a_code_collision_fails_the_whole_batch,
    thousands_mint_in_one_call,
);
