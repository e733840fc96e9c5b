//! The public status page's service: published maintenance windows, the feed, and the
//! subscriber sign-up with double opt-in. Anyone may call these but [`StatusService::subscribers`].

use app::api::ApiError;
use app::domain::auth::{Principal, Role};

use crate::notify::Notifier;
use crate::services::access::require;
use crate::store::{FeedEntryRow, Store, StoreResult, SubscriberRow, WindowRow};

#[derive(Clone)]
pub struct StatusService {
    store: Store,
    notifier: Notifier,
}

impl StatusService {
    pub fn new(store: Store, notifier: Notifier) -> Self {
        Self { store, notifier }
    }

    /// The newest `limit` published windows, newest first.
    pub async fn windows(&self, limit: u32) -> StoreResult<Vec<WindowRow>> {
        self.store.published_windows(limit).await
    }

    /// The newest `limit` entries of the public feed.
    pub async fn feed(&self, limit: u32) -> StoreResult<Vec<FeedEntryRow>> {
        self.store.feed_entries(limit).await
    }

    /// Signs `email` up (unconfirmed) and sends the confirmation link.
    pub async fn subscribe(
        &self,
        email: &str,
        webhook: Option<&str>,
        format: &str,
        components: &[String],
    ) -> StoreResult<SubscriberRow> {
        let sub = self.store.subscribe_with_format(email, webhook, format, components).await?;
        self.notifier.wake();
        Ok(sub)
    }

    /// Confirms the subscription with `token`; `None`: no such link.
    pub async fn confirm(&self, token: &str) -> StoreResult<Option<SubscriberRow>> {
        self.store.confirm_subscriber(token).await
    }

    /// The subscription with `token`, if any.
    pub async fn subscriber(&self, token: &str) -> StoreResult<Option<SubscriberRow>> {
        self.store.find_subscriber_by_token(token).await
    }

    /// Ends the subscription with `token`; `None`: no such link.
    pub async fn unsubscribe(&self, token: &str) -> StoreResult<Option<SubscriberRow>> {
        self.store.unsubscribe(token).await
    }

    /// Every subscriber (operators and above).
    pub async fn subscribers(&self, actor: &Principal) -> Result<Vec<SubscriberRow>, ApiError> {
        require(actor, Role::Operator)?;
        Ok(self.store.list_subscribers().await?)
    }
}
