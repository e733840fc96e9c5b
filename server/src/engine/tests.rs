//! The engine against in-memory fakes and a real SQLite store: full runs of each strategy,
//! pause and resume, approvals, abort during every kind of step, gates, errors and crashes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use app::domain::auth::{AuthVia, Principal, Role};
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::gate::Sample;
use app::domain::lifecycle::{Phase, StepStatus};
use app::domain::plan::{Plan, StepKind};
use serde_json::{Value, json};

use super::{Clock, Engine, EngineConfig};
use crate::adapters::AdapterError;
use crate::adapters::fake::{Fake, World};
use crate::audit::system_record;
use crate::services::CampaignService;
use crate::store::Store;

const V1: &str = "v1.0.0";
const V2: &str = "v2.0.0";

fn who(name: &str, role: Role) -> Principal {
    Principal {
        user_id: 1,
        username: name.into(),
        role,
        via: AuthVia::Token,
        source_ip: "127.0.0.1".into(),
        must_change_password: false,
    }
}

fn environment() -> Environment {
    let targets: Vec<Value> = (1..=4)
        .map(|i| json!({ "name": format!("web-{i}"), "address": format!("10.0.1.{i}:8080"), "group": "a", "release": V1, "health_url": format!("http://10.0.1.{i}:8080/healthz") }))
        .collect();
    serde_json::from_value(json!({
        "name": "production",
        "targets": targets,
        "pools": [{ "name": "web-pool", "router": "lb", "targets": ["web-1", "web-2", "web-3", "web-4"] }],
        "backends": [
            { "name": "lb", "kind": "router", "driver": "fake", "settings": {} },
            { "name": "prov", "kind": "provider", "driver": "fake", "settings": {} },
            { "name": "probe", "kind": "health_source", "driver": "fake", "settings": {} },
            { "name": "mail", "kind": "channel", "driver": "email", "settings": {} },
        ],
    }))
    .expect("environment fixture")
}

fn gate() -> Value {
    json!({ "max_error_rate": 0.05, "max_p99_ms": 500, "min_probe_success": 0.9, "window_secs": 2, "min_samples": 2, "deadline_secs": 30, "consecutive_failures": 1 })
}

fn spec(strategy: Value) -> CampaignSpec {
    serde_json::from_value(json!({
        "name": "web-upgrade", "service": "web", "environment": "production", "pool": "web-pool",
        "from_release": V1, "to_release": V2, "strategy": strategy, "gates": [gate()],
        "window": { "start": "2026-11-22T08:00:00Z", "end": "2026-11-22T10:00:00Z", "timezone": "Europe/Berlin" },
        "rollback": { "mode": "automatic", "hold_secs": 1 },
        "approvals": { "required": 1, "role": "approver" },
    }))
    .expect("spec fixture")
}

fn canary(steps: Value) -> Value {
    json!({ "kind": "canary", "steps": steps, "canary_count": 1 })
}

fn blue_green() -> Value {
    json!({ "kind": "blue_green", "switch": "at_once", "bake_secs": 1, "verify_preview": false })
}

fn rolling() -> Value {
    json!({ "kind": "rolling", "batch": { "count": 2 }, "max_unavailable": 2, "min_healthy": 2, "drain_timeout_secs": 5, "bake_secs": 1 })
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    fake: Fake,
    engine: Engine,
    service: CampaignService,
}

/// Moves tokio's clock, and with it the engine's ([`Clock::following_tokio`]), `d` ahead at
/// once: every timer due meanwhile fires, nobody waits. The clock is paused only for the jump,
/// never while the database is read: a query waits on SQLite's worker thread, and a paused
/// clock would meanwhile jump to the next timer, the pool's acquire timeout among them.
async fn jump(d: Duration) {
    tokio::time::pause();
    tokio::time::advance(d).await;
    tokio::time::resume();
}

