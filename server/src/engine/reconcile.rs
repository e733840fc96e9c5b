//! One campaign's reconciler: `run` loops over `pass`, which decides and does the next thing
//! from the persisted state alone.

use std::sync::Arc;
use std::time::Duration;

use app::domain::campaign::{CampaignSpec, RollbackMode, Strategy};
use app::domain::compare;
use app::domain::environment::{BackendKind, Environment};
use app::domain::gate::{Outcome, Sample, Verdict, fold_comparison, judge};
use app::domain::ids::Name;
use app::domain::lifecycle::{self, CampaignState, Command, PauseCause, Phase, StepStatus};
use app::domain::plan::{BackendCall, HealthCall, Plan, RouterCall, Step, StepKind};
use app::domain::reality::{self, AdoptHints};
use app::domain::views::TrafficView;
use app::domain::{rollback, validate};
use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;

use super::Engine;
use super::alerts::AlertEvent;
use super::calls::{Adapters, CallRecord, apply, with_retry};
use super::observe::Probe;
use crate::adapters::AdapterError;
use crate::notify::plan::CommsEvent;
use crate::store::NewAlert;
use crate::store::{
    AuditRecord, CampaignPatch, CampaignRow, EnvironmentUpdate, StepRun, StoreError,
};

/// What the reconciler does after a pass.
enum Next {
    /// Look again at once.
    Again,
    /// Look again after this long, or when woken.
    Sleep(Duration),
    /// Nothing to do until a person acts (woken by the command).
    Idle,
    /// The campaign needs no reconciler any more.
    Done,
}

/// Why a pass could not finish.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The database refused or failed; worth another pass (a compare-and-set lost to a
    /// command is one: the next pass sees the new state).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What is stored cannot be understood; another pass would fail the same way.
    #[error("{0}")]
    Unreadable(String),
}

/// Store errors in a row after which the reconciler stops and pauses its campaign.
const MAX_ERRORS_IN_A_ROW: u32 = 10;

pub async fn run(engine: Engine, id: i64, wake: Arc<Notify>) {
    let mut errors = 0_u32;
    loop {
        let result = pass(&engine, id).await;
        engine.inner.passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let next = match result {
            Ok(n) => {
                errors = 0;
                n
            }
            // The stored campaign cannot be read: retrying will not help.
            Err(PassError::Unreadable(m)) => {
                contain(&engine, id, &m).await;
                return;
            }
            Err(PassError::Store(e)) => {
                errors += 1;
                tracing::error!(campaign_id = id, error = %e, errors, "reconcile pass failed; retrying");
                if errors >= MAX_ERRORS_IN_A_ROW {
                    contain(&engine, id, &format!("{errors} passes failed in a row: {e}")).await;
                    return;
                }
                Next::Sleep(Duration::from_secs(1))
            }
        };
        match next {
            Next::Again => {}
            Next::Sleep(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {}
                    () = wake.notified() => {}
                }
            }
            Next::Idle => wake.notified().await,
            Next::Done => return,
        }
    }
}

/// A reconciler stopped unexpectedly: its campaign pauses (a rollback pauses as a rollback)
/// with the message, audited and alerted, so a person can resume it.
pub async fn contain(engine: &Engine, id: i64, why: &str) {
    let store = engine.store();
    let Ok(Some(row)) = store.find_campaign(id).await else {
        tracing::error!(
            campaign_id = id,
            why,
            "a reconciler failed and its campaign cannot be read"
        );
        return;
    };
    let (command, resume) = match row.status {
        CampaignState::Running | CampaignState::AwaitingApproval => {
            (Command::Pause, "resume to retry the step")
        }
        CampaignState::Aborting => (Command::PauseRollback, "resume the rollback to retry it"),
        _ => return,
    };
    let Ok(status) = lifecycle::transition(row.status, command) else { return };
    let message = format!("{why}; {resume}");
    let result = store
        .patch_campaign(
            id,
            &[row.status],
            CampaignPatch {
                status: Some(status),
                pause_cause: Some((status == CampaignState::Paused).then_some(PauseCause::Error)),
                last_error: Some(Some(message.clone())),
                ..Default::default()
            },
            Some(engine_audit(id, "campaign.pause", "failure", json!({ "error": message }))),
            Some(("error", json!({ "message": message, "alert": true }))),
        )
        .await;
    match result {
        Ok(()) => {
            let event = if status == CampaignState::Paused {
                AlertEvent::Paused
            } else {
                AlertEvent::RollbackPaused
            };
            engine.alert(id, event, &message).await;
        }
        Err(e) => {
            tracing::error!(campaign_id = id, error = %e, "could not pause a failed campaign")
        }
    }
    engine.announce(id);
}

/// A campaign as the engine needs it.
struct Loaded {
    row: CampaignRow,
    state: CampaignState,
    spec: CampaignSpec,
    plan: Plan,
    env: Environment,
}

impl Loaded {
    /// The state `command` moves this campaign to, as the lifecycle decides: every transition
    /// the engine makes goes through here, and is written only while the campaign is still in
    /// the state it was loaded in (`&[c.state]`).
    fn to(&self, command: Command) -> Result<CampaignState, PassError> {
        lifecycle::transition(self.state, command).map_err(|e| {
            PassError::Unreadable(format!("campaign {}: the engine may not {e}", self.row.id))
        })
    }
}

fn engine_audit(id: i64, action: &str, outcome: &str, details: serde_json::Value) -> AuditRecord {
    AuditRecord {
        actor: "engine".into(),
        role: "system".into(),
        source_ip: "local".into(),
        action: action.into(),
        object: format!("campaign:{id}"),
        outcome: outcome.into(),
        details,
    }
}

/// The notices and window update a finished campaign causes (in the same transaction).
fn comms_change(event: CommsEvent, spec: &CampaignSpec) -> Option<crate::store::CommsChange> {
    let window = spec.window.resolve().ok()?;
    crate::notify::plan::change(event, spec, &window, Utc::now())
}

