//! The campaign editor (`/campaigns/new`): a form with strategy-specific fields, checked in the
//! browser on every keystroke by the shared `validate` and `compile` (errors beside their fields,
//! the compiled plan beside the form), saved as a draft through a server function that checks it
//! again, and imported from or exported to TOML/YAML. Operators and above; the server refuses
//! anyone else regardless of what this page shows.

pub mod model;

use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

use self::model::{Checked, FormData, Placed, StepRow, input_id, place, to_spec};
use crate::api::editor::{
    ExportSpec, ImportSpec, ReplayGate, SaveDraft, editor_environments, editor_start,
};
use crate::components::layout::Me;
use crate::components::status::ErrorBox;
use crate::domain::audit::encode_component;
use crate::domain::auth::Role;
use crate::domain::campaign::CampaignSpec;
use crate::domain::environment::Environment;
use crate::domain::ids::Secs;

/// What the editor was opened for: a new campaign (maybe started from another one) or a draft.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Opened {
    /// The draft being edited (`/campaigns/:id/edit`).
    draft: Option<i64>,
    /// `?from=ID&as=clone|rollback_release` on `/campaigns/new`.
    from: Option<(i64, String)>,
}

impl Opened {
    fn title(&self) -> String {
        match (&self.draft, &self.from) {
            (Some(id), _) => format!("Edit draft #{id}"),
            (None, Some((id, m))) if m == "rollback_release" => {
                format!("Roll back the release of campaign #{id}")
            }
            (None, Some((id, _))) => format!("New campaign from #{id}"),
            (None, None) => "New campaign".into(),
        }
    }
}

#[component]
pub fn EditorPage() -> impl IntoView {
    let Me(me) = expect_context::<Me>();
    let params = leptos_router::hooks::use_params_map();
    let query = leptos_router::hooks::use_query_map();
    let opened = Memo::new(move |_| {
        let draft = params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()));
        let from = query.with(|q| {
            let id = q.get("from").and_then(|s| s.parse::<i64>().ok())?;
            Some((id, q.get("as").unwrap_or_else(|| "clone".into())))
        });
        Opened { draft, from }
    });
    let envs = Resource::new(|| (), |_| editor_environments());
    let start = Resource::new(
        move || opened.get(),
        |o| {
            let (from, mode) = o.from.unwrap_or((0, String::new()));
            editor_start(o.draft.unwrap_or(0), from, mode)
        },
    );
    view! {
        <Title text=move || opened.with(Opened::title) />
        <h1 data-testid="editor-title">{move || opened.with(Opened::title)}</h1>
        <Transition fallback=|| view! { <p class="muted">"Loading the editor…"</p> }>
            {move || Suspend::new(async move {
                let me = me.await;
                let envs = envs.await;
                let start = start.await;
                let draft = opened.get_untracked().draft;
                match (me, envs) {
                    (Some(p), _) if !p.role.allows(Role::Operator) => view! {
                        <div class="notice notice-warn" role="status" data-testid="editor-refusal">
                            <strong>"You cannot create campaigns. "</strong>
                            {format!("Creating a campaign needs the operator role or higher; you are signed in as {} ({}). Ask an admin for the operator role, or browse ", p.username, p.role.as_str())}
                            <a href="/campaigns">"the campaigns"</a>"."
                        </div>
                    }.into_any(),
                    (None, _) => view! { <p><a href="/login">"Sign in"</a>" to create a campaign."</p> }.into_any(),
                    (_, Err(e)) => view! { <ErrorBox message=e.message /> }.into_any(),
                    (_, Ok(envs)) => match start {
                        Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                        Ok(start) => view! { <Editor envs start draft /> }.into_any(),
                    },
                }
            })}
        </Transition>
    }
}

/// The form's state and its derived errors, shared by every input.
#[derive(Clone, Copy)]
struct Ctx {
    form: RwSignal<FormData>,
    placed: Memo<Placed>,
}

/// The release the pool's first target runs: what a campaign on that pool starts from.
fn pool_release(envs: &[Environment], env: &str, pool: &str) -> String {
    envs.iter()
        .find(|e| e.name.as_str() == env)
        .and_then(|e| {
            let p = e.pools.iter().find(|p| p.name.as_str() == pool)?;
            e.pool_targets(p).first().map(|t| t.release.to_string())
        })
        .unwrap_or_default()
}

fn tomorrow() -> String {
    (chrono::Utc::now().date_naive() + chrono::Days::new(1)).to_string()
}

