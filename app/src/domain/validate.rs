//! Checks a [`CampaignSpec`] against the [`Environment`] it will run in and, if it is sound,
//! returns a [`ValidSpec`] the plan compiler can trust. The browser calls this on every keystroke,
//! so it collects every problem (not just the first), names each by a dotted field path the form
//! can attach it to, and says what would be accepted. It never looks at live state.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::auth::Role;
use super::campaign::{BatchSize, CampaignSpec, GateSpec, Pause, Strategy, Switch};
use super::environment::{BackendConfig, BackendKind, Environment, Pool, Target};
use super::ids::{Name, Release};

pub const MAX_APPROVALS: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// Dotted path into the spec, e.g. `strategy.steps[2].weight`, `window.end`, `pool`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Messages for exactly this field, in the order they were found.
    pub fn errors_for(&self, field: &str) -> Vec<&str> {
        self.0.iter().filter(|e| e.field == field).map(|e| e.message.as_str()).collect()
    }

    /// Messages for this field and everything inside it (`strategy` covers `strategy.steps[0]`).
    pub fn errors_under(&self, prefix: &str) -> Vec<&FieldError> {
        self.0
            .iter()
            .filter(|e| {
                e.field == prefix
                    || e.field
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// A spec that passed [`validate`], with its names parsed and the parts of the environment it uses
/// resolved. It snapshots the environment so a plan can only be compiled against the environment
/// it was checked with. Deliberately not `Deserialize`: the only way to get one is to validate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ValidSpec {
    spec: CampaignSpec,
    name: Name,
    service: Name,
    environment: Environment,
    pool: Pool,
    targets: Vec<Target>,
    from: Release,
    to: Release,
    flag: Option<Name>,
    router: BackendConfig,
    provider: Option<Name>,
    health: Name,
    gates: Vec<GateSpec>,
    campaign: Option<i64>,
}

impl ValidSpec {
    /// The campaign this spec belongs to: the instances its plan creates carry its id in their
    /// names, so no other campaign can ever adopt, reuse or destroy them.
    pub fn for_campaign(mut self, id: i64) -> Self {
        self.campaign = Some(id);
        self
    }
    /// `None` while the spec is an unsaved form.
    pub fn campaign(&self) -> Option<i64> {
        self.campaign
    }
    pub fn spec(&self) -> &CampaignSpec {
        &self.spec
    }
    pub fn name(&self) -> &Name {
        &self.name
    }
    pub fn service(&self) -> &Name {
        &self.service
    }
    pub fn environment(&self) -> &Environment {
        &self.environment
    }
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
    /// The pool's targets in the pool's order; never empty.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }
    pub fn from_release(&self) -> &Release {
        &self.from
    }
    pub fn to_release(&self) -> &Release {
        &self.to
    }
    /// Set for feature-flag campaigns only.
    pub fn flag(&self) -> Option<&Name> {
        self.flag.as_ref()
    }
    pub fn strategy(&self) -> &Strategy {
        &self.spec.strategy
    }
    pub fn router(&self) -> &BackendConfig {
        &self.router
    }
    /// Set for every strategy that touches instances (all but feature flags).
    pub fn provider(&self) -> Option<&Name> {
        self.provider.as_ref()
    }
    pub fn health(&self) -> &Name {
        &self.health
    }
    /// The gates every gate step applies: the spec's, or the default gate when it lists none.
    pub fn gates(&self) -> &[GateSpec] {
        &self.gates
    }
}

pub fn validate(spec: &CampaignSpec, env: &Environment) -> Result<ValidSpec, ValidationErrors> {
    let mut errs = ValidationErrors::default();

    let name = parsed_name(&mut errs, "name", &spec.name);
    let service = parsed_name(&mut errs, "service", &spec.service);
    if let Some(wanted) = parsed_name(&mut errs, "environment", &spec.environment)
        && wanted != env.name
    {
        errs.push(
            "environment",
            format!(
                "the campaign names environment {wanted} but is being checked against {}; \
                 pick {} or switch to the {wanted} environment",
                env.name, env.name
            ),
        );
    }

    let from = parsed_release(&mut errs, "from_release", &spec.from_release);
    let to = parsed_release(&mut errs, "to_release", &spec.to_release);
    if let (Some(from), Some(to)) = (&from, &to)
        && from == to
    {
        errs.push(
            "to_release",
            format!(
                "to_release is the same as from_release ({from}); choose the release you want \
                 the pool to run after the campaign"
            ),
        );
    }

    let (pool, targets, router) = check_pool(&mut errs, spec, env);
    let is_flag = matches!(spec.strategy, Strategy::FeatureFlag { .. });

    if let Some(from) = &from
        && !is_flag
    {
        let others: Vec<String> = targets
            .iter()
            .filter(|t| &t.release != from)
            .map(|t| format!("{} runs {}", t.name, t.release))
            .collect();
        if !others.is_empty() {
            errs.push(
                "from_release",
                format!(
                    "from_release is {from} but {}; set from_release to what the pool runs now, \
                     so a rollback returns it to that release",
                    others.join(", ")
                ),
            );
        }
    }

    let provider = env.first_backend(BackendKind::Provider).map(|b| b.name.clone());
    if provider.is_none() && !is_flag {
        errs.push(
            "environment",
            format!(
                "environment {} has no provider backend; add one (e.g. local-process, script or \
                 webhook) so instances can be created and replaced",
                env.name
            ),
        );
    }
    let health = env.first_backend(BackendKind::HealthSource).map(|b| b.name.clone());
    if health.is_none() {
        errs.push(
            "gates",
            format!(
                "environment {} has no health-source backend, so no gate can be judged; add one \
                 (e.g. http-probe or prometheus)",
                env.name
            ),
        );
    }

    check_window(&mut errs, spec);
    check_durations(&mut errs, spec, router.as_ref());
    let gates = if spec.gates.is_empty() { vec![GateSpec::default()] } else { spec.gates.clone() };
    for (i, gate) in spec.gates.iter().enumerate() {
        check_gate(&mut errs, &format!("gates[{i}]"), gate);
    }
    check_comms(&mut errs, spec, env);
    check_approvals(&mut errs, spec, env);
    check_preview(&mut errs, spec);
    let flag = check_strategy(&mut errs, spec, targets.len(), router.as_ref());
    if let Some(r) = router.as_ref().filter(|r| r.driver == "haproxy") {
        check_haproxy_resolution(&mut errs, spec, targets.len(), r);
    }

    if !errs.is_empty() {
        return Err(errs);
    }
    // Every None below was reported above, so errs would not have been empty.
    match (name, service, pool, router, from, to, health) {
        (
            Some(name),
            Some(service),
            Some(pool),
            Some(router),
            Some(from),
            Some(to),
            Some(health),
        ) => Ok(ValidSpec {
            spec: spec.clone(),
            name,
            service,
            environment: env.clone(),
            pool,
            targets,
            from,
            to,
            flag,
            router,
            provider,
            health,
            gates,
            campaign: None,
        }),
        _ => {
            errs.push("", "the campaign could not be checked; fix the fields above");
            Err(errs)
        }
    }
}

fn parsed_name(errs: &mut ValidationErrors, field: &str, raw: &str) -> Option<Name> {
    Name::parse(raw).map_err(|e| errs.push(field, e.to_string())).ok()
}

fn parsed_release(errs: &mut ValidationErrors, field: &str, raw: &str) -> Option<Release> {
    Release::parse(raw).map_err(|e| errs.push(field, e.to_string())).ok()
}

fn check_pool(
    errs: &mut ValidationErrors,
    spec: &CampaignSpec,
    env: &Environment,
) -> (Option<Pool>, Vec<Target>, Option<BackendConfig>) {
    let Some(pool_name) = parsed_name(errs, "pool", &spec.pool) else {
        return (None, Vec::new(), None);
    };
    let Some(pool) = env.pool(&pool_name) else {
        let known: Vec<String> = env.pools.iter().map(|p| p.name.to_string()).collect();
        errs.push(
            "pool",
            format!(
                "environment {} has no pool named {pool_name}; choose one of: {}",
                env.name,
                if known.is_empty() { "(none defined)".to_string() } else { known.join(", ") }
            ),
        );
        return (None, Vec::new(), None);
    };
    if pool.targets.is_empty() {
        errs.push(
            "pool",
            format!("pool {pool_name} has no targets; add at least one target to the pool"),
        );
    }
    for t in &pool.targets {
        if env.target(t).is_none() {
            errs.push(
                "pool",
                format!(
                    "pool {pool_name} lists target {t}, which environment {} does not define; \
                     define it or remove it from the pool",
                    env.name
                ),
            );
        }
    }
    let router = match env.backend(&pool.router) {
        Some(b) if b.kind == BackendKind::Router => Some(b.clone()),
        Some(b) => {
            errs.push(
                "pool",
                format!(
                    "pool {pool_name} routes through backend {}, which is a {} not a router; \
                     point the pool at a router backend",
                    b.name,
                    b.kind.label()
                ),
            );
            None
        }
        None => {
            errs.push(
                "pool",
                format!(
                    "pool {pool_name} routes through backend {}, which environment {} does not \
                     define; add a router backend named {} or fix the pool",
                    pool.router, env.name, pool.router
                ),
            );
            None
        }
    };
    let targets = env.pool_targets(pool).into_iter().cloned().collect();
    (Some(pool.clone()), targets, router)
}

fn check_window(errs: &mut ValidationErrors, spec: &CampaignSpec) {
    use super::window::WindowTime;
    // Two instants compare without a zone, so an unknown zone does not hide a reversed window.
    let bounds = match spec.window.resolve() {
        Ok(w) => Some((w.start, w.end)),
        Err(problems) => {
            for (field, message) in problems {
                errs.push(field, message);
            }
            match (spec.window.start, spec.window.end) {
                (WindowTime::At(s), WindowTime::At(e)) => Some((s.to_utc(), e.to_utc())),
                _ => None,
            }
        }
    };
    if let Some((start, end)) = bounds
        && end <= start
    {
        errs.push(
            "window.end",
            format!(
                "the window ends at {} which is not after its start {}; the end must be later \
                 than the start",
                end.format("%Y-%m-%d %H:%M UTC"),
                start.format("%Y-%m-%d %H:%M UTC")
            ),
        );
    }
    for (i, c) in spec.window.components.iter().enumerate() {
        if c.trim().is_empty() || c.len() > 64 {
            errs.push(
                format!("window.components[{i}]"),
                "a component is a short non-empty name, e.g. api or checkout",
            );
        }
    }
    if spec.window.message.chars().count() > 2000 {
        errs.push("window.message", "keep the public message under 2000 characters");
    }
}

/// The longest a bake, a hold, a gate deadline or a pause-free wait may be: a week.
pub const MAX_WAIT_SECS: u64 = 7 * 24 * 3600;
/// The longest a drain, a gate window or a DNS TTL may be: a day.
pub const MAX_SHORT_SECS: u64 = 24 * 3600;

/// Every duration has an upper bound, so no timer, deadline or instant arithmetic can overflow
/// and a typo (`bake_secs = 3000000`) is caught before it stalls a campaign for a month.
fn check_durations(
    errs: &mut ValidationErrors,
    spec: &CampaignSpec,
    router: Option<&BackendConfig>,
) {
    let mut check = |field: String, value: u64, max: u64, what: &str| {
        if value > max {
            errs.push(
                field,
                format!(
                    "{value} s is too long for {what}; use at most {max} s ({})",
                    super::ids::Secs(max)
                ),
            );
        }
    };
    match &spec.strategy {
        Strategy::BlueGreen { bake_secs, .. } => {
            check("strategy.bake_secs".into(), *bake_secs, MAX_WAIT_SECS, "a bake");
        }
        Strategy::Rolling { bake_secs, drain_timeout_secs, .. } => {
            check("strategy.bake_secs".into(), *bake_secs, MAX_WAIT_SECS, "a bake");
            check(
                "strategy.drain_timeout_secs".into(),
                *drain_timeout_secs,
                MAX_SHORT_SECS,
                "a drain",
            );
        }
        Strategy::Canary { steps, .. } => {
            for (i, st) in steps.iter().enumerate() {
                check(
                    format!("strategy.steps[{i}].bake_secs"),
                    st.bake_secs,
                    MAX_WAIT_SECS,
                    "a bake",
                );
            }
        }
        Strategy::FeatureFlag { steps, .. } => {
            for (i, st) in steps.iter().enumerate() {
                check(
                    format!("strategy.steps[{i}].bake_secs"),
                    st.bake_secs,
                    MAX_WAIT_SECS,
                    "a bake",
                );
            }
        }
    }
    check("rollback.hold_secs".into(), spec.rollback.hold_secs, MAX_WAIT_SECS, "the hold");
    check(
        "rollback.watch_secs".into(),
        spec.rollback.watch_secs,
        MAX_SHORT_SECS,
        "watching after success",
    );
    for (i, g) in spec.gates.iter().enumerate() {
        check(format!("gates[{i}].window_secs"), g.window_secs, MAX_SHORT_SECS, "a gate window");
        check(
            format!("gates[{i}].deadline_secs"),
            g.deadline_secs,
            MAX_WAIT_SECS,
            "a gate deadline",
        );
    }
    if let Some(r) = router.filter(|r| r.is_dns_router()) {
        check("pool".into(), r.dns_ttl(), MAX_SHORT_SECS, &format!("the TTL of router {}", r.name));
    }
}

fn check_fraction(errs: &mut ValidationErrors, field: String, value: f64) {
    if !(0.0..=1.0).contains(&value) {
        errs.push(
            field,
            format!("{value} is not a fraction; use a number from 0 to 1 (0.01 means 1 %)"),
        );
    }
}

/// The problems of one gate on its own (a replay checks a gate outside any campaign), each
/// field named under `at`.
pub fn check_gate_spec(at: &str, g: &GateSpec) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    check_gate(&mut errs, at, g);
    errs
}

fn check_gate(errs: &mut ValidationErrors, at: &str, g: &GateSpec) {
    if let Some(c) = &g.compare {
        if !(0.5..=0.999).contains(&c.confidence) {
            errs.push(
                format!("{at}.compare.confidence"),
                "use a confidence from 0.5 to 0.999, e.g. 0.95",
            );
        }
        if c.min_points == 0 || c.min_points > 10_000 {
            errs.push(
                format!("{at}.compare.min_points"),
                "use 1 to 10000 data points per side; a comparison never passes on none",
            );
        }
        for (field, v) in
            [("latency_tolerance", c.latency_tolerance), ("error_tolerance", c.error_tolerance)]
        {
            if !(0.0..=10.0).contains(&v) {
                errs.push(format!("{at}.compare.{field}"), "use a fraction from 0 (none) up to 10");
            }
        }
        if !(0.0..=100.0).contains(&c.pass_score) {
            errs.push(format!("{at}.compare.pass_score"), "a score is 0 to 100");
        }
        if !(0.0..=100.0).contains(&c.marginal_score) || c.marginal_score > c.pass_score {
            errs.push(
                format!("{at}.compare.marginal_score"),
                "a score from 0 up to pass_score: below it the comparison fails",
            );
        }
    }
    check_fraction(errs, format!("{at}.max_error_rate"), g.max_error_rate);
    check_fraction(errs, format!("{at}.min_probe_success"), g.min_probe_success);
    if g.max_p99_ms == 0 {
        errs.push(
            format!("{at}.max_p99_ms"),
            "a p99 limit of 0 ms can never pass; use at least 1 ms",
        );
    }
    if g.window_secs == 0 {
        errs.push(format!("{at}.window_secs"), "the window must be at least 1 second long");
    }
    if g.min_samples == 0 {
        errs.push(
            format!("{at}.min_samples"),
            "at least 1 sample is needed; a gate never passes on no data",
        );
    }
    if g.deadline_secs < g.window_secs {
        errs.push(
            format!("{at}.deadline_secs"),
            format!(
                "the deadline ({}s) is shorter than the window ({}s), so the window can never fill; \
                 use a deadline of at least {}s",
                g.deadline_secs, g.window_secs, g.window_secs
            ),
        );
    }
    if g.consecutive_failures == 0 {
        errs.push(
            format!("{at}.consecutive_failures"),
            "use at least 1: the number of failing evaluations in a row that fail the gate",
        );
    }
}

fn check_comms(errs: &mut ValidationErrors, spec: &CampaignSpec, env: &Environment) {
    let c = &spec.communications;
    for (field, message) in super::notice::check(&c.reminders, &c.templates) {
        errs.push(field, message);
    }
    if !c.notify {
        return;
    }
    if env.first_backend(BackendKind::Channel).is_none() {
        errs.push(
            "communications.notify",
            format!(
                "environment {} has no channel backend to send notices through; add one (email, \
                 webhook, status page) or turn notifications off",
                env.name
            ),
        );
    }
    if c.audiences.iter().all(|a| a.trim().is_empty()) {
        errs.push(
            "communications.audiences",
            "notifications are on but no audience is listed; name at least one (e.g. customers)",
        );
    }
}

/// Whether the strategy itself has an approval step.
pub(crate) fn wants_approval(strategy: &Strategy) -> bool {
    match strategy {
        Strategy::BlueGreen { verify_preview, .. } => *verify_preview,
        Strategy::Rolling { .. } => false,
        Strategy::Canary { steps, .. } => steps.iter().any(|s| s.pause == Pause::Approval),
        Strategy::FeatureFlag { steps, .. } => steps.iter().any(|s| s.pause == Pause::Approval),
    }
}

fn check_approvals(errs: &mut ValidationErrors, spec: &CampaignSpec, env: &Environment) {
    let a = &spec.approvals;
    // The environment's floor: a spec may ask for more approvals, or a higher role, not less.
    if let Some(floor) = env.required_approvals() {
        if a.required < floor.required {
            errs.push(
                "approvals.required",
                format!(
                    "environment {} requires at least {} approval{} before a campaign changes anything; ask for {} or more",
                    env.name,
                    floor.required,
                    if floor.required == 1 { "" } else { "s" },
                    floor.required
                ),
            );
        }
        if a.role < floor.role {
            errs.push(
                "approvals.role",
                format!(
                    "environment {} requires approvals by an {} or above; use {}",
                    env.name, floor.role, floor.role
                ),
            );
        }
    }
    if a.required > MAX_APPROVALS {
        errs.push(
            "approvals.required",
            format!("{} approvals is too many; use 0 to {MAX_APPROVALS}", a.required),
        );
    }
    if a.required == 0 && wants_approval(&spec.strategy) {
        errs.push(
            "approvals.required",
            "the strategy has an approval step, so at least 1 approval is required; use 1 to 5",
        );
    }
    if !matches!(a.role, Role::Approver | Role::Admin) {
        errs.push(
            "approvals.role",
            format!("a {} cannot approve campaigns; use approver or admin", a.role),
        );
    }
}

fn check_preview(errs: &mut ValidationErrors, spec: &CampaignSpec) {
    let Some(p) = &spec.preview_route else { return };
    if p.header.is_none() && p.cookie.is_none() {
        errs.push(
            "preview_route",
            "a preview route needs a header or a cookie to match; add one or remove the route",
        );
    }
    for (field, m) in [("preview_route.header", &p.header), ("preview_route.cookie", &p.cookie)] {
        if let Some(m) = m
            && (m.name.trim().is_empty() || m.value.trim().is_empty())
        {
            errs.push(field, "both a name and a value are needed, e.g. x-preview: 1");
        }
    }
}

/// Checks that a list of shares (basis points) strictly rises within (0, 100 %] and ends at 100 %.
fn check_steps(
    errs: &mut ValidationErrors,
    list: &str,
    item: impl Fn(usize) -> String,
    bps: &[u32],
) {
    let show = |bp: u32| {
        super::ids::Weight::from_basis_points(bp).map(|w| w.to_string()).unwrap_or_default()
    };
    if bps.is_empty() {
        errs.push(list, "add at least one step; the last one must be 100 %");
        return;
    }
    for (i, &bp) in bps.iter().enumerate() {
        if bp == 0 {
            errs.push(
                item(i),
                "a step of 0 % moves nothing to the new release; use a value above 0 %, up to 100 %",
            );
        } else if let Some(&prev) = i.checked_sub(1).and_then(|p| bps.get(p))
            && bp <= prev
        {
            errs.push(
                item(i),
                format!(
                    "steps must strictly increase: {} after {} — each step must be larger than \
                     the one before, up to 100 %",
                    show(bp),
                    show(prev)
                ),
            );
        }
    }
    if let Some(&last) = bps.last()
        && last != 10_000
    {
        errs.push(
            item(bps.len() - 1),
            format!(
                "the last step is {}; the rollout must end at 100 % — add a final 100 % step",
                show(last)
            ),
        );
    }
}

/// HAProxy weighs members 0–256, so a member's share is kept to the nearest 1/256 of the pool.
/// A step whose weights that cannot represent (a member that should take traffic rounds to 0,
/// or the new release's share lands more than a point off) is refused, naming the step.
fn check_haproxy_resolution(
    errs: &mut ValidationErrors,
    spec: &CampaignSpec,
    pool_size: usize,
    router: &BackendConfig,
) {
    use super::ids::Weight;
    let to_hw = |bp: u32| (u64::from(bp) * 256 + 5_000) / 10_000;
    let steps: Vec<(String, u32, usize)> = match &spec.strategy {
        Strategy::Canary { steps, canary_count } => steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let bp = s.weight.basis_points();
                let n = if bp == 10_000 { pool_size } else { *canary_count as usize };
                (format!("strategy.steps[{i}].weight"), bp, n.max(1))
            })
            .collect(),
        Strategy::BlueGreen { switch: Switch::Steps(ws), .. } => ws
            .iter()
            .enumerate()
            .map(|(i, w)| {
                (format!("strategy.switch.steps[{i}]"), w.basis_points(), pool_size.max(1))
            })
            .collect(),
        _ => Vec::new(),
    };
    for (field, bp, n_new) in steps {
        let (Ok(new_total), Ok(old_total)) = (
            Weight::from_basis_points(bp),
            Weight::from_basis_points(10_000_u32.saturating_sub(bp)),
        ) else {
            continue;
        };
        let new = new_total.split_even(n_new);
        let old = old_total.split_even(pool_size.max(1));
        let rounds_to_zero = new
            .iter()
            .chain(old.iter())
            .any(|w| w.basis_points() > 0 && to_hw(w.basis_points()) == 0);
        let hw_new: u64 = new.iter().map(|w| to_hw(w.basis_points())).sum();
        let hw_all: u64 = hw_new + old.iter().map(|w| to_hw(w.basis_points())).sum::<u64>();
        let realized = if hw_all == 0 { 0.0 } else { hw_new as f64 * 10_000.0 / hw_all as f64 };
        if rounds_to_zero || (realized - f64::from(bp)).abs() > 100.0 {
            errs.push(
                field,
                format!(
                    "router {} is HAProxy, whose weights (0–256 a member) would give the new release \
                     {:.2} % instead of {}; use a share HAProxy can represent (steps of about 0.4 % \
                     a member)",
                    router.name,
                    realized / 100.0,
                    new_total
                ),
            );
        }
    }
}

