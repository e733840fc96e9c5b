//! No shell, ever, for values users give: shell metacharacters in every field that reaches a
//! command or a router. The API refuses them by grammar, naming the field; and were one to get
//! past it, the providers pass it as one argument without a shell and the routers refuse an
//! address that is not `host:port`.

use std::collections::BTreeMap;

use app::domain::auth::Role;
use app::domain::ids::Weight;
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::adapters::{Provider as _, Router as _};
use server::testbed::{HaproxyProcess, NginxProcess, free_port_block};

use crate::helpers::spawn_app;

/// The payloads: what an attacker would type into a release, a name or an address.
const NASTY: [&str; 10] = [
    "v2$(touch${IFS}/tmp/x)",
    "v2`id`",
    "v2;id",
    "v2|id",
    "v2&&id",
    "v2\nid",
    "v2 --evil",
    "v2'\"",
    "v2>x",
    "v2{}",
];

fn environment() -> Value {
    json!({
        "name": "production",
        "targets": [
            { "name": "web-1", "address": "127.0.0.1:9101", "group": "a", "release": "v1", "health_url": "http://127.0.0.1:9101/healthz" },
            { "name": "web-2", "address": "127.0.0.1:9102", "group": "b", "release": "v1", "health_url": "http://127.0.0.1:9102/healthz" },
        ],
        "pools": [{ "name": "web", "router": "edge", "targets": ["web-1", "web-2"] }],
        "backends": [
            { "name": "edge", "kind": "router", "driver": "embedded", "settings": { "listen": { "web": "127.0.0.1:0" } } },
            { "name": "local", "kind": "provider", "driver": "local-process", "settings": {} },
            { "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": {} },
        ],
    })
}

fn spec(from: &str, to: &str) -> Value {
    json!({
        "name": "web-canary", "service": "web", "environment": "production", "pool": "web",
        "from_release": from, "to_release": to,
        "window": { "start": "2030-01-01T07:00:00Z", "end": "2030-01-01T09:00:00Z", "timezone": "UTC" },
        "strategy": { "kind": "canary", "steps": [{ "weight": "50", "bake_secs": 1 }, { "weight": "100", "bake_secs": 1 }] },
    })
}

#[tokio::test]
async fn shell_syntax_in_releases_names_and_addresses_is_refused_by_the_api_naming_the_field() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    app.add_user("olivia", Role::Operator).await;
    let (ada, olivia) = (app.token_for("ada").await, app.token_for("olivia").await);
    let http = app.client();
    let post = |token: &str, path: &str, body: &Value| {
        http.post(format!("{}{path}", app.url)).bearer_auth(token).json(body).send()
    };
    let field_of = |body: &Value, field: &str| body["error"]["fields"][field].is_string();

    for bad in NASTY {
        for (pointer, field) in [
            ("/targets/0/release", "targets[0].release"),
            ("/targets/0/name", "targets[0].name"),
            ("/targets/0/address", "targets[0].address"),
            ("/pools/0/name", "pools[0].name"),
            ("/backends/0/name", "backends[0].name"),
        ] {
            let mut env = environment();
            *env.pointer_mut(pointer).expect("pointer") = json!(bad);
            let res = post(&ada, "/api/v1/environments", &env).await.expect("request");
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?} in {field}");
            let body: Value = res.json().await.expect("json");
            assert!(field_of(&body, field), "{bad:?} in {field}: {body}");
        }
    }
    let res = post(&ada, "/api/v1/environments", &environment()).await.expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);

    // An operator's campaign: the release the reporter used, and every other payload,
    // on create, on preview and on update.
    let res = post(&olivia, "/api/v1/campaigns", &spec("v1", "v2")).await.expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.expect("json")["summary"]["id"].clone();
    for bad in NASTY {
        for (from, to, field) in [("v1", bad, "to_release"), (bad, "v2", "from_release")] {
            for path in ["/api/v1/campaigns", "/api/v1/plan"] {
                let res = post(&olivia, path, &spec(from, to)).await.expect("request");
                assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?} to {path}");
                let body: Value = res.json().await.expect("json");
                assert!(field_of(&body, field), "{bad:?} to {path}: {body}");
            }
            let res = http
                .put(format!("{}/api/v1/campaigns/{id}", app.url))
                .bearer_auth(&olivia)
                .json(&spec(from, to))
                .send()
                .await
                .expect("request");
            assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad:?} on update");
        }
    }
    app.stop().await;
}

