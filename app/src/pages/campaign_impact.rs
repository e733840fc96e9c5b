//! The impact report of a campaign: the requests the router answered during the change by
//! release and how many failed, how long the rollback took, the gate verdicts on the way and
//! how long each step took. Measured from the stored samples, never estimated.

use leptos::prelude::*;

use crate::api::campaigns::campaign_impact;
use crate::domain::lifecycle::Phase;
use crate::domain::views::ImpactReport;

#[component]
pub fn CampaignImpact(
    #[prop(into)] id: Signal<i64>,
    #[prop(into)] tick: Signal<u64>,
) -> impl IntoView {
    let report = Resource::new(move || (id.get(), tick.get()), |(id, _)| campaign_impact(id));
    view! {
        <section aria-labelledby="impact-title" data-testid="impact-report">
            <h2 id="impact-title">"Impact report"</h2>
            <Transition fallback=|| view! { <p class="muted">"Counting the requests…"</p> }>
                {move || Suspend::new(async move {
                    match report.await {
                        Ok(r) => view! { <ImpactBody r=r /> }.into_any(),
                        Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

fn secs(s: f64) -> String {
    if s >= 120.0 { format!("{:.1} min", s / 60.0) } else { format!("{s:.1} s") }
}

#[component]
fn ImpactBody(r: ImpactReport) -> impl IntoView {
    if r.started_at.is_none() {
        return view! { <p class="muted">"Not started: nothing to report yet."</p> }.into_any();
    }
    let summary = if r.finished_at.is_some() {
        format!("{} over {}.", r.line(), r.duration_secs.map(secs).unwrap_or_default())
    } else {
        format!("So far: {}.", r.line())
    };
    let failed_class = if r.failed > 0 { "notice notice-warn" } else { "notice notice-ok" };
    view! {
        <p class={failed_class} data-testid="impact-summary">{summary}</p>
        <p class="muted">{format!("Counted by {} from its per-second samples.", r.counted_by)}</p>
        {r.rollback_secs.map(|s| view! {
            <p data-testid="impact-rollback">{format!("Rollback: all traffic was back on {} {} after the abort.", r.from_release, secs(s))}</p>
        })}
        <div class="table-wrap"><table class="data" data-testid="impact-by-release">
            <thead><tr><th scope="col">"Release"</th><th scope="col">"Requests"</th><th scope="col">"Failed"</th></tr></thead>
            <tbody>
                {r.by_release.into_iter().map(|b| view! {
                    <tr><td>{b.release}</td><td>{b.requests}</td><td>{b.errors}</td></tr>
                }).collect_view()}
            </tbody>
        </table></div>
        {(!r.gates.is_empty()).then(|| view! {
            <h3>"Gate verdicts"</h3>
            <div class="table-wrap"><table class="data" data-testid="impact-gates">
                <thead><tr><th scope="col">"When (UTC)"</th><th scope="col">"Step"</th><th scope="col">"Outcome"</th><th scope="col">"Why"</th></tr></thead>
                <tbody>
                    {r.gates.into_iter().map(|g| view! {
                        <tr>
                            <td>{crate::pages::campaigns::short_time(&g.at)}</td>
                            <td>{match (g.step, g.continuous) {
                                (None, _) => "watch after success".to_string(),
                                (Some(s), true) => format!("{s} (continuous)"),
                                (Some(s), false) => s.to_string(),
                            }}</td>
                            <td>{g.outcome}</td><td>{g.reason}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table></div>
        })}
        <h3>"Step durations"</h3>
        <div class="table-wrap"><table class="data" data-testid="impact-steps">
            <thead><tr><th scope="col">"Step"</th><th scope="col">"Kind"</th><th scope="col">"Status"</th><th scope="col">"Took"</th></tr></thead>
            <tbody>
                {r.steps.into_iter().map(|s| view! {
                    <tr>
                        <td>{match s.phase { Phase::Forward => s.step.to_string(), Phase::Rollback => format!("rollback {}", s.step) }}</td>
                        <td title=s.description>{s.kind}</td>
                        <td>{s.status.as_str()}</td>
                        <td>{s.secs.map(secs).unwrap_or_else(|| "—".into())}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table></div>
    }
    .into_any()
}
