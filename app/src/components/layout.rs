//! The page frame: header with navigation, the signed-in user and sign-out.

use leptos::prelude::*;

use crate::api::accounts::current_user;
use crate::domain::auth::{Principal, Role};

/// The signed-in user, shared with every page below the layout.
#[derive(Clone, Copy)]
pub struct Me(pub Resource<Option<Principal>>);

#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let me = Resource::new(|| (), |_| async { current_user().await.ok().flatten() });
    provide_context(Me(me));
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/">
                <span class="brand-mark" aria-hidden="true">"⇄"</span>
                " Switchyard"
            </a>
            <nav aria-label="Main">
                <ul>
                    <li><a href="/">"Home"</a></li>
                    <li><a href="/campaigns">"Campaigns"</a></li>
                    <li><a href="/environments">"Environments"</a></li>
                    <li><a href="/audit">"Audit trail"</a></li>
                    <Suspense>
                        {move || Suspend::new(async move {
                            let me = me.await;
                            me.filter(|p| p.role.allows(Role::Admin))
                                .map(|_| view! { <li><a href="/admin/users">"Users"</a></li> })
                        })}
                    </Suspense>
                </ul>
            </nav>
            <Suspense>
                {move || Suspend::new(async move {
                    me.await.map(|p| view! {
                        <div class="whoami">
                            <a href="/account" class="user-link" data-testid="whoami">
                                {p.username.clone()}
                                <span class="role-badge">{p.role.as_str()}</span>
                            </a>
                            <form method="post" action="/auth/logout" class="inline">
                                <button type="submit" class="btn btn-quiet">"Sign out"</button>
                            </form>
                        </div>
                    })
                })}
            </Suspense>
        </header>
        <main id="main" class="container">{children()}</main>
    }
}