/// The operator alert of a change of `c`.
fn alert(engine: &Engine, c: &Loaded, event: AlertEvent, message: &str) -> Option<NewAlert> {
    engine.alert_of(c.row.id, &c.row.name, &c.spec, &c.env, event, message)
}

/// The closing notices of `c` with its impact report in one line (`{report}` in templates).
async fn report_line(engine: &Engine, c: &Loaded) -> String {
    match super::impact::report(engine.store(), &c.row).await {
        Ok(r) => r.line(),
        Err(e) => format!("the request counts could not be read ({e})"),
    }
}

fn closing_comms(c: &Loaded, event: CommsEvent, line: &str) -> Option<crate::store::CommsChange> {
    let mut change = comms_change(event, &c.spec)?;
    for n in &mut change.notices {
        if let Some(p) = n.payload.as_object_mut() {
            p.insert("report".into(), json!(line));
        }
    }
    Some(change)
}

fn since(ts: &Option<DateTime<Utc>>, now: DateTime<Utc>) -> Duration {
    ts.map(|t| (now - t).to_std().unwrap_or_default()).unwrap_or_default()
}

async fn load(engine: &Engine, id: i64) -> Result<Option<Loaded>, PassError> {
    let Some(row) = engine.store().find_campaign(id).await? else { return Ok(None) };
    let state = row.status;
    if !state.is_active() {
        return Ok(None);
    }
    let bad = |what: &str, e: serde_json::Error| {
        PassError::Unreadable(format!("campaign {id}: stored {what} is unreadable: {e}"))
    };
    let spec: CampaignSpec = serde_json::from_str(&row.spec).map_err(|e| bad("spec", e))?;
    let plan: Plan =
        serde_json::from_str(row.plan.as_deref().unwrap_or("null")).map_err(|e| bad("plan", e))?;
    let env: Environment = serde_json::from_str(row.env_snapshot.as_deref().unwrap_or("null"))
        .map_err(|e| bad("environment", e))?;
    Ok(Some(Loaded { row, state, spec, plan, env }))
}

async fn pass(engine: &Engine, id: i64) -> Result<Next, PassError> {
    let Some(c) = load(engine, id).await? else { return Ok(Next::Done) };
    match c.state {
        CampaignState::Running => forward(engine, &c).await,
        CampaignState::Aborting => roll_back(engine, &c).await,
        CampaignState::Paused | CampaignState::AwaitingApproval => Ok(Next::Idle),
        _ => Ok(Next::Done),
    }
}

// ---- forward --------------------------------------------------------------------------------

async fn forward(engine: &Engine, c: &Loaded) -> Result<Next, PassError> {
    let store = engine.store();
    let id = c.row.id;
    let idx = usize::try_from(c.row.step_index).unwrap_or(usize::MAX);
    let Some(step) = c.plan.steps.get(idx) else {
        return finish(engine, c).await;
    };
    if c.row.step_started_at.is_none() {
        store
            .patch_campaign(
                id,
                &[c.state],
                CampaignPatch { step_started_at: Some(Some(engine.now())), ..Default::default() },
                None,
                Some((
                    "step_started",
                    json!({ "index": idx, "kind": step.kind, "description": step.description }),
                )),
            )
            .await?;
        store
            .record_step_run(StepRun {
                campaign_id: id,
                phase: Phase::Forward,
                step_index: c.row.step_index,
                status: StepStatus::Running,
                attempts: 0,
                calls: "[]",
                verdict: None,
                log_line: Some("started"),
            })
            .await?;
        engine.announce(id);
        return Ok(Next::Again);
    }
    let now = engine.now();
    let elapsed = since(&c.row.step_started_at, now);
    let adapters = Adapters { env: &c.env, factory: &*engine.inner.adapters };
    match step.kind {
        StepKind::Bake => {
            let want = Duration::from_secs(step.expected_secs);
            if elapsed < want {
                return Ok(Next::Sleep(want - elapsed));
            }
            advance(engine, c, idx, StepStatus::Done, &[], Some("bake time over")).await
        }
        StepKind::Pause => {
            store
                .patch_campaign(
                    id,
                    &[c.state],
                    CampaignPatch {
                        status: Some(c.to(Command::Pause)?),
                        pause_cause: Some(Some(PauseCause::Person)),
                        alert: alert(
                            engine,
                            c,
                            AlertEvent::Paused,
                            &format!("planned pause at step {}: resume to continue", idx + 1),
                        ),
                        ..Default::default()
                    },
                    Some(engine_audit(
                        id,
                        "campaign.pause",
                        "success",
                        json!({ "step": idx, "why": "planned pause" }),
                    )),
                    Some((
                        "paused",
                        json!({ "index": idx, "reason": "planned pause: resume to continue" }),
                    )),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Idle)
        }
        StepKind::Approval => {
            store
                .patch_campaign(
                    id,
                    &[c.state],
                    CampaignPatch {
                        status: Some(c.to(Command::RequestApproval)?),
                        approvals: Some("[]".into()),
                        alert: alert(
                            engine,
                            c,
                            AlertEvent::AwaitingApproval,
                            &format!(
                                "step {} needs {} approval(s) before the campaign goes on",
                                idx + 1,
                                c.spec.approvals.required.max(1)
                            ),
                        ),
                        ..Default::default()
                    },
                    Some(engine_audit(
                        id,
                        "campaign.request_approval",
                        "success",
                        json!({ "step": idx }),
                    )),
                    Some((
                        "awaiting_approval",
                        json!({ "index": idx, "required": c.spec.approvals.required }),
                    )),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Idle)
        }
        StepKind::Gate => gate(engine, c, idx, step, &adapters, now).await,
        StepKind::WaitHealthy => {
            let mut records = Vec::new();
            let mut unhealthy = Vec::new();
            for call in &step.calls {
                match apply(&adapters, call).await {
                    Ok(readback) => records.push(CallRecord {
                        call: call.to_string(),
                        ok: true,
                        attempts: 1,
                        readback,
                    }),
                    Err(e) => {
                        unhealthy.push(e.to_string());
                        records.push(CallRecord {
                            call: call.to_string(),
                            ok: false,
                            attempts: 1,
                            readback: e.to_string(),
                        });
                    }
                }
            }
            if unhealthy.is_empty() {
                return advance(
                    engine,
                    c,
                    idx,
                    StepStatus::Done,
                    &records,
                    Some("all targets healthy"),
                )
                .await;
            }
            let timeout = Duration::from_secs(step.timeout_secs.unwrap_or(300));
            if elapsed >= timeout {
                let msg =
                    format!("not healthy after {}s: {}", timeout.as_secs(), unhealthy.join("; "));
                return pause_with_error(engine, c, idx, &records, &msg, PauseCause::Error).await;
            }
            let calls = serde_json::to_string(&records).unwrap_or_default();
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Forward,
                    step_index: c.row.step_index,
                    status: StepStatus::Running,
                    attempts: 0,
                    calls: &calls,
                    verdict: None,
                    log_line: None,
                })
                .await?;
            Ok(Next::Sleep(engine.inner.config.tick))
        }
        StepKind::Drain | StepKind::RemoveFromPool
            if let Some(wait) = too_few_would_remain(engine, c, step, elapsed).await? =>
        {
            match wait {
                Err(msg) => pause_with_error(engine, c, idx, &[], &msg, PauseCause::Error).await,
                Ok(()) => Ok(Next::Sleep(engine.inner.config.tick)),
            }
        }
        _ => {
            // An acting step: every call, in order, retried when transient, within the step's timeout.
            let timeout = Duration::from_secs(step.timeout_secs.unwrap_or(600));
            let result =
                tokio::time::timeout(timeout, run_calls(engine, &adapters, &step.calls, id, true))
                    .await;
            let (records, error) = match result {
                Ok(r) => r,
                Err(_) => (
                    Vec::new(),
                    Some(AdapterError::Transient(format!(
                        "step timed out after {}s",
                        timeout.as_secs()
                    ))),
                ),
            };
            match error {
                None => {
                    let skipped = step.kind == StepKind::Notify;
                    advance(
                        engine,
                        c,
                        idx,
                        if skipped { StepStatus::Skipped } else { StepStatus::Done },
                        &records,
                        None,
                    )
                    .await
                }
                Some(e) => {
                    let cause = if matches!(e, AdapterError::Drift(_)) {
                        PauseCause::Drift
                    } else {
                        PauseCause::Error
                    };
                    pause_with_error(engine, c, idx, &records, &e.to_string(), cause).await
                }
            }
        }
    }
}

