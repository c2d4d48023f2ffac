//! The relay's own HTTP API as an OpenAPI 3.1 document, generated from the handlers' types
//! (utoipa) and served at `/openapi.json`, so a CRM team can generate its client instead of
//! writing it by hand. CI runs schemathesis against the running service with this document.
//! The TwiML webhooks (Twilio SMS and voice) and the İYS push receiver are described in
//! `docs/sms.md`, `docs/voice.md` and `docs/reporting.md`: their callers are Twilio and İYS,
//! which speak their own documented formats.

use axum::Json;

use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "iys-relay",
        description = "Consent (ONAY) and rejection (RET) intake for İYS: the suppression answer, short links, call-centre agents, PBX and SMS provider webhooks. Errors are always {code, message, request_id}.",
        license(name = "Proprietary")
    ),
    paths(
        crate::http::consents::lookup,
        crate::http::consents::check,
        crate::channels::agent::record,
        crate::channels::agent::lookup,
        crate::channels::web::api::mint,
        crate::channels::web::api::mint_bulk,
        crate::channels::voice::api::grant,
        crate::channels::voice::api::pbx_opt_out,
        crate::channels::sms::webhooks::generic,
        crate::channels::sms::push::push,
        crate::http::health::healthz,
        crate::http::health::readyz,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "suppression", description = "“May we send?” / “Gönderebilir miyiz?”"),
        (name = "agent", description = "Call-centre agents / Çağrı merkezi temsilcileri"),
        (name = "links", description = "Rejection-only short links / Ret bağlantıları"),
        (name = "voice", description = "Outbound calls and PBX call centres"),
        (name = "webhooks", description = "SMS providers' inbound messages"),
        (name = "health", description = "Probes")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        c.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        c.add_security_scheme(
            "hmac",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "X-Signature",
                    "hex or base64 HMAC-SHA256 of the raw body with the provider's secret",
                ),
            )),
        );
    }
}

/// `GET /openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `/v1/…` path the routers declare (the string literals of `src/http` and
    /// `src/channels`, outside comments and these annotations).
    fn declared_api_paths() -> std::collections::BTreeSet<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = std::collections::BTreeSet::new();
        let mut dirs = vec![root.join("http"), root.join("channels")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                    continue;
                }
                let text = std::fs::read_to_string(&p).unwrap();
                for line in text.lines() {
                    let t = line.trim_start();
                    if t.starts_with("//") || t.contains("path = \"") {
                        continue;
                    }
                    for (i, _) in line.match_indices("\"/v1/") {
                        let lit: String = line[i + 1..].chars().take_while(|c| *c != '"').collect();
                        // The scanner's own pattern and prefix checks are not routes.
                        if lit.len() > "/v1/".len() {
                            out.insert(lit);
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn the_document_covers_every_api_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let documented: std::collections::BTreeSet<String> =
            doc["paths"].as_object().unwrap().keys().cloned().collect();
        let declared = declared_api_paths();
        assert!(declared.len() >= 8, "{declared:?}");
        let missing: Vec<_> = declared.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes without documentation: {missing:?}"
        );
        // Every operation says what its errors look like.
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path}");
                if path.starts_with("/v1/") {
                    assert!(responses.contains_key("401"), "{method} {path}");
                    assert!(responses.contains_key("422"), "{method} {path}");
                }
            }
        }
    }
}
