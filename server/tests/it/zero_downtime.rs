//! The zero-downtime proof, once per router: four demo-service v1 instances behind a real
//! HAProxy, a real nginx, or the embedded proxy; 200 requests a second from 8 keep-alive
//! clients for each campaign's whole duration; blue-green, rolling and canary from v1 to v2
//! through the engine, a canary aborted at 25 %, and a canary whose v2 starts failing. Every
//! user request must succeed (except, in the last case, those v2 failed on purpose before the
//! gate tripped), and afterwards every answer comes from the expected release. The benchmark
//! (`cargo bench -p server --bench zero_downtime`) repeats these for the figures.

use std::time::Duration;

use app::domain::auth::Role;
use server::testbed::scenarios::{self, Api, Bed, RouterKind};

use crate::helpers::spawn_app;

async fn prove(kind: RouterKind) {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let api = Api::new(app.url.clone(), app.token_for("ada").await);
    let registry = app.registry.clone().expect("the server's adapters");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let bed =
        || async { Bed::start(kind, dir.path(), exe, &api, &registry).await.expect("testbed") };

    for (label, strategy) in [
        ("blue-green", scenarios::blue_green()),
        ("rolling", scenarios::rolling()),
        ("canary", scenarios::canary(&[(25, 2), (100, 1)])),
    ] {
        let b = bed().await;
        let r = scenarios::full_campaign(&api, &b, label, strategy)
            .await
            .unwrap_or_else(|e| panic!("{} {label}: {e:#}", kind.label()));
        eprintln!("measured: {} {label}: {:?} in {:.1} s", kind.label(), r.tally, r.secs);
        assert_eq!(r.tally.failed, 0, "{} {label}: failed requests {:?}", kind.label(), r.tally);
        assert!(r.tally.sent > 200, "the load ran ({:?})", r.tally);
        assert!(r.after_ok, "{} {label}: afterwards every answer comes from v2", kind.label());
        // The impact report counts what users sent, within the load that fell outside the
        // campaign (creating and starting it, the 200 ms after) and the router's counters
        // between the start and the first sampling round (its baseline) and after the last:
        // 2.5 s of the load's rate, and 5 %. nginx (open source) counts nothing per server.
        let counted = r.report["requests"].as_u64().unwrap_or(0) as f64;
        eprintln!(
            "measured: {} {label}: the impact report counted {counted} of {} sent, {} failed",
            kind.label(),
            r.tally.sent,
            r.report["failed"]
        );
        if kind != RouterKind::Nginx {
            let sent = r.tally.sent as f64;
            let rate = sent / r.secs.max(1.0);
            assert!(
                (counted - sent).abs() <= rate * 2.5 + sent * 0.05,
                "{} {label}: the report counted {counted} requests, the users sent {sent}: {}",
                kind.label(),
                r.report
            );
            assert_eq!(r.report["failed"], 0, "{}", r.report);
            let served = |release: &str| {
                r.report["by_release"].as_array().is_some_and(|b| {
                    b.iter().any(|x| x["release"] == release && x["requests"].as_u64() > Some(0))
                })
            };
            // (v1's share before a blue-green switch can fall inside the first round.)
            assert!(served("v2"), "the report has v2 serving users: {}", r.report);
        }
    }

    let b = bed().await;
    let r = scenarios::canary_abort(&api, &b, "abort").await.expect("abort scenario");
    eprintln!(
        "measured: {} abort at 25 %: {:?}, rollback {:.3} s",
        kind.label(),
        r.tally,
        r.rollback_secs
    );
    assert_eq!(r.tally.failed, 0, "{:?}", r.tally);
    assert!(r.tally.by_release.contains_key("v2"), "v2 took traffic before the abort");
    assert!(r.after_ok, "after the abort every answer comes from v1");

    let b = bed().await;
    // v2 breaks in the middle of a long bake: the gates, watching all the time, take it out
    // well before the bake (or its gate step) would have.
    let r = scenarios::gate_trip(&api, &b, "gate-trip", &registry, 120, Duration::from_secs(6))
        .await
        .expect("gate scenario");
    eprintln!("measured: {} gate trip during a bake: {r:?}", kind.label());
    assert!(r.failed > 0, "v2 really failed requests before the gate tripped");
    assert!(r.secs_to_zero < 30.0, "the gate took v2 out ({r:?})");
    assert!(
        r.abort_reason.contains("continuous analysis")
            && r.abort_reason.contains("during the bake"),
        "{}",
        r.abort_reason
    );
    assert!(r.after_ok, "after the gate tripped every answer comes from v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_behind_real_haproxy() {
    prove(RouterKind::Haproxy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_behind_real_nginx() {
    prove(RouterKind::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_downtime_behind_the_embedded_router() {
    prove(RouterKind::Embedded).await;
}