#[component]
fn Editor(
    envs: Vec<Environment>,
    start: Option<CampaignSpec>,
    draft: Option<i64>,
) -> impl IntoView {
    let (env0, pool0) = envs
        .first()
        .map(|e| {
            (e.name.to_string(), e.pools.first().map(|p| p.name.to_string()).unwrap_or_default())
        })
        .unwrap_or_default();
    let release0 = pool_release(&envs, &env0, &pool0);
    let form = RwSignal::new(match &start {
        Some(spec) => FormData::from_spec(spec),
        None => FormData::new(&env0, &pool0, &release0, &tomorrow()),
    });
    let envs = StoredValue::new(envs);

    let save = ServerAction::<SaveDraft>::new();
    let import = ServerAction::<ImportSpec>::new();
    let export = ServerAction::<ExportSpec>::new();
    // The form as it was sent; the server's field errors are shown while it is unchanged.
    let submitted = RwSignal::new(None::<FormData>);
    let tried = RwSignal::new(false);

    let checked: Memo<Checked> =
        Memo::new(move |_| envs.with_value(|e| form.with(|f| model::check(f, e))));
    let placed = Memo::new(move |_| {
        let mut errors: Vec<(String, String)> = match checked.get() {
            Ok(_) => Vec::new(),
            Err(errs) => errs.into_iter().map(|e| (e.field, e.message)).collect(),
        };
        if let Some(Err(e)) = save.value().get()
            && submitted.with(|s| form.with(|f| s.as_ref() == Some(f)))
        {
            if e.fields.is_empty() {
                errors.push((String::new(), e.message));
            }
            errors.extend(e.fields.into_iter().map(|(f, m)| (f, format!("server: {m}"))));
        }
        form.with(|f| place(errors.iter().map(|(a, b)| (a.as_str(), b.as_str())), f))
    });
    let ctx = Ctx { form, placed };

    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = save.value().get() {
            navigate(&format!("/campaigns/{id}"), Default::default());
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(spec)) = import.value().get() {
            form.set(FormData::from_spec(&spec));
        }
    });
    let spec_text = RwSignal::new(String::new());
    let spec_format = RwSignal::new("toml".to_string());
    Effect::new(move |_| {
        if let Some(Ok(text)) = export.value().get() {
            spec_text.set(text);
        }
    });
    let export_refused = RwSignal::new(None::<String>);

    let on_submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        tried.set(true);
        match checked.get_untracked() {
            Ok((spec, _)) => {
                submitted.set(Some(form.get_untracked()));
                save.dispatch(SaveDraft { id: draft.unwrap_or(0), spec });
            }
            #[cfg(feature = "hydrate")]
            Err(_) => focus_first_problem(),
            #[cfg(not(feature = "hydrate"))]
            Err(_) => {}
        }
    };
    let on_export = move |_| {
        let (spec, errs) = form.with_untracked(to_spec);
        if let Some(e) = errs.first() {
            export_refused.set(Some(format!(
                "fix {} first: {} (numbers, durations and times must read before they can be written out)",
                e.field, e.message
            )));
            return;
        }
        export_refused.set(None);
        export.dispatch(ExportSpec { spec, format: spec_format.get_untracked() });
    };
    // A chosen file is read in the browser and imported at once; its extension picks the format.
    let on_file = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        read_file(&_ev, move |text, format| {
            spec_text.set(text.clone());
            spec_format.set(format.clone());
            import.dispatch(ImportSpec { text, format });
        });
    };
    let on_import = move |_| {
        import.dispatch(ImportSpec {
            text: spec_text.get_untracked(),
            format: spec_format.get_untracked(),
        });
    };

    let kind = Memo::new(move |_| form.with(|f| f.kind.clone()));
    let env_name = Memo::new(move |_| form.with(|f| f.environment.clone()));
    let problems = move || match checked.get() {
        Ok(_) => 0,
        Err(e) => e.len(),
    };

    let env_options = move || {
        let current = env_name.get();
        envs.with_value(|list| {
            let known = list.iter().any(|e| e.name.as_str() == current);
            (!known)
                .then(
                    || view! { <option value="" selected=true>"— pick an environment —"</option> },
                )
                .into_iter()
                .map(IntoAny::into_any)
                .chain(list.iter().map(|e| {
                    let n = e.name.to_string();
                    let selected = n == current;
                    view! { <option value=n.clone() selected=selected>{n.clone()}</option> }
                        .into_any()
                }))
                .collect_view()
        })
    };
    let pool_options = move || {
        let current_env = env_name.get();
        let current = form.with(|f| f.pool.clone());
        envs.with_value(|list| {
            let pools: Vec<String> = list
                .iter()
                .find(|e| e.name.as_str() == current_env)
                .map(|e| e.pools.iter().map(|p| p.name.to_string()).collect())
                .unwrap_or_default();
            let known = pools.contains(&current);
            (!known)
                .then(|| view! { <option value="" selected=true>"— pick a pool —"</option> })
                .into_iter()
                .map(IntoAny::into_any)
                .chain(pools.into_iter().map(|n| {
                    let selected = n == current;
                    view! { <option value=n.clone() selected=selected>{format!("{n} (runs {})", envs.with_value(|l| pool_release(l, &current_env, &n)))}</option> }.into_any()
                }))
                .collect_view()
        })
    };
    let on_env = move |ev| {
        let env = event_target_value(&ev);
        envs.with_value(|list| {
            let pool = list
                .iter()
                .find(|e| e.name.as_str() == env)
                .and_then(|e| e.pools.first().map(|p| p.name.to_string()))
                .unwrap_or_default();
            let release = pool_release(list, &env, &pool);
            form.update(|f| {
                f.environment = env;
                f.pool = pool;
                f.from_release = release;
            });
        });
    };
    let on_pool = move |ev| {
        let pool = event_target_value(&ev);
        envs.with_value(|list| {
            form.update(|f| {
                f.from_release = pool_release(list, &f.environment, &pool);
                f.pool = pool;
            });
        });
    };

    view! {
        <p class="muted">"Every field is checked as you type, with the same rules the server applies when you save. The plan the campaign compiles to is shown beside the form."</p>
        <div class="editor">
            <form class="editor-form" on:submit=on_submit novalidate aria-describedby="editor-summary">
                <div id="editor-summary" data-testid="error-summary" aria-live="polite" tabindex="-1">
                    {move || {
                        let n = problems();
                        let unplaced = placed.with(|p| p.unplaced.clone());
                        (n > 0 && (tried.get() || !unplaced.is_empty())).then(|| view! {
                            <div class="notice notice-error">
                                <strong>{format!("{n} problem{} to fix", if n == 1 { "" } else { "s" })}</strong>
                                " — each is shown beside its field."
                                {(!unplaced.is_empty()).then(|| view! {
                                    <ul>{unplaced.into_iter().map(|m| view! { <li>{m}</li> }).collect_view()}</ul>
                                })}
                            </div>
                        })
                    }}
                    {move || match save.value().get() {
                        Some(Err(e)) if submitted.with(|s| form.with(|f| s.as_ref() == Some(f))) && !e.fields.is_empty() => Some(view! { <ErrorBox message=format!("The server refused the draft: {}", e.message) /> }),
                        _ => None,
                    }}
                </div>

                <fieldset>
                    <legend>"What"</legend>
                    {text(ctx, "name", "Campaign name", "lowercase letters, digits and '-', e.g. web-v2", |f| f.name.clone(), |f, v| f.name = v)}
                    {text(ctx, "service", "Service", "", |f| f.service.clone(), |f, v| f.service = v)}
                    <div class="field">
                        <label for="f-environment">"Environment"</label>
                        <select id="f-environment" on:change=on_env aria-describedby="f-environment-err">{env_options}</select>
                        {messages(ctx, "environment")}
                    </div>
                    <div class="field">
                        <label for="f-pool">"Pool"</label>
                        <select id="f-pool" on:change=on_pool aria-describedby="f-pool-err">{pool_options}</select>
                        {messages(ctx, "pool")}
                    </div>
                    <div class="pair">
                        {text(ctx, "from_release", "From release", "what the pool runs now", |f| f.from_release.clone(), |f, v| f.from_release = v)}
                        {text(ctx, "to_release", "To release", "e.g. v2 or an image id", |f| f.to_release.clone(), |f, v| f.to_release = v)}
                    </div>
                </fieldset>

                <fieldset>
                    <legend>"Strategy"</legend>
                    {select(ctx, "strategy", "Strategy", &[("canary", "canary — weight steps with bakes"), ("rolling", "rolling — replace in batches"), ("blue_green", "blue-green — new set beside the old"), ("feature_flag", "feature flag — percentage rollout")], |f| f.kind.clone(), |f, v| f.kind = v)}
                    {move || match kind.get().as_str() {
                        "rolling" => rolling(ctx).into_any(),
                        "blue_green" => blue_green(ctx).into_any(),
                        "feature_flag" => view! {
                            {text(ctx, "strategy.flag", "Flag", "the flag's name, e.g. new-checkout", |f| f.flag.clone(), |f, v| f.flag = v)}
                            {steps(ctx, "percent", "Percent")}
                        }.into_any(),
                        _ => view! {
                            {text(ctx, "strategy.canary_count", "Canary instances", "new instances that take the first steps", |f| f.canary_count.clone(), |f, v| f.canary_count = v)}
                            {steps(ctx, "weight", "Weight %")}
                        }.into_any(),
                    }}
                </fieldset>

                <fieldset>
                    <legend>"Health gate"</legend>
                    {messages(ctx, "gates")}
                    <div class="grid3">
                        {text(ctx, "gates[0].max_error_rate", "Max error rate (0–1)", "", |f| f.gate.max_error_rate.clone(), |f, v| f.gate.max_error_rate = v)}
                        {text(ctx, "gates[0].max_p99_ms", "Max p99 (ms)", "", |f| f.gate.max_p99_ms.clone(), |f, v| f.gate.max_p99_ms = v)}
                        {text(ctx, "gates[0].min_probe_success", "Min probe success (0–1)", "", |f| f.gate.min_probe_success.clone(), |f, v| f.gate.min_probe_success = v)}
                        {text(ctx, "gates[0].window_secs", "Window", "e.g. 60s or 2m", |f| f.gate.window_secs.clone(), |f, v| f.gate.window_secs = v)}
                        {text(ctx, "gates[0].min_samples", "Min samples", "", |f| f.gate.min_samples.clone(), |f, v| f.gate.min_samples = v)}
                        {text(ctx, "gates[0].deadline_secs", "Deadline", "e.g. 5m", |f| f.gate.deadline_secs.clone(), |f, v| f.gate.deadline_secs = v)}
                        {text(ctx, "gates[0].consecutive_failures", "Failures in a row to fail", "", |f| f.gate.consecutive_failures.clone(), |f, v| f.gate.consecutive_failures = v)}
                        {checkbox(ctx, "gates[0].compare", "Also compare the new release with the stable one (latency and errors, Mann-Whitney and two-proportion tests)", |f| f.gate.compare.is_some(), |f, v| f.gate.compare = v.then(|| f.gate.compare.clone().unwrap_or_default()))}
                    </div>
                    {move || {
                        let n = form.with(|f| f.extra_gates.len());
                        (n > 0).then(|| view! { <p class="muted">{format!("Plus {n} more gate{} from the import, kept as written.", if n == 1 { "" } else { "s" })}</p> })
                    }}
                    {view! { <GateReplayPanel form=form /> }.into_any()}
                </fieldset>

                <fieldset>
                    <legend>"Maintenance window"</legend>
                    <div class="pair">
                        {text(ctx, "window.start", "Start", "2026-12-01T08:00 (wall clock in the zone) or …Z", |f| f.window_start.clone(), |f, v| f.window_start = v)}
                        {text(ctx, "window.end", "End", "", |f| f.window_end.clone(), |f, v| f.window_end = v)}
                    </div>
                    {text(ctx, "window.timezone", "Time zone (IANA)", "e.g. Europe/Paris, America/New_York, UTC", |f| f.timezone.clone(), |f, v| f.timezone = v)}
                    {select(ctx, "window.impact", "Impact on users", &[("none", "no impact expected"), ("degraded", "degraded performance"), ("partial_outage", "partial outage"), ("full_outage", "full outage")], |f| f.impact.clone(), |f, v| f.impact = v)}
                    {text(ctx, "window.components", "Affected components", "comma separated, e.g. api, checkout", |f| f.components.clone(), |f, v| f.components = v)}
                    <div class="field">
                        <label for="f-window-message">"Public message"</label>
                        <textarea id="f-window-message" rows="2" aria-describedby="f-window-message-err"
                            prop:value=move || form.with(|f| f.message.clone())
                            on:input=move |ev| { let v = event_target_value(&ev); form.update(|f| f.message = v); }></textarea>
                        {messages(ctx, "window.message")}
                    </div>
                    {checkbox(ctx, "window.start_only_inside", "Refuse to start outside the window", |f| f.start_only_inside, |f, v| f.start_only_inside = v)}
                    {checkbox(ctx, "communications.notify", "Notify users about the window", |f| f.notify, |f, v| f.notify = v)}
                    {text(ctx, "communications.audiences", "Audiences", "comma separated, e.g. customers", |f| f.audiences.clone(), |f, v| f.audiences = v)}
                    {text(ctx, "communications.reminders", "Reminders before the start", "comma separated, e.g. 24h, 1h, 15m", |f| f.reminders.clone(), |f, v| f.reminders = v)}
                    {checkbox(ctx, "communications.publish", "Show the window on the public status page", |f| f.publish, |f, v| f.publish = v)}
                </fieldset>

                <fieldset>
                    <legend>"Rollback and approvals"</legend>
                    <div class="pair">
                        {select(ctx, "rollback.mode", "Rollback on a failed gate", &[("automatic", "automatic"), ("manual", "manual — pause and let an operator decide")], |f| f.rollback_mode.clone(), |f, v| f.rollback_mode = v)}
                        {text(ctx, "rollback.hold_secs", "Keep the old set for", "e.g. 10m", |f| f.hold.clone(), |f, v| f.hold = v)}
                        {text(ctx, "rollback.watch_secs", "Keep watching after success for", "e.g. 10m (0: not at all)", |f| f.watch.clone(), |f, v| f.watch = v)}
                    </div>
                    <div class="pair">
                        {text(ctx, "approvals.required", "Approvals needed (0–5)", "", |f| f.approvals_required.clone(), |f, v| f.approvals_required = v)}
                        {select(ctx, "approvals.role", "Approver role", &[("approver", "approver"), ("admin", "admin")], |f| f.approvals_role.clone(), |f, v| f.approvals_role = v)}
                    </div>
                </fieldset>

                <div class="editor-actions">
                    <button type="submit" class="btn btn-primary" data-testid="save-draft" disabled=move || save.pending().get()>
                        {move || if save.pending().get() { "Saving…" } else if draft.is_some() { "Save changes" } else { "Save draft" }}
                    </button>
                    {move || (tried.get() && checked.with(Result::is_err)).then(|| view! { <span class="field-error" role="alert">"Not saved: fix the problems shown beside the fields."</span> })}
                    {move || match save.value().get() {
                        Some(Err(e)) if e.fields.is_empty() => Some(view! { <ErrorBox message=e.message /> }),
                        _ => None,
                    }}
                </div>
            </form>

            <aside class="editor-side">
                <details class="card spec-io">
                    <summary>"Import or export TOML / YAML"</summary>
                    <div class="field">
                        <label for="spec-format">"Format"</label>
                        <select id="spec-format" prop:value=move || spec_format.get() on:change=move |ev| spec_format.set(event_target_value(&ev))>
                            <option value="toml" selected=true>"TOML"</option>
                            <option value="yaml">"YAML"</option>
                        </select>
                    </div>
                    <div class="field">
                        <label for="spec-text">"Spec text"</label>
                        <textarea id="spec-text" rows="12" spellcheck="false" aria-describedby="spec-text-err"
                            prop:value=move || spec_text.get()
                            on:input=move |ev| spec_text.set(event_target_value(&ev))></textarea>
                        {move || match import.value().get() {
                            Some(Err(e)) => Some(view! { <p class="field-error" id="spec-text-err" role="alert" data-testid="import-error">{e.message}</p> }),
                            _ => None,
                        }}
                        {move || export_refused.get().map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                        {move || match export.value().get() {
                            Some(Err(e)) => Some(view! { <p class="field-error" role="alert">{e.message}</p> }),
                            _ => None,
                        }}
                    </div>
                    <div class="field">
                        <label for="spec-file">"Or choose a file (.toml, .yaml)"</label>
                        <input id="spec-file" type="file" accept=".toml,.yaml,.yml,text/plain" on:change=on_file />
                    </div>
                    <div class="row">
                        <button type="button" class="btn" on:click=on_import disabled=move || import.pending().get()>"Import into the form"</button>
                        <button type="button" class="btn" on:click=on_export disabled=move || export.pending().get()>"Export the form"</button>
                        {move || (matches!(export.value().get(), Some(Ok(_))) && !spec_text.with(String::is_empty)).then(|| {
                            let ext = spec_format.get();
                            let name = form.with(|f| if f.name.trim().is_empty() { "campaign".to_string() } else { f.name.trim().to_string() });
                            view! {
                                <a class="btn btn-quiet" download=format!("{name}.{ext}")
                                    href=format!("data:text/plain;charset=utf-8,{}", encode_component(&spec_text.get()))>"Download"</a>
                            }
                        })}
                    </div>
                    {move || matches!(import.value().get(), Some(Ok(_))).then(|| view! { <p class="notice notice-ok" role="status" data-testid="import-done">"Imported: the form now shows the spec."</p> })}
                </details>
                <section class="card plan-preview" aria-labelledby="preview-title" aria-live="polite" data-testid="plan-preview">
                    <h2 id="preview-title">"Plan preview"</h2>
                    {move || match checked.get() {
                        Err(errs) => view! {
                            <p class="notice notice-warn" data-testid="plan-invalid">
                                {format!("No plan yet: the campaign has {} problem{}. Fix {} and the plan appears here.", errs.len(), if errs.len() == 1 { "" } else { "s" }, if errs.len() == 1 { "it" } else { "them" })}
                            </p>
                        }.into_any(),
                        Ok((_, plan)) => view! {
                            <p data-testid="plan-headline"><strong>{plan.summary.headline.clone()}</strong></p>
                            {(!plan.summary.notes.is_empty()).then(|| view! { <ul class="muted">{plan.summary.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}</ul> })}
                            <ol class="plan-steps" data-testid="plan-steps">
                                {plan.steps.into_iter().map(|s| view! {
                                    <li>
                                        <span class="step-kind">{s.kind.label()}</span>
                                        <span class="step-text">{s.description.clone()}</span>
                                        <span class="step-time muted">{match s.timeout_secs {
                                            None => "waits for a person".to_string(),
                                            Some(_) if s.expected_secs == 0 => "immediate".to_string(),
                                            Some(_) => format!("about {}", Secs(s.expected_secs)),
                                        }}</span>
                                    </li>
                                }).collect_view()}
                            </ol>
                        }.into_any(),
                    }}
                </section>

            </aside>
        </div>
    }
}

