//! What a campaign asks for, as the operator wrote it: service, pool, from → to release, strategy,
//! health gates, maintenance window, communications, rollback and approval policy.
//!
//! Identifier fields are plain strings because this is the shape a form edits keystroke by
//! keystroke; [`super::validate::validate`] turns a spec into a `ValidSpec` with typed names and
//! reports every problem by field path. Nothing here decides how a strategy is carried out.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::auth::Role;
use super::ids::{Percent, Weight};
use super::window::{self, Impact, WindowTime};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CampaignSpec {
    pub name: String,
    pub service: String,
    pub environment: String,
    /// The pool being upgraded.
    pub pool: String,
    pub from_release: String,
    pub to_release: String,
    pub strategy: Strategy,
    /// Every gate must pass; empty means [`GateSpec::default`].
    #[serde(default)]
    pub gates: Vec<GateSpec>,
    pub window: MaintenanceWindow,
    #[serde(default)]
    pub communications: CommunicationsPlan,
    #[serde(default)]
    pub rollback: RollbackPlan,
    #[serde(default)]
    pub approvals: ApprovalPolicy,
    #[serde(default)]
    pub preview_route: Option<PreviewRoute>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Strategy {
    /// Provision a full new (green) set beside the old (blue) one, then move traffic over.
    BlueGreen { switch: Switch, bake_secs: u64, verify_preview: bool },
    /// Replace the release on the existing targets, a batch at a time.
    Rolling {
        batch: BatchSize,
        max_unavailable: u32,
        min_healthy: u32,
        drain_timeout_secs: u64,
        bake_secs: u64,
    },
    /// Provision a few new instances and raise their share of traffic step by step.
    Canary {
        steps: Vec<CanaryStep>,
        #[serde(default = "one")]
        canary_count: u32,
    },
    /// Raise a flag's rollout percentage step by step; instances are not touched.
    FeatureFlag { flag: String, steps: Vec<FlagStep> },
}

fn one() -> u32 {
    1
}

impl Strategy {
    pub fn label(&self) -> &'static str {
        match self {
            Strategy::BlueGreen { .. } => "blue-green",
            Strategy::Rolling { .. } => "rolling",
            Strategy::Canary { .. } => "canary",
            Strategy::FeatureFlag { .. } => "feature flag",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    AtOnce,
    /// Share of traffic on the green set after each step; must end at 100 %.
    Steps(Vec<Weight>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BatchSize {
    Count(u32),
    /// Share of the pool's targets per batch, rounded up.
    Percent(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Pause {
    #[default]
    None,
    /// Wait until an operator resumes.
    Manual,
    /// Wait for approvals per the campaign's [`ApprovalPolicy`].
    Approval,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CanaryStep {
    /// Share of the pool's traffic on the new release after this step.
    pub weight: Weight,
    pub bake_secs: u64,
    #[serde(default)]
    pub pause: Pause,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FlagStep {
    pub percent: Percent,
    pub bake_secs: u64,
    #[serde(default)]
    pub pause: Pause,
}

/// A health judgement over a sliding window of samples from the new release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GateSpec {
    /// Fraction of failed requests tolerated, 0–1.
    pub max_error_rate: f64,
    pub max_p99_ms: u64,
    /// Fraction of health probes that must succeed, 0–1.
    pub min_probe_success: f64,
    pub window_secs: u64,
    /// Fewer samples than this in the window means "wait", never "pass".
    pub min_samples: u32,
    /// Still without enough data this long after the gate opened means "fail".
    pub deadline_secs: u64,
    /// How many evaluations in a row must breach before the gate fails.
    pub consecutive_failures: u32,
    /// Also judge the new release against the stable one over the same window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<super::compare::CompareSpec>,
}

impl Default for GateSpec {
    fn default() -> Self {
        Self {
            max_error_rate: 0.01,
            max_p99_ms: 1000,
            min_probe_success: 0.99,
            window_secs: 60,
            min_samples: 10,
            deadline_secs: 300,
            consecutive_failures: 3,
            compare: None,
        }
    }
}

/// When the campaign may run and what its users are told about it. `start` and `end` are
/// written as instants or as wall-clock times in `timezone` (IANA); [`MaintenanceWindow::resolve`]
/// turns them into UTC instants by the rule in [`super::window`], so comparisons never depend on
/// a zone's rules and a DST change is never crossed silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct MaintenanceWindow {
    pub start: WindowTime,
    pub end: WindowTime,
    pub timezone: String,
    #[serde(default)]
    pub impact: Impact,
    /// What the users see as affected, e.g. `["api", "checkout"]`; subscribers pick from these.
    #[serde(default)]
    pub components: Vec<String>,
    /// The public message on the status page, in notices and in the feeds.
    #[serde(default)]
    pub message: String,
    /// Refuse to start outside the window (an admin may override, with a reason, audited).
    #[serde(default)]
    pub start_only_inside: bool,
}

/// A window with its bounds as instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub tz: chrono_tz::Tz,
}

impl ResolvedWindow {
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now < self.end
    }

    pub fn duration_secs(&self) -> u64 {
        u64::try_from((self.end - self.start).num_seconds()).unwrap_or(0)
    }

    /// Start and end in the window's own zone.
    pub fn local(&self) -> (DateTime<chrono_tz::Tz>, DateTime<chrono_tz::Tz>) {
        (self.start.with_timezone(&self.tz), self.end.with_timezone(&self.tz))
    }
}

impl MaintenanceWindow {
    /// The window as instants, or every `(field, message)` that prevents it.
    pub fn resolve(&self) -> Result<ResolvedWindow, Vec<(&'static str, String)>> {
        let tz: chrono_tz::Tz = self.timezone.parse().map_err(|_| {
            vec![(
                "window.timezone",
                format!(
                    "unknown time zone {:?}; use an IANA name such as Europe/Paris, \
                     America/New_York or UTC",
                    self.timezone
                ),
            )]
        })?;
        let start = window::resolve(self.start, tz).map_err(|e| ("window.start", e.to_string()));
        let end = window::resolve(self.end, tz).map_err(|e| ("window.end", e.to_string()));
        match (start, end) {
            (Ok(start), Ok(end)) => Ok(ResolvedWindow { start, end, tz }),
            (s, e) => Err([s.err(), e.err()].into_iter().flatten().collect()),
        }
    }

    /// The start as an instant, if it resolves.
    pub fn start_utc(&self) -> Option<DateTime<Utc>> {
        self.resolve().ok().map(|w| w.start)
    }

    pub fn end_utc(&self) -> Option<DateTime<Utc>> {
        self.resolve().ok().map(|w| w.end)
    }
}

/// Who is told about the campaign, and how. The window is published on the status page and
/// feeds unless `publish` is off, whether or not notices are sent; `notify` sends notices to
/// subscribers: when scheduled, at each reminder offset before the start, at start, at
/// completion, and on reschedule, cancellation, extension and rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CommunicationsPlan {
    #[serde(default)]
    pub notify: bool,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default = "yes")]
    pub publish: bool,
    /// How long before the start each reminder goes out (default 24 h and 1 h).
    #[serde(default = "super::notice::default_reminders")]
    pub reminders: Vec<super::notice::Offset>,
    /// Per notice kind (`scheduled`, `reminder`, …), a template replacing the built-in one.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub templates: std::collections::BTreeMap<String, super::notice::NoticeTemplate>,
}

fn yes() -> bool {
    true
}

impl Default for CommunicationsPlan {
    fn default() -> Self {
        Self {
            notify: false,
            audiences: Vec::new(),
            publish: true,
            reminders: super::notice::default_reminders(),
            templates: std::collections::BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RollbackMode {
    /// A failed gate starts the rollback plan without waiting for anyone.
    #[default]
    Automatic,
    /// A failed gate pauses the campaign; an operator decides.
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RollbackPlan {
    pub mode: RollbackMode,
    /// How long the old set is kept, out of traffic, for an instant rollback before it is destroyed.
    pub hold_secs: u64,
    /// After success, how long the gates keep watching the new release (a breach alerts the
    /// operators and offers "roll back this release"); 0: not at all.
    #[serde(default = "default_watch_secs")]
    pub watch_secs: u64,
}

fn default_watch_secs() -> u64 {
    600
}

impl Default for RollbackPlan {
    fn default() -> Self {
        Self { mode: RollbackMode::Automatic, hold_secs: 600, watch_secs: default_watch_secs() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApprovalPolicy {
    /// Distinct approvals needed at each approval step (0–5).
    pub required: u8,
    /// The least role an approver must hold: `approver` or `admin`.
    pub role: Role,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self { required: 1, role: Role::Approver }
    }
}

/// How a person reaches the new release before it takes real traffic.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PreviewRoute {
    #[serde(default)]
    pub header: Option<RouteMatch>,
    #[serde(default)]
    pub cookie: Option<RouteMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RouteMatch {
    pub name: String,
    pub value: String,
}

impl std::fmt::Display for PreviewRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.header {
            parts.push(format!("header {}: {}", h.name, h.value));
        }
        if let Some(c) = &self.cookie {
            parts.push(format!("cookie {}={}", c.name, c.value));
        }
        if parts.is_empty() { f.write_str("no match") } else { f.write_str(&parts.join(" or ")) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Upgrade,
    Downgrade,
    /// Releases that don't compare as versions (image ids, names) or compare equal.
    Change,
}

impl CampaignSpec {
    /// Best effort: `v2.1.0` → `v2.0.9` is a downgrade; anything that isn't dotted numbers is a change.
    pub fn direction(&self) -> Direction {
        direction(&self.from_release, &self.to_release)
    }
}

pub fn direction(from: &str, to: &str) -> Direction {
    match (version_parts(from), version_parts(to)) {
        (Some(a), Some(b)) => match a.cmp(&b) {
            Ordering::Less => Direction::Upgrade,
            Ordering::Greater => Direction::Downgrade,
            Ordering::Equal => Direction::Change,
        },
        _ => Direction::Change,
    }
}

/// `v1.10.2-rc1` → `[1, 10, 2]`; a pre-release suffix is ignored, so it compares as its base.
fn version_parts(release: &str) -> Option<Vec<u64>> {
    let core = release.strip_prefix(['v', 'V']).unwrap_or(release);
    let core = core.split(['-', '+']).next().unwrap_or(core);
    let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_compares_dotted_versions_numerically() {
        assert_eq!(direction("v1.9.0", "v1.10.0"), Direction::Upgrade);
        assert_eq!(direction("v2.1.0", "v2.0.9"), Direction::Downgrade);
        assert_eq!(direction("1.2", "1.2.1"), Direction::Upgrade);
        assert_eq!(direction("sha256:abc", "sha256:def"), Direction::Change);
        assert_eq!(direction("v1.0.0-rc1", "v1.0.0"), Direction::Change);
    }

    #[test]
    fn strategies_serialize_with_a_kind_tag() {
        let s = Strategy::Canary { steps: vec![], canary_count: 1 };
        let json = serde_json::to_value(&s).ok();
        assert_eq!(json.and_then(|v| v.get("kind").cloned()), Some("canary".into()));
    }

    #[test]
    fn canary_count_defaults_to_one_when_absent() {
        let s: Result<Strategy, _> = serde_json::from_str(r#"{"kind":"canary","steps":[]}"#);
        assert_eq!(s.ok(), Some(Strategy::Canary { steps: vec![], canary_count: 1 }));
    }

    #[test]
    fn a_window_shows_in_its_own_timezone() {
        let start = DateTime::parse_from_rfc3339("2025-06-01T22:00:00Z").map(|d| d.to_utc());
        let end = DateTime::parse_from_rfc3339("2025-06-01T23:00:00Z").map(|d| d.to_utc());
        let (Ok(start), Ok(end)) = (start, end) else { panic!("bad fixture") };
        let w = MaintenanceWindow {
            start: start.into(),
            end: end.into(),
            timezone: "Europe/Paris".into(),
            impact: Impact::None,
            components: Vec::new(),
            message: String::new(),
            start_only_inside: false,
        };
        let r = w.resolve().expect("resolves");
        assert_eq!(r.local().0.to_rfc3339(), "2025-06-02T00:00:00+02:00");
        assert_eq!(r.duration_secs(), 3600);
    }

    #[test]
    fn an_older_spec_without_impact_or_components_still_parses() {
        let w: MaintenanceWindow = serde_json::from_value(serde_json::json!({
            "start": "2026-12-01T07:00:00Z", "end": "2026-12-01T09:00:00Z", "timezone": "Europe/Berlin"
        }))
        .expect("parses");
        assert_eq!(w.impact, Impact::None);
        assert!(w.components.is_empty() && !w.start_only_inside);
    }

    #[test]
    fn a_window_starting_in_the_spring_forward_gap_names_the_start_field() {
        let w: MaintenanceWindow = serde_json::from_value(serde_json::json!({
            "start": "2026-03-29T02:30", "end": "2026-03-29T05:00", "timezone": "Europe/Berlin"
        }))
        .expect("parses");
        let errs = w.resolve().expect_err("gap");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].0, "window.start");
        assert!(errs[0].1.contains("does not exist"), "{}", errs[0].1);
    }
}