/// Applies the calls in order. A router change on a pool that drifted from what Switchyard
/// last set is refused when `guard_drift` (going forward); rolling back never waits on drift.
/// After each verified router change the pool's read-back becomes the new expectation.
async fn run_calls(
    engine: &Engine,
    adapters: &Adapters<'_>,
    calls: &[BackendCall],
    id: i64,
    guard_drift: bool,
) -> (Vec<CallRecord>, Option<AdapterError>) {
    let mut records = Vec::new();
    let env = adapters.env.name.as_str();
    for call in calls {
        let pool = match call {
            BackendCall::Router { backend, call } => call.pool().map(|p| (backend, p)),
            _ => None,
        };
        let router = pool.and_then(|(backend, _)| adapters.router(backend.as_str()).ok());
        if let (Some((backend, pool)), Some(router), true) = (pool, &router, guard_drift) {
            let store = engine.store();
            let by = Some(id);
            match super::drift::check_pool(
                store,
                env,
                backend.as_str(),
                pool.as_str(),
                &**router,
                by,
            )
            .await
            {
                Ok(diffs) if !diffs.is_empty() => {
                    let e = AdapterError::Drift(format!(
                        "drift on {pool}: {}. Switchyard does not overwrite changes made outside it; \
                         put the router back, or resume to accept its state as it is now",
                        diffs.join("; ")
                    ));
                    records.push(CallRecord {
                        call: call.to_string(),
                        ok: false,
                        attempts: 0,
                        readback: e.to_string(),
                    });
                    return (records, Some(e));
                }
                _ => {}
            }
        }
        if let Some((backend, pool)) = pool
            && let Err(e) =
                engine.store().mark_router_change(env, backend.as_str(), pool.as_str(), id).await
        {
            tracing::warn!(error = %e, "could not note a router change");
        }
        let (result, attempts) = with_retry(&engine.inner.config, || apply(adapters, call)).await;
        if result.is_ok() {
            let phase = if guard_drift { "forward" } else { "rollback" };
            match call {
                BackendCall::Router { .. } => {
                    super::failpoint::hit(&format!("{phase}-router-applied")).await;
                }
                BackendCall::Provider { .. } => {
                    super::failpoint::hit(&format!("{phase}-provider-applied")).await;
                }
                _ => {}
            }
        }
        match result {
            Ok(readback) => {
                if let (Some((backend, pool)), Some(router)) = (pool, &router) {
                    let _ = super::drift::record_pool(
                        engine.store(),
                        env,
                        backend.as_str(),
                        pool.as_str(),
                        Some(id),
                        &**router,
                    )
                    .await;
                }
                records.push(CallRecord { call: call.to_string(), ok: true, attempts, readback })
            }
            Err(e) => {
                records.push(CallRecord {
                    call: call.to_string(),
                    ok: false,
                    attempts,
                    readback: e.to_string(),
                });
                return (records, Some(e));
            }
        }
    }
    (records, None)
}

async fn advance(
    engine: &Engine,
    c: &Loaded,
    idx: usize,
    status: StepStatus,
    records: &[CallRecord],
    note: Option<&str>,
) -> Result<Next, PassError> {
    let id = c.row.id;
    let attempts = records.iter().map(|r| i64::from(r.attempts)).max().unwrap_or(0);
    let calls = serde_json::to_string(records).unwrap_or_default();
    engine
        .store()
        .record_step_run(StepRun {
            campaign_id: id,
            phase: Phase::Forward,
            step_index: c.row.step_index,
            status,
            attempts,
            calls: &calls,
            verdict: None,
            log_line: note,
        })
        .await?;
    engine
        .store()
        .patch_campaign(
            id,
            &[c.state],
            CampaignPatch {
                step_index: Some(c.row.step_index + 1),
                step_started_at: Some(None),
                last_error: Some(None),
                ..Default::default()
            },
            None,
            Some(("step_done", json!({ "index": idx, "status": status, "calls": records }))),
        )
        .await?;
    engine.announce(id);
    Ok(Next::Again)
}

