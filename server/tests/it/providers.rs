//! The script provider against real shell scripts in a temporary directory.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::domain::environment::{BackendConfig, BackendKind};
use app::domain::ids::Name;
use serde_json::{Value, json};
use server::adapters::registry::{AdapterFactory, Registry};
use server::adapters::script::{self, Script};
use server::adapters::{AdapterError, Provider};

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
    settings["create"] = create.into();
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

    let missing = one_command(dir.path(), "/nonexistent/deploy.sh up", 10);
    let err = missing.check().await.expect_err("missing program");
    assert!(err.to_string().contains("/nonexistent/deploy.sh"), "{err}");
    let not_on_path = one_command(dir.path(), "surely-no-such-program-here --now", 10);
    assert!(not_on_path.check().await.is_err());
}

fn backend(name: &str, driver: &str, settings: Value) -> BackendConfig {
    BackendConfig {
        name: Name::parse(name).expect("name"),
        kind: BackendKind::Provider,
        driver: driver.into(),
        settings,
    }
}

#[tokio::test]
async fn the_registry_builds_one_script_provider_per_backend() {
    let dir = script_dir();
    let registry = Registry::new(None);
    let cfg = backend("scripted", script::KIND, script_settings(dir.path()));
    let a = registry.provider(&cfg).expect("script provider");
    let b = registry.provider(&cfg).expect("script provider");
    assert_eq!(Arc::as_ptr(&a).cast::<()>(), Arc::as_ptr(&b).cast::<()>(), "cached");

    let bad = backend("broken", script::KIND, json!({ "create": "./provider.sh" }));
    let err = registry.provider(&bad).err().expect("refused");
    assert!(
        matches!(&err, AdapterError::Permanent(m) if m.contains("bad settings") && m.contains("missing field")),
        "{err}"
    );
}
