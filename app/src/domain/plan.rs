//! Compiles a [`ValidSpec`] into a [`Plan`]: the explicit, ordered steps a campaign will take,
//! each with the exact backend calls it makes, shown to the operator before start like a
//! `terraform plan`. Every call states a desired state (absolute weights, states, releases), never
//! a delta, so an engine that crashes mid-step can simply run the step again. The output is a pure
//! function of the input: same spec, byte-identical JSON. One file per strategy lives in `plan/`.
//!
//! Weight model: each pool member has an absolute weight in basis points and the members' weights
//! add up to 100 % of the pool's traffic; a router adapter maps them onto its own scale (HAProxy's
//! 0–256). A member's share is its weight over the sum of weights of members that serve.

mod blue_green;
mod canary;
mod feature_flag;
mod rolling;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::campaign::{Direction, Pause, PreviewRoute, Strategy, direction};
use super::environment::Target;
use super::ids::{Name, Percent, Release, Secs, Weight};
use super::validate::ValidSpec;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Plan {
    pub steps: Vec<Step>,
    pub summary: PlanSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PlanSummary {
    /// One line: "canary web v1.0.0 → v2.1.0 on web-pool (4 targets): 17 steps, about 31m".
    pub headline: String,
    pub strategy: String,
    pub pool: Name,
    pub from_release: Release,
    pub to_release: Release,
    pub direction: Direction,
    pub targets: usize,
    /// Sum of every step's expected time, people's decisions excluded.
    pub expected_secs: u64,
    /// How many steps wait for a person (approvals and manual pauses).
    pub waits_for_people: usize,
    /// Adjustments the compiler made that the operator should know about.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Step {
    pub index: usize,
    pub kind: StepKind,
    /// A sentence for people: "Shift 25 % of web-pool traffic to v2.1.0".
    pub description: String,
    pub calls: Vec<BackendCall>,
    /// `None`: waits for a person, with no deadline of its own.
    pub timeout_secs: Option<u64>,
    pub expected_secs: u64,
}

impl Plan {
    /// The targets running the new release once steps `0..upto` are done: the instances
    /// created and the targets replaced in place so far, in plan order.
    pub fn new_release_targets(&self, upto: usize) -> Vec<Name> {
        let mut out: Vec<Name> = Vec::new();
        for step in self.steps.iter().take(upto) {
            for call in &step.calls {
                if let BackendCall::Provider {
                    call: ProviderCall::Create { target, .. } | ProviderCall::Replace { target, .. },
                    ..
                } = call
                    && !out.contains(target)
                {
                    out.push(target.clone());
                }
            }
        }
        out
    }

    /// Steps that change who takes traffic (after them, a new stage of analysis begins).
    pub fn moves_traffic(kind: StepKind) -> bool {
        matches!(
            kind,
            StepKind::SetWeight
                | StepKind::AddToPool
                | StepKind::ReplaceRelease
                | StepKind::SwitchDns
        )
    }

    /// Every instance the plan creates: (target, group, release), in plan order.
    pub fn created_instances(&self) -> Vec<(Name, String, Release)> {
        let mut out: Vec<(Name, String, Release)> = Vec::new();
        for step in &self.steps {
            for call in &step.calls {
                if let BackendCall::Provider {
                    call: ProviderCall::Create { target, release, group },
                    ..
                } = call
                    && !out.iter().any(|(t, _, _)| t == target)
                {
                    out.push((target.clone(), group.clone(), release.clone()));
                }
            }
        }
        out
    }
}

impl Step {
    pub fn waits(&self) -> bool {
        self.kind.waits()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Provision,
    WaitHealthy,
    SetWeight,
    Drain,
    /// Waits for in-flight requests; reaching the timeout means "proceed", not "fail".
    WaitDrained,
    RemoveFromPool,
    AddToPool,
    ReplaceRelease,
    SwitchDns,
    Bake,
    Gate,
    Approval,
    Pause,
    SetFlag,
    Decommission,
    Notify,
}

impl StepKind {
    /// A waiting step observes (time, health, people) and changes nothing; an acting step makes
    /// backend calls that change state.
    pub fn waits(self) -> bool {
        matches!(
            self,
            StepKind::WaitHealthy
                | StepKind::WaitDrained
                | StepKind::Bake
                | StepKind::Gate
                | StepKind::Approval
                | StepKind::Pause
        )
    }

    pub fn needs_person(self) -> bool {
        matches!(self, StepKind::Approval | StepKind::Pause)
    }

    pub fn label(self) -> &'static str {
        match self {
            StepKind::Provision => "provision",
            StepKind::WaitHealthy => "wait healthy",
            StepKind::SetWeight => "set weight",
            StepKind::Drain => "drain",
            StepKind::WaitDrained => "wait drained",
            StepKind::RemoveFromPool => "remove from pool",
            StepKind::AddToPool => "add to pool",
            StepKind::ReplaceRelease => "replace release",
            StepKind::SwitchDns => "switch DNS",
            StepKind::Bake => "bake",
            StepKind::Gate => "gate",
            StepKind::Approval => "approval",
            StepKind::Pause => "pause",
            StepKind::SetFlag => "set flag",
            StepKind::Decommission => "decommission",
            StepKind::Notify => "notify",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    Ready,
    /// Finishes in-flight requests, takes no new ones.
    Drain,
    /// Takes nothing.
    Maint,
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberState::Ready => "ready",
            MemberState::Drain => "drain",
            MemberState::Maint => "maint",
        })
    }
}

