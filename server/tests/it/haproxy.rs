//! The HAProxy router against a real HAProxy (Debian package) on loopback, with demo-service
//! processes as its servers: membership, weights, drain with a slow request in flight,
//! read-back of an out-of-band change, and HAProxy going away.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use server::adapters::haproxy::{Config, Haproxy};
use server::adapters::haproxy_stats::{Config as StatsConfig, HaproxyStats};
use server::adapters::{HealthSource as _, Router as _};
use server::testbed::{Daemon, HaproxyProcess, free_port_block};

pub fn demo_service(dir: &std::path::Path, release: &str, port: u16) -> Daemon {
    let exe = env!("CARGO_BIN_EXE_switchyard");
    let d = Daemon::spawn(
        &format!("demo-service {release}"),
        Command::new(exe).args(["demo-service", "--release", release, "--port", &port.to_string()]),
        dir.join(format!("demo-{port}.log")),
    )
    .expect("demo-service starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "demo-service on {port} never listened: {}",
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = d.pid();
    d
}

pub async fn releases(url: &str, n: usize) -> BTreeMap<String, usize> {
    let http = reqwest::Client::new();
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let res = http.get(url).send().await.expect("the proxy answers");
        assert_eq!(res.status(), 200, "{url}");
        let r = res.headers().get("x-release").and_then(|v| v.to_str().ok()).unwrap_or("?");
        *seen.entry(r.to_string()).or_insert(0) += 1;
    }
    seen
}

