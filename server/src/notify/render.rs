//! What a notice says: subject, plain text and HTML for e-mail, the JSON of a webhook, and the
//! iCalendar (RFC 5545) and Atom (RFC 4287) documents, written by hand. Pure.

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

    /// One line saying what happened.
    pub fn headline(&self) -> String {
        let t = self.title();
        match self.kind {
            "scheduled" => format!("Maintenance scheduled: {t}"),
            "reminder_24h" => format!("Reminder: maintenance in 24 hours: {t}"),
            "reminder_1h" => format!("Reminder: maintenance in 1 hour: {t}"),
            "started" => format!("Maintenance started: {t}"),
            "completed" => format!("Maintenance completed: {t}"),
            "rescheduled" => format!("Maintenance rescheduled: {t}"),
            "cancelled" => format!("Maintenance cancelled: {t}"),
            "extended" => format!("Maintenance extended: {t}"),
            "rolled_back" => format!("Maintenance rolled back: {t}"),
            other => format!("{other}: {t}"),
        }
    }

    /// Notices about the window itself carry a calendar entry.
    pub fn has_calendar(&self) -> bool {
        matches!(
            self.kind,
            "scheduled" | "reminder_24h" | "reminder_1h" | "rescheduled" | "cancelled" | "extended"
        )
    }

    pub fn text(&self, status_url: &str, unsubscribe_url: &str) -> String {
        let mut out =
            format!("{}\n\nWhen: {}\nImpact: {}\n", self.headline(), self.when(), self.impact());
        let components = self.components();
        if !components.is_empty() {
            out.push_str(&format!("Affected: {}\n", components.join(", ")));
        }
        let message = self.s("message");
        if !message.is_empty() {
            out.push_str(&format!("\n{message}\n"));
        }
        out.push_str(&format!(
            "\nStatus page: {status_url}\n\n--\nYou get this because you subscribed to maintenance notices.\nUnsubscribe: {unsubscribe_url}\n"
        ));
        out
    }

    pub fn html(&self, status_url: &str, unsubscribe_url: &str) -> String {
        let mut rows = format!(
            "<tr><th scope=\"row\">When</th><td>{}</td></tr><tr><th scope=\"row\">Impact</th><td>{}</td></tr>",
            esc(&self.when()),
            esc(&self.impact())
        );
        let components = self.components();
        if !components.is_empty() {
            rows.push_str(&format!(
                "<tr><th scope=\"row\">Affected</th><td>{}</td></tr>",
                esc(&components.join(", "))
            ));
        }
        let message = self.s("message");
        let message =
            if message.is_empty() { String::new() } else { format!("<p>{}</p>", esc(&message)) };
        format!(
            "<!doctype html><html lang=\"en\"><body><h1>{}</h1><table>{rows}</table>{message}\
             <p><a href=\"{}\">Status page</a></p><hr><p><small>You get this because you subscribed to \
             maintenance notices. <a href=\"{}\">Unsubscribe</a></small></p></body></html>",
            esc(&self.headline()),
            esc(status_url),
            esc(unsubscribe_url)
        )
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

fn ics_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace("\r\n", "\\n")
        .replace('\n', "\\n")
}

/// Folds a content line at 75 octets, never inside a UTF-8 character (RFC 5545 §3.1).
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

fn ics_time(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A VCALENDAR of `events`. `method` is `PUBLISH` for the feed; an e-mail about a cancellation
/// uses `CANCEL` so calendar programs remove the entry.
pub fn calendar(method: &str, events: &[CalendarEvent]) -> String {
    let mut out = String::new();
    for l in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Switchyard//Maintenance windows//EN",
        "CALSCALE:GREGORIAN",
    ] {
        fold(l, &mut out);
    }
    fold(&format!("METHOD:{method}"), &mut out);
    fold("X-WR-CALNAME:Maintenance windows", &mut out);
    for e in events {
        fold("BEGIN:VEVENT", &mut out);
        fold(&format!("UID:{}", ics_text(&e.uid)), &mut out);
        fold(&format!("SEQUENCE:{}", e.sequence), &mut out);
        fold(&format!("DTSTAMP:{}", ics_time(e.stamp)), &mut out);
        fold(&format!("DTSTART:{}", ics_time(e.start)), &mut out);
        fold(&format!("DTEND:{}", ics_time(e.end)), &mut out);
        fold(&format!("SUMMARY:{}", ics_text(&e.summary)), &mut out);
        fold(&format!("DESCRIPTION:{}", ics_text(&e.description)), &mut out);
        fold(&format!("URL:{}", e.url), &mut out);
        fold(if e.cancelled { "STATUS:CANCELLED" } else { "STATUS:CONFIRMED" }, &mut out);
        fold("TRANSP:TRANSPARENT", &mut out);
        fold("END:VEVENT", &mut out);
    }
    fold("END:VCALENDAR", &mut out);
    out
}

// ---- Atom ------------------------------------------------------------------------------------

pub struct FeedEntry {
    pub id: String,
    pub title: String,
    pub updated: DateTime<Utc>,
    pub summary: String,
    pub link: String,
}

fn xml(s: &str) -> String {
    esc(s).replace('\'', "&apos;")
}

/// An Atom 1.0 feed (RFC 4287): id, title, updated, author, self link; entries newest first.
pub fn atom(feed_id: &str, self_url: &str, page_url: &str, entries: &[FeedEntry]) -> String {
    let updated = entries.iter().map(|e| e.updated).max().unwrap_or(DateTime::UNIX_EPOCH);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <id>{}</id>\n<title>Maintenance and status</title>\n<updated>{}</updated>\n\
         <author><name>Switchyard</name></author>\n<link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n\
         <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        xml(feed_id),
        updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        xml(self_url),
        xml(page_url)
    );
    for e in entries {
        out.push_str(&format!(
            "<entry>\n<id>{}</id>\n<title>{}</title>\n<updated>{}</updated>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n<summary type=\"text\">{}</summary>\n</entry>\n",
            xml(&e.id),
            xml(&e.title),
            e.updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            xml(&e.link),
            xml(&e.summary)
        ));
    }
    out.push_str("</feed>\n");
    out
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
    }
}