async fn pause_with_error(
    engine: &Engine,
    c: &Loaded,
    idx: usize,
    records: &[CallRecord],
    msg: &str,
    cause: PauseCause,
) -> Result<Next, PassError> {
    let id = c.row.id;
    let calls = serde_json::to_string(records).unwrap_or_default();
    let attempts = records.iter().map(|r| i64::from(r.attempts)).max().unwrap_or(0);
    engine
        .store()
        .record_step_run(StepRun {
            campaign_id: id,
            phase: Phase::Forward,
            step_index: c.row.step_index,
            status: StepStatus::Failed,
            attempts,
            calls: &calls,
            verdict: None,
            log_line: Some(msg),
        })
        .await?;
    let message = format!("step {} ({}) failed: {msg}", idx + 1, c.plan.steps[idx].kind.label());
    engine
        .store()
        .patch_campaign(
            id,
            &[c.state],
            CampaignPatch {
                status: Some(c.to(Command::Pause)?),
                pause_cause: Some(Some(cause)),
                last_error: Some(Some(message.clone())),
                alert: alert(engine, c, AlertEvent::Paused, &message),
                ..Default::default()
            },
            Some(engine_audit(
                id,
                "campaign.pause",
                "failure",
                json!({ "step": idx, "error": message }),
            )),
            Some(("error", json!({ "index": idx, "message": message, "calls": records }))),
        )
        .await?;
    engine.announce(id);
    Ok(Next::Idle)
}

async fn gate(
    engine: &Engine,
    c: &Loaded,
    idx: usize,
    step: &Step,
    adapters: &Adapters<'_>,
    now: DateTime<Utc>,
) -> Result<Next, PassError> {
    let store = engine.store();
    let id = c.row.id;
    let started = c.row.step_started_at.unwrap_or(now);
    // Samples gathered so far live in the step run, so a restart keeps them.
    let mut samples: Vec<Sample> = store
        .step_runs(id)
        .await?
        .into_iter()
        .find(|r| r.phase == Phase::Forward && r.step_index == c.row.step_index)
        .and_then(|r| serde_json::from_str(&r.calls).ok())
        .unwrap_or_default();
    let targets: Vec<String> = step
        .calls
        .iter()
        .filter_map(|call| match call {
            BackendCall::Health { call: HealthCall::Probe { target }, .. } => {
                Some(target.to_string())
            }
            _ => None,
        })
        .collect();
    let health_backend = step.calls.iter().find_map(|call| match call {
        BackendCall::Health { backend, .. } => Some(backend.to_string()),
        _ => None,
    });
    if let Some(backend) = health_backend {
        let sampled = async {
            let h = adapters.health(&backend)?;
            let mut pairs = Vec::new();
            for t in &targets {
                pairs.push((t.clone(), adapters.health_url(t).await?));
            }
            h.sample(c.spec.pool.as_str(), &pairs).await
        };
        match sampled.await {
            Ok(s) => samples.push(s),
            Err(e) => {
                tracing::warn!(campaign_id = id, error = %e, "gate sample failed; counts as no data")
            }
        }
    }
    let gates =
        if c.spec.gates.is_empty() { vec![Default::default()] } else { c.spec.gates.clone() };
    let mut verdicts: Vec<Verdict> =
        gates.iter().map(|g| judge(g, &samples, started, now)).collect();
    // Canary versus baseline, where a gate asks for it: a verdict a person must give (marginal,
    // or still too little data where the spec says pause) pauses the campaign.
    let mut for_a_person: Vec<String> = Vec::new();
    for (g, v) in gates.iter().zip(verdicts.iter_mut()) {
        let Some(spec) = &g.compare else { continue };
        let since =
            started.max(now - chrono::Duration::seconds(i64::try_from(g.window_secs).unwrap_or(0)));
        let rows = store.samples_since(id, since, 50_000).await?;
        let new_release: Vec<String> =
            c.plan.new_release_targets(idx).into_iter().map(|t| t.to_string()).collect();
        let (canary, baseline) =
            super::sides(&rows, &targets, &new_release, c.spec.from_release.as_str());
        let cmp = compare::compare(spec, &canary, &baseline);
        let past_deadline =
            now - started >= chrono::Duration::seconds(i64::try_from(g.deadline_secs).unwrap_or(0));
        if let Some(why) = fold_comparison(v, spec, cmp, past_deadline) {
            for_a_person.push(why);
        }
    }
    if !for_a_person.is_empty() && verdicts.iter().all(|v| v.outcome != Outcome::Fail) {
        let verdict_json = serde_json::to_string(&verdicts).unwrap_or_default();
        store
            .record_step_run(StepRun {
                campaign_id: id,
                phase: Phase::Forward,
                step_index: c.row.step_index,
                status: StepStatus::Running,
                attempts: 0,
                calls: &serde_json::to_string(&samples).unwrap_or_default(),
                verdict: Some(&verdict_json),
                log_line: None,
            })
            .await?;
        let msg = format!(
            "the canary-versus-baseline comparison needs a person: {}. Resume to accept the new \
             release at this step and go on; abort to roll back",
            for_a_person.join("; ")
        );
        return pause_with_error(engine, c, idx, &[], &msg, PauseCause::Judgement).await;
    }
    let outcome = if verdicts.iter().any(|v| v.outcome == Outcome::Fail) {
        Outcome::Fail
    } else if verdicts.iter().all(|v| v.outcome == Outcome::Pass) {
        Outcome::Pass
    } else {
        Outcome::Wait
    };
    let verdict_json = serde_json::to_string(&verdicts).unwrap_or_default();
    let samples_json = serde_json::to_string(&samples).unwrap_or_default();
    let reason = verdicts.iter().map(|v| v.reason.clone()).collect::<Vec<_>>().join("; ");
    match outcome {
        Outcome::Wait => {
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Forward,
                    step_index: c.row.step_index,
                    status: StepStatus::Running,
                    attempts: 0,
                    calls: &samples_json,
                    verdict: Some(&verdict_json),
                    log_line: None,
                })
                .await?;
            store
                .append_event(
                    id,
                    "gate",
                    &json!({ "index": idx, "outcome": "wait", "verdicts": verdicts }),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Sleep(engine.inner.config.tick))
        }
        Outcome::Pass => {
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Forward,
                    step_index: c.row.step_index,
                    status: StepStatus::Done,
                    attempts: 0,
                    calls: &samples_json,
                    verdict: Some(&verdict_json),
                    log_line: Some(&format!("gate passed: {reason}")),
                })
                .await?;
            store
                .patch_campaign(
                    id,
                    &[c.state],
                    CampaignPatch { step_index: Some(c.row.step_index + 1), step_started_at: Some(None), ..Default::default() },
                    None,
                    Some(("step_done", json!({ "index": idx, "status": "done", "gate": "pass", "verdicts": verdicts }))),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Again)
        }
        Outcome::Fail => {
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Forward,
                    step_index: c.row.step_index,
                    status: StepStatus::Failed,
                    attempts: 0,
                    calls: &samples_json,
                    verdict: Some(&verdict_json),
                    log_line: Some(&format!("gate failed: {reason}")),
                })
                .await?;
            let message = format!("gate failed at step {}: {reason}", idx + 1);
            if c.spec.rollback.mode == RollbackMode::Automatic {
                store
                    .patch_campaign(
                        id,
                        &[c.state],
                        CampaignPatch {
                            status: Some(c.to(Command::Abort)?),
                            abort_reason: Some(message.clone()),
                            abort_requested_at: Some(engine.now()),
                            last_error: Some(Some(message.clone())),
                            alert: alert(engine, c, AlertEvent::GateFailed, &message),
                            ..Default::default()
                        },
                        Some(engine_audit(
                            id,
                            "campaign.abort",
                            "success",
                            json!({ "reason": message, "automatic": true }),
                        )),
                        Some((
                            "aborting",
                            json!({ "reason": message, "automatic": true, "verdicts": verdicts }),
                        )),
                    )
                    .await?;
                engine.announce(id);
                Ok(Next::Again)
            } else {
                pause_with_error(engine, c, idx, &[], &message, PauseCause::Error).await
            }
        }
    }
}

