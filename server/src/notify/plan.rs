//! Which notices a campaign change causes, and when each is due. Pure: the service passes the
//! result to the store inside the change's own transaction.

use app::domain::campaign::{CampaignSpec, ResolvedWindow};
use app::domain::notice::{reminder_kind, template_key};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::store::{CommsChange, NewNotice, WindowPublish};

/// What happened to the campaign, from the notices' point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommsEvent {
    Scheduled,
    Rescheduled,
    Cancelled,
    Started,
    Completed,
    RolledBack,
}

pub fn title(spec: &CampaignSpec) -> String {
    format!("{}: {} → {}", spec.service, spec.from_release, spec.to_release)
}

/// The snapshot a notice carries: the window as it is at this change.
pub fn payload(kind: &str, spec: &CampaignSpec, w: &ResolvedWindow) -> serde_json::Value {
    json!({
        "kind": kind,
        "title": title(spec),
        "campaign": spec.name,
        "service": spec.service,
        "environment": spec.environment,
        "from_release": spec.from_release,
        "to_release": spec.to_release,
        "start": w.start.to_rfc3339(),
        "end": w.end.to_rfc3339(),
        "timezone": w.tz.name(),
        "impact": spec.window.impact,
        "components": spec.window.components,
        "message": spec.window.message,
        // The campaign's own wording for this kind, if it has one (rendered at send time).
        "template": spec.communications.templates.get(template_key(kind)),
    })
}

/// The campaign's reminders as `(kind, seconds before the start)`; invalid offsets (refused by
/// validation before anything is scheduled) are left out.
pub fn reminders(spec: &CampaignSpec) -> Vec<(String, i64)> {
    spec.communications
        .reminders
        .iter()
        .filter_map(|r| r.secs().ok())
        .map(|secs| (reminder_kind(secs), secs))
        .collect()
}

/// The communications side of `event`: the published window (unless `publish` is off) and the
/// notices. A campaign that does not notify still has its window published, with the
/// announcements in the feed but no deliveries and no reminders. `None` when neither applies.
pub fn change(
    event: CommsEvent,
    spec: &CampaignSpec,
    w: &ResolvedWindow,
    now: DateTime<Utc>,
) -> Option<CommsChange> {
    let (notify, publish) = (spec.communications.notify, spec.communications.publish);
    if !notify && !publish {
        return None;
    }
    let notice = |kind: &str, due: DateTime<Utc>| NewNotice {
        kind: kind.to_string(),
        due_at: due,
        payload: payload(kind, spec, w),
    };
    let (status, bump, cancel, mut notices) = match event {
        CommsEvent::Scheduled => ("scheduled", true, false, vec![notice("scheduled", now)]),
        CommsEvent::Rescheduled => ("scheduled", true, true, vec![notice("rescheduled", now)]),
        CommsEvent::Cancelled => ("cancelled", true, true, vec![notice("cancelled", now)]),
        CommsEvent::Started => ("in_progress", false, true, vec![notice("started", now)]),
        CommsEvent::Completed => ("completed", false, true, vec![notice("completed", now)]),
        CommsEvent::RolledBack => ("rolled_back", false, true, vec![notice("rolled_back", now)]),
    };
    if notify && matches!(event, CommsEvent::Scheduled | CommsEvent::Rescheduled) {
        for (kind, secs) in reminders(spec) {
            let due = w.start - Duration::seconds(secs);
            if due > now {
                notices.push(notice(&kind, due));
            }
        }
    }
    Some(CommsChange {
        window: publish.then(|| WindowPublish {
            status: status.into(),
            title: title(spec),
            start_at: w.start,
            end_at: w.end,
            timezone: w.tz.name().into(),
            impact: serde_json::to_value(spec.window.impact)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| "none".into()),
            components: spec.window.components.clone(),
            message: spec.window.message.clone(),
            // The first publication is sequence 0; a later "scheduled" (after a cancel) bumps too.
            bump_sequence: bump,
        }),
        cancel_pending_reminders: cancel,
        notices,
        components: spec.window.components.clone(),
        quiet: !notify,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format_ts;

    fn spec(start: &str, end: &str) -> CampaignSpec {
        serde_json::from_value(json!({
            "name": "web-upgrade", "service": "web", "environment": "production", "pool": "web-pool",
            "from_release": "v1", "to_release": "v2",
            "strategy": { "kind": "canary", "steps": [] },
            "window": { "start": start, "end": end, "timezone": "Europe/Berlin", "components": ["api"] },
            "communications": { "notify": true, "audiences": ["customers"] },
        }))
        .expect("spec")
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn scheduling_two_days_ahead_queues_the_announcement_and_both_reminders() {
        let s = spec("2026-11-24T08:00", "2026-11-24T10:00");
        let w = s.window.resolve().expect("window");
        let c = change(CommsEvent::Scheduled, &s, &w, at("2026-11-22T07:00:00Z")).expect("notify");
        let kinds: Vec<(&str, String)> =
            c.notices.iter().map(|n| (n.kind.as_str(), format_ts(n.due_at))).collect();
        assert_eq!(
            kinds,
            [
                ("scheduled", "2026-11-22T07:00:00.000000Z".into()),
                ("reminder_24h", "2026-11-23T07:00:00.000000Z".into()),
                ("reminder_1h", "2026-11-24T06:00:00.000000Z".into()),
            ]
        );
        assert_eq!(c.window.map(|w| w.status), Some("scheduled".into()));
    }

    #[test]
    fn a_reminder_whose_time_has_passed_is_not_queued() {
        let s = spec("2026-11-22T10:00", "2026-11-22T11:00");
        let w = s.window.resolve().expect("window");
        let c =
            change(CommsEvent::Rescheduled, &s, &w, at("2026-11-22T07:00:00Z")).expect("notify");
        let kinds: Vec<&str> = c.notices.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["rescheduled", "reminder_1h"]);
        assert!(c.cancel_pending_reminders && c.window.is_some_and(|w| w.bump_sequence));
    }

    #[test]
    fn a_campaign_that_does_not_notify_is_still_published_but_sends_nothing() {
        let mut s = spec("2026-11-24T08:00", "2026-11-24T10:00");
        s.communications.notify = false;
        let w = s.window.resolve().expect("window");
        let c = change(CommsEvent::Scheduled, &s, &w, at("2026-11-22T07:00:00Z")).expect("publish");
        assert!(c.quiet && c.window.is_some());
        let kinds: Vec<&str> = c.notices.iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["scheduled"], "the feed announces it; no reminders");
        s.communications.publish = false;
        assert!(change(CommsEvent::Started, &s, &w, at("2026-11-22T07:00:00Z")).is_none());
    }

    #[test]
    fn reminders_follow_the_campaigns_offsets() {
        let mut s = spec("2026-11-24T08:00", "2026-11-24T10:00");
        s.communications.reminders = serde_json::from_value(json!(["2h", 90])).expect("offsets");
        let w = s.window.resolve().expect("window");
        let c = change(CommsEvent::Scheduled, &s, &w, at("2026-11-22T07:00:00Z")).expect("notify");
        let kinds: Vec<(&str, String)> =
            c.notices.iter().map(|n| (n.kind.as_str(), format_ts(n.due_at))).collect();
        assert_eq!(
            kinds,
            [
                ("scheduled", "2026-11-22T07:00:00.000000Z".into()),
                ("reminder_2h", "2026-11-24T05:00:00.000000Z".into()),
                ("reminder_90s", "2026-11-24T06:58:30.000000Z".into()),
            ]
        );
    }
}
