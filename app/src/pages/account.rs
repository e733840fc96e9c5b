//! The signed-in user's own settings: password and API tokens.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::accounts::{ChangePassword, CreateToken, RevokeToken, list_tokens};
use crate::components::status::{ErrorBox, field_error};

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get(), change.version().get()),
        |_| list_tokens(),
    );
    let change_err = move || change.value().get().and_then(|r| r.err());

    view! {
        <Title text="Account" />
        <h1>"Your account"</h1>
        <section class="card">
            <h2 id="pw-title">"Change password"</h2>
            <ActionForm action=change attr:aria-labelledby="pw-title" attr:class="stack">
                <label for="current">"Current password"</label>
                <input id="current" name="current" type="password" autocomplete="current-password" required />
                {move || field_error(&change_err(), "current").map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                <label for="new">"New password (at least 12 characters)"</label>
                <input id="new" name="new" type="password" autocomplete="new-password" required minlength="12" />
                {move || field_error(&change_err(), "new").map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                <label for="confirm">"New password again"</label>
                <input id="confirm" name="confirm" type="password" autocomplete="new-password" required />
                {move || field_error(&change_err(), "confirm").map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                <button type="submit" class="btn btn-primary">"Change password"</button>
            </ActionForm>
            {move || match change.value().get() {
                Some(Ok(())) => Some(view! { <div class="notice notice-ok" role="status" data-testid="password-changed"><strong>"Done: "</strong>"your password is changed. Your other sessions are signed out; this one continues."</div> }.into_any()),
                Some(Err(e)) if e.fields.is_empty() => Some(view! { <ErrorBox message=e.message /> }.into_any()),
                _ => None,
            }}
        </section>
        <section class="card">
            <h2 id="tok-title">"API tokens"</h2>
            <p class="muted">"Send a token as "<code>"Authorization: Bearer …"</code>" to use the REST API with your role. The token is shown once."</p>
            <ActionForm action=create attr:aria-labelledby="tok-title" attr:class="stack">
                <label for="token-name">"Token name"</label>
                <input id="token-name" name="name" type="text" required placeholder="ci-pipeline" />
                <label for="token-days">"Expires in days (empty: the default)"</label>
                <input id="token-days" name="expires_in_days" type="number" min="1" max="3650" inputmode="numeric" />
                <button type="submit" class="btn">"Create token"</button>
            </ActionForm>
            {move || match create.value().get() {
                Some(Ok(t)) => Some(view! {
                    <div class="notice notice-ok" role="status">
                        <strong>"Token created. "</strong>"Copy it now; it will not be shown again:"
                        <pre class="secret" data-testid="new-token">{t.secret}</pre>
                    </div>
                }.into_any()),
                Some(Err(e)) => Some(view! { <ErrorBox message=e.message /> }.into_any()),
                None => None,
            }}
            <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"You have no API tokens. Create one above for scripts and CI."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap"><table class="data">
                                <thead><tr><th scope="col">"Name"</th><th scope="col">"Starts with"</th><th scope="col">"Created"</th><th scope="col">"Last used"</th><th scope="col">"Status"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                {list.into_iter().map(|t| view! {
                                    <tr>
                                        <td>{t.name.clone()}</td>
                                        <td><code>{t.prefix.clone()}"…"</code></td>
                                        <td>{short_time(&t.created_at)}</td>
                                        <td>{t.last_used_at.as_deref().map_or_else(|| "never".into(), short_time)}</td>
                                        <td>{token_status(&t)}</td>
                                        <td>{(!t.revoked && !t.expired).then(|| view! {
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="token_id" value=t.id />
                                                <button type="submit" class="btn btn-danger btn-small">"Revoke " <span class="sr-only">{t.name.clone()}</span></button>
                                            </ActionForm>
                                        })}</td>
                                    </tr>
                                }).collect_view()}
                                </tbody>
                            </table></div>
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// How a token stands, in words, with when it expires.
pub(crate) fn token_status(t: &crate::domain::auth::TokenView) -> String {
    match (t.revoked, t.revoked_reason.as_deref(), t.expired) {
        (true, Some("password_reset"), _) => "revoked (password reset)".into(),
        (true, Some("disabled"), _) => "revoked (user disabled)".into(),
        (true, _, _) => "revoked".into(),
        (false, _, true) => "expired".into(),
        _ => match t.expires_at.as_deref() {
            Some(e) => format!("active until {}", e.get(..10).unwrap_or(e)),
            None => "active, no expiry".into(),
        },
    }
}

/// `2026-11-22T05:45:47.588Z` → `2026-11-22 05:45 UTC`: readable, and narrow enough for phones.
pub(crate) fn short_time(ts: &str) -> String {
    match (ts.get(..10), ts.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => ts.to_string(),
    }
}
