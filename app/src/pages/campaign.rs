//! One campaign: plan as a step timeline with the current step highlighted, what each step
//! did and read back, live router weights, and the controls a role may use. Updates arrive
//! over Server-Sent Events (the browser reconnects and resumes from the last event id).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::campaigns::{CampaignCommand, campaign_chart, campaign_traffic, get_campaign};
use crate::components::layout::Me;
use crate::components::status::{ErrorBox, StatusBadge};
use crate::domain::auth::Role;
use crate::domain::gate::{Outcome, Verdict};
use crate::domain::lifecycle::{CampaignState, Command, Phase};
use crate::domain::plan::StepKind;
use crate::domain::views::{CampaignDetail, ChartView, StepRunView, TrafficView};

#[component]
pub fn CampaignPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0))
    });
    let tick = RwSignal::new(0_u64);
    // Bumped by each stored sampling round (a `sample` event on the same stream).
    let sample_tick = RwSignal::new(0_u64);
    let command = ServerAction::<CampaignCommand>::new();
    let detail = Resource::new(
        move || (id.get(), tick.get(), command.version().get()),
        |(id, _, _)| get_campaign(id),
    );
    // Router weights move during a bake too, so traffic follows the sampling rounds as well.
    let traffic = Resource::new(
        move || (id.get(), tick.get(), sample_tick.get(), command.version().get()),
        |(id, _, _, _)| campaign_traffic(id),
    );
    // Resources live here, not in the parts redrawn below: those are disposed on every redraw.
    let audit = Resource::new(
        move || (id.get(), tick.get()),
        |(id, _)| {
            crate::api::audit::search_audit(crate::domain::audit::AuditFilter {
                object: format!("campaign:{id}"),
                per_page: 8,
                ..Default::default()
            })
        },
    );
    let chart_opts = ChartOptions::new();
    let chart = Resource::new(
        move || (id.get(), tick.get(), sample_tick.get(), chart_opts.key()),
        |(id, _, _, (target, tz, width))| campaign_chart(id, target, tz, width),
    );
    #[cfg(feature = "hydrate")]
    chart_opts.adopt_browser();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| live::follow(id.get(), tick, sample_tick));
    let Me(me) = expect_context::<Me>();

    view! {
        <Title text="Campaign" />
        <Transition fallback=|| view! { <p class="muted">"Loading campaign…"</p> }>
            {move || Suspend::new(async move {
                let role = me.await.map(|p| p.role).unwrap_or(Role::Viewer);
                match detail.await {
                    Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                    Ok(d) => view! {
                        <Header d=d.clone() />
                        {command.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox message=e.message /> })}
                        <Controls d=d.clone() role=role action=command />
                        {d.live_differences.clone().map(|diffs| view! { <LiveCheck diffs=diffs /> })}
                        <section aria-labelledby="traffic-title">
                            <h2 id="traffic-title">"Traffic now"</h2>
                            // Its own boundary: a nested Suspend without one renders nothing on the server.
                            <Transition fallback=|| view! { <p class="muted">"Reading the router…"</p> }>
                                {move || Suspend::new(async move {
                                    match traffic.await {
                                        Ok(t) => view! { <Traffic t=t /> }.into_any(),
                                        Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                                    }
                                })}
                            </Transition>
                        </section>
                        <section aria-labelledby="health-title">
                            <h2 id="health-title">"Health"</h2>
                            <HealthChart chart=chart opts=chart_opts />
                        </section>
                        <Timeline d=d.clone() />
                        <RecentAudit id=d.summary.id events=audit />
                    }.into_any(),
                }
            })}
        </Transition>
        <crate::pages::campaign_impact::CampaignImpact id=id tick=tick />
        <crate::pages::campaign_comms::CampaignComms id=id />
    }
}