/// The messages for one slot, beside its input (`id` = the input's id + `-err`).
fn messages(ctx: Ctx, slot: &str) -> impl IntoView + use<> {
    let slot = slot.to_string();
    let id = format!("{}-err", input_id(&slot));
    move || {
        let msgs = ctx.placed.with(|p| p.by_slot.get(&slot).cloned().unwrap_or_default());
        (!msgs.is_empty()).then(|| {
            view! {
                <ul class="field-errors" id=id.clone() data-field=slot.clone()>
                    {msgs.into_iter().map(|m| view! { <li class="field-error">{m}</li> }).collect_view()}
                </ul>
            }
        })
    }
}

fn invalid(ctx: Ctx, slot: &str) -> impl Fn() -> &'static str + Send + Sync + 'static + use<> {
    let slot = slot.to_string();
    move || if ctx.placed.with(|p| p.by_slot.contains_key(&slot)) { "true" } else { "false" }
}

fn text<G, S>(
    ctx: Ctx,
    slot: &str,
    label: &'static str,
    hint: &'static str,
    get: G,
    set: S,
) -> impl IntoView + use<G, S>
where
    G: Fn(&FormData) -> String + Copy + Send + Sync + 'static,
    S: Fn(&mut FormData, String) + Copy + Send + Sync + 'static,
{
    text_with(ctx, slot.to_string(), label.to_string(), hint, get, set)
}

