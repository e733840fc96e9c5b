//! Request guards, in the order they run: find the caller (session or bearer token), refuse
//! cross-site mutations, and send anonymous visitors to sign in (pages) or a 401 (API).

use std::net::{IpAddr, SocketAddr};

use app::domain::auth::{AuthVia, Principal, Role};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::auth::{SESSION_EPOCH, SESSION_LOGIN_AT, SESSION_USER, tokens};
use crate::http::error::json_error;
use crate::http::state::AppState;

/// The address a request came from: the peer itself, unless the peer is one of the configured
/// trusted proxies; then the rightmost `X-Forwarded-For` hop that is not a trusted proxy (each
/// proxy appends the address it saw, so everything left of the last untrusted hop is whatever
/// the client chose to write).
///
/// An extractor: [`resolve_principal`] works it out once per request, before any handler.
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        // Only a handler mounted outside the guards could miss it; it then gets what the
        // audit trail writes for an unknown peer rather than a failed request.
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .cloned()
            .unwrap_or_else(|| ClientIp("unknown".into())))
    }
}

pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trusted: &[crate::outbound::IpNet],
) -> String {
    let Some(peer) = peer.map(|p| canonical(p.ip())) else { return "unknown".into() };
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is not an address was written by someone we cannot vouch for: the client
        // is the proxy that passed it on.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client.to_string()
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `203.0.113.9`, `2001:db8::1`, and the `ip:port` / `[v6]:port` forms some proxies write.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// Resolves the caller and stores `ClientIp` and, when signed in, `Principal` in the request.
pub async fn resolve_principal(
    State(state): State<AppState>,
    session: Session,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client_ip(req.headers(), peer, &state.config.security.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip.clone()));

    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        let secret = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let found = match secret {
            Some(s) => state.store.find_active_token(&tokens::hash(s)).await,
            None => Ok(None),
        };
        return match found {
            Ok(Some(t)) if !t.owner.disabled => {
                if let Err(e) = state.store.touch_token(t.token.id).await {
                    tracing::warn!(error = %e, "could not record token use");
                }
                req.extensions_mut().insert(Principal {
                    user_id: t.owner.id,
                    username: t.owner.username,
                    role: t.owner.role.parse().unwrap_or(Role::Viewer),
                    via: AuthVia::Token,
                    source_ip: ip,
                    must_change_password: t.owner.must_change_password,
                });
                next.run(req).await
            }
            Ok(_) => json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the API token is missing, malformed, revoked, expired or belongs to a disabled user",
            ),
            Err(e) => {
                tracing::error!(error = %e, "token lookup failed");
                json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable",
                )
            }
        };
    }

    if let Some(p) = session_principal(&state, &session, ip).await {
        let handle = CurrentSession {
            session: session.clone(),
            store: state.store.clone(),
            user_id: p.user_id,
        };
        req.extensions_mut().insert(app::api::ports::SessionHandle(std::sync::Arc::new(handle)));
        req.extensions_mut().insert(p);
    }
    next.run(req).await
}

/// The caller's session, handed to the password-change server function.
struct CurrentSession {
    session: Session,
    store: crate::store::Store,
    user_id: i64,
}

#[async_trait::async_trait]
impl app::api::ports::SessionPort for CurrentSession {
    /// The password change bumped the user's session epoch, ending every session; this one
    /// takes the new epoch and, like a sign-in, a new id.
    async fn renew_after_password_change(&self) -> Result<(), app::api::ApiError> {
        let user = self
            .store
            .find_user(self.user_id)
            .await?
            .ok_or_else(|| app::api::ApiError::not_found(format!("user {}", self.user_id)))?;
        let renewed = async {
            self.session.cycle_id().await?;
            self.session.insert(SESSION_EPOCH, user.session_epoch).await?;
            Ok::<_, tower_sessions::session::Error>(())
        };
        renewed.await.map_err(|e| {
            tracing::error!(error = %e, "could not carry the session over a password change");
            app::api::ApiError::internal()
        })
    }
}

/// A caller who must choose a new password may do only that (and sign out, and load the page
/// and its assets to do it); everything else is refused on the server, whatever the UI shows.
pub async fn require_password_change(req: Request, next: Next) -> Response {
    let must = req.extensions().get::<Principal>().is_some_and(|p| p.must_change_password);
    if !must {
        return next.run(req).await;
    }
    let path = req.uri().path();
    let allowed = path == "/auth/logout"
        || path == "/account"
        || path.starts_with("/pkg/")
        || path.starts_with("/favicon")
        || PASSWORD_CHANGE_SERVER_FNS.iter().any(|f| f() == path);
    if allowed {
        return next.run(req).await;
    }
    let is_page = *req.method() == Method::GET && !path.starts_with("/api/");
    if is_page {
        return Redirect::to("/account").into_response();
    }
    let err = crate::auth::accounts::password_change_required();
    json_error(StatusCode::FORBIDDEN, "password_change_required", &err.message)
}

/// The server functions the account page needs to change a password: the change itself and
/// who is signed in (the layout shows it).
const PASSWORD_CHANGE_SERVER_FNS: [fn() -> &'static str; 2] = [
    || <app::api::accounts::ChangePassword as leptos::server_fn::ServerFn>::PATH,
    || <app::api::accounts::CurrentUser as leptos::server_fn::ServerFn>::PATH,
];