#[component]
fn Header(d: CampaignDetail) -> impl IntoView {
    let s = d.summary.clone();
    let total = s.steps_total.max(d.plan.as_ref().map(|p| p.steps.len()).unwrap_or(0));
    let done = usize::try_from(s.step_index).unwrap_or(0).min(total);
    let expected = d.plan.as_ref().map(|p| p.summary.expected_secs).unwrap_or(0);
    view! {
        <header class="campaign-head">
            <h1 data-testid="campaign-name">{s.name.clone()}</h1>
            <p class="meta">
                <StatusBadge state=s.status />
                {format!(" {} → {} · {} · {} / {} · created by {}", d.spec.from_release, d.spec.to_release, s.strategy.replace('_', "-"), s.environment, s.pool, s.created_by)}
            </p>
            <div class="progress-line">
                <progress max=total.max(1) value=done aria-label="Steps done"></progress>
                <span data-testid="progress">{format!("Step {} of {} · expected about {} min", done.min(total), total, expected.div_ceil(60))}</span>
                {elapsed(s.started_at.as_deref(), s.finished_at.as_deref()).map(|e| view! { <span class="muted" data-testid="elapsed">{e}</span> })}
            </div>
            {s.last_error.clone().map(|e| view! { <div class="notice notice-error" role="alert" data-testid="last-error"><strong>"Stopped: "</strong>{e}</div> })}
            {d.watch.clone().map(|w| match w.breach {
                Some(b) => view! {
                    <div class="notice notice-error" role="alert" data-testid="watch-breach">
                        <strong>"After success: "</strong>{b}
                        " "<a class="btn btn-danger" href=format!("/campaigns/new?from={}&as=rollback_release", s.id)>"Roll back this release"</a>
                    </div>
                }.into_any(),
                None => view! {
                    <p class="muted" data-testid="watch">{if w.active {
                        format!("The gates keep watching the new release until {} UTC.", w.until.get(11..19).unwrap_or_default())
                    } else {
                        format!("The gates watched the new release until {} UTC and found nothing wrong.", w.until.get(11..19).unwrap_or_default())
                    }}</p>
                }.into_any(),
            })}
            {s.abort_reason.clone().map(|r| view! { <div class="notice notice-warn" role="status"><strong>"Abort: "</strong>{r}</div> })}
            {s.rollback_secs.map(|secs| view! {
                <div class="notice notice-ok" role="status" data-testid="rollback-time">
                    <strong>"Rolled back: "</strong>{format!("all traffic was back on {} {:.1} s after the abort.", d.spec.from_release, secs)}
                </div>
            })}
            {(d.spec.approvals.required > 0).then(|| view! {
                <p data-testid="approvals">{format!(
                    "Approvals: {} of {} needed at each approval step (role {} or higher){}",
                    d.approvals.len(), d.spec.approvals.required, d.spec.approvals.role,
                    if d.approvals.is_empty() { String::new() } else { format!(" · given by {}", d.approvals.join(", ")) }
                )}</p>
            })}
            <p class="muted">"Spec as a file: "<a rel="external" data-testid="export-toml" href=format!("/api/v1/campaigns/{}/spec?format=toml", s.id)>"TOML"</a>" · "<a rel="external" href=format!("/api/v1/campaigns/{}/spec?format=yaml", s.id)>"YAML"</a></p>
        </header>
    }
}

/// "elapsed 3:07" while it runs (as of this drawing; every event redraws it), "took 4:56" once
/// finished; `None` before the start.
fn elapsed(started: Option<&str>, finished: Option<&str>) -> Option<String> {
    let parse = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t).ok().map(|t| t.with_timezone(&chrono::Utc))
    };
    let start = parse(started?)?;
    let (end, word) = match finished.and_then(parse) {
        Some(f) => (f, "took"),
        None => (chrono::Utc::now(), "elapsed"),
    };
    let secs = (end - start).num_seconds().max(0);
    Some(format!("· {word} {}:{:02}", secs / 60, secs % 60))
}

