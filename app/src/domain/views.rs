//! What the API and the pages show of environments and campaigns.

use serde::{Deserialize, Serialize};

use super::campaign::CampaignSpec;
use super::environment::Environment;
use super::lifecycle::{CampaignState, Command};
use super::plan::{Plan, Step};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EnvironmentView {
    pub id: i64,
    pub name: String,
    pub spec: Environment,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CampaignSummary {
    pub id: i64,
    pub name: String,
    pub environment: String,
    pub pool: String,
    pub strategy: String,
    pub status: CampaignState,
    /// Index of the next forward step to complete; equals `steps_total` when done.
    pub step_index: i64,
    pub steps_total: usize,
    pub created_by: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub window_start: String,
    pub window_end: String,
    pub last_error: Option<String>,
    pub abort_reason: Option<String>,
    /// Abort requested → all traffic back on the from-release, in seconds.
    pub rollback_secs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepRunView {
    pub phase: super::lifecycle::Phase,
    pub index: i64,
    pub status: super::lifecycle::StepStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub attempts: i64,
    /// JSON: the calls with their read-back (acting steps) or the samples (gates).
    pub calls: serde_json::Value,
    pub verdict: Option<serde_json::Value>,
    pub log: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CampaignDetail {
    pub summary: CampaignSummary,
    pub spec: CampaignSpec,
    /// The frozen plan once started; a fresh preview while a draft.
    pub plan: Option<Plan>,
    pub plan_frozen: bool,
    pub rollback_plan: Option<Vec<Step>>,
    pub step_runs: Vec<StepRunView>,
    pub approvals: Vec<String>,
    pub allowed_commands: Vec<Command>,
    /// Before a start: every way the pool differs from its record (a start is refused until
    /// this is empty); `None` once started or when it could not be checked.
    #[serde(default)]
    pub live_differences: Option<Vec<super::reality::Difference>>,
    /// After success: how long the gates keep watching, and what they found.
    #[serde(default)]
    pub watch: Option<WatchView>,
}

/// The gates watching a succeeded campaign's new release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct WatchView {
    /// RFC 3339: when the watch ends (or ended).
    pub until: String,
    pub active: bool,
    /// What a breach said, if one was found.
    pub breach: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CampaignPage {
    pub campaigns: Vec<CampaignSummary>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
    /// Every environment's name, for the filter.
    #[serde(default)]
    pub environments: Vec<String>,
}

/// One pool member as the router reports it, with the release its instance runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MemberView {
    pub target: String,
    pub address: String,
    pub weight_pct: f64,
    pub state: String,
    /// The release the provider reports its instance runs (else the one the record says).
    pub release: Option<String>,
    /// Whether the provider has the instance: `None` when no provider can tell.
    #[serde(default)]
    pub exists: Option<bool>,
    /// What a probe of its health URL says now: `None` when it was not probed.
    #[serde(default)]
    pub healthy: Option<bool>,
    /// The probe's answer in words ("200 OK in 3 ms", "connection refused").
    #[serde(default)]
    pub health: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_url: Option<String>,
}

impl MemberView {
    /// Takes users' requests now: ready with a weight above zero.
    pub fn serving(&self) -> bool {
        self.state == "ready" && self.weight_pct > 0.0
    }
}

/// What the router really has for a campaign's pool, read back now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TrafficView {
    pub pool: String,
    pub members: Vec<MemberView>,
    /// Share of the pool's traffic by release (members that are ready), in percent.
    pub share_by_release: Vec<(String, f64)>,
    /// Why the read-back is missing, if it is (e.g. the router's driver is not available).
    pub error: Option<String>,
}

/// One target of an environment with what a probe of its health URL says now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TargetHealthView {
    pub name: String,
    pub address: String,
    pub group: String,
    /// The release the provider reports (else the one the environment records).
    pub release: String,
    /// `None` when no health source could probe it.
    pub healthy: Option<bool>,
    pub detail: String,
}

/// A pool whose router differs from what Switchyard last set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DriftView {
    pub backend: String,
    pub pool: String,
    pub differences: Vec<String>,
    pub since: String,
}

/// One pool of an environment: what the record says beside what the router and the provider
/// really have now, and every difference between the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PoolOverview {
    pub name: String,
    pub router: String,
    /// The pool's targets as the environment records them.
    pub record: Vec<super::environment::Target>,
    pub live: TrafficView,
    pub differences: Vec<super::reality::Difference>,
    /// The campaign that holds the pool now, if any: (id, name, state).
    pub campaign: Option<(i64, String, CampaignState)>,
}

