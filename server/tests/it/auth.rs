//! Sign-in, sessions, roles and tokens, at every boundary.

use app::domain::auth::Role;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, location, session_cookie, spawn_app, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn anonymous_page_requests_are_redirected_to_sign_in_with_the_page_to_return_to() {
    let app = spawn_app().await;
    let res = app.get("/audit?actor=bob", None).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?next=%2Faudit%3Factor%3Dbob");
    let res = app.get("/", None).await;
    assert_eq!(location(&res), "/login");
    let res = app.get("/login", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn anonymous_api_requests_get_401_with_a_json_error() {
    let app = spawn_app().await;
    for path in ["/api/v1/me", "/api/v1/users", "/api/v1/audit", "/api/v1/audit/verify"] {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized", "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_user_signs_in_sees_the_home_page_and_me_reports_their_role() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let cookie = app.login_ok("olivia").await;
    let home = app.get("/", Some(&cookie)).await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.expect("body").contains("Welcome, <!>olivia"));
    let me: Value = app.get("/api/v1/me", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(me, json!({ "username": "olivia", "role": "operator", "via": "session" }));
    let actions = app.audit_actions().await;
    assert!(actions.contains(&("auth.login".into(), "user:olivia".into(), "success".into())));
    app.stop().await;
}

#[tokio::test]
async fn a_wrong_password_returns_to_sign_in_with_an_error_and_is_audited_as_a_failure() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let (res, cookie) = app.login("olivia", "not the password at all").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?error=invalid");
    assert!(cookie.is_none(), "no session for a failed sign-in");
    let (res, _) = app.login("nobody", "whatever whatever").await;
    assert_eq!(location(&res), "/login?error=invalid", "unknown users get the same answer");
    let actions = app.audit_actions().await;
    assert!(actions.contains(&("auth.login".into(), "user:olivia".into(), "failure".into())));
    assert!(actions.contains(&("auth.login".into(), "user:nobody".into(), "failure".into())));
    app.stop().await;
}

#[tokio::test]
async fn a_viewer_is_refused_operator_and_admin_actions_with_403() {
    let app = spawn_app().await;
    app.add_user("vera", Role::Viewer).await;
    app.add_user("olivia", Role::Operator).await;
    for who in ["vera", "olivia"] {
        let cookie = app.login_ok(who).await;
        let res = app.get("/api/v1/users", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} lists users");
        let res = app
            .client()
            .post(format!("{}/api/v1/users", app.url))
            .header(COOKIE, &cookie)
            .header("origin", &app.url)
            .json(&json!({ "username": "mallory", "role": "admin", "password": PASSWORD }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} adds an admin");
        let res = app.get("/api/v1/audit/verify", Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{who} verifies the chain");
    }
    assert!(app.store.find_user_by_name("mallory").await.expect("lookup").is_none());
    app.stop().await;
}

#[tokio::test]
async fn an_admin_adds_a_user_and_bad_fields_are_named() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let cookie = app.login_ok("ada").await;
    let post = |body: Value| {
        app.client()
            .post(format!("{}/api/v1/users", app.url))
            .header(COOKIE, &cookie)
            .header("origin", &app.url)
            .json(&body)
            .send()
    };
    let res = post(json!({ "username": "bob", "role": "operator", "password": PASSWORD }))
        .await
        .expect("req");
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = post(json!({ "username": "bob", "role": "operator", "password": PASSWORD }))
        .await
        .expect("req");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.expect("json");
    assert!(
        body["error"]["fields"]["username"].as_str().expect("field").contains("already exists")
    );
    let res = post(json!({ "username": "carol", "role": "root", "password": PASSWORD }))
        .await
        .expect("req");
    let body: Value = res.json().await.expect("json");
    assert!(body["error"]["fields"]["role"].as_str().expect("field").contains("viewer, operator"));
    let res = post(json!({ "username": "carol", "role": "viewer", "password": "short" }))
        .await
        .expect("req");
    let body: Value = res.json().await.expect("json");
    assert!(body["error"]["fields"]["password"].as_str().expect("field").contains("at least 12"));
    assert!(
        app.store.find_user_by_name("carol").await.expect("lookup").is_none(),
        "nothing half-written"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_and_their_open_session_stops_working() {
    let app = spawn_app().await;
    let id = app.add_user("dora", Role::Operator).await;
    let cookie = app.login_ok("dora").await;
    app.store
        .set_user_disabled(
            id,
            true,
            server::audit::system_record("user.disable", "user:dora", json!({})),
        )
        .await
        .expect("disable");
    let res = app.get("/api/v1/me", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "the open session ended");
    let (res, cookie) = app.login("dora", PASSWORD).await;
    assert_eq!(location(&res), "/login?error=invalid");
    assert!(cookie.is_none());
    let failures: Vec<String> = app
        .audit_rows("auth.login")
        .await
        .into_iter()
        .filter(|r| r.outcome == "failure")
        .map(|r| r.details)
        .collect();
    assert!(failures.iter().any(|d| d.contains("account disabled")));
    app.stop().await;
}

#[tokio::test]
async fn an_api_token_carries_its_users_role_and_a_viewer_token_cannot_mutate() {
    let app = spawn_app().await;
    app.add_user("vera", Role::Viewer).await;
    let token = app.token_for("vera").await;
    let me: Value = app.get_bearer("/api/v1/me", &token).await.json().await.expect("json");
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["via"], "token");
    let res = app
        .client()
        .post(format!("{}/api/v1/users", app.url))
        .bearer_auth(&token)
        .json(&json!({ "username": "x", "role": "viewer", "password": PASSWORD }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app.get_bearer("/api/v1/me", "swy_not-a-real-token").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&app.raw_pool().await)
        .await
        .expect("rows");
    assert!(!stored.iter().any(|h| h == &token), "only the hash is stored");
    app.stop().await;
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let res = app
        .client()
        .post(format!("{}/auth/login", app.url))
        .header("origin", "http://evil.example")
        .form(&[("username", "olivia"), ("password", PASSWORD)])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let cookie = app.login_ok("olivia").await;
    let res = app
        .client()
        .post(format!("{}/auth/logout", app.url))
        .header(COOKIE, &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/me", Some(&cookie)).await.status(),
        StatusCode::OK,
        "still signed in"
    );
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled_per_account() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    for _ in 0..5 {
        let (res, _) = app.login("olivia", "wrong wrong wrong").await;
        assert_eq!(location(&res), "/login?error=invalid");
    }
    let (res, cookie) = app.login("olivia", PASSWORD).await;
    assert_eq!(location(&res), "/login?error=throttled", "even the right password waits");
    assert!(cookie.is_none());
    app.add_user("other", Role::Operator).await;
    app.login_ok("other").await;
    app.stop().await;
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled_per_address() {
    let app = spawn_app_with(&[("SWITCHYARD_MAX_FAILURES_PER_IP", "3")]).await;
    app.add_user("olivia", Role::Operator).await;
    for name in ["a", "b", "c"] {
        let (res, _) = app.login(name, "wrong wrong wrong").await;
        assert_eq!(location(&res), "/login?error=invalid");
    }
    let (res, _) = app.login("olivia", PASSWORD).await;
    assert_eq!(location(&res), "/login?error=throttled");
    app.stop().await;
}

#[tokio::test]
async fn a_session_survives_a_server_restart() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let cookie = app.login_ok("olivia").await;
    let db = app.db_path.clone();
    let dir = app.stop().await;
    let again = spawn_app_on(&db, &[]).await;
    let res = again.get("/api/v1/me", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    again.stop().await;
    drop(dir);
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let cookie = app.login_ok("olivia").await;
    let res = app
        .client()
        .post(format!("{}/auth/logout", app.url))
        .header(COOKIE, &cookie)
        .header("origin", &app.url)
        .send()
        .await
        .expect("request");
    assert_eq!(location(&res), "/login?signed_out=1");
    // Replaying the old cookie (as a thief would) no longer works.
    assert_eq!(app.get("/api/v1/me", Some(&cookie)).await.status(), StatusCode::UNAUTHORIZED);
    let actions = app.audit_actions().await;
    assert!(actions.contains(&("auth.logout".into(), "user:olivia".into(), "success".into())));
    app.stop().await;
}

#[tokio::test]
async fn each_sign_in_gets_a_new_session_id_and_the_cookie_is_http_only() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let (res, first) = app.login("olivia", PASSWORD).await;
    let raw = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(raw.contains("HttpOnly") && raw.contains("SameSite=Lax"), "{raw}");
    let res = app
        .client()
        .post(format!("{}/auth/login", app.url))
        .header("origin", &app.url)
        .header(COOKIE, first.clone().expect("cookie"))
        .form(&[("username", "olivia"), ("password", PASSWORD)])
        .send()
        .await
        .expect("request");
    let second = session_cookie(res.headers());
    assert!(second.is_some() && second != first, "the id rotates at sign-in");
    assert_eq!(app.get("/api/v1/me", first.as_deref()).await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