#[component]
fn Controls(d: CampaignDetail, role: Role, action: ServerAction<CampaignCommand>) -> impl IntoView {
    let id = d.summary.id;
    let allowed = |c: Command| d.allowed_commands.contains(&c);
    let current_kind = d
        .plan
        .as_ref()
        .and_then(|p| p.steps.get(usize::try_from(d.summary.step_index).unwrap_or(usize::MAX)))
        .map(|s| s.kind);
    let operator = role.allows(Role::Operator);
    let approver = role.allows(Role::Approver);
    let simple = move |command: &'static str, label: &'static str, class: &'static str| {
        view! {
            <ActionForm action=action attr:class="inline">
                <input type="hidden" name="id" value=id />
                <input type="hidden" name="command" value=command />
                <button type="submit" class=format!("btn {class}") data-command=command>{label}</button>
            </ActionForm>
        }
    };
    let with_reason = move |command: &'static str,
                            label: &'static str,
                            class: &'static str,
                            prompt: &'static str| {
        view! {
            <details class=format!("reason-box {command}")>
                <summary class=format!("btn {class}") data-command=command>{label}</summary>
                <ActionForm action=action attr:class="stack">
                    <input type="hidden" name="id" value=id />
                    <input type="hidden" name="command" value=command />
                    <label for=format!("reason-{command}")>{prompt}</label>
                    <textarea id=format!("reason-{command}") name="reason" required rows="2"></textarea>
                    <button type="submit" class=format!("btn {class}") data-confirm=command>{format!("Confirm: {}", label.to_lowercase())}</button>
                </ActionForm>
            </details>
        }
    };
    let active = matches!(
        d.summary.status,
        CampaignState::Running
            | CampaignState::Paused
            | CampaignState::AwaitingApproval
            | CampaignState::Failed
            | CampaignState::RollbackPaused
    );
    view! {
        <section class="controls" aria-label="Controls">
            {(operator && allowed(Command::Start)).then(|| simple("start", "Start", "btn-primary"))}
            {(operator && allowed(Command::Pause)).then(|| simple("pause", "Pause", ""))}
            {(operator && allowed(Command::Resume)).then(|| if d.summary.status == CampaignState::RollbackPaused {
                simple("resume", "Resume the rollback", "btn-primary")
            } else {
                simple("resume", "Resume", "btn-primary")
            })}
            {(approver && allowed(Command::Approve)).then(|| simple("approve", "Approve", "btn-primary"))}
            {(approver && allowed(Command::Reject)).then(|| with_reason("reject", "Reject", "", "Why reject? (the campaign rolls back)"))}
            {(operator && allowed(Command::Skip) && matches!(current_kind, Some(StepKind::Bake | StepKind::Pause | StepKind::WaitDrained)))
                .then(|| with_reason("skip", "Skip this step", "", "Why skip it?"))}
            {(operator && active && allowed(Command::Abort)).then(|| with_reason("abort", "Abort", "btn-danger", "Why abort? All traffic goes back to the last good release."))}
            {(!operator && active).then(|| view! { <p class="muted">"You can watch this campaign; operators control it."</p> })}
            {(operator && d.summary.status == CampaignState::Draft).then(|| view! {
                <a class="btn" href=format!("/campaigns/{id}/edit") data-testid="edit-draft">"Edit"</a>
            })}
            {(operator && d.summary.status == CampaignState::Succeeded).then(|| view! {
                <a class="btn" href=format!("/campaigns/new?from={id}&as=rollback_release") data-testid="rollback-release"
                    title="A new draft from the release now running back to the one it replaced, with the same strategy and gates">
                    {format!("Roll back this release ({} → {})", d.spec.to_release, d.spec.from_release)}
                </a>
            })}
            {operator.then(|| view! {
                <a class="btn" href=format!("/campaigns/new?from={id}&as=clone") data-testid="clone">"Clone into a new draft"</a>
            })}
        </section>
    }
}

/// Before a start: whether the pool is what its record says (the plan is compiled from the
/// record, and a start is refused until the two agree).
#[component]
fn LiveCheck(diffs: Vec<crate::domain::reality::Difference>) -> impl IntoView {
    if diffs.is_empty() {
        return view! {
            <p class="ok" data-testid="live-check">"✓ The pool is what its record says, so the plan below matches what is really there."</p>
        }
        .into_any();
    }
    view! {
        <div class="notice notice-error" role="alert" data-testid="live-check">
            <strong>{format!("This campaign cannot start: its pool differs from the record ({}):", diffs.len())}</strong>
            <ul>{diffs.into_iter().map(|d| view! { <li>{d.message}</li> }).collect_view()}</ul>
            <p class="small">"Resolve each on the "<a href="/environments">"Environments page"</a>" (an operator can accept the live state into the record), then start."</p>
        </div>
    }
    .into_any()
}

