//! İYS error bodies: `{"errors":[{code,message,location?,value?,index?}]}` with the exact Turkish
//! messages of the official "HATA KODLARI" table (docs/iys-api-notes.md §6).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// The status and text İYS answers a code with, from the one catalogue (`iys/catalogue.rs`);
/// unknown codes (only reachable through test hooks) become a 500 H015 text.
pub fn lookup(code: &str) -> (StatusCode, &'static str) {
    crate::iys::catalogue::lookup(code)
        .map(|e| {
            (
                StatusCode::from_u16(e.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                e.answer_text(),
            )
        })
        .unwrap_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "Beklenmedik bir hata oluştu.",
        ))
}

/// One element of the `errors` array.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorItem {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl ErrorItem {
    pub fn new(code: &str) -> Self {
        Self {
            code: code.to_string(),
            message: lookup(code).1.to_string(),
            location: None,
            value: None,
            index: None,
        }
    }
    /// Same code, a message from an operation example that differs from the table.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
    pub fn at(mut self, field: &str) -> Self {
        self.location = Some(vec![Value::from(field)]);
        self
    }
    pub fn at_path(mut self, path: Vec<Value>) -> Self {
        self.location = Some(path);
        self
    }
    pub fn value(mut self, v: Value) -> Self {
        self.value = Some(v);
        self
    }
    pub fn index(mut self, i: usize) -> Self {
        self.index = Some(i);
        self
    }
    pub fn status(&self) -> StatusCode {
        lookup(&self.code).0
    }
}

/// An error response: one HTTP status and one or more items.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
}

/// Marks a response with the İYS code it carries, so the request log can show it.
#[derive(Debug, Clone)]
pub struct LoggedCode(pub String);

impl ApiError {
    /// A single catalogue error with its catalogue status.
    pub fn code(code: &str) -> Self {
        Self::from_item(ErrorItem::new(code))
    }
    pub fn from_item(item: ErrorItem) -> Self {
        Self {
            status: item.status(),
            errors: vec![item],
        }
    }
    /// Several items at once; the status is the first item's (they share one in practice).
    pub fn many(items: Vec<ErrorItem>) -> Self {
        let status = items
            .first()
            .map(ErrorItem::status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self {
            status,
            errors: items,
        }
    }
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
    pub fn first_code(&self) -> Option<&str> {
        self.errors.first().map(|e| e.code.as_str())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.first_code().map(str::to_string);
        let body = serde_json::json!({ "errors": self.errors });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(c) = code {
            resp.extensions_mut().insert(LoggedCode(c));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_serialises_only_present_fields() {
        let e = ErrorItem::new("H467")
            .at("consentDate")
            .value("2020-01-13 13:35:13".into())
            .index(0);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "H467");
        assert_eq!(
            v["message"],
            "Üç iş günü öncesinde alınan izinler kaydedilemez."
        );
        assert_eq!(v["location"][0], "consentDate");
        assert_eq!(v["index"], 0);
        let bare = serde_json::to_value(ErrorItem::new("H175")).unwrap();
        assert_eq!(bare.as_object().unwrap().len(), 2);
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn every_code_the_simulator_emits_is_catalogued() {
        let sources = [
            include_str!("auth.rs"),
            include_str!("batch.rs"),
            include_str!("consents.rs"),
            include_str!("limits.rs"),
            include_str!("mod.rs"),
            include_str!("pull.rs"),
            include_str!("push.rs"),
            include_str!("rules.rs"),
        ];
        for src in sources {
            for (i, _) in src.match_indices("\"H") {
                let code: String = src[i + 1..].chars().take_while(|c| *c != '"').collect();
                if code.len() == 4 && code[1..].chars().all(|c| c.is_ascii_digit()) {
                    assert!(
                        crate::iys::catalogue::lookup(&code).is_some(),
                        "{code} missing"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_code_is_a_500() {
        assert_eq!(lookup("H999").0, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ApiError::code("H351").status, StatusCode::UNAUTHORIZED);
    }
}
