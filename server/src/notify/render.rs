//! What a notice says: subject, plain text and HTML for e-mail, the JSON of a webhook, and the
//! iCalendar (RFC 5545) and Atom (RFC 4287) documents, written by hand. Pure.

use std::collections::BTreeMap;

use app::domain::notice::{NoticeTemplate, default_template, fill, reminder_in};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

/// The fields of a notice payload, read leniently (a missing field renders empty).
pub struct Notice<'a> {
    pub kind: &'a str,
    pub sequence: i64,
    pub payload: &'a Value,
}

impl Notice<'_> {
    fn s(&self, key: &str) -> String {
        self.payload.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
    }

    fn time(&self, key: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.s(key)).ok().map(|t| t.to_utc())
    }

    pub fn title(&self) -> String {
        self.s("title")
    }

    pub fn components(&self) -> Vec<String> {
        self.payload
            .get("components")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// "Tue 24 Nov 2026 09:00–11:00 CET (08:00–10:00 UTC)".
    pub fn when(&self) -> String {
        let (Some(start), Some(end)) = (self.time("start"), self.time("end")) else {
            return String::new();
        };
        let tz: Tz = self.s("timezone").parse().unwrap_or(Tz::UTC);
        let (ls, le) = (start.with_timezone(&tz), end.with_timezone(&tz));
        let end_fmt =
            if ls.date_naive() == le.date_naive() { "%H:%M %Z" } else { "%a %-d %b %Y %H:%M %Z" };
        format!(
            "{}–{} ({}, {}–{} UTC)",
            ls.format("%a %-d %b %Y %H:%M"),
            le.format(end_fmt),
            tz.name(),
            start.format("%H:%M"),
            end.format("%H:%M")
        )
    }

    pub fn impact(&self) -> String {
        match self.s("impact").as_str() {
            "degraded" => "degraded performance",
            "partial_outage" => "partial outage",
            "full_outage" => "full outage",
            _ => "no impact expected",
        }
        .to_string()
    }

    /// The template this notice is written with: the campaign's own for its kind (carried in
    /// the payload), else the built-in one.
    pub fn template(&self) -> NoticeTemplate {
        self.payload
            .get("template")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_else(|| default_template(self.kind))
    }

    /// The values of the template variables.
    pub fn variables(&self, status_url: &str) -> BTreeMap<&'static str, String> {
        let components = self.components();
        let mut v = BTreeMap::new();
        v.insert("title", self.title());
        for key in ["service", "environment", "from_release", "to_release", "message"] {
            v.insert(key, self.s(key));
        }
        v.insert("when", self.when());
        v.insert("impact", self.impact());
        v.insert(
            "components",
            if components.is_empty() { "all components".into() } else { components.join(", ") },
        );
        v.insert("status_url", status_url.to_string());
        v.insert("in", reminder_in(self.kind));
        // What the campaign did to its users, measured (completed and rolled-back notices).
        v.insert("report", self.s("report"));
        v
    }

    /// An operator alert (`alert_*`), not a notice to subscribers.
    pub fn is_alert(&self) -> bool {
        self.kind.starts_with("alert_")
    }

    /// The campaign page an alert points to.
    pub fn campaign_url(&self, base: &str) -> String {
        format!("{base}/campaigns/{}", self.payload["campaign_id"].as_i64().unwrap_or(0))
    }

    /// The text of an operator alert: what happened, where, and the link to act on it.
    pub fn alert_text(&self, base: &str) -> String {
        format!(
            "{}\n\n{}\n\nService {} in {}: {} → {}.\nCampaign: {}\n\n--\nYou get this because this \
             address is an operator channel of the environment {}.\n",
            self.headline(),
            self.s("message"),
            self.s("service"),
            self.s("environment"),
            self.s("from_release"),
            self.s("to_release"),
            self.campaign_url(base),
            self.s("environment"),
        )
    }

    pub fn alert_html(&self, base: &str) -> String {
        format!(
            "<!doctype html><html lang=\"en\"><body><h1>{}</h1><p>{}</p><p>Service {} in {}: {} → {}.</p>\
             <p><a href=\"{}\">Open the campaign</a></p><hr><p><small>You get this because this address \
             is an operator channel of the environment {}.</small></p></body></html>",
            esc(&self.headline()),
            esc(&self.s("message")),
            esc(&self.s("service")),
            esc(&self.s("environment")),
            esc(&self.s("from_release")),
            esc(&self.s("to_release")),
            esc(&self.campaign_url(base)),
            esc(&self.s("environment")),
        )
    }

    /// The webhook body of an operator alert: `text` for Slack-compatible hooks (with the
    /// campaign link in Slack's `<url|label>` form), the fields for anything else.
    pub fn alert_json(&self, id: &str, base: &str) -> Value {
        serde_json::json!({
            "id": id,
            "kind": self.kind,
            "text": format!("{}: {} <{}|open the campaign>", self.headline(), self.s("message"), self.campaign_url(base)),
            "alert": self.payload,
            "campaign_url": self.campaign_url(base),
        })
    }

    /// One line saying what happened: the subject.
    pub fn headline(&self) -> String {
        if self.is_alert() {
            return self.s("title");
        }
        fill(&self.template().subject, &self.variables(""))
    }

    /// Notices about the window itself carry a calendar entry.
    pub fn has_calendar(&self) -> bool {
        self.kind.starts_with("reminder_")
            || matches!(self.kind, "scheduled" | "rescheduled" | "cancelled" | "extended")
    }

    /// The body as the template says, without the links every e-mail ends with.
    pub fn body(&self, status_url: &str) -> String {
        let text = fill(&self.template().body, &self.variables(status_url));
        text.trim_end().to_string()
    }

    pub fn text(&self, status_url: &str, unsubscribe_url: &str) -> String {
        format!(
            "{}\n\n{}\n\nStatus page: {status_url}\n\n--\nYou get this because you subscribed to maintenance notices.\nUnsubscribe: {unsubscribe_url}\n",
            self.headline(),
            self.body(status_url)
        )
    }

    pub fn html(&self, status_url: &str, unsubscribe_url: &str) -> String {
        let paragraphs: String = self
            .body(status_url)
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .map(|p| format!("<p>{}</p>", esc(p).replace('\n', "<br>")))
            .collect();
        format!(
            "<!doctype html><html lang=\"en\"><body><h1>{}</h1>{paragraphs}\
             <p><a href=\"{}\">Status page</a></p><hr><p><small>You get this because you subscribed to \
             maintenance notices. <a href=\"{}\">Unsubscribe</a></small></p></body></html>",
            esc(&self.headline()),
            esc(status_url),
            esc(unsubscribe_url)
        )
    }

    /// The Slack-compatible body: only `text`, which incoming webhooks show as the message.
    pub fn slack_json(&self, status_url: &str) -> Value {
        serde_json::json!({
            "text": format!("*{}*\n{} ({})\n<{status_url}|Status page>", self.headline(), self.when(), self.impact()),
        })
    }

    /// The webhook body; `text` makes it acceptable to Slack-compatible incoming webhooks.
    pub fn webhook_json(&self, id: &str, status_url: &str) -> Value {
        serde_json::json!({
            "id": id,
            "kind": self.kind,
            "sequence": self.sequence,
            "text": format!("{} — {} ({})", self.headline(), self.when(), self.impact()),
            "window": self.payload,
            "status_url": status_url,
        })
    }
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

