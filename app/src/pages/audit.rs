//! Audit trail: filter by actor, action, object and time range, paged, with CSV and JSON Lines
//! exports of exactly the filtered set. The filter form is a GET form, so links are shareable.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::audit::search_audit;
use crate::domain::audit::AuditFilter;

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = Memo::new(move |_| {
        query.with(|q| {
            let get = |k: &str| q.get(k).unwrap_or_default();
            AuditFilter {
                actor: get("actor"),
                action: get("action"),
                object: get("object"),
                from: get("from"),
                to: get("to"),
                page: get("page").parse().unwrap_or(0),
                per_page: 0,
            }
        })
    });
    let results = Resource::new(move || filter.get(), search_audit);
    let value = move |f: fn(&AuditFilter) -> &String| filter.with(|x| f(x).clone());

    view! {
        <Title text="Audit trail" />
        <h1>"Audit trail"</h1>
        <p class="muted">"Every action, by whom, when, from where and with what result. Events are hash-chained: any change to a stored event is detected by "<code>"switchyard audit verify"</code>"."</p>
        <form method="get" action="/audit" class="filters" role="search" aria-label="Filter audit events">
            <div class="field">
                <label for="f-actor">"Actor"</label>
                <input id="f-actor" name="actor" type="text" prop:value=move || value(|f| &f.actor) placeholder="alice" />
            </div>
            <div class="field">
                <label for="f-action">"Action"</label>
                <input id="f-action" name="action" type="text" prop:value=move || value(|f| &f.action) placeholder="auth.login" />
            </div>
            <div class="field">
                <label for="f-object">"Object"</label>
                <input id="f-object" name="object" type="text" prop:value=move || value(|f| &f.object) placeholder="user:alice" />
            </div>
            <div class="field">
                <label for="f-from">"From (UTC)"</label>
                <input id="f-from" name="from" type="text" prop:value=move || value(|f| &f.from) placeholder="2026-11-01" />
            </div>
            <div class="field">
                <label for="f-to">"To (UTC, exclusive)"</label>
                <input id="f-to" name="to" type="text" prop:value=move || value(|f| &f.to) placeholder="2026-12-01T00:00:00Z" />
            </div>
            <div class="field actions">
                <button type="submit" class="btn btn-primary">"Filter"</button>
                <a class="btn btn-quiet" href="/audit">"Clear"</a>
            </div>
        </form>
        <Transition fallback=|| view! { <p class="muted">"Loading events…"</p> }>
            {move || Suspend::new(async move {
                let f = filter.get_untracked();
                match results.await {
                    Err(e) => view! { <div class="notice notice-error" role="alert"><strong>"Error: "</strong>{e.message}</div> }.into_any(),
                    Ok(page) => {
                        let export_q = AuditFilter { page: 0, ..f.clone() }.to_query();
                        let sep = if export_q.is_empty() { "" } else { "&" };
                        let csv = format!("/api/v1/audit/export?format=csv{sep}{export_q}");
                        let jsonl = format!("/api/v1/audit/export?format=jsonl{sep}{export_q}");
                        let last_page = ((page.total.max(1) - 1) / i64::from(page.per_page)) as u32;
                        let prev = (page.page > 0).then(|| format!("/audit?{}", AuditFilter { page: page.page - 1, ..f.clone() }.to_query()));
                        let next = (page.page < last_page).then(|| format!("/audit?{}", AuditFilter { page: page.page + 1, ..f.clone() }.to_query()));
                        view! {
                            <div class="toolbar">
                                <p data-testid="audit-count">{format!("{} matching event{}", page.total, if page.total == 1 { "" } else { "s" })}</p>
                                <p class="exports">"Export: " <a href=csv download>"CSV"</a> " · " <a href=jsonl download>"JSON Lines"</a></p>
                            </div>
                            {if page.events.is_empty() {
                                view! { <p class="empty">"No events match this filter. Clear the filter or widen the time range."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap">
                                    <table class="data" data-testid="audit-table">
                                        <thead><tr>
                                            <th scope="col">"#"</th><th scope="col">"Time (UTC)"</th><th scope="col">"Actor"</th>
                                            <th scope="col">"Role"</th><th scope="col">"Source"</th><th scope="col">"Action"</th>
                                            <th scope="col">"Object"</th><th scope="col">"Outcome"</th><th scope="col">"Details"</th>
                                        </tr></thead>
                                        <tbody>
                                            {page.events.into_iter().map(|e| view! {
                                                <tr>
                                                    <td>{e.id}</td>
                                                    <td><time datetime=e.ts.clone()>{e.ts.clone()}</time></td>
                                                    <td><a href=format!("/audit?actor={}", crate::domain::audit::encode_component(&e.actor))>{e.actor.clone()}</a></td>
                                                    <td>{e.role}</td>
                                                    <td>{e.source_ip}</td>
                                                    <td>{e.action}</td>
                                                    <td><a href=format!("/audit?object={}", crate::domain::audit::encode_component(&e.object))>{e.object.clone()}</a></td>
                                                    <td><span class=format!("outcome outcome-{}", e.outcome)>{e.outcome.clone()}</span></td>
                                                    <td><code class="details">{e.details.to_string()}</code></td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                    </div>
                                }.into_any()
                            }}
                            <nav class="pager" aria-label="Pages">
                                {prev.map(|href| view! { <a class="btn" href=href rel="prev">"← Newer"</a> })}
                                <span>{format!("Page {} of {}", page.page + 1, last_page + 1)}</span>
                                {next.map(|href| view! { <a class="btn" href=href rel="next">"Older →"</a> })}
                            </nav>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}
