//! The script and webhook providers against real backends: shell scripts in a temporary
//! directory, and an HTTP endpoint on loopback that checks signatures the way an operator's
//! endpoint would. The webhook's completion callback goes through a real spawned server.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::domain::environment::{BackendConfig, BackendKind};
use app::domain::ids::Name;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use reqwest::StatusCode;
use serde_json::{Value, json};
use server::adapters::registry::{AdapterFactory, Registry};
use server::adapters::script::{self, Script};
use server::adapters::webhook::{self, Signer, Webhook};
use server::adapters::{AdapterError, Provider};

use crate::helpers::spawn_app;

// ---------------------------------------------------------------------------------------------
// script

/// A toy platform: one file per instance in `$STATE`, every call recorded in `calls.log`.
const PROVIDER_SH: &str = r#"#!/bin/sh
set -eu
echo "$SWITCHYARD_ACTION|$SWITCHYARD_TARGET|$SWITCHYARD_RELEASE|$SWITCHYARD_GROUP|$EXTRA" >> "$STATE/calls.log"
f="$STATE/$SWITCHYARD_TARGET"
instance() {
  printf '{"address": "10.1.0.1:80", "release": "%s", "health_url": "http://10.1.0.1/healthz"}\n' "$1"
}
case "$SWITCHYARD_ACTION" in
  create|replace)
    echo "deploying $SWITCHYARD_RELEASE to $SWITCHYARD_TARGET" >&2
    echo "$SWITCHYARD_RELEASE" > "$f"
    case "$SWITCHYARD_TARGET" in loud-*) instance "$SWITCHYARD_RELEASE" ;; esac
    ;;
  describe)
    if [ -f "$f" ]; then echo "looking up $SWITCHYARD_TARGET"; instance "$(cat "$f")"; else echo null; fi
    ;;
  destroy) rm -f "$f" ;;
esac
"#;

fn script_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("provider.sh");
    std::fs::write(&path, PROVIDER_SH).expect("write script");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

fn script_settings(dir: &Path) -> Value {
    json!({
        "create": "./provider.sh", "replace": "./provider.sh",
        "destroy": "./provider.sh", "describe": "./provider.sh",
        "timeout_secs": 10,
        "workdir": dir,
        "env": { "STATE": dir, "EXTRA": "from-settings" },
    })
}

fn script(settings: Value) -> Script {
    Script::new(serde_json::from_value(settings).expect("settings parse")).expect("valid settings")
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn script_commands_create_replace_describe_and_destroy_with_the_call_in_their_environment() {
    let dir = script_dir();
    let p = script(script_settings(dir.path()));

    let created = p.create("web-7", "v1", "blue").await.expect("created");
    assert_eq!((created.target.as_str(), created.release.as_str()), ("web-7", "v1"));
    assert_eq!(created.address, "10.1.0.1:80");
    let replaced = p.replace("web-7", "v2").await.expect("replaced");
    assert_eq!(replaced.release, "v2");
    assert_eq!(p.describe("web-7").await.expect("described").map(|i| i.release), Some("v2".into()));
    p.destroy("web-7").await.expect("destroyed");
    assert_eq!(p.describe("web-7").await.expect("described"), None, "`null` means gone");

    assert_eq!(
        calls(dir.path()),
        [
            "create|web-7|v1|blue|from-settings",
            "describe|web-7|||from-settings",
            "replace|web-7|v2||from-settings",
            "describe|web-7|||from-settings",
            "describe|web-7|||from-settings",
            "destroy|web-7|||from-settings",
            "describe|web-7|||from-settings",
        ],
        "create and replace print nothing, so each is read back with describe"
    );
    let log = p.log("web-7");
    assert!(log.contains(&"[create stderr] deploying v1 to web-7".to_string()), "{log:#?}");
    assert!(log.iter().any(|l| l.starts_with("[create] exited 0 after")), "{log:#?}");
    assert!(!log.iter().any(|l| l.contains("looking up")), "a successful describe stays quiet");
}

#[tokio::test]
async fn a_script_that_prints_the_instance_is_not_asked_to_describe_it() {
    let dir = script_dir();
    let p = script(script_settings(dir.path()));
    let created = p.create("loud-1", "v3", "green").await.expect("created");
    assert_eq!(created.release, "v3");
    assert_eq!(calls(dir.path()), ["create|loud-1|v3|green|from-settings"]);
}

fn one_command(dir: &Path, create: &str, timeout_secs: u64) -> Script {
    let mut settings = script_settings(dir);
    // Commands run without a shell; these tests ask for one explicitly.
    settings["create"] = json!(["sh", "-c", create]);
    settings["timeout_secs"] = timeout_secs.into();
    script(settings)
}

/// Whether process `pid` is gone (or a zombie waiting for init to reap it).
fn dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn a_script_that_outlives_its_timeout_is_killed_with_its_children_and_is_transient() {
    let dir = script_dir();
    let p = one_command(
        dir.path(),
        "sleep 300 & echo $! > child.pid; echo 'waiting for the load balancer' >&2; wait",
        1,
    );
    let started = Instant::now();
    let err = p.create("web-1", "v2", "blue").await.expect_err("times out");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("timeout"), "{err}");
    assert!(err.to_string().contains("waiting for the load balancer"), "{err}");
    let child = std::fs::read_to_string(dir.path().join("child.pid")).expect("pid written");
    let child = child.trim();
    let mut waited = 0;
    while !dead(child) && waited < 40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(dead(child), "the command's background child {child} was killed too");
    assert!(p.log("web-1").iter().any(|l| l.contains("killed after")), "{:?}", p.log("web-1"));
}

