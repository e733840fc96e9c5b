//! Security headers on every response, the page CSP's nonce matching its inline scripts, and
//! the body-size limit (413 with a clear message) on REST routes, server functions and forms.

use app::domain::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn every_response_carries_the_security_headers_and_pages_carry_their_script_nonce() {
    let app = spawn_app_with(&[]).await;
    app.add_user("vera", Role::Viewer).await;
    let cookie = app.login_ok("vera").await;
    for (path, signed_in) in [
        ("/login", false),
        ("/", true),
        ("/campaigns", true),
        ("/api/v1/me", false),
        ("/api/v1/me", true),
        ("/healthz", false),
        ("/status", false),
        ("/status/feed.atom", false),
        ("/no-such-page", true),
        ("/pkg/missing.js", false),
    ] {
        let res = app.get(path, signed_in.then_some(cookie.as_str())).await;
        let h = res.headers().clone();
        let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let csp = get("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{path}: {csp:?}");
        assert!(
            csp.contains("'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("referrer-policy"), "same-origin", "{path}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        let html = get("content-type").starts_with("text/html") && !path.starts_with("/status");
        if html && res.status() == StatusCode::OK {
            let nonce = csp
                .split("'nonce-")
                .nth(1)
                .and_then(|r| r.split('\'').next())
                .unwrap_or_else(|| panic!("{path}: a page's CSP has a nonce: {csp}"))
                .to_string();
            let body = res.text().await.expect("body");
            let scripts = body.matches("<script").count();
            assert!(scripts >= 1, "{path}: the hydration script is inline");
            assert_eq!(
                body.matches(&format!("nonce=\"{nonce}\"")).count(),
                scripts,
                "{path}: every inline script carries this response's nonce"
            );
            assert!(!body.contains(" style=\""), "{path}: no inline style attributes");
        }
    }
    // A fresh nonce per response.
    let a = app.get("/login", None).await.headers()["content-security-policy"].clone();
    let b = app.get("/login", None).await.headers()["content-security-policy"].clone();
    assert_ne!(a, b);
    app.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413_on_every_kind_of_route() {
    let app = spawn_app_with(&[("SWITCHYARD_MAX_BODY_BYTES", "4096")]).await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let cookie = app.login_ok("ada").await;
    let big = "x".repeat(10_000);
    let http = app.client();
    let check = |res: reqwest::Response, what: &'static str| async move {
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{what}");
        let text = res.text().await.expect("body");
        assert!(
            text.contains("4096 bytes") && text.contains("http.max_body_bytes"),
            "{what}: {text}"
        );
    };
    // REST, with Content-Length.
    let res = http
        .put(format!("{}/api/v1/environments/1", app.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!("{{\"name\": \"{big}\"}}"))
        .send()
        .await
        .expect("request");
    check(res, "REST PUT").await;
    // A server function, signed in with the cookie.
    let res = http
        .post(format!("{}/api/create_token", app.url))
        .header("cookie", &cookie)
        .header("origin", &app.url)
        .form(&[("name", big.as_str())])
        .send()
        .await
        .expect("request");
    check(res, "server function").await;
    // The anonymous sign-in form and the public sign-up.
    let res = http
        .post(format!("{}/auth/login", app.url))
        .header("origin", &app.url)
        .form(&[("username", "ada"), ("password", big.as_str())])
        .send()
        .await
        .expect("request");
    check(res, "sign-in").await;
    // A streamed body without Content-Length is cut off the same way.
    let answer = chunked_post(&app.url, "/api/v1/campaigns", &token, 10, 1000).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "chunked REST POST: {answer}");
    assert!(answer.contains("http.max_body_bytes"), "{answer}");
    // Below the limit all is as usual.
    let res = app.get_bearer("/api/v1/me", &token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.expect("json");
    assert_eq!(me["username"], "ada");
    app.stop().await;
}

/// A POST with `n` chunks of `size` bytes and no Content-Length, written by hand; the answer's
/// head and first bytes.
async fn chunked_post(base: &str, path: &str, token: &str, n: usize, size: usize) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.expect("head");
    for _ in 0..n {
        let chunk = format!("{size:x}\r\n{}\r\n", "y".repeat(size));
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
