//! The Content Security Policy every response carries: only this origin, WebAssembly
//! compilation (`'wasm-unsafe-eval'`), and — on pages — the inline scripts Leptos writes for
//! hydration and streaming, which carry this response's nonce. No inline styles, no framing.

/// The policy; `nonce` admits the inline scripts of one rendered page.
pub fn policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(n) => format!("script-src 'self' 'wasm-unsafe-eval' 'nonce-{n}'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_string(),
    };
    format!(
        "default-src 'self'; {scripts}; style-src 'self'; img-src 'self'; object-src 'none'; \
         base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Puts the policy with this render's nonce on the page's response (server rendering only).
#[cfg(feature = "ssr")]
pub fn set_for_page() {
    use leptos::prelude::use_context;
    let (Some(nonce), Some(res)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&policy(Some(&nonce))) {
        res.insert_header(http::header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_allows_self_wasm_and_the_nonce_only() {
        let p = super::policy(Some("abc"));
        assert!(p.contains("script-src 'self' 'wasm-unsafe-eval' 'nonce-abc'"), "{p}");
        assert!(p.contains("frame-ancestors 'none'") && !p.contains("unsafe-inline"), "{p}");
        assert!(!super::policy(None).contains("nonce"));
    }
}
