//! Published maintenance windows, subscribers and the notice outbox. A campaign change that
//! causes notices passes a [`CommsChange`] in its `CampaignPatch`, so the window, the notices and
//! their deliveries are written in the campaign change's own transaction.

use rand::RngCore as _;
use sqlx::{FromRow, SqliteConnection};

use super::traits::*;
use super::{SqliteStore, StoreError, StoreResult, Timestamp, format_ts, now_ts};

/// How a campaign's published window changes.
#[derive(Debug, Clone)]
pub struct WindowPublish {
    pub status: String,
    pub title: String,
    pub start_at: Timestamp,
    pub end_at: Timestamp,
    pub timezone: String,
    pub impact: String,
    pub components: Vec<String>,
    pub message: String,
    /// Raise SEQUENCE (a reschedule, an extension, a cancellation).
    pub bump_sequence: bool,
}

#[derive(Debug, Clone)]
pub struct NewNotice {
    pub kind: String,
    pub due_at: Timestamp,
    /// A snapshot of what the notice is about; `sequence` is added when it is written.
    pub payload: serde_json::Value,
}

/// An operator alert: a notice of kind `alert_*` delivered to an environment's operator
/// channels (never to subscribers, never in the public feeds).
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub kind: String,
    pub payload: serde_json::Value,
    /// `(channel, recipient)`: `email` and an address, or `webhook` and a URL.
    pub channels: Vec<(String, String)>,
}

/// The communications side of one campaign change.
#[derive(Debug, Clone, Default)]
pub struct CommsChange {
    pub window: Option<WindowPublish>,
    /// Cancel the campaign's reminders that are not due yet (and their pending deliveries).
    pub cancel_pending_reminders: bool,
    pub notices: Vec<NewNotice>,
    /// Affected components: who among the subscribers gets the notices.
    pub components: Vec<String>,
    /// Write the notices (the feed shows them) but deliver them to nobody.
    pub quiet: bool,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct WindowRow {
    pub campaign_id: i64,
    pub uid: String,
    pub sequence: i64,
    pub status: String,
    pub title: String,
    #[serde(with = "super::ts_text")]
    #[sqlx(try_from = "super::TsText")]
    pub start_at: Timestamp,
    #[serde(with = "super::ts_text")]
    #[sqlx(try_from = "super::TsText")]
    pub end_at: Timestamp,
    pub timezone: String,
    pub impact: String,
    pub components: String,
    pub message: String,
    #[serde(with = "super::ts_text")]
    #[sqlx(try_from = "super::TsText")]
    pub created_at: Timestamp,
    #[serde(with = "super::ts_text")]
    #[sqlx(try_from = "super::TsText")]
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub webhook_url: Option<String>,
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    pub webhook_format: String,
    pub components: String,
    #[serde(skip)]
    pub token: String,
    #[serde(with = "super::ts_text")]
    #[schema(value_type = String, format = DateTime)]
    #[sqlx(try_from = "super::TsText")]
    pub created_at: Timestamp,
    #[serde(with = "super::ts_text::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[sqlx(try_from = "super::OptTsText")]
    pub confirmed_at: Option<Timestamp>,
    #[serde(with = "super::ts_text::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[sqlx(try_from = "super::OptTsText")]
    pub unsubscribed_at: Option<Timestamp>,
}

/// A published notice for the Atom feed.
#[derive(Debug, Clone, FromRow)]
pub struct FeedEntryRow {
    pub id: i64,
    pub campaign_id: i64,
    pub kind: String,
    pub sequence: i64,
    #[sqlx(try_from = "super::TsText")]
    pub due_at: Timestamp,
    pub payload: String,
}

/// One delivery as the campaign page and the API show it.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryRow {
    pub id: i64,
    pub notice_id: i64,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub idempotency_key: String,
    #[serde(with = "super::ts_text")]
    #[schema(value_type = String, format = DateTime)]
    #[sqlx(try_from = "super::TsText")]
    pub due_at: Timestamp,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    #[serde(with = "super::ts_text::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    #[sqlx(try_from = "super::OptTsText")]
    pub sent_at: Option<Timestamp>,
    /// The last attempt: its outcome and what the server or receiver said.
    pub last_result: Option<String>,
}

