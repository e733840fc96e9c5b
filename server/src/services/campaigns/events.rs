//! A campaign's live feed: every stored event after a given id, then new ones as they are
//! stored, and each stored sampling round as it lands. Ids are the events' database ids, so a
//! reader that reconnects after a network drop or a server restart catches up without gaps.

use std::collections::VecDeque;
use std::time::Duration;

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use tokio::sync::broadcast::error::RecvError;

use super::CampaignService;
use crate::services::access::require;
use crate::store::{CampaignEventRow, Store};

/// What the feed says next.
pub enum FeedItem {
    /// A stored event of the campaign, in id order.
    Event(CampaignEventRow),
    /// A sampling round was stored: its newest sample id and when it was stored (ms).
    Sample { sample: i64, stored_ms: i64 },
}

/// One reader's place in a campaign's feed.
pub struct EventFeed {
    id: i64,
    store: Store,
    rx: tokio::sync::broadcast::Receiver<i64>,
    samples: tokio::sync::broadcast::Receiver<(i64, i64, i64)>,
    closing: tokio::sync::watch::Receiver<bool>,
    last: i64,
    pending: VecDeque<CampaignEventRow>,
    /// The event log may have rows this feed has not read yet.
    dirty: bool,
}

impl CampaignService {
    /// The feed of campaign `id` from the event after `after` on (viewers and above). It ends
    /// when `closing` turns true (the server is shutting down).
    pub async fn event_feed(
        &self,
        actor: &Principal,
        id: i64,
        after: i64,
        closing: tokio::sync::watch::Receiver<bool>,
    ) -> Result<EventFeed, ApiError> {
        require(actor, Role::Viewer)?;
        self.row(id).await?;
        Ok(EventFeed {
            id,
            store: self.store.clone(),
            rx: self.engine.subscribe(),
            samples: self.engine.subscribe_samples(),
            closing,
            last: after,
            pending: VecDeque::new(),
            dirty: true,
        })
    }
}

impl EventFeed {
    /// The next item; `None` when the feed has ended.
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            if let Some(ev) = self.pending.pop_front() {
                return Some(FeedItem::Event(ev));
            }
            if *self.closing.borrow() {
                return None;
            }
            if std::mem::take(&mut self.dirty) {
                match self.store.campaign_events_since(self.id, self.last, 200).await {
                    Ok(rows) if !rows.is_empty() => {
                        self.last = rows.last().map(|r| r.id).unwrap_or(self.last);
                        self.pending.extend(rows);
                        self.dirty = true;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "event feed read failed"),
                }
            }
            // Wait for news about this campaign; re-read now and then in case a wake-up was lost.
            let wait = tokio::time::sleep(Duration::from_secs(5));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    r = self.rx.recv() => match r {
                        Ok(other) if other != self.id => continue,
                        Ok(_) | Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return None,
                    },
                    r = self.samples.recv() => match r {
                        Ok((campaign, sample, stored_ms)) if campaign == self.id => {
                            return Some(FeedItem::Sample { sample, stored_ms });
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                    _ = self.closing.changed() => return None,
                    () = &mut wait => break,
                }
            }
            self.dirty = true;
        }
    }
}