// ---- rollback -------------------------------------------------------------------------------

async fn roll_back(engine: &Engine, c: &Loaded) -> Result<Next, PassError> {
    let store = engine.store();
    let id = c.row.id;
    let steps: Vec<Step> = match &c.row.rollback_plan {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            PassError::Unreadable(format!("campaign {id}: stored rollback plan unreadable: {e}"))
        })?,
        None => {
            let valid = validate::validate(&c.spec, &c.env).map_err(|e| {
                PassError::Unreadable(format!(
                    "campaign {id}: the frozen spec no longer validates: {:?}",
                    e.0.first().map(|f| &f.message)
                ))
            })?;
            // The current step may be half applied; counting it as reached is safe.
            let reached = usize::try_from(c.row.step_index).unwrap_or(0).saturating_add(1);
            let steps = rollback::rollback_plan(&c.plan, &valid, reached);
            store
                .patch_campaign(
                    id,
                    &[c.state],
                    CampaignPatch {
                        rollback_plan: Some(serde_json::to_string(&steps).unwrap_or_default()),
                        rollback_index: Some(0),
                        interrupt_forward_steps: true,
                        ..Default::default()
                    },
                    None,
                    Some(("rollback_planned", json!({ "steps": steps }))),
                )
                .await?;
            engine.announce(id);
            return Ok(Next::Again);
        }
    };
    let idx = usize::try_from(c.row.rollback_index).unwrap_or(usize::MAX);
    let Some(step) = steps.get(idx) else {
        return rolled_back(engine, c).await;
    };
    // Never send users to a member that is gone or failing: stop here instead, the pool
    // serving from what it holds now.
    let to = receiving(step);
    if !to.is_empty() {
        let dead = dead_targets(engine, c, &to).await;
        if !dead.is_empty() {
            let live = read_back(engine, c, Probe::Members).await;
            let shed = shed_dead_members(engine, c, &live).await;
            let live =
                if shed.is_empty() { live } else { read_back(engine, c, Probe::Members).await };
            let message = format!(
                "the rollback stopped before step {} ({}): it would send users to {}. {}The \
                 pool keeps serving from what it holds now: {}. Bring the {} set back (or fix \
                 it), then resume the rollback",
                idx + 1,
                step.description,
                dead.join(", "),
                if shed.is_empty() {
                    String::new()
                } else {
                    format!(
                        "{} took traffic while dead and now take none (weight 0). ",
                        shed.join(", ")
                    )
                },
                pool_summary(&live),
                c.spec.from_release
            );
            return pause_rollback(engine, c, message).await;
        }
    }
    let adapters = Adapters { env: &c.env, factory: &*engine.inner.adapters };
    let (records, error) = match step.kind {
        // Rolling back never waits for time or people.
        StepKind::Bake | StepKind::Gate | StepKind::Approval | StepKind::Pause => {
            (Vec::new(), None)
        }
        StepKind::WaitHealthy => {
            let deadline =
                tokio::time::Instant::now() + Duration::from_secs(step.timeout_secs.unwrap_or(300));
            loop {
                let (records, error) = run_calls(engine, &adapters, &step.calls, id, false).await;
                if error.is_none() || tokio::time::Instant::now() >= deadline {
                    break (records, error);
                }
                tokio::time::sleep(engine.inner.config.tick).await;
            }
        }
        _ => run_calls(engine, &adapters, &step.calls, id, false).await,
    };
    let calls = serde_json::to_string(&records).unwrap_or_default();
    let attempts = records.iter().map(|r| i64::from(r.attempts)).max().unwrap_or(0);
    match error {
        None => {
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Rollback,
                    step_index: c.row.rollback_index,
                    status: StepStatus::Done,
                    attempts,
                    calls: &calls,
                    verdict: None,
                    log_line: None,
                })
                .await?;
            store
                .patch_campaign(
                    id,
                    &[c.state],
                    CampaignPatch {
                        rollback_index: Some(c.row.rollback_index + 1),
                        ..Default::default()
                    },
                    None,
                    Some((
                        "rollback_step_done",
                        json!({ "index": idx, "description": step.description, "calls": records }),
                    )),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Again)
        }
        Some(e) if e.is_transient() => {
            // Rolling back must finish: keep trying, and say so.
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Rollback,
                    step_index: c.row.rollback_index,
                    status: StepStatus::Running,
                    attempts,
                    calls: &calls,
                    verdict: None,
                    log_line: Some(&e.to_string()),
                })
                .await?;
            store
                .append_event(
                    id,
                    "error",
                    &json!({ "rollback_index": idx, "message": e.to_string(), "retrying": true }),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Sleep(engine.inner.config.retry_max))
        }
        Some(e) => {
            let message = format!(
                "rollback step {} failed: {e}; fix the backend, then abort again to resume the rollback",
                idx + 1
            );
            store
                .record_step_run(StepRun {
                    campaign_id: id,
                    phase: Phase::Rollback,
                    step_index: c.row.rollback_index,
                    status: StepStatus::Failed,
                    attempts,
                    calls: &calls,
                    verdict: None,
                    log_line: Some(&e.to_string()),
                })
                .await?;
            store
                .patch_campaign(
                    id,
                    &[c.state],
                    CampaignPatch {
                        status: Some(c.to(Command::Fail)?),
                        last_error: Some(Some(message.clone())),
                        alert: alert(engine, c, AlertEvent::Failed, &message),
                        ..Default::default()
                    },
                    Some(engine_audit(id, "campaign.fail", "failure", json!({ "error": message }))),
                    Some(("failed", json!({ "message": message }))),
                )
                .await?;
            engine.announce(id);
            Ok(Next::Done)
        }
    }
}

