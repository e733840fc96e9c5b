//! `/pkg/…`: the browser client and stylesheet. The site build (`xtask site`) writes
//! content-hashed copies with brotli and gzip beside each and names them in
//! `pkg/manifest.txt`; here they are served by `Accept-Encoding` negotiation, the hashed names
//! as `immutable` for a year, everything else revalidated on each use.

use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use http::{HeaderValue, header};
use tower_http::services::ServeDir;

/// The client's base name when no fingerprinted build is present (a cargo-leptos build, or
/// the tests' empty site root).
pub const PLAIN_NAME: &str = "switchyard";

/// The name the site build gave this client (`switchyard.<hash>`), read from
/// `<site_root>/pkg/manifest.txt`; [`PLAIN_NAME`] when there is none or it is unreadable.
pub fn output_name(site_root: &Path) -> String {
    let manifest = site_root.join("pkg").join("manifest.txt");
    let Ok(text) = std::fs::read_to_string(&manifest) else {
        return PLAIN_NAME.to_string();
    };
    let name = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("output_name="))
        .map(str::trim)
        .filter(|n| is_fingerprinted(n) || *n == PLAIN_NAME);
    match name {
        Some(n) => n.to_string(),
        None => {
            tracing::warn!(file = %manifest.display(), "ignoring an unreadable client manifest");
            PLAIN_NAME.to_string()
        }
    }
}

/// `switchyard.<10 hex>` (a whole name or the start of a file name).
fn is_fingerprinted(name: &str) -> bool {
    name.strip_prefix("switchyard.").is_some_and(|rest| {
        rest.len() >= 10
            && rest.as_bytes()[..10].iter().all(u8::is_ascii_hexdigit)
            && matches!(rest.as_bytes().get(10), None | Some(b'.' | b'_'))
    })
}

/// The `/pkg` service: precompressed files by negotiation, with cache headers.
pub fn pkg(site_root: &Path) -> Router {
    let dir = ServeDir::new(site_root.join("pkg")).precompressed_br().precompressed_gzip();
    Router::new().fallback_service(dir).layer(from_fn(cache_headers))
}

/// Fingerprinted files never change under their name; anything else may, so it is
/// revalidated (ServeDir answers `If-Modified-Since`). Either way the answer depends on
/// `Accept-Encoding`.
async fn cache_headers(req: Request, next: Next) -> Response {
    let immutable = req.uri().path().rsplit('/').next().is_some_and(is_fingerprinted);
    let mut res = next.run(req).await;
    if res.status().is_success() || res.status() == http::StatusCode::NOT_MODIFIED {
        let h = res.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }),
        );
        h.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprinted_names_are_told_apart_from_plain_ones() {
        for yes in
            ["switchyard.0123456789", "switchyard.abcdef0123.js", "switchyard.abcdef0123_bg.wasm"]
        {
            assert!(is_fingerprinted(yes), "{yes}");
        }
        for no in [
            "switchyard.css",
            "switchyard_bg.wasm",
            "switchyard.0123456789x.js",
            "other.0123456789.js",
            "switchyard.01234",
        ] {
            assert!(!is_fingerprinted(no), "{no}");
        }
    }

    #[test]
    fn the_manifest_names_the_client_and_a_bad_one_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(output_name(dir.path()), PLAIN_NAME, "no manifest");
        std::fs::create_dir(dir.path().join("pkg")).expect("pkg");
        let manifest = dir.path().join("pkg/manifest.txt");
        std::fs::write(&manifest, "output_name=switchyard.00aa11bb22\n").expect("write");
        assert_eq!(output_name(dir.path()), "switchyard.00aa11bb22");
        std::fs::write(&manifest, "output_name=../../etc/passwd\n").expect("write");
        assert_eq!(output_name(dir.path()), PLAIN_NAME, "only a fingerprinted name is taken");
    }
}
