//! The campaign editor's form model, kept free of view code so it can be tested: the form as the
//! strings a person types ([`FormData`]), how it becomes a [`CampaignSpec`] and back, the check
//! that runs on every keystroke (the shared `validate` and `compile`), and where each error goes
//! on the page ([`place`]). It never decides what is valid; `domain::validate` does.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::auth::Role;
use crate::domain::campaign::{
    ApprovalPolicy, BatchSize, CampaignSpec, CanaryStep, CommunicationsPlan, FlagStep, GateSpec,
    MaintenanceWindow, Pause, PreviewRoute, RollbackMode, RollbackPlan, RouteMatch, Strategy,
    Switch,
};
use crate::domain::environment::Environment;
use crate::domain::ids::{Percent, Secs, Weight};
use crate::domain::notice::Offset;
use crate::domain::plan::{Plan, compile};
use crate::domain::validate::{FieldError, validate};
use crate::domain::window::{Impact, WindowTime};

/// One row of a canary or feature-flag step list: a share (weight or percent), a bake, a pause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StepRow {
    pub share: String,
    pub bake: String,
    /// `none`, `manual` or `approval`.
    pub pause: String,
}

impl StepRow {
    pub fn new(share: &str, bake: &str) -> Self {
        Self { share: share.into(), bake: bake.into(), pause: "none".into() }
    }
}

/// The seven numbers of the first gate, as typed, and its canary-versus-baseline comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct GateForm {
    pub max_error_rate: String,
    pub max_p99_ms: String,
    pub min_probe_success: String,
    pub window_secs: String,
    pub min_samples: String,
    pub deadline_secs: String,
    pub consecutive_failures: String,
    /// `Some` when the gate also compares the canary with the baseline (its settings kept).
    pub compare: Option<crate::domain::compare::CompareSpec>,
}

impl From<&GateSpec> for GateForm {
    fn from(g: &GateSpec) -> Self {
        Self {
            max_error_rate: g.max_error_rate.to_string(),
            max_p99_ms: g.max_p99_ms.to_string(),
            min_probe_success: g.min_probe_success.to_string(),
            window_secs: Secs(g.window_secs).to_string(),
            min_samples: g.min_samples.to_string(),
            deadline_secs: Secs(g.deadline_secs).to_string(),
            consecutive_failures: g.consecutive_failures.to_string(),
            compare: g.compare.clone(),
        }
    }
}

/// Everything the editor shows, as text (numbers stay text until [`to_spec`] parses them, so a
/// half-typed value is kept and reported, never replaced).
#[derive(Debug, Clone, PartialEq)]
pub struct FormData {
    pub name: String,
    pub service: String,
    pub environment: String,
    pub pool: String,
    pub from_release: String,
    pub to_release: String,
    /// The strategy's serde tag: `canary`, `rolling`, `blue_green` or `feature_flag`.
    pub kind: String,
    pub canary_count: String,
    /// Canary weights or feature-flag percents.
    pub steps: Vec<StepRow>,
    pub flag: String,
    /// `count` or `percent`.
    pub batch_mode: String,
    pub batch: String,
    pub max_unavailable: String,
    pub min_healthy: String,
    pub drain_timeout: String,
    /// Bake of rolling and blue-green.
    pub bake: String,
    /// `at_once` or `steps`.
    pub switch_mode: String,
    /// Blue-green switch weights, comma separated: `25, 50, 100`.
    pub switch_steps: String,
    pub verify_preview: bool,
    pub preview_header: String,
    pub preview_value: String,
    /// A preview cookie from an imported spec; the form has no field for it but keeps it.
    pub preview_cookie: Option<RouteMatch>,
    pub gate: GateForm,
    /// Gates after the first, from an imported spec; kept as they are.
    pub extra_gates: Vec<GateSpec>,
    pub window_start: String,
    pub window_end: String,
    pub timezone: String,
    /// `none`, `degraded`, `partial_outage` or `full_outage`.
    pub impact: String,
    pub message: String,
    /// Comma separated.
    pub components: String,
    pub start_only_inside: bool,
    pub notify: bool,
    /// Comma separated.
    pub audiences: String,
    /// Show the window on the public status page and feeds.
    pub publish: bool,
    /// Comma separated offsets before the start, e.g. `24h, 1h`.
    pub reminders: String,
    /// Notice templates from an imported spec; the form has no field for them but keeps them.
    pub templates: BTreeMap<String, crate::domain::notice::NoticeTemplate>,
    /// `automatic` or `manual`.
    pub rollback_mode: String,
    pub hold: String,
    pub watch: String,
    pub approvals_required: String,
    /// `approver` or `admin`.
    pub approvals_role: String,
}