// ---- the end of a campaign ------------------------------------------------------------------

/// The pool as a campaign leaves it, read back from its router and provider (probing every
/// member when `probe`).
async fn read_back(engine: &Engine, c: &Loaded, probe: Probe) -> TrafficView {
    let created: Vec<String> =
        c.plan.created_instances().into_iter().map(|(t, _, _)| t.to_string()).collect();
    super::observe::pool_traffic(engine.adapters(), &c.env, c.spec.pool.as_str(), &created, probe)
        .await
}

/// The environment record rewritten to what the pool really holds now, with the audit event
/// that says so; `None` when the record already says that (or the campaign touched no pool).
async fn record_update(
    engine: &Engine,
    c: &Loaded,
    live: &TrafficView,
) -> Result<Option<EnvironmentUpdate>, String> {
    if matches!(c.spec.strategy, Strategy::FeatureFlag { .. }) {
        return Ok(None);
    }
    let row = engine
        .store()
        .find_environment_by_name(&c.row.environment)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("environment {} no longer exists", c.row.environment))?;
    let current: Environment = serde_json::from_str(&row.spec)
        .map_err(|e| format!("the stored environment is unreadable: {e}"))?;
    let pool = Name::parse(c.spec.pool.as_str()).map_err(|e| e.to_string())?;
    let mut hints = AdoptHints::default();
    for (t, group, release) in c.plan.created_instances() {
        hints.group.insert(t.to_string(), group);
        hints.release.insert(t.to_string(), release);
    }
    let next = reality::adopt(&current, &pool, &live.members, &hints).map_err(|e| e.to_string())?;
    if next == current {
        return Ok(None);
    }
    let spec = serde_json::to_string(&next).map_err(|e| e.to_string())?;
    let audit = AuditRecord {
        actor: "engine".into(),
        role: "system".into(),
        source_ip: "local".into(),
        action: "environment.updated_by_campaign".into(),
        object: format!("environment:{}", c.row.environment),
        outcome: "success".into(),
        details: json!({
            "campaign": c.row.id,
            "pool": c.spec.pool,
            "before": reality::describe_pool(&current, &pool),
            "after": reality::describe_pool(&next, &pool),
        }),
    };
    Ok(Some(EnvironmentUpdate { name: c.row.environment.clone(), spec, audit }))
}

/// Every step ran: the pool's record becomes what the campaign left, in the same transaction
/// as the success, so the next campaign plans against what is really there.
async fn finish(engine: &Engine, c: &Loaded) -> Result<Next, PassError> {
    let id = c.row.id;
    let live = read_back(engine, c, Probe::Skip).await;
    let is_flag = matches!(c.spec.strategy, Strategy::FeatureFlag { .. });
    if let (Some(e), false) = (&live.error, is_flag) {
        let msg = format!(
            "every step is done, but the pool cannot be read back to record what the campaign \
             left: {e}; resume to try again"
        );
        return pause_at_end(engine, c, &msg).await;
    }
    let environment = match record_update(engine, c, &live).await {
        Ok(u) => u,
        Err(e) => {
            let msg = format!(
                "every step is done, but the environment record cannot be updated: {e}; resume \
                 to try again"
            );
            return pause_at_end(engine, c, &msg).await;
        }
    };
    let report = report_line(engine, c).await;
    engine
        .store()
        .patch_campaign(
            id,
            &[c.state],
            CampaignPatch {
                status: Some(c.to(Command::Complete)?),
                finished_at: Some(engine.now()),
                comms: closing_comms(c, CommsEvent::Completed, &report),
                alert: alert(
                    engine,
                    c,
                    AlertEvent::Succeeded,
                    &format!("every step is done; {report}"),
                ),
                environment,
                ..Default::default()
            },
            Some(engine_audit(
                id,
                "campaign.complete",
                "success",
                json!({ "steps": c.plan.steps.len(), "pool": pool_summary(&live) }),
            )),
            Some(("completed", json!({ "status": "succeeded", "pool": pool_summary(&live) }))),
        )
        .await?;
    engine.announce(id);
    Ok(Next::Done)
}

