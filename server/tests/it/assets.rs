//! The browser client is served under its fingerprinted name, precompressed by negotiation,
//! cached for good; pages and JSON are compressed on the fly (event streams are not: the
//! chart test reads live events with `Accept-Encoding: gzip`).

use std::io::Read as _;

use app::domain::auth::Role;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, COOKIE, VARY};

use crate::helpers::spawn_app_with;

const NAME: &str = "switchyard.0123abcdef";

/// A site root as `xtask site` leaves it: fingerprinted files with distinguishable `.br` and
/// `.gz` siblings (the real compression is the site build's own test), a plain stylesheet.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let pkg = dir.path().join("pkg");
    std::fs::create_dir(&pkg).expect("pkg");
    std::fs::write(pkg.join("manifest.txt"), format!("output_name={NAME}\n")).expect("manifest");
    for (file, body) in [
        (format!("{NAME}.js"), "export default function init() {}"),
        (format!("{NAME}.js.br"), "brotli bytes"),
        (format!("{NAME}.js.gz"), "gzip bytes"),
        (format!("{NAME}_bg.wasm"), "\0asm"),
        (format!("{NAME}.css"), "body { margin: 0 }"),
        ("switchyard.css".to_string(), "body { margin: 0 }"),
    ] {
        std::fs::write(pkg.join(file), body).expect("file");
    }
    dir
}

#[tokio::test]
async fn pages_name_the_fingerprinted_client_which_is_served_precompressed_and_immutable() {
    let dir = site();
    let root = dir.path().display().to_string();
    let app = spawn_app_with(&[("SWITCHYARD_SITE_ROOT", &root)]).await;

    let page = app.get("/login", None).await.text().await.expect("page");
    for file in
        [format!("/pkg/{NAME}.js"), format!("/pkg/{NAME}_bg.wasm"), format!("/pkg/{NAME}.css")]
    {
        assert!(page.contains(&file), "the page names {file}: {page}");
    }

    let js = format!("{}/pkg/{NAME}.js", app.url);
    for (accept, encoding, body) in [
        (Some("gzip, deflate, br, zstd"), Some("br"), "brotli bytes"),
        (Some("gzip"), Some("gzip"), "gzip bytes"),
        (None, None, "export default function init() {}"),
    ] {
        let mut req = app.client().get(&js);
        if let Some(a) = accept {
            req = req.header(ACCEPT_ENCODING, a);
        }
        let res = req.send().await.expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{accept:?}");
        let h = res.headers().clone();
        let get = |k| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        assert_eq!(get(CONTENT_ENCODING).as_deref(), encoding, "{accept:?}");
        assert_eq!(get(CACHE_CONTROL).as_deref(), Some("public, max-age=31536000, immutable"));
        assert!(get(VARY).unwrap_or_default().contains("accept-encoding"), "{h:?}");
        assert!(
            get(http::header::CONTENT_TYPE).unwrap_or_default().contains("javascript"),
            "{h:?}"
        );
        assert_eq!(res.text().await.expect("body"), body, "{accept:?}");
    }

    // A name that may change under the same URL is revalidated on every use.
    let css = app.get("/pkg/switchyard.css", None).await;
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()[CACHE_CONTROL], "no-cache");
    let missing = app.get(&format!("/pkg/{NAME}.map"), None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers().get(CACHE_CONTROL).is_none(), "a 404 is not cached for a year");
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut out).expect("valid gzip");
    out
}

#[tokio::test]
async fn html_and_json_are_gzipped_for_clients_that_accept_it() {
    let app = spawn_app_with(&[]).await;
    app.add_user("vera", Role::Viewer).await;
    let cookie = app.login_ok("vera").await;
    for path in ["/campaigns", "/api/v1/openapi.json", "/status"] {
        let plain = app.get(path, Some(&cookie)).await;
        assert_eq!(plain.status(), StatusCode::OK, "{path}");
        assert!(plain.headers().get(CONTENT_ENCODING).is_none(), "{path}: not asked for");
        let plain = plain.text().await.expect("body");
        let res = app
            .client()
            .get(format!("{}{path}", app.url))
            .header(COOKIE, &cookie)
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()[CONTENT_ENCODING], "gzip", "{path}");
        let bytes = res.bytes().await.expect("body");
        assert!(bytes.len() * 2 < plain.len(), "{path}: {} B for {} B", bytes.len(), plain.len());
        let text = gunzip(&bytes);
        // Pages carry a fresh nonce (of the same length) each time: compare their size and
        // ending; JSON exactly.
        if path.contains("/api/") {
            assert_eq!(text, plain, "{path}");
        } else {
            assert!(text.to_lowercase().starts_with("<!doctype html>"), "{path}");
            assert!(text.len().abs_diff(plain.len()) < plain.len() / 50, "{path}: the whole page");
            let tail = |t: &str| t.chars().rev().take(16).collect::<String>();
            assert_eq!(tail(&text), tail(&plain), "{path}: the whole page");
        }
    }
}
