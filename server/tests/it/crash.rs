//! The engine survives a real `kill -9`. `switchyard serve` runs as a child process in front of
//! a real HAProxy and demo-service instances, and is SIGKILLed at nine points of a canary, an
//! aborted canary and a rolling campaign: during a provision, between a router change and its
//! record, during a bake, during a gate, during a rollback's router change and its destroy,
//! during a drain and during an in-place replace. Each time it is started again on the same
//! database. Under load through HAProxy the whole time, no user request may fail; every campaign
//! ends as it should; afterwards the record equals the router, exactly the record's instances
//! run (none leaked, none destroyed that should live) and the audit chain verifies.
//!
//! A point inside a call is hit with a failpoint (`SWITCHYARD_FAILPOINTS`): the reconciler stops
//! right there and the test kills the process while it waits; the others are found by watching
//! the campaign through the API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server::testbed::scenarios::{Api, Bed, RouterKind, canary, rolling};
use server::testbed::{Load, free_port_block, tally};

const EXE: &str = env!("CARGO_BIN_EXE_switchyard");

/// One `switchyard serve` process, its output in a log file.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path, port: u16, failpoints: &str, run: usize) -> Self {
        let log = dir.join(format!("serve-{run}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(EXE)
            .arg("serve")
            .env_remove("SWITCHYARD_CONFIG")
            .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", dir.join("s.db").display()))
            .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_SITE_ROOT", "/nonexistent-site")
            .env("SWITCHYARD_LOG", "info,sqlx=warn")
            .env("SWITCHYARD_FAILPOINTS", failpoints)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("switchyard serve starts");
        let s = Self { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "serve did not listen: {}", s.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no shutdown code runs, exactly as a crash.
    fn kill9(mut self) {
        let status =
            Command::new("kill").arg("-9").arg(self.child.id().to_string()).status().expect("kill");
        assert!(status.success());
        let _ = self.child.wait();
    }

    async fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.log_text().contains(text) {
            assert!(Instant::now() < deadline, "never saw {text:?} in:\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The kind of the step campaign `id` is on now, with its status.
async fn current(api: &Api, id: i64) -> (String, String) {
    let Ok(d) = api.campaign(id).await else { return (String::new(), String::new()) };
    let i = d["summary"]["step_index"].as_u64().unwrap_or(0) as usize;
    let kind = d["plan"]["steps"][i]["kind"].as_str().unwrap_or_default().to_string();
    (d["summary"]["status"].as_str().unwrap_or_default().to_string(), kind)
}

async fn wait_step(api: &Api, id: i64, kinds: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, kind) = current(api, id).await;
        if status == "running" && kinds.contains(&kind.as_str()) {
            return;
        }
        assert!(
            status != "paused",
            "campaign {id} paused: {}",
            api.campaign(id)
                .await
                .map(|d| d["summary"]["last_error"].to_string())
                .unwrap_or_default()
        );
        assert!(
            Instant::now() < deadline,
            "campaign {id} never reached {kinds:?} (it is {status} at {kind})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The ports in `range` on which a demo-service answers, and with which release.
async fn answering(range: std::ops::Range<u16>) -> Vec<(u16, String)> {
    let http =
        reqwest::Client::builder().timeout(Duration::from_millis(500)).build().expect("client");
    let mut out = Vec::new();
    for port in range {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/healthz")).send().await
            && let Some(release) = r.headers().get("x-release").and_then(|v| v.to_str().ok())
        {
            out.push((port, release.to_string()));
        }
    }
    out
}

/// After a campaign ends: the record equals the router and provider, and exactly the record's
/// targets run (on the release it says), nothing else in the bed's port range.
async fn check_reality(api: &Api, bed: &Bed, range: std::ops::Range<u16>, what: &str) {
    let differences = server::testbed::scenarios::record_differences(api, bed).await.expect("read");
    assert!(differences.is_empty(), "{what}: the record is the router: {differences:?}");
    let envs = api.call(reqwest::Method::GET, "/api/v1/environments", None).await.expect("envs");
    let env = envs
        .as_array()
        .and_then(|l| l.iter().find(|e| e["name"] == bed.name.as_str()))
        .cloned()
        .expect("the bed's environment");
    let mut recorded: Vec<(u16, String)> = env["spec"]["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            let port = t["address"]
                .as_str()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            (port, t["release"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    recorded.sort();
    assert_eq!(
        answering(range).await,
        recorded,
        "{what}: the record's instances run, and nothing else"
    );
}

fn audit_verifies(dir: &Path) {
    let out = Command::new(EXE)
        .args(["audit", "verify"])
        .env_remove("SWITCHYARD_CONFIG")
        .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", dir.join("s.db").display()))
        .output()
        .expect("audit verify runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn with_releases(mut spec: Value, from: &str, to: &str) -> Value {
    spec["from_release"] = json!(from);
    spec["to_release"] = json!(to);
    spec
}

// Real processes everywhere: the test needs threads of its own besides the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_survives_kill_9_at_nine_points_of_three_campaigns_without_a_failed_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let db = format!("sqlite://{}", d.join("s.db").display());
    {
        let mut child = Command::new(EXE)
            .args(["user", "add", "ada", "--role", "admin", "--password-stdin"])
            .env_remove("SWITCHYARD_CONFIG")
            .env("SWITCHYARD_DATABASE_URL", &db)
            .stdin(Stdio::piped())
            .spawn()
            .expect("cli");
        use std::io::Write as _;
        child.stdin.take().expect("stdin").write_all(b"a long enough password\n").expect("write");
        assert!(child.wait().expect("cli").success());
    }
    let token = Command::new(EXE)
        .args(["token", "create", "ada"])
        .env_remove("SWITCHYARD_CONFIG")
        .env("SWITCHYARD_DATABASE_URL", &db)
        .output()
        .expect("token");
    let token = String::from_utf8_lossy(&token.stdout).trim().to_string();
    let port = free_port_block(1).expect("port");
    let api = Api::new(format!("http://127.0.0.1:{port}"), token);

    let mut run = 0;
    let mut serve = |failpoints: &str| {
        run += 1;
        Serve::start(d, port, failpoints, run)
    };

    // The environment: HAProxy in front of four v1 instances the test starts through a
    // provider of its own (same state file), as machines that were there before Switchyard.
    let s = serve("forward-provider-applied");
    let registry = server::adapters::registry::Registry::new(Some(d.to_path_buf()));
    let bed =
        Bed::start(RouterKind::Haproxy, d, Path::new(EXE), &api, &registry).await.expect("testbed");
    let base: u16 = bed.frontend.port();
    let range = base + 1..base + 80;
    let load = Load::start(bed.url(), 100, 4, Duration::from_secs(900));
    let mut points: Vec<String> = Vec::new();

    // 1. A canary v1 → v2 that succeeds, killed four times on its way.
    let up = api
        .create_and_start(bed.spec("crash-canary", canary(&[(25, 3), (100, 3)]), 2))
        .await
        .expect("start");
    s.wait_log("failpoint forward-provider-applied reached").await;
    s.kill9();
    points.push("canary: during a provision (the instance created, not yet recorded)".into());
    let s = serve("forward-router-applied");
    s.wait_log("failpoint forward-router-applied reached").await;
    s.kill9();
    points.push("canary: between a router change and its record".into());
    let s = serve("");
    wait_step(&api, up, &["bake"]).await;
    s.kill9();
    points.push("canary: during a bake".into());
    let s = serve("");
    wait_step(&api, up, &["gate"]).await;
    s.kill9();
    points.push("canary: during a gate".into());
    let s = serve("");
    let done = api
        .wait_status(up, &["succeeded"], Duration::from_secs(120))
        .await
        .expect("the canary finishes");
    assert_eq!(done["summary"]["status"], "succeeded");
    check_reality(&api, &bed, range.clone(), "after the canary").await;

    // 2. A canary back to v1, aborted at 25 % and killed twice during its rollback.
    let spec = with_releases(bed.spec("crash-abort", canary(&[(25, 60), (100, 1)]), 2), "v2", "v1");
    let down = api.create_and_start(spec).await.expect("start");
    wait_step(&api, down, &["bake"]).await;
    s.kill9();
    points.push("aborted canary: during a bake at 25 %".into());
    let s = serve("rollback-router-applied");
    wait_step(&api, down, &["bake"]).await;
    api.abort(down, "crash test").await.expect("abort");
    s.wait_log("failpoint rollback-router-applied reached").await;
    s.kill9();
    points.push("rollback: between a router change and its record".into());
    let s = serve("rollback-provider-applied");
    s.wait_log("failpoint rollback-provider-applied reached").await;
    s.kill9();
    points.push("rollback: while destroying the canary".into());
    let s = serve("");
    api.wait_status(down, &["rolled_back"], Duration::from_secs(120))
        .await
        .expect("the rollback finishes");
    check_reality(&api, &bed, range.clone(), "after the aborted canary").await;

    // 3. A rolling v2 → v1, killed during a drain wait and during an in-place replace.
    let spec = with_releases(bed.spec("crash-rolling", rolling(), 2), "v2", "v1");
    let roll = api.create_and_start(spec).await.expect("start");
    wait_step(&api, roll, &["drain", "wait_drained"]).await;
    s.kill9();
    points.push("rolling: during a drain".into());
    let s = serve("forward-provider-applied");
    s.wait_log("failpoint forward-provider-applied reached").await;
    s.kill9();
    points.push("rolling: during an in-place replace".into());
    let _s = serve("");
    api.wait_status(roll, &["succeeded"], Duration::from_secs(180))
        .await
        .expect("the rolling campaign finishes");
    check_reality(&api, &bed, range.clone(), "after the rolling campaign").await;

    let outcomes = load.finish().await;
    let t = tally(&outcomes);
    eprintln!(
        "measured: kill -9 at {} points: {} requests through HAProxy, {} failed, {} retried; points: {points:#?}",
        points.len(),
        t.sent,
        t.failed,
        t.retried
    );
    assert!(points.len() >= 8);
    assert_eq!(t.failed, 0, "no user request failed: {t:?}");
    assert!(t.sent > 1000, "the load ran throughout: {t:?}");
    audit_verifies(d);
    drop(registry);
}
