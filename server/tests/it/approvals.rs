//! Approval policy on the server: nobody who created, edited or started a campaign approves
//! it, and an environment's approval floor is one a spec cannot lower.

use std::time::Duration;

use app::domain::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, spawn_app};

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
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

fn environment() -> Value {
    json!({
        "name": "production",
        "approvals": { "required": 2, "role": "approver" },
        "targets": [
            { "name": "web-1", "address": "127.0.0.1:9", "group": "a", "release": "v1", "health_url": "http://127.0.0.1:9/healthz" },
            { "name": "web-2", "address": "127.0.0.1:9", "group": "b", "release": "v1", "health_url": "http://127.0.0.1:9/healthz" },
        ],
        "pools": [{ "name": "web", "router": "edge", "targets": ["web-1", "web-2"] }],
        "backends": [
            { "name": "edge", "kind": "router", "driver": "embedded", "settings": { "listen": { "web": "127.0.0.1:0" } } },
            { "name": "local", "kind": "provider", "driver": "local-process", "settings": { "command": "/nonexistent/provider {release} {port}" } },
            { "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": {} },
        ],
    })
}

fn rolling(required: u8) -> Value {
    json!({
        "name": "web-rolling", "service": "web", "environment": "production", "pool": "web",
        "from_release": "v1", "to_release": "v2",
        "window": { "start": "2030-01-01T07:00:00Z", "end": "2030-01-01T09:00:00Z", "timezone": "UTC" },
        "approvals": { "required": required, "role": "approver" },
        "strategy": { "kind": "rolling", "batch": { "count": 1 }, "max_unavailable": 1, "min_healthy": 1, "drain_timeout_secs": 1, "bake_secs": 1 },
    })
}

async fn status_of(app: &TestApp, token: &str, id: &Value) -> String {
    let (_, d) = call(app, token, Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
    d["summary"]["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_creator_an_editor_and_the_starter_cannot_approve_and_the_environment_floor_holds() {
    let app = spawn_app().await;
    for (name, role) in [
        ("ada", Role::Admin),
        ("olivia", Role::Operator),
        ("eve", Role::Approver),
        ("sam", Role::Approver),
        ("carl", Role::Approver),
        ("dina", Role::Approver),
    ] {
        app.add_user(name, role).await;
    }
    let mut tokens = Vec::new();
    for n in ["ada", "olivia", "eve", "sam", "carl", "dina"] {
        tokens.push(app.token_for(n).await);
    }
    let [ada, olivia, eve, sam, carl, dina]: [String; 6] = tokens.try_into().expect("six");
    // A pool that really runs here (the start checks the record against it).
    let env = crate::helpers::runnable(environment());
    let (status, body) =
        call(&app, &ada, Method::POST, "/api/v1/environments", Some(env.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.bring_up(&env).await;

    // The spec cannot ask for less than the environment requires.
    let (status, body) =
        call(&app, &olivia, Method::POST, "/api/v1/campaigns", Some(rolling(1))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["error"]["fields"]["approvals.required"]
            .as_str()
            .is_some_and(|m| m.contains("at least 2")),
        "{body}"
    );

    // Olivia writes it, Eve edits it, Sam starts it: none of them may approve.
    let (status, created) =
        call(&app, &olivia, Method::POST, "/api/v1/campaigns", Some(rolling(2))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["summary"]["id"].clone();
    let first = &created["plan"]["steps"][0];
    assert_eq!(first["kind"], "approval", "a rolling plan waits for approval first here: {first}");
    let (status, body) =
        call(&app, &eve, Method::PUT, &format!("/api/v1/campaigns/{id}"), Some(rolling(2))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        call(&app, &sam, Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the campaign waits for approval", Duration::from_secs(20), async || {
        (status_of(&app, &ada, &id).await == "awaiting_approval").then_some(())
    })
    .await;
    for (who, token, expected) in
        [("olivia", &olivia, "role"), ("eve", &eve, "edited"), ("sam", &sam, "started")]
    {
        let (status, body) =
            call(&app, token, Method::POST, &format!("/api/v1/campaigns/{id}/approve"), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{who}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected) || message.contains("approver"), "{who}: {message}");
    }
    // Two others approve; one is not enough.
    let (status, _) =
        call(&app, &carl, Method::POST, &format!("/api/v1/campaigns/{id}/approve"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&app, &ada, &id).await, "awaiting_approval", "1 of 2");
    let (status, body) =
        call(&app, &carl, Method::POST, &format!("/api/v1/campaigns/{id}/approve"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "the same approver twice does not count: {body}");
    let (status, _) =
        call(&app, &dina, Method::POST, &format!("/api/v1/campaigns/{id}/approve"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(status_of(&app, &ada, &id).await, "awaiting_approval", "2 of 2: it moves on");
    let _ = call(
        &app,
        &ada,
        Method::POST,
        &format!("/api/v1/campaigns/{id}/abort"),
        Some(json!({ "reason": "test over" })),
    )
    .await;
    app.stop().await;
}
