//! `GET /api/v1/backends/check` and `switchyard backends check` against a real PowerDNS and an
//! address where nothing listens.

use app::domain::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use crate::real_backends::{Pdns, closed_port};

fn environment(pdns: &Pdns, with_dead: bool) -> Value {
    let mut backends = vec![
        json!({ "name": "dns", "kind": "router", "driver": "powerdns", "settings": pdns.settings(60) }),
        json!({ "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": {} }),
        json!({ "name": "mail", "kind": "channel", "driver": "smtp", "settings": {} }),
    ];
    if with_dead {
        let mut dead = pdns.settings(60);
        dead["api_url"] = json!(format!("http://127.0.0.1:{}", closed_port()));
        backends.insert(
            1,
            json!({ "name": "dead-dns", "kind": "router", "driver": "powerdns", "settings": dead }),
        );
    }
    json!({ "name": "edge", "targets": [], "pools": [], "backends": backends })
}

async fn put_environment(app: &TestApp, admin: &str, id: Option<i64>, env: Value) -> i64 {
    let req = match id {
        None => app.client().post(format!("{}/api/v1/environments", app.url)),
        Some(id) => app.client().put(format!("{}/api/v1/environments/{id}", app.url)),
    };
    let res = req.bearer_auth(admin).json(&env).send().await.expect("request");
    assert!(res.status().is_success(), "{}", res.status());
    res.json::<Value>().await.expect("json")["id"].as_i64().expect("id")
}

async fn cli(app: &TestApp, token: &str) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["backends", "check", "--url", &app.url, "--token", token])
        .env_remove("SWITCHYARD_URL")
        .env_remove("SWITCHYARD_TOKEN")
        .env_remove("SWITCHYARD_CONFIG")
        .kill_on_drop(true)
        .output()
        .await
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn backends_check_reports_each_backend_and_fails_when_one_is_unreachable() {
    let pdns = Pdns::start("example.test.").await;
    let app = spawn_app().await;
    for (name, role) in [("ada", Role::Admin), ("olivia", Role::Operator), ("vera", Role::Viewer)] {
        app.add_user(name, role).await;
    }
    let (ada, olivia, vera) =
        (app.token_for("ada").await, app.token_for("olivia").await, app.token_for("vera").await);
    let id = put_environment(&app, &ada, None, environment(&pdns, true)).await;

    let denied = app.get_bearer("/api/v1/backends/check", &vera).await;
    assert_eq!(
        denied.status(),
        StatusCode::FORBIDDEN,
        "viewers may not make the server connect out"
    );

    let res = app.get_bearer("/api/v1/backends/check", &olivia).await;
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = res.json().await.expect("json");
    let rows = report["backends"].as_array().expect("backends");
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).cloned().expect("row");
    assert_eq!(rows.len(), 4);

    let dns = row("dns");
    assert_eq!(
        (&dns["environment"], &dns["kind"], &dns["driver"], &dns["reachable"]),
        (&json!("edge"), &json!("router"), &json!("powerdns"), &json!(true)),
        "{dns}"
    );
    assert!(dns["version"].as_str().is_some_and(|v| v.starts_with('4')), "{dns}");
    assert_eq!(dns["capabilities"], json!(["dns-switch", "read-back"]));
    assert!(dns["detail"].as_str().is_some_and(|d| d.contains("example.test.")), "{dns}");

    let dead = row("dead-dns");
    assert_eq!((&dead["checked"], &dead["reachable"]), (&json!(true), &json!(false)), "{dead}");
    assert!(dead["error"].as_str().is_some_and(|e| e.contains("cannot reach PowerDNS")), "{dead}");
    assert_eq!(row("probe")["reachable"], true);
    let mail = row("mail");
    assert_eq!((&mail["checked"], &mail["reachable"]), (&json!(false), &json!(false)), "{mail}");

    let (code, out, err) = cli(&app, &olivia).await;
    assert_eq!(code, Some(1), "an unreachable backend fails the command\n{out}{err}");
    let line = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(out.starts_with("ENVIRONMENT"), "{out}");
    assert!(line("dns").contains(" ok ") && line("dns").contains("4."), "{out}");
    assert!(line("dead-dns").contains("UNREACHABLE"), "{out}");
    assert!(line("mail").contains("not checked"), "{out}");
    assert!(out.contains("2 reachable, 1 unreachable, 1 not checked"), "{out}");

    put_environment(&app, &ada, Some(id), environment(&pdns, false)).await;
    let (code, out, err) = cli(&app, &olivia).await;
    assert_eq!(code, Some(0), "all reachable\n{out}{err}");
    assert!(out.contains("2 reachable, 0 unreachable, 1 not checked"), "{out}");
    app.stop().await;
}