fn w(percent: f64) -> Weight {
    Weight::from_percent(percent).expect("weight")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_membership_weights_drain_readback_and_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_port_block(4).expect("ports");
    let front: std::net::SocketAddr = format!("127.0.0.1:{base}").parse().expect("addr");
    let mut hp = HaproxyProcess::start(dir.path(), &BTreeMap::from([("web".to_string(), front)]))
        .expect("haproxy starts");
    let _v1 = demo_service(dir.path(), "v1", base + 1);
    let _v2 = demo_service(dir.path(), "v2", base + 2);
    let (a1, a2) = (format!("127.0.0.1:{}", base + 1), format!("127.0.0.1:{}", base + 2));
    let r = Haproxy::new(serde_json::from_value::<Config>(hp.settings()).expect("settings"))
        .expect("router");
    let url = format!("http://{front}/");

    let check = r.check().await.expect("check");
    assert!(check.version.as_deref().unwrap_or_default().contains("2."), "{check:?}");
    assert!(check.capabilities.contains(&"weights".to_string()), "{check:?}");

    // Membership and weights, read back from HAProxy itself.
    r.add_member("web", "t1", &a1, Weight::FULL).await.expect("add t1");
    r.add_member("web", "t2", &a2, Weight::ZERO).await.expect("add t2");
    r.add_member("web", "t2", &a2, Weight::ZERO).await.expect("adding again changes nothing");
    let pool = r.read_pool("web").await.expect("read");
    assert_eq!(pool.len(), 2, "{pool:?}");
    assert_eq!((pool[0].target.as_str(), pool[0].address.as_str()), ("t1", a1.as_str()));
    assert_eq!(pool[0].weight, Weight::FULL);
    assert_eq!(pool[1].weight, Weight::ZERO);
    assert_eq!(releases(&url, 20).await, BTreeMap::from([("v1".to_string(), 20)]));

    r.set_weight("web", "t1", w(50.0)).await.expect("weight");
    r.set_weight("web", "t2", w(50.0)).await.expect("weight");
    let seen = releases(&url, 40).await;
    assert_eq!(seen.get("v1"), Some(&20), "round robin at equal weights: {seen:?}");
    assert_eq!(seen.get("v2"), Some(&20), "{seen:?}");

    // Drain with a slow request in flight: it completes, and the drain is seen to finish.
    let http = reqwest::Client::new();
    http.post(format!("http://{a1}/admin/behaviour?delay_ms=1500")).send().await.expect("slow");
    r.set_weight("web", "t2", Weight::ZERO).await.expect("weight");
    let slow = tokio::spawn({
        let url = url.clone();
        async move { reqwest::get(url).await.map(|r| (r.status(), r.headers().clone())) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.set_weight("web", "t2", Weight::FULL).await.expect("weight");
    r.set_state("web", "t1", MemberState::Drain).await.expect("drain");
    assert_eq!(
        r.read_pool("web").await.expect("read").iter().find(|m| m.target == "t1").map(|m| m.state),
        Some(MemberState::Drain)
    );
    let started = Instant::now();
    assert!(r.await_drained("web", "t1", 10).await.expect("await"), "t1 drained");
    let waited = started.elapsed();
    let (status, headers) = slow.await.expect("join").expect("the slow request completes");
    assert_eq!(status, 200);
    assert_eq!(headers["x-release"], "v1", "the in-flight request was served by the draining v1");
    assert!(waited >= Duration::from_millis(500), "the drain waited for it ({waited:?})");
    assert_eq!(releases(&url, 10).await, BTreeMap::from([("v2".to_string(), 10)]));

    // An out-of-band change (an operator at the socket) is what the read-back shows.
    let out = std::os::unix::net::UnixStream::connect(&hp.socket).and_then(|mut s| {
        use std::io::{Read as _, Write as _};
        s.write_all(b"set server web/t2 weight 7\n")?;
        let mut o = String::new();
        s.read_to_string(&mut o)?;
        Ok(o)
    });
    assert!(out.is_ok(), "{out:?}");
    let t2 = r.read_pool("web").await.expect("read").into_iter().find(|m| m.target == "t2");
    assert_eq!(t2.map(|m| m.weight.basis_points()), Some(273), "7/256 of the pool");

    // Removal: out of the pool for real.
    r.remove_member("web", "t1").await.expect("remove");
    r.remove_member("web", "t1").await.expect("removing again changes nothing");
    let pool = r.read_pool("web").await.expect("read");
    assert_eq!(pool.iter().map(|m| m.target.as_str()).collect::<Vec<_>>(), ["t2"]);

    // A refused command is permanent and says why.
    let e = r.set_weight("web", "nope", Weight::FULL).await.expect_err("no such server");
    assert!(!e.is_transient() && e.to_string().contains("nope"), "{e}");

    // The stats source counts what users really got from each server since the last sample.
    let stats = HaproxyStats::new(
        serde_json::from_value::<StatsConfig>(hp.settings()).expect("stats settings"),
    )
    .expect("stats");
    let targets = [("t2".to_string(), format!("http://{a2}/healthz"))];
    stats.sample("web", &targets).await.expect("baseline");
    releases(&url, 10).await;
    let s = stats.sample("web", &targets).await.expect("sample");
    assert_eq!((s.requests, s.errors, s.probes, s.probe_failures), (10, 0, 1, 0), "{s:?}");
    http.post(format!("http://{a2}/admin/behaviour?fail_rate=1")).send().await.expect("fail");
    for _ in 0..10 {
        let res = http.get(&url).send().await.expect("answer");
        assert_eq!(res.status(), 500);
    }
    let s = stats.sample("web", &targets).await.expect("sample");
    assert_eq!((s.requests, s.errors, s.probe_failures), (10, 10, 1), "{s:?}");
    assert!(stats.check().await.expect("check").capabilities.contains(&"error-rate".to_string()));

    // HAProxy goes away: every call is a transient error, never a hang.
    hp.daemon.kill();
    let started = Instant::now();
    let e = r.set_weight("web", "t2", Weight::FULL).await.expect_err("haproxy is gone");
    assert!(e.is_transient(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(r.read_pool("web").await.expect_err("gone").is_transient());
}

/// Waits until the campaign has finished its first weight shift (step 4 of its plan, the
/// canary at 25 %) and recorded it: it is baking.
async fn canary_at_25(api: &server::testbed::scenarios::Api, id: i64) {
    crate::helpers::eventually("the canary reaching 25 %", Duration::from_secs(12), async || {
        let d = api.campaign(id).await.expect("campaign");
        (d["summary"]["step_index"].as_i64().unwrap_or(0) >= 4).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_stops_on_drift_and_on_a_lost_runtime_api_without_touching_traffic() {
    use reqwest::Method;
    use server::testbed::scenarios::{Api, Bed, RouterKind, canary};

    let app = crate::helpers::spawn_app().await;
    app.add_user("ada", app::domain::auth::Role::Admin).await;
    let api = Api::new(app.url.clone(), app.token_for("ada").await);
    let registry = app.registry.clone().expect("registry");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchyard"));

    // 1. Someone changes a weight at the HAProxy socket while a canary runs.
    let bed = Bed::start(RouterKind::Haproxy, dir.path(), exe, &api, &registry).await.expect("bed");
    let hp = bed.haproxy.as_ref().expect("haproxy");
    let r = Haproxy::new(serde_json::from_value::<Config>(hp.settings()).expect("settings"))
        .expect("router");
    let id = api
        .create_and_start(bed.spec("drift", canary(&[(25, 2), (100, 1)]), 1))
        .await
        .expect("start");
    canary_at_25(&api, id).await;
    let answer = r.command("set server web/web-1 weight 200").await.expect("out of band");
    assert!(answer.trim().is_empty(), "{answer}");
    let err =
        api.wait_status(id, &["succeeded"], Duration::from_secs(60)).await.expect_err("pauses");
    let msg = format!("{err:#}");
    assert!(msg.contains("drift on web") && msg.contains("web-1 has weight 78.13 %"), "{msg}");
    // The router still has the operator's weight: nothing was overwritten.
    let web1 = r.read_pool("web").await.expect("read").into_iter().find(|m| m.target == "web-1");
    assert_eq!(web1.map(|m| m.weight.basis_points()), Some(7813));
    // The watcher reports it too: API and audit trail.
    app.engine.look_for_drift().await;
    let found = api.call(Method::GET, "/api/v1/drift", None).await.expect("drift api");
    assert_eq!(found[0]["pool"], "web", "{found}");
    assert!(found[0]["differences"][0].as_str().unwrap_or_default().contains("web-1"), "{found}");
    let audit =
        api.call(Method::GET, "/api/v1/audit?action=router.drift", None).await.expect("audit");
    assert!(audit.to_string().contains("router.drift"), "{audit}");
    // Resuming accepts the router's state (audited) and the campaign finishes.
    api.call(Method::POST, &format!("/api/v1/campaigns/{id}/resume"), None).await.expect("resume");
    api.wait_status(id, &["succeeded"], Duration::from_secs(60)).await.expect("succeeds");
    let audit = api
        .call(Method::GET, "/api/v1/audit?action=router.accept_state", None)
        .await
        .expect("audit");
    assert!(audit.to_string().contains("router.accept_state"), "{audit}");

    // 2. The Runtime API goes away mid-campaign (HAProxy keeps serving): the step fails with
    //    transient errors, the campaign pauses with the message, and traffic stays as it was.
    //    (Gates probe the instances here, so they still see data without the socket.)
    let bed = Bed::start_with(RouterKind::Haproxy, dir.path(), exe, &api, &registry, true)
        .await
        .expect("bed");
    let hp = bed.haproxy.as_ref().expect("haproxy");
    let r = Haproxy::new(serde_json::from_value::<Config>(hp.settings()).expect("settings"))
        .expect("router");
    let id = api
        .create_and_start(bed.spec("lost-api", canary(&[(25, 2), (100, 1)]), 1))
        .await
        .expect("start");
    canary_at_25(&api, id).await;
    let before = r.read_pool("web").await.expect("read");
    let hidden = hp.socket.with_extension("hidden");
    std::fs::rename(&hp.socket, &hidden).expect("hide the socket");
    let err =
        api.wait_status(id, &["succeeded"], Duration::from_secs(90)).await.expect_err("pauses");
    let msg = format!("{err:#}");
    assert!(msg.contains("unreachable"), "{msg}");
    let seen = releases(&bed.url(), 40).await;
    assert!(seen.contains_key("v1") && seen.contains_key("v2"), "traffic is still split: {seen:?}");
    std::fs::rename(&hidden, &hp.socket).expect("restore the socket");
    assert_eq!(r.read_pool("web").await.expect("read"), before, "no change reached HAProxy");
    api.call(Method::POST, &format!("/api/v1/campaigns/{id}/resume"), None).await.expect("resume");
    api.wait_status(id, &["succeeded"], Duration::from_secs(60))
        .await
        .expect("succeeds after resume");
}
