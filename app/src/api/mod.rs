//! Server functions: thin edges that find the caller, call a service port and map its error.

pub mod accounts;
pub mod audit;
pub mod campaigns;
pub mod comms;
pub mod editor;
pub mod environments;
pub mod error;
#[cfg(feature = "ssr")]
pub mod ports;

pub use error::{ApiError, ErrorCode};

#[cfg(feature = "ssr")]
pub(crate) mod ctx {
    use leptos::prelude::*;

    use super::error::ApiError;
    use super::ports::Ports;
    use crate::domain::auth::Principal;

    /// The caller, as resolved by the server's auth middleware; 401 when there is none.
    pub fn principal() -> Result<Principal, ApiError> {
        let parts = use_context::<http::request::Parts>().ok_or_else(ApiError::unauthorized)?;
        let principal = parts.extensions.get::<Principal>().cloned();
        principal.ok_or_else(|| fail(ApiError::unauthorized()))
    }

    /// The caller if there is one (pages that render for anonymous visitors too).
    pub fn maybe_principal() -> Option<Principal> {
        use_context::<http::request::Parts>()?.extensions.get::<Principal>().cloned()
    }

    /// A cookie of the request, if it was sent.
    pub fn cookie(name: &str) -> Option<String> {
        let parts = use_context::<http::request::Parts>()?;
        parts.headers.get_all(http::header::COOKIE).iter().find_map(|v| {
            v.to_str().ok()?.split(';').find_map(|c| {
                let (k, v) = c.trim().split_once('=')?;
                (k == name).then(|| v.to_string())
            })
        })
    }

    /// The caller's session, when the request came with one.
    pub fn session() -> Option<super::ports::SessionHandle> {
        use_context::<http::request::Parts>()?
            .extensions
            .get::<super::ports::SessionHandle>()
            .cloned()
    }

    pub fn ports() -> Result<Ports, ApiError> {
        use_context::<Ports>().ok_or_else(ApiError::internal)
    }

    /// Sets the HTTP status of the server-function response to match the error.
    pub fn fail(err: ApiError) -> ApiError {
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>()
            && let Ok(status) = http::StatusCode::from_u16(err.code.http_status())
        {
            res.set_status(status);
        }
        err
    }
}