#[tokio::test]
async fn a_script_exiting_75_is_a_temporary_failure() {
    let dir = script_dir();
    let p = one_command(dir.path(), "echo 'registry busy' >&2; exit 75", 10);
    let err = p.create("web-1", "v2", "blue").await.expect_err("fails");
    assert!(
        matches!(&err, AdapterError::Transient(m) if m.contains("exited 75") && m.contains("registry busy")),
        "{err}"
    );
}

#[tokio::test]
async fn any_other_exit_is_permanent_and_quotes_the_end_of_stderr() {
    let dir = script_dir();
    let p = one_command(
        dir.path(),
        r#"echo 'half done'; for i in 1 2 3 4 5 6 7; do echo "noise $i" >&2; done; echo 'no space left on device' >&2; exit 1"#,
        10,
    );
    let err = p.create("web-1", "v2", "blue").await.expect_err("fails");
    let AdapterError::Permanent(message) = &err else { panic!("permanent expected: {err}") };
    assert!(message.contains("exited 1"), "{message}");
    assert!(message.ends_with("no space left on device"), "{message}");
    assert!(
        message.contains("noise 4") && !message.contains("noise 3"),
        "only the tail: {message}"
    );
    assert!(!message.contains("half done"), "stdout is not stderr: {message}");
    let log = p.log("web-1");
    assert!(log.contains(&"[create] half done".to_string()), "{log:#?}");
    assert!(log.contains(&"[create stderr] noise 1".to_string()), "{log:#?}");
}

#[tokio::test]
async fn a_describe_that_prints_something_else_than_an_instance_is_permanent() {
    let dir = script_dir();
    let mut settings = script_settings(dir.path());
    settings["describe"] = "echo 'it is running, I think'".into();
    let err = script(settings).describe("web-1").await.expect_err("not JSON");
    assert!(!err.is_transient(), "{err}");
    assert!(err.to_string().contains("it is running, I think"), "{err}");
}

#[tokio::test]
async fn check_finds_the_scripts_and_refuses_a_missing_program() {
    let dir = script_dir();
    let report = script(script_settings(dir.path())).check().await.expect("found");
    assert!(report.capabilities.contains(&"logs".to_string()), "{report:?}");
    assert!(report.detail.contains("./provider.sh"), "{report:?}");
    assert!(calls(dir.path()).is_empty(), "check runs nothing");

    let with_create = |create: &str| {
        let mut settings = script_settings(dir.path());
        settings["create"] = create.into();
        script(settings)
    };
    let err = with_create("/nonexistent/deploy.sh up").check().await.expect_err("missing");
    assert!(err.to_string().contains("/nonexistent/deploy.sh"), "{err}");
    assert!(with_create("surely-no-such-program-here --now").check().await.is_err());
}

fn backend(name: &str, driver: &str, settings: Value) -> BackendConfig {
    BackendConfig {
        name: Name::parse(name).expect("name"),
        kind: BackendKind::Provider,
        driver: driver.into(),
        settings,
        environment: None,
    }
}

