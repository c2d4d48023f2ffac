//! The one error type at the HTTP edge: `{code, message, request_id}`. A 5xx never leaks internals.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ledger::LedgerError;
use crate::store::StoreError;
use crate::telemetry::chain;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The body of every error answer (also the OpenAPI document's `ErrorBody`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub struct Body<'a> {
    code: &'a str,
    message: &'a str,
    request_id: String,
}

/// `Body` as the OpenAPI document names it.
pub type ErrorBody = Body<'static>;

/// The refusals every read of the JSON API may answer, each `{code, message, request_id}`.
#[allow(dead_code)] // a description for the document, never built
#[derive(utoipa::IntoResponses)]
pub enum ReadErrors {
    #[response(
        status = 400,
        description = "malformed query, unknown or missing brand"
    )]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "missing or wrong bearer token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 422,
        description = "a value that cannot be used, with its reason"
    )]
    Unprocessable(ErrorBody),
    #[response(status = 503, description = "storage unavailable; retry")]
    Unavailable(ErrorBody),
}

/// The refusals every JSON write may answer, each `{code, message, request_id}`.
#[allow(dead_code)] // a description for the document, never built
#[derive(utoipa::IntoResponses)]
pub enum WriteErrors {
    #[response(status = 400, description = "malformed JSON, unknown or missing brand")]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "missing or wrong bearer token")]
    Unauthorized(ErrorBody),
    #[response(status = 413, description = "body too large")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "send Content-Type: application/json")]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 422,
        description = "a value that cannot be recorded, with its reason"
    )]
    Unprocessable(ErrorBody),
    #[response(status = 503, description = "storage unavailable; retry")]
    Unavailable(ErrorBody),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The id of the request being answered, as in its X-Request-Id header and log lines; a
        // fresh one only when built outside a request.
        let request_id =
            crate::http::request_id::current().unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if self.status.is_server_error() {
            // The detail goes to the log with the request id; the client gets only the id.
            tracing::error!(%request_id, code = self.code, detail = %self.message, "request failed");
        }
        let message = if self.status.is_server_error() {
            "internal error; quote the request_id"
        } else {
            &self.message
        };
        let body = Body {
            code: self.code,
            message,
            request_id,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            chain(&e).to_string(),
        )
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        match e {
            // A consent time the calendar cannot place is the request's, not an outage: retrying
            // the same request would fail the same way.
            LedgerError::Calendar(c) => ApiError::unprocessable(
                "time_out_of_range",
                format!("the consent time cannot be placed on the business-day calendar: {c}"),
            ),
            _ => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage_unavailable",
                chain(&e).to_string(),
            ),
        }
    }
}