fn text_with<G, S>(
    ctx: Ctx,
    slot: String,
    label: String,
    hint: &'static str,
    get: G,
    set: S,
) -> impl IntoView + use<G, S>
where
    G: Fn(&FormData) -> String + Copy + Send + Sync + 'static,
    S: Fn(&mut FormData, String) + Copy + Send + Sync + 'static,
{
    let id = input_id(&slot);
    let described =
        if hint.is_empty() { format!("{id}-err") } else { format!("{id}-hint {id}-err") };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input id=id.clone() type="text" autocomplete="off" aria-describedby=described aria-invalid=invalid(ctx, &slot)
                prop:value=move || ctx.form.with(get)
                on:input=move |ev| { let v = event_target_value(&ev); ctx.form.update(|f| set(f, v)); } />
            {(!hint.is_empty()).then(|| view! { <p class="hint" id=format!("{id}-hint")>{hint}</p> })}
            {messages(ctx, &slot)}
        </div>
    }
}

fn select<G, S>(
    ctx: Ctx,
    slot: &str,
    label: &'static str,
    options: &'static [(&'static str, &'static str)],
    get: G,
    set: S,
) -> impl IntoView + use<G, S>
where
    G: Fn(&FormData) -> String + Copy + Send + Sync + 'static,
    S: Fn(&mut FormData, String) + Copy + Send + Sync + 'static,
{
    let id = input_id(slot);
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <select id=id.clone() aria-describedby=format!("{id}-err") aria-invalid=invalid(ctx, slot)
                prop:value=move || ctx.form.with(get)
                on:change=move |ev| { let v = event_target_value(&ev); ctx.form.update(|f| set(f, v)); }>
                {options.iter().map(|(value, text)| view! {
                    <option value=*value selected=move || ctx.form.with(get) == *value>{*text}</option>
                }).collect_view()}
            </select>
            {messages(ctx, slot)}
        </div>
    }
}

