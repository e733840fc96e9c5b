//! Home: who you are, what you may do, and the latest activity.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::audit::search_audit;
use crate::components::layout::Me;
use crate::domain::audit::AuditFilter;
use crate::domain::auth::Role;

#[component]
pub fn HomePage() -> impl IntoView {
    let Me(me) = expect_context::<Me>();
    let recent =
        Resource::new(|| (), |_| search_audit(AuditFilter { per_page: 8, ..Default::default() }));
    view! {
        <Title text="Home" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                me.await.map(|p| {
                    let can = |r: Role| p.role.allows(r);
                    view! {
                        <h1 data-testid="home-title">"Welcome, " {p.username.clone()}</h1>
                        {p.must_change_password.then(|| view! {
                            <div class="notice notice-warn" role="alert">
                                <strong>"Action needed: "</strong>
                                "you signed in with a one-time password. "
                                <a href="/account">"Choose your own password now."</a>
                            </div>
                        })}
                        <section class="cards">
                            <article class="card">
                                <h2>"Your role"</h2>
                                <p class="big">{p.role.as_str()}</p>
                                <ul class="checklist">
                                    <li>{if can(Role::Viewer) { "✓" } else { "✗" }} " view campaigns, environments and the audit trail"</li>
                                    <li>{if can(Role::Operator) { "✓" } else { "✗" }} " start, pause and abort campaigns"</li>
                                    <li>{if can(Role::Approver) { "✓" } else { "✗" }} " approve campaigns created by others"</li>
                                    <li>{if can(Role::Admin) { "✓" } else { "✗" }} " manage users and roles"</li>
                                </ul>
                            </article>
                            <article class="card">
                                <h2>"Campaigns"</h2>
                                <p>"Plan, start, watch and abort rollouts."</p>
                                <p><a class="btn btn-primary" href="/campaigns">"Open campaigns"</a></p>
                            </article>
                        </section>
                    }
                })
            })}
        </Suspense>
        <section>
            <h2>"Recent activity"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match recent.await {
                        Ok(page) if page.events.is_empty() => view! { <p class="muted">"Nothing has happened yet."</p> }.into_any(),
                        Ok(page) => view! {
                            <ul class="activity">
                                {page.events.into_iter().map(|e| view! {
                                    <li>
                                        <time datetime=e.ts.clone()>{e.ts.clone()}</time>
                                        " " <strong>{e.actor}</strong> " " {e.action} " " {e.object}
                                        " — " <span class=format!("outcome outcome-{}", e.outcome)>{e.outcome.clone()}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                            <p><a href="/audit">"Open the audit trail"</a></p>
                        }.into_any(),
                        Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
