//! The communications section of a campaign page: the notice schedule (kind, due time,
//! status), the delivery log (recipient, channel, attempts, last result; a failed delivery is
//! called out at the top, never silent) and a preview of every notice kind as it will be sent.
//! Read-only: viewers see it all; the notices themselves are caused by campaign changes.

use leptos::prelude::*;

use crate::api::comms::{CommsView, DeliveryView, NoticePreview, NoticeView, campaign_comms};

/// `2026-11-22T07:00:00.000000Z` → `2026-11-22 07:00:00 UTC`.
fn utc(ts: &str) -> String {
    match ts.get(..19) {
        Some(t) => format!("{} UTC", t.replace('T', " ")),
        None => ts.to_string(),
    }
}

fn kind_label(kind: &str) -> String {
    match kind.strip_prefix("reminder_") {
        Some(offset) => format!("reminder ({offset} before)"),
        None => kind.replace('_', " "),
    }
}

fn badge(status: &str) -> &'static str {
    match status {
        "sent" => "badge badge-succeeded",
        "failed" => "badge badge-failed",
        "sending" => "badge badge-running",
        "cancelled" | "skipped" => "badge badge-rolled_back",
        _ => "badge badge-draft",
    }
}

#[component]
pub fn CampaignComms(#[prop(into)] id: Signal<i64>) -> impl IntoView {
    let tick = RwSignal::new(0_u64);
    let comms = Resource::new(move || (id.get(), tick.get()), |(id, _)| campaign_comms(id));
    // Deliveries change without campaign events (the dispatcher works on its own clock).
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_secs(5),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <section aria-labelledby="comms-title" data-testid="campaign-comms">
            <h2 id="comms-title">"Communications"</h2>
            <Transition fallback=|| view! { <p class="muted">"Reading the notices…"</p> }>
                {move || Suspend::new(async move {
                    match comms.await {
                        Ok(c) => view! { <CommsBody c=c /> }.into_any(),
                        Err(e) => view! { <p class="muted">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn CommsBody(c: CommsView) -> impl IntoView {
    let failed: Vec<DeliveryView> =
        c.deliveries.iter().filter(|d| d.status == "failed").cloned().collect();
    let published = if c.publish {
        "The window is published on the public status page and its feeds."
    } else {
        "The window is not published (communications.publish is off)."
    };
    let notifying = if c.notify {
        "Notices go to confirmed subscribers of the affected components."
    } else {
        "No notices are sent to subscribers (communications.notify is off)."
    };
    view! {
        <p class="muted">{published}" "{notifying}</p>
        {(!failed.is_empty()).then(|| view! {
            <div class="notice notice-error" role="alert" data-testid="comms-failed">
                <strong>{format!("{} failed deliver{}: ", failed.len(), if failed.len() == 1 { "y" } else { "ies" })}</strong>
                {failed.iter().map(|d| format!("{} to {} ({}): {}", kind_label(&d.kind), d.recipient, d.channel, d.last_result.clone().unwrap_or_default())).collect::<Vec<_>>().join("; ")}
            </div>
        })}
        <h3>"Schedule"</h3>
        <Schedule notices=c.notices deliveries=c.deliveries.clone() />
        <h3>"Delivery log"</h3>
        <DeliveryLog deliveries=c.deliveries />
        <h3>"Notice previews"</h3>
        <p class="muted">"Each kind as it will be sent, with this campaign's window and templates (communications.templates)."</p>
        <Previews previews=c.previews />
    }
}

#[component]
fn Schedule(notices: Vec<NoticeView>, deliveries: Vec<DeliveryView>) -> impl IntoView {
    if notices.is_empty() {
        return view! { <p class="muted" data-testid="comms-schedule">"No notices yet: they are queued when the campaign is scheduled or started."</p> }.into_any();
    }
    let rows = notices
        .into_iter()
        .map(|n| {
            let mine: Vec<&DeliveryView> =
                deliveries.iter().filter(|d| d.notice_id == n.id).collect();
            let count = |s: &str| mine.iter().filter(|d| d.status == s).count();
            let summary = if mine.is_empty() {
                "no recipients".to_string()
            } else {
                format!(
                    "{} sent, {} pending, {} failed of {}",
                    count("sent"),
                    count("pending") + count("sending"),
                    count("failed"),
                    mine.len()
                )
            };
            view! {
                <tr data-kind=n.kind.clone()>
                    <td class="nowrap">{kind_label(&n.kind)}</td>
                    <td class="nowrap">{utc(&n.due_at)}</td>
                    <td><span class=badge(&n.status)>{n.status.clone()}</span></td>
                    <td>{n.sequence}</td>
                    <td>{summary}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap"><table class="data" data-testid="comms-schedule">
            <thead><tr><th scope="col">"Notice"</th><th scope="col">"Due"</th><th scope="col">"Status"</th><th scope="col">"Sequence"</th><th scope="col">"Deliveries"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
    .into_any()
}

#[component]
fn DeliveryLog(deliveries: Vec<DeliveryView>) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p class="muted" data-testid="comms-deliveries">"No deliveries: no confirmed subscriber matches this campaign's components yet."</p> }.into_any();
    }
    let rows = deliveries
        .into_iter()
        .map(|d| {
            view! {
                <tr data-status=d.status.clone()>
                    <td class="nowrap">{kind_label(&d.kind)}</td>
                    <td class="wrap">{d.recipient}</td>
                    <td>{d.channel}</td>
                    <td><span class=badge(&d.status)>{d.status.clone()}</span></td>
                    <td>{d.attempts}</td>
                    <td class="wrap">{d.last_result.unwrap_or_else(|| format!("due {}", utc(&d.due_at)))}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap"><table class="data" data-testid="comms-deliveries">
            <thead><tr><th scope="col">"Notice"</th><th scope="col">"Recipient"</th><th scope="col">"Channel"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th><th scope="col">"Last result"</th></tr></thead>
            <tbody>{rows}</tbody>
        </table></div>
    }
    .into_any()
}

#[component]
fn Previews(previews: Vec<NoticePreview>) -> impl IntoView {
    previews
        .into_iter()
        .map(|p| {
            view! {
                <details class="notice-preview" data-kind=p.kind.clone()>
                    <summary>{format!("{}: {}", kind_label(&p.kind), p.subject)}</summary>
                    <h4>"Plain text"</h4>
                    <pre>{p.text}</pre>
                    <h4>"HTML"</h4>
                    // Sandboxed: the preview can neither run script nor navigate this page.
                    <iframe sandbox="" srcdoc=p.html title=format!("HTML preview: {}", p.subject)></iframe>
                </details>
            }
        })
        .collect_view()
}