fn fast() -> EngineConfig {
    EngineConfig {
        tick: Duration::from_millis(50),
        retry_attempts: 4,
        retry_base: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        alert_webhook: None,
        safety_wait: Duration::from_millis(500),
        clock: Clock::following_tokio(),
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::store::connect(&format!("sqlite://{}", dir.path().join("t.db").display()))
        .await
        .expect("store");
    let env = environment();
    store
        .create_environment(
            "production",
            &serde_json::to_string(&env).expect("json"),
            system_record("environment.create", "environment:production", json!({})),
        )
        .await
        .expect("environment");
    let fake = Fake::default();
    let w = |bp| app::domain::ids::Weight::from_basis_points(bp).expect("weight");
    fake.seed_pool(
        "web-pool",
        &[
            ("web-1", "10.0.1.1:8080", V1, w(2500)),
            ("web-2", "10.0.1.2:8080", V1, w(2500)),
            ("web-3", "10.0.1.3:8080", V1, w(2500)),
            ("web-4", "10.0.1.4:8080", V1, w(2500)),
        ],
    );
    let config = fast();
    fake.with(|w| w.clock = config.clock);
    let engine = Engine::new(store.clone(), Arc::new(fake.clone()), config);
    let service = CampaignService::new(store.clone(), engine.clone());
    Harness { _dir: dir, store, fake, engine, service }
}

impl Harness {
    async fn create(&self, spec: CampaignSpec, by: &Principal) -> i64 {
        self.service.create(by, spec).await.expect("draft created").summary.id
    }

    async fn status(&self, id: i64) -> (String, i64) {
        let row = self.store.find_campaign(id).await.expect("read").expect("exists");
        (row.status.as_str().to_string(), row.step_index)
    }

    /// Waits until the campaign's step index satisfies `reached` (10 s at most).
    async fn wait_step(&self, id: i64, what: &str, reached: impl Fn(i64) -> bool) -> (String, i64) {
        crate::testbed::eventually(what, Duration::from_secs(10), async || {
            let s = self.status(id).await;
            reached(s.1).then_some(s)
        })
        .await
    }

    /// Wakes the campaign's reconciler and waits for its pass, `n` times: the engine has
    /// certainly looked at it since.
    async fn passes_over(&self, id: i64, n: usize) {
        for _ in 0..n {
            let before = self.engine.passes();
            self.engine.wake(id);
            crate::testbed::eventually("a reconcile pass", Duration::from_secs(10), async || {
                (self.engine.passes() > before).then_some(())
            })
            .await;
        }
    }

    /// Waits until the campaign's status is `want` (10 s at most).
    async fn wait_for(&self, id: i64, want: &str) -> (String, i64) {
        let reached = crate::testbed::within(Duration::from_secs(10), async || {
            let s = self.status(id).await;
            (s.0 == want).then_some(s)
        })
        .await;
        if let Some(s) = reached {
            return s;
        }
        let row = self.store.find_campaign(id).await.expect("read").expect("exists");
        panic!(
            "campaign {id} never became {want}: it is {} at step {} (error: {:?})",
            row.status.as_str(),
            row.step_index,
            row.last_error
        );
    }

    /// The plan the harness's first campaign (id 1) compiles to.
    fn plan(&self, spec: &CampaignSpec) -> Plan {
        let valid = app::domain::validate::validate(spec, &environment()).expect("valid");
        app::domain::plan::compile(&valid.for_campaign(1))
    }

    fn shares(&self) -> BTreeMap<String, u32> {
        self.fake.share_by_release("web-pool")
    }
}

fn all_on(release: &str) -> BTreeMap<String, u32> {
    BTreeMap::from([(release.to_string(), 10_000)])
}

fn operator() -> Principal {
    who("olivia", Role::Operator)
}

#[tokio::test]
async fn a_canary_runs_to_completion_and_all_traffic_ends_on_the_new_release() {
    let h = harness().await;
    let id = h
        .create(
            spec(canary(
                json!([{ "weight": 10, "bake_secs": 1 }, { "weight": 100, "bake_secs": 1 }]),
            )),
            &operator(),
        )
        .await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "succeeded").await;
    assert_eq!(h.shares(), all_on(V2));
    let old_left = h.fake.with(|w| w.instances.values().filter(|i| i.release == V1).count());
    assert_eq!(old_left, 0, "the old set is decommissioned after the hold");
    let runs = h.store.step_runs(id).await.expect("runs");
    assert!(
        runs.iter().all(|r| !matches!(
            r.status,
            app::domain::lifecycle::StepStatus::Running
                | app::domain::lifecycle::StepStatus::Failed
        )),
        "every step finished"
    );
}

#[tokio::test]
async fn a_notifying_campaign_queues_started_and_completed_notices_with_its_state_changes() {
    let h = harness().await;
    let mut s = spec(canary(json!([{ "weight": 100, "bake_secs": 1 }])));
    s.communications.notify = true;
    s.communications.audiences = vec!["customers".into()];
    let id = h.create(s, &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "succeeded").await;
    let kinds: Vec<String> =
        h.store.campaign_notices(id).await.expect("notices").into_iter().map(|n| n.kind).collect();
    assert_eq!(kinds, ["started", "completed"]);
    let window = h.store.published_window(id).await.expect("read").expect("published");
    assert_eq!(window.status, "completed");
}

#[tokio::test]
async fn blue_green_and_rolling_run_to_completion_on_the_new_release() {
    for strategy in [blue_green(), rolling()] {
        let h = harness().await;
        let id = h.create(spec(strategy.clone()), &operator()).await;
        h.service.start(&operator(), id).await.expect("start");
        h.wait_for(id, "succeeded").await;
        assert_eq!(h.shares(), all_on(V2), "{strategy}");
    }
}

#[tokio::test]
async fn a_feature_flag_campaign_raises_the_flag_to_100_percent() {
    let h = harness().await;
    let strategy = json!({ "kind": "feature_flag", "flag": "new-checkout", "steps": [{ "percent": 50, "bake_secs": 1 }, { "percent": 100, "bake_secs": 1 }] });
    let id = h.create(spec(strategy), &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "succeeded").await;
    let flag = h.fake.with(|w| w.flags.get("new-checkout").map(|p| p.basis_points()));
    assert_eq!(flag, Some(10_000));
    assert_eq!(h.shares(), all_on(V1), "a flag rollout changes no instances");
}

