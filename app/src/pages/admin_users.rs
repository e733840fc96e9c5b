//! User administration (admin role): add users, change roles, disable and reset passwords.
//! The server enforces the role; this page only saves non-admins a useless click.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::accounts::{
    AddUser, ResetUserPassword, RevokeToken, SetTokenPolicy, SetUserDisabled, SetUserRole,
    get_token_policy, list_all_tokens, list_users,
};
use crate::components::status::{ErrorBox, field_error};
use crate::domain::auth::Role;

#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let set_role = ServerAction::<SetUserRole>::new();
    let set_disabled = ServerAction::<SetUserDisabled>::new();
    let reset = ServerAction::<ResetUserPassword>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                set_role.version().get(),
                set_disabled.version().get(),
                reset.version().get(),
            )
        },
        |_| list_users(),
    );
    let add_err = move || add.value().get().and_then(|r| r.err());
    let role_options = move |current: Role| {
        Role::ALL
            .into_iter()
            .map(|r| view! { <option value=r.as_str() selected=r == current>{r.as_str()}</option> })
            .collect_view()
    };

    view! {
        <Title text="Users" />
        <h1>"Users"</h1>
        {move || {
            let errs: Vec<String> = [
                set_role.value().get().and_then(|r| r.err()),
                set_disabled.value().get().and_then(|r| r.err()),
                reset.value().get().and_then(|r| r.err()),
            ].into_iter().flatten().map(|e| e.message).collect();
            errs.into_iter().map(|m| view! { <ErrorBox message=m /> }).collect_view()
        }}
        {move || reset.value().get().and_then(|r| r.ok()).map(|r| view! {
            <div class="notice notice-ok" role="status">
                <strong>"Password reset. "</strong>"Give this one-time password to the user; they must change it at sign-in:"
                <pre class="secret" data-testid="one-time-password">{r.one_time_password}</pre>
            </div>
        })}
        <Transition fallback=|| view! { <p class="muted">"Loading users…"</p> }>
            {move || Suspend::new(async move {
                match users.await {
                    Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                    Ok(list) => view! {
                        <div class="table-wrap"><table class="data" data-testid="users-table">
                            <thead><tr><th scope="col">"User"</th><th scope="col">"Role"</th><th scope="col">"Status"</th><th scope="col">"Last sign-in"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody>
                            {list.into_iter().map(|u| view! {
                                <tr>
                                    <td><a href=format!("/audit?object=user:{}", u.username)>{u.username.clone()}</a></td>
                                    <td>
                                        <ActionForm action=set_role attr:class="row">
                                            <input type="hidden" name="user_id" value=u.id />
                                            <label class="sr-only" for=format!("role-{}", u.id)>"Role for " {u.username.clone()}</label>
                                            <select id=format!("role-{}", u.id) name="role">{role_options(u.role)}</select>
                                            <button type="submit" class="btn btn-small">"Save"</button>
                                        </ActionForm>
                                    </td>
                                    <td>{if u.disabled { "disabled" } else if u.must_change_password { "must change password" } else { "active" }}</td>
                                    <td>{u.last_login_at.clone().unwrap_or_else(|| "never".into())}</td>
                                    <td class="row">
                                        <ActionForm action=set_disabled>
                                            <input type="hidden" name="user_id" value=u.id />
                                            <input type="hidden" name="disabled" value=(!u.disabled).to_string() />
                                            <button type="submit" class="btn btn-small">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                        </ActionForm>
                                        <ActionForm action=reset>
                                            <input type="hidden" name="user_id" value=u.id />
                                            <button type="submit" class="btn btn-small">"Reset password"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                            }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any(),
                }
            })}
        </Transition>
        <section class="card">
            <h2 id="add-title">"Add a user"</h2>
            <ActionForm action=add attr:aria-labelledby="add-title" attr:class="stack">
                <label for="new-username">"User name"</label>
                <input id="new-username" name="username" type="text" required />
                {move || field_error(&add_err(), "username").map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role">{role_options(Role::Viewer)}</select>
                <label for="new-password">"Initial password (at least 12 characters; the user must change it)"</label>
                <input id="new-password" name="password" type="password" autocomplete="new-password" required />
                {move || field_error(&add_err(), "password").map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
                <button type="submit" class="btn btn-primary">"Add user"</button>
            </ActionForm>
            {move || match add.value().get() {
                Some(Ok(u)) => Some(view! { <div class="notice notice-ok" role="status"><strong>"Done: "</strong>{format!("added {} as {}", u.username, u.role)}</div> }.into_any()),
                Some(Err(e)) if e.fields.is_empty() => Some(view! { <ErrorBox message=e.message /> }.into_any()),
                _ => None,
            }}
        </section>
        <AllTokens reset=reset set_disabled=set_disabled />
    }
}

/// Everyone's API tokens, with revoke, and how long new ones live.
#[component]
fn AllTokens(
    reset: ServerAction<ResetUserPassword>,
    set_disabled: ServerAction<SetUserDisabled>,
) -> impl IntoView {
    let revoke = ServerAction::<RevokeToken>::new();
    let policy = ServerAction::<SetTokenPolicy>::new();
    let tokens = Resource::new(
        move || (revoke.version().get(), reset.version().get(), set_disabled.version().get()),
        |_| list_all_tokens(),
    );
    let current = Resource::new(move || policy.version().get(), |_| get_token_policy());
    let policy_err = move || policy.value().get().and_then(|r| r.err());
    view! {
        <section class="card">
            <h2 id="all-tokens-title">"API tokens"</h2>
            <ActionForm action=policy attr:aria-labelledby="all-tokens-title" attr:class="row">
                <label for="token-expiry">"New tokens expire after (days; 0: never)"</label>
                <Transition fallback=|| ()>
                    {move || Suspend::new(async move {
                        let days = current.await.map(|p| p.default_expiry_days).unwrap_or_default();
                        view! { <input id="token-expiry" name="default_expiry_days" type="number" min="0" max="3650" value=days required /> }
                    })}
                </Transition>
                <button type="submit" class="btn btn-small">"Save"</button>
            </ActionForm>
            {move || field_error(&policy_err(), "default_expiry_days").map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
            {move || revoke.value().get().and_then(|r| r.err()).map(|e| view! { <ErrorBox message=e.message /> })}
            <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Err(e) => view! { <ErrorBox message=e.message /> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="empty">"Nobody has an API token."</p> }.into_any(),
                        Ok(list) => view! {
                            <div class="table-wrap"><table class="data" data-testid="all-tokens-table">
                                <thead><tr><th scope="col">"User"</th><th scope="col">"Name"</th><th scope="col">"Starts with"</th><th scope="col">"Last used"</th><th scope="col">"Status"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                                <tbody>
                                {list.into_iter().map(|t| view! {
                                    <tr>
                                        <td>{t.owner.clone()}</td>
                                        <td>{t.name.clone()}</td>
                                        <td><code>{t.prefix.clone()}"…"</code></td>
                                        <td>{t.last_used_at.as_deref().map_or_else(|| "never".into(), crate::pages::account::short_time)}</td>
                                        <td>{crate::pages::account::token_status(&t)}</td>
                                        <td>{(!t.revoked && !t.expired).then(|| view! {
                                            <ActionForm action=revoke>
                                                <input type="hidden" name="token_id" value=t.id />
                                                <button type="submit" class="btn btn-danger btn-small">"Revoke " <span class="sr-only">{format!("{} of {}", t.name, t.owner)}</span></button>
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
