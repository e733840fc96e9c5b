//! HTTP errors: one JSON shape `{ "error": { "code", "message", "fields" } }`, stable human
//! messages, internal detail logged once on the server and never sent to the client.

use app::api::{ApiError, ErrorCode};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// A REST handler's error.
#[derive(Debug)]
pub struct AppError(pub ApiError);

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self(e.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(m) => ApiError::conflict(m),
            StoreError::Other(cause) => {
                tracing::error!(error = %cause, "store failure");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(serde_json::json!({ "error": self.0 }))).into_response()
    }
}

pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}

/// What a panic in a handler turns into: a friendly page, never a stack trace.
pub fn panic_response(_err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    let body = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Something went wrong · Switchyard</title>\
<link rel=\"stylesheet\" href=\"/pkg/switchyard.css\"><link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\"></head><body><main class=\"container\"><h1>Something went wrong</h1>\
<p>The server hit an unexpected error. It has been logged. Try again, or go back to the <a href=\"/\">home page</a>.</p></main></body></html>";
    (StatusCode::INTERNAL_SERVER_ERROR, [("content-type", "text/html; charset=utf-8")], body)
        .into_response()
}

pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}
