//! The notifier: drains the outbox on schedule into the channels (e-mail over SMTP, signed
//! webhooks), records every attempt, retries with backoff, and extends windows that run over.
//!
//! Delivery guarantee. A delivery is marked `sending` (with a lease) and its attempt logged in a
//! committed transaction *before* anything goes out, and marked `sent` after the SMTP server or
//! webhook accepted it. So nothing is lost: a crash leaves the row `sending`, and the next start
//! sends it again. A crash in the short gap between the server's acceptance and our commit means
//! that one message goes out twice — always with the same Message-ID / Idempotency-Key (the
//! delivery's idempotency key), so the receiver can drop the copy, and the attempt log shows
//! the interrupted attempt. That is at-least-once transport with receiver-side dedupe; a kill at
//! any other moment (the whole batch except the one message in flight) yields exactly once.

pub mod email;
pub mod plan;
pub mod privacy;
pub mod render;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use app::domain::campaign::{CampaignSpec, ResolvedWindow};
use chrono::Utc;
use tokio::sync::Notify;

use crate::config::NotifyConfig;
use crate::store::{DeliveryJob, DeliveryOutcome, NewNotice, Store};

/// After this many attempts a delivery is `failed` (visible on the campaign page).
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed delivery is someone's before another dispatcher may take it.
const LEASE_SECS: i64 = 120;
/// A window that runs over is extended by this much at a time, and announced.
const EXTENSION_MINUTES: i64 = 30;

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

#[derive(Clone)]
pub struct Notifier {
    store: Store,
    config: Arc<NotifyConfig>,
    wake: Arc<Notify>,
}

impl Notifier {
    pub fn new(store: Store, config: NotifyConfig) -> Self {
        Self { store, config: Arc::new(config), wake: Arc::new(Notify::new()) }
    }

    pub fn public_url(&self) -> &str {
        &self.config.public_url
    }

