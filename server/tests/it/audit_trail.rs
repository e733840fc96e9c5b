//! The audit trail: chained, filterable, exportable, and tamper-evident.

use app::domain::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

/// An app with an admin signed in and a few events in the chain.
async fn app_with_history() -> (TestApp, String) {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    app.add_user("vera", Role::Viewer).await;
    let _ = app.login("vera", "wrong wrong wrong").await;
    let cookie = app.login_ok("ada").await;
    (app, cookie)
}

async fn verify(app: &TestApp, cookie: &str) -> Value {
    let res = app.get("/api/v1/audit/verify", Some(cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

/// Tampering the way someone with database access would: the append-only triggers go first.
async fn tamper(app: &TestApp, sql: &str) {
    let pool = app.raw_pool().await;
    sqlx::query("DROP TRIGGER audit_events_append_only_update").execute(&pool).await.expect("drop");
    sqlx::query("DROP TRIGGER audit_events_append_only_delete").execute(&pool).await.expect("drop");
    sqlx::query(sql).execute(&pool).await.expect("tamper");
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (app, cookie) = app_with_history().await;
    let report = verify(&app, &cookie).await;
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["events_checked"], 4, "{report}");
    app.stop().await;
}

#[tokio::test]
async fn audit_events_cannot_be_changed_through_sql_while_the_guards_stand() {
    let (app, _) = app_with_history().await;
    let pool = app.raw_pool().await;
    let err = sqlx::query("UPDATE audit_events SET actor = 'x' WHERE id = 1").execute(&pool).await;
    assert!(err.expect_err("refused").to_string().contains("append-only"));
    let err = sqlx::query("DELETE FROM audit_events WHERE id = 1").execute(&pool).await;
    assert!(err.is_err());
    app.stop().await;
}

#[tokio::test]
async fn an_altered_event_is_detected_and_named() {
    let (app, cookie) = app_with_history().await;
    tamper(&app, "UPDATE audit_events SET outcome = 'success' WHERE id = 3").await;
    let report = verify(&app, &cookie).await;
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken"]["event_id"], 3, "{report}");
    assert!(report["first_broken"]["reason"].as_str().expect("reason").contains("altered"));
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_middle_event_is_detected_and_named() {
    let (app, cookie) = app_with_history().await;
    tamper(&app, "DELETE FROM audit_events WHERE id = 2").await;
    let report = verify(&app, &cookie).await;
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken"]["event_id"], 2, "{report}");
    assert!(report["first_broken"]["reason"].as_str().expect("reason").contains("missing"));
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_newest_event_is_detected_through_the_chain_head() {
    let (app, cookie) = app_with_history().await;
    // Cut the tail before verify's own request adds nothing (GET does not audit).
    tamper(&app, "DELETE FROM audit_events WHERE id = (SELECT MAX(id) FROM audit_events)").await;
    let report = verify(&app, &cookie).await;
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken"]["event_id"], 4, "{report}");
    assert!(
        report["first_broken"]["reason"]
            .as_str()
            .expect("reason")
            .contains("newest events were removed")
    );
    app.stop().await;
}

#[tokio::test]
async fn the_audit_list_filters_by_actor_action_object_and_time_and_pages() {
    let (app, cookie) = app_with_history().await;
    let page: Value =
        app.get("/api/v1/audit?action=auth.login", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(page["total"], 2);
    let page: Value =
        app.get("/api/v1/audit?actor=ada", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(page["total"], 1);
    let page: Value =
        app.get("/api/v1/audit?object=user:v", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(page["total"], 2, "object matches by prefix: vera's creation and failed sign-in");
    let page: Value =
        app.get("/api/v1/audit?from=2999-01-01", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(page["total"], 0);
    let page: Value =
        app.get("/api/v1/audit?per_page=1&page=1", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(page["events"].as_array().expect("events").len(), 1);
    assert_eq!(page["events"][0]["id"], 3, "newest first: page 1 of size 1 is the second newest");
    let res = app.get("/api/v1/audit?from=yesterday", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.expect("json");
    assert!(body["error"]["fields"]["from"].as_str().expect("from").contains("YYYY-MM-DD"));
    // A whole number is a whole id: campaign:1 finds campaign 1 and what lies under it, not 12.
    for object in ["campaign:1", "campaign:12", "campaign:1/step:3"] {
        app.store
            .append_audit(server::audit::system_record("test.mark", object, serde_json::json!({})))
            .await
            .expect("audit");
    }
    let exact: Value =
        app.get("/api/v1/audit?object=campaign:1", Some(&cookie)).await.json().await.expect("json");
    let objects: Vec<&str> = exact["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["object"].as_str())
        .collect();
    assert_eq!(objects, ["campaign:1/step:3", "campaign:1"], "{exact}");
    app.stop().await;
}

#[tokio::test]
async fn exports_contain_exactly_the_filtered_events_as_csv_and_json_lines() {
    let (app, cookie) = app_with_history().await;
    let res = app.get("/api/v1/audit/export?format=csv&action=auth.login", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .expect("hdr")
            .contains("switchyard-audit.csv")
    );
    let csv = res.text().await.expect("body");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "header + 2 sign-ins: {csv}");
    assert!(lines[0].starts_with("id,ts,actor,role,source_ip,action"));
    let jsonl = app
        .get("/api/v1/audit/export?format=jsonl", Some(&cookie))
        .await
        .text()
        .await
        .expect("body");
    let events: Vec<Value> =
        jsonl.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["prev_hash"], "0".repeat(64));
    assert_eq!(events[1]["prev_hash"], events[0]["hash"]);
    let res = app.get("/api/v1/audit/export?format=xml", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.stop().await;
}