/// An environment as it is now: targets and their health, each pool as its router reads it
/// back beside the record, drift, and the backends it is driven through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct EnvironmentOverview {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    pub targets: Vec<TargetHealthView>,
    pub pools: Vec<PoolOverview>,
    pub drift: Vec<DriftView>,
    /// (name, kind, driver)
    pub backends: Vec<(String, String, String)>,
}

/// What `backends check` found for one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BackendCheckView {
    pub environment: String,
    pub name: String,
    pub kind: String,
    pub driver: String,
    pub checked: bool,
    pub reachable: bool,
    pub version: Option<String>,
    pub capabilities: Vec<String>,
    /// What it said, or why it could not be reached.
    pub detail: String,
}

/// The cookie in which the browser reports its IANA timezone, so pages rendered on the server
/// can label times the way the viewer reads them.
pub const TZ_COOKIE: &str = "switchyard_tz";

/// A campaign's health chart as the page shows it: the SVG drawn on the server and what the
/// viewer can choose, plus the latest figures in words (the chart's text alternative).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChartView {
    /// SVG markup; empty when there is no sample yet.
    pub svg: String,
    /// Targets with samples, for the per-target choice.
    pub targets: Vec<String>,
    /// The target drawn, or `None` for the whole pool.
    pub target: Option<String>,
    /// IANA name of the zone the time axis is labelled in.
    pub tz: String,
    /// Id of the newest sample drawn (0 when none): live views compare it with sample events.
    pub last_sample: i64,
    /// The newest figures in words, e.g. "48.0 req/s · errors 0.00 % · p99 12 ms · …".
    pub summary: String,
}

/// What a gate would have said at one of a past campaign's gate steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GateReplayStep {
    /// The plan step (0-based) whose recorded samples were replayed.
    pub step: usize,
    pub description: String,
    /// When that step opened.
    pub opened: chrono::DateTime<chrono::Utc>,
    pub targets: Vec<String>,
    pub samples: usize,
    /// Every change of outcome, the first point included.
    pub points: Vec<super::gate::ReplayPoint>,
}

/// A gate definition replayed against a past campaign's stored samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GateReplay {
    pub campaign: i64,
    pub steps: Vec<GateReplayStep>,
    /// One line: when it would have passed, waited or failed.
    pub summary: String,
}

/// Requests and errors one release answered during a campaign, as the router counted them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReleaseImpact {
    pub release: String,
    pub requests: u64,
    pub errors: u64,
}

/// One gate verdict on the campaign's way, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GateMoment {
    pub at: String,
    /// 1-based plan step, or `None` for the watch after success.
    pub step: Option<usize>,
    pub outcome: String,
    pub reason: String,
    /// Found by continuous analysis (a bake, a pause, the watch), not a gate step.
    pub continuous: bool,
}

/// How long one step took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct StepTime {
    pub phase: super::lifecycle::Phase,
    /// 1-based.
    pub step: usize,
    pub kind: String,
    pub description: String,
    pub status: super::lifecycle::StepStatus,
    pub secs: Option<f64>,
}

/// What a campaign did to its users, measured: the "zero-downtime report".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImpactReport {
    pub campaign: i64,
    pub name: String,
    pub status: CampaignState,
    pub from_release: String,
    pub to_release: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub duration_secs: Option<f64>,
    /// Requests the router served during the campaign, by release.
    pub by_release: Vec<ReleaseImpact>,
    pub requests: u64,
    /// Requests the router saw fail (5xx and connection errors it counts).
    pub failed: u64,
    /// Where the counts come from: the health source that reported them.
    pub counted_by: String,
    /// Abort requested → all traffic back on the old release, read back.
    pub rollback_secs: Option<f64>,
    pub gates: Vec<GateMoment>,
    pub steps: Vec<StepTime>,
}

impl ImpactReport {
    /// One line for notices: "1234 requests answered (v1 800, v2 434), 0 failed (0.00 %)".
    pub fn line(&self) -> String {
        let parts: Vec<String> =
            self.by_release.iter().map(|r| format!("{} {}", r.release, r.requests)).collect();
        let failed = if self.requests > 0 {
            format!(" ({:.2} %)", self.failed as f64 * 100.0 / self.requests as f64)
        } else {
            String::new()
        };
        format!(
            "{} requests answered ({}), {} failed{failed}",
            self.requests,
            if parts.is_empty() { "none counted".into() } else { parts.join(", ") },
            self.failed
        )
    }
}