impl FormData {
    /// A fresh canary against `environment`/`pool`, in a window tomorrow from 08:00 to 10:00
    /// UTC (`tomorrow` is `YYYY-MM-DD`).
    pub fn new(environment: &str, pool: &str, from_release: &str, tomorrow: &str) -> Self {
        Self {
            name: String::new(),
            service: String::new(),
            environment: environment.into(),
            pool: pool.into(),
            from_release: from_release.into(),
            to_release: String::new(),
            kind: "canary".into(),
            canary_count: "1".into(),
            steps: vec![
                StepRow::new("10", "2m"),
                StepRow::new("50", "2m"),
                StepRow::new("100", "2m"),
            ],
            flag: String::new(),
            batch_mode: "count".into(),
            batch: "1".into(),
            max_unavailable: "1".into(),
            min_healthy: "1".into(),
            drain_timeout: "30s".into(),
            bake: "1m".into(),
            switch_mode: "at_once".into(),
            switch_steps: "25, 50, 100".into(),
            verify_preview: false,
            preview_header: String::new(),
            preview_value: String::new(),
            preview_cookie: None,
            gate: GateForm::from(&GateSpec::default()),
            extra_gates: Vec::new(),
            window_start: format!("{tomorrow}T08:00"),
            window_end: format!("{tomorrow}T10:00"),
            timezone: "UTC".into(),
            impact: "none".into(),
            message: String::new(),
            components: String::new(),
            start_only_inside: false,
            notify: false,
            audiences: String::new(),
            publish: true,
            reminders: "24h, 1h".into(),
            templates: BTreeMap::new(),
            rollback_mode: "automatic".into(),
            hold: Secs(RollbackPlan::default().hold_secs).to_string(),
            watch: Secs(RollbackPlan::default().watch_secs).to_string(),
            approvals_required: "1".into(),
            approvals_role: "approver".into(),
        }
    }

    /// The form showing `spec` (an import): every value the spec holds, none invented.
    pub fn from_spec(spec: &CampaignSpec) -> Self {
        let mut f = Self::new(&spec.environment, &spec.pool, &spec.from_release, "2000-01-01");
        f.name = spec.name.clone();
        f.service = spec.service.clone();
        f.to_release = spec.to_release.clone();
        f.kind = tag(&spec.strategy);
        match &spec.strategy {
            Strategy::Canary { steps, canary_count } => {
                f.canary_count = canary_count.to_string();
                f.steps = steps
                    .iter()
                    .map(|s| StepRow {
                        share: percent_text(s.weight.basis_points()),
                        bake: Secs(s.bake_secs).to_string(),
                        pause: word(&s.pause),
                    })
                    .collect();
            }
            Strategy::FeatureFlag { flag, steps } => {
                f.flag = flag.clone();
                f.steps = steps
                    .iter()
                    .map(|s| StepRow {
                        share: percent_text(s.percent.basis_points()),
                        bake: Secs(s.bake_secs).to_string(),
                        pause: word(&s.pause),
                    })
                    .collect();
            }
            Strategy::Rolling {
                batch,
                max_unavailable,
                min_healthy,
                drain_timeout_secs,
                bake_secs,
            } => {
                (f.batch_mode, f.batch) = match batch {
                    BatchSize::Count(n) => ("count".into(), n.to_string()),
                    BatchSize::Percent(p) => ("percent".into(), p.to_string()),
                };
                f.max_unavailable = max_unavailable.to_string();
                f.min_healthy = min_healthy.to_string();
                f.drain_timeout = Secs(*drain_timeout_secs).to_string();
                f.bake = Secs(*bake_secs).to_string();
            }
            Strategy::BlueGreen { switch, bake_secs, verify_preview } => {
                match switch {
                    Switch::AtOnce => f.switch_mode = "at_once".into(),
                    Switch::Steps(ws) => {
                        f.switch_mode = "steps".into();
                        f.switch_steps = ws
                            .iter()
                            .map(|w| percent_text(w.basis_points()))
                            .collect::<Vec<_>>()
                            .join(", ");
                    }
                }
                f.bake = Secs(*bake_secs).to_string();
                f.verify_preview = *verify_preview;
            }
        }
        if let Some(p) = &spec.preview_route {
            if let Some(h) = &p.header {
                f.preview_header = h.name.clone();
                f.preview_value = h.value.clone();
            }
            f.preview_cookie = p.cookie.clone();
        }
        let default_gate = GateSpec::default();
        f.gate = GateForm::from(spec.gates.first().unwrap_or(&default_gate));
        f.extra_gates = spec.gates.iter().skip(1).cloned().collect();
        let w = &spec.window;
        f.window_start = w.start.to_string();
        f.window_end = w.end.to_string();
        f.timezone = w.timezone.clone();
        f.impact = word(&w.impact);
        f.message = w.message.clone();
        f.components = w.components.join(", ");
        f.start_only_inside = w.start_only_inside;
        f.notify = spec.communications.notify;
        f.audiences = spec.communications.audiences.join(", ");
        f.publish = spec.communications.publish;
        f.reminders = spec
            .communications
            .reminders
            .iter()
            .map(|o| match o {
                Offset::Secs(n) => n.to_string(),
                Offset::Text(t) => t.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        f.templates = spec.communications.templates.clone();
        f.rollback_mode = word(&spec.rollback.mode);
        f.hold = Secs(spec.rollback.hold_secs).to_string();
        f.watch = Secs(spec.rollback.watch_secs).to_string();
        f.approvals_required = spec.approvals.required.to_string();
        f.approvals_role = spec.approvals.role.as_str().into();
        f
    }
}

/// The serde word of a unit enum value (`Pause::Approval` → `approval`).
fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn from_word<T: DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_string())).ok()
}

