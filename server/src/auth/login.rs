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
use super::{SESSION_EPOCH, SESSION_LOGIN_AT, SESSION_USER, password};
use crate::audit;
use crate::state::AppState;
use crate::store::{AuditRecord, format_ts};

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Only same-site paths, so the sign-in page cannot be used as an open redirect.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.starts_with("/login")
    {
        next
    } else {
        "/"
    }
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
    Extension(ClientIp(ip)): Extension<ClientIp>,
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
    let since =
        format_ts(chrono::Utc::now() - chrono::Duration::seconds(limits.failure_window_secs));
    let throttled = async {
        let by_user = state.store.count_login_failures(Some(&username), None, &since).await?;
        let by_ip = state.store.count_login_failures(None, Some(&ip), &since).await?;
        Ok::<_, crate::store::StoreError>(
            by_user >= limits.max_failures_per_user || by_ip >= limits.max_failures_per_ip,
        )
    };
    match throttled.await {
        Ok(false) => {}
        Ok(true) => {
            let mut rec = failure(&username, &ip, "throttled");
            rec.outcome = "throttled".into();
            if let Err(e) = state.store.append_audit(rec).await {
                tracing::error!(error = %e, "could not audit a throttled sign-in");
            }
            return back("throttled");
        }
        Err(e) => {
            tracing::error!(error = %e, "sign-in throttle check failed");
            return back("unavailable");
        }
    }

    let user = match state.store.find_user_by_name(&username).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "user lookup failed");
            return back("unavailable");
        }
    };
    let ok = password::verify(form.password, user.as_ref().map(|u| u.password_hash.clone())).await;
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
        assert_eq!(safe_next("//evil.test/"), "/");
        assert_eq!(safe_next("https://evil.test/"), "/");
        assert_eq!(safe_next("/\\evil.test"), "/");
    }
}
