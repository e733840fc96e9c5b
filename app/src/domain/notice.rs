//! What a maintenance notice says and when reminders go out: the notice kinds, their default
//! templates with `{variable}` placeholders, and reminder offsets such as `24h` or `90s`.
//! Pure, shared by the server (which renders and sends) and the browser (which validates a spec
//! while it is edited). It never decides who receives a notice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every notice kind a campaign can cause. `reminder` stands for all reminders (`reminder_24h`,
/// `reminder_30m`, …): they share one template, with `{in}` saying how far off the start is.
pub const KINDS: [&str; 9] = [
    "scheduled",
    "reminder",
    "started",
    "completed",
    "rescheduled",
    "cancelled",
    "extended",
    "rolled_back",
    "confirm",
];

/// The placeholders a template may use.
pub const VARIABLES: [&str; 12] = [
    "title",
    "service",
    "environment",
    "from_release",
    "to_release",
    "when",
    "impact",
    "components",
    "message",
    "status_url",
    "in",
    "report",
];

/// Upper bound of a reminder offset: notices further ahead are announcements, not reminders.
pub const MAX_REMINDER_SECS: i64 = 30 * 24 * 3600;

/// A subject line and a plain-text body, both with `{variable}` placeholders. The body is the
/// text of the notice; every e-mail adds the status page and unsubscribe links after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NoticeTemplate {
    pub subject: String,
    pub body: String,
}

/// How long before the window's start a reminder goes out: a number of seconds, or text such as
/// `24h`, `1h30m`, `15m`, `90s`, `2d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Offset {
    Secs(i64),
    Text(String),
}

impl Offset {
    /// The offset in seconds, or a message saying what would be accepted.
    pub fn secs(&self) -> Result<i64, String> {
        let secs = match self {
            Offset::Secs(n) => *n,
            Offset::Text(t) => parse_duration(t)?,
        };
        if secs <= 0 {
            return Err(
                "a reminder must come before the start: use a positive offset such as 1h".into()
            );
        }
        if secs > MAX_REMINDER_SECS {
            return Err("a reminder can be at most 30 days (30d) before the start".into());
        }
        Ok(secs)
    }
}

pub fn default_reminders() -> Vec<Offset> {
    vec![Offset::Text("24h".into()), Offset::Text("1h".into())]
}

fn parse_duration(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{t:?} is not a duration; write it like 24h, 1h, 30m or 90s (or a number of seconds)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    let (mut total, mut digits) = (0_i64, String::new());
    for c in t.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// The notice kind of a reminder `secs` before the start: `reminder_24h`, `reminder_30m`, `reminder_90s`.
pub fn reminder_kind(secs: i64) -> String {
    let label = if secs % 3600 == 0 {
        format!("{}h", secs / 3600)
    } else if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    };
    format!("reminder_{label}")
}