/// One call to one backend, with every argument. The engine hands it to the named adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum BackendCall {
    Provider {
        backend: Name,
        call: ProviderCall,
    },
    Router {
        backend: Name,
        call: RouterCall,
    },
    Health {
        backend: Name,
        call: HealthCall,
    },
    /// The flag store backend is not designed yet; the engine picks it.
    Flag {
        call: FlagCall,
    },
    /// Fanned out by the notifier to the environment's channels.
    Notify {
        event: NotifyEvent,
        audiences: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ProviderCall {
    /// Ensure an instance named `target` exists and runs `release`, placed in `group`.
    Create { target: Name, release: Release, group: String },
    /// Ensure the existing instance runs `release`.
    Replace { target: Name, release: Release },
    /// Ensure the instance is gone.
    Destroy { target: Name },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RouterCall {
    SetWeight {
        pool: Name,
        target: Name,
        weight: Weight,
    },
    SetState {
        pool: Name,
        target: Name,
        state: MemberState,
    },
    /// Ensure the target is a member, ready, at `weight`. The engine resolves its address.
    AddMember {
        pool: Name,
        target: Name,
        weight: Weight,
    },
    RemoveMember {
        pool: Name,
        target: Name,
    },
    /// Read-only: returns once the member has no sessions, or after the timeout.
    AwaitDrained {
        pool: Name,
        target: Name,
        timeout_secs: u64,
    },
    /// Ensure the record resolves to exactly these targets' addresses.
    SwitchDns {
        record: String,
        targets: Vec<Name>,
    },
    /// Ensure requests matching the route reach only these targets, whatever their weight.
    SetPreviewRoute {
        pool: Name,
        targets: Vec<Name>,
        route: PreviewRoute,
    },
    ClearPreviewRoute {
        pool: Name,
    },
}

impl RouterCall {
    /// The pool this call changes or reads; `None` for DNS.
    pub fn pool(&self) -> Option<&Name> {
        match self {
            RouterCall::SetWeight { pool, .. }
            | RouterCall::SetState { pool, .. }
            | RouterCall::AddMember { pool, .. }
            | RouterCall::RemoveMember { pool, .. }
            | RouterCall::AwaitDrained { pool, .. }
            | RouterCall::SetPreviewRoute { pool, .. }
            | RouterCall::ClearPreviewRoute { pool } => Some(pool),
            RouterCall::SwitchDns { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HealthCall {
    /// Probe the target's health endpoint (the engine resolves the URL of new instances).
    Probe { target: Name },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FlagCall {
    Set { flag: Name, percent: Percent },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    Started,
    Completed,
    RolledBack,
}

fn names(list: &[Name]) -> String {
    list.iter().map(Name::as_str).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for BackendCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendCall::Provider { backend, call } => {
                write!(f, "provider({backend}).")?;
                match call {
                    ProviderCall::Create { target, release, group } => {
                        write!(f, "create({target}, {release}, group={group})")
                    }
                    ProviderCall::Replace { target, release } => {
                        write!(f, "replace({target}, {release})")
                    }
                    ProviderCall::Destroy { target } => write!(f, "destroy({target})"),
                }
            }
            BackendCall::Router { backend, call } => {
                write!(f, "router({backend}).")?;
                match call {
                    RouterCall::SetWeight { pool, target, weight } => {
                        write!(f, "set_weight({pool}, {target}, {weight})")
                    }
                    RouterCall::SetState { pool, target, state } => {
                        write!(f, "set_state({pool}, {target}, {state})")
                    }
                    RouterCall::AddMember { pool, target, weight } => {
                        write!(f, "add_member({pool}, {target}, {weight})")
                    }
                    RouterCall::RemoveMember { pool, target } => {
                        write!(f, "remove_member({pool}, {target})")
                    }
                    RouterCall::AwaitDrained { pool, target, timeout_secs } => {
                        write!(f, "await_drained({pool}, {target}, {})", Secs(*timeout_secs))
                    }
                    RouterCall::SwitchDns { record, targets } => {
                        write!(f, "switch_dns({record}, [{}])", names(targets))
                    }
                    RouterCall::SetPreviewRoute { pool, targets, route } => {
                        write!(f, "set_preview_route({pool}, {route}, [{}])", names(targets))
                    }
                    RouterCall::ClearPreviewRoute { pool } => {
                        write!(f, "clear_preview_route({pool})")
                    }
                }
            }
            BackendCall::Health { backend, call: HealthCall::Probe { target } } => {
                write!(f, "health({backend}).probe({target})")
            }
            BackendCall::Flag { call: FlagCall::Set { flag, percent } } => {
                write!(f, "flags.set({flag}, {percent})")
            }
            BackendCall::Notify { event, audiences } => {
                let event = match event {
                    NotifyEvent::Started => "started",
                    NotifyEvent::Completed => "completed",
                    NotifyEvent::RolledBack => "rolled_back",
                };
                write!(f, "notify({event}, [{}])", audiences.join(", "))
            }
        }
    }
}

/// Typical and worst-case durations of acting steps, for the plan preview and step timeouts.
pub(crate) mod timing {
    pub const PROVISION: (u64, u64) = (60, 600);
    pub const REPLACE: (u64, u64) = (60, 600);
    pub const WAIT_HEALTHY: (u64, u64) = (30, 300);
    pub const ROUTER: (u64, u64) = (1, 30);
    pub const DNS: (u64, u64) = (5, 60);
    pub const DECOMMISSION: (u64, u64) = (30, 300);
    pub const FLAG: (u64, u64) = (1, 30);
    pub const NOTIFY: (u64, u64) = (1, 60);
}

/// Appends steps with running indexes and offers the step shapes every strategy shares.
pub(crate) struct Builder<'a> {
    pub v: &'a ValidSpec,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
}

pub(crate) fn list(items: &[Name]) -> String {
    match items {
        [] => "no targets".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", names(init)),
    }
}

impl<'a> Builder<'a> {
    pub fn new(v: &'a ValidSpec) -> Self {
        Self { v, steps: Vec::new(), notes: Vec::new() }
    }

    pub fn push(
        &mut self,
        kind: StepKind,
        description: String,
        calls: Vec<BackendCall>,
        (expected_secs, timeout): (u64, u64),
    ) {
        let timeout_secs = if kind.needs_person() { None } else { Some(timeout) };
        let index = self.steps.len();
        self.steps.push(Step { index, kind, description, calls, timeout_secs, expected_secs });
    }

    pub fn pool(&self) -> &'a Name {
        &self.v.pool().name
    }

    pub fn from(&self) -> &'a Release {
        self.v.from_release()
    }

    pub fn to(&self) -> &'a Release {
        self.v.to_release()
    }

    pub fn is_dns(&self) -> bool {
        self.v.router().is_dns_router()
    }

    pub fn router(&self, call: RouterCall) -> BackendCall {
        BackendCall::Router { backend: self.v.router().name.clone(), call }
    }

    fn provider(&self, call: ProviderCall) -> Option<BackendCall> {
        self.v.provider().map(|backend| BackendCall::Provider { backend: backend.clone(), call })
    }

    pub fn probe(&self, target: &Name) -> BackendCall {
        BackendCall::Health {
            backend: self.v.health().clone(),
            call: HealthCall::Probe { target: target.clone() },
        }
    }

    /// Weights every member of the pool starts with: an even split in the pool's order.
    pub fn initial_weights(&self) -> Vec<(Name, Weight)> {
        let targets = self.v.targets();
        targets.iter().map(|t| t.name.clone()).zip(Weight::FULL.split_even(targets.len())).collect()
    }

    pub fn initial_weight(&self, target: &Name) -> Weight {
        self.initial_weights()
            .into_iter()
            .find(|(n, _)| n == target)
            .map_or(Weight::ZERO, |(_, w)| w)
    }

    pub fn notify(&mut self, event: NotifyEvent) {
        let c = &self.v.spec().communications;
        if !c.notify {
            return;
        }
        let what = format!("{} {} → {}", self.v.service(), self.from(), self.to());
        let description = match event {
            NotifyEvent::Started => {
                format!("Tell {} that {what} is starting", c.audiences.join(", "))
            }
            NotifyEvent::Completed => {
                format!("Tell {} that {what} is complete", c.audiences.join(", "))
            }
            NotifyEvent::RolledBack => format!(
                "Tell {} that {what} was rolled back to {}",
                c.audiences.join(", "),
                self.from()
            ),
        };
        let calls = vec![BackendCall::Notify { event, audiences: c.audiences.clone() }];
        self.push(StepKind::Notify, description, calls, timing::NOTIFY);
    }

    pub fn provision(&mut self, new: &[(Name, String)], release: &Release, description: String) {
        let calls = new
            .iter()
            .filter_map(|(target, group)| {
                self.provider(ProviderCall::Create {
                    target: target.clone(),
                    release: release.clone(),
                    group: group.clone(),
                })
            })
            .collect();
        self.push(StepKind::Provision, description, calls, timing::PROVISION);
    }

    pub fn replace(&mut self, targets: &[Name], release: &Release) {
        let calls = targets
            .iter()
            .filter_map(|t| {
                self.provider(ProviderCall::Replace { target: t.clone(), release: release.clone() })
            })
            .collect();
        let description = format!("Replace the release on {} with {release}", list(targets));
        self.push(StepKind::ReplaceRelease, description, calls, timing::REPLACE);
    }

    pub fn decommission(&mut self, targets: &[Name], description: String) {
        let calls = targets
            .iter()
            .filter_map(|t| self.provider(ProviderCall::Destroy { target: t.clone() }))
            .collect();
        self.push(StepKind::Decommission, description, calls, timing::DECOMMISSION);
    }

    pub fn wait_healthy(&mut self, targets: &[Name], release: &Release) {
        let calls = targets.iter().map(|t| self.probe(t)).collect();
        let description =
            format!("Wait until {} {} healthy on {release}", list(targets), are(targets));
        self.push(StepKind::WaitHealthy, description, calls, timing::WAIT_HEALTHY);
    }

    pub fn add_members(&mut self, members: &[(Name, Weight)], description: String, preview: bool) {
        let pool = self.pool().clone();
        let mut calls: Vec<BackendCall> = members
            .iter()
            .map(|(t, w)| {
                self.router(RouterCall::AddMember {
                    pool: pool.clone(),
                    target: t.clone(),
                    weight: *w,
                })
            })
            .collect();
        if preview && let Some(route) = self.v.spec().preview_route.clone() {
            let targets = members.iter().map(|(t, _)| t.clone()).collect();
            calls.push(self.router(RouterCall::SetPreviewRoute { pool, targets, route }));
        }
        self.push(StepKind::AddToPool, description, calls, timing::ROUTER);
    }

    pub fn remove_members(&mut self, targets: &[Name], description: String, clear_preview: bool) {
        let pool = self.pool().clone();
        let mut calls: Vec<BackendCall> = targets
            .iter()
            .map(|t| {
                self.router(RouterCall::RemoveMember { pool: pool.clone(), target: t.clone() })
            })
            .collect();
        if clear_preview && self.v.spec().preview_route.is_some() && !self.is_dns() {
            calls.push(self.router(RouterCall::ClearPreviewRoute { pool }));
        }
        self.push(StepKind::RemoveFromPool, description, calls, timing::ROUTER);
    }

    pub fn set_weights(&mut self, weights: &[(Name, Weight)], description: String) {
        let pool = self.pool().clone();
        let calls = weights
            .iter()
            .map(|(t, w)| {
                self.router(RouterCall::SetWeight {
                    pool: pool.clone(),
                    target: t.clone(),
                    weight: *w,
                })
            })
            .collect();
        self.push(StepKind::SetWeight, description, calls, timing::ROUTER);
    }

    pub fn switch_dns(&mut self, targets: &[Name], description: String) {
        let record = self.v.router().dns_record(self.pool());
        let call = self.router(RouterCall::SwitchDns { record, targets: targets.to_vec() });
        self.push(StepKind::SwitchDns, description, vec![call], timing::DNS);
    }

    /// After a DNS switch resolvers keep answering with the old record until its TTL runs out,
    /// so the targets it named still get traffic: nothing may remove them before this wait.
    pub fn wait_out_ttl(&mut self, old: &str) {
        let ttl = self.v.router().dns_ttl();
        self.bake(
            ttl,
            format!("Wait out the old record's TTL ({ttl} s) so resolvers stop sending to {old}"),
        );
    }

    /// A zero-length bake waits for nothing, so it is left out rather than shown.
    pub fn bake(&mut self, secs: u64, description: String) {
        if secs > 0 {
            self.push(StepKind::Bake, description, Vec::new(), (secs, secs));
        }
    }

    pub fn gate(&mut self, targets: &[Name], context: &str) {
        let gates = self.v.gates();
        let expected = gates.iter().map(|g| g.window_secs).max().unwrap_or(0);
        let deadline = gates.iter().map(|g| g.deadline_secs).max().unwrap_or(0);
        let rule = gates.first().map_or_else(String::new, |g| {
            format!(
                ": error rate ≤ {}, p99 ≤ {} ms, probes ≥ {} over {} (at least {} samples, fail after {})",
                fraction(g.max_error_rate),
                g.max_p99_ms,
                fraction(g.min_probe_success),
                Secs(g.window_secs),
                g.min_samples,
                Secs(g.deadline_secs)
            )
        });
        let more = match gates.len() {
            0 | 1 => String::new(),
            n => format!(", and {} more gates", n - 1),
        };
        let calls = targets.iter().map(|t| self.probe(t)).collect();
        let description = format!("Check the health of {} {context}{rule}{more}", self.to());
        self.push(StepKind::Gate, description, calls, (expected, deadline));
    }

    pub fn pause(&mut self, pause: Pause, context: &str) {
        match pause {
            Pause::None => {}
            Pause::Manual => self.push(
                StepKind::Pause,
                format!("Pause {context} until an operator resumes"),
                Vec::new(),
                (0, 0),
            ),
            Pause::Approval => {
                let a = self.v.spec().approvals;
                let description = format!(
                    "Wait for {} approval{} ({} or above) {context}",
                    a.required,
                    if a.required == 1 { "" } else { "s" },
                    a.role
                );
                self.push(StepKind::Approval, description, Vec::new(), (0, 0));
            }
        }
    }

    pub fn finish(self) -> Plan {
        let v = self.v;
        let expected_secs = self.steps.iter().map(|s| s.expected_secs).sum();
        let waits_for_people = self.steps.iter().filter(|s| s.kind.needs_person()).count();
        let strategy = v.strategy().label().to_string();
        let headline = format!(
            "{strategy} {} {} → {} on {} ({} target{}): {} steps, about {}{}",
            v.service(),
            v.from_release(),
            v.to_release(),
            v.pool().name,
            v.targets().len(),
            if v.targets().len() == 1 { "" } else { "s" },
            self.steps.len(),
            Secs(expected_secs),
            match waits_for_people {
                0 => String::new(),
                n => format!(" plus {n} human decision{}", if n == 1 { "" } else { "s" }),
            }
        );
        Plan {
            summary: PlanSummary {
                headline,
                strategy,
                pool: v.pool().name.clone(),
                from_release: v.from_release().clone(),
                to_release: v.to_release().clone(),
                direction: direction(v.from_release().as_str(), v.to_release().as_str()),
                targets: v.targets().len(),
                expected_secs,
                waits_for_people,
                notes: self.notes,
            },
            steps: self.steps,
        }
    }
}

fn are(targets: &[Name]) -> &'static str {
    if targets.len() == 1 { "is" } else { "are" }
}