#[tokio::test]
async fn without_a_flag_store_a_feature_flag_campaign_pauses_saying_why() {
    let h = harness().await;
    let engine = Engine::new(
        h.store.clone(),
        Arc::new(NoFlags(h.fake.clone())),
        EngineConfig { clock: h.fake.with(|w| w.clock), ..fast() },
    );
    let service = CampaignService::new(h.store.clone(), engine);
    let strategy = json!({ "kind": "feature_flag", "flag": "new-checkout", "steps": [{ "percent": 100, "bake_secs": 1 }] });
    let id = service.create(&operator(), spec(strategy)).await.expect("draft").summary.id;
    service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "paused").await;
    let row = h.store.find_campaign(id).await.expect("read").expect("exists");
    assert!(
        row.last_error.unwrap_or_default().contains("no feature-flag store"),
        "the error says why"
    );
}

/// The fake's backends without its flag store, like the production registry today.
struct NoFlags(Fake);

impl crate::adapters::registry::AdapterFactory for NoFlags {
    fn provider(
        &self,
        c: &app::domain::environment::BackendConfig,
    ) -> crate::adapters::AdapterResult<Arc<dyn crate::adapters::Provider>> {
        self.0.provider(c)
    }
    fn router(
        &self,
        c: &app::domain::environment::BackendConfig,
    ) -> crate::adapters::AdapterResult<Arc<dyn crate::adapters::Router>> {
        self.0.router(c)
    }
    fn health(
        &self,
        c: &app::domain::environment::BackendConfig,
    ) -> crate::adapters::AdapterResult<Arc<dyn crate::adapters::HealthSource>> {
        self.0.health(c)
    }
}

#[tokio::test]
async fn pause_holds_the_campaign_and_resume_finishes_it() {
    let h = harness().await;
    let id = h
        .create(
            spec(canary(
                json!([{ "weight": 25, "bake_secs": 2 }, { "weight": 100, "bake_secs": 1 }]),
            )),
            &operator(),
        )
        .await;
    h.service.start(&operator(), id).await.expect("start");
    let plan = h.plan(&spec(canary(
        json!([{ "weight": 25, "bake_secs": 2 }, { "weight": 100, "bake_secs": 1 }]),
    )));
    let bake = plan.steps.iter().position(|s| s.kind == StepKind::Bake).expect("a bake");
    h.wait_step(id, "step == bake as i64", |at| at == bake as i64).await;
    h.service.pause(&operator(), id).await.expect("pause");
    let (_, at) = h.wait_for(id, "paused").await;
    // An hour passes on the engine's clock, long past the 2 s bake, and the reconciler is made
    // to look again and again: nothing moves.
    jump(Duration::from_secs(3600)).await;
    h.passes_over(id, 5).await;
    assert_eq!(h.status(id).await, ("paused".to_string(), at), "nothing moves while paused");
    h.service.resume(&operator(), id).await.expect("resume");
    h.wait_for(id, "succeeded").await;
    assert_eq!(h.shares(), all_on(V2));
}

#[tokio::test]
async fn the_creator_cannot_approve_their_own_campaign_but_another_approver_can() {
    let h = harness().await;
    let abe = who("abe", Role::Approver);
    let id = h.create(spec(canary(json!([{ "weight": 20, "bake_secs": 1, "pause": "approval" }, { "weight": 100, "bake_secs": 1 }]))), &abe).await;
    h.service.start(&abe, id).await.expect("start");
    h.wait_for(id, "awaiting_approval").await;
    let err = h.service.approve(&abe, id).await.expect_err("own campaign");
    assert!(err.message.contains("created this campaign"), "{}", err.message);
    let err = h.service.approve(&operator(), id).await.expect_err("operator cannot approve");
    assert_eq!(err.code, app::api::ErrorCode::Forbidden);
    h.service.approve(&who("carol", Role::Approver), id).await.expect("approve");
    h.wait_for(id, "succeeded").await;
    // The whole id: `campaign:1` as a prefix would match campaign 12 too.
    let q = crate::store::AuditQuery {
        object_prefix: Some(format!("campaign:{id}")),
        ..Default::default()
    };
    let actions: Vec<(String, String)> = h
        .store
        .search_audit(&q, 500, 0)
        .await
        .expect("audit")
        .0
        .into_iter()
        .filter(|r| r.object == format!("campaign:{id}"))
        .map(|r| (r.actor, r.action))
        .collect();
    assert!(actions.contains(&("carol".into(), "campaign.approve".into())), "{actions:?}");
}

/// How many recorded (state-changing) calls the plan makes before step `i`.
fn calls_before(plan: &Plan, i: usize) -> usize {
    use app::domain::plan::{BackendCall, RouterCall};
    plan.steps[..i]
        .iter()
        .flat_map(|s| &s.calls)
        .filter(|c| match c {
            BackendCall::Provider { .. } => true,
            BackendCall::Router { call, .. } => !matches!(call, RouterCall::AwaitDrained { .. }),
            _ => false,
        })
        .count()
}