/// "24 hours", "1 hour", "30 minutes", "90 seconds" for a reminder kind; empty for other kinds.
pub fn reminder_in(kind: &str) -> String {
    let Some(label) = kind.strip_prefix("reminder_") else { return String::new() };
    let (n, unit) = label.split_at(label.len().saturating_sub(1));
    let word = match unit {
        "h" => "hour",
        "m" => "minute",
        "s" => "second",
        _ => return label.to_string(),
    };
    if n == "1" { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// The template key of a kind: every `reminder_*` shares `reminder`.
pub fn template_key(kind: &str) -> &str {
    if kind.starts_with("reminder") { "reminder" } else { kind }
}

/// The built-in template of a kind.
pub fn default_template(kind: &str) -> NoticeTemplate {
    let details = "When: {when}\nImpact: {impact}\nAffected: {components}\n\n{message}";
    let (subject, lead) = match template_key(kind) {
        "scheduled" => ("Maintenance scheduled: {title}", "Maintenance is planned."),
        "reminder" => ("Reminder: maintenance in {in}: {title}", "Maintenance starts in {in}."),
        "started" => ("Maintenance started: {title}", "The maintenance has started."),
        "completed" => (
            "Maintenance completed: {title}",
            "The maintenance is complete. During the change: {report}.",
        ),
        "rescheduled" => (
            "Maintenance rescheduled: {title}",
            "The maintenance has moved; the new time is below.",
        ),
        "cancelled" => ("Maintenance cancelled: {title}", "The maintenance will not take place."),
        "extended" => (
            "Maintenance extended: {title}",
            "The maintenance is taking longer than planned; the new end is below.",
        ),
        "rolled_back" => (
            "Maintenance rolled back: {title}",
            "The change was rolled back to {from_release}; the service runs as before. During \
             the change: {report}.",
        ),
        _ => ("{title}", ""),
    };
    NoticeTemplate { subject: subject.into(), body: format!("{lead}\n\n{details}") }
}

/// The placeholders in `template` that are not variables, in order.
pub fn unknown_variables(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !VARIABLES.contains(&name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
        rest = &after[close + 1..];
    }
    out
}

/// `template` with each `{variable}` replaced; unknown placeholders stay as written.
pub fn fill(template: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').and_then(|close| vars.get(&after[..close]).map(|v| (close, v))) {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Problems with a campaign's reminders and templates, as `(field, message)`.
pub fn check(
    reminders: &[Offset],
    templates: &BTreeMap<String, NoticeTemplate>,
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    if reminders.len() > 10 {
        errs.push(("communications.reminders".into(), "at most 10 reminders".into()));
    }
    let mut seen: Vec<(i64, usize)> = Vec::new();
    for (i, r) in reminders.iter().enumerate() {
        let field = format!("communications.reminders[{i}]");
        match r.secs() {
            Err(m) => errs.push((field, m)),
            Ok(secs) => match seen.iter().find(|(s, _)| *s == secs) {
                Some((_, j)) => errs.push((
                    field,
                    format!("the same offset as communications.reminders[{j}]; remove one"),
                )),
                None => seen.push((secs, i)),
            },
        }
    }
    for (kind, t) in templates {
        let at = format!("communications.templates.{kind}");
        if !KINDS.contains(&kind.as_str()) || kind == "confirm" {
            errs.push((
                at.clone(),
                format!(
                    "no notice kind {kind:?}; use one of {}",
                    KINDS[..KINDS.len() - 1].join(", ")
                ),
            ));
            continue;
        }
        if t.subject.trim().is_empty() {
            errs.push((format!("{at}.subject"), "write a subject line".into()));
        }
        if t.subject.contains('\n') || t.subject.chars().count() > 200 {
            errs.push((
                format!("{at}.subject"),
                "keep the subject to one line of at most 200 characters".into(),
            ));
        }
        if t.body.chars().count() > 5000 {
            errs.push((format!("{at}.body"), "keep the body under 5000 characters".into()));
        }
        for (part, text) in [("subject", &t.subject), ("body", &t.body)] {
            let unknown = unknown_variables(text);
            if !unknown.is_empty() {
                errs.push((
                    format!("{at}.{part}"),
                    format!(
                        "unknown variable {}; use {}",
                        unknown.iter().map(|u| format!("{{{u}}}")).collect::<Vec<_>>().join(", "),
                        VARIABLES.iter().map(|v| format!("{{{v}}}")).collect::<Vec<_>>().join(" ")
                    ),
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_as_text_or_seconds_and_name_their_reminder() {
        let secs = |o: Offset| o.secs();
        assert_eq!(secs(Offset::Text("24h".into())), Ok(86_400));
        assert_eq!(secs(Offset::Text("1h30m".into())), Ok(5_400));
        assert_eq!(secs(Offset::Secs(90)), Ok(90));
        assert_eq!(secs(Offset::Text("20".into())), Ok(20));
        assert!(secs(Offset::Text("soon".into())).is_err_and(|e| e.contains("like 24h")));
        assert!(secs(Offset::Secs(0)).is_err());
        assert!(secs(Offset::Text("31d".into())).is_err());
        assert_eq!(reminder_kind(86_400), "reminder_24h");
        assert_eq!(reminder_kind(1_800), "reminder_30m");
        assert_eq!(reminder_kind(20), "reminder_20s");
        assert_eq!(reminder_in("reminder_1h"), "1 hour");
        assert_eq!(reminder_in("reminder_20s"), "20 seconds");
    }

    #[test]
    fn bad_reminders_and_templates_name_their_field() {
        let mut t = BTreeMap::new();
        t.insert(
            "scheduled".to_string(),
            NoticeTemplate { subject: "Hi {name}".into(), body: "{when}".into() },
        );
        t.insert("party".to_string(), NoticeTemplate { subject: "x".into(), body: String::new() });
        let errs = check(
            &[Offset::Text("1h".into()), Offset::Text("tomorrow".into()), Offset::Secs(3600)],
            &t,
        );
        let fields: Vec<&str> = errs.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "communications.reminders[1]",
                "communications.reminders[2]",
                "communications.templates.party",
                "communications.templates.scheduled.subject"
            ]
        );
        assert!(errs[3].1.contains("{name}"));
    }

    #[test]
    fn templates_fill_known_variables_and_keep_the_rest() {
        let mut v = BTreeMap::new();
        v.insert("title", "web: v1 → v2".to_string());
        v.insert("in", "1 hour".to_string());
        let t = default_template("reminder_1h");
        assert_eq!(fill(&t.subject, &v), "Reminder: maintenance in 1 hour: web: v1 → v2");
        assert_eq!(fill("{x} {title}", &v), "{x} web: v1 → v2");
    }
}
