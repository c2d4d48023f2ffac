//! Link codes: derived, unguessable, free of personal data, stored only as a hash.
//!
//! A code is HMAC-SHA256(code_key, brand ‖ recipient ‖ type ‖ campaign) written in base62. Keyed
//! derivation is what lets minting be idempotent while the database holds only SHA-256(code): the
//! same tuple under the same key yields the same code again, so nothing secret needs storing.
//! Without the key the output is indistinguishable from random, and it reveals nothing about the
//! recipient. 11 base62 characters carry 65 bits; the default 12 carry 71.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::domain::{ConsentType, RecipientType};

pub const MIN_CODE_LEN: usize = 11;
/// 43 base62 digits hold all 256 bits of the HMAC.
pub const MAX_CODE_LEN: usize = 43;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a link is the link for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkKey<'a> {
    pub brand_code: i64,
    pub recipient: &'a str,
    pub recipient_type: RecipientType,
    pub consent_type: ConsentType,
    pub campaign: Option<&'a str>,
}

/// The code for `k` under `key`, `len` characters (clamped to the allowed range).
pub fn derive(key: &[u8], k: &LinkKey<'_>, len: usize) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(b"iys-relay link v1");
    // Length-prefixed fields: no two tuples share an input.
    for field in [
        k.brand_code.to_string().as_str(),
        k.recipient,
        k.recipient_type.as_str(),
        k.consent_type.as_str(),
        k.campaign.unwrap_or(""),
    ] {
        mac.update(&(field.len() as u64).to_be_bytes());
        mac.update(field.as_bytes());
    }
    let digest: [u8; 32] = mac.finalize().into_bytes().into();
    base62(digest, len.clamp(MIN_CODE_LEN, MAX_CODE_LEN))
}

/// The least significant `len` base62 digits of a 256-bit number (those are uniform).
fn base62(mut n: [u8; 32], len: usize) -> String {
    let mut out = String::with_capacity(len);
    for _ in 0..len {
        let mut rem: u32 = 0;
        for byte in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*byte);
            *byte = (cur / 62) as u8;
            rem = cur % 62;
        }
        out.push(char::from(ALPHABET[rem as usize]));
    }
    out
}

/// Cheap syntactic check before any database work (any allowed length, so a change of
/// `code_length` does not break links already sent).
pub fn is_well_formed(code: &str) -> bool {
    (MIN_CODE_LEN..=MAX_CODE_LEN).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the store keeps and looks up: lower-case hex SHA-256 of the code. Looking up by hash
/// means timing of the index lookup says nothing useful about neighbouring codes.
pub fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(recipient: &'a str, campaign: Option<&'static str>) -> LinkKey<'a> {
        LinkKey {
            brand_code: 700000,
            recipient,
            recipient_type: RecipientType::Bireysel,
            consent_type: ConsentType::Mesaj,
            campaign,
        }
    }

    #[test]
    fn same_tuple_same_code_and_every_field_counts() {
        let k = b"k".repeat(32);
        let a = derive(&k, &key("+905321234567", None), 12);
        assert_eq!(a, derive(&k, &key("+905321234567", None), 12));
        assert_eq!(a.len(), 12);
        assert!(is_well_formed(&a));
        assert_ne!(a, derive(&k, &key("+905321234568", None), 12));
        assert_ne!(a, derive(&k, &key("+905321234567", Some("c1")), 12));
        assert_ne!(a, derive(&b"x".repeat(32), &key("+905321234567", None), 12));
        let mut eposta = key("+905321234567", None);
        eposta.consent_type = ConsentType::Arama;
        assert_ne!(a, derive(&k, &eposta, 12));
        // An empty campaign and no campaign are the same link (the store keeps '' for none).
        assert_eq!(a, derive(&k, &key("+905321234567", Some("")), 12));
    }

    #[test]
    fn codes_carry_no_personal_data() {
        let k = b"k".repeat(32);
        let c = derive(&k, &key("+905321234567", None), 43);
        assert!(!c.contains("5321234567") && !c.contains("905"));
    }

    #[test]
    fn lengths_are_clamped_to_at_least_60_bits() {
        let k = b"k".repeat(32);
        assert_eq!(derive(&k, &key("a@b.example", None), 3).len(), MIN_CODE_LEN);
        assert_eq!(
            derive(&k, &key("a@b.example", None), 99).len(),
            MAX_CODE_LEN
        );
        assert!(MIN_CODE_LEN as f64 * 62f64.log2() >= 60.0);
    }

    #[test]
    fn base62_of_small_numbers() {
        let mut n = [0u8; 32];
        n[31] = 61;
        assert_eq!(base62(n, 2), "z0");
        n[31] = 62;
        assert_eq!(base62(n, 2), "01");
    }

    #[test]
    fn malformed_codes_are_rejected_without_lookup() {
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed("AbC12xYz9-_"));
        assert!(!is_well_formed("AbC12xYz9İİ"));
        assert!(!is_well_formed(&"a".repeat(44)));
        assert!(is_well_formed("AbC12xYz9aa"));
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
