//! Extractors for the REST API whose refusals are the API's own JSON error (422 naming the
//! field), not axum's plain-text 400: a body, an optional body, path and query parameters.

use app::api::{ApiError, ErrorCode};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::AppError;

fn unreadable() -> AppError {
    AppError(ApiError::new(ErrorCode::Invalid, "the request body could not be read"))
}

/// Parses JSON, naming the first wrong field by its path (`window.end`); `prefix` is prepended
/// to that path (`gate.` for a gate sent alone), and a wrong whole body is `whole`.
///
/// A number with no fraction is an integer, as JSON Schema says (`2.0` is the integer 2), so it
/// is accepted wherever an integer is.
pub fn parse_json<T: DeserializeOwned>(
    bytes: &[u8],
    prefix: &str,
    whole: &str,
) -> Result<T, AppError> {
    let wrong = |path: String, message: String| {
        let field = if path == "." { whole.to_string() } else { format!("{prefix}{path}") };
        AppError(ApiError::field(field, message))
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| wrong(".".into(), e.to_string()))?;
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|e| wrong(e.path().to_string(), e.inner().to_string()))
}

/// A body that may be left out: empty, only whitespace or JSON `null` is `None`; anything
/// else is parsed as [`parse_json`] does.
pub fn optional_json<T: DeserializeOwned>(
    bytes: &[u8],
    prefix: &str,
    whole: &str,
) -> Result<Option<T>, AppError> {
    let text = bytes.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(None);
    }
    parse_json(bytes, prefix, whole).map(Some)
}

fn integral_floats_to_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) => {
            // Exactly representable integers only (|f| < 2^53).
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0)
            {
                #[allow(clippy::cast_possible_truncation)]
                let i = f as i64;
                *n = i.into();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

/// A JSON body that failed to parse is a 422 naming what is wrong.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| unreadable())?;
        parse_json(&bytes, "", "body").map(Body)
    }
}

/// Path parameters; one that does not parse (`/campaigns/abc`) is a 422 naming it.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                use axum::extract::path::ErrorKind;
                let field = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => "path".to_string(),
                };
                Err(AppError(ApiError::field(field, e.body_text())))
            }
            Err(e) => Err(AppError(ApiError::field("path", e.body_text()))),
        }
    }
}

/// Query parameters; one that does not parse (`?per_page=many`) is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                let text = e.body_text();
                let detail =
                    text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
                let field = match detail.split_once(": ") {
                    Some((name, _)) if !name.contains(' ') => name.to_string(),
                    _ => "query".to_string(),
                };
                Err(AppError(ApiError::field(field, detail.to_string())))
            }
            Err(e) => Err(AppError(ApiError::field("query", e.body_text()))),
        }
    }
}

/// `{"reason": "…"}`; an empty body means no reason (the service says if one is required).
pub struct Reason(pub String);

impl<S: Send + Sync> FromRequest<S> for Reason {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| unreadable())?;
        let body = optional_json::<ReasonBody>(&bytes, "", "reason").map_err(|e| {
            AppError(ApiError::field(
                "reason",
                format!("send {{\"reason\": \"…\"}}: {}", e.0.message),
            ))
        })?;
        Ok(Reason(body.map(|b| b.reason).unwrap_or_default()))
    }
}

/// The body of reject, skip and abort.
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub struct ReasonBody {
    /// Why, for the audit trail and the notices (some environments require one)
    #[serde(default)]
    pub reason: String,
}
