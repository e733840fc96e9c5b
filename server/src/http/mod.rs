//! The HTTP surface: pages (Leptos SSR), server functions, the REST API, sign-in, health and
//! metrics, assembled with the guards in a fixed order.

pub mod api;
pub mod assets;
pub mod backends;
pub mod campaigns;
pub mod editor;
pub mod error;
pub mod extract;
pub mod guard;
pub mod hardening;
pub mod login;
pub mod metrics;
pub mod openapi;
pub mod provider_callbacks;
pub mod state;
pub mod status;

use std::sync::Arc;

use app::{App, shell};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use leptos::prelude::provide_context;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::config::SameSite;
use crate::http::state::AppState;
use crate::store::SqlSessionStore;

/// The sign-in page: the one page anyone may load.
pub const LOGIN_PAGE: &str = "/login";

/// Every route, without the fallback and the outer guards: what [`app`] serves, and what
/// [`route_table`] lists. Two routers: [`public_routes`], the short list anyone may reach, and
/// [`protected_routes`], everything else, behind the sign-in gate by construction.
fn routes(state: &AppState) -> Router<AppState> {
    public_routes(state).merge(protected_routes(state))
}

/// What anyone may reach: health and metrics, signing in and out, the public status page with
/// its feeds and sign-up, and the webhook provider's callback (which its handler authenticates
/// by signature). The client under /pkg and other static files are served outside both. Nothing else is public.
fn public_routes(state: &AppState) -> Router<AppState> {
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(state.ports.clone());
            provide_context(leptos_router::Method::Get);
        }
    };
    let options = state.leptos_options.clone();
    let login_page =
        leptos_axum::render_app_to_stream_with_context(context, move || shell(options.clone()));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics::handler))
        .route(LOGIN_PAGE, get(login_page))
        .route("/auth/login", post(login::login))
        .route("/auth/logout", post(login::logout))
        .merge(status::public_router())
        .merge(Router::from(openapi::public()))
}

/// Every other route (the REST API, every page, every server function) answers only a
/// signed-in caller: the sign-in gate is this router's route layer, so whatever is added here
/// is private without anyone having to remember it. Roles are checked in the services.
fn protected_routes(state: &AppState) -> Router<AppState> {
    let ports = state.ports.clone();
    let context = move || provide_context(ports.clone());
    let pages = generate_route_list(App).into_iter().filter(|r| r.path() != LOGIN_PAGE).collect();
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::handler))
        .merge(Router::from(openapi::protected()))
        .leptos_routes_with_context(state, pages, context, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .route_layer(from_fn(guard::require_login))
}

/// Every (method, path) the router serves — REST routes, pages and server functions — read
/// from the router itself, for the role-matrix test (a route nobody listed fails it).
pub fn route_table(state: &AppState) -> Vec<(String, String)> {
    parse_route_debug(&format!("{:?}", routes(state)))
}

/// The (method, path) pairs of [`public_routes`]: what anyone may reach.
pub fn public_route_table(state: &AppState) -> Vec<(String, String)> {
    parse_route_debug(&format!("{:?}", public_routes(state)))
}

/// Reads axum's `Debug` of a router: `RouteId(n): MethodRouter(MethodRouter { get: BoxedHandler,
/// … })` for the methods and `paths: {RouteId(n): "/path", …}` for the paths.
fn parse_route_debug(text: &str) -> Vec<(String, String)> {
    const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];
    let mut paths = std::collections::BTreeMap::new();
    if let Some(node) = text.split("paths: {").nth(1) {
        for entry in node.split("RouteId(").skip(1) {
            let Some((id, rest)) = entry.split_once("): \"") else { continue };
            let Some((path, _)) = rest.split_once('"') else { continue };
            paths.insert(id.to_string(), path.to_string());
        }
    }
    let routes_part = text.split("node: Node").next().unwrap_or_default();
    let mut out = Vec::new();
    for entry in routes_part.split("RouteId(").skip(1) {
        let Some((id, rest)) = entry.split_once("): MethodRouter(MethodRouter {") else { continue };
        let Some(path) = paths.get(id) else { continue };
        for m in METHODS {
            let present =
                rest.split_once(&format!(" {m}: ")).is_some_and(|(_, v)| !v.starts_with("None"));
            if present {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

pub fn app(state: AppState) -> Router {
    let ports = state.ports.clone();
    let context = move || provide_context(ports.clone());
    let cfg = &state.config.session;
    let sessions = SessionManagerLayer::new(SqlSessionStore::new(state.store.clone()))
        .with_name(cfg.cookie_name.clone())
        .with_http_only(true)
        .with_secure(cfg.cookie_secure)
        .with_same_site(match cfg.same_site {
            SameSite::Lax => tower_sessions::cookie::SameSite::Lax,
            SameSite::Strict => tower_sessions::cookie::SameSite::Strict,
        })
        .with_expiry(Expiry::OnInactivity(CookieDuration::seconds(cfg.idle_timeout_secs)));

    routes(&state)
        .nest_service("/pkg", assets::pkg(&state.config.site_root))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        // Layers run bottom-up on the way in: security headers (on every answer, panics too) →
        // body limit → metrics → sessions → caller → cross-site check → password-change gate,
        // so refused requests are counted too; the sign-in gate is the protected routes' own.
        .layer(from_fn(guard::require_password_change))
        .layer(from_fn(guard::same_origin_mutations))
        .layer(from_fn_with_state(state.clone(), guard::resolve_principal))
        .layer(sessions)
        .layer(from_fn_with_state(state.metrics.clone(), metrics::track))
        .layer(from_fn_with_state(state.config.security.max_body_bytes, hardening::limit_body))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.security.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(from_fn_with_state(state.config.session.cookie_secure, hardening::security_headers))
        // Pages and JSON gzipped on the fly for clients that ask (never event streams, nor
        // answers already encoded: /pkg serves its own precompressed brotli and gzip).
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

/// Shared metrics handle type.
pub type SharedMetrics = Arc<metrics::Metrics>;
