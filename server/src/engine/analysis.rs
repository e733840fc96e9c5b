//! Continuous analysis: between gate steps the gates keep judging the new release on every
//! sampling round — during bakes, planned pauses, approval waits, the hold before the old set
//! goes, and for `rollback.watch_secs` after success. A sustained breach rolls the campaign back
//! at once (or pauses it, with a manual rollback plan); after success it alerts the operators
//! and the campaign page offers "roll back this release".
//!
//! It reads the rows the sampler just stored, so it costs no extra backend call.

use app::domain::campaign::{CampaignSpec, GateSpec, RollbackMode};
use app::domain::gate::{Sample, Verdict, watch};
use app::domain::lifecycle::{CampaignState, PauseCause, Phase};
use app::domain::plan::{Plan, StepKind};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::Engine;
use super::alerts::AlertEvent;
use crate::store::{AuditRecord, CampaignPatch, CampaignRow, SampleRow, StoreError};

/// What the analysis of one round found.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Nothing to judge now (a gate step judges itself, an acting step, no new release yet).
    NotWatching,
    Healthy,
    Breach(Verdict),
}

/// The sampler's rows of `targets`, one gate sample per round.
pub fn gate_samples(rows: &[SampleRow], targets: &[String]) -> Vec<Sample> {
    let mut by_round: std::collections::BTreeMap<DateTime<Utc>, Sample> =
        std::collections::BTreeMap::new();
    for r in rows.iter().filter(|r| targets.contains(&r.target)) {
        let s = by_round.entry(r.at).or_insert(Sample {
            at: r.at,
            requests: 0,
            errors: 0,
            p99_ms: None,
            probes: 0,
            probe_failures: 0,
        });
        s.requests += u64::try_from(r.requests.unwrap_or(0)).unwrap_or(0);
        s.errors += u64::try_from(r.errors.unwrap_or(0)).unwrap_or(0);
        if let Some(p) = r.p99_ms {
            s.p99_ms = Some(s.p99_ms.map_or(p, |m: f64| m.max(p)));
        }
        if let Some(ok) = r.probe_ok {
            s.probes += 1;
            if !ok {
                s.probe_failures += 1;
            }
        }
    }
    by_round.into_values().collect()
}

/// The two sides of a canary-versus-baseline comparison from the sampler's rows: the canary
/// (`canary` targets) and the baseline (targets serving `from_release` that are not part of the
/// new release), each target's median latency per round and the requests and errors.
pub fn sides(
    rows: &[SampleRow],
    canary: &[String],
    new_release: &[String],
    from_release: &str,
) -> (app::domain::compare::Side, app::domain::compare::Side) {
    let mut c = app::domain::compare::Side::default();
    let mut b = app::domain::compare::Side::default();
    for r in rows {
        let side = if canary.contains(&r.target) {
            &mut c
        } else if !new_release.contains(&r.target)
            && r.release.as_deref() == Some(from_release)
            && r.weight_bp.unwrap_or(0) > 0
            && r.state.as_deref().is_none_or(|s| s == "ready")
        {
            &mut b
        } else {
            continue;
        };
        let requests = u64::try_from(r.requests.unwrap_or(0)).unwrap_or(0);
        if requests > 0 {
            side.requests += requests;
            side.errors += u64::try_from(r.errors.unwrap_or(0)).unwrap_or(0);
            side.rounds_with_requests += 1;
            if let Some(p) = r.p50_ms {
                side.latency_ms.push(p);
            }
        }
    }
    (c, b)
}

impl Engine {
    /// Judges campaign `id`'s gates on what was sampled since its current stage began, and acts
    /// on a sustained breach. Called after each stored sampling round.
    pub async fn analyse(&self, id: i64) -> Result<Finding, StoreError> {
        let store = self.store();
        let Some(row) = store.find_campaign(id).await? else { return Ok(Finding::NotWatching) };
        let (Ok(spec), Some(Ok(plan))) = (
            serde_json::from_str::<CampaignSpec>(&row.spec),
            row.plan.as_deref().map(serde_json::from_str::<Plan>),
        ) else {
            return Ok(Finding::NotWatching);
        };
        let now = self.now();
        let idx = usize::try_from(row.step_index).unwrap_or(usize::MAX);
        let kind = plan.steps.get(idx).map(|s| s.kind);
        let watching = match row.status {
            CampaignState::Running => {
                matches!(kind, Some(StepKind::Bake | StepKind::Pause | StepKind::Approval))
            }
            CampaignState::AwaitingApproval => true,
            CampaignState::Paused => row.pause_cause == Some(PauseCause::Person),
            CampaignState::Succeeded => {
                let until = row.finished_at.map(|f| {
                    f + chrono::Duration::seconds(
                        i64::try_from(spec.rollback.watch_secs).unwrap_or(0),
                    )
                });
                until.is_some_and(|u| now < u)
                    && !self.inner.watch_alerted.lock().is_ok_and(|a| a.contains(&id))
                    && store.campaign_holding_pool(&row.environment, &row.pool).await?.is_none()
            }
            _ => false,
        };
        if !watching {
            return Ok(Finding::NotWatching);
        }
        let upto = idx.min(plan.steps.len());
        let targets: Vec<String> =
            plan.new_release_targets(upto).into_iter().map(|t| t.to_string()).collect();
        if targets.is_empty() {
            return Ok(Finding::NotWatching);
        }
        // The stage began when the last step that moved traffic finished.
        let runs = store.step_runs(id).await?;
        let since = plan.steps[..upto]
            .iter()
            .rev()
            .find(|s| Plan::moves_traffic(s.kind))
            .and_then(|s| {
                runs.iter()
                    .find(|r| r.phase == Phase::Forward && r.step_index == s.index as i64)
                    .and_then(|r| r.finished_at)
            })
            .or(row.started_at)
            .unwrap_or(now);
        let rows = store.samples_since(id, since, 20_000).await?;
        let samples = gate_samples(&rows, &targets);
        let gates =
            if spec.gates.is_empty() { vec![GateSpec::default()] } else { spec.gates.clone() };
        let Some(verdict) = gates.iter().find_map(|g| watch(g, &samples, since, now)) else {
            return Ok(Finding::Healthy);
        };
        self.act_on_breach(&row, &spec, kind, &verdict).await?;
        Ok(Finding::Breach(verdict))
    }