#[component]
pub(crate) fn Traffic(t: TrafficView, #[prop(optional)] shares_only: bool) -> impl IntoView {
    if let Some(e) = t.error.clone() {
        return view! { <p class="muted" data-testid="traffic-error">{e}</p> }.into_any();
    }
    let failing: Vec<String> = t
        .members
        .iter()
        .filter(|m| m.healthy == Some(false) || m.exists == Some(false))
        .map(|m| {
            let what =
                if m.exists == Some(false) { "does not exist" } else { "fails its health probe" };
            if m.serving() {
                format!(
                    "{} takes {:.1} % of the traffic but {what} ({})",
                    m.target, m.weight_pct, m.health
                )
            } else {
                format!("{} {what} ({})", m.target, m.health)
            }
        })
        .collect();
    view! {
        {(!failing.is_empty()).then(|| view! {
            <div class="notice notice-error" role="alert" data-testid="member-unhealthy">
                <strong>"Unhealthy members: "</strong>{failing.join("; ")}
            </div>
        })}
        <div class="shares" data-testid="traffic-shares">
            {t.share_by_release.iter().map(|(release, pct)| view! {
                <div class="share">
                    <span class="share-label">{format!("{release}: {pct:.1} %")}</span>
                    // An SVG bar: the CSP allows no inline style attributes.
                    <svg class="share-bar" viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true"><rect width=format!("{pct:.1}") height="1"></rect></svg>
                </div>
            }).collect_view()}
        </div>
        {(!shares_only).then(|| view! {
            <div class="table-wrap"><table class="data" data-testid="traffic-table">
                <thead><tr><th scope="col">"Target"</th><th scope="col">"Address"</th><th scope="col">"Release"</th><th scope="col">"Weight"</th><th scope="col">"State"</th><th scope="col">"Health"</th></tr></thead>
                <tbody>
                    {t.members.into_iter().map(|m| view! {
                        <tr>
                            <td>{m.target}</td><td>{m.address}</td><td>{m.release.unwrap_or_else(|| "?".into())}</td>
                            <td>{format!("{:.2} %", m.weight_pct)}</td><td>{m.state}</td>
                            <td><crate::pages::environments::HealthCell healthy=m.healthy detail=m.health /></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        })}
    }
    .into_any()
}

fn run_of(runs: &[StepRunView], phase: Phase, index: usize) -> Option<StepRunView> {
    runs.iter().find(|r| r.phase == phase && r.index == index as i64).cloned()
}

#[component]
fn Timeline(d: CampaignDetail) -> impl IntoView {
    let Some(plan) = d.plan.clone() else {
        return view! { <p class="muted">"No plan: the campaign does not validate against its environment."</p> }.into_any();
    };
    let current = usize::try_from(d.summary.step_index).unwrap_or(0);
    let running = matches!(
        d.summary.status,
        CampaignState::Running | CampaignState::Paused | CampaignState::AwaitingApproval
    );
    let runs = d.step_runs.clone();
    view! {
        <section aria-labelledby="plan-title">
            <h2 id="plan-title">{if d.plan_frozen { "Plan (frozen at start)" } else { "Plan preview" }}</h2>
            <p class="muted">{plan.summary.headline.clone()}</p>
            <ol class="timeline" data-testid="timeline">
                {plan.steps.iter().enumerate().map(|(i, step)| {
                    let run = run_of(&runs, Phase::Forward, i);
                    let status = run.as_ref().map(|r| r.status.as_str().to_string()).unwrap_or_else(|| if i < current { "done".into() } else { "pending".into() });
                    // A step the campaign left mid-way when it stopped (an abort, a rollback).
                    let status = if status == "running" && !running { "interrupted".to_string() } else { status };
                    let is_current = running && i == current;
                    view! {
                        <li class=format!("step step-{status}{}", if is_current { " step-current" } else { "" }) aria-current=is_current.then_some("step")>
                            <span class="step-status">{if is_current { "▶ now".to_string() } else { status.clone() }}</span>
                            <span class="step-kind">{step.kind.label()}</span>
                            <span class="step-text">{step.description.clone()}</span>
                            <StepDetails step=step.calls.iter().map(ToString::to_string).collect() run=run />
                        </li>
                    }
                }).collect_view()}
            </ol>
            {d.rollback_plan.clone().map(|steps| view! {
                <h2>"Rollback"</h2>
                <ol class="timeline">
                    {steps.iter().enumerate().map(|(i, step)| {
                        let run = run_of(&runs, Phase::Rollback, i);
                        let status = run.as_ref().map(|r| r.status.as_str().to_string()).unwrap_or_else(|| "pending".into());
                        view! {
                            <li class=format!("step step-{status}")>
                                <span class="step-status">{status.clone()}</span>
                                <span class="step-kind">{step.kind.label()}</span>
                                <span class="step-text">{step.description.clone()}</span>
                                <StepDetails step=step.calls.iter().map(ToString::to_string).collect() run=run />
                            </li>
                        }
                    }).collect_view()}
                </ol>
            })}
        </section>
    }
    .into_any()
}

#[component]
fn StepDetails(step: Vec<String>, run: Option<StepRunView>) -> impl IntoView {
    if step.is_empty() && run.is_none() {
        return ().into_any();
    }
    let calls: Vec<serde_json::Value> =
        run.as_ref().and_then(|r| r.calls.as_array().cloned()).unwrap_or_default();
    let duration = run.as_ref().map(|r| match &r.finished_at {
        Some(f) => format!(
            "{} → {}",
            &r.started_at.get(11..19).unwrap_or_default(),
            f.get(11..19).unwrap_or_default()
        ),
        None => format!("since {}", r.started_at.get(11..19).unwrap_or_default()),
    });
    let verdicts: Vec<Verdict> = run
        .as_ref()
        .and_then(|r| r.verdict.clone())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    view! {
        {(!verdicts.is_empty()).then(|| view! { <Verdicts verdicts=verdicts /> })}
        <details class="step-details">
            <summary>"Calls, read-back and log"</summary>
            {duration.map(|d| view! { <p class="muted">{format!("{d} UTC")}</p> })}
            <ul class="calls">
                {if calls.iter().any(|c| c.get("call").is_some()) {
                    calls.into_iter().map(|c| {
                        let ok = c["ok"].as_bool().unwrap_or(false);
                        view! { <li><code>{c["call"].as_str().unwrap_or_default().to_string()}</code>" → " <span class=if ok { "ok" } else { "bad" }>{if ok { "✓ " } else { "✗ " }}{c["readback"].as_str().unwrap_or_default().to_string()}</span></li> }
                    }).collect_view().into_any()
                } else {
                    step.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view().into_any()
                }}
            </ul>
            {run.filter(|r| !r.log.is_empty()).map(|r| view! { <pre class="log">{r.log}</pre> })}
        </details>
    }
    .into_any()
}

/// The campaign's newest audit events, with a link to all of them.
#[component]
fn RecentAudit(
    id: i64,
    events: Resource<Result<crate::domain::audit::AuditPage, crate::api::ApiError>>,
) -> impl IntoView {
    view! {
        <section aria-labelledby="audit-title">
            <h2 id="audit-title">"Audit"</h2>
            <Transition fallback=|| view! { <p class="muted">"Reading the audit trail…"</p> }>
                {move || Suspend::new(async move {
                    match events.await {
                        Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                        Ok(p) => view! {
                            <ul class="audit-recent" data-testid="campaign-audit">
                                {p.events.into_iter().map(|e| view! {
                                    <li><time datetime=e.ts.clone()>{e.ts.get(..19).unwrap_or_default().replace('T', " ")}</time>" UTC · "<strong>{e.action}</strong>" by "{e.actor}{(e.outcome != "ok").then(|| format!(" ({})", e.outcome))}</li>
                                }).collect_view()}
                            </ul>
                            <p><a href=format!("/audit?object=campaign:{id}")>{format!("All {} audit events of this campaign", p.total)}</a></p>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// A gate's verdicts with the numbers behind them, over the gate's window.
#[component]
fn Verdicts(verdicts: Vec<Verdict>) -> impl IntoView {
    let pct = |v: Option<f64>| {
        v.map(|v| format!("{:.2} %", v * 100.0)).unwrap_or_else(|| "no data".into())
    };
    view! {
        <table class="data verdicts" data-testid="verdicts">
            <thead><tr>
                <th scope="col">"Verdict"</th><th scope="col">"Samples"</th><th scope="col">"Errors"</th>
                <th scope="col">"p99"</th><th scope="col">"Probes ok"</th><th scope="col">"Why"</th>
            </tr></thead>
            <tbody>
            {verdicts.into_iter().map(|v| {
                let (label, class) = match v.outcome {
                    Outcome::Pass => ("✓ pass", "ok"),
                    Outcome::Fail => ("✗ fail", "bad"),
                    Outcome::Wait => ("… wait", "muted"),
                };
                let m = v.metrics;
                let comparison = v.comparison.map(|c| {
                    let rows: Vec<String> = c.metrics.iter().map(|m| {
                        let show = |x: Option<f64>| match (m.metric.as_str(), x) {
                            ("latency", Some(x)) => format!("{x:.1} ms"),
                            (_, Some(x)) => format!("{:.2} %", x * 100.0),
                            (_, None) => "no data".into(),
                        };
                        format!(
                            "{}: canary {} ({} points) vs baseline {} ({}), p = {} → {}",
                            m.metric, show(m.canary), m.canary_points, show(m.baseline), m.baseline_points,
                            m.p_value.map(|p| format!("{p:.4}")).unwrap_or_else(|| "–".into()),
                            match m.result {
                                crate::domain::compare::MetricResult::Pass => "pass",
                                crate::domain::compare::MetricResult::Worse => "worse",
                                crate::domain::compare::MetricResult::NotEnoughData => "not enough data",
                            }
                        )
                    }).collect();
                    let score = c.score.map(|s| format!("score {s:.0}")).unwrap_or_else(|| "no score yet".into());
                    (score, rows)
                });
                view! {
                    <tr>
                        <td class=class>{label}</td>
                        <td>{m.samples}</td>
                        <td>{pct(m.error_rate)}</td>
                        <td>{m.p99_ms.map(|p| format!("{p:.0} ms")).unwrap_or_else(|| "no data".into())}</td>
                        <td>{pct(m.probe_success)}</td>
                        <td>{v.reason}</td>
                    </tr>
                    {comparison.map(|(score, rows)| view! {
                        <tr class="comparison" data-testid="comparison">
                            <td colspan="6"><strong>{format!("Canary vs baseline ({score}): ")}</strong>{rows.join("; ")}</td>
                        </tr>
                    })}
                }
            }).collect_view()}
            </tbody>
        </table>
    }
}

#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen::closure::Closure;

    /// Opens the campaign's event stream: each stored event bumps `tick` (the page re-reads its
    /// data), each stored sampling round (a named `sample` event) bumps `samples` (the chart and
    /// the weights redraw). The browser reconnects by itself and resumes after the last event id
    /// it saw, so nothing is missed across a network drop or a server restart.
    pub fn follow(id: i64, tick: RwSignal<u64>, samples: RwSignal<u64>) {
        if id == 0 {
            return;
        }
        let Ok(source) = web_sys::EventSource::new(&format!("/api/v1/campaigns/{id}/events"))
        else {
            return;
        };
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| tick.update(|t| *t += 1));
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        let on_sample =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| samples.update(|t| *t += 1));
        let _ =
            source.add_event_listener_with_callback("sample", on_sample.as_ref().unchecked_ref());
        on_sample.forget();
        // After a reconnect (e.g. the server restarted) re-read everything once.
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| tick.update(|t| *t += 1));
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    }

    /// The browser's IANA timezone, e.g. "Europe/Berlin".
    pub fn browser_tz() -> Option<String> {
        let options =
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
                .resolved_options();
        js_sys::Reflect::get(&options, &"timeZone".into()).ok()?.as_string()
    }

    /// Remembers the zone in a cookie, so the next page rendered on the server uses it too.
    pub fn remember_tz(tz: &str) {
        let doc = web_sys::window().and_then(|w| w.document());
        if let Some(doc) = doc.and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok()) {
            let cookie = format!(
                "{}={tz}; Path=/; Max-Age=31536000; SameSite=Lax",
                crate::domain::views::TZ_COOKIE
            );
            let _ = doc.set_cookie(&cookie);
        }
    }

    /// A chart width that fits the window (the SVG is drawn for it, so text stays readable).
    pub fn chart_width() -> Option<u32> {
        let w = web_sys::window()?.inner_width().ok()?.as_f64()?;
        Some(((w - 64.0).clamp(320.0, 1200.0)) as u32)
    }
}

/// What the viewer chose for the chart: target (empty: the whole pool), timezone, width.
#[derive(Clone, Copy)]
struct ChartOptions {
    target: RwSignal<String>,
    tz: RwSignal<String>,
    width: RwSignal<u32>,
}

impl ChartOptions {
    fn new() -> Self {
        Self {
            target: RwSignal::new(String::new()),
            tz: RwSignal::new(String::new()),
            width: RwSignal::new(0),
        }
    }
    fn key(&self) -> (String, String, u32) {
        (self.target.get(), self.tz.get(), self.width.get())
    }
    /// Takes the browser's zone and window width once hydrated.
    #[cfg(feature = "hydrate")]
    fn adopt_browser(self) {
        Effect::new(move |_| {
            if let Some(tz) = live::browser_tz() {
                live::remember_tz(&tz);
                self.tz.set(tz);
            }
            if let Some(w) = live::chart_width() {
                self.width.set(w);
            }
        });
    }
}

#[component]
fn HealthChart(
    chart: Resource<Result<ChartView, crate::api::ApiError>>,
    opts: ChartOptions,
) -> impl IntoView {
    // The choice lives outside the redrawn part, so a redraw every second never steals focus
    // or closes the list. Its targets arrive once the page is live in the browser.
    let targets = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        if let Some(Ok(c)) = chart.get()
            && targets.with_untracked(|t| *t != c.targets)
        {
            targets.set(c.targets);
        }
    });
    view! {
        <div class="chart-head">
            <label for="chart-target">"Show"</label>
            <select id="chart-target" data-testid="chart-target"
                prop:value=move || opts.target.get()
                on:change=move |ev| opts.target.set(event_target_value(&ev))>
                <option value="">"whole pool"</option>
                {move || targets.get().into_iter().map(|t| view! { <option value=t.clone()>{t.clone()}</option> }).collect_view()}
            </select>
        </div>
        // Its own boundary: a nested Suspend without one renders nothing on the server.
        <Transition fallback=|| view! { <p class="muted">"Drawing the chart…"</p> }>
            {move || Suspend::new(async move {
                match chart.await {
                    Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                    Ok(c) if c.svg.is_empty() => view! {
                        <p class="muted" data-testid="chart-empty">"No health samples yet: they are taken every second while the campaign runs. Start it to see traffic, errors, latency and weights move."</p>
                    }.into_any(),
                    Ok(c) => view! {
                        <p class="chart-summary" data-testid="chart-summary">{format!("Latest: {}", c.summary)}</p>
                        <p class="muted small">{format!("Times in {}. Red dashed lines are the gate's limits; grey lines mark steps.", c.tz)}</p>
                        <div class="chart" data-testid="health-chart" data-sample=c.last_sample role="img"
                            aria-label=format!("Health chart: {}", c.summary) inner_html=c.svg></div>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}