fn checkbox<G, S>(
    ctx: Ctx,
    slot: &str,
    label: &'static str,
    get: G,
    set: S,
) -> impl IntoView + use<G, S>
where
    G: Fn(&FormData) -> bool + Copy + Send + Sync + 'static,
    S: Fn(&mut FormData, bool) + Copy + Send + Sync + 'static,
{
    let id = input_id(slot);
    view! {
        <div class="field check">
            <input id=id.clone() type="checkbox" aria-describedby=format!("{id}-err")
                prop:checked=move || ctx.form.with(get)
                on:change=move |ev| { let v = event_target_checked(&ev); ctx.form.update(|f| set(f, v)); } />
            <label for=id.clone()>{label}</label>
            {messages(ctx, slot)}
        </div>
    }
}

/// Canary or feature-flag steps: one row per step, rows added and removed in place.
fn steps(ctx: Ctx, share: &'static str, share_label: &'static str) -> impl IntoView + use<> {
    let n = Memo::new(move |_| ctx.form.with(|f| f.steps.len()));
    view! {
        <fieldset class="steps" data-testid="steps">
            <legend>"Steps (the last one must be 100 %)"</legend>
            {messages(ctx, "strategy.steps")}
            {move || (0..n.get()).map(|i| {
                let slot = |what: &str| format!("strategy.steps[{i}].{what}");
                let pause_id = input_id(&slot("pause"));
                view! {
                    <div class="step-row" data-step=i>
                        {text_with(ctx, slot(share), format!("Step {} {share_label}", i + 1), "",
                            move |f| f.steps.get(i).map(|s| s.share.clone()).unwrap_or_default(),
                            move |f, v| if let Some(s) = f.steps.get_mut(i) { s.share = v })}
                        {text_with(ctx, slot("bake_secs"), format!("Step {} bake", i + 1), "",
                            move |f| f.steps.get(i).map(|s| s.bake.clone()).unwrap_or_default(),
                            move |f, v| if let Some(s) = f.steps.get_mut(i) { s.bake = v })}
                        <div class="field">
                            <label for=pause_id.clone()>{format!("Step {} pause", i + 1)}</label>
                            <select id=pause_id aria-describedby=format!("{}-err", input_id(&slot("pause")))
                                prop:value=move || ctx.form.with(|f| f.steps.get(i).map(|s| s.pause.clone()).unwrap_or_default())
                                on:change=move |ev| { let v = event_target_value(&ev); ctx.form.update(|f| if let Some(s) = f.steps.get_mut(i) { s.pause = v }); }>
                                {[("none", "no pause"), ("manual", "manual resume"), ("approval", "approval")].into_iter().map(|(value, text)| view! {
                                    <option value=value selected=move || ctx.form.with(|f| f.steps.get(i).is_some_and(|s| s.pause == value))>{text}</option>
                                }).collect_view()}
                            </select>
                            {messages(ctx, &slot("pause"))}
                        </div>
                        <button type="button" class="btn btn-quiet btn-small" aria-label=format!("Remove step {}", i + 1)
                            on:click=move |_| ctx.form.update(|f| { if i < f.steps.len() { f.steps.remove(i); } })>"Remove"</button>
                    </div>
                }
            }).collect_view()}
            <button type="button" class="btn btn-small" on:click=move |_| ctx.form.update(|f| f.steps.push(StepRow::new("100", "1m")))>"Add step"</button>
        </fieldset>
    }
}

