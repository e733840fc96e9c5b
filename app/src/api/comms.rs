//! Server function behind the campaign page's communications section: the notice schedule,
//! the delivery log (failures included, never hidden) and a preview of each notice as it will
//! be sent, rendered on the server by the same code that sends it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CommsView {
    /// Notices go to subscribers.
    pub notify: bool,
    /// The window is on the public status page and feeds.
    pub publish: bool,
    pub notices: Vec<NoticeView>,
    pub deliveries: Vec<DeliveryView>,
    pub previews: Vec<NoticePreview>,
}

/// One notice: what, when it is (or was) due, and whether it still stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NoticeView {
    pub id: i64,
    pub kind: String,
    pub sequence: i64,
    pub due_at: String,
    /// `active` or `cancelled`.
    pub status: String,
}

/// One notice to one recipient over one channel, with its last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DeliveryView {
    pub notice_id: i64,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub due_at: String,
    /// pending, sending, sent, failed, cancelled or skipped.
    pub status: String,
    pub attempts: i64,
    pub last_result: Option<String>,
    pub sent_at: Option<String>,
}

/// A notice kind rendered with the campaign's window and templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NoticePreview {
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[server]
pub async fn campaign_comms(id: i64) -> Result<CommsView, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.comms(&me, id).await.map_err(super::ctx::fail)
}