async fn session_principal(state: &AppState, session: &Session, ip: String) -> Option<Principal> {
    let uid: i64 = session.get(SESSION_USER).await.ok().flatten()?;
    let login_at: i64 = session.get(SESSION_LOGIN_AT).await.ok().flatten().unwrap_or(0);
    let epoch: i64 = session.get(SESSION_EPOCH).await.ok().flatten().unwrap_or(-1);
    let user = state.store.find_user(uid).await.ok().flatten();
    let expired =
        chrono::Utc::now().timestamp() - login_at > state.config.session.absolute_timeout_secs;
    match user {
        Some(u) if !u.disabled && u.session_epoch == epoch && !expired => Some(Principal {
            user_id: u.id,
            username: u.username,
            role: u.role.parse().unwrap_or(Role::Viewer),
            via: AuthVia::Session,
            source_ip: ip,
            must_change_password: u.must_change_password,
        }),
        _ => {
            // Disabled, password reset, role changed or past the absolute lifetime: end it here.
            if let Err(e) = session.flush().await {
                tracing::warn!(error = %e, "could not delete an invalid session");
            }
            None
        }
    }
}

/// A webhook provider's completion callback: no session or token, authenticated by its HMAC
/// signature in the handler. Only `POST` to exactly that path shape.
pub fn is_signed_callback(method: &Method, path: &str) -> bool {
    *method == Method::POST
        && path
            .strip_prefix("/api/v1/providers/webhook/")
            .and_then(|rest| rest.strip_suffix("/complete"))
            .is_some_and(|backend| !backend.is_empty() && !backend.contains('/'))
}

/// The protected routes' gate (their route layer, see `http::protected_routes`): anonymous
/// callers get a sign-in redirect (pages) or a 401 (API and server functions).
pub async fn require_login(req: Request, next: Next) -> Response {
    if req.extensions().get::<Principal>().is_some() {
        return next.run(req).await;
    }
    let path = req.uri().path();
    if path.starts_with("/api/") {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in or send an API token as 'Authorization: Bearer …'",
        );
    }
    let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = if target == "/" {
        "/login".to_string()
    } else {
        format!("/login?next={}", app::domain::audit::encode_component(target))
    };
    Redirect::to(&location).into_response()
}

/// Refuses state-changing requests that a browser says came from another site. Requests
/// authenticated by a bearer token or a signature carry no ambient credentials and are exempt.
pub async fn same_origin_mutations(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // A REST call without any credential is answered 401 by the sign-in gate: there is no
    // ambient authority for a cross-site page to borrow, and the caller learns what is missing.
    let anonymous_api =
        req.uri().path().starts_with("/api/v1/") && req.extensions().get::<Principal>().is_none();
    if safe
        || anonymous_api
        || req.headers().contains_key(header::AUTHORIZATION)
        || is_signed_callback(req.method(), req.uri().path())
    {
        return next.run(req).await;
    }
    match same_origin(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(why) => json_error(StatusCode::FORBIDDEN, "forbidden", why),
    }
}

fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return match site {
            "same-origin" | "none" => Ok(()),
            _ => Err("cross-site request refused"),
        };
    }
    match (get("origin"), get("host")) {
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            if authority.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                Err("cross-site request refused: the Origin does not match this server")
            }
        }
        _ => Err("request refused: a browser mutation must send Origin (or use an API token)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, header::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_accepts_matching_origin_and_refuses_others() {
        assert!(
            same_origin(&headers(&[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&headers(&[("origin", "http://evil.test"), ("host", "127.0.0.1:3000")]))
                .is_err()
        );
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("host", "127.0.0.1:3000")])).is_err());
    }

    #[test]
    fn the_client_is_the_rightmost_hop_that_is_not_a_trusted_proxy() {
        let nets = |list: &[&str]| -> Vec<crate::outbound::IpNet> {
            list.iter().map(|n| crate::outbound::IpNet::parse(n).expect("net")).collect()
        };
        let peer = |ip: &str| Some(SocketAddr::new(ip.parse().expect("ip"), 5000));
        let spoofed = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")]);
        // No trusted proxies: the header is ignored.
        assert_eq!(client_ip(&spoofed, peer("127.0.0.1"), &[]), "127.0.0.1");
        // The peer is a trusted proxy, and so is 10.0.0.2: the client is 203.0.113.9, not the
        // leftmost hop the client wrote itself.
        let trusted = nets(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(client_ip(&spoofed, peer("127.0.0.1"), &trusted), "203.0.113.9");
        // An untrusted peer's header is never read.
        assert_eq!(client_ip(&spoofed, peer("198.51.100.7"), &trusted), "198.51.100.7");
        // Junk in a hop stops the walk at the proxy that passed it on.
        let junk = headers(&[("x-forwarded-for", "203.0.113.9, not-an-ip")]);
        assert_eq!(client_ip(&junk, peer("127.0.0.1"), &trusted), "127.0.0.1");
        // Every hop trusted: the leftmost is the client; ports and mapped addresses are read.
        let inner = headers(&[("x-forwarded-for", "10.1.1.1:443, [::ffff:10.0.0.3]:80")]);
        assert_eq!(client_ip(&inner, peer("::ffff:127.0.0.1"), &trusted), "10.1.1.1");
        assert_eq!(client_ip(&spoofed, None, &trusted), "unknown");
    }

    #[test]
    fn only_a_post_to_a_webhook_completion_path_is_a_signed_callback() {
        let post = Method::POST;
        assert!(is_signed_callback(&post, "/api/v1/providers/webhook/hooks/complete"));
        assert!(!is_signed_callback(&Method::GET, "/api/v1/providers/webhook/hooks/complete"));
        assert!(!is_signed_callback(&post, "/api/v1/providers/webhook//complete"));
        assert!(!is_signed_callback(&post, "/api/v1/providers/webhook/a/b/complete"));
        assert!(!is_signed_callback(&post, "/api/v1/providers/webhook/hooks/complete/x"));
        assert!(!is_signed_callback(&post, "/api/v1/campaigns/1/abort"));
    }
}