    /// New notices were committed: look at the outbox now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs the dispatcher until the task is aborted.
    pub async fn run(self) {
        match self.store.reclaim_interrupted_deliveries().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                deliveries = n,
                "deliveries interrupted by the last stop are due again"
            ),
            Err(e) => tracing::error!(error = %e, "could not reclaim interrupted deliveries"),
        }
        let mailer = match self.config.smtp.as_ref().map(email::Mailer::new).transpose() {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "the SMTP settings are unusable; e-mail deliveries will wait");
                None
            }
        };
        let hooks = match crate::outbound::subscriber_client(
            self.config.webhooks.clone(),
            Duration::from_secs(10),
        ) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client for webhook notices; they will wait");
                None
            }
        };
        // Operator alerts go to hosts an admin configured (internal ones too).
        let ops = match crate::outbound::client(Duration::from_secs(10)) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client for operator alerts; they will wait");
                None
            }
        };
        let gap = Duration::from_secs_f64(1.0 / f64::from(self.config.max_per_second.max(1)));
        let mut last_overrun_check = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            if last_overrun_check.elapsed() >= Duration::from_secs(15) {
                last_overrun_check = std::time::Instant::now();
                if let Err(e) = self.extend_overruns().await {
                    tracing::warn!(error = %e, "checking for windows that ran over failed");
                }
            }
            match self.store.claim_delivery(LEASE_SECS).await {
                Ok(Some(job)) => {
                    let hooks =
                        if job.kind.starts_with("alert_") { ops.as_ref() } else { hooks.as_ref() };
                    let outcome = self.send(mailer.as_ref(), hooks, &job).await;
                    if let Err(e) = self.store.finish_delivery(&job, outcome).await {
                        tracing::error!(error = %e, delivery = job.id, "could not record a delivery's result");
                    }
                    tokio::time::sleep(gap).await;
                }
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = self.wake.notified() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "claiming a delivery failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(delivery = job.id, channel = %job.channel, kind = %job.kind))]
    async fn send(
        &self,
        mailer: Option<&email::Mailer>,
        hooks: Option<&reqwest::Client>,
        job: &DeliveryJob,
    ) -> DeliveryOutcome {
        let result = match job.channel.as_str() {
            "email" => match mailer {
                Some(m) => m.send(job, &self.config.public_url).await,
                None => Err(SendError::Transient(
                    "no SMTP server is configured (SWITCHYARD_SMTP_HOST); the notice waits".into(),
                )),
            },
            "webhook" => match hooks {
                Some(c) if job.kind.starts_with("alert_") => {
                    webhook::send_alert(
                        c,
                        job,
                        &self.config.public_url,
                        &self.config.alert_secret.0,
                    )
                    .await
                }
                Some(c) => {
                    webhook::send(c, &self.config.webhooks, job, &self.config.public_url).await
                }
                None => Err(SendError::Transient("no HTTP client for webhooks".into())),
            },
            other => Err(SendError::Permanent(format!("unknown channel {other}"))),
        };
        match result {
            Ok(detail) => DeliveryOutcome::Sent(detail),
            Err(SendError::Permanent(e)) => {
                tracing::warn!(error = %e, "delivery failed for good");
                DeliveryOutcome::Failed(e)
            }
            Err(SendError::Transient(e)) if job.attempts >= MAX_ATTEMPTS => {
                tracing::warn!(error = %e, "delivery failed after the last attempt");
                DeliveryOutcome::Failed(format!("gave up after {} attempts: {e}", job.attempts))
            }
            Err(SendError::Transient(e)) => {
                let delay = self
                    .config
                    .retry_base_secs
                    .saturating_mul(1 << (job.attempts - 1).clamp(0, 10));
                let delay =
                    chrono::Duration::seconds(i64::try_from(delay.min(3600)).unwrap_or(3600));
                tracing::info!(error = %e, retry_in_secs = delay.num_seconds(), "delivery will be retried");
                DeliveryOutcome::Retry { error: e, next_attempt_at: Utc::now() + delay }
            }
        }
    }

    /// Windows of running campaigns that have ended: extend by [`EXTENSION_MINUTES`], announce.
    async fn extend_overruns(&self) -> Result<(), crate::store::StoreError> {
        let now = Utc::now();
        for w in self.store.overrun_windows(now).await? {
            let new_end = now + chrono::Duration::minutes(EXTENSION_MINUTES);
            let components: Vec<String> = serde_json::from_str(&w.components).unwrap_or_default();
            let spec: Option<CampaignSpec> = self
                .store
                .find_campaign(w.campaign_id)
                .await?
                .and_then(|row| serde_json::from_str(&row.spec).ok());
            // The campaign's own wording (its template for `extended`) when its spec is readable.
            let payload = match &spec {
                Some(spec) => {
                    let tz = w.timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
                    let window = ResolvedWindow { start: w.start_at, end: new_end, tz };
                    plan::payload("extended", spec, &window)
                }
                None => serde_json::json!({
                    "kind": "extended", "title": w.title, "start": w.start_at.to_rfc3339(), "end": new_end.to_rfc3339(),
                    "timezone": w.timezone, "impact": w.impact, "components": components, "message": w.message,
                }),
            };
            let notice = NewNotice { kind: "extended".into(), due_at: now, payload };
            // A campaign that does not notify still has its window extended in public, quietly.
            let quiet = spec.is_some_and(|s| !s.communications.notify);
            if self
                .store
                .extend_window(w.campaign_id, w.end_at, new_end, notice, components, quiet)
                .await?
            {
                tracing::info!(
                    campaign_id = w.campaign_id,
                    "window ran over: extended and announced"
                );
            }
        }
        Ok(())
    }
}

/// The links every notice carries.
pub fn status_url(base: &str) -> String {
    format!("{base}/status")
}

pub fn unsubscribe_url(base: &str, token: &str) -> String {
    format!("{base}/status/unsubscribe?token={token}")
}

pub fn confirm_url(base: &str, token: &str) -> String {
    format!("{base}/status/confirm?token={token}")
}