fn rolling(ctx: Ctx) -> impl IntoView + use<> {
    view! {
        <div class="pair">
            {select(ctx, "strategy.batch_mode", "Batch size in", &[("count", "targets"), ("percent", "% of the pool")], |f| f.batch_mode.clone(), |f, v| f.batch_mode = v)}
            {text(ctx, "strategy.batch", "Batch size", "", |f| f.batch.clone(), |f, v| f.batch = v)}
        </div>
        <div class="pair">
            {text(ctx, "strategy.max_unavailable", "Max unavailable", "targets out of service at once", |f| f.max_unavailable.clone(), |f, v| f.max_unavailable = v)}
            {text(ctx, "strategy.min_healthy", "Min healthy", "targets that must stay in service", |f| f.min_healthy.clone(), |f, v| f.min_healthy = v)}
        </div>
        <div class="pair">
            {text(ctx, "strategy.drain_timeout_secs", "Drain timeout", "e.g. 30s", |f| f.drain_timeout.clone(), |f, v| f.drain_timeout = v)}
            {text(ctx, "strategy.bake_secs", "Bake after each batch", "e.g. 1m", |f| f.bake.clone(), |f, v| f.bake = v)}
        </div>
    }
}

fn blue_green(ctx: Ctx) -> impl IntoView + use<> {
    let stepped = Memo::new(move |_| ctx.form.with(|f| f.switch_mode == "steps"));
    view! {
        {select(ctx, "strategy.switch", "Switch traffic", &[("at_once", "at once"), ("steps", "in weight steps")], |f| f.switch_mode.clone(), |f, v| f.switch_mode = v)}
        {move || stepped.get().then(|| text(ctx, "strategy.switch.steps", "Switch steps (%)", "comma separated, rising, ending at 100, e.g. 25, 50, 100", |f| f.switch_steps.clone(), |f, v| f.switch_steps = v))}
        {text(ctx, "strategy.bake_secs", "Bake before the old set goes", "e.g. 5m", |f| f.bake.clone(), |f, v| f.bake = v)}
        {checkbox(ctx, "strategy.verify_preview", "Verify through a preview route first (needs an approval)", |f| f.verify_preview, |f, v| f.verify_preview = v)}
        <div class="pair">
            {text(ctx, "preview_route.header", "Preview header name", "e.g. x-preview", |f| f.preview_header.clone(), |f, v| f.preview_header = v)}
            {text(ctx, "preview_route.value", "Preview header value", "e.g. 1", |f| f.preview_value.clone(), |f, v| f.preview_value = v)}
        </div>
        {messages(ctx, "preview_route")}
    }
}

