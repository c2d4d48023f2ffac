//! `X-Twilio-Signature` verification, byte-for-byte as Twilio's own validators do it.
//!
//! Signed string = the URL Twilio requested (query exactly as sent) + for each POST param sorted
//! by key bytes, each *distinct* value sorted, `key + value`; HMAC-SHA1 with the auth token,
//! base64. Validators also try the URL with the default port added or the port removed, because
//! Twilio's own signing is inconsistent about ports. The host is never lower-cased.

use std::collections::{BTreeMap, BTreeSet};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha1 = Hmac<Sha1>;

/// The base64 signature Twilio would send for this request.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    signature_over(auth_token, url, &as_bytes(params))
}

/// The signature over parameters as raw bytes: a request whose parameters are not UTF-8 can
/// still be authenticated before anything is decided about keeping it.
fn signature_over(auth_token: &str, url: &str, params: &[(&[u8], &[u8])]) -> String {
    // Sorting by key (not by `key+value`) matters when a key prefixes another: `Sid`/`SidAccount`.
    let mut sorted: BTreeMap<&[u8], BTreeSet<&[u8]>> = BTreeMap::new();
    for (k, v) in params {
        sorted.entry(k).or_default().insert(v);
    }
    let mut mac =
        HmacSha1::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(url.as_bytes());
    for (k, values) in sorted {
        for v in values {
            mac.update(k);
            mac.update(v);
        }
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

fn as_bytes(params: &[(String, String)]) -> Vec<(&[u8], &[u8])> {
    params
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect()
}

/// Checks a form/GET webhook. For GET, pass the raw URL (with its query) and no params.
pub fn validate_twilio(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    validate_over(auth_token, url, &as_bytes(params), header)
}

fn validate_over(auth_token: &str, url: &str, params: &[(&[u8], &[u8])], header: &str) -> bool {
    url_variants(url)
        .iter()
        .any(|u| ct_eq_str(&signature_over(auth_token, u, params), header))
}

/// [`validate_twilio_any`] over parameters as raw bytes (see [`form_params_raw`]).
pub fn validate_twilio_raw_any(
    tokens: &[String],
    url: &str,
    params: &[(Vec<u8>, Vec<u8>)],
    header: &str,
) -> bool {
    let params: Vec<(&[u8], &[u8])> = params
        .iter()
        .map(|(k, v)| (k.as_slice(), v.as_slice()))
        .collect();
    tokens
        .iter()
        .any(|t| validate_over(t, url, &params, header))
}

/// Checks a JSON webhook: the signature covers the URL only (which carries `bodySHA256`), and
/// the body must hash to that value. No `bodySHA256` in the query → false.
pub fn validate_twilio_json(
    auth_token: &str,
    url_with_query: &str,
    raw_body: &[u8],
    header: &str,
) -> bool {
    let Some(expected) = body_sha256_param(url_with_query) else {
        return false;
    };
    let actual = hex::encode(Sha256::digest(raw_body));
    let body_ok = ct_eq_str(&actual, &expected.to_ascii_lowercase());
    let sig_ok = validate_twilio(auth_token, url_with_query, &[], header);
    body_ok & sig_ok
}

/// [`validate_twilio`] against each configured token (primary and secondary during rotation).
pub fn validate_twilio_any(
    tokens: &[String],
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    tokens
        .iter()
        .any(|t| validate_twilio(t, url, params, header))
}

/// [`validate_twilio_json`] against each configured token.
pub fn validate_twilio_json_any(
    tokens: &[String],
    url_with_query: &str,
    raw_body: &[u8],
    header: &str,
) -> bool {
    tokens
        .iter()
        .any(|t| validate_twilio_json(t, url_with_query, raw_body, header))
}

/// Decodes an `application/x-www-form-urlencoded` body into the pairs the signature is over
/// (`+` → space, `%2B` → `+`), keeping repeated keys. Invalid UTF-8 (raw or percent-encoded) is
/// an error, not replacement characters: such a request is refused, and quarantined as it was
/// sent once its signature (over [`form_params_raw`]) checks out.
pub fn form_params(raw_body: &[u8]) -> Result<Vec<(String, String)>, std::str::Utf8Error> {
    form_params_raw(raw_body)
        .into_iter()
        .map(|(k, v)| {
            let text = |b: Vec<u8>| String::from_utf8(b).map_err(|e| e.utf8_error());
            Ok((text(k)?, text(v)?))
        })
        .collect()
}

/// The same pairs as raw bytes; never fails (a bad `%` escape stays as sent, as in
/// `form_urlencoded`).
pub fn form_params_raw(raw_body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    // `+` is a space only where it was sent as `+` (`%2B` decodes to a `+` that stays), so the
    // pieces between pluses are decoded one by one, into one buffer.
    let decode = |s: &[u8]| -> Vec<u8> {
        let mut out = Vec::with_capacity(s.len());
        for (i, piece) in s.split(|&b| b == b'+').enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.extend(percent_encoding::percent_decode(piece));
        }
        out
    };
    raw_body
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn ct_eq_str(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn body_sha256_param(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned())
}

/// The URL as given plus its port-toggled twin: default port added when absent, any port
/// removed when present. Pure string surgery, so nothing else in the URL is re-encoded.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some(other) = toggle_port(url) {
        out.push(other);
    }
    out
}

