//! The impact report of a campaign: what it did to its users, measured from the samples the
//! router's own counters gave each second (the embedded router's request log, HAProxy's
//! per-server counters), the gate verdicts on its way, its rollback time and how long each step
//! took. Shown on the campaign page, served as JSON, and summed up in the completion notice.

use std::collections::BTreeMap;

use app::domain::campaign::CampaignSpec;
use app::domain::environment::{BackendKind, Environment};
use app::domain::gate::Verdict;
use app::domain::lifecycle::Phase;
use app::domain::plan::{Plan, Step};
use app::domain::views::{GateMoment, ImpactReport, ReleaseImpact, StepTime};
use chrono::Utc;

use crate::store::{CampaignRow, Store, StoreError, format_ts};

/// The report of campaign `row` as it stands (a running campaign's so far).
pub async fn report(store: &Store, row: &CampaignRow) -> Result<ImpactReport, StoreError> {
    let spec: Option<CampaignSpec> = serde_json::from_str(&row.spec).ok();
    let plan: Option<Plan> = row.plan.as_deref().and_then(|p| serde_json::from_str(p).ok());
    let env: Option<Environment> =
        row.env_snapshot.as_deref().and_then(|e| serde_json::from_str(e).ok());
    let (started, finished) = (row.started_at, row.finished_at);
    let mut by_release: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    if let Some(start) = started {
        let end = finished.unwrap_or_else(Utc::now);
        for r in store.samples_since(row.id, start, 1_000_000).await? {
            if r.at > end {
                continue;
            }
            let e = by_release.entry(r.release.clone().unwrap_or_else(|| "?".into())).or_default();
            e.0 += u64::try_from(r.requests.unwrap_or(0)).unwrap_or(0);
            e.1 += u64::try_from(r.errors.unwrap_or(0)).unwrap_or(0);
        }
    }
    let runs = store.step_runs(row.id).await?;
    let rollback: Vec<Step> =
        row.rollback_plan.as_deref().and_then(|p| serde_json::from_str(p).ok()).unwrap_or_default();
    let step_of = |phase: Phase, i: i64| -> Option<&Step> {
        let i = usize::try_from(i).ok()?;
        match phase {
            Phase::Forward => plan.as_ref()?.steps.get(i),
            Phase::Rollback => rollback.get(i),
        }
    };
    let mut gates = Vec::new();
    let mut steps = Vec::new();
    for r in &runs {
        let step = step_of(r.phase, r.step_index);
        let secs = r.finished_at.map(|f| (f - r.started_at).num_milliseconds() as f64 / 1000.0);
        steps.push(StepTime {
            phase: r.phase,
            step: usize::try_from(r.step_index).unwrap_or(0) + 1,
            kind: step.map(|s| s.kind.label().to_string()).unwrap_or_default(),
            description: step.map(|s| s.description.clone()).unwrap_or_default(),
            status: r.status,
            secs,
        });
        if let Some(verdicts) =
            r.verdict.as_deref().and_then(|v| serde_json::from_str::<Vec<Verdict>>(v).ok())
        {
            for v in verdicts {
                gates.push(GateMoment {
                    at: format_ts(r.finished_at.unwrap_or(r.started_at)),
                    step: Some(usize::try_from(r.step_index).unwrap_or(0) + 1),
                    outcome: format!("{:?}", v.outcome).to_lowercase(),
                    reason: v.reason,
                    continuous: false,
                });
            }
        }
    }
    // In the order they ran: the plan's steps, then the rollback's.
    steps.sort_by_key(|s| (s.phase == Phase::Rollback, s.step));
    // What continuous analysis found between gate steps and after success.
    for kind in ["aborting", "error", "watch_breach"] {
        if let Some(e) = store.latest_event(row.id, kind).await? {
            let data: serde_json::Value = serde_json::from_str(&e.data).unwrap_or_default();
            if data.get("verdict").is_some() {
                gates.push(GateMoment {
                    at: format_ts(e.ts),
                    step: (kind != "watch_breach")
                        .then(|| usize::try_from(row.step_index).unwrap_or(0) + 1),
                    outcome: "fail".into(),
                    reason: data["reason"]
                        .as_str()
                        .or(data["message"].as_str())
                        .unwrap_or_default()
                        .to_string(),
                    continuous: true,
                });
            }
        }
    }
    gates.sort_by(|a, b| a.at.cmp(&b.at));
    let counted_by = env
        .as_ref()
        .and_then(|e| e.first_backend(BackendKind::HealthSource))
        .map(|h| format!("{} ({})", h.name, h.driver))
        .unwrap_or_else(|| "no health source".into());
    let requests = by_release.values().map(|v| v.0).sum();
    let failed = by_release.values().map(|v| v.1).sum();
    Ok(ImpactReport {
        campaign: row.id,
        name: row.name.clone(),
        status: row.status,
        from_release: spec.as_ref().map(|s| s.from_release.clone()).unwrap_or_default(),
        to_release: spec.as_ref().map(|s| s.to_release.clone()).unwrap_or_default(),
        started_at: row.started_at.map(format_ts),
        finished_at: row.finished_at.map(format_ts),
        duration_secs: started
            .zip(finished)
            .map(|(s, f)| (f - s).num_milliseconds() as f64 / 1000.0),
        by_release: by_release
            .into_iter()
            .map(|(release, (requests, errors))| ReleaseImpact { release, requests, errors })
            .collect(),
        requests,
        failed,
        counted_by,
        rollback_secs: row.rollback_secs,
        gates,
        steps,
    })
}
