//! Environments: targets with their release and health, pools with the weights their routers
//! really have (read back now), drift warnings, and `backends check` for operators.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::environments::{AcceptLiveState, CheckBackends, environment_overviews};
use crate::components::layout::Me;
use crate::components::status::ErrorBox;
use crate::domain::auth::Role;
use crate::domain::views::{BackendCheckView, EnvironmentOverview, PoolOverview};
use crate::pages::campaign::Traffic;

#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let check = ServerAction::<CheckBackends>::new();
    let accept = ServerAction::<AcceptLiveState>::new();
    let envs = Resource::new(move || accept.version().get(), |_| environment_overviews());
    let Me(me) = expect_context::<Me>();
    view! {
        <Title text="Environments" />
        <h1>"Environments"</h1>
        <Transition fallback=|| view! { <p class="muted">"Reading the routers…"</p> }>
            {move || Suspend::new(async move {
                let operator = me.await.is_some_and(|p| p.role.allows(Role::Operator));
                match envs.await {
                    Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p class="empty">"No environment yet. Create one with "<code>"POST /api/v1/environments"</code>" (see examples/environment.toml), or run with "<code>"SWITCHYARD_DEMO=true"</code>" for the demo."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        {operator.then(|| view! {
                            <ActionForm action=check attr:class="inline">
                                <button type="submit" class="btn" data-testid="check-backends">"Check every backend"</button>
                            </ActionForm>
                        })}
                        {move || check.value().get().map(|r| match r {
                            Ok(rows) => view! { <CheckTable rows=rows /> }.into_any(),
                            Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                        })}
                        {move || accept.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox message=e.message /> })}
                        {list.into_iter().map(|e| view! { <Environment e=e operator=operator accept=accept /> }).collect_view()}
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Environment(
    e: EnvironmentOverview,
    operator: bool,
    accept: ServerAction<AcceptLiveState>,
) -> impl IntoView {
    let title = format!("env-{}", e.name);
    let labelled_by = title.clone();
    view! {
        <section aria-labelledby=labelled_by class="card" data-testid="environment">
            <h2 id=title>{e.name.clone()}</h2>
            <p class="small"><a href=format!("/audit?object=environment:{}", crate::domain::audit::encode_component(&e.name))>"Audit events of this environment"</a>" · "<a href=format!("/audit?object=pool:{}/", crate::domain::audit::encode_component(&e.name))>"of its pools"</a></p>
            {e.drift.into_iter().map(|d| view! {
                <div class="error" role="alert" data-testid="drift">
                    <strong>{format!("Drift on pool {} ({}) since {}: ", d.pool, d.backend, d.since.get(..19).unwrap_or_default())}</strong>
                    {d.differences.join("; ")}
                    ". Switchyard will not overwrite it; a campaign on this pool pauses until someone puts the router back or accepts its state by resuming."
                </div>
            }).collect_view()}
            <h3>"Targets"</h3>
            <div class="table-wrap"><table class="data" data-testid="targets">
                <thead><tr><th scope="col">"Target"</th><th scope="col">"Address"</th><th scope="col">"Group"</th><th scope="col">"Release"</th><th scope="col">"Health"</th></tr></thead>
                <tbody>
                    {e.targets.into_iter().map(|t| {
                        let (label, class) = match t.healthy {
                            Some(true) => ("✓ healthy", "ok"),
                            Some(false) => ("✗ unhealthy", "bad"),
                            None => ("? unknown", "muted"),
                        };
                        view! {
                            <tr>
                                <td>{t.name}</td><td>{t.address}</td><td>{t.group}</td><td>{t.release}</td>
                                <td><span class=class>{label}</span>" "<span class="muted">{t.detail}</span></td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
            {e.pools.into_iter().map(|p| view! { <PoolRecord env=e.name.clone() p=p operator=operator accept=accept /> }).collect_view()}
            <h3>"Backends"</h3>
            <ul>
                {e.backends.into_iter().map(|(name, kind, driver)| view! { <li><strong>{name}</strong>{format!(" — {kind}, driver {driver}")}</li> }).collect_view()}
            </ul>
        </section>
    }
}

/// One pool: the record beside what the router and the provider really have, each difference
/// named, and for operators the way to accept the live state.
#[component]
fn PoolRecord(
    env: String,
    p: PoolOverview,
    operator: bool,
    accept: ServerAction<AcceptLiveState>,
) -> impl IntoView {
    let acceptable = p.differences.iter().any(|d| d.kind.acceptable());
    let rows = record_rows(&p);
    let pool_name = p.name.clone();
    let held = p.campaign.is_some();
    view! {
        <div class="pool" data-testid="pool" data-pool=p.name.clone()>
            <h3>{format!("Pool {} (router {})", p.name, p.router)}</h3>
            {p.campaign.clone().map(|(id, name, status)| view! {
                <p class="small">"Held by campaign "<a href=format!("/campaigns/{id}")>{name}</a>{format!(" ({status})")}</p>
            })}
            {if p.differences.is_empty() {
                view! { <p class="ok" data-testid="pool-matches">"✓ The record matches what the router and the provider have now."</p> }.into_any()
            } else {
                view! {
                    <div class="notice notice-error" role="alert" data-testid="pool-differences">
                        <strong>{format!("The record differs from what is really there ({}):", p.differences.len())}</strong>
                        <ul>{p.differences.iter().map(|d| view! { <li>{d.message.clone()}</li> }).collect_view()}</ul>
                        <p class="small">"A campaign on this pool will not start until the two agree."</p>
                        {(operator && acceptable && !held).then(|| view! {
                            <ActionForm action=accept attr:class="inline">
                                <input type="hidden" name="environment" value=env.clone() />
                                <input type="hidden" name="pool" value=pool_name.clone() />
                                <button type="submit" class="btn" data-testid="accept-live">"Accept the live state into the record"</button>
                            </ActionForm>
                        })}
                    </div>
                }.into_any()
            }}
            <div class="table-wrap"><table class="data" data-testid="record-vs-live">
                <thead>
                    <tr><th scope="col" rowspan="2">"Target"</th><th scope="colgroup" colspan="2">"Record"</th><th scope="colgroup" colspan="5">"Live (router and provider, now)"</th></tr>
                    <tr><th scope="col">"Address"</th><th scope="col">"Release"</th><th scope="col">"Address"</th><th scope="col">"Release"</th><th scope="col">"Weight"</th><th scope="col">"State"</th><th scope="col">"Health"</th></tr>
                </thead>
                <tbody>{rows.into_iter().map(|r| view! {
                    <tr class=if r.differs { "differs" } else { "" }>
                        <td>{r.target}{r.differs.then(|| view! { <span class="bad" title="differs">" ≠"</span> })}</td>
                        <td>{r.record_address}</td><td>{r.record_release}</td>
                        <td>{r.live_address}</td><td>{r.live_release}</td><td>{r.weight}</td><td>{r.state}</td>
                        <td><HealthCell healthy=r.healthy detail=r.health /></td>
                    </tr>
                }).collect_view()}</tbody>
            </table></div>
            {p.live.error.clone().map(|e| view! { <p class="muted" data-testid="traffic-error">{e}</p> })}
            <Traffic t=p.live.clone() shares_only=true />
        </div>
    }
}

/// A probe's answer in words and colour; `None`: not probed.
#[component]
pub(crate) fn HealthCell(healthy: Option<bool>, detail: String) -> impl IntoView {
    let (label, class) = match healthy {
        Some(true) => ("✓ healthy", "ok"),
        Some(false) => ("✗ failing probes", "bad"),
        None => ("? not probed", "muted"),
    };
    view! { <span class=class>{label}</span>" "<span class="muted small">{detail}</span> }
}

struct RecordRow {
    target: String,
    record_address: String,
    record_release: String,
    live_address: String,
    live_release: String,
    weight: String,
    state: String,
    healthy: Option<bool>,
    health: String,
    differs: bool,
}

fn record_rows(p: &PoolOverview) -> Vec<RecordRow> {
    let absent = || "— absent".to_string();
    let mut names: Vec<String> = p.record.iter().map(|t| t.name.to_string()).collect();
    for m in &p.live.members {
        if !names.contains(&m.target) {
            names.push(m.target.clone());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let rec = p.record.iter().find(|t| t.name.as_str() == n);
            let live = p.live.members.iter().find(|m| m.target == n);
            RecordRow {
                differs: p.differences.iter().any(|d| d.target == n),
                record_address: rec.map_or_else(absent, |t| t.address.clone()),
                record_release: rec.map_or_else(String::new, |t| t.release.to_string()),
                live_address: live.map_or_else(absent, |m| m.address.clone()),
                live_release: live.and_then(|m| m.release.clone()).unwrap_or_default(),
                weight: live.map(|m| format!("{:.2} %", m.weight_pct)).unwrap_or_default(),
                state: live.map(|m| m.state.clone()).unwrap_or_default(),
                healthy: live.and_then(|m| m.healthy),
                health: live.map(|m| m.health.clone()).unwrap_or_default(),
                target: n,
            }
        })
        .collect()
}

#[component]
fn CheckTable(rows: Vec<BackendCheckView>) -> impl IntoView {
    view! {
        <section aria-labelledby="check-title" data-testid="check-results">
            <h2 id="check-title">"Backends check"</h2>
            <div class="table-wrap"><table class="data">
                <thead><tr><th scope="col">"Environment"</th><th scope="col">"Backend"</th><th scope="col">"Kind"</th><th scope="col">"Answer"</th><th scope="col">"Version"</th><th scope="col">"Can"</th><th scope="col">"Detail"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|b| {
                        let (label, class) = match (b.checked, b.reachable) {
                            (false, _) => ("not checked", "muted"),
                            (true, true) => ("✓ reachable", "ok"),
                            (true, false) => ("✗ unreachable", "bad"),
                        };
                        view! {
                            <tr>
                                <td>{b.environment}</td><td>{format!("{} ({})", b.name, b.driver)}</td><td>{b.kind}</td>
                                <td><span class=class>{label}</span></td>
                                <td>{b.version.unwrap_or_default()}</td><td>{b.capabilities.join(", ")}</td><td>{b.detail}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table></div>
        </section>
    }
}
