//! Switchyard's user interface and shared domain. Compiled twice: with `ssr` into the server
//! (rendering pages and running server functions) and with `hydrate` to WebAssembly for the
//! browser. Nothing here touches storage; server functions reach services through [`api::ports`].
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod csp;
pub mod domain;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

use crate::components::layout::Layout;
use crate::pages::{
    account::AccountPage, admin_users::AdminUsersPage, audit::AuditPage, campaign::CampaignPage,
    campaigns::CampaignsPage, editor::EditorPage, environments::EnvironmentsPage, home::HomePage,
    login::LoginPage, not_found::NotFound,
};

/// The HTML document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    csp::set_for_page();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="stylesheet" href=format!("/pkg/{}.css", options.output_name) />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|t: String| if t.is_empty() { "Switchyard".to_string() } else { format!("{t} · Switchyard") } />
        <Router>
            <Routes fallback=|| view! { <Layout><NotFound /></Layout> }>
                <Route path=path!("/login") view=LoginPage />
                <Route path=path!("/") view=|| view! { <Layout><HomePage /></Layout> } />
                <Route path=path!("/audit") view=|| view! { <Layout><AuditPage /></Layout> } />
                <Route path=path!("/campaigns") view=|| view! { <Layout><CampaignsPage /></Layout> } />
                <Route path=path!("/campaigns/new") view=|| view! { <Layout><EditorPage /></Layout> } />
                <Route path=path!("/campaigns/:id/edit") view=|| view! { <Layout><EditorPage /></Layout> } />
                <Route path=path!("/campaigns/:id") view=|| view! { <Layout><CampaignPage /></Layout> } />
                <Route path=path!("/environments") view=|| view! { <Layout><EnvironmentsPage /></Layout> } />
                <Route path=path!("/account") view=|| view! { <Layout><AccountPage /></Layout> } />
                <Route path=path!("/admin/users") view=|| view! { <Layout><AdminUsersPage /></Layout> } />
            </Routes>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
    // Lets browser tests (and curious users) see that the page is live, not just rendered.
    if let Some(root) = leptos::prelude::document().document_element() {
        let _ = root.set_attribute("data-hydrated", "true");
    }
}