// ---- iCalendar --------------------------------------------------------------------------------

/// One event of a calendar.
pub struct CalendarEvent {
    pub uid: String,
    pub sequence: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: String,
    pub description: String,
    pub cancelled: bool,
    pub stamp: DateTime<Utc>,
    pub url: String,
}

/// A VCALENDAR of `events` (RFC 5545, written by the `icalendar` crate: escaping, CRLF and
/// folding at 75 octets are its job). `method` is `PUBLISH` for the feed; an e-mail about a
/// cancellation uses `CANCEL` so calendar programs remove the entry.
pub fn calendar(method: &str, events: &[CalendarEvent]) -> String {
    use icalendar::{Calendar, Component, EventLike, EventStatus, Property};
    let mut cal = Calendar::empty();
    for (key, value) in [
        ("VERSION", "2.0"),
        ("PRODID", "-//Switchyard//Maintenance windows//EN"),
        ("CALSCALE", "GREGORIAN"),
        ("METHOD", method),
        ("X-WR-CALNAME", "Maintenance windows"),
    ] {
        cal.append_property(Property::new(key, value));
    }
    // The crate escapes a line feed; a carriage return before it would stay in the text.
    let text = |s: &str| s.replace("\r\n", "\n");
    for e in events {
        cal.push(
            icalendar::Event::new()
                .uid(&e.uid)
                .sequence(u32::try_from(e.sequence).unwrap_or(0))
                .timestamp(e.stamp)
                .starts(e.start)
                .ends(e.end)
                .summary(&text(&e.summary))
                .description(&text(&e.description))
                .url(&e.url)
                .status(if e.cancelled { EventStatus::Cancelled } else { EventStatus::Confirmed })
                .add_property("TRANSP", "TRANSPARENT")
                .done(),
        );
    }
    cal.to_string()
}