/// Reads the file chosen in a file input as text, then calls `done(text, format)`.
#[cfg(feature = "hydrate")]
fn read_file(ev: &leptos::ev::Event, done: impl FnOnce(String, String) + 'static) {
    use wasm_bindgen::JsCast;
    let Some(input) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return;
    };
    let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
    let name = file.name().to_ascii_lowercase();
    let format = if name.ends_with(".yaml") || name.ends_with(".yml") { "yaml" } else { "toml" };
    let Ok(reader) = web_sys::FileReader::new() else { return };
    let r = reader.clone();
    let onload = wasm_bindgen::closure::Closure::once_into_js(move || {
        if let Some(text) = r.result().ok().and_then(|v| v.as_string()) {
            done(text, format.to_string());
        }
    });
    reader.set_onload(Some(onload.unchecked_ref()));
    let _ = reader.read_as_text(&file);
}

/// Moves the keyboard focus to the first field marked invalid (in page order), or to the
/// summary when no field is, so a refused save says where to look.
#[cfg(feature = "hydrate")]
fn focus_first_problem() {
    use wasm_bindgen::JsCast;
    let doc = document();
    let target = doc
        .query_selector(".editor-form [aria-invalid=true]")
        .ok()
        .flatten()
        .or_else(|| doc.get_element_by_id("editor-summary"));
    if let Some(el) = target.and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok()) {
        let _ = el.focus();
    }
}