fn fraction(f: f64) -> String {
    let pct = (f * 10_000.0).round() / 100.0;
    format!("{pct} %")
}

/// One new instance per old target, named after it and the campaign that creates it
/// (`web-1` → `web-1-v2-1-0-c7` in campaign 7) and placed in the same group; names are made
/// unique against every target the environment defines. A name this compiler made earlier
/// (`web-1-v2-c3`) is traced back to its base (`web-1`), so names do not grow campaign after
/// campaign.
pub(crate) fn new_instances(v: &ValidSpec) -> Vec<(Name, String)> {
    let mut used: BTreeSet<Name> = v.environment().targets.iter().map(|t| t.name.clone()).collect();
    let from = v.from_release().slug();
    let slug = match v.campaign() {
        Some(id) => format!("{}-c{id}", v.to_release().slug()),
        None => v.to_release().slug(),
    };
    v.targets()
        .iter()
        .map(|t: &Target| {
            (fresh_name(base_name(t.name.as_str(), &from), &slug, &mut used), t.group.clone())
        })
        .collect()
}

/// `web-1-v2-c3` (made by campaign 3 for v2) → `web-1`; `web-1-v2` → `web-1` when v2 is the
/// release it runs; any other name is its own base.
pub(crate) fn base_name<'a>(name: &'a str, release_slug: &str) -> &'a str {
    let without_campaign = match name.rsplit_once("-c") {
        Some((head, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => name,
    };
    let base =
        without_campaign.strip_suffix(&format!("-{release_slug}")).unwrap_or(without_campaign);
    if base.is_empty() { name } else { base }
}

fn fresh_name(base: &str, slug: &str, used: &mut BTreeSet<Name>) -> Name {
    let mut n: u32 = 1;
    loop {
        let suffix = if n == 1 { String::new() } else { format!("-{n}") };
        let mut stem = format!("{base}-{slug}");
        // Names are ASCII, so byte truncation keeps whole characters.
        stem.truncate(Name::MAX_LEN.saturating_sub(suffix.len()));
        let candidate = format!("{}{suffix}", stem.trim_end_matches('-'));
        if let Ok(name) = Name::parse(&candidate)
            && used.insert(name.clone())
        {
            return name;
        }
        n += 1;
    }
}

pub fn compile(v: &ValidSpec) -> Plan {
    let mut b = Builder::new(v);
    // An environment that requires approvals gets them before anything changes (or anyone is
    // told it started), whether or not the strategy asks for any.
    if v.environment().required_approvals().is_some()
        && !super::validate::wants_approval(v.strategy())
    {
        let context =
            format!("before anything changes (environment {} requires it)", v.environment().name);
        b.pause(Pause::Approval, &context);
    }
    b.notify(NotifyEvent::Started);
    match v.strategy() {
        Strategy::BlueGreen { switch, bake_secs, verify_preview } => {
            blue_green::plan(&mut b, switch, *bake_secs, *verify_preview);
        }
        Strategy::Rolling {
            batch,
            max_unavailable,
            min_healthy,
            drain_timeout_secs,
            bake_secs,
        } => {
            let params = rolling::Params {
                batch: *batch,
                max_unavailable: *max_unavailable,
                min_healthy: *min_healthy,
                drain_timeout_secs: *drain_timeout_secs,
                bake_secs: *bake_secs,
            };
            rolling::plan(&mut b, &params);
        }
        Strategy::Canary { steps, canary_count } => canary::plan(&mut b, steps, *canary_count),
        Strategy::FeatureFlag { steps, .. } => feature_flag::plan(&mut b, steps),
    }
    b.notify(NotifyEvent::Completed);
    b.finish()
}

pub(crate) use rolling::{
    await_drained as rolling_await_drained, drain as rolling_drain, effective_batch,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{BatchSize, CanaryStep, PreviewRoute, RouteMatch, Switch};
    use crate::domain::testkit::{
        blue_green, canary, dns_env, env, flag, plan_for, rolling, spec, w,
    };
    use StepKind as K;

    fn kinds(plan: &Plan) -> Vec<StepKind> {
        plan.steps.iter().map(|s| s.kind).collect()
    }

    fn calls(step: &Step) -> Vec<String> {
        step.calls.iter().map(ToString::to_string).collect()
    }

    fn find(plan: &Plan, kind: StepKind, nth: usize) -> &Step {
        plan.steps.iter().filter(|s| s.kind == kind).nth(nth).expect("step exists")
    }

    struct Case {
        name: &'static str,
        strategy: Strategy,
        targets: usize,
        kinds: Vec<StepKind>,
    }

    #[test]
    fn each_strategy_compiles_to_the_expected_sequence_of_steps() {
        let setw = [K::SetWeight, K::Bake, K::Gate];
        let batch = [
            K::Drain,
            K::WaitDrained,
            K::RemoveFromPool,
            K::ReplaceRelease,
            K::WaitHealthy,
            K::AddToPool,
            K::Bake,
            K::Gate,
        ];
        let tail = [K::Bake, K::RemoveFromPool, K::Decommission];
        let cases = vec![
            Case {
                name: "canary 25/50/100 on 4 targets grows the new set before 100 %",
                strategy: canary(&["25", "50", "100"]),
                targets: 4,
                kinds: [
                    &[K::Provision, K::WaitHealthy, K::AddToPool][..],
                    &setw,
                    &setw,
                    &[K::Provision, K::WaitHealthy, K::AddToPool],
                    &setw,
                    &tail,
                ]
                .concat(),
            },
            Case {
                name: "canary on one target needs no growth",
                strategy: canary(&["50", "100"]),
                targets: 1,
                kinds: [&[K::Provision, K::WaitHealthy, K::AddToPool][..], &setw, &setw, &tail]
                    .concat(),
            },
            Case {
                name: "canary with a single 100 % step",
                strategy: canary(&["100"]),
                targets: 2,
                kinds: [
                    &[
                        K::Provision,
                        K::WaitHealthy,
                        K::AddToPool,
                        K::Provision,
                        K::WaitHealthy,
                        K::AddToPool,
                    ][..],
                    &setw,
                    &tail,
                ]
                .concat(),
            },
            Case {
                name: "rolling 5 targets in batches of 2 ends with a batch of 1",
                strategy: rolling(BatchSize::Count(2), 2, 1),
                targets: 5,
                kinds: [&batch[..], &batch, &batch].concat(),
            },
            Case {
                name: "rolling with a batch larger than the pool is capped",
                strategy: rolling(BatchSize::Count(10), 10, 0),
                targets: 2,
                kinds: [&batch[..], &batch].concat(),
            },
            Case {
                name: "blue-green at once",
                strategy: blue_green(Switch::AtOnce),
                targets: 4,
                kinds: [&[K::Provision, K::WaitHealthy, K::AddToPool][..], &setw, &tail].concat(),
            },
            Case {
                name: "blue-green in two weighted steps on one target",
                strategy: blue_green(Switch::Steps(vec![w("10"), w("100")])),
                targets: 1,
                kinds: [&[K::Provision, K::WaitHealthy, K::AddToPool][..], &setw, &setw, &tail]
                    .concat(),
            },
            Case {
                name: "feature flag",
                strategy: flag(&["10", "100"]),
                targets: 4,
                kinds: [&[K::SetFlag, K::Bake, K::Gate][..], &[K::SetFlag, K::Bake, K::Gate]]
                    .concat(),
            },
        ];
        for case in cases {
            let (_, plan) = plan_for(&spec(case.strategy), &env(case.targets));
            assert_eq!(kinds(&plan), case.kinds, "{}", case.name);
            assert!(plan.steps.iter().enumerate().all(|(i, s)| s.index == i), "{}", case.name);
        }
    }

    #[test]
    fn a_canary_step_shifts_the_stated_share_with_absolute_weights() {
        let (_, plan) = plan_for(&spec(canary(&["25", "100"])), &env(4));
        let step = find(&plan, K::SetWeight, 0);
        assert_eq!(
            step.description,
            "Shift 25 % of web-pool traffic to v2.1.0; 75 % stays on v1.0.0"
        );
        assert_eq!(
            calls(step),
            [
                "router(haproxy-main).set_weight(web-pool, web-1-v2-1-0, 25 %)",
                "router(haproxy-main).set_weight(web-pool, web-1, 18.75 %)",
                "router(haproxy-main).set_weight(web-pool, web-2, 18.75 %)",
                "router(haproxy-main).set_weight(web-pool, web-3, 18.75 %)",
                "router(haproxy-main).set_weight(web-pool, web-4, 18.75 %)",
            ]
        );
        let last = find(&plan, K::SetWeight, 1);
        assert!(calls(last).contains(
            &"router(haproxy-main).set_weight(web-pool, web-4-v2-1-0, 25 %)".to_string()
        ));
        assert!(
            calls(last)
                .contains(&"router(haproxy-main).set_weight(web-pool, web-1, 0 %)".to_string())
        );
        let grow = find(&plan, K::Provision, 1);
        assert_eq!(calls(grow)[0], "provider(local).create(web-2-v2-1-0, v2.1.0, group=zone-b)");
    }

    #[test]
    fn a_rolling_batch_drains_replaces_and_restores_the_original_weight() {
        let (_, plan) = plan_for(&spec(rolling(BatchSize::Count(2), 2, 1)), &env(5));
        let last_drain = find(&plan, K::Drain, 2);
        assert_eq!(
            last_drain.description,
            "Drain web-5 in web-pool: no new connections (batch 3 of 3); 4 of 5 keep serving"
        );
        assert_eq!(calls(last_drain), ["router(haproxy-main).set_state(web-pool, web-5, drain)"]);
        let replace = find(&plan, K::ReplaceRelease, 0);
        assert_eq!(replace.description, "Replace the release on web-1 and web-2 with v2.1.0");
        assert_eq!(
            calls(replace),
            ["provider(local).replace(web-1, v2.1.0)", "provider(local).replace(web-2, v2.1.0)"]
        );
        assert_eq!(
            calls(find(&plan, K::AddToPool, 0))[0],
            "router(haproxy-main).add_member(web-pool, web-1, 20 %)"
        );
        assert_eq!(find(&plan, K::WaitDrained, 0).timeout_secs, Some(30));
    }

    #[test]
    fn a_rolling_batch_is_capped_by_max_unavailable_and_the_plan_says_so() {
        let (_, plan) = plan_for(&spec(rolling(BatchSize::Count(3), 1, 0)), &env(3));
        assert_eq!(plan.steps.iter().filter(|s| s.kind == K::Drain).count(), 3);
        assert_eq!(plan.summary.notes.len(), 1, "{:?}", plan.summary.notes);
        assert!(plan.summary.notes[0].contains("batch of 3 reduced to 1"));
    }

    #[test]
    fn rolling_by_percent_rounds_the_batch_up() {
        let (_, plan) = plan_for(&spec(rolling(BatchSize::Percent(30), 5, 1)), &env(4));
        assert_eq!(find(&plan, K::Drain, 0).calls.len(), 2);
    }

    #[test]
    fn blue_green_with_a_preview_route_waits_for_verification_before_switching() {
        let mut s = spec(Strategy::BlueGreen {
            switch: Switch::AtOnce,
            bake_secs: 60,
            verify_preview: true,
        });
        s.preview_route = Some(PreviewRoute {
            header: Some(RouteMatch { name: "x-preview".into(), value: "1".into() }),
            cookie: None,
        });
        let (_, plan) = plan_for(&s, &env(2));
        assert_eq!(
            kinds(&plan)[..5],
            [K::Provision, K::WaitHealthy, K::AddToPool, K::Approval, K::SetWeight]
        );
        let add = find(&plan, K::AddToPool, 0);
        assert!(
            add.description.ends_with("requests with header x-preview: 1 reach them"),
            "{}",
            add.description
        );
        assert_eq!(
            calls(add).last().map(String::as_str),
            Some(
                "router(haproxy-main).set_preview_route(web-pool, header x-preview: 1, [web-1-v2-1-0, web-2-v2-1-0])"
            )
        );
        assert_eq!(find(&plan, K::Approval, 0).timeout_secs, None);
        assert_eq!(
            find(&plan, K::SetWeight, 0).description,
            "Switch all web-pool traffic to v2.1.0: green 100 %, blue 0 %"
        );
        assert!(
            calls(find(&plan, K::RemoveFromPool, 0))
                .contains(&"router(haproxy-main).clear_preview_route(web-pool)".to_string())
        );
    }

    #[test]
    fn blue_green_on_a_dns_router_switches_the_record() {
        let (_, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &dns_env(2));
        assert_eq!(
            kinds(&plan),
            [
                K::Provision,
                K::WaitHealthy,
                K::SwitchDns,
                K::Bake,
                K::Bake,
                K::Gate,
                K::Bake,
                K::Decommission
            ]
        );
        assert_eq!(
            calls(find(&plan, K::SwitchDns, 0)),
            ["router(pdns).switch_dns(web.example.com, [web-1-v2-1-0, web-2-v2-1-0])"]
        );
    }

    #[test]
    fn a_dns_switch_waits_out_the_old_records_ttl_before_blue_is_destroyed() {
        let (_, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &dns_env(2));
        let switch = find(&plan, K::SwitchDns, 0).index;
        let wait = plan
            .steps
            .iter()
            .find(|s| s.description.starts_with("Wait out the old record's TTL"))
            .expect("a TTL wait");
        let destroy = find(&plan, K::Decommission, 0).index;
        assert!(
            switch < wait.index && wait.index < destroy,
            "{switch} < {} < {destroy}",
            wait.index
        );
        assert_eq!(wait.index, switch + 1, "the bake after it sees all traffic on green");
        assert_eq!(wait.kind, K::Bake);
        assert_eq!(
            wait.description,
            "Wait out the old record's TTL (60 s) so resolvers stop sending to blue (web-1 and web-2)"
        );
        assert_eq!((wait.expected_secs, wait.timeout_secs), (60, Some(60)));
        assert!(wait.calls.is_empty());

        let mut e = dns_env(2);
        pdns_ttl(&mut e, 300);
        let (_, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &e);
        assert_eq!(plan.steps[switch + 1].expected_secs, 300);
        assert!(plan.steps[switch + 1].description.contains("TTL (300 s)"));

        pdns_ttl(&mut e, 0);
        let (_, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &e);
        assert!(
            !plan.steps.iter().any(|s| s.description.contains("TTL")),
            "a zero TTL has nothing to wait out"
        );
    }

    fn pdns_ttl(e: &mut crate::domain::environment::Environment, ttl: u64) {
        for b in &mut e.backends {
            if b.name.as_str() == "pdns" {
                b.settings["ttl"] = serde_json::json!(ttl);
            }
        }
    }

    #[test]
    fn a_downgrade_is_labelled_and_names_new_instances_after_the_old_ones() {
        let mut s = spec(blue_green(Switch::AtOnce));
        s.from_release = "v2.1.0".into();
        s.to_release = "v2.0.9".into();
        let mut e = env(2);
        for t in &mut e.targets {
            t.release = Release::parse("v2.1.0").expect("valid");
            t.name = Name::parse(&format!("{}-v2-1-0", t.name)).expect("valid");
        }
        e.pools[0].targets = e.targets.iter().map(|t| t.name.clone()).collect();
        let (_, plan) = plan_for(&s, &e);
        assert_eq!(plan.summary.direction, Direction::Downgrade);
        assert_eq!(
            calls(find(&plan, K::Provision, 0)),
            [
                "provider(local).create(web-1-v2-0-9, v2.0.9, group=zone-a)",
                "provider(local).create(web-2-v2-0-9, v2.0.9, group=zone-b)"
            ]
        );
        assert_eq!(
            find(&plan, K::Decommission, 0).description,
            "Destroy the blue targets (web-1-v2-1-0 and web-2-v2-1-0) running v2.1.0"
        );
    }

    #[test]
    fn new_instance_names_never_collide_with_existing_targets() {
        let mut e = env(2);
        let mut clash = e.targets[1].clone();
        clash.name = Name::parse("web-1-v2-1-0").expect("valid");
        e.targets.push(clash);
        let (_, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &e);
        assert_eq!(
            calls(find(&plan, K::Provision, 0))[0],
            "provider(local).create(web-1-v2-1-0-2, v2.1.0, group=zone-a)"
        );
    }

    #[test]
    fn instances_carry_their_campaign_and_a_downgrade_traces_names_back_to_their_base() {
        use crate::domain::testkit::valid;
        let up = valid(&spec(blue_green(Switch::AtOnce)), &env(2)).for_campaign(7);
        assert_eq!(
            calls(find(&compile(&up), K::Provision, 0)),
            [
                "provider(local).create(web-1-v2-1-0-c7, v2.1.0, group=zone-a)",
                "provider(local).create(web-2-v2-1-0-c7, v2.1.0, group=zone-b)"
            ]
        );
        // What campaign 7 left: its instances, on v2.1.0, are the pool.
        let mut e = env(2);
        for t in &mut e.targets {
            t.name = Name::parse(&format!("{}-v2-1-0-c7", t.name)).expect("valid");
            t.release = Release::parse("v2.1.0").expect("valid");
        }
        e.pools[0].targets = e.targets.iter().map(|t| t.name.clone()).collect();
        let mut down = spec(blue_green(Switch::AtOnce));
        down.from_release = "v2.1.0".into();
        down.to_release = "v1.0.0".into();
        let down = valid(&down, &e).for_campaign(8);
        assert_eq!(
            calls(find(&compile(&down), K::Provision, 0)),
            [
                "provider(local).create(web-1-v1-0-0-c8, v1.0.0, group=zone-a)",
                "provider(local).create(web-2-v1-0-0-c8, v1.0.0, group=zone-b)"
            ]
        );
        assert_eq!(base_name("web-1-v2-c12", "v2"), "web-1");
        assert_eq!(base_name("web-1", "v2"), "web-1");
        assert_eq!(base_name("web-1-v2", "v2"), "web-1");
        assert_eq!(base_name("c5", "v2"), "c5");
    }

    #[test]
    fn a_feature_flag_plan_sets_absolute_percentages() {
        let (_, plan) = plan_for(&spec(flag(&["10", "100"])), &env(2));
        let step = find(&plan, K::SetFlag, 0);
        assert_eq!(
            step.description,
            "Turn flag new-checkout on for 10 % of requests (v2.1.0 behaviour)"
        );
        assert_eq!(calls(step), ["flags.set(new-checkout, 10 %)"]);
    }

    #[test]
    fn pauses_and_approvals_follow_their_gate_and_wait_for_people() {
        let mut s = spec(Strategy::Canary {
            steps: vec![
                CanaryStep { weight: w("10"), bake_secs: 60, pause: Pause::Manual },
                CanaryStep { weight: w("100"), bake_secs: 60, pause: Pause::Approval },
            ],
            canary_count: 2,
        });
        s.approvals.required = 2;
        let (_, plan) = plan_for(&s, &env(2));
        let k = kinds(&plan);
        assert_eq!(k[3..7], [K::SetWeight, K::Bake, K::Gate, K::Pause]);
        assert_eq!(
            find(&plan, K::Approval, 0).description,
            "Wait for 2 approvals (approver or above) before going beyond 100 %"
        );
        assert_eq!(plan.summary.waits_for_people, 2);
    }

    #[test]
    fn notifications_open_and_close_the_plan() {
        let mut s = spec(canary(&["100"]));
        s.communications.notify = true;
        s.communications.audiences = vec!["customers".into()];
        let (_, plan) = plan_for(&s, &env(1));
        let first = plan.steps.first().expect("steps");
        let last = plan.steps.last().expect("steps");
        assert_eq!(first.description, "Tell customers that web v1.0.0 → v2.1.0 is starting");
        assert_eq!(calls(first), ["notify(started, [customers])"]);
        assert_eq!(last.kind, K::Notify);
    }

    #[test]
    fn gate_steps_describe_the_limits_and_probe_the_new_release() {
        let (_, plan) = plan_for(&spec(canary(&["100"])), &env(1));
        let gate = find(&plan, K::Gate, 0);
        assert_eq!(
            gate.description,
            "Check the health of v2.1.0 at 100 % (step 1 of 1): error rate ≤ 1 %, p99 ≤ 1000 ms, probes ≥ 99 % over 1m (at least 10 samples, fail after 5m)"
        );
        assert_eq!(calls(gate), ["health(probe).probe(web-1-v2-1-0)"]);
        assert_eq!((gate.expected_secs, gate.timeout_secs), (60, Some(300)));
    }

    #[test]
    fn waiting_steps_are_told_apart_from_acting_steps() {
        assert!(
            K::Bake.waits() && K::Gate.waits() && K::Approval.waits() && K::WaitHealthy.waits()
        );
        assert!(!K::SetWeight.waits() && !K::Provision.waits() && !K::Drain.waits());
    }

    #[test]
    fn compiling_twice_gives_byte_identical_json() {
        let s = spec(canary(&["5", "25", "100"]));
        let (_, a) = plan_for(&s, &env(4));
        let (_, b) = plan_for(&s, &env(4));
        let (a, b) =
            (serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
        assert_eq!(a, b);
        let back: Plan = serde_json::from_str(&a).expect("round trip");
        assert_eq!(serde_json::to_string(&back).expect("json"), a);
    }

    #[test]
    fn the_summary_headline_counts_steps_and_time() {
        let (_, plan) = plan_for(&spec(blue_green(Switch::AtOnce)), &env(4));
        assert_eq!(
            plan.summary.headline,
            "blue-green web v1.0.0 → v2.1.0 on web-pool (4 targets): 9 steps, about 18m3s"
        );
    }
}
