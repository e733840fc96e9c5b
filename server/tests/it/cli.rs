//! The `switchyard` binary: help, configuration errors, users, tokens and audit verify.

use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app_on;

fn switchyard(db: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("SWITCHYARD_LISTEN");
    cmd
}

#[test]
fn help_lists_the_commands_and_the_settings() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard")).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "serve",
        "user",
        "token",
        "audit",
        "SWITCHYARD_LISTEN",
        "SWITCHYARD_DATABASE_URL",
        "SWITCHYARD_LOG_FORMAT",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn a_bad_setting_exits_with_code_2_naming_the_key_and_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = switchyard(&dir.path().join("s.db"))
        .env("SWITCHYARD_LISTEN", "not-an-address")
        .arg("serve")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen = 'not-an-address'"), "{err}");
    assert!(err.contains("SWITCHYARD_LISTEN"), "{err}");

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "log_format = \"xml\"\n").expect("write");
    let out = switchyard(&dir.path().join("s.db"))
        .args(["--config"])
        .arg(&cfg)
        .arg("serve")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("log_format = 'xml'") && err.contains("pretty or json"), "{err}");
}

#[tokio::test]
async fn user_add_then_token_create_gives_a_working_token_with_that_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let mut child = switchyard(&db)
        .args(["user", "add", "opal", "--role", "operator", "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(b"a long enough password\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = switchyard(&db).args(["token", "create", "opal"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "only the token is printed");
    assert!(token.starts_with("swy_"));

    let app = spawn_app_on(&db, &[]).await;
    let res = app.get_bearer("/api/v1/me", token).await;
    assert_eq!(res.status(), StatusCode::OK);
    let me: Value = res.json().await.expect("json");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["username"], "opal");
    app.stop().await;

    let out = switchyard(&db)
        .args(["user", "add", "x", "--role", "root", "--password-stdin"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("viewer, operator, approver, admin"));
}

#[test]
fn audit_verify_exits_0_when_intact_and_1_naming_the_broken_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    for name in ["a1", "a2", "a3"] {
        let mut child = switchyard(&db)
            .args(["user", "add", name, "--role", "viewer", "--password-stdin"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawn");
        child.stdin.take().expect("stdin").write_all(b"a long enough password\n").expect("write");
        assert!(child.wait().expect("wait").success());
    }
    let out = switchyard(&db).args(["audit", "verify"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 events verified"));

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.expect("pool");
        sqlx::query("DROP TRIGGER audit_events_append_only_update")
            .execute(&pool)
            .await
            .expect("drop");
        sqlx::query("UPDATE audit_events SET actor = 'someone-else' WHERE id = 2")
            .execute(&pool)
            .await
            .expect("tamper");
        pool.close().await;
    });
    let out = switchyard(&db).args(["audit", "verify"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("event #2"), "{text}");
}
