//! The audit trail: the service behind the audit page, exports and chain verification.
//! Events are written by the store together with the change they record; this module reads,
//! filters, exports and verifies them. It never writes events itself.

pub use crate::store::chain;

use app::api::ApiError;
use app::api::ports::AuditPort;
use app::domain::audit::{AuditEventView, AuditFilter, AuditPage, BrokenLink, ChainReport};
use app::domain::auth::{Principal, Role};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::store::{AuditQuery, AuditRecord, AuditRow, Store};

/// Exports stop at this many events; narrow the filter for more.
pub const EXPORT_LIMIT: u32 = 100_000;

/// Who did something and from where, for the audit record of their action.
pub fn record(
    actor: &Principal,
    action: &str,
    object: impl Into<String>,
    outcome: &str,
    details: serde_json::Value,
) -> AuditRecord {
    AuditRecord {
        actor: actor.username.clone(),
        role: actor.role.as_str().to_string(),
        source_ip: actor.source_ip.clone(),
        action: action.to_string(),
        object: object.into(),
        outcome: outcome.to_string(),
        details,
    }
}

/// An audit record for actions taken from the command line on the server's own machine.
pub fn system_record(
    action: &str,
    object: impl Into<String>,
    details: serde_json::Value,
) -> AuditRecord {
    let actor = match std::env::var("USER").or_else(|_| std::env::var("LOGNAME")) {
        Ok(user) if !user.is_empty() => format!("cli:{user}"),
        _ => "cli".to_string(),
    };
    AuditRecord {
        actor,
        role: "admin".into(),
        source_ip: "local".into(),
        action: action.to_string(),
        object: object.into(),
        outcome: "success".into(),
        details,
    }
}

pub fn to_view(row: AuditRow) -> AuditEventView {
    AuditEventView {
        details: serde_json::from_str(&row.details)
            .unwrap_or(serde_json::Value::String(row.details)),
        id: row.id,
        ts: row.ts,
        actor: row.actor,
        role: row.role,
        source_ip: row.source_ip,
        action: row.action,
        object: row.object,
        outcome: row.outcome,
        hash: row.hash,
    }
}

/// Turns the user's filter into a store query, naming the field that does not parse.
pub fn parse_filter(f: &AuditFilter) -> Result<AuditQuery, ApiError> {
    if f.per_page > AuditFilter::MAX_PER_PAGE {
        return Err(ApiError::field("per_page", "at most 500 events per page"));
    }
    if f.page > 1_000_000 {
        return Err(ApiError::field("page", "at most page 1000000"));
    }
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let from_ts = opt(&f.from)
        .map(|s| parse_instant(&s).map_err(|m| ApiError::field("from", m)))
        .transpose()?;
    let to_ts =
        opt(&f.to).map(|s| parse_instant(&s).map_err(|m| ApiError::field("to", m))).transpose()?;
    Ok(AuditQuery {
        actor: opt(&f.actor),
        action_prefix: opt(&f.action),
        object_prefix: opt(&f.object),
        from_ts,
        to_ts,
    })
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(format!(
        "'{s}' is not a date or time: use YYYY-MM-DD or RFC 3339 like 2026-11-22T08:00:00Z"
    ))
}

