//! Environments: targets with their release and health, pools with the weights their routers
//! really have (read back now), drift warnings, and `backends check` for operators.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::environments::{CheckBackends, environment_overviews};
use crate::components::layout::Me;
use crate::components::status::ErrorBox;
use crate::domain::auth::Role;
use crate::domain::views::{BackendCheckView, EnvironmentOverview};
use crate::pages::campaign::Traffic;

#[component]
pub fn EnvironmentsPage() -> impl IntoView {
    let envs = Resource::new(|| (), |()| environment_overviews());
    let check = ServerAction::<CheckBackends>::new();
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
                                <button type="submit" data-testid="check-backends">"Check every backend"</button>
                            </ActionForm>
                        })}
                        {move || check.value().get().map(|r| match r {
                            Ok(rows) => view! { <CheckTable rows=rows /> }.into_any(),
                            Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                        })}
                        {list.into_iter().map(|e| view! { <Environment e=e /> }).collect_view()}
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn Environment(e: EnvironmentOverview) -> impl IntoView {
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
            {e.pools.into_iter().map(|p| view! {
                <h3>{format!("Pool {} — read back from its router now", p.pool)}</h3>
                <Traffic t=p />
            }).collect_view()}
            <h3>"Backends"</h3>
            <ul>
                {e.backends.into_iter().map(|(name, kind, driver)| view! { <li><strong>{name}</strong>{format!(" — {kind}, driver {driver}")}</li> }).collect_view()}
            </ul>
        </section>
    }
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