    async fn act_on_breach(
        &self,
        row: &CampaignRow,
        spec: &CampaignSpec,
        kind: Option<StepKind>,
        verdict: &Verdict,
    ) -> Result<(), StoreError> {
        let id = row.id;
        let during =
            kind.map_or("after success".to_string(), |k| format!("during the {}", k.label()));
        let audit = |action: &str, details: serde_json::Value| AuditRecord {
            actor: "engine".into(),
            role: "system".into(),
            source_ip: "local".into(),
            action: action.into(),
            object: format!("campaign:{id}"),
            outcome: "failure".into(),
            details,
        };
        if row.status == CampaignState::Succeeded {
            let message = format!(
                "after success, the new release breaches its gate: {}; roll this release back \
                 (Roll back this release) if it is not already being handled",
                verdict.reason
            );
            if let Ok(mut a) = self.inner.watch_alerted.lock() {
                a.insert(id);
            }
            store_event(
                self,
                id,
                "watch_breach",
                json!({ "message": message, "verdict": verdict }),
            )
            .await?;
            self.store()
                .append_audit(audit("campaign.watch_breach", json!({ "reason": verdict.reason })))
                .await?;
            self.alert(id, AlertEvent::WatchBreach, &message).await;
            self.announce(id);
            return Ok(());
        }
        let message = format!(
            "continuous analysis: the gate failed {during} (step {}): {}",
            row.step_index + 1,
            verdict.reason
        );
        let patch = if spec.rollback.mode == RollbackMode::Automatic {
            CampaignPatch {
                status: Some(CampaignState::Aborting),
                pause_cause: Some(None),
                abort_reason: Some(message.clone()),
                abort_requested_at: Some(self.now()),
                last_error: Some(Some(message.clone())),
                alert: self.alert_for_row(row, AlertEvent::GateFailed, &message),
                ..Default::default()
            }
        } else {
            CampaignPatch {
                status: Some(CampaignState::Paused),
                pause_cause: Some(Some(PauseCause::Error)),
                last_error: Some(Some(message.clone())),
                alert: self.alert_for_row(row, AlertEvent::Paused, &message),
                ..Default::default()
            }
        };
        let automatic = patch.status == Some(CampaignState::Aborting);
        let result = self
            .store()
            .patch_campaign(
                id,
                &[row.status],
                patch,
                Some(audit(
                    if automatic { "campaign.abort" } else { "campaign.pause" },
                    json!({ "reason": message, "automatic": true, "continuous": true }),
                )),
                Some((
                    if automatic { "aborting" } else { "error" },
                    json!({ "reason": message, "automatic": true, "verdict": verdict }),
                )),
            )
            .await;
        match result {
            // The campaign moved on meanwhile (its reconciler or a person): judged next round.
            Err(StoreError::Conflict(_)) => return Ok(()),
            other => other?,
        }
        self.wake(id);
        Ok(())
    }
}

async fn store_event(
    engine: &Engine,
    id: i64,
    kind: &str,
    data: serde_json::Value,
) -> Result<(), StoreError> {
    engine.store().append_event(id, kind, &data).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: &str, target: &str, requests: i64, errors: i64, ok: bool) -> SampleRow {
        SampleRow {
            id: 0,
            campaign_id: 1,
            at: DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc),
            secs: 1.0,
            target: target.into(),
            release: Some("v2".into()),
            weight_bp: Some(2500),
            state: Some("ready".into()),
            requests: Some(requests),
            errors: Some(errors),
            p50_ms: Some(3.0),
            p99_ms: Some(if target == "b" { 40.0 } else { 9.0 }),
            probe_ok: Some(ok),
            probe_ms: Some(1.0),
        }
    }

    #[test]
    fn a_round_of_the_new_release_targets_is_one_gate_sample() {
        let rows = [
            row("2026-12-01T10:00:01.000000Z", "a", 10, 1, true),
            row("2026-12-01T10:00:01.000000Z", "b", 6, 3, false),
            row("2026-12-01T10:00:01.000000Z", "old", 100, 0, true),
            row("2026-12-01T10:00:02.000000Z", "a", 4, 0, true),
        ];
        let s = gate_samples(&rows, &["a".into(), "b".into()]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].requests, s[0].errors, s[0].probes, s[0].probe_failures), (16, 4, 2, 1));
        assert_eq!(s[0].p99_ms, Some(40.0), "the worst target's p99");
        assert_eq!(s[1].requests, 4);
    }
}
