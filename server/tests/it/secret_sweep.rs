//! The secret-string sweep: a server seeded with every kind of secret (backend API keys and
//! HMAC secrets, script `env` values, the SMTP password, subscribers' signing secrets, API
//! tokens, password hashes) and with recipients (e-mail addresses, a Slack-style webhook URL);
//! then every GET route the router serves — REST, pages, the event stream, exports — and the
//! read-only server functions, as a viewer and as an operator, is searched for them. No secret
//! may appear to either; recipients only to the operator.

use std::time::Duration;

use app::domain::auth::Role;
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const SMTP_PASSWORD: &str = "SEKRET-smtp-password-0001";
const SCRIPT_ENV: &str = "SEKRET-script-env-0002";
const WEBHOOK_SECRET: &str = "SEKRET-webhook-provider-secret-0003";
const PDNS_KEY: &str = "SEKRET-pdns-api-key-0004";
const RECIPIENT_EMAIL: &str = "sekret.subscriber@corp-sekret.example";
const RECIPIENT_HOOK: &str =
    "https://hooks.slack.example/services/T0SEKRET/B0SEKRET/SEKRETSLACKPATH";

fn environment() -> Value {
    json!({
        "name": "production",
        "targets": [
            { "name": "web-1", "address": "127.0.0.1:9", "group": "a", "release": "v1", "health_url": "http://127.0.0.1:9/healthz" },
            { "name": "web-2", "address": "127.0.0.1:9", "group": "b", "release": "v1", "health_url": "http://127.0.0.1:9/healthz" },
        ],
        "pools": [{ "name": "web", "router": "edge", "targets": ["web-1", "web-2"] }],
        "backends": [
            { "name": "edge", "kind": "router", "driver": "embedded", "settings": { "listen": { "web": "127.0.0.1:0" } } },
            { "name": "deploy", "kind": "provider", "driver": "script",
              "settings": { "create": "true", "replace": "true", "destroy": "true", "describe": "true", "env": { "DEPLOY_TOKEN": SCRIPT_ENV } } },
            { "name": "hooks", "kind": "provider", "driver": "webhook", "settings": { "url": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET } },
            { "name": "dns", "kind": "router", "driver": "powerdns", "settings": { "api_url": "http://127.0.0.1:9", "api_key": PDNS_KEY, "zone": "example.test" } },
            { "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": {} },
            { "name": "mail", "kind": "channel", "driver": "email" },
        ],
    })
}

