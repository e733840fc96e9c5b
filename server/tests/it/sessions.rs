//! Sessions and tokens under attack: X-Forwarded-For spoofing, `\t`/`\n` in `next`,
//! must-change-password on the server, a password change that keeps this session and ends the
//! others, tokens after a reset or a disable, expiry, admins revoking anyone's tokens, the
//! lockout that slows a guesser and not the account owner, and CSRF on a server function and
//! a REST PUT.

use app::domain::auth::Role;
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, location, session_cookie, spawn_app, spawn_app_with};

/// Calls a server function the way the browser does (form-encoded POST, same origin).
async fn server_fn(
    app: &TestApp,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client()
        .post(format!("{}{path}", app.url))
        .header(COOKIE, cookie)
        .header("origin", &app.url)
        .form(form)
        .send()
        .await
        .expect("server function request")
}

async fn login_from(app: &TestApp, user: &str, password: &str, xff: &str) -> reqwest::Response {
    app.client()
        .post(format!("{}/auth/login", app.url))
        .header("origin", &app.url)
        .header("x-forwarded-for", xff)
        .form(&[("username", user), ("password", password), ("next", "/")])
        .send()
        .await
        .expect("login")
}

async fn last_login_ips(app: &TestApp) -> Vec<String> {
    app.audit_rows("auth.login").await.into_iter().map(|r| r.source_ip).collect()
}

#[tokio::test]
async fn a_spoofed_forwarded_for_neither_forges_the_audit_address_nor_escapes_the_throttle() {
    // Behind a trusted proxy (the test client plays it, from 127.0.0.1) that appends the
    // address it saw, 203.0.113.9; the attacker writes whatever it likes to the left.
    let app = spawn_app_with(&[
        ("SWITCHYARD_TRUSTED_PROXIES", "127.0.0.1"),
        ("SWITCHYARD_MAX_FAILURES_PER_IP", "3"),
    ])
    .await;
    app.add_user("olivia", Role::Operator).await;
    for i in 0..3 {
        let res = login_from(
            &app,
            &format!("guess{i}"),
            "wrong wrong wrong",
            &format!("10.9.9.{i}, 203.0.113.9"),
        )
        .await;
        assert_eq!(location(&res), "/login?error=invalid");
    }
    let res = login_from(&app, "olivia", PASSWORD, "198.51.100.1, 203.0.113.9").await;
    assert_eq!(location(&res), "/login?error=throttled", "a new leftmost hop is not a new client");
    assert!(last_login_ips(&app).await.iter().all(|ip| ip == "203.0.113.9"));
    // The owner, reaching the proxy from another address, is not locked out.
    let res = login_from(&app, "olivia", PASSWORD, "203.0.113.77").await;
    assert_eq!(location(&res), "/");
    app.stop().await;

    // With no trusted proxy the header is ignored altogether.
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    login_from(&app, "olivia", "wrong wrong wrong", "203.0.113.9").await;
    assert_eq!(last_login_ips(&app).await, ["127.0.0.1"]);
    app.stop().await;
}

#[tokio::test]
async fn failed_guesses_lock_out_the_guesser_from_that_address_not_the_account_owner() {
    let app = spawn_app_with(&[("SWITCHYARD_TRUSTED_PROXIES", "127.0.0.1")]).await;
    app.add_user("olivia", Role::Operator).await;
    // Ten guesses at once: no more than the limit are hashed and recorded as failures.
    let guesses = (0..10).map(|_| login_from(&app, "olivia", "wrong wrong wrong", "203.0.113.50"));
    let answers = futures_util::future::join_all(guesses).await;
    let throttled = answers.iter().filter(|r| location(r) == "/login?error=throttled").count();
    let failures =
        app.audit_rows("auth.login").await.iter().filter(|r| r.outcome == "failure").count() as i64;
    assert!(failures <= 5, "{failures} guesses were hashed; the limit is 5");
    assert_eq!(throttled as i64, 10 - failures);
    let res = login_from(&app, "olivia", PASSWORD, "203.0.113.50").await;
    assert_eq!(location(&res), "/login?error=throttled", "the guesser's address waits");
    let res = login_from(&app, "olivia", PASSWORD, "192.0.2.44").await;
    assert_eq!(location(&res), "/", "the owner from their own address signs in");
    app.stop().await;
}