/// Beside the gate fields: this gate replayed against what a past campaign recorded.
#[component]
fn GateReplayPanel(form: RwSignal<FormData>) -> impl IntoView {
    let replay = ServerAction::<ReplayGate>::new();
    let campaign = RwSignal::new(String::new());
    let refused = RwSignal::new(None::<String>);
    let run = move |_| {
        let (spec, errs) = form.with_untracked(model::to_spec);
        if let Some(e) = errs.iter().find(|e| e.field.starts_with("gates[0]")) {
            refused.set(Some(format!("fix {} first: {}", e.field, e.message)));
            return;
        }
        let Ok(id) = campaign.get_untracked().trim().trim_start_matches('#').parse::<i64>() else {
            refused.set(Some("give the number of a campaign that ran, e.g. 12".into()));
            return;
        };
        refused.set(None);
        if let Some(gate) = spec.gates.first().cloned() {
            replay.dispatch(ReplayGate { id, gate });
        }
    };
    view! {
        <details class="replay" data-testid="gate-replay">
            <summary>"Try this gate on a past campaign"</summary>
            <div class="row">
                <label for="replay-campaign">"Campaign #"</label>
                <input id="replay-campaign" inputmode="numeric" prop:value=move || campaign.get()
                    on:input=move |ev| campaign.set(event_target_value(&ev)) />
                <button type="button" class="btn" on:click=run disabled=move || replay.pending().get()>"Replay"</button>
            </div>
            {move || refused.get().map(|m| view! { <p class="field-errors">{m}</p> })}
            {move || replay.value().get().map(|r| match r {
                Err(e) => view! { <p class="field-errors">{e.message}</p> }.into_any(),
                Ok(r) => view! {
                    <p data-testid="replay-summary"><strong>{r.summary.clone()}</strong></p>
                    {r.steps.into_iter().map(|s| view! {
                        <p class="small">{format!("Step {}: {}", s.step + 1, s.description)}</p>
                        <ul class="small">{s.points.into_iter().map(|p| view! {
                            <li>{format!("{} UTC — {:?}: {}", p.at.format("%H:%M:%S"), p.verdict.outcome, p.verdict.reason)}</li>
                        }).collect_view()}</ul>
                    }).collect_view()}
                }.into_any(),
            })}
        </details>
    }
}