fn toggle_port(url: &str) -> Option<String> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let auth_start = scheme_end + 3;
    let auth_end = url[auth_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| auth_start + i);
    let authority = &url[auth_start..auth_end];
    let host_start = auth_start + authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &url[host_start..auth_end];
    // In an IPv6 literal the port colon comes after the closing bracket.
    let colon = match host_port.rfind(']') {
        Some(b) => host_port[b..].find(':').map(|i| b + i),
        None => host_port.find(':'),
    };
    match colon {
        Some(c) => Some(format!("{}{}", &url[..host_start + c], &url[auth_end..])),
        None => {
            let port = if scheme.eq_ignore_ascii_case("https") {
                443
            } else if scheme.eq_ignore_ascii_case("http") {
                80
            } else {
                return None;
            };
            Some(format!("{}:{port}{}", &url[..auth_end], &url[auth_end..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const V1: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const BODY: &str = r#"{"property": "value", "boolean": true}"#;
    const BODY_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn v1_params() -> Vec<(String, String)> {
        // Deliberately not in sorted order.
        p(&[
            ("From", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
            ("To", "+18005551212"),
            ("Digits", "1234"),
            ("Caller", "+14158675309"),
        ])
    }

    #[test]
    fn published_vector_v1() {
        assert_eq!(twilio_signature(TOKEN, URL, &v1_params()), V1);
        assert!(validate_twilio(TOKEN, URL, &v1_params(), V1));
        assert!(!validate_twilio("54321", URL, &v1_params(), V1));
        let mut tampered = v1_params();
        tampered[3].1 = "9999".into();
        assert!(!validate_twilio(TOKEN, URL, &tampered, V1));
        assert!(!validate_twilio(
            TOKEN,
            &format!("{URL}&extra=1"),
            &v1_params(),
            V1
        ));
    }

    #[test]
    fn form_body_decodes_to_the_signed_values() {
        let body = b"Digits=1234&To=%2B18005551212&From=%2B14158675309\
&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
        assert!(validate_twilio(TOKEN, URL, &form_params(body).unwrap(), V1));
        assert_eq!(form_params(b"Body=RET+TSA").unwrap()[0].1, "RET TSA");
        assert_eq!(
            form_params(b"Body=%C4%B0PTAL&a").unwrap(),
            vec![("Body".into(), "İPTAL".into()), ("a".into(), String::new())]
        );
        assert!(form_params(b"Body=%FF").is_err());
        assert!(form_params(&[b'B', b'=', 0xff]).is_err());
    }

    #[test]
    fn raw_signatures_authenticate_bodies_that_are_not_utf8() {
        let tokens = vec![TOKEN.to_string()];
        // Same bytes, same signature: the raw check agrees with the published vector.
        let body = b"Digits=1234&To=%2B18005551212&From=%2B14158675309\
&Caller=%2B14158675309&CallSid=CA1234567890ABCDE";
        assert!(validate_twilio_raw_any(
            &tokens,
            URL,
            &form_params_raw(body),
            V1
        ));
        // A body with bytes that are not UTF-8 can be signed and checked all the same.
        let odd = b"Body=%FF%FE&From=%2B905321234567&Raw=\xff";
        let raw = form_params_raw(odd);
        assert_eq!(raw[0].1, vec![0xff, 0xfe]);
        let params: Vec<(&[u8], &[u8])> = raw.iter().map(|(k, v)| (&k[..], &v[..])).collect();
        let sig = signature_over(TOKEN, URL, &params);
        assert!(validate_twilio_raw_any(&tokens, URL, &raw, &sig));
        assert!(!validate_twilio_raw_any(&tokens, URL, &raw, V1));
        assert!(!validate_twilio_raw_any(&["other".into()], URL, &raw, &sig));
        // A stray `%` stays as sent, as form_urlencoded leaves it.
        assert_eq!(form_params_raw(b"a=%zz%")[0].1, b"%zz%".to_vec());
        // A sent `+` is a space, an encoded one a plus, also beside a stray `%`.
        assert_eq!(
            form_params_raw(b"a+b=1+2%2B3+%2+")[0],
            (b"a b".to_vec(), b"1 2+3 %2 ".to_vec())
        );
    }

    #[test]
    fn port_variants() {
        let cases = [
            // Port present: also tried without it.
            ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", V1),
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "CYn1h0gLBdNxDGkKJg6hYohgeD8=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
            // Port absent: also tried with the default port.
            (URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
            (
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
        ];
        for (url, sig) in cases {
            assert!(
                validate_twilio(TOKEN, url, &v1_params(), sig),
                "{url} {sig}"
            );
        }
        assert_eq!(
            toggle_port("https://[::1]:8443/x?a=b"),
            Some("https://[::1]/x?a=b".into())
        );
        assert_eq!(
            toggle_port("https://[::1]/x"),
            Some("https://[::1]:443/x".into())
        );
        assert_eq!(toggle_port("http://h"), Some("http://h:80".into()));
        assert_eq!(toggle_port("ftp://h/x"), None);
        assert_eq!(toggle_port("not a url"), None);
    }

    #[test]
    fn host_case_and_userinfo_are_preserved() {
        let mixed = "https://MyCompany.com/myapp.php?foo=1&bar=2";
        assert!(!validate_twilio(TOKEN, mixed, &v1_params(), V1));
        let cases = [
            (mixed, "g9IN/x4Cft2g517EjYvEvM/W7LU="),
            (
                "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
                "PCqOZm8cnu/L6+u5i5fuEd+Iac4=",
            ),
            (
                "http://MyCompany.com/myapp.php?foo=1&bar=2",
                "XY7AlKOKL6im4yWyX84gldUrtis=",
            ),
            (
                "http://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
                "PJ08CxXr7KLPjEQCTc8LkUSMwSM=",
            ),
            (
                "http://Username:Password@MyCompany.com/myapp.php?foo=1&bar=2",
                "SkTSKyDJH9kUlhItI0slbgZ1UsI=",
            ),
            (
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "CukzLTc1tT5dXEDIHm/tKBanW10=",
            ),
            (
                "https://user@mycompany.com/myapp.php?foo=1&bar=2",
                "2YRLlVAflCqxaNicjMpJcSTgzSs=",
            ),
            (
                "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
                "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI=",
            ),
        ];
        for (url, sig) in cases {
            assert!(
                validate_twilio(TOKEN, url, &v1_params(), sig),
                "{url} {sig}"
            );
        }
        assert!(!validate_twilio(
            TOKEN,
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &v1_params(),
            "PCqOZm8cnu/L6+u5i5fuEd+Iac4="
        ));
    }

    #[test]
    fn repeated_keys_use_sorted_distinct_values() {
        let params = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert!(validate_twilio(
            TOKEN,
            URL,
            &params,
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        ));
    }

    #[test]
    fn keys_sort_before_concatenation() {
        let params = p(&[("SidAccount", "AC123"), ("Sid", "CA123")]);
        assert_eq!(
            twilio_signature(TOKEN, URL, &params),
            "KbzCusS/GpHkn5AoozYUlIMTvvw="
        );
        // twilio-go's concat-sort result must not validate.
        assert!(!validate_twilio(
            TOKEN,
            URL,
            &params,
            "XCsNlJ3kmmT1stDFj3VzapP2c4Q="
        ));
    }

    #[test]
    fn json_body_variant() {
        let url = format!("{URL}&bodySHA256={BODY_HASH}");
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert!(validate_twilio_json(TOKEN, &url, BODY.as_bytes(), sig));
        let only = format!("https://mycompany.com/myapp.php?bodySHA256={BODY_HASH}");
        assert!(validate_twilio_json(
            TOKEN,
            &only,
            BODY.as_bytes(),
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
        // Body changed (e.g. whitespace trimmed by a framework), hash absent, or wrong signature.
        assert!(!validate_twilio_json(
            TOKEN,
            &url,
            BODY.trim_end_matches('}').as_bytes(),
            sig
        ));
        assert!(!validate_twilio_json(TOKEN, URL, BODY.as_bytes(), V1));
        assert!(!validate_twilio_json(TOKEN, &url, BODY.as_bytes(), V1));
        // The URL is signed with its query, so the hash cannot be swapped for another body's.
        let other = hex::encode(Sha256::digest(b"{}"));
        let swapped = format!("{URL}&bodySHA256={other}");
        assert!(!validate_twilio_json(TOKEN, &swapped, b"{}", sig));
    }

    #[test]
    fn garbage_headers_fail() {
        for h in [
            "",
            "FAIL",
            "WRONG SIGNATURE",
            "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8=",
            "invalid 王",
        ] {
            assert!(!validate_twilio(TOKEN, URL, &v1_params(), h), "{h:?}");
            assert!(!validate_twilio_json(TOKEN, URL, b"", h), "{h:?}");
        }
        assert!(!validate_twilio(
            TOKEN,
            URL,
            &v1_params(),
            &format!("{V1} ")
        ));
    }

    #[test]
    fn any_of_the_rotation_tokens() {
        let tokens = vec!["old-token".to_string(), TOKEN.to_string()];
        assert!(validate_twilio_any(&tokens, URL, &v1_params(), V1));
        assert!(!validate_twilio_any(&tokens[..1], URL, &v1_params(), V1));
        assert!(!validate_twilio_any(&[], URL, &v1_params(), V1));
        let url = format!("{URL}&bodySHA256={BODY_HASH}");
        let sig = "a9nBmqA0ju/hNViExpshrM61xv4=";
        assert!(validate_twilio_json_any(
            &tokens,
            &url,
            BODY.as_bytes(),
            sig
        ));
        assert!(!validate_twilio_json_any(
            &tokens[..1],
            &url,
            BODY.as_bytes(),
            sig
        ));
    }

    #[test]
    fn unicode_bodies_are_signed_as_utf8() {
        let params = p(&[("Body", "İPTAL 🛑 çğüşö")]);
        let sig = twilio_signature(TOKEN, URL, &params);
        assert!(validate_twilio(TOKEN, URL, &params, &sig));
        assert!(!validate_twilio(
            TOKEN,
            URL,
            &p(&[("Body", "IPTAL 🛑 çğüşö")]),
            &sig
        ));
    }
}