#[tokio::test]
async fn the_registry_builds_one_script_and_one_webhook_provider_per_backend() {
    let dir = script_dir();
    let registry = Registry::new(None);
    let cfg = backend("scripted", script::KIND, script_settings(dir.path()));
    let a = registry.provider(&cfg).expect("script provider");
    let b = registry.provider(&cfg).expect("script provider");
    assert_eq!(Arc::as_ptr(&a).cast::<()>(), Arc::as_ptr(&b).cast::<()>(), "cached");

    let hooks = backend(
        "hooks",
        webhook::KIND,
        json!({ "url": "http://127.0.0.1:9/hook", "secret": SECRET }),
    );
    assert!(registry.webhooks("hooks").is_empty(), "not started yet");
    registry.provider(&hooks).expect("webhook provider");
    assert_eq!(registry.webhooks("hooks").len(), 1, "callbacks can find it now");

    let bad = backend("broken", script::KIND, json!({ "create": "./provider.sh" }));
    let err = registry.provider(&bad).err().expect("refused");
    assert!(
        matches!(&err, AdapterError::Permanent(m) if m.contains("bad settings") && m.contains("missing field")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// webhook

const SECRET: &str = "the-endpoint-shared-secret";

/// What the test endpoint saw.
#[derive(Default)]
struct Seen {
    /// (body, `Idempotency-Key` header) of every accepted POST.
    posts: Vec<(Value, String)>,
    /// Requests refused for their signature.
    refused: u32,
    instances: BTreeMap<String, String>,
    attempts: HashMap<String, u32>,
    polls: HashMap<String, u32>,
}

type Shared = Arc<Mutex<Seen>>;

struct Endpoint {
    url: String,
    seen: Shared,
    _server: tokio::task::JoinHandle<()>,
}

fn instance_json(release: &str) -> Value {
    json!({ "address": "10.2.0.9:8080", "release": release, "health_url": "http://10.2.0.9:8080/healthz" })
}

fn verified(headers: &HeaderMap, body: &[u8]) -> bool {
    let signer = Signer::new(SECRET.as_bytes()).expect("signer");
    signer.verify_headers(headers, body, chrono::Utc::now().timestamp()).is_ok()
}

/// An operator's endpoint: how it answers create and replace depends on the target's name.
async fn hook(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut seen = seen.lock().expect("lock");
    if !verified(&headers, &body) {
        seen.refused += 1;
        return (AxumStatus::UNAUTHORIZED, axum::Json(json!({ "message": "bad signature" })))
            .into_response();
    }
    let req: Value = serde_json::from_slice(&body).expect("JSON body");
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default();
    seen.posts.push((req.clone(), key.to_string()));
    let target = req["target"].as_str().unwrap_or_default().to_string();
    let release = req["release"].as_str().unwrap_or_default().to_string();
    match req["action"].as_str().unwrap_or_default() {
        "check" => axum::Json(json!({ "version": "test-endpoint 1" })).into_response(),
        "describe" => match seen.instances.get(&target) {
            Some(r) => axum::Json(instance_json(r)).into_response(),
            None => AxumStatus::NOT_FOUND.into_response(),
        },
        "destroy" => {
            seen.instances.remove(&target);
            AxumStatus::NO_CONTENT.into_response()
        }
        _ if target.starts_with("fast") => {
            seen.instances.insert(target, release.clone());
            axum::Json(instance_json(&release)).into_response()
        }
        _ if target.starts_with("quiet") => {
            seen.instances.insert(target, release);
            AxumStatus::NO_CONTENT.into_response()
        }
        _ if target.starts_with("slow") || target.starts_with("never") => (
            AxumStatus::ACCEPTED,
            axum::Json(json!({ "status_url": format!("/status/{target}/{release}") })),
        )
            .into_response(),
        _ if target.starts_with("flaky") => {
            let n = seen.attempts.entry(key.to_string()).or_default();
            *n += 1;
            if *n == 1 {
                return (AxumStatus::SERVICE_UNAVAILABLE, "warming up").into_response();
            }
            seen.instances.insert(target, release.clone());
            axum::Json(instance_json(&release)).into_response()
        }
        _ if target.starts_with("late") => AxumStatus::ACCEPTED.into_response(),
        _ => (
            AxumStatus::BAD_REQUEST,
            axum::Json(json!({ "message": format!("release {release} is not in the registry") })),
        )
            .into_response(),
    }
}

/// `slow-*` finish at the second poll; `never-*` stay pending.
async fn status(
    State(seen): State<Shared>,
    UrlPath((target, release)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut seen = seen.lock().expect("lock");
    if !verified(&headers, b"") {
        seen.refused += 1;
        return AxumStatus::UNAUTHORIZED.into_response();
    }
    let n = seen.polls.entry(target.clone()).or_default();
    *n += 1;
    if target.starts_with("slow") && *n >= 2 {
        seen.instances.insert(target, release.clone());
        return axum::Json(json!({ "status": "done", "instance": instance_json(&release) }))
            .into_response();
    }
    axum::Json(json!({ "status": "pending" })).into_response()
}

async fn endpoint() -> Endpoint {
    let seen = Shared::default();
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .route("/status/{target}/{release}", get(status))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("endpoint serves");
    });
    Endpoint { url: format!("http://{addr}/hook"), seen, _server: server }
}

fn webhook_with(url: &str, extra: Value) -> Webhook {
    let mut settings = json!({ "url": url, "secret": SECRET, "poll_interval_ms": 20 });
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    Webhook::new("hooks", serde_json::from_value(settings).expect("parses")).expect("valid")
}

#[tokio::test]
async fn a_webhook_call_answered_at_once_is_signed_keyed_and_read_back() {
    let ep = endpoint().await;
    let p = webhook_with(&ep.url, json!({}));
    assert_eq!(p.check().await.expect("check").version.as_deref(), Some("test-endpoint 1"));
    let created = p.create("fast-1", "v2", "blue").await.expect("created");
    assert_eq!((created.target.as_str(), created.release.as_str()), ("fast-1", "v2"));
    assert_eq!(p.describe("fast-1").await.expect("described"), Some(created));
    p.destroy("fast-1").await.expect("destroyed");
    assert_eq!(p.describe("fast-1").await.expect("described"), None, "404 means no instance");

    let seen = ep.seen.lock().expect("lock");
    assert_eq!(seen.refused, 0);
    let (create, header_key) = &seen.posts[1];
    let key = webhook::idempotency_key("hooks", "create", "fast-1", Some("v2"));
    assert_eq!(
        create,
        &json!({ "action": "create", "target": "fast-1", "release": "v2", "group": "blue",
                 "idempotency_key": key })
    );
    assert_eq!(header_key, &key, "the header and the body carry the same key");
    assert_eq!(seen.posts[3].0["action"], "destroy");
    assert_eq!(seen.posts[3].0["release"], Value::Null);
}

#[tokio::test]
async fn a_webhook_create_without_a_body_is_read_back_with_describe() {
    let ep = endpoint().await;
    let p = webhook_with(&ep.url, json!({}));
    assert_eq!(p.create("quiet-1", "v2", "blue").await.expect("created").release, "v2");
    let actions: Vec<Value> =
        ep.seen.lock().expect("lock").posts.iter().map(|(b, _)| b["action"].clone()).collect();
    assert_eq!(actions, [json!("create"), json!("describe")]);
}

#[tokio::test]
async fn an_accepted_webhook_call_polls_its_status_url_with_signed_requests_until_done() {
    let ep = endpoint().await;
    let p = webhook_with(&ep.url, json!({}));
    let created = p.create("slow-1", "v4", "blue").await.expect("created");
    assert_eq!(created.release, "v4");
    let seen = ep.seen.lock().expect("lock");
    assert_eq!(seen.polls.get("slow-1"), Some(&2));
    assert_eq!(seen.refused, 0, "every poll was signed");
}

#[tokio::test]
async fn an_accepted_call_that_never_finishes_is_transient_at_the_completion_timeout() {
    let ep = endpoint().await;
    let p = webhook_with(&ep.url, json!({ "completion_timeout_secs": 1 }));
    let started = Instant::now();
    let err = p.create("never-1", "v4", "blue").await.expect_err("times out");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("not complete after 1s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(ep.seen.lock().expect("lock").polls.get("never-1").is_some_and(|n| *n > 5));
}

#[tokio::test]
async fn a_503_is_transient_and_the_retry_with_the_same_key_succeeds() {
    let ep = endpoint().await;
    let p = webhook_with(&ep.url, json!({}));
    let first = p.create("flaky-1", "v2", "blue").await.expect_err("503 first");
    assert!(first.is_transient(), "{first}");
    assert!(
        first.to_string().contains("503") && first.to_string().contains("warming up"),
        "{first}"
    );
    // The engine retries a transient failure; the adapter sends the same key again.
    assert_eq!(p.create("flaky-1", "v2", "blue").await.expect("retried").release, "v2");
    let seen = ep.seen.lock().expect("lock");
    let keys: Vec<&String> = seen.posts.iter().map(|(_, k)| k).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "a retried call is recognisable by its key");
}

#[tokio::test]
async fn a_400_is_permanent_and_shows_the_endpoints_message() {
    let ep = endpoint().await;
    let p = webhook_with(&ep.url, json!({}));
    let err = p.create("other-1", "v9", "blue").await.expect_err("400");
    assert!(
        matches!(&err, AdapterError::Permanent(m) if m.contains("HTTP 400") && m.contains("release v9 is not in the registry")),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_endpoint_and_changes_nothing() {
    let ep = endpoint().await;
    let settings = json!({ "url": ep.url, "secret": "not-the-endpoint-secret" });
    let p = Webhook::new("hooks", serde_json::from_value(settings).expect("parses")).expect("ok");
    let err = p.create("fast-2", "v2", "blue").await.expect_err("refused");
    assert!(!err.is_transient() && err.to_string().contains("401"), "{err}");
    let seen = ep.seen.lock().expect("lock");
    assert_eq!(seen.refused, 1);
    assert!(seen.posts.is_empty() && seen.instances.is_empty());
}

#[tokio::test]
async fn an_endpoint_that_refuses_connections_is_transient() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", closed.local_addr().expect("addr"));
    drop(closed);
    let err = webhook_with(&url, json!({})).describe("web-1").await.expect_err("refused");
    assert!(err.is_transient(), "{err}");
}

/// POSTs `body` to the server's completion route, signed with `secret`.
async fn callback(url: &str, secret: &str, body: &Value) -> reqwest::Response {
    let bytes = serde_json::to_vec(body).expect("JSON");
    let ts = chrono::Utc::now().timestamp();
    let signature = Signer::new(secret.as_bytes()).expect("signer").sign(ts, &bytes);
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header(webhook::TIMESTAMP_HEADER, ts.to_string())
        .header(webhook::SIGNATURE_HEADER, signature)
        .body(bytes)
        .send()
        .await
        .expect("callback request")
}

#[tokio::test]
async fn a_signed_callback_to_the_server_completes_a_waiting_webhook_call() {
    let app = spawn_app().await;
    let ep = endpoint().await;
    let cfg = backend(
        "hooks",
        webhook::KIND,
        json!({ "url": ep.url, "secret": SECRET, "callback_base_url": app.url,
                "completion_timeout_secs": 30 }),
    );
    let provider = app.engine.adapters().provider(&cfg).expect("webhook provider");
    let call = tokio::spawn(async move { provider.create("late-1", "v5", "blue").await });

    let request = crate::helpers::eventually(
        "the endpoint getting the create",
        Duration::from_secs(2),
        async || ep.seen.lock().expect("lock").posts.first().map(|(b, _)| b.clone()),
    )
    .await;
    let callback_url = request["callback_url"].as_str().expect("a callback URL").to_string();
    assert_eq!(callback_url, format!("{}/api/v1/providers/webhook/hooks/complete", app.url));
    let key = request["idempotency_key"].clone();
    let done = json!({ "idempotency_key": key, "status": "done", "instance": instance_json("v5") });

    // No session and no token: the signature alone decides.
    let forged = callback(&callback_url, "not-the-endpoint-secret", &done).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let unsigned =
        reqwest::Client::new().post(&callback_url).json(&done).send().await.expect("sent");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let elsewhere =
        callback(&format!("{}/api/v1/providers/webhook/unknown/complete", app.url), SECRET, &done)
            .await;
    assert_eq!(elsewhere.status(), StatusCode::UNAUTHORIZED, "no such webhook backend");
    let stranger = json!({ "idempotency_key": "not-waiting", "status": "done", "instance": instance_json("v5") });
    assert_eq!(callback(&callback_url, SECRET, &stranger).await.status(), StatusCode::NOT_FOUND);
    assert!(!call.is_finished(), "still waiting after refused callbacks");

    let res = callback(&callback_url, SECRET, &done).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let created = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call wakes up")
        .expect("task")
        .expect("created");
    assert_eq!((created.target.as_str(), created.release.as_str()), ("late-1", "v5"));
    assert_eq!(
        callback(&callback_url, SECRET, &done).await.status(),
        StatusCode::NOT_FOUND,
        "nothing waits once the call is done"
    );
    app.stop().await;
}