async fn pause_at_end(engine: &Engine, c: &Loaded, msg: &str) -> Result<Next, PassError> {
    let id = c.row.id;
    engine
        .store()
        .patch_campaign(
            id,
            &[c.state],
            CampaignPatch {
                status: Some(c.to(Command::Pause)?),
                pause_cause: Some(Some(PauseCause::Error)),
                last_error: Some(Some(msg.to_string())),
                alert: alert(engine, c, AlertEvent::Paused, msg),
                ..Default::default()
            },
            Some(engine_audit(id, "campaign.pause", "failure", json!({ "error": msg }))),
            Some(("error", json!({ "message": msg }))),
        )
        .await?;
    engine.announce(id);
    Ok(Next::Idle)
}

/// `web-1 v1 ready 50 % ✓, web-2 v1 ready 50 % ✓`: the pool in one line, for events and messages.
pub(crate) fn pool_summary(live: &TrafficView) -> String {
    if let Some(e) = &live.error {
        return format!("unreadable ({e})");
    }
    if live.members.is_empty() {
        return "no member".into();
    }
    live.members
        .iter()
        .map(|m| {
            let health = match (m.exists, m.healthy) {
                (Some(false), _) => " ✗ gone",
                (_, Some(false)) => " ✗ unhealthy",
                (_, Some(true)) => " ✓",
                _ => "",
            };
            format!(
                "{} {} {} {:.1} %{health}",
                m.target,
                m.release.as_deref().unwrap_or("?"),
                m.state,
                m.weight_pct
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ---- a rollback never makes things worse -----------------------------------------------------

/// The targets a rollback step would send users to (a weight above zero, a ready member, a DNS
/// record or preview route naming them).
fn receiving(step: &Step) -> Vec<Name> {
    let mut out: Vec<Name> = Vec::new();
    let mut add = |t: &Name| {
        if !out.contains(t) {
            out.push(t.clone());
        }
    };
    for call in &step.calls {
        let BackendCall::Router { call, .. } = call else { continue };
        match call {
            RouterCall::AddMember { target, weight, .. }
            | RouterCall::SetWeight { target, weight, .. }
                if !weight.is_zero() =>
            {
                add(target);
            }
            RouterCall::SwitchDns { targets, .. } | RouterCall::SetPreviewRoute { targets, .. } => {
                targets.iter().for_each(&mut add);
            }
            _ => {}
        }
    }
    out
}

/// Of `targets`, those that must not receive traffic, with why: the provider has no such
/// instance, or it fails its health probe.
async fn dead_targets(engine: &Engine, c: &Loaded, targets: &[Name]) -> Vec<String> {
    let adapters = Adapters { env: &c.env, factory: engine.adapters() };
    let provider =
        c.env.first_backend(BackendKind::Provider).and_then(|b| engine.adapters().provider(b).ok());
    let health = c
        .env
        .first_backend(BackendKind::HealthSource)
        .and_then(|b| engine.adapters().health(b).ok());
    let mut dead = Vec::new();
    for t in targets {
        if let Some(p) = &provider
            && let Ok(None) = p.describe(t.as_str()).await
        {
            dead.push(format!("{t} (the provider has no such instance)"));
            continue;
        }
        let (Some(h), Ok(url)) = (&health, adapters.health_url(t.as_str()).await) else { continue };
        if let (Some(false), why) = super::observe::probe_once(&**h, t.as_str(), &url).await {
            dead.push(format!("{t} (fails its health probe: {why})"));
        }
    }
    dead
}

/// Members that serve but are gone or failing probes get weight 0, when healthy members that
/// serve remain to take their share (never when that would leave nobody): users stop meeting
/// dead members while the rollback waits for a person. Returns the members it took out.
async fn shed_dead_members(engine: &Engine, c: &Loaded, live: &TrafficView) -> Vec<String> {
    let (dead, healthy): (Vec<_>, Vec<_>) = live
        .members
        .iter()
        .filter(|m| m.serving())
        .partition(|m| m.exists == Some(false) || m.healthy == Some(false));
    if dead.is_empty() || !healthy.iter().any(|m| m.healthy == Some(true)) {
        return Vec::new();
    }
    let Some(router) = c
        .env
        .pool(&match Name::parse(c.spec.pool.as_str()) {
            Ok(n) => n,
            Err(_) => return Vec::new(),
        })
        .and_then(|p| c.env.backend(&p.router))
        .filter(|b| !b.is_dns_router())
        .and_then(|b| engine.adapters().router(b).ok())
    else {
        return Vec::new();
    };
    let mut shed = Vec::new();
    for m in dead {
        match router
            .set_weight(c.spec.pool.as_str(), &m.target, app::domain::ids::Weight::ZERO)
            .await
        {
            Ok(()) => shed.push(m.target.clone()),
            Err(e) => {
                tracing::warn!(target = %m.target, error = %e, "could not take a dead member out of traffic")
            }
        }
    }
    if let Err(e) = super::drift::record_pool(
        engine.store(),
        c.env.name.as_str(),
        c.env
            .pools
            .iter()
            .find(|p| p.name.as_str() == c.spec.pool)
            .map_or("", |p| p.router.as_str()),
        c.spec.pool.as_str(),
        Some(c.row.id),
        &*router,
    )
    .await
    {
        tracing::warn!(error = %e, "could not note the router's new state");
    }
    shed
}

/// Stops the rollback where it is, the pool serving from what it holds, says why and alerts.
async fn pause_rollback(engine: &Engine, c: &Loaded, message: String) -> Result<Next, PassError> {
    let id = c.row.id;
    tracing::error!(campaign_id = id, %message, "rollback paused");
    engine
        .store()
        .patch_campaign(
            id,
            &[c.state],
            CampaignPatch {
                status: Some(c.to(Command::PauseRollback)?),
                last_error: Some(Some(message.clone())),
                alert: alert(engine, c, AlertEvent::RollbackPaused, &message),
                ..Default::default()
            },
            Some(engine_audit(
                id,
                "campaign.rollback_paused",
                "failure",
                json!({ "error": message }),
            )),
            Some(("rollback_paused", json!({ "message": message, "alert": true }))),
        )
        .await?;
    engine.announce(id);
    Ok(Next::Done)
}

/// After the last rollback step: all traffic is back on the from-release only if the router
/// and live health say so. Then the campaign is rolled back; otherwise the rollback pauses
/// saying exactly what the pool holds.
async fn rolled_back(engine: &Engine, c: &Loaded) -> Result<Next, PassError> {
    let id = c.row.id;
    let is_flag = matches!(c.spec.strategy, Strategy::FeatureFlag { .. });
    let live = read_back(engine, c, Probe::Members).await;
    if !is_flag {
        let from = c.spec.from_release.as_str();
        let serving: Vec<_> = live.members.iter().filter(|m| m.serving()).collect();
        let wrong: Vec<String> = serving
            .iter()
            .filter(|m| {
                m.release.as_deref() != Some(from)
                    || m.healthy == Some(false)
                    || m.exists == Some(false)
            })
            .map(|m| m.target.clone())
            .collect();
        if live.error.is_some() || serving.is_empty() || !wrong.is_empty() {
            let message = format!(
                "every rollback step ran, but the pool is not entirely back on {from}: it holds \
                 {}{}. Fix the pool, then resume the rollback",
                pool_summary(&live),
                if wrong.is_empty() {
                    String::new()
                } else {
                    format!(" ({} still serving)", wrong.join(", "))
                }
            );
            return pause_rollback(engine, c, message).await;
        }
    }
    let environment = match record_update(engine, c, &live).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(campaign_id = id, error = %e, "the record was left as it was after the rollback");
            None
        }
    };
    let secs = since(&c.row.abort_requested_at, engine.now()).as_secs_f64();
    let report = report_line(engine, c).await;
    engine
        .store()
        .patch_campaign(
            id,
            &[c.state],
            CampaignPatch {
                status: Some(c.to(Command::RollbackDone)?),
                rollback_secs: Some(secs),
                finished_at: Some(engine.now()),
                last_error: Some(None),
                comms: closing_comms(c, CommsEvent::RolledBack, &report),
                alert: alert(
                    engine,
                    c,
                    AlertEvent::RolledBack,
                    &format!(
                        "all traffic is back on {} ({secs:.1} s after the abort); {report}",
                        c.spec.from_release
                    ),
                ),
                environment,
                ..Default::default()
            },
            Some(engine_audit(
                id,
                "campaign.rolled_back",
                "success",
                json!({ "seconds": secs, "pool": pool_summary(&live) }),
            )),
            Some((
                "rolled_back",
                json!({ "seconds": secs, "release": c.spec.from_release, "pool": pool_summary(&live) }),
            )),
        )
        .await?;
    engine.announce(id);
    Ok(Next::Done)
}

// ---- live safety checks -----------------------------------------------------------------------

/// Before a drain or a removal: the members that would still serve afterwards must be at least
/// `min_healthy` (rolling; 1 otherwise), counting only those that really serve and pass their
/// probe now, not the plan's arithmetic. `None`: go ahead; `Some(Ok)`: wait and look again;
/// `Some(Err)`: the wait is over, pause with the message.
async fn too_few_would_remain(
    engine: &Engine,
    c: &Loaded,
    step: &Step,
    elapsed: Duration,
) -> Result<Option<Result<(), String>>, PassError> {
    let leaving: Vec<String> = step
        .calls
        .iter()
        .filter_map(|call| match call {
            BackendCall::Router {
                call:
                    RouterCall::RemoveMember { target, .. }
                    | RouterCall::SetState {
                        target,
                        state:
                            app::domain::plan::MemberState::Drain
                            | app::domain::plan::MemberState::Maint,
                        ..
                    },
                ..
            } => Some(target.to_string()),
            _ => None,
        })
        .collect();
    if leaving.is_empty() {
        return Ok(None);
    }
    let need = match &c.spec.strategy {
        Strategy::Rolling { min_healthy, .. } => {
            usize::try_from(*min_healthy).unwrap_or(usize::MAX).max(1)
        }
        _ => 1,
    };
    let live = read_back(engine, c, Probe::Members).await;
    if live.error.is_some() {
        // Unreadable: the step itself will fail (and retry) on the router.
        return Ok(None);
    }
    let remaining: Vec<&str> = live
        .members
        .iter()
        .filter(|m| m.serving() && m.healthy != Some(false) && m.exists != Some(false))
        .filter(|m| !leaving.contains(&m.target))
        .map(|m| m.target.as_str())
        .collect();
    if remaining.len() >= need {
        return Ok(None);
    }
    let msg = format!(
        "taking {} out would leave {} healthy member{} serving ({}), fewer than the {need} needed; \
         fix the failing members (the pool holds {}), then resume",
        leaving.join(", "),
        remaining.len(),
        if remaining.len() == 1 { "" } else { "s" },
        if remaining.is_empty() { "none".to_string() } else { remaining.join(", ") },
        pool_summary(&live)
    );
    if elapsed >= engine.inner.config.safety_wait {
        return Ok(Some(Err(msg)));
    }
    if elapsed >= engine.inner.config.tick * 2 {
        // Said once in the step's log; the pause (if it comes) says it again.
        return Ok(Some(Ok(())));
    }
    engine
        .store()
        .record_step_run(StepRun {
            campaign_id: c.row.id,
            phase: Phase::Forward,
            step_index: c.row.step_index,
            status: StepStatus::Running,
            attempts: 0,
            calls: "[]",
            verdict: None,
            log_line: Some(&format!("waiting: {msg}")),
        })
        .await?;
    Ok(Some(Ok(())))
}