fn tag(s: &Strategy) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// Basis points as a person writes a percentage: `2500` → `25`, `1250` → `12.5`.
pub fn percent_text(bp: u32) -> String {
    let (whole, frac) = (bp / 100, bp % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

fn list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Collects the problems of turning text into numbers, each under its spec field path.
#[derive(Default)]
struct Parser(Vec<FieldError>);

impl Parser {
    fn err(&mut self, field: &str, message: String) {
        self.0.push(FieldError { field: field.into(), message });
    }

    fn whole<T: FromStr + Default>(&mut self, field: &str, raw: &str, example: &str) -> T {
        raw.trim().parse().unwrap_or_else(|_| {
            self.err(
                field,
                format!("{:?} is not a whole number; write e.g. {example}", raw.trim()),
            );
            T::default()
        })
    }

    fn fraction(&mut self, field: &str, raw: &str) -> f64 {
        raw.trim().parse::<f64>().ok().filter(|v| v.is_finite()).unwrap_or_else(|| {
            self.err(
                field,
                format!(
                    "{:?} is not a number; write a fraction from 0 to 1, e.g. 0.01",
                    raw.trim()
                ),
            );
            0.0
        })
    }

    fn secs(&mut self, field: &str, raw: &str) -> u64 {
        Secs::parse(raw).map(|s| s.0).unwrap_or_else(|e| {
            self.err(field, e.to_string());
            0
        })
    }

    fn weight(&mut self, field: &str, raw: &str) -> Weight {
        Weight::parse_percent(raw).unwrap_or_else(|e| {
            self.err(field, e.to_string());
            Weight::ZERO
        })
    }

    fn percent(&mut self, field: &str, raw: &str) -> Percent {
        Percent::parse_percent(raw).unwrap_or_else(|e| {
            self.err(field, e.to_string());
            Percent::ZERO
        })
    }

    fn time(&mut self, field: &str, raw: &str) -> WindowTime {
        raw.parse().unwrap_or_else(|e| {
            self.err(field, e);
            WindowTime::Local(chrono::NaiveDateTime::default())
        })
    }

    fn pause(&mut self, field: &str, raw: &str) -> Pause {
        from_word(raw).unwrap_or_else(|| {
            self.err(field, format!("{raw:?} is not a pause; use none, manual or approval"));
            Pause::None
        })
    }
}

/// The spec the form describes. Text that is not a number (or duration, percentage, time) is
/// reported under its spec field path and stands in the spec as a zero, so the rest can still be
/// checked; the zero's own complaints are dropped by [`check`].
pub fn to_spec(f: &FormData) -> (CampaignSpec, Vec<FieldError>) {
    let mut p = Parser::default();
    let step_kind = |i: usize, what: &str| format!("strategy.steps[{i}].{what}");
    let strategy = match f.kind.as_str() {
        "rolling" => Strategy::Rolling {
            batch: if f.batch_mode == "percent" {
                BatchSize::Percent(p.whole("strategy.batch", &f.batch, "25"))
            } else {
                BatchSize::Count(p.whole("strategy.batch", &f.batch, "1"))
            },
            max_unavailable: p.whole("strategy.max_unavailable", &f.max_unavailable, "1"),
            min_healthy: p.whole("strategy.min_healthy", &f.min_healthy, "2"),
            drain_timeout_secs: p.secs("strategy.drain_timeout_secs", &f.drain_timeout),
            bake_secs: p.secs("strategy.bake_secs", &f.bake),
        },
        "blue_green" => Strategy::BlueGreen {
            switch: if f.switch_mode == "steps" {
                Switch::Steps(
                    list(&f.switch_steps)
                        .iter()
                        .enumerate()
                        .map(|(i, s)| p.weight(&format!("strategy.switch.steps[{i}]"), s))
                        .collect(),
                )
            } else {
                Switch::AtOnce
            },
            bake_secs: p.secs("strategy.bake_secs", &f.bake),
            verify_preview: f.verify_preview,
        },
        "feature_flag" => Strategy::FeatureFlag {
            flag: f.flag.trim().to_string(),
            steps: f
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| FlagStep {
                    percent: p.percent(&step_kind(i, "percent"), &s.share),
                    bake_secs: p.secs(&step_kind(i, "bake_secs"), &s.bake),
                    pause: p.pause(&step_kind(i, "pause"), &s.pause),
                })
                .collect(),
        },
        _ => Strategy::Canary {
            canary_count: p.whole("strategy.canary_count", &f.canary_count, "1"),
            steps: f
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| CanaryStep {
                    weight: p.weight(&step_kind(i, "weight"), &s.share),
                    bake_secs: p.secs(&step_kind(i, "bake_secs"), &s.bake),
                    pause: p.pause(&step_kind(i, "pause"), &s.pause),
                })
                .collect(),
        },
    };
    let g = &f.gate;
    let gate = GateSpec {
        max_error_rate: p.fraction("gates[0].max_error_rate", &g.max_error_rate),
        max_p99_ms: p.whole("gates[0].max_p99_ms", &g.max_p99_ms, "800"),
        min_probe_success: p.fraction("gates[0].min_probe_success", &g.min_probe_success),
        window_secs: p.secs("gates[0].window_secs", &g.window_secs),
        min_samples: p.whole("gates[0].min_samples", &g.min_samples, "10"),
        deadline_secs: p.secs("gates[0].deadline_secs", &g.deadline_secs),
        consecutive_failures: p.whole(
            "gates[0].consecutive_failures",
            &g.consecutive_failures,
            "3",
        ),
        compare: g.compare.clone(),
    };
    let header =
        (!f.preview_header.trim().is_empty() || !f.preview_value.trim().is_empty()).then(|| {
            RouteMatch {
                name: f.preview_header.trim().to_string(),
                value: f.preview_value.trim().to_string(),
            }
        });
    let preview_route = (header.is_some() || f.preview_cookie.is_some())
        .then(|| PreviewRoute { header, cookie: f.preview_cookie.clone() });
    let impact = from_word::<Impact>(&f.impact).unwrap_or_else(|| {
        p.err(
            "window.impact",
            format!(
                "{:?} is not an impact; use none, degraded, partial_outage or full_outage",
                f.impact
            ),
        );
        Impact::None
    });
    let rollback_mode = from_word::<RollbackMode>(&f.rollback_mode).unwrap_or_else(|| {
        p.err(
            "rollback.mode",
            format!("{:?} is not a mode; use automatic or manual", f.rollback_mode),
        );
        RollbackMode::Automatic
    });
    let role = from_word::<Role>(&f.approvals_role).unwrap_or_else(|| {
        p.err(
            "approvals.role",
            format!("{:?} is not a role; use approver or admin", f.approvals_role),
        );
        Role::Approver
    });
    let window = MaintenanceWindow {
        start: p.time("window.start", &f.window_start),
        end: p.time("window.end", &f.window_end),
        timezone: f.timezone.trim().to_string(),
        impact,
        components: list(&f.components),
        message: f.message.clone(),
        start_only_inside: f.start_only_inside,
    };
    let spec = CampaignSpec {
        name: f.name.trim().to_string(),
        service: f.service.trim().to_string(),
        environment: f.environment.clone(),
        pool: f.pool.clone(),
        from_release: f.from_release.trim().to_string(),
        to_release: f.to_release.trim().to_string(),
        strategy,
        gates: std::iter::once(gate).chain(f.extra_gates.iter().cloned()).collect(),
        window,
        communications: CommunicationsPlan {
            notify: f.notify,
            audiences: list(&f.audiences),
            publish: f.publish,
            // Whole numbers are seconds; anything else is checked by the shared validator.
            reminders: list(&f.reminders)
                .into_iter()
                .map(|r| r.parse::<i64>().map(Offset::Secs).unwrap_or(Offset::Text(r)))
                .collect(),
            templates: f.templates.clone(),
        },
        rollback: RollbackPlan {
            mode: rollback_mode,
            hold_secs: p.secs("rollback.hold_secs", &f.hold),
            watch_secs: p.secs("rollback.watch_secs", &f.watch),
        },
        approvals: ApprovalPolicy {
            required: p.whole("approvals.required", &f.approvals_required, "1"),
            role,
        },
        preview_route,
    };
    (spec, p.0)
}

