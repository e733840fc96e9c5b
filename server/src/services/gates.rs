//! Gate replay: a gate definition run against the health samples a past campaign stored, at
//! each of its gate steps, to see when it would have passed, waited or failed, and why — before
//! trusting it with the next campaign.

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::campaign::GateSpec;
use app::domain::gate::{Outcome, fold_comparison, replay_with};
use app::domain::lifecycle::Phase;
use app::domain::plan::{BackendCall, HealthCall, Plan, StepKind};
use app::domain::views::{GateReplay, GateReplayStep};
use chrono::Utc;

use crate::services::access::{invalid, require};
use crate::services::campaigns::CampaignService;

impl CampaignService {
    /// Replays `gate` (the campaign's own first gate when `None`) over campaign `id`'s samples.
    pub async fn replay_gate(
        &self,
        actor: &Principal,
        id: i64,
        gate: Option<GateSpec>,
    ) -> Result<GateReplay, ApiError> {
        require(actor, Role::Viewer)?;
        let row = self.row(id).await?;
        let spec: app::domain::campaign::CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let gate = gate.or_else(|| spec.gates.first().cloned()).unwrap_or_default();
        let errors = app::domain::validate::check_gate_spec("gate", &gate);
        if !errors.is_empty() {
            return Err(invalid(&errors));
        }
        let plan: Plan =
            row.plan.as_deref().and_then(|p| serde_json::from_str(p).ok()).ok_or_else(|| {
                ApiError::conflict(format!(
                    "campaign {id} has not run, so there are no samples to replay a gate against"
                ))
            })?;
        let runs = self.store.step_runs(id).await?;
        let end = row.finished_at.unwrap_or_else(Utc::now);
        let mut steps = Vec::new();
        for step in plan.steps.iter().filter(|s| s.kind == StepKind::Gate) {
            let Some(run) = runs
                .iter()
                .find(|r| r.phase == Phase::Forward && r.step_index == step.index as i64)
            else {
                continue;
            };
            let opened = run.started_at;
            let until = run.finished_at.unwrap_or(end);
            let targets: Vec<String> = step
                .calls
                .iter()
                .filter_map(|c| match c {
                    BackendCall::Health { call: HealthCall::Probe { target }, .. } => {
                        Some(target.to_string())
                    }
                    _ => None,
                })
                .collect();
            let rows: Vec<crate::store::SampleRow> = self
                .store
                .samples_since(id, opened, 200_000)
                .await?
                .into_iter()
                .filter(|r| r.at <= until)
                .collect();
            let samples = crate::engine::gate_samples(&rows, &targets);
            // A comparative gate is judged as the gate step judges it: the comparison of the
            // window ending at each moment folded into that moment's verdict.
            let new_release: Vec<String> =
                plan.new_release_targets(step.index).into_iter().map(|t| t.to_string()).collect();
            let window = chrono::Duration::seconds(i64::try_from(gate.window_secs).unwrap_or(0));
            let deadline =
                chrono::Duration::seconds(i64::try_from(gate.deadline_secs).unwrap_or(0));
            let points = replay_with(&gate, &samples, opened, |at, mut v| {
                let Some(cmp_spec) = &gate.compare else { return v };
                let from = opened.max(at - window);
                let inside: Vec<crate::store::SampleRow> =
                    rows.iter().filter(|r| r.at >= from && r.at <= at).cloned().collect();
                let (canary, baseline) = crate::engine::sides(
                    &inside,
                    &targets,
                    &new_release,
                    spec.from_release.as_str(),
                );
                let cmp = app::domain::compare::compare(cmp_spec, &canary, &baseline);
                if let Some(why) = fold_comparison(&mut v, cmp_spec, cmp, at - opened >= deadline) {
                    v.outcome = Outcome::Wait;
                    v.reason = format!("{}; a person would decide: {why}", v.reason);
                }
                v
            });
            steps.push(GateReplayStep {
                step: step.index,
                description: step.description.clone(),
                opened,
                targets,
                samples: samples.len(),
                points,
            });
        }
        if steps.is_empty() {
            return Err(ApiError::conflict(format!(
                "campaign {id} never reached a gate step, so there is nothing to replay"
            )));
        }
        let summary = steps
            .iter()
            .map(|s| {
                let first = |o: Outcome| {
                    s.points.iter().find(|p| p.verdict.outcome == o).map(|p| {
                        format!("{:.0} s", (p.at - s.opened).num_milliseconds() as f64 / 1000.0)
                    })
                };
                let last = s.points.last().map(|p| p.verdict.outcome);
                format!(
                    "step {}: {} ({} samples){}{}",
                    s.step + 1,
                    match last {
                        Some(Outcome::Pass) => "would pass",
                        Some(Outcome::Fail) => "would fail",
                        Some(Outcome::Wait) | None => "would still wait",
                    },
                    s.samples,
                    first(Outcome::Pass)
                        .map(|t| format!(", first pass after {t}"))
                        .unwrap_or_default(),
                    first(Outcome::Fail)
                        .map(|t| format!(", first fail after {t}"))
                        .unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Ok(GateReplay { campaign: id, steps, summary })
    }
}