#[tokio::test]
async fn next_accepts_only_a_path_on_this_origin_even_with_tabs_and_newlines() {
    let app = spawn_app_with(&[("SWITCHYARD_MAX_FAILURES_PER_IP", "100")]).await;
    app.add_user("olivia", Role::Operator).await;
    for (next, expected) in [
        ("/campaigns?status=running", "/campaigns?status=running"),
        ("/\t/evil.test", "/"),
        ("/\n/evil.test", "/"),
        ("/\r\n/evil.test", "/"),
        ("\t//evil.test", "/"),
        ("//evil.test", "/"),
        ("/\\evil.test", "/"),
        ("https://evil.test/", "/"),
        ("/ /evil.test", "/"),
    ] {
        let res = app
            .client()
            .post(format!("{}/auth/login", app.url))
            .header("origin", &app.url)
            .form(&[("username", "olivia"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .expect("login");
        assert_eq!(location(&res), expected, "{next:?}");
        // A failed sign-in carries only a safe next back to the form.
        let res = app
            .client()
            .post(format!("{}/auth/login", app.url))
            .header("origin", &app.url)
            .form(&[("username", "nobody"), ("password", "wrong wrong wrong"), ("next", next)])
            .send()
            .await
            .expect("login");
        let back = location(&res);
        assert!(!back.contains("evil"), "{next:?} → {back}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_user_who_must_change_their_password_can_do_nothing_else_until_they_have() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let vera = app.add_user("vera", Role::Operator).await;
    let admin = app.login_ok("ada").await;
    let reset = server_fn(
        &app,
        app::api::accounts::ResetUserPassword::PATH,
        &admin,
        &[("user_id", &vera.to_string())],
    )
    .await;
    assert_eq!(reset.status(), StatusCode::OK);
    let otp = reset.json::<Value>().await.expect("json")["one_time_password"]
        .as_str()
        .expect("otp")
        .to_string();

    let (res, cookie) = app.login("vera", &otp).await;
    assert_eq!(location(&res), "/account", "sent to choose a password");
    let cookie = cookie.expect("a session");
    // Pages lead to the account page; the API, REST and server functions alike, is refused.
    let res = app.get("/campaigns", Some(&cookie)).await;
    assert_eq!((res.status(), location(&res).as_str()), (StatusCode::SEE_OTHER, "/account"));
    assert_eq!(app.get("/account", Some(&cookie)).await.status(), StatusCode::OK);
    for path in ["/api/v1/campaigns", "/api/v1/me", "/api/v1/tokens"] {
        let res = app.get(path, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"]["code"], "password_change_required", "{path}");
    }
    let res =
        server_fn(&app, app::api::accounts::CreateToken::PATH, &cookie, &[("name", "sneaky")])
            .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "a one-time password cannot mint tokens");
    let res = app
        .client()
        .post(format!("{}/api/v1/tokens", app.url))
        .header(COOKIE, &cookie)
        .header("origin", &app.url)
        .json(&json!({ "name": "sneaky" }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.token_count().await, 0);

    // Changing the password lifts it.
    let res = server_fn(
        &app,
        app::api::accounts::ChangePassword::PATH,
        &cookie,
        &[("current", &otp), ("new", "my own long password"), ("confirm", "my own long password")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed = session_cookie(res.headers()).expect("the session id is rotated");
    assert_ne!(renewed, cookie);
    assert_eq!(app.get("/api/v1/me", Some(&renewed)).await.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn changing_your_password_keeps_this_session_under_a_new_id_and_ends_the_others() {
    let app = spawn_app().await;
    app.add_user("olivia", Role::Operator).await;
    let this = app.login_ok("olivia").await;
    let other = app.login_ok("olivia").await;
    let res = server_fn(
        &app,
        app::api::accounts::ChangePassword::PATH,
        &this,
        &[
            ("current", PASSWORD),
            ("new", "another long password"),
            ("confirm", "another long password"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let renewed = session_cookie(res.headers()).expect("a new session id");
    assert_eq!(
        app.get("/api/v1/me", Some(&renewed)).await.status(),
        StatusCode::OK,
        "this session continues"
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&this)).await.status(),
        StatusCode::UNAUTHORIZED,
        "under a new id only"
    );
    assert_eq!(
        app.get("/api/v1/me", Some(&other)).await.status(),
        StatusCode::UNAUTHORIZED,
        "the others end"
    );
    app.stop().await;
}

async fn api(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client().request(method, format!("{}{path}", app.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn tokens_expire_are_revoked_by_a_reset_or_a_disable_and_admins_see_and_revoke_everyones() {
    use reqwest::Method;
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let olivia = app.add_user("olivia", Role::Operator).await;
    let vera = app.add_user("vera", Role::Viewer).await;
    let admin = app.token_for("ada").await;
    let o1 = app.token_for("olivia").await;
    let v1 = app.token_for("vera").await;
    assert_eq!(app.get_bearer("/api/v1/me", &o1).await.status(), StatusCode::OK);

    // The default lifetime is the admin's; a creator may ask for less, never more.
    let (status, policy) = api(&app, Method::GET, "/api/v1/settings/tokens", &o1, None).await;
    assert_eq!((status, policy["default_expiry_days"].as_u64()), (StatusCode::OK, Some(90)));
    let (status, _) = api(
        &app,
        Method::PUT,
        "/api/v1/settings/tokens",
        &o1,
        Some(json!({ "default_expiry_days": 0 })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only an admin sets it");
    let (status, _) = api(
        &app,
        Method::PUT,
        "/api/v1/settings/tokens",
        &admin,
        Some(json!({ "default_expiry_days": 7 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api(
        &app,
        Method::POST,
        "/api/v1/tokens",
        &o1,
        Some(json!({ "name": "long", "expires_in_days": 30 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["fields"]["expires_in_days"].as_str().is_some_and(|m| m.contains("7 days")),
        "{body}"
    );
    let (status, created) =
        api(&app, Method::POST, "/api/v1/tokens", &o1, Some(json!({ "name": "ci" }))).await;
    assert_eq!(status, StatusCode::CREATED);
    let expires = created["token"]["expires_at"].as_str().expect("an expiry").to_string();
    let in_days = (chrono::DateTime::parse_from_rfc3339(&expires).expect("rfc3339").to_utc()
        - chrono::Utc::now())
    .num_hours();
    assert!((167..=168).contains(&in_days), "{expires}");
    let o2 = created["secret"].as_str().expect("secret").to_string();

    // An expired token is refused like a revoked one (time travel: its expiry is moved into the
    // past behind the store's back).
    sqlx::query("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000Z' WHERE id = ?")
        .bind(created["token"]["id"].as_i64())
        .execute(&app.raw_pool().await)
        .await
        .expect("age it");
    let res = app.get_bearer("/api/v1/me", &o2).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.text().await.unwrap_or_default().contains("expired"));

    // Last use is recorded.
    let (_, mine) = api(&app, Method::GET, "/api/v1/tokens", &o1, None).await;
    assert!(mine.as_array().expect("list").iter().any(|t| t["last_used_at"].is_string()), "{mine}");

    // Admins list everyone's tokens and revoke any; others cannot touch anyone else's.
    let (status, all) = api(&app, Method::GET, "/api/v1/admin/tokens", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let owners: Vec<&str> =
        all.as_array().expect("list").iter().filter_map(|t| t["owner"].as_str()).collect();
    assert!(owners.contains(&"olivia") && owners.contains(&"vera"), "{all}");
    assert_eq!(
        api(&app, Method::GET, "/api/v1/admin/tokens", &o1, None).await.0,
        StatusCode::FORBIDDEN
    );
    let vera_token =
        all.as_array().expect("list").iter().find(|t| t["owner"] == "vera").expect("vera's")["id"]
            .clone();
    let (status, _) =
        api(&app, Method::DELETE, &format!("/api/v1/tokens/{vera_token}"), &o1, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an operator cannot revoke someone else's token");
    assert_eq!(app.get_bearer("/api/v1/me", &v1).await.status(), StatusCode::OK);
    let (status, _) =
        api(&app, Method::DELETE, &format!("/api/v1/tokens/{vera_token}"), &admin, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.get_bearer("/api/v1/me", &v1).await.status(), StatusCode::UNAUTHORIZED);

    // A password reset revokes every token of the user; so does disabling them.
    let cookie = app.login_ok("ada").await;
    let res = server_fn(
        &app,
        app::api::accounts::ResetUserPassword::PATH,
        &cookie,
        &[("user_id", &olivia.to_string())],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.get_bearer("/api/v1/me", &o1).await.status(),
        StatusCode::UNAUTHORIZED,
        "after a reset"
    );
    let v2 = app.token_for("vera").await;
    let res = server_fn(
        &app,
        app::api::accounts::SetUserDisabled::PATH,
        &cookie,
        &[("user_id", &vera.to_string()), ("disabled", "true")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = server_fn(
        &app,
        app::api::accounts::SetUserDisabled::PATH,
        &cookie,
        &[("user_id", &vera.to_string()), ("disabled", "false")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        app.get_bearer("/api/v1/me", &v2).await.status(),
        StatusCode::UNAUTHORIZED,
        "re-enabling does not bring tokens back"
    );
    let (_, all) = api(&app, Method::GET, "/api/v1/admin/tokens", &admin, None).await;
    let reasons: Vec<&str> =
        all.as_array().expect("list").iter().filter_map(|t| t["revoked_reason"].as_str()).collect();
    assert!(
        reasons.contains(&"password_reset")
            && reasons.contains(&"disabled")
            && reasons.contains(&"revoked"),
        "{all}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cross_site_server_function_call_and_a_cross_site_rest_put_are_refused() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let cookie = app.login_ok("ada").await;
    let evil = [("origin", "https://evil.test"), ("sec-fetch-site", "cross-site")];
    for headers in [&evil[..1], &evil[1..], &evil[..]] {
        let mut req = app
            .client()
            .post(format!("{}{}", app.url, app::api::accounts::CreateToken::PATH))
            .header(COOKIE, &cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.form(&[("name", "csrf")]).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "server function with {headers:?}");

        let mut req =
            app.client().put(format!("{}/api/v1/environments/1", app.url)).header(COOKIE, &cookie);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.json(&json!({ "name": "production" })).send().await.expect("request");
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "REST PUT with {headers:?}");
    }
    assert_eq!(app.token_count().await, 0, "nothing was created");
    // The same calls from the same origin go through (the PUT then fails on its merits).
    let res =
        server_fn(&app, app::api::accounts::CreateToken::PATH, &cookie, &[("name", "ok")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .client()
        .put(format!("{}/api/v1/environments/1", app.url))
        .header(COOKIE, &cookie)
        .header("origin", &app.url)
        .json(&json!({ "name": "production" }))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