/// The outcome of one keystroke: the valid spec with its compiled plan, or every problem.
pub type Checked = Result<(CampaignSpec, Plan), Vec<FieldError>>;

/// Parses the form and runs the shared validation and plan compiler, exactly as the server will.
/// `envs` are the environments the browser knows; the form's environment is looked up there.
pub fn check(f: &FormData, envs: &[Environment]) -> Checked {
    let (spec, mut errors) = to_spec(f);
    let Some(env) = envs.iter().find(|e| e.name.as_str() == spec.environment) else {
        errors.push(FieldError {
            field: "environment".into(),
            message: if envs.is_empty() {
                "there is no environment yet; an admin must create one before campaigns can".into()
            } else {
                "pick one of the environments in the list".into()
            },
        });
        return Err(errors);
    };
    match validate(&spec, env) {
        Ok(valid) if errors.is_empty() => Ok((spec, compile(&valid))),
        Ok(_) => Err(errors),
        Err(found) => {
            // A field that did not parse stands in as zero; what validate says about it is noise.
            // Window bounds are judged together (end after start), so one unparsed bound mutes both.
            let bound = |f: &str| f == "window.start" || f == "window.end";
            let switch = |f: &str| f.starts_with("strategy.switch.steps");
            let unparsed = |field: &str| {
                errors.iter().any(|e| {
                    e.field == field
                        || (bound(&e.field) && bound(field))
                        || (switch(&e.field) && switch(field))
                })
            };
            let kept: Vec<FieldError> =
                found.0.into_iter().filter(|e| !unparsed(&e.field)).collect();
            errors.extend(kept);
            Err(errors)
        }
    }
}

