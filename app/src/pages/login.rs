//! Sign-in page. A plain HTML form posted to `/auth/login`, so it works before (and without)
//! the WebAssembly; the server redirects back here with `?error=` when sign-in fails.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || {
        query.with(|q| match q.get("error").as_deref() {
            Some("invalid") => Some("Wrong user name or password."),
            Some("throttled") => Some(
                "Too many failed sign-ins for this account from your address. Wait 15 minutes, or ask an admin to reset your password.",
            ),
            Some("busy") => {
                Some("The server is busy checking other sign-ins. Try again in a few seconds.")
            }
            Some("expired") => Some("Your session ended. Sign in again."),
            Some(_) => Some("Sign-in failed. Try again."),
            None => None,
        })
    };
    let next = move || query.with(|q| q.get("next").unwrap_or_default());
    let signed_out = move || query.with(|q| q.get("signed_out").is_some());
    view! {
        <Title text="Sign in" />
        <main id="main" class="login-wrap">
            <form method="post" action="/auth/login" class="card login-card" aria-labelledby="login-title">
                <h1 id="login-title">
                    <span class="brand-mark" aria-hidden="true">"⇄"</span>
                    " Switchyard"
                </h1>
                <p class="muted">"Sign in to plan, run and audit deployment campaigns."</p>
                {move || signed_out().then(|| view! {
                    <div class="notice notice-ok" role="status">"You are signed out."</div>
                })}
                {move || error().map(|msg| view! {
                    <div class="notice notice-error" role="alert" id="login-error" data-testid="login-error">
                        <strong>"Error: "</strong>{msg}
                    </div>
                })}
                <input type="hidden" name="next" prop:value=next />
                <label for="username">"User name"</label>
                <input id="username" name="username" type="text" autocomplete="username" required autofocus />
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required />
                <button type="submit" class="btn btn-primary">"Sign in"</button>
            </form>
        </main>
    }
}
