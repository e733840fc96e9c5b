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
use crate::domain::lifecycle::{CampaignState, Command};
use crate::domain::plan::StepKind;
use crate::domain::views::{CampaignDetail, StepRunView, TrafficView};

#[component]
pub fn CampaignPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| {
        params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0))
    });
    let tick = RwSignal::new(0_u64);
    let command = ServerAction::<CampaignCommand>::new();
    let detail = Resource::new(
        move || (id.get(), tick.get(), command.version().get()),
        |(id, _, _)| get_campaign(id),
    );
    let traffic = Resource::new(
        move || (id.get(), tick.get(), command.version().get()),
        |(id, _, _)| campaign_traffic(id),
    );
    // Traffic moves between events (during a bake nothing else happens), so the chart also
    // refreshes every two seconds while the page is open.
    let chart_tick = RwSignal::new(0_u64);
    let chart = Resource::new(
        move || (id.get(), tick.get(), chart_tick.get()),
        |(id, _, _)| campaign_chart(id),
    );
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || chart_tick.update(|t| *t += 1),
            std::time::Duration::from_secs(2),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| live::follow(id.get(), tick));
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
                            <p class="muted">"Requests per second by release, error rate and p99 latency through the router (UTC). Red lines are the gate's limits; grey lines mark finished steps."</p>
                            <Transition fallback=|| view! { <p class="muted">"Drawing the chart…"</p> }>
                            {move || Suspend::new(async move {
                                match chart.await {
                                    Ok(svg) if !svg.is_empty() => view! { <div class="chart" data-testid="health-chart" role="img" aria-label="Health chart" inner_html=svg></div> }.into_any(),
                                    Ok(_) => view! { <p class="muted">"No traffic yet."</p> }.into_any(),
                                    Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                                }
                            })}
                            </Transition>
                        </section>
                        <Timeline d=d />
                    }.into_any(),
                }
            })}
        </Transition>
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
            </div>
            {s.last_error.clone().map(|e| view! { <div class="notice notice-error" role="alert" data-testid="last-error"><strong>"Stopped: "</strong>{e}</div> })}
            {s.abort_reason.clone().map(|r| view! { <div class="notice notice-warn" role="status"><strong>"Abort: "</strong>{r}</div> })}
            {s.rollback_secs.map(|secs| view! {
                <div class="notice notice-ok" role="status" data-testid="rollback-time">
                    <strong>"Rolled back: "</strong>{format!("all traffic was back on {} {:.1} s after the abort.", d.spec.from_release, secs)}
                </div>
            })}
            <p><a href=format!("/audit?object=campaign:{}", s.id)>"This campaign's audit events"</a></p>
            <p class="muted">"Spec as a file: "<a rel="external" data-testid="export-toml" href=format!("/api/v1/campaigns/{}/spec?format=toml", s.id)>"TOML"</a>" · "<a rel="external" href=format!("/api/v1/campaigns/{}/spec?format=yaml", s.id)>"YAML"</a></p>
        </header>
    }
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
    );
    view! {
        <section class="controls" aria-label="Controls">
            {(operator && allowed(Command::Start)).then(|| simple("start", "Start", "btn-primary"))}
            {(operator && allowed(Command::Pause)).then(|| simple("pause", "Pause", ""))}
            {(operator && allowed(Command::Resume)).then(|| simple("resume", "Resume", "btn-primary"))}
            {(approver && allowed(Command::Approve)).then(|| simple("approve", "Approve", "btn-primary"))}
            {(approver && allowed(Command::Reject)).then(|| with_reason("reject", "Reject", "", "Why reject? (the campaign rolls back)"))}
            {(operator && allowed(Command::Skip) && matches!(current_kind, Some(StepKind::Bake | StepKind::Pause | StepKind::WaitDrained)))
                .then(|| with_reason("skip", "Skip this step", "", "Why skip it?"))}
            {(operator && active && allowed(Command::Abort)).then(|| with_reason("abort", "Abort", "btn-danger", "Why abort? All traffic goes back to the last good release."))}
            {(!operator && active).then(|| view! { <p class="muted">"You can watch this campaign; operators control it."</p> })}
        </section>
    }
}

#[component]
pub(crate) fn Traffic(t: TrafficView) -> impl IntoView {
    if let Some(e) = t.error.clone() {
        return view! { <p class="muted" data-testid="traffic-error">{e}</p> }.into_any();
    }
    view! {
        <div class="shares" data-testid="traffic-shares">
            {t.share_by_release.iter().map(|(release, pct)| view! {
                <div class="share">
                    <span class="share-label">{format!("{release}: {pct:.1} %")}</span>
                    <span class="share-bar" style=format!("width: {pct:.1}%") aria-hidden="true"></span>
                </div>
            }).collect_view()}
        </div>
        <div class="table-wrap"><table class="data" data-testid="traffic-table">
            <thead><tr><th scope="col">"Target"</th><th scope="col">"Address"</th><th scope="col">"Release"</th><th scope="col">"Weight"</th><th scope="col">"State"</th></tr></thead>
            <tbody>
                {t.members.into_iter().map(|m| view! {
                    <tr>
                        <td>{m.target}</td><td>{m.address}</td><td>{m.release.unwrap_or_else(|| "?".into())}</td>
                        <td>{format!("{:.2} %", m.weight_pct)}</td><td>{m.state}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}

fn run_of(runs: &[StepRunView], phase: &str, index: usize) -> Option<StepRunView> {
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
                    let run = run_of(&runs, "forward", i);
                    let status = run.as_ref().map(|r| r.status.clone()).unwrap_or_else(|| if i < current { "done".into() } else { "pending".into() });
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
                        let run = run_of(&runs, "rollback", i);
                        let status = run.as_ref().map(|r| r.status.clone()).unwrap_or_else(|| "pending".into());
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
    view! {
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
            {run.as_ref().and_then(|r| r.verdict.clone()).map(|v| view! { <pre class="verdict">{serde_json::to_string_pretty(&v).unwrap_or_default()}</pre> })}
            {run.filter(|r| !r.log.is_empty()).map(|r| view! { <pre class="log">{r.log}</pre> })}
        </details>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use wasm_bindgen::JsCast as _;
    use wasm_bindgen::closure::Closure;

    /// Opens the campaign's event stream; each event refreshes the page's data. The browser
    /// reconnects by itself and resumes after the last event id it saw.
    pub fn follow(id: i64, tick: RwSignal<u64>) {
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
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
    }
}