fn campaign() -> Value {
    let start = chrono::Utc::now() + chrono::Duration::hours(48);
    json!({
        "name": "web-canary", "service": "web", "environment": "production", "pool": "web",
        "from_release": "v1", "to_release": "v2",
        "window": { "start": start.to_rfc3339(), "end": (start + chrono::Duration::hours(2)).to_rfc3339(), "timezone": "UTC", "components": ["api"] },
        "communications": { "notify": true, "audiences": ["customers"] },
        "strategy": { "kind": "canary", "steps": [{ "weight": "50", "bake_secs": 1 }, { "weight": "100", "bake_secs": 1 }] },
    })
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> (StatusCode, String) {
    let req = app.client().get(format!("{}{path}", app.url)).header(COOKIE, cookie);
    let res = req.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = res.status();
    // The event stream never ends: take what it sends in its first second.
    let mut body = Vec::new();
    let mut res = res;
    let read = async {
        while let Ok(Some(chunk)) = res.chunk().await {
            body.extend_from_slice(&chunk);
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_get_response_shows_a_secret_to_a_viewer_or_an_operator_and_recipients_only_to_the_operator()
 {
    let app = spawn_app_with(&[
        ("SWITCHYARD_SMTP_HOST", "127.0.0.1"),
        ("SWITCHYARD_SMTP_PORT", "9"),
        ("SWITCHYARD_SMTP_TLS", "none"),
        ("SWITCHYARD_SMTP_USERNAME", "mailer"),
        ("SWITCHYARD_SMTP_PASSWORD", SMTP_PASSWORD),
    ])
    .await;
    for (name, role) in [("ada", Role::Admin), ("olivia", Role::Operator), ("vera", Role::Viewer)] {
        app.add_user(name, role).await;
    }
    let admin = app.token_for("ada").await;
    let operator_token = app.token_for("olivia").await;
    let viewer_token = app.token_for("vera").await;
    let http = app.client();
    let res = http
        .post(format!("{}/api/v1/environments", app.url))
        .bearer_auth(&admin)
        .json(&environment())
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
    let env_id = 1;
    // An admin reads it back and sends it unchanged: the secrets stay.
    let read: Value = app
        .get_bearer(&format!("/api/v1/environments/{env_id}"), &admin)
        .await
        .json()
        .await
        .expect("json");
    assert!(!read.to_string().contains("SEKRET"), "{read}");
    let res = http
        .put(format!("{}/api/v1/environments/{env_id}", app.url))
        .bearer_auth(&admin)
        .json(&read["spec"])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let stored: String = sqlx::query_scalar("SELECT spec FROM environments WHERE id = 1")
        .fetch_one(&app.raw_pool().await)
        .await
        .expect("row");
    for s in [SCRIPT_ENV, WEBHOOK_SECRET, PDNS_KEY] {
        assert!(stored.contains(s), "a blank secret keeps the stored value: {s}");
    }

    let sub = app
        .store
        .subscribe_with_format(RECIPIENT_EMAIL, Some(RECIPIENT_HOOK), "slack", &[])
        .await
        .expect("subscribe");
    app.store.confirm_subscriber(&sub.token).await.expect("confirm").expect("known");
    let signing_secret = sub.webhook_secret.clone().expect("a signing secret");
    let res = http
        .post(format!("{}/api/v1/campaigns", app.url))
        .bearer_auth(&operator_token)
        .json(&campaign())
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED, "{}", res.text().await.unwrap_or_default());
    let id = res.json::<Value>().await.expect("json")["summary"]["id"].as_i64().expect("id");
    let res = http
        .post(format!("{}/api/v1/campaigns/{id}/schedule", app.url))
        .bearer_auth(&operator_token)
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let deliveries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries")
        .fetch_one(&app.raw_pool().await)
        .await
        .expect("count");
    assert!(deliveries >= 2, "the subscriber has deliveries by e-mail and webhook");
    // Let a delivery attempt or two record their results (they fail: nothing listens).
    tokio::time::sleep(Duration::from_secs(2)).await;

    let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_all(&app.raw_pool().await)
        .await
        .expect("hashes");
    let token_hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_all(&app.raw_pool().await)
        .await
        .expect("hashes");
    let mut secrets: Vec<String> =
        [SMTP_PASSWORD, SCRIPT_ENV, WEBHOOK_SECRET, PDNS_KEY].map(String::from).to_vec();
    secrets.extend([
        signing_secret,
        sub.token.clone(),
        admin.clone(),
        operator_token.clone(),
        viewer_token.clone(),
    ]);
    secrets.extend(hashes);
    secrets.extend(token_hashes);
    secrets.push("$argon2id$".into());
    let recipients = [RECIPIENT_EMAIL, RECIPIENT_HOOK, "SEKRETSLACKPATH", "corp-sekret.example"];

    let viewer = app.login_ok("vera").await;
    let operator = app.login_ok("olivia").await;
    let mut paths: Vec<String> = app
        .routes
        .iter()
        .filter(|(m, _)| m == "GET")
        .map(|(_, p)| {
            p.replace("/environments/{id}", &format!("/environments/{env_id}"))
                .replace("{id}", &id.to_string())
        })
        .collect();
    paths.extend(
        [
            "/api/v1/audit/export?format=jsonl",
            "/api/v1/audit/export?format=csv",
            "/api/v1/audit?per_page=500",
            "/api/v1/campaigns/1/spec?format=yaml",
            "/api/v1/campaigns/1/spec?format=json",
            "/api/v1/campaigns/1/events?after=0",
        ]
        .map(String::from),
    );
    let server_fns: Vec<(&str, Vec<(&str, String)>)> = vec![
        (app::api::campaigns::GetCampaign::PATH, vec![("id", id.to_string())]),
        (app::api::comms::CampaignComms::PATH, vec![("id", id.to_string())]),
        (app::api::environments::EnvironmentOverviews::PATH, vec![]),
        (app::api::environments::CheckBackends::PATH, vec![]),
        (app::api::editor::EditorEnvironments::PATH, vec![]),
        (app::api::accounts::ListTokens::PATH, vec![]),
        (app::api::audit::SearchAudit::PATH, vec![("filter[per_page]", "500".into())]),
    ];
    let mut searched = 0;
    for (who, cookie) in [("viewer", &viewer), ("operator", &operator)] {
        let mut bodies = Vec::new();
        for path in &paths {
            let (status, body) = get(&app, path, cookie).await;
            assert!(!status.is_server_error(), "GET {path} as {who}: {status}");
            bodies.push((format!("GET {path}"), body));
        }
        for (path, form) in &server_fns {
            let res = http
                .post(format!("{}{path}", app.url))
                .header(COOKIE, cookie.as_str())
                .header("origin", &app.url)
                .form(form)
                .send()
                .await
                .expect("request");
            bodies.push((format!("POST {path}"), res.text().await.unwrap_or_default()));
        }
        for (what, body) in &bodies {
            searched += 1;
            for s in &secrets {
                assert!(!body.contains(s.as_str()), "{what} shows a {who} the secret {s:?}");
            }
            if who == "viewer" {
                for r in recipients {
                    assert!(!body.contains(r), "{what} shows a viewer the recipient {r:?}");
                }
            }
        }
        if who == "operator" {
            let notices = bodies
                .iter()
                .find(|(w, _)| w.ends_with(&format!("/api/v1/campaigns/{id}/notices")))
                .expect("notices");
            assert!(
                notices.1.contains(RECIPIENT_EMAIL),
                "operators do see recipients: {}",
                notices.1
            );
        }
    }
    eprintln!(
        "secret sweep: {searched} responses searched for {} secrets and {} recipients",
        secrets.len(),
        recipients.len()
    );
    assert!(searched > 60, "{searched}");
    app.stop().await;
}
