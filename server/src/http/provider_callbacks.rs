//! Completion callbacks from providers' endpoints. A webhook endpoint that accepted an action
//! (202) reports its end here. The request carries no session or token: it is authenticated by
//! the backend's HMAC signature alone, so the sign-in and same-origin guards let exactly this
//! path through (`auth::guard::is_signed_callback`). It must not do anything but wake a
//! waiting call.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::adapters::webhook::{Callback, Status};
use crate::http::error::json_error;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhook_complete))
}

#[utoipa::path(post, path = "/api/v1/providers/webhook/{backend}/complete", tag = "providers", summary = "A webhook provider's endpoint reports an accepted action's end", extensions(("x-switchyard-role" = json!("signed"))), description = "Signed with the backend's shared secret (`X-Switchyard-Timestamp`, `X-Switchyard-Signature`), as the webhook provider documents.", params(("backend" = String, Path, description = "The webhook backend's name"), ("X-Switchyard-Timestamp" = String, Header, description = "Unix seconds when the body was signed"), ("X-Switchyard-Signature" = String, Header, description = "hex HMAC-SHA256 of the timestamp, a dot and the body")), request_body = Callback, responses((status = 204, description = "The waiting call is woken")))]
#[tracing::instrument(skip_all, fields(backend = %backend))]
async fn webhook_complete(
    State(s): State<AppState>,
    Path(backend): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // An unknown backend and a bad signature look the same to the caller.
    let refused = || {
        json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the signature does not verify for this backend",
        )
    };
    // Several environments may have a webhook backend of this name: the one whose secret
    // signed the callback is the one it is for.
    let hooks = s.adapters.webhooks(&backend);
    if hooks.is_empty() {
        tracing::warn!("refused a webhook completion: no webhook backend of this name is active");
        return refused();
    }
    let mut why = String::new();
    let Some(hook) = hooks.into_iter().find(|h| match h.verify_callback(&headers, &body) {
        Ok(()) => true,
        Err(e) => {
            why = e.to_string();
            false
        }
    }) else {
        tracing::warn!(%why, "refused a webhook completion");
        return refused();
    };
    let callback: Callback = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return json_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                &format!(
                    "expected {{\"idempotency_key\", \"status\": \"done\"|\"failed\", …}}: {e}"
                ),
            );
        }
    };
    if callback.completion.status == Status::Pending {
        return json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "a callback reports an end: status must be done or failed",
        );
    }
    if hook.complete(&callback.idempotency_key, callback.completion) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no call is waiting for this idempotency key; answer its next request directly",
        )
    }
}
