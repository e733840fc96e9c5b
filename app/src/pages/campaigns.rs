//! Campaigns: status, strategy, progress, window and owner; search and filter; paged.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::campaigns::list_campaigns;
use crate::components::status::{ErrorBox, StatusBadge};
use crate::domain::audit::encode_component;
use crate::domain::lifecycle::CampaignState;

#[component]
pub fn CampaignsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| {
            (
                q.get("status").unwrap_or_default(),
                q.get("q").unwrap_or_default(),
                q.get("page").and_then(|p| p.parse::<u32>().ok()).unwrap_or(0),
                q.get("environment").unwrap_or_default(),
            )
        })
    });
    let page = Resource::new(
        move || filter.get(),
        |(status, search, page, environment)| list_campaigns(status, search, page, environment),
    );
    let status_options = move || {
        let current = filter.with(|f| f.0.clone());
        std::iter::once(("".to_string(), "any status".to_string()))
            .chain(CampaignState::ALL.iter().map(|s| {
                (
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    s.label().to_string(),
                )
            }))
            .map(|(value, label)| {
                let selected = value == current;
                view! { <option value=value selected=selected>{label}</option> }
            })
            .collect_view()
    };
    view! {
        <Title text="Campaigns" />
        <h1>"Campaigns"</h1>
        <p><a class="btn btn-primary" href="/campaigns/new" data-testid="new-campaign">"New campaign"</a></p>
        <form method="get" action="/campaigns" class="filters" role="search" aria-label="Filter campaigns">
            <div class="field">
                <label for="c-q">"Search"</label>
                <input id="c-q" name="q" type="text" placeholder="name or pool" prop:value=move || filter.with(|f| f.1.clone()) />
            </div>
            <div class="field">
                <label for="c-status">"Status"</label>
                <select id="c-status" name="status">{status_options}</select>
            </div>
            <div class="field">
                <label for="c-env">"Environment"</label>
                // Its own boundary: the names come with the page of campaigns.
                <Transition fallback=|| view! { <select id="c-env" name="environment"><option value="">"any environment"</option></select> }>
                    {move || Suspend::new(async move {
                        let current = filter.with_untracked(|f| f.3.clone());
                        let names = page.await.map(|p| p.environments).unwrap_or_default();
                        view! {
                            <select id="c-env" name="environment">
                                <option value="">"any environment"</option>
                                {names.into_iter().map(|e| {
                                    let selected = e == current;
                                    view! { <option value=e.clone() selected=selected>{e.clone()}</option> }
                                }).collect_view()}
                            </select>
                        }
                    })}
                </Transition>
            </div>
            <div class="field actions">
                <button type="submit" class="btn btn-primary">"Filter"</button>
                <a class="btn btn-quiet" href="/campaigns">"Clear"</a>
            </div>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading campaigns…"</p> }>
            {move || Suspend::new(async move {
                match page.await {
                    Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                    Ok(p) if p.campaigns.is_empty() => view! {
                        <p class="empty">"No campaigns match. Clear the filter to see all, or create one: "<a href="/campaigns/new">"New campaign"</a>", "<code>"switchyard apply -f examples/canary.toml"</code>" or the API."</p>
                    }.into_any(),
                    Ok(p) => {
                        let (status, search, _, environment) = filter.get_untracked();
                        let last = ((p.total.max(1) - 1) / i64::from(p.per_page)) as u32;
                        let link = move |n: u32| format!("/campaigns?status={}&environment={}&q={}&page={n}", encode_component(&status), encode_component(&environment), encode_component(&search));
                        let prev = (p.page > 0).then(|| link(p.page - 1));
                        let next = (p.page < last).then(|| link(p.page + 1));
                        view! {
                            <p data-testid="campaign-count">{format!("{} campaign{}", p.total, if p.total == 1 { "" } else { "s" })}</p>
                            <div class="table-wrap"><table class="data" data-testid="campaigns-table">
                                <thead><tr>
                                    <th scope="col">"Campaign"</th><th scope="col">"Status"</th><th scope="col">"Strategy"</th>
                                    <th scope="col">"Progress"</th><th scope="col">"Environment / pool"</th><th scope="col">"Window (UTC)"</th><th scope="col">"Owner"</th>
                                </tr></thead>
                                <tbody>
                                {p.campaigns.into_iter().map(|c| view! {
                                    <tr>
                                        <td><a href=format!("/campaigns/{}", c.id)>{c.name.clone()}</a></td>
                                        <td><StatusBadge state=c.status /></td>
                                        <td>{c.strategy.replace('_', "-")}</td>
                                        <td>{if c.steps_total == 0 { "not started".to_string() } else { format!("{} / {} steps", c.step_index.min(c.steps_total as i64), c.steps_total) }}</td>
                                        <td>{format!("{} / {}", c.environment, c.pool)}</td>
                                        <td>{format!("{} → {}", short_time(&c.window_start), short_time(&c.window_end))}</td>
                                        <td>{c.created_by.clone()}</td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                            <nav class="pager" aria-label="Pages">
                                {prev.map(|h| view! { <a class="btn" href=h rel="prev">"← Newer"</a> })}
                                <span>{format!("Page {} of {}", p.page + 1, last + 1)}</span>
                                {next.map(|h| view! { <a class="btn" href=h rel="next">"Older →"</a> })}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// `2026-12-01T07:00:00+00:00` → `2026-12-01 07:00`.
pub fn short_time(ts: &str) -> String {
    ts.get(..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| ts.to_string())
}