/// One notice of a campaign, with or without recipients: the communications schedule.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct NoticeRow {
    pub id: i64,
    pub kind: String,
    pub sequence: i64,
    #[serde(with = "super::ts_text")]
    #[sqlx(try_from = "super::TsText")]
    pub due_at: Timestamp,
    pub status: String,
    pub payload: String,
}

/// A delivery claimed for sending, with what is needed to render it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryJob {
    pub id: i64,
    pub attempt_id: i64,
    pub channel: String,
    pub recipient: String,
    pub idempotency_key: String,
    pub attempts: i64,
    pub kind: String,
    pub sequence: i64,
    pub campaign_id: Option<i64>,
    pub payload: String,
    pub uid: Option<String>,
    pub token: Option<String>,
    pub webhook_secret: Option<String>,
    pub webhook_format: Option<String>,
}

pub enum DeliveryOutcome {
    Sent(String),
    Retry { error: String, next_attempt_at: Timestamp },
    Failed(String),
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn overlaps(subscriber: &str, components: &[String]) -> bool {
    let wanted: Vec<String> = serde_json::from_str(subscriber).unwrap_or_default();
    wanted.is_empty()
        || components.is_empty()
        || wanted.iter().any(|w| components.iter().any(|c| c.eq_ignore_ascii_case(w)))
}

#[derive(FromRow)]
struct Recipient {
    id: i64,
    email: String,
    webhook_url: Option<String>,
    components: String,
}

/// A [`DeliveryRow`]'s columns, `d` the delivery and `n` its notice.
const DELIVERY_COLUMNS: &str = "d.id, d.notice_id, n.kind, d.channel, d.recipient, \
    d.idempotency_key, d.due_at, d.status, d.attempts, d.last_error, d.sent_at, \
    (SELECT COALESCE(a.outcome, 'in progress') || COALESCE(': ' || a.detail, '') \
     FROM delivery_attempts a WHERE a.delivery_id = d.id ORDER BY a.id DESC LIMIT 1) AS last_result";

const WINDOW_COLUMNS: &str = "campaign_id, uid, sequence, status, title, start_at, end_at, \
    timezone, impact, components, message, created_at, updated_at";

#[async_trait::async_trait]
impl OutboxStore for SqliteStore {
    async fn queue_alert(&self, campaign_id: i64, alert: NewAlert) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        Self::queue_alert_in(&mut tx, campaign_id, alert).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn subscribe(
        &self,
        email: &str,
        webhook_url: Option<&str>,
        components: &[String],
    ) -> StoreResult<SubscriberRow> {
        self.subscribe_with_format(email, webhook_url, "json", components).await
    }