/// Walks the whole chain and reports the first broken link, if any.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn verify_chain(store: &Store) -> Result<ChainReport, crate::store::StoreError> {
    let mut expected_prev = chain::GENESIS_HASH.to_string();
    let mut last_id = 0_i64;
    let mut checked = 0_i64;
    let broken = |event_id: i64, reason: String| {
        Ok(ChainReport {
            intact: false,
            events_checked: 0,
            first_broken: Some(BrokenLink { event_id, reason }),
        })
    };
    loop {
        let batch = store.audit_chain_batch(last_id, 1000).await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            if row.id != last_id + 1 {
                let missing = if row.id == last_id + 2 {
                    format!("event #{} is missing (deleted)", last_id + 1)
                } else {
                    format!("events #{}–#{} are missing (deleted)", last_id + 1, row.id - 1)
                };
                return broken(last_id + 1, missing);
            }
            let content = chain::EventContent {
                id: row.id,
                ts: &row.ts,
                actor: &row.actor,
                role: &row.role,
                source_ip: &row.source_ip,
                action: &row.action,
                object: &row.object,
                outcome: &row.outcome,
                details: &row.details,
                prev_hash: &row.prev_hash,
            };
            if content.hash() != row.hash {
                return broken(
                    row.id,
                    format!(
                        "event #{} was altered: its content no longer matches its hash",
                        row.id
                    ),
                );
            }
            if row.prev_hash != expected_prev {
                return broken(
                    row.id,
                    format!("event #{} does not link to the event before it", row.id),
                );
            }
            expected_prev = row.hash;
            last_id = row.id;
            checked += 1;
        }
    }
    let head = store.audit_head().await?;
    if head.last_id != last_id {
        let reason = if head.last_id > last_id {
            format!(
                "the newest events were removed: the chain ends at #{last_id} but its head records #{}",
                head.last_id
            )
        } else {
            format!("the chain head records #{} but events go up to #{last_id}", head.last_id)
        };
        return broken(last_id + 1, reason);
    }
    if head.last_hash != expected_prev {
        return broken(
            last_id,
            format!("event #{last_id} does not match the hash recorded in the chain head"),
        );
    }
    Ok(ChainReport { intact: true, events_checked: checked, first_broken: None })
}

/// The audit page's port, over the store.
pub struct AuditService {
    store: Store,
}

impl AuditService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

#[async_trait]
impl AuditPort for AuditService {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn search(&self, actor: &Principal, filter: AuditFilter) -> Result<AuditPage, ApiError> {
        if !actor.role.allows(Role::Viewer) {
            return Err(ApiError::forbidden(Role::Viewer));
        }
        let q = parse_filter(&filter)?;
        let per_page = filter.per_page();
        let (rows, total) = self
            .store
            .search_audit(&q, per_page, u64::from(filter.page) * u64::from(per_page))
            .await?;
        Ok(AuditPage {
            events: rows.into_iter().map(to_view).collect(),
            total,
            page: filter.page,
            per_page,
        })
    }
}

/// CSV with a header row; fields quoted where needed (RFC 4180).
pub fn to_csv(rows: &[AuditRow]) -> String {
    let mut out =
        csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let header = ["id", "ts", "actor", "role", "source_ip", "action", "object", "outcome"];
    let written =
        out.write_record(header.iter().chain(&["details", "prev_hash", "hash"])).and_then(|()| {
            rows.iter().try_for_each(|r| {
                out.write_record([
                    r.id.to_string().as_str(),
                    &r.ts,
                    &r.actor,
                    &r.role,
                    &r.source_ip,
                    &r.action,
                    &r.object,
                    &r.outcome,
                    &r.details,
                    &r.prev_hash,
                    &r.hash,
                ])
            })
        });
    // Writing to memory cannot fail; the text is UTF-8 because every field is.
    debug_assert!(written.is_ok());
    out.into_inner().ok().and_then(|bytes| String::from_utf8(bytes).ok()).unwrap_or_default()
}

/// One JSON object per line.
pub fn to_jsonl(rows: Vec<AuditRow>) -> String {
    let mut out = String::new();
    for r in rows {
        let prev = r.prev_hash.clone();
        let mut v = serde_json::to_value(to_view(r)).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("prev_hash".into(), serde_json::Value::String(prev));
        }
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::format_ts;

    #[test]
    fn dates_and_instants_parse_and_garbage_names_the_format() {
        let text = |s| parse_instant(s).map(format_ts);
        assert_eq!(text("2026-11-01").as_deref(), Ok("2026-11-01T00:00:00.000000Z"));
        assert_eq!(text("2026-11-01T10:00:00+02:00").as_deref(), Ok("2026-11-01T08:00:00.000000Z"));
        assert!(parse_instant("yesterday").unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn csv_quotes_fields_with_commas_and_quotes() {
        let row = AuditRow {
            id: 1,
            ts: "t".into(),
            actor: "a,b".into(),
            role: "r".into(),
            source_ip: "ip".into(),
            action: "x".into(),
            object: "o".into(),
            outcome: "success".into(),
            details: r#"{"k":"v"}"#.into(),
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        let csv = to_csv(&[row]);
        assert!(csv.contains(r#""a,b""#));
        assert!(csv.contains(r#""{""k"":""v""}""#));
    }
}
