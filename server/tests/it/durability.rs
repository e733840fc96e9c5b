//! What keeps an installation whole over time: one server per SQLite database, an online
//! backup that restores into a working server, and retention that bounds what grows (never
//! the audit trail).

use std::process::Command;
use std::time::Duration;

use app::domain::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, runnable, spawn_app_on};

const EXE: &str = env!("CARGO_BIN_EXE_switchyard");

#[tokio::test]
async fn a_second_server_on_the_same_sqlite_database_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let first = spawn_app_on(&db, &[]).await;
    let out = Command::new(EXE)
        .arg("serve")
        .env_remove("SWITCHYARD_CONFIG")
        .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHYARD_SITE_ROOT", "/nonexistent-site")
        .output()
        .expect("serve runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second engine on one database must not start");
    assert!(err.contains("another `switchyard serve`"), "{err}");
    assert!(err.contains(&format!("pid {}", std::process::id())), "names the holder: {err}");
    assert!(err.contains("use PostgreSQL"), "{err}");
    first.stop().await;
    // Once the first has stopped, the database is free again.
    let again = spawn_app_on(&db, &[]).await;
    again.stop().await;
}

async fn api(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = app.client().request(method, format!("{}{path}", app.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

fn cli(db: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(EXE)
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", db.display()))
        .output()
        .expect("cli runs");
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

// A running campaign (real processes) while the backup is taken: the server needs threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_a_running_campaign_restores_into_a_server_whose_audit_chain_verifies()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let app = spawn_app_on(&db, &[]).await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let env =
        runnable(server::client::read_spec_file(&examples.join("environment.toml")).expect("env"));
    api(&app, &token, reqwest::Method::POST, "/api/v1/environments", Some(env.clone())).await;
    app.bring_up(&env).await;
    let spec = server::client::read_spec_file(&examples.join("canary.toml")).expect("spec");
    let id = api(&app, &token, reqwest::Method::POST, "/api/v1/campaigns", Some(spec.clone()))
        .await["summary"]["id"]
        .as_i64()
        .expect("id");
    let mut other = spec;
    other["name"] = json!("a-second-draft");
    api(&app, &token, reqwest::Method::POST, "/api/v1/campaigns", Some(other)).await;
    api(&app, &token, reqwest::Method::POST, &format!("/api/v1/campaigns/{id}/start"), None).await;
    crate::helpers::eventually("the campaign provisions", Duration::from_secs(30), async || {
        let d =
            api(&app, &token, reqwest::Method::GET, &format!("/api/v1/campaigns/{id}"), None).await;
        (d["summary"]["step_index"].as_i64().unwrap_or(0) >= 2).then_some(())
    })
    .await;

    let backup = dir.path().join("backup.db");
    let (ok, out) = cli(&db, &["backup", backup.to_str().expect("path")]);
    assert!(ok, "{out}");
    assert!(out.contains("to restore: stop the server"), "it says how to restore: {out}");
    let (ok, out) = cli(&db, &["backup", backup.to_str().expect("path")]);
    assert!(!ok && out.contains("already exists"), "never overwrites: {out}");
    let list = |app: &TestApp, token: String| {
        let app_url = app.url.clone();
        let http = app.client();
        async move {
            let v: Value = http
                .get(format!("{app_url}/api/v1/campaigns"))
                .bearer_auth(token)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            v["campaigns"]
                .as_array()
                .expect("campaigns")
                .iter()
                .map(|c| (c["id"].as_i64(), c["name"].as_str().map(str::to_string)))
                .collect::<Vec<_>>()
        }
    };
    let before = list(&app, token.clone()).await;
    app.stop().await;

    // Restore into a new server, elsewhere.
    let restored_dir = tempfile::tempdir().expect("tempdir");
    let restored = restored_dir.path().join("s.db");
    std::fs::copy(&backup, &restored).expect("copy");
    let (ok, out) = cli(&restored, &["audit", "verify"]);
    assert!(ok && out.contains("audit chain intact"), "{out}");
    let app = spawn_app_on(&restored, &[]).await;
    assert_eq!(list(&app, token).await, before, "the campaign list matches");
    app.stop().await;
}

/// The retention the pruning test applies: samples 30 days, events and deliveries a year,
/// unconfirmed subscribers a week.
const KEEP: server::store::Retention = server::store::Retention {
    samples_days: 30,
    events_days: 365,
    deliveries_days: 365,
    unconfirmed_subscribers_days: 7,
};

async fn audit_count(pool: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events").fetch_one(pool).await.expect("count")
}

#[tokio::test]
async fn retention_prunes_old_samples_events_attempts_and_unconfirmed_subscribers_but_never_the_audit_trail()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    // The store alone, not a running server: the server's own hourly pruner runs its first
    // sweep at start-up and would race these inserts.
    let url = format!("sqlite://{}", db.display());
    let store = server::store::connect(&url).await.expect("store");
    let pool = sqlx::SqlitePool::connect(&url).await.expect("raw pool");
    let ts =
        |days: i64| server::store::format_ts(chrono::Utc::now() - chrono::Duration::days(days));
    sqlx::query(
        "INSERT INTO environments (name, spec, created_at, updated_at) VALUES ('e', '{}', ?, ?)",
    )
    .bind(ts(500))
    .bind(ts(500))
    .execute(&pool)
    .await
    .expect("env");
    for (name, finished) in [("old", Some(ts(400))), ("recent", Some(ts(10))), ("draft", None)] {
        sqlx::query("INSERT INTO campaigns (name, environment, pool, strategy, status, spec, created_by, created_at, updated_at, finished_at) VALUES (?, 'e', ?, 'canary', ?, '{}', 'ada', ?, ?, ?)")
            .bind(name).bind(name).bind(if finished.is_some() { "succeeded" } else { "draft" })
            .bind(ts(500)).bind(ts(500)).bind(finished)
            .execute(&pool).await.expect("campaign");
    }
    for c in 1..=3_i64 {
        for age in [400, 40, 1] {
            sqlx::query("INSERT INTO campaign_events (campaign_id, ts, kind, data) VALUES (?, ?, 'x', '{}')")
                .bind(c).bind(ts(age)).execute(&pool).await.expect("event");
            sqlx::query("INSERT INTO health_samples (campaign_id, at, secs, target) VALUES (?, ?, 1.0, 't')")
                .bind(c).bind(ts(age)).execute(&pool).await.expect("sample");
        }
    }
    for (email, created, confirmed) in [
        ("old@x.test", ts(30), None),
        ("new@x.test", ts(1), None),
        ("kept@x.test", ts(30), Some(ts(29))),
    ] {
        sqlx::query(
            "INSERT INTO subscribers (email, token, created_at, confirmed_at) VALUES (?, ?, ?, ?)",
        )
        .bind(email)
        .bind(format!("tok-{email}"))
        .bind(created)
        .bind(confirmed)
        .execute(&pool)
        .await
        .expect("subscriber");
    }
    store
        .append_audit(server::store::AuditRecord {
            actor: "ada".into(),
            role: "admin".into(),
            source_ip: "127.0.0.1".into(),
            action: "campaign.create".into(),
            object: "campaign:1".into(),
            outcome: "ok".into(),
            details: serde_json::json!({}),
        })
        .await
        .expect("audit");
    let audit_before = audit_count(&pool).await;
    let pruned = store.prune(KEEP, chrono::Utc::now()).await.expect("prune");
    assert_eq!(pruned.samples, 6, "samples older than 30 days, of every campaign: {pruned:?}");
    assert_eq!(
        pruned.events, 3,
        "only the campaign finished over a year ago loses its events: {pruned:?}"
    );
    assert_eq!(pruned.unconfirmed_subscribers, 1, "{pruned:?}");
    let left: Vec<String> = sqlx::query_scalar("SELECT email FROM subscribers ORDER BY email")
        .fetch_all(&pool)
        .await
        .expect("subs");
    assert_eq!(left, ["kept@x.test", "new@x.test"]);
    let audit_after = audit_count(&pool).await;
    assert!(audit_before >= 1, "the test has an audit event to keep");
    assert_eq!(audit_after, audit_before, "the audit trail is never pruned");
    assert_eq!(
        store.prune(KEEP, chrono::Utc::now()).await.expect("again"),
        server::store::Pruned::default(),
        "a second run finds nothing"
    );
    // Ten years on, every row is past every retention period; the audit trail still stays.
    store
        .prune(KEEP, chrono::Utc::now() + chrono::Duration::days(3650))
        .await
        .expect("ten years on");
    let audit_later = audit_count(&pool).await;
    assert_eq!(audit_later, audit_before, "the audit trail is never pruned, however old");
    pool.close().await;
}
