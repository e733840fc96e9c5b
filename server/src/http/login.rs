//! Sign-in and sign-out. Plain form posts (they work before the WebAssembly loads); failures
//! come back to the sign-in page as `?error=` and are audited with the reason.

use app::domain::auth::Principal;
use axum::Extension;
use axum::extract::{Form, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;
use tower_sessions::Session;

use super::guard::ClientIp;
use crate::audit;
use crate::auth::throttle::InFlight;
use crate::auth::{SESSION_EPOCH, SESSION_LOGIN_AT, SESSION_USER, password};
use crate::http::state::AppState;
use crate::store::AuditRecord;

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this origin, so the sign-in page cannot be used as an open redirect. A
/// browser drops tabs and newlines from a URL and reads `\` as `/`, so `/\t/evil.test` would
/// become `//evil.test` (another host): any control character, whitespace or backslash, and
/// anything that starts like a scheme-relative URL, falls back to `/`.
pub(crate) fn safe_next(next: &str) -> &str {
    let mut chars = next.chars();
    let same_origin_path = chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && next.len() <= 2048
        && !next.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        && !next.starts_with("/login");
    if same_origin_path { next } else { "/" }
}

fn failure(username: &str, ip: &str, reason: &str) -> AuditRecord {
    let shown: String = username.chars().take(64).collect();
    AuditRecord {
        actor: shown.clone(),
        role: "anonymous".into(),
        source_ip: ip.to_string(),
        action: "auth.login".into(),
        object: format!("user:{shown}"),
        outcome: "failure".into(),
        details: json!({ "reason": reason }),
    }
}

#[tracing::instrument(skip_all, fields(username = %form.username))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    session: Session,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).to_string();
    let back = |error: &str| {
        let mut url = format!("/login?error={error}");
        if next != "/" {
            url.push_str(&format!("&next={}", app::domain::audit::encode_component(&next)));
        }
        Redirect::to(&url).into_response()
    };
    let username = form.username.trim().to_string();
    let limits = &state.config.auth;
    let since = chrono::Utc::now() - chrono::Duration::seconds(limits.failure_window_secs);
    // Failures of this account from this address, and of this address: a stranger guessing
    // alice's password locks out the stranger, not alice (who signs in from elsewhere).
    let recorded = async {
        let by_account =
            state.store.count_login_failures(Some(&username), Some(&ip), since).await?;
        let by_ip = state.store.count_login_failures(None, Some(&ip), since).await?;
        Ok::<_, crate::store::StoreError>((by_account, by_ip))
    };
    let (by_account, by_ip) = match recorded.await {
        Ok(counts) => counts,
        Err(e) => {
            tracing::error!(error = %e, "sign-in throttle check failed");
            return back("unavailable");
        }
    };
    // Counted before any hashing, with the attempts still in flight.
    let reservation = state.login_attempts.reserve([
        (InFlight::account_key(&username, &ip), by_account, limits.max_failures_per_user),
        (ip.clone(), by_ip, limits.max_failures_per_ip),
    ]);
    let Some(_reservation) = reservation else {
        let mut rec = failure(&username, &ip, "throttled");
        rec.outcome = "throttled".into();
        if let Err(e) = state.store.append_audit(rec).await {
            tracing::error!(error = %e, "could not audit a throttled sign-in");
        }
        return back("throttled");
    };

    let user = match state.store.find_user_by_name(&username).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return back("unavailable");
        }
    };
    let ok =
        match password::try_verify(form.password, user.as_ref().map(|u| u.password_hash.clone()))
            .await
        {
            Ok(ok) => ok,
            Err(busy) => {
                tracing::warn!(%busy, "sign-in refused: the password pool is full");
                return back("busy");
            }
        };
    let user = match (user, ok) {
        (Some(u), true) if !u.disabled => u,
        (found, matched) => {
            let reason = match (found, matched) {
                (None, _) => "unknown user",
                (Some(u), true) if u.disabled => "account disabled",
                (Some(u), _) if u.disabled => "account disabled",
                _ => "wrong password",
            };
            if let Err(e) = state.store.append_audit(failure(&username, &ip, reason)).await {
                tracing::error!(error = %e, "could not audit a failed sign-in");
            }
            return back("invalid");
        }
    };

    // A fresh session id at every sign-in defeats session fixation.
    let stored = async {
        session.cycle_id().await?;
        session.insert(SESSION_USER, user.id).await?;
        session.insert(SESSION_LOGIN_AT, chrono::Utc::now().timestamp()).await?;
        session.insert(SESSION_EPOCH, user.session_epoch).await?;
        Ok::<_, tower_sessions::session::Error>(())
    };
    if let Err(e) = stored.await {
        tracing::error!(error = %e, "could not start a session");
        return back("unavailable");
    }
    let rec = AuditRecord {
        actor: user.username.clone(),
        role: user.role.clone(),
        source_ip: ip,
        action: "auth.login".into(),
        object: format!("user:{}", user.username),
        outcome: "success".into(),
        details: json!({ "method": "password" }),
    };
    if let Err(e) = state.store.record_login(user.id, rec).await {
        tracing::error!(error = %e, "could not record a sign-in");
        let _ = session.flush().await;
        return back("unavailable");
    }
    let dest = if user.must_change_password { "/account" } else { next.as_str() };
    Redirect::to(dest).into_response()
}

pub async fn logout(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    session: Session,
) -> Response {
    if let Some(Extension(p)) = principal {
        let rec =
            audit::record(&p, "auth.logout", format!("user:{}", p.username), "success", json!({}));
        if let Err(e) = state.store.append_audit(rec).await {
            tracing::error!(error = %e, "could not audit a sign-out");
        }
    }
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "could not delete the session");
    }
    Redirect::to("/login?signed_out=1").into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(safe_next("/audit?actor=x"), "/audit?actor=x");
        assert_eq!(safe_next("/campaigns/12#steps"), "/campaigns/12#steps");
        for bad in [
            "//evil.test/",
            "https://evil.test/",
            "/\\evil.test",
            "\\/evil.test",
            "/\t/evil.test",
            "/\n/evil.test",
            "/\r\n/evil.test",
            "\t//evil.test",
            "/ /evil.test",
            "/\u{0b}/evil.test",
            "/a\\b",
            "javascript:alert(1)",
            "evil.test",
            "",
            "/login?next=//evil.test",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(3000))), "/");
    }
}
