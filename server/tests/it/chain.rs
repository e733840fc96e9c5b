//! Campaign after campaign on one environment, as a new user runs them, under a bounded load
//! through the router the whole time: a canary v1 → v2, its "roll back this release" draft
//! v2 → v1, v1 → v2 again aborted at 50 %, then a rolling v1 → v2. No user request may fail;
//! after each campaign every answer comes from the expected release and the environment
//! record equals what the router and the provider really have.

use app::domain::auth::Role;
use server::testbed::scenarios::{self, Api, Bed, RouterKind};

use crate::helpers::spawn_app;

async fn chain(kind: RouterKind) {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let api = Api::new(app.url.clone(), app.token_for("ada").await);
    let registry = app.registry.clone().expect("the server's adapters");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let bed = Bed::start(kind, dir.path(), exe, &api, &registry).await.expect("testbed");
    let steps = scenarios::chain(&api, &bed)
        .await
        .unwrap_or_else(|e| panic!("{}: the chain stopped: {e:#}", kind.label()));
    let expected = ["succeeded", "succeeded", "rolled_back", "succeeded"];
    for (step, want) in steps.iter().zip(expected) {
        eprintln!(
            "measured: {} chain, {} (campaign {}): {}, {} requests, {} failed, {} retried, by release {:?}",
            kind.label(),
            step.label,
            step.id,
            step.status,
            step.tally.sent,
            step.tally.failed,
            step.tally.retried,
            step.tally.by_release
        );
        assert_eq!(step.status, want, "{}: {}", kind.label(), step.label);
        assert_eq!(step.tally.failed, 0, "{}: {}: {:?}", kind.label(), step.label, step.tally);
        assert!(step.tally.sent > 50, "{}: the load ran: {:?}", step.label, step.tally);
        assert!(
            step.after_ok,
            "{}: {}: every answer afterwards is the expected release",
            kind.label(),
            step.label
        );
        assert!(
            step.differences.is_empty(),
            "{}: {}: the record is the router: {:?}",
            kind.label(),
            step.label,
            step.differences
        );
    }
    assert_eq!(steps.len(), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_after_campaign_behind_the_embedded_router_drops_no_request_and_keeps_the_record_true()
 {
    chain(RouterKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_after_campaign_behind_real_haproxy_drops_no_request_and_keeps_the_record_true() {
    chain(RouterKind::Haproxy).await;
}
