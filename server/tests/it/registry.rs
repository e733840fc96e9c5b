//! One adapter per (environment, backend), rebuilt when the environment's settings change:
//! two environments with a backend named `edge` never share one, and an edit takes effect
//! without a restart (an embedded router keeps its members and hands its port over).

use app::domain::auth::Role;
use app::domain::environment::Environment;
use app::domain::ids::Weight;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::adapters::registry::{AdapterFactory as _, Registry};
use server::testbed::free_port_block;

use crate::helpers::spawn_app;

fn env(name: &str, listen: &str, timeout: u64) -> Environment {
    serde_json::from_value(json!({
        "name": name,
        "targets": [],
        "pools": [],
        "backends": [
            { "name": "edge", "kind": "router", "driver": "embedded",
              "settings": { "listen": { "web": listen }, "upstream_timeout_secs": timeout } },
        ],
    }))
    .expect("environment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_environments_with_a_backend_of_the_same_name_get_their_own_adapter() {
    let base = free_port_block(3).expect("ports");
    let registry = Registry::new(None);
    let (a, b) = (
        env("staging", &format!("127.0.0.1:{base}"), 30),
        env("production", &format!("127.0.0.1:{}", base + 1), 30),
    );
    let ra = registry.router(&a.backends[0]).expect("staging's edge");
    let rb = registry.router(&b.backends[0]).expect("production's edge");
    ra.add_member("web", "web-1", "127.0.0.1:9", Weight::FULL).await.expect("add");
    assert_eq!(ra.read_pool("web").await.expect("read").len(), 1);
    assert!(rb.read_pool("web").await.expect("read").is_empty(), "production's edge is its own");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", base + 1)).is_ok(),
        "each listens on its own address"
    );

    // The same environment again: the same adapter.
    let again = registry.router(&a.backends[0]).expect("staging's edge");
    assert_eq!(again.read_pool("web").await.expect("read").len(), 1);

    // Staging's settings change (a new port): a new router there, with the members it had;
    // the old port stops accepting.
    let moved = env("staging", &format!("127.0.0.1:{}", base + 2), 5);
    let rc = registry.router(&moved.backends[0]).expect("rebuilt");
    assert_eq!(rc.read_pool("web").await.expect("read").len(), 1, "members carried over");
    assert!(std::net::TcpStream::connect(("127.0.0.1", base + 2)).is_ok());
    crate::helpers::eventually(
        "the old listener stops accepting",
        std::time::Duration::from_secs(5),
        async || std::net::TcpStream::connect(("127.0.0.1", base)).is_err().then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_environment_s_new_backend_settings_take_effect_without_a_restart() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let token = app.token_for("ada").await;
    let environment = |port_min: u16| {
        json!({
            "name": "production",
            "targets": [], "pools": [],
            "backends": [{ "name": "local", "kind": "provider", "driver": "local-process",
                           "settings": { "command": [env!("CARGO_BIN_EXE_switchyard"), "demo-service", "--release", "{release}", "--port", "{port}"],
                                         "port_min": port_min, "port_max": port_min + 9 } }],
        })
    };
    let http = app.client();
    let res = http
        .post(format!("{}/api/v1/environments", app.url))
        .bearer_auth(&token)
        .json(&environment(9300))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.expect("json")["id"].clone();
    let detail = || async {
        let report: Value =
            app.get_bearer("/api/v1/backends/check", &token).await.json().await.expect("json");
        report["backends"][0]["detail"].as_str().unwrap_or_default().to_string()
    };
    assert!(detail().await.contains("9300–9309"), "{}", detail().await);
    let res = http
        .put(format!("{}/api/v1/environments/{id}", app.url))
        .bearer_auth(&token)
        .json(&environment(9400))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(detail().await.contains("9400–9409"), "the edit is in effect: {}", detail().await);
    app.stop().await;
}