/// Aborts a fresh campaign while it is at each distinct kind of step of its plan, and checks
/// that the pool ends entirely on the old release. `strategy(bake)` builds the strategy.
async fn abort_at_every_kind(strategy: impl Fn(u64) -> Value) -> Vec<StepKind> {
    let plan = harness().await.plan(&spec(strategy(1)));
    let mut seen = Vec::new();
    for (i, step) in plan.steps.iter().enumerate() {
        if seen.contains(&step.kind) {
            continue;
        }
        seen.push(step.kind);
        let h = harness().await;
        // A bake long enough to be caught baking.
        let s = spec(strategy(if step.kind == StepKind::Bake { 30 } else { 1 }));
        let acting = !step.kind.waits() && step.kind != StepKind::Notify;
        if acting {
            h.fake.with(|w: &mut World| w.hold_at = Some(calls_before(&plan, i)));
        }
        if step.kind == StepKind::WaitDrained {
            h.fake.with(|w| w.hold_drain = true);
        }
        if step.kind == StepKind::WaitHealthy {
            // The new release's instances never become healthy (the old ones stay fine).
            h.fake.with(|w| w.unhealthy_release = Some(V2.to_string()));
        }
        if step.kind == StepKind::Gate {
            h.fake.with(|w| w.samples = std::iter::repeat_n(None, 10_000).collect());
        }
        let id = h.create(s, &operator()).await;
        h.service.start(&operator(), id).await.expect("start");
        // Drive to step i: resume planned pauses and approve approvals that come first.
        let mut reached = false;
        for _ in 0..800 {
            let (status, at) = h.status(id).await;
            let held = acting || step.kind == StepKind::WaitDrained;
            if at == i as i64 && (!held || h.fake.with(|w| w.holding)) {
                reached = true;
                break;
            }
            match status.as_str() {
                "paused" => {
                    h.service.resume(&operator(), id).await.expect("resume");
                }
                "awaiting_approval" => {
                    h.service.approve(&who("carol", Role::Approver), id).await.expect("approve");
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(reached, "reached step {i} ({:?})", step.kind);
        h.service.abort(&operator(), id, "testing abort").await.expect("abort");
        h.fake.with(|w| {
            w.unhealthy.clear();
            w.unhealthy_release = None;
            w.hold_drain = false;
        });
        h.fake.release();
        h.wait_for(id, "rolled_back").await;
        assert_eq!(h.shares(), all_on(V1), "after aborting during {:?} (step {i})", step.kind);
        let v2_left = h.fake.with(|w| w.instances.values().filter(|x| x.release == V2).count());
        assert_eq!(v2_left, 0, "nothing runs v2 after aborting during {:?}", step.kind);
        let flags_on = h.fake.with(|w| w.flags.values().filter(|p| p.basis_points() > 0).count());
        assert_eq!(flags_on, 0, "flags are back at 0 % after aborting during {:?}", step.kind);
        let row = h.store.find_campaign(id).await.expect("read").expect("exists");
        assert!(row.rollback_secs.is_some(), "the time to roll back is recorded");
        let runs = h.store.step_runs(id).await.expect("step runs");
        let forward = |r: &&crate::store::StepRunRow| r.phase == Phase::Forward;
        assert!(
            !runs.iter().filter(forward).any(|r| r.status == StepStatus::Running),
            "no forward step is left running after aborting during {:?}: {runs:?}",
            step.kind
        );
        if step.kind == StepKind::Bake {
            let bake = runs.iter().filter(forward).find(|r| r.step_index == i as i64);
            assert_eq!(
                bake.map(|r| r.status),
                Some(StepStatus::Interrupted),
                "the bake the abort cut short is stored as interrupted"
            );
        }
    }
    seen
}

#[tokio::test]
async fn abort_during_every_kind_of_canary_step_puts_all_traffic_back_on_the_old_release() {
    let seen = abort_at_every_kind(|bake| {
        canary(json!([{ "weight": 10, "bake_secs": bake, "pause": "manual" }, { "weight": 50, "bake_secs": bake, "pause": "approval" }, { "weight": 100, "bake_secs": bake }]))
    })
    .await;
    for kind in [
        StepKind::Provision,
        StepKind::WaitHealthy,
        StepKind::AddToPool,
        StepKind::SetWeight,
        StepKind::Bake,
        StepKind::Gate,
        StepKind::Pause,
        StepKind::Approval,
        StepKind::RemoveFromPool,
        StepKind::Decommission,
    ] {
        assert!(seen.contains(&kind), "the plan covers {kind:?}");
    }
}

#[tokio::test]
async fn abort_during_every_kind_of_rolling_step_puts_every_target_back_on_the_old_release() {
    let seen = abort_at_every_kind(|bake| {
        json!({ "kind": "rolling", "batch": { "count": 2 }, "max_unavailable": 2, "min_healthy": 2, "drain_timeout_secs": 5, "bake_secs": bake })
    })
    .await;
    for kind in [
        StepKind::Drain,
        StepKind::WaitDrained,
        StepKind::RemoveFromPool,
        StepKind::ReplaceRelease,
        StepKind::WaitHealthy,
        StepKind::AddToPool,
    ] {
        assert!(seen.contains(&kind), "the plan covers {kind:?}");
    }
}

#[tokio::test]
async fn abort_during_every_kind_of_feature_flag_step_turns_the_flag_back_off() {
    let seen = abort_at_every_kind(|bake| {
        json!({ "kind": "feature_flag", "flag": "new-checkout", "steps": [{ "percent": 20, "bake_secs": bake }, { "percent": 100, "bake_secs": bake }] })
    })
    .await;
    assert!(seen.contains(&StepKind::SetFlag));
}

#[tokio::test]
async fn a_failing_gate_rolls_back_automatically() {
    let h = harness().await;
    let bad = Sample {
        at: chrono::Utc::now(),
        requests: 100,
        errors: 40,
        p99_ms: Some(30.0),
        probes: 4,
        probe_failures: 0,
    };
    h.fake.with(|w| w.samples = std::iter::repeat_n(Some(bad.clone()), 100).collect());
    let id = h
        .create(
            spec(canary(
                json!([{ "weight": 10, "bake_secs": 1 }, { "weight": 100, "bake_secs": 1 }]),
            )),
            &operator(),
        )
        .await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "rolled_back").await;
    let row = h.store.find_campaign(id).await.expect("read").expect("exists");
    assert!(row.abort_reason.unwrap_or_default().contains("gate failed"));
    assert_eq!(h.shares(), all_on(V1));
    let runs = h.store.step_runs(id).await.expect("runs");
    let gate = runs.iter().find(|r| r.verdict.is_some()).expect("a gate verdict is stored");
    assert!(
        gate.verdict.as_deref().unwrap_or_default().contains("error"),
        "the numbers behind the verdict are kept"
    );
}

#[tokio::test]
async fn a_gate_without_data_waits_and_then_fails_at_its_deadline() {
    let h = harness().await;
    h.fake.with(|w| w.samples = std::iter::repeat_n(None, 10_000).collect());
    let mut s =
        spec(canary(json!([{ "weight": 10, "bake_secs": 1 }, { "weight": 100, "bake_secs": 1 }])));
    s.gates[0].deadline_secs = 60;
    s.gates[0].window_secs = 1;
    let gate = h.plan(&s).steps.iter().position(|s| s.kind == StepKind::Gate).expect("a gate");
    let id = h.create(s, &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_step(id, "the gate step", |at| at == gate as i64).await;
    let opened =
        crate::testbed::eventually("the gate opens", Duration::from_secs(10), async || {
            h.store.find_campaign(id).await.expect("read").and_then(|r| r.step_started_at)
        })
        .await;
    // On the engine's clock: 45 s after the gate opened it still waits (however slow the
    // machine); past its 60 s deadline it fails.
    let to = |secs: i64| {
        (opened + chrono::Duration::seconds(secs) - h.engine.now()).to_std().unwrap_or_default()
    };
    jump(to(45)).await;
    h.passes_over(id, 3).await;
    let (status, at) = h.status(id).await;
    assert_eq!(
        (status.as_str(), at),
        ("running", gate as i64),
        "no data: the gate waits instead of passing or failing"
    );
    jump(to(61)).await;
    h.wait_for(id, "rolled_back").await;
    let waits = h
        .store
        .campaign_events_since(id, 0, 5000)
        .await
        .expect("events")
        .iter()
        .filter(|e| e.kind == "gate")
        .count();
    assert!(waits >= 2, "the gate reported waiting");
    assert_eq!(h.shares(), all_on(V1));
}

#[tokio::test]
async fn a_transient_error_is_retried_and_the_campaign_carries_on() {
    let h = harness().await;
    h.fake.fail_next(vec![
        AdapterError::Transient("connection refused".into()),
        AdapterError::Transient("busy".into()),
    ]);
    let id = h.create(spec(canary(json!([{ "weight": 100, "bake_secs": 1 }]))), &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "succeeded").await;
    let retried = h.store.step_runs(id).await.expect("runs").into_iter().any(|r| r.attempts >= 3);
    assert!(retried, "the first acting step took three attempts");
}

#[tokio::test]
async fn a_permanent_error_pauses_the_campaign_with_the_error_and_leaves_traffic_alone() {
    let h = harness().await;
    h.fake.fail_next(vec![AdapterError::Permanent("image v2.0.0 not found".into())]);
    let id = h.create(spec(canary(json!([{ "weight": 100, "bake_secs": 1 }]))), &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "paused").await;
    let row = h.store.find_campaign(id).await.expect("read").expect("exists");
    assert!(row.last_error.unwrap_or_default().contains("image v2.0.0 not found"));
    assert_eq!(h.shares(), all_on(V1));
    // Resuming retries the failed step (the fault is gone) and the campaign finishes.
    h.service.resume(&operator(), id).await.expect("resume");
    h.wait_for(id, "succeeded").await;
}

#[tokio::test]
async fn a_crash_mid_run_is_survived_and_every_backend_call_was_repeatable() {
    let h = harness().await;
    let s = spec(canary(
        json!([{ "weight": 10, "bake_secs": 1 }, { "weight": 50, "bake_secs": 1 }, { "weight": 100, "bake_secs": 1 }]),
    ));
    let id = h.create(s, &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_step(id, "step >= 6", |at| at >= 6).await;
    h.engine.kill();
    let (_, at) = h.status(id).await;
    assert!(at >= 6, "crashed mid-run");
    // An hour on the engine's clock: no reconciler and no timer it left acts.
    jump(Duration::from_secs(3600)).await;
    assert_eq!(h.status(id).await.1, at, "nothing runs after the crash");
    // The "process" is gone: its connections close, dropping any lock a cut-off write held.
    h.store.close().await;
    // A new process: a new store on the same file and a new engine resume the campaign.
    let store =
        crate::store::connect(&format!("sqlite://{}", h._dir.path().join("t.db").display()))
            .await
            .expect("store");
    // Its clock is the world's, an hour on (the fake health source stamps samples with it).
    let config = EngineConfig { clock: h.fake.with(|w| w.clock), ..fast() };
    let engine = Engine::new(store.clone(), Arc::new(h.fake.clone()), config);
    assert_eq!(engine.resume_all().await.expect("resume"), 1);
    crate::testbed::eventually(
        "the resumed campaign finished",
        Duration::from_secs(10),
        async || {
            let row = store.find_campaign(id).await.expect("read").expect("exists");
            (row.status.as_str() == "succeeded").then_some(())
        },
    )
    .await;
    assert_eq!(h.shares(), all_on(V2));
    // Every call states a desired state: applying each one twice gives the same world.
    let (calls, final_state) = h.fake.with(|w| (w.calls.clone(), w.snapshot()));
    let replay = |twice: bool| {
        let fresh = Fake::default();
        let w1 = |bp| app::domain::ids::Weight::from_basis_points(bp).expect("weight");
        fresh.seed_pool(
            "web-pool",
            &[
                ("web-1", "10.0.1.1:8080", V1, w1(2500)),
                ("web-2", "10.0.1.2:8080", V1, w1(2500)),
                ("web-3", "10.0.1.3:8080", V1, w1(2500)),
                ("web-4", "10.0.1.4:8080", V1, w1(2500)),
            ],
        );
        fresh.with(|w| {
            for c in &calls {
                w.apply(c);
                if twice {
                    w.apply(c);
                }
            }
            w.snapshot()
        })
    };
    assert_eq!(replay(false), final_state);
    assert_eq!(replay(true), final_state, "repeating any call changes nothing");
}

#[tokio::test]
async fn a_second_campaign_on_the_same_pool_cannot_start() {
    let h = harness().await;
    let first = h
        .create(
            spec(canary(
                json!([{ "weight": 10, "bake_secs": 30 }, { "weight": 100, "bake_secs": 1 }]),
            )),
            &operator(),
        )
        .await;
    let second =
        h.create(spec(canary(json!([{ "weight": 100, "bake_secs": 1 }]))), &operator()).await;
    h.service.start(&operator(), first).await.expect("start");
    let err = h.service.start(&operator(), second).await.expect_err("pool is busy");
    assert_eq!(err.code, app::api::ErrorCode::Conflict);
    assert!(err.message.contains("already has an active campaign"), "{}", err.message);
    assert_eq!(h.status(second).await.0, "draft", "the refused campaign is unchanged");
    h.service.abort(&operator(), first, "done testing").await.expect("abort");
    h.wait_for(first, "rolled_back").await;
    h.service.start(&operator(), second).await.expect("the pool is free again");
}

#[tokio::test]
async fn abort_and_skip_need_a_reason() {
    let h = harness().await;
    let id = h
        .create(
            spec(canary(
                json!([{ "weight": 10, "bake_secs": 30 }, { "weight": 100, "bake_secs": 1 }]),
            )),
            &operator(),
        )
        .await;
    h.service.start(&operator(), id).await.expect("start");
    let err = h.service.abort(&operator(), id, "  ").await.expect_err("no reason");
    assert_eq!(err.field_error("reason").map(|m| m.contains("say why")), Some(true));
    let viewer = who("vera", Role::Viewer);
    assert_eq!(
        h.service.abort(&viewer, id, "because").await.expect_err("viewer").code,
        app::api::ErrorCode::Forbidden
    );
    h.service.abort(&operator(), id, "because").await.expect("abort");
    h.wait_for(id, "rolled_back").await;
}

// ---- campaign after campaign ----------------------------------------------------------------

async fn record(h: &Harness) -> Environment {
    let row = h.store.find_environment_by_name("production").await.expect("read").expect("env");
    serde_json::from_str(&row.spec).expect("env json")
}

fn pool_names(env: &Environment) -> Vec<String> {
    env.pools[0].targets.iter().map(ToString::to_string).collect()
}

fn quick_canary() -> Value {
    canary(json!([{ "weight": 50, "bake_secs": 0 }, { "weight": 100, "bake_secs": 0 }]))
}

#[tokio::test]
async fn a_succeeded_campaign_leaves_the_record_as_the_pool_is_and_a_downgrade_then_runs() {
    let h = harness().await;
    let up = h.create(spec(quick_canary()), &operator()).await;
    h.service.start(&operator(), up).await.expect("start");
    h.wait_for(up, "succeeded").await;
    let after_up = record(&h).await;
    assert_eq!(
        pool_names(&after_up),
        ["web-1-v2-0-0-c1", "web-2-v2-0-0-c1", "web-3-v2-0-0-c1", "web-4-v2-0-0-c1"]
    );
    assert!(after_up.targets.iter().all(|t| t.release.as_str() == V2), "{:?}", after_up.targets);
    let fake_addr = h.fake.with(|w| w.instances.get("web-1-v2-0-0-c1").map(|i| i.address.clone()));
    assert_eq!(
        after_up
            .targets
            .iter()
            .find(|t| t.name.as_str() == "web-1-v2-0-0-c1")
            .map(|t| t.address.clone()),
        fake_addr
    );
    let audit: Vec<(String, String)> = audit_actions(&h).await;
    assert!(
        audit.iter().any(|(a, d)| a == "environment.updated_by_campaign"
            && d.contains("web-1 v1.0.0")
            && d.contains("web-1-v2-0-0-c1 v2.0.0")),
        "{audit:?}"
    );

    // The same spec with the releases swapped runs now: it plans against what is there.
    let mut down = spec(quick_canary());
    down.from_release = V2.into();
    down.to_release = V1.into();
    let down = h.create(down, &operator()).await;
    h.service.start(&operator(), down).await.expect("downgrade starts");
    h.wait_for(down, "succeeded").await;
    let after_down = record(&h).await;
    assert_eq!(
        pool_names(&after_down),
        ["web-1-v1-0-0-c2", "web-2-v1-0-0-c2", "web-3-v1-0-0-c2", "web-4-v1-0-0-c2"]
    );
    assert_eq!(h.shares(), all_on(V1));
    let alive: Vec<String> = h.fake.with(|w| w.instances.keys().cloned().collect());
    assert_eq!(alive, pool_names(&after_down), "campaign 1's instances are gone, nobody else's");

    // And up again: a third campaign on the third record.
    let again = h.create(spec(quick_canary()), &operator()).await;
    h.service.start(&operator(), again).await.expect("upgrade again starts");
    h.wait_for(again, "succeeded").await;
    assert_eq!(pool_names(&record(&h).await)[0], "web-1-v2-0-0-c3");
}

/// (action, details) of every audit event, through the store.
async fn audit_actions(h: &Harness) -> Vec<(String, String)> {
    h.store
        .search_audit(&Default::default(), 500, 0)
        .await
        .expect("audit")
        .0
        .into_iter()
        .map(|r| (r.action, r.details))
        .collect()
}

#[tokio::test]
async fn a_start_on_a_pool_that_differs_from_its_record_is_refused_until_the_live_state_is_accepted()
 {
    let h = harness().await;
    // Out of band: web-2 left the router and web-9 joined it.
    h.fake.with(|w| {
        w.pools.get_mut("web-pool").map(|p| p.remove("web-2"));
    });
    let w = |bp| app::domain::ids::Weight::from_basis_points(bp).expect("weight");
    h.fake.seed_pool("web-pool", &[("web-9", "10.0.1.9:8080", V1, w(2500))]);
    let id = h.create(spec(quick_canary()), &operator()).await;
    let err = h.service.start(&operator(), id).await.expect_err("refused");
    assert_eq!(err.code, app::api::ErrorCode::Conflict);
    assert!(
        err.message
            .contains("web-2 (10.0.1.2:8080) is in the record of pool web-pool but not a member"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(
            "web-9 (10.0.1.9:8080, v1.0.0) is a member of router lb but not in the record"
        ),
        "{}",
        err.message
    );
    let detail = h.service.get(&operator(), id).await.expect("detail");
    assert_eq!(detail.live_differences.as_ref().map(Vec::len), Some(2), "the preview says it too");
    assert_eq!(h.status(id).await.0, "draft", "nothing was half-started");

    let viewer = who("vic", Role::Viewer);
    assert!(
        h.service
            .environments()
            .accept_live_state(&viewer, "production", "web-pool")
            .await
            .is_err()
    );
    let pool = h
        .service
        .environments()
        .accept_live_state(&operator(), "production", "web-pool")
        .await
        .expect("accepted");
    assert!(pool.differences.is_empty(), "{:?}", pool.differences);
    assert_eq!(pool_names(&record(&h).await), ["web-1", "web-3", "web-4", "web-9"]);
    assert!(audit_actions(&h).await.iter().any(|(a, _)| a == "environment.accept_live_state"));
    h.service.start(&operator(), id).await.expect("starts now");
    h.wait_for(id, "succeeded").await;
}

#[tokio::test]
async fn a_rollback_whose_stable_members_were_destroyed_pauses_instead_of_routing_users_to_them() {
    let h = harness().await;
    let id = h
        .create(
            spec(canary(
                json!([{ "weight": 10, "bake_secs": 30 }, { "weight": 100, "bake_secs": 0 }]),
            )),
            &operator(),
        )
        .await;
    h.service.start(&operator(), id).await.expect("start");
    let plan = h.plan(&spec(canary(
        json!([{ "weight": 10, "bake_secs": 30 }, { "weight": 100, "bake_secs": 0 }]),
    )));
    let bake = plan.steps.iter().position(|s| s.kind == StepKind::Bake).expect("a bake") as i64;
    h.wait_step(id, "step == bake", |at| at == bake).await;
    assert_eq!(h.status(id).await, ("running".to_string(), bake));
    // Out of band, the whole stable set is destroyed while the canary takes 10 %.
    h.fake.with(|w| {
        for t in ["web-1", "web-2", "web-3", "web-4"] {
            w.instances.remove(t);
        }
    });
    h.service.abort(&operator(), id, "testing a rollback with no stable set").await.expect("abort");
    h.wait_for(id, "rollback_paused").await;
    let row = h.store.find_campaign(id).await.expect("read").expect("row");
    let msg = row.last_error.unwrap_or_default();
    assert!(
        msg.contains("it would send users to web-1 (the provider has no such instance)"),
        "{msg}"
    );
    assert!(msg.contains("took traffic while dead and now take none"), "{msg}");
    assert_eq!(h.shares(), all_on(V2), "the healthy canary serves every user; no dead member does");
    assert!(row.rollback_secs.is_none(), "nobody is told traffic is back on v1");
    // Someone brings the stable set back; resuming the rollback finishes it.
    let w = |bp| app::domain::ids::Weight::from_basis_points(bp).expect("weight");
    h.fake.seed_pool(
        "web-pool",
        &[
            ("web-1", "10.0.1.1:8080", V1, w(0)),
            ("web-2", "10.0.1.2:8080", V1, w(0)),
            ("web-3", "10.0.1.3:8080", V1, w(0)),
            ("web-4", "10.0.1.4:8080", V1, w(0)),
        ],
    );
    h.service.resume(&operator(), id).await.expect("resume the rollback");
    h.wait_for(id, "rolled_back").await;
    assert_eq!(h.shares(), all_on(V1));
}

#[tokio::test]
async fn a_rollback_that_ends_with_the_pool_not_on_the_old_release_pauses_saying_what_it_holds() {
    let h = harness().await;
    let id = h
        .create(
            spec(canary(
                json!([{ "weight": 10, "bake_secs": 30 }, { "weight": 100, "bake_secs": 0 }]),
            )),
            &operator(),
        )
        .await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_step(id, "step >= 4", |at| at >= 4).await;
    // The stable set silently runs the new release (a provider that replaced it in place).
    h.fake.with(|w| {
        for t in ["web-1", "web-2", "web-3", "web-4"] {
            if let Some(i) = w.instances.get_mut(t) {
                i.release = V2.into();
            }
        }
    });
    h.service.abort(&operator(), id, "testing").await.expect("abort");
    h.wait_for(id, "rollback_paused").await;
    let msg =
        h.store.find_campaign(id).await.expect("read").expect("row").last_error.unwrap_or_default();
    assert!(
        msg.contains("the pool is not entirely back on v1.0.0: it holds web-1 v2.0.0 ready 25.0 %"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_reconciler_that_panics_pauses_its_campaign_with_the_message_and_resume_finishes_it() {
    let h = harness().await;
    h.fake.with(|w| w.panic_next = true);
    let id = h.create(spec(quick_canary()), &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.wait_for(id, "paused").await;
    let row = h.store.find_campaign(id).await.expect("read").expect("row");
    assert!(
        row.last_error
            .as_deref()
            .is_some_and(|e| e.contains("the engine failed: the fake adapter was told to panic")),
        "{:?}",
        row.last_error
    );
    assert_eq!(h.engine.running(), 0, "no task is left behind");
    h.service.resume(&operator(), id).await.expect("resume");
    h.wait_for(id, "succeeded").await;
}

#[tokio::test]
async fn the_supervisor_gives_a_running_campaign_without_a_reconciler_one() {
    let h = harness().await;
    let id = h.create(spec(quick_canary()), &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    h.engine.kill();
    assert_eq!(h.engine.running(), 0);
    assert_eq!(h.status(id).await.0, "running", "running, with nobody working on it");
    assert_eq!(h.engine.supervise().await.expect("supervise"), 1);
    h.wait_for(id, "succeeded").await;
}

#[tokio::test]
async fn a_drain_that_would_leave_too_few_healthy_members_waits_then_pauses_saying_why() {
    let h = harness().await;
    let rolling = json!({ "kind": "rolling", "batch": { "count": 2 }, "max_unavailable": 2, "min_healthy": 2, "drain_timeout_secs": 5, "bake_secs": 2 });
    let id = h.create(spec(rolling.clone()), &operator()).await;
    h.service.start(&operator(), id).await.expect("start");
    let plan = h.plan(&spec(rolling));
    let first_bake =
        plan.steps.iter().position(|s| s.kind == StepKind::Bake).expect("a bake") as i64;
    h.wait_step(id, "step == first_bake", |at| at == first_bake).await;
    assert_eq!(h.status(id).await.1, first_bake, "batch 1 is baking");
    // web-1 (already on the new release) starts failing its probes: draining web-3 and web-4
    // would leave only web-2 healthy, fewer than min_healthy = 2.
    h.fake.with(|w| w.unhealthy = vec!["web-1".into()]);
    h.wait_for(id, "paused").await;
    let row = h.store.find_campaign(id).await.expect("read").expect("row");
    let msg = row.last_error.unwrap_or_default();
    assert!(msg.contains("taking web-3, web-4 out would leave 1 healthy member serving (web-2), fewer than the 2 needed"), "{msg}");
    let drained = h.fake.with(|w| {
        w.pools["web-pool"]
            .values()
            .filter(|m| m.state != app::domain::plan::MemberState::Ready)
            .count()
    });
    assert_eq!(drained, 0, "nothing was drained");
    h.fake.with(|w| w.unhealthy.clear());
    h.service.resume(&operator(), id).await.expect("resume");
    h.wait_for(id, "succeeded").await;
}
