//! Signed call-state tokens carried in the Gather action URL between IVR webhooks.
//!
//! `base64url(json{sid, exp, st}) "." base64url(HMAC-SHA256(secret, domain || payload_b64))`.
//! The MAC binds the state to one CallSid and an expiry, so a caller (or anyone replaying a URL)
//! can neither edit the state, move it to another call, nor use it after it expires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::flow::CallState;

/// How long one turn's token stays valid (a prompt plus the Gather timeout is well under this).
pub const TOKEN_TTL_SECS: i64 = 600;
/// Longer input is rejected before any decoding work.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Separates these MACs from any other use of the same secret.
const DOMAIN: &[u8] = b"iys-relay/ivr-state/v1\0";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("call-state token is malformed")]
    Malformed,
    #[error("call-state token signature does not match")]
    BadSignature,
    #[error("call-state token has expired")]
    Expired,
    #[error("call-state token belongs to another call")]
    WrongCall,
}

#[derive(Serialize, Deserialize)]
struct Payload<T> {
    sid: String,
    exp: i64,
    st: T,
}

fn mac(secret: &[u8], domain: &[u8], payload_b64: &str) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length, so this never fails in practice; an empty or short key is a
    // configuration error that config validation must catch.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    m.update(domain);
    m.update(payload_b64.as_bytes());
    Some(m)
}

/// Seals `state` for the next webhook of call `call_sid`, valid for [`TOKEN_TTL_SECS`].
pub fn seal(state: &CallState, call_sid: &str, secret: &[u8], now: DateTime<Utc>) -> String {
    seal_value(
        DOMAIN,
        state,
        call_sid,
        secret,
        now.timestamp().saturating_add(TOKEN_TTL_SECS),
    )
}

/// Verifies and opens a token for call `call_sid`. Signature first (constant time), then the
/// call binding, then expiry.
pub fn open(
    token: &str,
    call_sid: &str,
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<CallState, TokenError> {
    open_value(DOMAIN, token, call_sid, secret, now)
}

/// The same construction for any serialisable value, under its own `domain` (so a token minted
/// for one purpose never opens as another) and bound to `binding` (a CallSid, or `""` for a
/// value not tied to one call), valid until the Unix time `exp`.
pub fn seal_value<T: Serialize>(
    domain: &[u8],
    value: &T,
    binding: &str,
    secret: &[u8],
    exp: i64,
) -> String {
    let payload = Payload {
        sid: binding.to_string(),
        exp,
        st: value,
    };
    // Serialising plain structs to JSON cannot fail; an empty payload would fail `open` anyway.
    let json = serde_json::to_vec(&payload).unwrap_or_default();
    let body = B64.encode(json);
    match mac(secret, domain, &body) {
        Some(m) => format!("{body}.{}", B64.encode(m.finalize().into_bytes())),
        None => String::new(), // opens as Malformed
    }
}

/// Opens a [`seal_value`] token: signature first (constant time), then the binding, then expiry.
pub fn open_value<T: serde::de::DeserializeOwned>(
    domain: &[u8],
    token: &str,
    binding: &str,
    secret: &[u8],
    now: DateTime<Utc>,
) -> Result<T, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (body, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    mac(secret, domain, body)
        .ok_or(TokenError::BadSignature)?
        .verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    let json = B64.decode(body).map_err(|_| TokenError::Malformed)?;
    let p: Payload<T> = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if p.sid != binding {
        return Err(TokenError::WrongCall);
    }
    if now.timestamp() >= p.exp {
        return Err(TokenError::Expired);
    }
    Ok(p.st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::voice::flow::{BrandRef, FlowConfig, Input, step};
    use chrono::Duration;

    const SECRET: &[u8] = b"test-secret-0123456789abcdef0123";
    const SID: &str = "CA0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn some_state() -> CallState {
        let brands = vec![BrandRef {
            brand_code: 700001,
            name: "Çiçek & Şeker".into(),
        }];
        let caller = Some("+905321234567".into());
        step(
            &CallState::default(),
            Input::Start { caller, brands },
            &FlowConfig::default(),
        )
        .next
    }

    #[test]
    fn round_trip() {
        let st = some_state();
        let t = seal(&st, SID, SECRET, now());
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL-safe"
        );
        assert_eq!(
            open(&t, SID, SECRET, now() + Duration::seconds(599)),
            Ok(st)
        );
    }

    #[test]
    fn expired_token_rejected() {
        let t = seal(&some_state(), SID, SECRET, now());
        let later = now() + Duration::seconds(TOKEN_TTL_SECS);
        assert_eq!(open(&t, SID, SECRET, later), Err(TokenError::Expired));
    }

    #[test]
    fn foreign_call_and_foreign_secret_rejected() {
        let t = seal(&some_state(), SID, SECRET, now());
        assert_eq!(
            open(&t, "CAother", SECRET, now()),
            Err(TokenError::WrongCall)
        );
        assert_eq!(
            open(&t, SID, b"another-secret", now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn tampered_payload_rejected() {
        let st = some_state();
        let t = seal(&st, SID, SECRET, now());
        let (body, sig) = t.split_once('.').unwrap();
        // Re-encode an edited state (different brand) under the old signature.
        let mut json: serde_json::Value =
            serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
        json["st"]["brand"]["brand_code"] = 999.into();
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&json).unwrap()));
        assert_eq!(
            open(&forged, SID, SECRET, now()),
            Err(TokenError::BadSignature)
        );
        // A flipped signature character.
        let mut bad_sig = t.clone().into_bytes();
        let last = bad_sig.len() - 1;
        bad_sig[last] = if bad_sig[last] == b'A' { b'B' } else { b'A' };
        let bad_sig = String::from_utf8(bad_sig).unwrap();
        assert_eq!(
            open(&bad_sig, SID, SECRET, now()),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for t in [
            "",
            ".",
            "abc",
            "a.b.c",
            "!!!.###",
            "eyJ9.",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            let r = open(t, SID, SECRET, now());
            assert!(
                matches!(r, Err(TokenError::Malformed | TokenError::BadSignature)),
                "{t:.20}: {r:?}"
            );
        }
        // A validly signed payload that is not a CallState is malformed.
        let body = B64.encode(br#"{"sid":"x"}"#);
        let sig = B64.encode(mac(SECRET, DOMAIN, &body).unwrap().finalize().into_bytes());
        assert_eq!(
            open(&format!("{body}.{sig}"), "x", SECRET, now()),
            Err(TokenError::Malformed)
        );
    }
}
