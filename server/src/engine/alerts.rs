//! Operator alerts: a campaign pausing, failing a gate, waiting for approval, rolling back,
//! succeeding. Each is a notice of kind `alert_*` in the outbox, delivered to the environment's
//! operator channels (`alerts` in its record, e-mail or signed webhook) and to the server-wide
//! `alerts.webhook_url`, retried like every delivery. An alert that belongs to a campaign change
//! is written in that change's transaction ([`CampaignPatch::alert`]); the rest on their own.
//!
//! [`CampaignPatch::alert`]: crate::store::CampaignPatch

use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use serde_json::json;

use super::Engine;
use crate::store::NewAlert;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEvent {
    /// Paused: by a planned pause, an error, drift or a marginal judgement.
    Paused,
    /// A gate failed (the rollback starts at once).
    GateFailed,
    AwaitingApproval,
    /// Aborted by a person (the rollback starts).
    RollingBack,
    RollbackPaused,
    RolledBack,
    Succeeded,
    Failed,
    /// The watch after success saw the new release breach its gates.
    WatchBreach,
}

impl AlertEvent {
    pub fn kind(self) -> &'static str {
        match self {
            AlertEvent::Paused => "alert_paused",
            AlertEvent::GateFailed => "alert_gate_failed",
            AlertEvent::AwaitingApproval => "alert_awaiting_approval",
            AlertEvent::RollingBack => "alert_rolling_back",
            AlertEvent::RollbackPaused => "alert_rollback_paused",
            AlertEvent::RolledBack => "alert_rolled_back",
            AlertEvent::Succeeded => "alert_succeeded",
            AlertEvent::Failed => "alert_failed",
            AlertEvent::WatchBreach => "alert_watch_breach",
        }
    }

    fn says(self) -> &'static str {
        match self {
            AlertEvent::Paused => "paused",
            AlertEvent::GateFailed => "failed a gate and is rolling back",
            AlertEvent::AwaitingApproval => "waits for approval",
            AlertEvent::RollingBack => "was aborted and is rolling back",
            AlertEvent::RollbackPaused => "paused its rollback",
            AlertEvent::RolledBack => "rolled back",
            AlertEvent::Succeeded => "succeeded",
            AlertEvent::Failed => "failed",
            AlertEvent::WatchBreach => "breached its gates after success",
        }
    }
}

/// The alert `event` of campaign `id` for `env`'s operator channels (plus `global`, the
/// server-wide webhook); `None` when it has nowhere to go.
pub fn operator_alert(
    global: Option<&str>,
    id: i64,
    name: &str,
    spec: &CampaignSpec,
    env: &Environment,
    event: AlertEvent,
    message: &str,
) -> Option<NewAlert> {
    let mut channels: Vec<(String, String)> = env
        .alerts
        .iter()
        .map(|a| {
            let (c, r) = a.delivery();
            (c.to_string(), r.to_string())
        })
        .collect();
    if let Some(url) = global
        && !channels.iter().any(|(_, r)| r == url)
    {
        channels.push(("webhook".into(), url.to_string()));
    }
    if channels.is_empty() {
        return None;
    }
    Some(NewAlert {
        kind: event.kind().into(),
        payload: json!({
            "title": format!("Switchyard: {name} {}", event.says()),
            "event": event.kind().trim_start_matches("alert_"),
            "campaign_id": id,
            "campaign": name,
            "service": spec.service.to_string(),
            "environment": env.name.to_string(),
            "pool": spec.pool.to_string(),
            "from_release": spec.from_release.to_string(),
            "to_release": spec.to_release.to_string(),
            "message": message,
            "at": crate::store::now_ts(),
        }),
        channels,
    })
}

impl Engine {
    /// The alert of a campaign change, to put in its `CampaignPatch`.
    pub(super) fn alert_of(
        &self,
        id: i64,
        name: &str,
        spec: &CampaignSpec,
        env: &Environment,
        event: AlertEvent,
        message: &str,
    ) -> Option<NewAlert> {
        tracing::warn!(
            campaign_id = id,
            campaign = name,
            alert = event.kind(),
            message,
            "operator alert"
        );
        operator_alert(
            self.inner.config.alert_webhook.as_deref(),
            id,
            name,
            spec,
            env,
            event,
            message,
        )
    }

    /// The alert of a change to campaign `row` (its spec and frozen environment give the
    /// channels), to put in that change's `CampaignPatch`; `None` without a readable record.
    pub fn alert_for_row(
        &self,
        row: &crate::store::CampaignRow,
        event: AlertEvent,
        message: &str,
    ) -> Option<NewAlert> {
        let spec: Option<CampaignSpec> = serde_json::from_str(&row.spec).ok();
        let env: Option<Environment> =
            row.env_snapshot.as_deref().and_then(|e| serde_json::from_str(e).ok());
        let (Some(spec), Some(env)) = (spec, env) else {
            tracing::error!(
                campaign_id = row.id,
                message,
                "operator alert (no readable environment)"
            );
            return None;
        };
        self.alert_of(row.id, &row.name, &spec, &env, event, message)
    }

    /// Queues an alert that no campaign change carries (a reconciler that failed, a breach
    /// after success), reading the campaign's frozen environment for its channels.
    pub async fn alert(&self, id: i64, event: AlertEvent, message: &str) {
        let row = match self.store().find_campaign(id).await {
            Ok(Some(row)) => row,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(campaign_id = id, error = %e, message, "an alert could not be queued");
                return;
            }
        };
        let Some(alert) = self.alert_for_row(&row, event, message) else {
            // Nowhere to send it: the log has it.
            return;
        };
        if let Err(e) = self.store().queue_alert(id, alert).await {
            tracing::error!(campaign_id = id, error = %e, message, "an alert could not be queued");
        }
    }
}