/// Every place on the form an error can be shown beside, for the form as it is now.
pub fn slots(f: &FormData) -> Vec<String> {
    let mut s: Vec<String> = [
        "name",
        "service",
        "environment",
        "pool",
        "from_release",
        "to_release",
        "strategy",
        "gates",
        "window.start",
        "window.end",
        "window.timezone",
        "window.impact",
        "window.message",
        "window.components",
        "communications.notify",
        "communications.audiences",
        "communications.publish",
        "communications.reminders",
        "rollback.mode",
        "rollback.hold_secs",
        "rollback.watch_secs",
        "approvals.required",
        "approvals.role",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for g in [
        "max_error_rate",
        "max_p99_ms",
        "min_probe_success",
        "window_secs",
        "min_samples",
        "deadline_secs",
        "consecutive_failures",
        "compare",
    ] {
        s.push(format!("gates[0].{g}"));
    }
    let fixed: &[&str] = match f.kind.as_str() {
        "rolling" => &[
            "strategy.batch",
            "strategy.max_unavailable",
            "strategy.min_healthy",
            "strategy.drain_timeout_secs",
            "strategy.bake_secs",
        ],
        "blue_green" => &[
            "strategy.switch",
            "strategy.switch.steps",
            "strategy.bake_secs",
            "strategy.verify_preview",
            "preview_route",
            "preview_route.header",
        ],
        "feature_flag" => &["strategy.flag", "strategy.steps"],
        _ => &["strategy.canary_count", "strategy.steps"],
    };
    s.extend(fixed.iter().map(|x| x.to_string()));
    if matches!(f.kind.as_str(), "canary" | "feature_flag") {
        let share = if f.kind == "canary" { "weight" } else { "percent" };
        for i in 0..f.steps.len() {
            for what in [share, "bake_secs", "pause"] {
                s.push(format!("strategy.steps[{i}].{what}"));
            }
        }
    }
    s
}

/// The slot an error on `field` is shown beside: the field itself, or the nearest enclosing
/// field the form shows (`gates[1].max_p99_ms` → `gates`). List items without an input of their
/// own go to their list (`strategy.switch.steps[2]` → `strategy.switch.steps`). `None`: nowhere
/// on the form, so the summary at the top.
pub fn slot_for(field: &str, slots: &[String]) -> Option<String> {
    let mut at = field.to_string();
    loop {
        if slots.contains(&at) {
            return Some(at);
        }
        let cut = at.rfind(['.', '['])?;
        at.truncate(cut);
    }
}

/// Errors arranged for the page: by slot (several per slot possible), and those with no slot.
/// A message shown beside an enclosing field starts with the exact field path it is about.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placed {
    pub by_slot: BTreeMap<String, Vec<String>>,
    pub unplaced: Vec<String>,
}