// ---- Atom ------------------------------------------------------------------------------------

pub struct FeedEntry {
    pub id: String,
    pub title: String,
    pub updated: DateTime<Utc>,
    pub summary: String,
    pub link: String,
}

/// An Atom 1.0 feed (RFC 4287, written by the `atom_syndication` crate): id, title, updated,
/// author, self and alternate links; entries newest first.
pub fn atom(feed_id: &str, self_url: &str, page_url: &str, entries: &[FeedEntry]) -> String {
    use atom_syndication::{Entry, Feed, Link, Person, Text};
    let link = |rel: &str, mime: &str, href: &str| Link {
        href: href.to_string(),
        rel: rel.to_string(),
        mime_type: Some(mime.to_string()),
        ..Link::default()
    };
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or(DateTime::UNIX_EPOCH);
    let mut feed = Feed::default();
    feed.set_id(feed_id);
    feed.set_title(Text::plain("Maintenance and status"));
    feed.set_updated(updated.fixed_offset());
    feed.set_authors(vec![Person { name: "Switchyard".into(), ..Person::default() }]);
    feed.set_links(vec![
        link("self", "application/atom+xml", self_url),
        link("alternate", "text/html", page_url),
    ]);
    feed.set_entries(
        entries
            .iter()
            .map(|e| {
                let mut entry = Entry::default();
                entry.set_id(e.id.as_str());
                entry.set_title(Text::plain(e.title.as_str()));
                entry.set_updated(e.updated.fixed_offset());
                entry.set_links(vec![link("alternate", "text/html", &e.link)]);
                entry.set_summary(Some(Text::plain(e.summary.as_str())));
                entry
            })
            .collect::<Vec<_>>(),
    );
    feed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn calendar_lines_are_crlf_folded_at_75_octets_and_text_is_escaped() {
        let e = CalendarEvent {
            uid: "campaign-1@switchyard".into(),
            sequence: 2,
            start: at("2026-11-24T08:00:00Z"),
            end: at("2026-11-24T10:00:00Z"),
            summary: "web: v1, v2; ünïcødé ".repeat(6),
            description: "line one\nline two".into(),
            cancelled: true,
            stamp: at("2026-11-22T08:00:00Z"),
            url: "http://x/status".into(),
        };
        let ics = calendar("PUBLISH", &[e]);
        assert!(ics.lines().all(|l| l.len() <= 76), "{ics}");
        assert!(ics.split("\r\n").all(|l| l.len() <= 75));
        assert!(ics.contains("SEQUENCE:2\r\n") && ics.contains("STATUS:CANCELLED\r\n"));
        assert!(ics.contains("DESCRIPTION:line one\\nline two"));
        assert!(ics.contains("web: v1\\, v2\\; "));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn a_notice_says_when_in_the_windows_zone_and_in_utc() {
        let p = serde_json::json!({
            "title": "web: v1 → v2", "start": "2026-11-24T08:00:00+00:00", "end": "2026-11-24T10:00:00+00:00",
            "timezone": "Europe/Berlin", "impact": "degraded", "components": ["api"], "message": "<b>hi</b>"
        });
        let n = Notice { kind: "reminder_1h", sequence: 0, payload: &p };
        assert_eq!(n.when(), "Tue 24 Nov 2026 09:00–11:00 CET (Europe/Berlin, 08:00–10:00 UTC)");
        assert!(n.headline().starts_with("Reminder: maintenance in 1 hour"));
        let html = n.html("http://s/status", "http://s/u?t=1&x=2");
        assert!(html.contains("&lt;b&gt;hi&lt;/b&gt;") && html.contains("u?t=1&amp;x=2"));
        assert!(n.text("s", "http://s/u").contains("Unsubscribe: http://s/u"));
        assert!(n.text("s", "u").contains("Affected: api\n"), "{}", n.text("s", "u"));
    }

    #[test]
    fn a_campaigns_own_template_replaces_the_built_in_one() {
        let p = serde_json::json!({
            "title": "web: v1 → v2", "start": "2026-11-24T08:00:00+00:00", "end": "2026-11-24T10:00:00+00:00",
            "timezone": "UTC", "impact": "full_outage", "components": [], "to_release": "v2",
            "template": { "subject": "Heads up: {to_release} in {in}", "body": "Down: {impact}, {components}." }
        });
        let n = Notice { kind: "reminder_30m", sequence: 0, payload: &p };
        assert_eq!(n.headline(), "Heads up: v2 in 30 minutes");
        assert_eq!(n.body("x"), "Down: full outage, all components.");
        assert!(n.html("x", "y").contains("<p>Down: full outage, all components.</p>"));
    }
}
