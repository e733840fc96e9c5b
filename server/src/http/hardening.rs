//! What every response and every request body gets, whatever route serves it: security headers
//! (the CSP of [`app::csp`], no framing, no MIME sniffing, a strict referrer policy) and a
//! body-size limit answered with a clear 413.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;

/// Adds the security headers a response lacks (a page sets its own CSP, with its nonce).
pub async fn security_headers(State(tls): State<bool>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY)
        && let Ok(v) = HeaderValue::from_str(&app::csp::policy(None))
    {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// Refuses a body larger than `max` bytes with 413: at once when `Content-Length` says so,
/// else as soon as the streamed body passes the limit (whatever the handler made of that).
pub async fn limit_body(State(max): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return too_large(&req, max);
    }
    let wants_json = wants_json(&req);
    let exceeded = Arc::new(AtomicBool::new(false));
    let flag = exceeded.clone();
    let (parts, body) = req.into_parts();
    let mut seen = 0_usize;
    let limited = body.into_data_stream().map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len());
        if seen > max {
            flag.store(true, Ordering::Relaxed);
            return Err(axum::Error::new(std::io::Error::other("request body too large")));
        }
        Ok(chunk)
    });
    let req = Request::from_parts(parts, Body::from_stream(limited));
    let res = next.run(req).await;
    if exceeded.load(Ordering::Relaxed) {
        return too_large_response(wants_json, max);
    }
    res
}

fn wants_json(req: &Request) -> bool {
    let path = req.uri().path();
    path.starts_with("/api/")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|a| !a.contains("text/html"))
}

fn too_large(req: &Request, max: usize) -> Response {
    too_large_response(wants_json(req), max)
}

fn too_large_response(json: bool, max: usize) -> Response {
    let message = format!(
        "the request body is larger than this server accepts ({max} bytes, http.max_body_bytes)"
    );
    if json {
        super::error::json_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message)
    } else {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    }
}
