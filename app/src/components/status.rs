//! Small status pieces: notices and errors that say what happened in words, not only colour.

use leptos::prelude::*;

use crate::api::ApiError;

/// An error message box with a text label, announced to screen readers.
#[component]
pub fn ErrorBox(#[prop(into)] message: String) -> impl IntoView {
    view! {
        <div class="notice notice-error" role="alert">
            <strong>"Error: "</strong>
            {message}
        </div>
    }
}

#[component]
pub fn SuccessBox(children: Children) -> impl IntoView {
    view! {
        <div class="notice notice-ok" role="status">
            <strong>"Done: "</strong>
            {children()}
        </div>
    }
}

/// The message for one form field, shown beside it, from an action's last error.
pub fn field_error(err: &Option<ApiError>, field: &str) -> Option<String> {
    err.as_ref().and_then(|e| e.field_error(field)).map(str::to_string)
}

/// A campaign state in words and colour (the words carry the meaning; colour only helps).
#[component]
pub fn StatusBadge(state: crate::domain::lifecycle::CampaignState) -> impl IntoView {
    let key = serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    view! { <span class=format!("badge badge-{key}") data-status=key.clone()>{state.label()}</span> }
}