    async fn subscribe_with_format(
        &self,
        email: &str,
        webhook_url: Option<&str>,
        webhook_format: &str,
        components: &[String],
    ) -> StoreResult<SubscriberRow> {
        let mut tx = self.write_tx().await?;
        let now = now_ts();
        let existing: Option<SubscriberRow> =
            sqlx::query_as("SELECT * FROM subscribers WHERE email = ?")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
        let token = random_hex(24);
        let row: SubscriberRow = match existing {
            Some(s) if s.confirmed_at.is_some() && s.unsubscribed_at.is_none() => {
                return Err(StoreError::Conflict(
                    "this address is already subscribed; every e-mail has a link to change or stop it".into(),
                ));
            }
            Some(s) => {
                sqlx::query_as(
                    "UPDATE subscribers SET webhook_url = ?, webhook_secret = ?, webhook_format = ?, components = ?, token = ?, \
                     created_at = ?, confirmed_at = NULL, unsubscribed_at = NULL WHERE id = ? RETURNING *",
                )
                .bind(webhook_url)
                .bind(webhook_url.map(|_| random_hex(24)))
                .bind(webhook_format)
                .bind(serde_json::json!(components).to_string())
                .bind(&token)
                .bind(&now)
                .bind(s.id)
                .fetch_one(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_as(
                    "INSERT INTO subscribers (email, webhook_url, webhook_secret, webhook_format, components, token, created_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
                )
                .bind(email)
                .bind(webhook_url)
                .bind(webhook_url.map(|_| random_hex(24)))
                .bind(webhook_format)
                .bind(serde_json::json!(components).to_string())
                .bind(&token)
                .bind(&now)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let notice_id: i64 = sqlx::query_scalar(
            "INSERT INTO notices (campaign_id, kind, sequence, due_at, payload, created_at) VALUES (NULL, 'confirm', 0, ?, ?, ?) RETURNING id",
        )
        .bind(&now)
        .bind(serde_json::json!({ "subscriber": row.id }).to_string())
        .bind(&now)
        .fetch_one(&mut *tx)
        .await?;
        Self::add_deliveries_in(&mut tx, notice_id, row.id, &row.email, None, &now).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn confirm_subscriber(&self, token: &str) -> StoreResult<Option<SubscriberRow>> {
        let mut tx = self.write_tx().await?;
        let now = now_ts();
        let row: Option<SubscriberRow> = sqlx::query_as(
            "UPDATE subscribers SET confirmed_at = COALESCE(confirmed_at, ?), unsubscribed_at = NULL \
             WHERE token = ? RETURNING *",
        )
        .bind(&now)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        #[derive(FromRow)]
        struct Upcoming {
            id: i64,
            due_at: String,
            components: String,
        }
        let upcoming: Vec<Upcoming> = sqlx::query_as(
            "SELECT n.id, n.due_at, w.components FROM notices n JOIN maintenance_windows w ON w.campaign_id = n.campaign_id \
             WHERE n.status = 'active' AND n.due_at > ? AND w.status = 'scheduled' AND n.kind NOT LIKE 'alert%' ORDER BY n.id",
        )
        .bind(&now)
        .fetch_all(&mut *tx)
        .await?;
        for u in upcoming {
            let components: Vec<String> = serde_json::from_str(&u.components).unwrap_or_default();
            if overlaps(&row.components, &components) {
                Self::add_deliveries_in(
                    &mut tx,
                    u.id,
                    row.id,
                    &row.email,
                    row.webhook_url.as_deref(),
                    &u.due_at,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Some(row))
    }

    async fn unsubscribe(&self, token: &str) -> StoreResult<Option<SubscriberRow>> {
        let mut tx = self.write_tx().await?;
        let row: Option<SubscriberRow> = sqlx::query_as(
            "UPDATE subscribers SET unsubscribed_at = COALESCE(unsubscribed_at, ?) WHERE token = ? RETURNING *",
        )
        .bind(now_ts())
        .bind(token)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = &row {
            sqlx::query(
                "UPDATE deliveries SET status = 'skipped', last_error = 'unsubscribed' WHERE subscriber_id = ? AND status = 'pending'",
            )
            .bind(r.id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    async fn find_subscriber_by_token(&self, token: &str) -> StoreResult<Option<SubscriberRow>> {
        Ok(sqlx::query_as("SELECT * FROM subscribers WHERE token = ?")
            .bind(token)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRow>> {
        Ok(sqlx::query_as("SELECT * FROM subscribers ORDER BY id").fetch_all(&self.pool).await?)
    }

    async fn published_windows(&self, limit: u32) -> StoreResult<Vec<WindowRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows ORDER BY start_at DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn published_window(&self, campaign_id: i64) -> StoreResult<Option<WindowRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE campaign_id = ?"
        ))
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn feed_entries(&self, limit: u32) -> StoreResult<Vec<FeedEntryRow>> {
        Ok(sqlx::query_as(
            "SELECT n.id, n.campaign_id, n.kind, n.sequence, n.due_at, n.payload FROM notices n \
             JOIN maintenance_windows w ON w.campaign_id = n.campaign_id \
             WHERE n.status = 'active' AND n.due_at <= ? AND n.kind NOT LIKE 'alert%' ORDER BY n.due_at DESC, n.id DESC LIMIT ?",
        )
        .bind(now_ts())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn overrun_windows(&self, now: Timestamp) -> StoreResult<Vec<WindowRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {WINDOW_COLUMNS} FROM maintenance_windows WHERE status = 'in_progress' AND end_at <= ?"
        ))
        .bind(format_ts(now))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn extend_window(
        &self,
        campaign_id: i64,
        old_end: Timestamp,
        new_end: Timestamp,
        notice: NewNotice,
        components: Vec<String>,
        quiet: bool,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE maintenance_windows SET end_at = ?, sequence = sequence + 1, updated_at = ? \
             WHERE campaign_id = ? AND status = 'in_progress' AND end_at = ?",
        )
        .bind(format_ts(new_end))
        .bind(now_ts())
        .bind(campaign_id)
        .bind(format_ts(old_end))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        Self::apply_comms_in(
            &mut tx,
            campaign_id,
            CommsChange { notices: vec![notice], components, quiet, ..Default::default() },
        )
        .await?;
        Self::append_event_in(
            &mut tx,
            campaign_id,
            "window_extended",
            &serde_json::json!({ "end": new_end }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reclaim_interrupted_deliveries(&self) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let now = now_ts();
        sqlx::query(
            "UPDATE delivery_attempts SET finished_at = ?, outcome = 'interrupted', \
             detail = 'the server stopped during this attempt; the message may or may not have been accepted' \
             WHERE finished_at IS NULL",
        )
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = ? WHERE status = 'sending'",
        )
        .bind(&now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn claim_delivery(&self, lease_secs: i64) -> StoreResult<Option<DeliveryJob>> {
        let mut tx = self.write_tx().await?;
        let now = chrono::Utc::now();
        let now_s = format_ts(now);
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', last_error = 'unsubscribed' WHERE status IN ('pending', 'sending') \
             AND subscriber_id IN (SELECT id FROM subscribers WHERE unsubscribed_at IS NOT NULL)",
        )
        .execute(&mut *tx)
        .await?;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT d.id FROM deliveries d JOIN notices n ON n.id = d.notice_id \
             WHERE n.status = 'active' AND ((d.status = 'pending' AND d.next_attempt_at <= ?) OR (d.status = 'sending' AND d.lease_until <= ?)) \
             ORDER BY d.next_attempt_at, d.id LIMIT 1",
        )
        .bind(&now_s)
        .bind(&now_s)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            tx.commit().await?;
            return Ok(None);
        };
        sqlx::query(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = ? WHERE id = ?",
        )
        .bind(format_ts(now + chrono::Duration::seconds(lease_secs)))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let attempt_id: i64 = sqlx::query_scalar(
            "INSERT INTO delivery_attempts (delivery_id, started_at) VALUES (?, ?) RETURNING id",
        )
        .bind(id)
        .bind(&now_s)
        .fetch_one(&mut *tx)
        .await?;
        let job: DeliveryJob = sqlx::query_as(
            "SELECT d.id, ? AS attempt_id, d.channel, d.recipient, d.idempotency_key, d.attempts, n.kind, n.sequence, \
             n.campaign_id, n.payload, w.uid, s.token, s.webhook_secret, s.webhook_format \
             FROM deliveries d JOIN notices n ON n.id = d.notice_id \
             LEFT JOIN maintenance_windows w ON w.campaign_id = n.campaign_id \
             LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = ?",
        )
        .bind(attempt_id)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(job))
    }

    async fn finish_delivery(
        &self,
        job: &DeliveryJob,
        outcome: DeliveryOutcome,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let now = now_ts();
        let (attempt, detail) = match &outcome {
            DeliveryOutcome::Sent(d) => ("sent", d.clone()),
            DeliveryOutcome::Retry { error, .. } => ("retry", error.clone()),
            DeliveryOutcome::Failed(e) => ("failed", e.clone()),
        };
        sqlx::query(
            "UPDATE delivery_attempts SET finished_at = ?, outcome = ?, detail = ? WHERE id = ?",
        )
        .bind(&now)
        .bind(attempt)
        .bind(&detail)
        .bind(job.attempt_id)
        .execute(&mut *tx)
        .await?;
        let q = match outcome {
            DeliveryOutcome::Sent(_) => sqlx::query(
                "UPDATE deliveries SET status = 'sent', sent_at = ?, lease_until = NULL, last_error = NULL WHERE id = ?",
            )
            .bind(now.clone())
            .bind(job.id),
            DeliveryOutcome::Retry { error, next_attempt_at } => sqlx::query(
                "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, lease_until = NULL, last_error = ? WHERE id = ?",
            )
            .bind(format_ts(next_attempt_at))
            .bind(error)
            .bind(job.id),
            DeliveryOutcome::Failed(error) => sqlx::query(
                "UPDATE deliveries SET status = 'failed', lease_until = NULL, last_error = ? WHERE id = ?",
            )
            .bind(error)
            .bind(job.id),
        };
        q.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn deliveries_due_by(&self, at: Timestamp, limit: u32) -> StoreResult<Vec<DeliveryRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notices n ON n.id = d.notice_id \
             WHERE n.due_at <= ? ORDER BY d.due_at, d.id LIMIT ?"
        ))
        .bind(format_ts(at))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn campaign_deliveries(&self, campaign_id: i64) -> StoreResult<Vec<DeliveryRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notices n ON n.id = d.notice_id \
             WHERE n.campaign_id = ? ORDER BY d.due_at, d.id"
        ))
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn campaign_notices(&self, campaign_id: i64) -> StoreResult<Vec<NoticeRow>> {
        Ok(sqlx::query_as(
            "SELECT id, kind, sequence, due_at, status, payload FROM notices WHERE campaign_id = ? ORDER BY due_at, id",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl SqliteStore {
    /// Writes a campaign's window, cancelled reminders, notices and deliveries on `conn`
    /// (the caller's transaction).
    pub(super) async fn apply_comms_in(
        conn: &mut SqliteConnection,
        campaign_id: i64,
        change: CommsChange,
    ) -> StoreResult<()> {
        let now = now_ts();
        if let Some(w) = &change.window {
            sqlx::query(
                "INSERT INTO maintenance_windows (campaign_id, uid, sequence, status, title, start_at, end_at, timezone, impact, components, message, created_at, updated_at) \
                 VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (campaign_id) DO UPDATE SET sequence = sequence + ?, status = excluded.status, \
                 title = excluded.title, start_at = excluded.start_at, end_at = excluded.end_at, timezone = excluded.timezone, \
                 impact = excluded.impact, components = excluded.components, message = excluded.message, updated_at = excluded.updated_at",
            )
            .bind(campaign_id)
            .bind(format!("campaign-{campaign_id}-{}@switchyard", random_hex(6)))
            .bind(&w.status)
            .bind(&w.title)
            .bind(format_ts(w.start_at))
            .bind(format_ts(w.end_at))
            .bind(&w.timezone)
            .bind(&w.impact)
            .bind(serde_json::json!(w.components).to_string())
            .bind(&w.message)
            .bind(&now)
            .bind(&now)
            .bind(i64::from(w.bump_sequence))
            .execute(&mut *conn)
            .await?;
        }
        let sequence: i64 =
            sqlx::query_scalar("SELECT sequence FROM maintenance_windows WHERE campaign_id = ?")
                .bind(campaign_id)
                .fetch_optional(&mut *conn)
                .await?
                .unwrap_or(0);
        if change.cancel_pending_reminders {
            sqlx::query(
                "UPDATE deliveries SET status = 'cancelled' WHERE status = 'pending' AND notice_id IN \
                 (SELECT id FROM notices WHERE campaign_id = ? AND kind LIKE 'reminder%' AND status = 'active' AND due_at > ?)",
            )
            .bind(campaign_id)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE notices SET status = 'cancelled' WHERE campaign_id = ? AND kind LIKE 'reminder%' AND status = 'active' AND due_at > ?",
            )
            .bind(campaign_id)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
        }
        let recipients: Vec<Recipient> = if change.quiet || change.notices.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT id, email, webhook_url, components FROM subscribers \
             WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL ORDER BY id",
            )
            .fetch_all(&mut *conn)
            .await?
        };
        let recipients: Vec<&Recipient> =
            recipients.iter().filter(|r| overlaps(&r.components, &change.components)).collect();
        for n in change.notices {
            let mut payload = n.payload;
            if let Some(o) = payload.as_object_mut() {
                o.insert("sequence".into(), serde_json::json!(sequence));
            }
            let notice_id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO notices (campaign_id, kind, sequence, due_at, payload, created_at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (campaign_id, kind, sequence) DO NOTHING RETURNING id",
            )
            .bind(campaign_id)
            .bind(&n.kind)
            .bind(sequence)
            .bind(format_ts(n.due_at))
            .bind(payload.to_string())
            .bind(&now)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(notice_id) = notice_id else { continue };
            for r in &recipients {
                Self::add_deliveries_in(
                    conn,
                    notice_id,
                    r.id,
                    &r.email,
                    r.webhook_url.as_deref(),
                    &format_ts(n.due_at),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Queues `alert` for `campaign_id` on `conn` (the caller's transaction): one notice,
    /// due now, and one delivery per operator channel. Each alert is its own notice (the
    /// sequence counts the campaign's alerts of that kind), so a second pause alerts again.
    pub(super) async fn queue_alert_in(
        conn: &mut SqliteConnection,
        campaign_id: i64,
        alert: NewAlert,
    ) -> StoreResult<()> {
        if alert.channels.is_empty() {
            return Ok(());
        }
        let now = now_ts();
        let sequence: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(sequence), 0) + 1 FROM notices WHERE campaign_id = ? AND kind = ?",
        )
        .bind(campaign_id)
        .bind(&alert.kind)
        .fetch_one(&mut *conn)
        .await?;
        let notice_id: i64 = sqlx::query_scalar(
            "INSERT INTO notices (campaign_id, kind, sequence, due_at, payload, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(campaign_id)
        .bind(&alert.kind)
        .bind(sequence)
        .bind(&now)
        .bind(alert.payload.to_string())
        .bind(&now)
        .fetch_one(&mut *conn)
        .await?;
        for (channel, recipient) in &alert.channels {
            sqlx::query(
                "INSERT INTO deliveries (notice_id, subscriber_id, channel, recipient, idempotency_key, due_at, next_attempt_at) \
                 VALUES (?, NULL, ?, ?, ?, ?, ?) ON CONFLICT (notice_id, channel, recipient) DO NOTHING",
            )
            .bind(notice_id)
            .bind(channel)
            .bind(recipient)
            .bind(format!("n{notice_id}.ops.{channel}.{}", random_hex(8)))
            .bind(&now)
            .bind(&now)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn add_deliveries_in(
        conn: &mut SqliteConnection,
        notice_id: i64,
        subscriber_id: i64,
        email: &str,
        webhook_url: Option<&str>,
        due_at: &str,
    ) -> StoreResult<()> {
        let mut channels = vec![("email", email)];
        if let Some(url) = webhook_url {
            channels.push(("webhook", url));
        }
        for (channel, recipient) in channels {
            sqlx::query(
                "INSERT INTO deliveries (notice_id, subscriber_id, channel, recipient, idempotency_key, due_at, next_attempt_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (notice_id, channel, recipient) DO NOTHING",
            )
            .bind(notice_id)
            .bind(subscriber_id)
            .bind(channel)
            .bind(recipient)
            .bind(format!("n{notice_id}.s{subscriber_id}.{channel}.{}", random_hex(8)))
            .bind(due_at)
            .bind(due_at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
