//! The nginx router against a real nginx (Debian package) on loopback: membership, weights,
//! drain with a slow request in flight, an out-of-band edit seen by the read-back, a rejected
//! configuration that leaves traffic alone, and nginx going away.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use server::adapters::Router as _;
use server::adapters::nginx::{Config, Nginx};
use server::testbed::{NginxProcess, free_port_block};

use crate::haproxy::{demo_service, releases};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_membership_weights_drain_readback_rejected_config_and_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = free_port_block(4).expect("ports");
    let front: std::net::SocketAddr = format!("127.0.0.1:{base}").parse().expect("addr");
    let mut ng = NginxProcess::start(dir.path(), &BTreeMap::from([("web".to_string(), front)]))
        .expect("nginx starts");
    let _v1 = demo_service(dir.path(), "v1", base + 1);
    let _v2 = demo_service(dir.path(), "v2", base + 2);
    let (a1, a2) = (format!("127.0.0.1:{}", base + 1), format!("127.0.0.1:{}", base + 2));
    let r = Nginx::new(serde_json::from_value::<Config>(ng.settings()).expect("settings"))
        .expect("router");
    let url = format!("http://{front}/");

    let check = r.check().await.expect("check");
    assert!(check.version.as_deref().unwrap_or_default().starts_with("nginx/"), "{check:?}");

    r.add_member("web", "t1", &a1, Weight::FULL).await.expect("add t1");
    r.add_member("web", "t2", &a2, Weight::ZERO).await.expect("add t2");
    let pool = r.read_pool("web").await.expect("read");
    assert_eq!(pool.len(), 2, "{pool:?}");
    assert_eq!((pool[0].target.as_str(), pool[0].weight), ("t1", Weight::FULL));
    assert_eq!((pool[1].target.as_str(), pool[1].weight), ("t2", Weight::ZERO));
    assert_eq!(releases(&url, 20).await, BTreeMap::from([("v1".to_string(), 20)]));

    r.set_weight("web", "t1", Weight::from_percent(50.0).expect("w")).await.expect("weight");
    r.set_weight("web", "t2", Weight::from_percent(50.0).expect("w")).await.expect("weight");
    let seen = releases(&url, 40).await;
    assert_eq!((seen.get("v1"), seen.get("v2")), (Some(&20), Some(&20)), "{seen:?}");

    // Drain with a slow request in flight: it completes on v1; new requests go to v2.
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
    let started = Instant::now();
    assert!(r.await_drained("web", "t1", 10).await.expect("await"), "old workers finished");
    let waited = started.elapsed();
    let (status, headers) = slow.await.expect("join").expect("the slow request completes");
    assert_eq!(status, 200);
    assert_eq!(headers["x-release"], "v1");
    assert!(waited >= Duration::from_millis(500), "the drain waited for it ({waited:?})");
    assert_eq!(releases(&url, 10).await, BTreeMap::from([("v2".to_string(), 10)]));

    // A configuration nginx rejects: the old file stays, nothing reloads, traffic flows.
    let before = std::fs::read_to_string(&ng.upstream_file).expect("file");
    let e =
        r.add_member("web", "bad", "127.0.0.1:99999", Weight::FULL).await.expect_err("rejected");
    assert!(!e.is_transient(), "{e}");
    assert!(
        e.to_string().contains("invalid port") || e.to_string().contains("99999"),
        "nginx's message: {e}"
    );
    assert_eq!(std::fs::read_to_string(&ng.upstream_file).expect("file"), before);
    assert_eq!(releases(&url, 10).await, BTreeMap::from([("v2".to_string(), 10)]));

    // An out-of-band edit of the file is what the read-back shows.
    std::fs::write(&ng.upstream_file, before.replace("weight=10000;", "weight=4000;"))
        .expect("edit");
    let t2 = r.read_pool("web").await.expect("read").into_iter().find(|m| m.target == "t2");
    assert_eq!(t2.map(|m| m.weight.basis_points()), Some(4000));
    std::fs::write(&ng.upstream_file, &before).expect("restore");

    r.remove_member("web", "t1").await.expect("remove");
    let pool = r.read_pool("web").await.expect("read");
    assert_eq!(pool.iter().map(|m| m.target.as_str()).collect::<Vec<_>>(), ["t2"]);

    // nginx goes away: a transient error, never a hang.
    ng.daemon.kill();
    let e = r.set_weight("web", "t2", Weight::ZERO).await.expect_err("nginx is gone");
    assert!(e.is_transient(), "{e}");
}