pub fn place<'a>(errors: impl IntoIterator<Item = (&'a str, &'a str)>, f: &FormData) -> Placed {
    let slots = slots(f);
    let mut placed = Placed::default();
    for (field, message) in errors {
        match slot_for(field, &slots) {
            Some(slot) if slot == field => {
                placed.by_slot.entry(slot).or_default().push(message.to_string());
            }
            Some(slot) => {
                placed.by_slot.entry(slot).or_default().push(format!("{field}: {message}"));
            }
            None if field.is_empty() => placed.unplaced.push(message.to_string()),
            None => placed.unplaced.push(format!("{field}: {message}")),
        }
    }
    placed
}

/// The HTML id of the input for a slot: `strategy.steps[1].weight` → `f-strategy-steps-1-weight`.
pub fn input_id(slot: &str) -> String {
    let mut id = String::from("f");
    for part in
        slot.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|p| !p.is_empty())
    {
        id.push('-');
        id.push_str(part);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        serde_json::from_value(serde_json::json!({
            "name": "production",
            "targets": (1..=4).map(|i| serde_json::json!({
                "name": format!("web-{i}"), "address": format!("127.0.0.1:80{i:02}"), "group": "a",
                "release": "v1", "health_url": format!("http://127.0.0.1:80{i:02}/healthz")
            })).collect::<Vec<_>>(),
            "pools": [{ "name": "web", "router": "edge", "targets": ["web-1", "web-2", "web-3", "web-4"] }],
            "backends": [
                { "name": "edge", "kind": "router", "driver": "haproxy" },
                { "name": "local", "kind": "provider", "driver": "local-process" },
                { "name": "probe", "kind": "health_source", "driver": "http-probe" }
            ]
        }))
        .expect("fixture environment")
    }

    fn form() -> FormData {
        let mut f = FormData::new("production", "web", "v1", "2026-12-01");
        f.name = "web-upgrade".into();
        f.service = "web".into();
        f.to_release = "v2".into();
        f
    }

    fn fields(checked: &Checked) -> Vec<String> {
        match checked {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn a_filled_in_default_form_validates_and_compiles_a_plan() {
        let checked = check(&form(), &[env()]);
        let (spec, plan) = checked.expect("valid");
        assert_eq!(spec.name, "web-upgrade");
        assert!(plan.steps.len() > 3, "{plan:?}");
    }

    #[test]
    fn a_step_weight_that_is_not_a_percentage_is_reported_on_that_step_alone() {
        let mut f = form();
        f.steps[1].share = "150".into();
        let checked = check(&f, &[env()]);
        assert_eq!(fields(&checked), vec!["strategy.steps[1].weight"]);
    }

    #[test]
    fn falling_weights_are_reported_by_validate_on_the_later_step() {
        let mut f = form();
        f.steps[1].share = "5".into();
        assert_eq!(fields(&check(&f, &[env()])), vec!["strategy.steps[1].weight"]);
    }

    #[test]
    fn an_unparsable_window_start_hides_the_reversed_window_noise() {
        let mut f = form();
        f.window_start = "tomorrow morning".into();
        assert_eq!(fields(&check(&f, &[env()])), vec!["window.start"]);
    }

    #[test]
    fn an_unknown_environment_names_the_environment_field() {
        let mut f = form();
        f.environment = "staging".into();
        assert_eq!(fields(&check(&f, &[env()])), vec!["environment"]);
    }

    #[test]
    fn a_spec_survives_the_trip_through_the_form_for_every_strategy() {
        let (base, errs) = to_spec(&form());
        assert!(errs.is_empty(), "{errs:?}");
        let strategies = [
            base.strategy.clone(),
            Strategy::Rolling {
                batch: BatchSize::Percent(25),
                max_unavailable: 1,
                min_healthy: 3,
                drain_timeout_secs: 45,
                bake_secs: 90,
            },
            Strategy::BlueGreen {
                switch: Switch::Steps(vec![
                    Weight::parse_percent("12.5").expect("w"),
                    Weight::parse_percent("100").expect("w"),
                ]),
                bake_secs: 3600,
                verify_preview: true,
            },
            Strategy::FeatureFlag {
                flag: "new-checkout".into(),
                steps: vec![FlagStep {
                    percent: Percent::parse_percent("100").expect("p"),
                    bake_secs: 5400,
                    pause: Pause::Manual,
                }],
            },
        ];
        for strategy in strategies {
            let mut spec = base.clone();
            spec.strategy = strategy;
            spec.preview_route = Some(PreviewRoute {
                header: Some(RouteMatch { name: "x-preview".into(), value: "1".into() }),
                cookie: Some(RouteMatch { name: "canary".into(), value: "yes".into() }),
            });
            spec.gates.push(GateSpec { max_p99_ms: 250, ..GateSpec::default() });
            spec.window.components = vec!["api".into(), "checkout".into()];
            spec.communications = CommunicationsPlan {
                notify: true,
                audiences: vec!["customers".into()],
                publish: false,
                reminders: vec![Offset::Text("2h".into()), Offset::Secs(90)],
                ..CommunicationsPlan::default()
            };
            let (back, errs) = to_spec(&FormData::from_spec(&spec));
            assert!(errs.is_empty(), "{errs:?}");
            assert_eq!(back, spec);
        }
    }

    #[test]
    fn errors_land_beside_their_input_or_the_nearest_enclosing_one_or_in_the_summary() {
        let f = form();
        let placed = place(
            [
                ("strategy.steps[2].weight", "must end at 100 %"),
                ("strategy.steps[7].weight", "no such row"),
                ("gates[1].max_p99_ms", "too small"),
                ("window.components[0]", "empty"),
                ("preview_route.header", "needs a value"),
                ("", "could not be checked"),
            ],
            &f,
        );
        assert_eq!(placed.by_slot["strategy.steps[2].weight"], vec!["must end at 100 %"]);
        assert_eq!(placed.by_slot["strategy.steps"], vec!["strategy.steps[7].weight: no such row"]);
        assert_eq!(placed.by_slot["gates"], vec!["gates[1].max_p99_ms: too small"]);
        assert_eq!(placed.by_slot["window.components"], vec!["window.components[0]: empty"]);
        // A canary form has no preview-route inputs, so that one goes to the summary.
        assert_eq!(
            placed.unplaced,
            vec!["preview_route.header: needs a value".to_string(), "could not be checked".into()]
        );
    }

    #[test]
    fn a_blue_green_form_shows_switch_step_errors_beside_the_switch_steps_input() {
        let mut f = form();
        f.kind = "blue_green".into();
        let placed = place([("strategy.switch.steps[1]", "must rise")], &f);
        assert_eq!(
            placed.by_slot["strategy.switch.steps"],
            vec!["strategy.switch.steps[1]: must rise"]
        );
        assert_eq!(slot_for("strategy.steps[0].weight", &slots(&f)).as_deref(), Some("strategy"));
    }

    #[test]
    fn input_ids_are_plain_words_joined_by_hyphens() {
        assert_eq!(input_id("strategy.steps[1].weight"), "f-strategy-steps-1-weight");
        assert_eq!(input_id("gates[0].max_p99_ms"), "f-gates-0-max_p99_ms");
        assert_eq!(input_id("name"), "f-name");
    }
}
