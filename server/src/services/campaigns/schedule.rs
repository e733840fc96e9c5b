//! Scheduling a campaign into its window, moving the window, and the notices that go with it.

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::campaign::CampaignSpec;
use app::domain::lifecycle::{CampaignState, Command};
use app::domain::views::CampaignSummary;
use serde_json::json;

use crate::audit::record;
use crate::notify::plan::{self as comms, CommsEvent};
use crate::services::access::{invalid, require};
use crate::store::{CampaignPatch, format_ts};

use super::{CampaignService, summary};

impl CampaignService {
    /// Announces a draft's window: the campaign becomes scheduled, its window is published on
    /// the status page and feeds, and the notices (now, 24 h and 1 h before) are queued.
    pub async fn schedule(&self, actor: &Principal, id: i64) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        if row.status != CampaignState::Draft {
            return Err(ApiError::conflict(format!(
                "campaign {id} is {}; only a draft can be scheduled (use reschedule to move a scheduled one)",
                row.status
            )));
        }
        let spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let window = self.schedulable(actor, &spec).await?;
        let patch = CampaignPatch {
            status: Some(CampaignState::Scheduled),
            comms: comms::change(CommsEvent::Scheduled, &spec, &window, chrono::Utc::now()),
            ..Default::default()
        };
        let details = json!({ "start": window.start.to_rfc3339(), "end": window.end.to_rfc3339() });
        self.command(actor, &row, Command::Schedule, patch, details).await
    }

    /// Moves a scheduled campaign's window: SEQUENCE goes up, the old reminders are cancelled,
    /// an updated notice goes out and new reminders are queued, all in one transaction.
    pub async fn reschedule(
        &self,
        actor: &Principal,
        id: i64,
        window: app::domain::campaign::MaintenanceWindow,
    ) -> Result<CampaignSummary, ApiError> {
        require(actor, Role::Operator)?;
        let row = self.row(id).await?;
        if row.status != CampaignState::Scheduled {
            return Err(ApiError::conflict(format!(
                "campaign {id} is {}; only a scheduled campaign can be rescheduled",
                row.status
            )));
        }
        let mut spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let before = spec.window.clone();
        spec.window = window;
        let resolved = self.schedulable(actor, &spec).await?;
        let patch = CampaignPatch {
            spec: Some(serde_json::to_string(&spec).map_err(|_| ApiError::internal())?),
            comms: comms::change(CommsEvent::Rescheduled, &spec, &resolved, chrono::Utc::now()),
            ..Default::default()
        };
        let details = json!({
            "from": { "start": before.start.to_string(), "end": before.end.to_string() },
            "to": { "start": resolved.start.to_rfc3339(), "end": resolved.end.to_rfc3339() },
        });
        let audit = record(
            actor,
            "campaign.reschedule",
            format!("campaign:{id}"),
            "success",
            details.clone(),
        );
        self.store
            .patch_campaign(id, &[row.status], patch, Some(audit), Some(("rescheduled", details)))
            .await?;
        self.wake_notifier();
        Ok(summary(&self.row(id).await?))
    }

    /// The spec validated and its window resolved and in the future, or why not.
    async fn schedulable(
        &self,
        actor: &Principal,
        spec: &CampaignSpec,
    ) -> Result<app::domain::campaign::ResolvedWindow, ApiError> {
        self.preview(actor, spec).await?;
        let window = spec.window.resolve().map_err(|_| ApiError::internal())?;
        let problems =
            app::domain::window::check_schedulable(window.start, window.end, chrono::Utc::now());
        if !problems.is_empty() {
            let errors = app::domain::validate::ValidationErrors(
                problems
                    .into_iter()
                    .map(|(field, message)| app::domain::validate::FieldError {
                        field: field.into(),
                        message,
                    })
                    .collect(),
            );
            return Err(invalid(&errors));
        }
        Ok(window)
    }

    /// Deliveries of a campaign's notices: the schedule and the delivery log.
    pub async fn notices(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<Vec<crate::store::DeliveryRow>, ApiError> {
        require(actor, Role::Viewer)?;
        self.row(id).await?;
        Ok(crate::notify::privacy::visible_to(actor, self.store.campaign_deliveries(id).await?))
    }

    /// The communications section of the campaign page: notices, deliveries, and a preview of
    /// every kind the campaign can send, rendered as the dispatcher would.
    pub async fn comms(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<app::api::comms::CommsView, ApiError> {
        use app::api::comms::{CommsView, DeliveryView, NoticePreview, NoticeView};
        require(actor, Role::Viewer)?;
        let row = self.row(id).await?;
        let spec: CampaignSpec =
            serde_json::from_str(&row.spec).map_err(|_| ApiError::internal())?;
        let notices = self.store.campaign_notices(id).await?;
        let deliveries =
            crate::notify::privacy::visible_to(actor, self.store.campaign_deliveries(id).await?);
        let base = self.notifier.as_ref().map(|n| n.public_url().to_string()).unwrap_or_default();
        let previews = match spec.window.resolve() {
            Err(_) => Vec::new(),
            Ok(w) => {
                let reminders = comms::reminders(&spec).into_iter().map(|(kind, _)| kind);
                ["scheduled".to_string()]
                    .into_iter()
                    .chain(reminders)
                    .chain(
                        [
                            "started",
                            "completed",
                            "rescheduled",
                            "cancelled",
                            "extended",
                            "rolled_back",
                        ]
                        .map(String::from),
                    )
                    .map(|kind| {
                        let payload = comms::payload(&kind, &spec, &w);
                        let n = crate::notify::render::Notice {
                            kind: &kind,
                            sequence: 0,
                            payload: &payload,
                        };
                        let (status, unsubscribe) = (
                            crate::notify::status_url(&base),
                            crate::notify::unsubscribe_url(&base, "PREVIEW"),
                        );
                        NoticePreview {
                            subject: n.headline(),
                            text: n.text(&status, &unsubscribe),
                            html: n.html(&status, &unsubscribe),
                            kind,
                        }
                    })
                    .collect()
            }
        };
        Ok(CommsView {
            notify: spec.communications.notify,
            publish: spec.communications.publish,
            notices: notices
                .into_iter()
                .map(|n| NoticeView {
                    id: n.id,
                    kind: n.kind,
                    sequence: n.sequence,
                    due_at: format_ts(n.due_at),
                    status: n.status,
                })
                .collect(),
            deliveries: deliveries
                .into_iter()
                .map(|d| DeliveryView {
                    notice_id: d.notice_id,
                    kind: d.kind,
                    channel: d.channel,
                    recipient: d.recipient,
                    due_at: format_ts(d.due_at),
                    status: d.status,
                    attempts: d.attempts,
                    last_result: d.last_result,
                    sent_at: d.sent_at.map(format_ts),
                })
                .collect(),
            previews,
        })
    }
}
