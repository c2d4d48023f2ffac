//! Credentials a caller presents in a request: HTTP Basic and an HMAC-SHA256 of the raw body,
//! compared in constant time. Pure functions over header values, so every receiver (provider
//! webhooks, the İYS push) checks them the same way without depending on another's module.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Checks an HMAC-SHA256 of the raw body sent as hex or base64, optionally prefixed `sha256=`.
pub fn verify_hmac_sha256(secret: &[u8], raw_body: &[u8], header_value: &str) -> bool {
    let v = header_value.trim();
    let v = match v.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256=") => &v[7..],
        _ => v,
    };
    let decoded = if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(v).ok()
    } else {
        [STANDARD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|e| e.decode(v).ok())
    };
    let Some(sig) = decoded else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(raw_body);
    // `verify_slice` compares in constant time.
    !secret.is_empty() && mac.verify_slice(&sig).is_ok()
}

/// Checks an `Authorization: Basic …` header against the configured credentials.
pub fn verify_basic(header_value: &str, user: &str, pass: &str) -> bool {
    let Some((scheme, b64)) = header_value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") || pass.is_empty() {
        return false;
    }
    let Ok(decoded) = STANDARD.decode(b64.trim()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (u, p) = (&decoded[..colon], &decoded[colon + 1..]);
    // Non-short-circuit `&`: both halves are always compared.
    bool::from(u.ct_eq(user.as_bytes()) & p.ct_eq(pass.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_hex_base64_and_prefix() {
        let secret = b"s3cret";
        let body = br#"[{"message_id":1234,"content":"deneme"}]"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        let raw = mac.finalize().into_bytes();
        let hex_sig = hex::encode(raw);
        for h in [
            hex_sig.clone(),
            hex_sig.to_uppercase(),
            format!("sha256={hex_sig}"),
            format!("SHA256={}", STANDARD.encode(raw)),
            URL_SAFE_NO_PAD.encode(raw),
        ] {
            assert!(verify_hmac_sha256(secret, body, &h), "{h}");
        }
        assert!(!verify_hmac_sha256(b"other", body, &hex_sig));
        assert!(!verify_hmac_sha256(secret, b"[]", &hex_sig));
        assert!(!verify_hmac_sha256(b"", body, &hex_sig));
        for h in ["", "sha256=", "zz", "sha256=王王", &hex_sig[..40]] {
            assert!(!verify_hmac_sha256(secret, body, h), "{h:?}");
        }
    }

    #[test]
    fn basic_auth() {
        let ok = format!("Basic {}", STANDARD.encode("verimor:p:ss"));
        assert!(verify_basic(&ok, "verimor", "p:ss"));
        assert!(verify_basic(
            &ok.replace("Basic", "basic"),
            "verimor",
            "p:ss"
        ));
        assert!(!verify_basic(&ok, "verimor", "p:s"));
        assert!(!verify_basic(&ok, "Verimor", "p:ss"));
        let empty = format!("Basic {}", STANDARD.encode("u:"));
        assert!(!verify_basic(&empty, "u", ""));
        for h in [
            "",
            "Basic",
            "Basic !!!",
            "Bearer abc",
            &format!("Basic {}", STANDARD.encode("nocolon")),
        ] {
            assert!(!verify_basic(h, "verimor", "p:ss"), "{h:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn verify_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), s in "\\PC{0,80}") {
            let _ = verify_hmac_sha256(b"k", &bytes, &s);
            let _ = verify_basic(&s, "u", "p");
        }
    }
}