fn check_strategy(
    errs: &mut ValidationErrors,
    spec: &CampaignSpec,
    pool_size: usize,
    router: Option<&BackendConfig>,
) -> Option<Name> {
    let dns = router.filter(|r| r.is_dns_router());
    let needs_lb = |errs: &mut ValidationErrors, field: &str, what: &str| {
        if let Some(r) = dns {
            errs.push(
                field,
                format!(
                    "{what} needs a load-balancer router, but this pool's router {} ({}) can only \
                     swap a DNS record; use blue-green with switch at_once, or a haproxy/nginx pool",
                    r.name, r.driver
                ),
            );
        }
    };
    match &spec.strategy {
        Strategy::BlueGreen { switch, verify_preview, .. } => {
            if let Switch::Steps(ws) = switch {
                let bps: Vec<u32> = ws.iter().map(|w| w.basis_points()).collect();
                check_steps(
                    errs,
                    "strategy.switch.steps",
                    |i| format!("strategy.switch.steps[{i}]"),
                    &bps,
                );
                needs_lb(errs, "strategy.switch", "a weighted switch");
            }
            if *verify_preview {
                if spec.preview_route.is_none() {
                    errs.push(
                        "strategy.verify_preview",
                        "verifying through the preview route needs a preview_route (a header or \
                         cookie that reaches the green set); add one or turn verification off",
                    );
                }
                needs_lb(errs, "strategy.verify_preview", "a preview route");
            }
            None
        }
        Strategy::Rolling { batch, max_unavailable, min_healthy, .. } => {
            match batch {
                BatchSize::Count(0) => errs
                    .push("strategy.batch", "a batch of 0 targets never finishes; use at least 1"),
                BatchSize::Percent(p) if *p == 0 || *p > 100 => errs.push(
                    "strategy.batch",
                    format!("{p} % is not a batch size; use 1 to 100 % of the pool"),
                ),
                _ => {}
            }
            if *max_unavailable == 0 {
                errs.push(
                    "strategy.max_unavailable",
                    "with 0 targets allowed out of service no batch can start; use at least 1",
                );
            }
            if pool_size == 1 {
                errs.push(
                    "strategy",
                    "rolling replaces targets in place, and this pool has only 1, so traffic would \
                     stop; use blue-green or canary, which add new instances first",
                );
            } else if pool_size > 0 && u64::from(*min_healthy) >= pool_size as u64 {
                errs.push(
                    "strategy.min_healthy",
                    format!(
                        "min_healthy is {min_healthy} but the pool has {pool_size} targets, so no \
                         target could ever be taken out; use 0 to {}",
                        pool_size - 1
                    ),
                );
            }
            needs_lb(errs, "strategy", "rolling");
            None
        }
        Strategy::Canary { steps, canary_count } => {
            let bps: Vec<u32> = steps.iter().map(|s| s.weight.basis_points()).collect();
            check_steps(errs, "strategy.steps", |i| format!("strategy.steps[{i}].weight"), &bps);
            if *canary_count == 0 || (pool_size > 0 && u64::from(*canary_count) > pool_size as u64)
            {
                errs.push(
                    "strategy.canary_count",
                    format!(
                        "{canary_count} canary instances for a pool of {pool_size}; use 1 to \
                         {pool_size} (the rest of the new set is added before the 100 % step)"
                    ),
                );
            }
            needs_lb(errs, "strategy", "canary");
            None
        }
        Strategy::FeatureFlag { flag, steps } => {
            let bps: Vec<u32> = steps.iter().map(|s| s.percent.basis_points()).collect();
            check_steps(errs, "strategy.steps", |i| format!("strategy.steps[{i}].percent"), &bps);
            parsed_name(errs, "strategy.flag", flag)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{CanaryStep, PreviewRoute};
    use crate::domain::testkit::{
        at, blue_green, canary, dns_env, env, flag, name, rolling, spec, w,
    };

    #[test]
    fn a_canary_share_haproxy_cannot_weigh_is_refused_naming_its_step() {
        let mut s = spec(canary(&["0.05", "1", "100"]));
        let mut e = env(4);
        e.backends[0].driver = "haproxy".into();
        let errs = validate(&s, &e).expect_err("0.05 % rounds to no HAProxy weight");
        let m = errs.errors_for("strategy.steps[0].weight");
        assert!(m.iter().any(|m| m.contains("HAProxy")), "{errs}");
        assert!(errs.errors_for("strategy.steps[1].weight").is_empty(), "1 % is representable");
        s.strategy = canary(&["1", "100"]);
        assert!(validate(&s, &e).is_ok());
    }

    #[test]
    fn every_duration_is_bounded_and_a_huge_one_names_its_field() {
        let mut s = spec(rolling(crate::domain::campaign::BatchSize::Count(1), 1, 0));
        if let Strategy::Rolling { drain_timeout_secs, bake_secs, .. } = &mut s.strategy {
            *drain_timeout_secs = u64::MAX;
            *bake_secs = u64::MAX / 2;
        }
        s.rollback.hold_secs = u64::MAX;
        s.gates =
            vec![GateSpec { window_secs: u64::MAX, deadline_secs: u64::MAX, ..Default::default() }];
        let errs = validate(&s, &env(3)).expect_err("bounded");
        for field in [
            "strategy.drain_timeout_secs",
            "strategy.bake_secs",
            "rollback.hold_secs",
            "gates[0].window_secs",
            "gates[0].deadline_secs",
        ] {
            let m = errs.errors_for(field);
            assert!(m.iter().any(|m| m.contains("too long")), "{field}: {errs}");
        }
        let mut c = spec(canary(&["100"]));
        if let Strategy::Canary { steps, .. } = &mut c.strategy {
            steps[0].bake_secs = MAX_WAIT_SECS + 1;
        }
        assert!(
            !validate(&c, &env(2))
                .expect_err("bounded")
                .errors_for("strategy.steps[0].bake_secs")
                .is_empty()
        );
        if let Strategy::Canary { steps, .. } = &mut c.strategy {
            steps[0].bake_secs = MAX_WAIT_SECS;
        }
        assert!(validate(&c, &env(2)).is_ok(), "a week is allowed");
    }

    #[test]
    fn an_environment_approval_floor_cannot_be_lowered_by_a_spec_and_is_planned_first() {
        use crate::domain::auth::Role;
        use crate::domain::campaign::{ApprovalPolicy, BatchSize};
        use crate::domain::plan::{StepKind, compile};
        let mut e = env(4);
        e.approvals = Some(ApprovalPolicy { required: 2, role: Role::Admin });
        let mut s = spec(rolling(BatchSize::Count(1), 1, 3));
        let errs = validate(&s, &e).expect_err("one approval by an approver is too little");
        assert!(
            errs.0
                .iter()
                .any(|x| x.field == "approvals.required" && x.message.contains("at least 2")),
            "{errs:?}"
        );
        assert!(
            errs.0.iter().any(|x| x.field == "approvals.role" && x.message.contains("admin")),
            "{errs:?}"
        );
        s.approvals = ApprovalPolicy { required: 3, role: Role::Admin };
        let plan = compile(&validate(&s, &e).expect("more is fine"));
        // Rolling has no approval step of its own: the plan waits for one before anything.
        assert_eq!(plan.steps[0].kind, StepKind::Approval, "{:#?}", plan.steps);
        assert!(plan.steps[0].description.contains("requires it"), "{}", plan.steps[0].description);
        // Without a floor nothing is added.
        let plain = compile(&validate(&s, &env(4)).expect("valid"));
        assert!(!plain.steps.iter().any(|st| st.kind == StepKind::Approval));
    }

    type Edit = fn(&mut CampaignSpec, &mut Environment);

    /// Each row breaks one rule; the error must land on `field` and mention `hint`.
    const RULES: &[(&str, Edit, &str, &str)] = &[
        (
            "an uppercase campaign name",
            |s, _| s.name = "Web Upgrade".into(),
            "name",
            "only lowercase",
        ),
        ("an empty service", |s, _| s.service = String::new(), "service", "must not be empty"),
        (
            "another environment",
            |s, _| s.environment = "staging".into(),
            "environment",
            "checked against production",
        ),
        (
            "the same release twice",
            |s, _| s.to_release = s.from_release.clone(),
            "to_release",
            "same as from_release",
        ),
        (
            "a release with a space",
            |s, _| s.from_release = "v1 .0".into(),
            "from_release",
            "whitespace",
        ),
        ("an unknown pool", |s, _| s.pool = "api-pool".into(), "pool", "choose one of: web-pool"),
        ("an empty pool", |_, e| e.pools[0].targets.clear(), "pool", "has no targets"),
        (
            "a pool listing an undefined target",
            |_, e| e.pools[0].targets.push(name("web-9")),
            "pool",
            "web-9",
        ),
        (
            "a pool whose router is missing",
            |_, e| e.backends.retain(|b| b.kind != BackendKind::Router),
            "pool",
            "add a router backend named haproxy-main",
        ),
        (
            "a pool whose router is a provider",
            |_, e| e.pools[0].router = name("local"),
            "pool",
            "not a router",
        ),
        (
            "targets on another release",
            |_, e| e.targets[1].release = Release::parse("v0.9.0").expect("valid"),
            "from_release",
            "web-2 runs v0.9.0",
        ),
        (
            "no provider backend",
            |_, e| e.backends.retain(|b| b.kind != BackendKind::Provider),
            "environment",
            "no provider backend",
        ),
        (
            "no health source",
            |_, e| e.backends.retain(|b| b.kind != BackendKind::HealthSource),
            "gates",
            "no health-source backend",
        ),
        (
            "a window that ends before it starts",
            |s, _| s.window.end = at("2025-06-01T21:00:00Z").into(),
            "window.end",
            "must be later than the start",
        ),
        (
            "a window of zero length",
            |s, _| s.window.end = s.window.start,
            "window.end",
            "not after its start",
        ),
        (
            "a misspelt time zone",
            |s, _| s.window.timezone = "Europe/Pari".into(),
            "window.timezone",
            "IANA name",
        ),
        (
            "an error rate above 1",
            |s, _| s.gates = vec![GateSpec { max_error_rate: 1.5, ..GateSpec::default() }],
            "gates[0].max_error_rate",
            "from 0 to 1",
        ),
        (
            "a NaN probe success",
            |s, _| {
                s.gates = vec![
                    GateSpec::default(),
                    GateSpec { min_probe_success: f64::NAN, ..GateSpec::default() },
                ]
            },
            "gates[1].min_probe_success",
            "from 0 to 1",
        ),
        (
            "a deadline shorter than the window",
            |s, _| s.gates = vec![GateSpec { deadline_secs: 30, ..GateSpec::default() }],
            "gates[0].deadline_secs",
            "at least 60s",
        ),
        (
            "zero minimum samples",
            |s, _| s.gates = vec![GateSpec { min_samples: 0, ..GateSpec::default() }],
            "gates[0].min_samples",
            "never passes on no data",
        ),
        (
            "zero consecutive failures",
            |s, _| s.gates = vec![GateSpec { consecutive_failures: 0, ..GateSpec::default() }],
            "gates[0].consecutive_failures",
            "at least 1",
        ),
        (
            "notifications without a channel",
            |s, e| {
                s.communications.notify = true;
                s.communications.audiences = vec!["customers".into()];
                e.backends.retain(|b| b.kind != BackendKind::Channel)
            },
            "communications.notify",
            "no channel backend",
        ),
        (
            "a reminder offset that is not a duration",
            |s, _| {
                s.communications.reminders = vec![
                    crate::domain::notice::Offset::Text("24h".into()),
                    crate::domain::notice::Offset::Text("an hour".into()),
                ]
            },
            "communications.reminders[1]",
            "like 24h, 1h, 30m or 90s",
        ),
        (
            "notifications without an audience",
            |s, _| s.communications.notify = true,
            "communications.audiences",
            "name at least one",
        ),
        ("six approvals", |s, _| s.approvals.required = 6, "approvals.required", "use 0 to 5"),
        (
            "an operator as approving role",
            |s, _| s.approvals.role = Role::Operator,
            "approvals.role",
            "use approver or admin",
        ),
        (
            "an approval step with zero approvals",
            |s, _| {
                s.approvals.required = 0;
                s.strategy = Strategy::Canary {
                    steps: vec![CanaryStep {
                        weight: w("100"),
                        bake_secs: 0,
                        pause: Pause::Approval,
                    }],
                    canary_count: 1,
                }
            },
            "approvals.required",
            "at least 1 approval",
        ),
        (
            "an empty preview route",
            |s, _| s.preview_route = Some(PreviewRoute::default()),
            "preview_route",
            "header or a cookie",
        ),
        (
            "canary weights that go down",
            |s, _| s.strategy = canary(&["10", "25", "5", "100"]),
            "strategy.steps[2].weight",
            "5 % after 25 %",
        ),
        (
            "a canary step of 0 %",
            |s, _| s.strategy = canary(&["0", "100"]),
            "strategy.steps[0].weight",
            "above 0 %",
        ),
        (
            "a canary that stops short of 100 %",
            |s, _| s.strategy = canary(&["10", "50"]),
            "strategy.steps[1].weight",
            "must end at 100 %",
        ),
        (
            "a canary without steps",
            |s, _| s.strategy = canary(&[]),
            "strategy.steps",
            "at least one step",
        ),
        (
            "more canaries than targets",
            |s, _| {
                s.strategy = Strategy::Canary {
                    steps: vec![CanaryStep { weight: w("100"), bake_secs: 0, pause: Pause::None }],
                    canary_count: 5,
                }
            },
            "strategy.canary_count",
            "use 1 to 4",
        ),
        (
            "a rolling batch of 0",
            |s, _| s.strategy = rolling(BatchSize::Count(0), 1, 1),
            "strategy.batch",
            "at least 1",
        ),
        (
            "a rolling batch of 0 %",
            |s, _| s.strategy = rolling(BatchSize::Percent(0), 1, 1),
            "strategy.batch",
            "1 to 100 %",
        ),
        (
            "a rolling batch of 150 %",
            |s, _| s.strategy = rolling(BatchSize::Percent(150), 1, 1),
            "strategy.batch",
            "1 to 100 %",
        ),
        (
            "max unavailable of 0",
            |s, _| s.strategy = rolling(BatchSize::Count(1), 0, 1),
            "strategy.max_unavailable",
            "at least 1",
        ),
        (
            "min healthy as large as the pool",
            |s, _| s.strategy = rolling(BatchSize::Count(1), 1, 4),
            "strategy.min_healthy",
            "use 0 to 3",
        ),
        (
            "rolling a single target",
            |s, e| {
                s.strategy = rolling(BatchSize::Count(1), 1, 0);
                e.pools[0].targets.truncate(1)
            },
            "strategy",
            "use blue-green or canary",
        ),
        (
            "blue-green steps that stop at 50 %",
            |s, _| s.strategy = blue_green(Switch::Steps(vec![w("10"), w("50")])),
            "strategy.switch.steps[1]",
            "must end at 100 %",
        ),
        (
            "preview verification without a route",
            |s, _| {
                s.strategy = Strategy::BlueGreen {
                    switch: Switch::AtOnce,
                    bake_secs: 0,
                    verify_preview: true,
                }
            },
            "strategy.verify_preview",
            "needs a preview_route",
        ),
        (
            "a flag name with underscores",
            |s, _| {
                s.strategy = Strategy::FeatureFlag { flag: "new_checkout".into(), steps: vec![] }
            },
            "strategy.flag",
            "only lowercase",
        ),
        (
            "flag percentages that go down",
            |s, _| s.strategy = flag(&["50", "20", "100"]),
            "strategy.steps[1].percent",
            "20 % after 50 %",
        ),
    ];

    #[test]
    fn every_rule_reports_its_field_and_what_would_be_valid() {
        for (case, edit, field, hint) in RULES {
            let mut s = spec(canary(&["25", "100"]));
            let mut e = env(4);
            edit(&mut s, &mut e);
            let errs = validate(&s, &e).expect_err(case);
            let messages = errs.errors_for(field);
            assert!(
                messages.iter().any(|m| m.contains(hint)),
                "{case}: expected an error on {field} mentioning {hint:?}, got {errs}"
            );
        }
    }

    #[test]
    fn a_sound_spec_validates_and_gets_the_default_gate() {
        let v = validate(&spec(canary(&["25", "100"])), &env(4)).expect("valid");
        assert_eq!(v.gates(), [GateSpec::default()]);
        assert_eq!(v.provider().map(Name::as_str), Some("local"));
        assert_eq!(v.router().name.as_str(), "haproxy-main");
        assert_eq!(v.targets().len(), 4);
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let mut s = spec(canary(&["50", "25", "100"]));
        s.name = "Bad Name".into();
        s.window.timezone = "Mars/Olympus".into();
        let errs = validate(&s, &env(4)).expect_err("three problems");
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "window.timezone", "strategy.steps[1].weight"], "{errs}");
    }

    #[test]
    fn errors_under_a_prefix_include_nested_fields_only() {
        let mut s = spec(canary(&["50", "25"]));
        s.service = String::new();
        let errs = validate(&s, &env(4)).expect_err("invalid");
        assert_eq!(errs.errors_under("strategy").len(), 2);
        assert_eq!(errs.errors_under("strategy.steps[1]").len(), 2);
        assert!(errs.errors_under("serv").is_empty());
        assert_eq!(errs.errors_for("service").len(), 1);
    }

    #[test]
    fn a_dns_router_refuses_weighted_strategies() {
        for strategy in [
            canary(&["100"]),
            rolling(BatchSize::Count(1), 1, 1),
            blue_green(Switch::Steps(vec![w("100")])),
        ] {
            let errs = validate(&spec(strategy), &dns_env(4)).expect_err("dns can't weigh");
            assert!(errs.0.iter().any(|e| e.message.contains("load-balancer router")), "{errs}");
        }
        assert!(validate(&spec(blue_green(Switch::AtOnce)), &dns_env(4)).is_ok());
    }

    #[test]
    fn a_feature_flag_campaign_needs_no_provider() {
        let mut e = env(2);
        e.backends.retain(|b| b.kind != BackendKind::Provider);
        assert!(validate(&spec(flag(&["10", "100"])), &e).is_ok());
    }
}