fn demo_exe() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_process_provider_passes_a_release_as_one_argument_without_a_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pwned = dir.path().join("pwned");
    let base = free_port_block(3).expect("ports");
    let cfg: server::adapters::local_process::Config = serde_json::from_value(json!({
        "command": [demo_exe(), "demo-service", "--release", "{release}", "--port", "{port}"],
        "port_min": base, "port_max": base + 2,
    }))
    .expect("settings");
    let p = server::adapters::local_process::LocalProcess::new(cfg).expect("provider");
    // Past the grammar (this calls the adapter directly), the value still cannot run anything.
    let release = format!("v2$(touch${{IFS}}{})", pwned.display());
    let instance = p.create("web-9", &release, "").await.expect("the instance starts");
    assert_eq!(instance.release, release, "the release reached the program as one argument");
    assert!(!pwned.exists(), "no shell ran the release");
    p.stop_all().await;
}

#[tokio::test]
async fn the_script_provider_passes_every_value_as_one_argument_without_a_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("argv.sh");
    // "$@" quoted: the script itself never re-parses its arguments either.
    std::fs::write(
        &script,
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > \"$OUT\"\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = dir.path().join("argv.txt");
    let pwned = dir.path().join("pwned");
    let cfg: server::adapters::script::Config = serde_json::from_value(json!({
        "create": "./argv.sh {action} --target={target} {release} {group}",
        "replace": "true", "destroy": "true", "describe": "true",
        "workdir": dir.path(),
        "env": { "OUT": out },
    }))
    .expect("settings");
    let p = server::adapters::script::Script::new(cfg).expect("provider");
    let release = format!("v2$(touch {}); id > {}", pwned.display(), pwned.display());
    let group = "a b `id` $HOME";
    let _ = p.create("web-1", &release, group).await;
    let argv = std::fs::read_to_string(&out).expect("the script ran");
    assert_eq!(argv, format!("[create]\n[--target=web-1]\n[{release}]\n[{group}]\n"));
    assert!(!pwned.exists(), "no shell ran the release");

    // A command line with shell syntax is refused when the settings are read.
    let err = serde_json::from_value::<server::adapters::script::Config>(json!({
        "create": "./argv.sh && touch pwned", "replace": "a", "destroy": "a", "describe": "a",
    }))
    .expect_err("shell syntax");
    assert!(err.to_string().contains("without a shell"), "{err}");
}

fn nasty_addresses() -> Vec<String> {
    vec![
        "127.0.0.1:9101;shutdown sessions".into(),
        "127.0.0.1:9101\nset server web/x state maint".into(),
        "127.0.0.1:9101 weight 256".into(),
        "127.0.0.1:9101; }\nserver 10.9.9.9:80".into(),
        "127.0.0.1".into(),
        "$(id):80".into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_refuses_an_address_or_name_that_is_not_one_word_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_port_block(2).expect("ports");
    let front: std::net::SocketAddr = format!("127.0.0.1:{base}").parse().expect("addr");
    let hp = HaproxyProcess::start(dir.path(), &BTreeMap::from([("web".to_string(), front)]))
        .expect("haproxy starts (apt-get install haproxy)");
    let r = server::adapters::haproxy::Haproxy::new(
        serde_json::from_value(hp.settings()).expect("settings"),
    )
    .expect("router");
    let ok = format!("127.0.0.1:{}", base + 1);
    r.add_member("web", "t1", &ok, Weight::FULL).await.expect("a good member");
    let before = r.read_pool("web").await.expect("read");
    for bad in nasty_addresses() {
        let err = r.add_member("web", "t2", &bad, Weight::FULL).await.expect_err(&bad);
        assert!(!err.is_transient(), "{bad:?}: {err}");
    }
    for bad in ["t1;shutdown sessions", "t1\nshow info", "t 1"] {
        assert!(r.add_member("web", bad, &ok, Weight::FULL).await.is_err(), "{bad:?}");
        assert!(r.set_weight("web", bad, Weight::ZERO).await.is_err(), "{bad:?}");
    }
    assert_eq!(r.read_pool("web").await.expect("read"), before, "HAProxy is unchanged");
    assert!(r.command("show info").await.expect("still answers").contains("Name: HAProxy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_refuses_an_address_that_is_not_host_and_port_and_the_file_stays_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_port_block(2).expect("ports");
    let front: std::net::SocketAddr = format!("127.0.0.1:{base}").parse().expect("addr");
    let nginx = NginxProcess::start(dir.path(), &BTreeMap::from([("web".to_string(), front)]))
        .expect("nginx starts (apt-get install nginx-light)");
    let r = server::adapters::nginx::Nginx::new(
        serde_json::from_value(nginx.settings()).expect("settings"),
    )
    .expect("router");
    r.add_member("web", "t1", &format!("127.0.0.1:{}", base + 1), Weight::FULL)
        .await
        .expect("a good member");
    let before = std::fs::read_to_string(&nginx.upstream_file).expect("file");
    for bad in nasty_addresses() {
        let err = r.add_member("web", "t2", &bad, Weight::FULL).await.expect_err(&bad);
        assert!(!err.is_transient(), "{bad:?}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&nginx.upstream_file).expect("file"), before);
}
