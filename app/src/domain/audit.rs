//! Audit-trail views and filters shared by the audit page, the REST API and the exporter.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEventView {
    pub id: i64,
    pub ts: String,
    pub actor: String,
    pub role: String,
    pub source_ip: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    pub details: serde_json::Value,
    pub hash: String,
}

/// Filter for the audit page, the list API and the exports. Empty fields match everything;
/// `from`/`to` are RFC 3339 instants or `YYYY-MM-DD` dates (UTC), `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "ssr", into_params(parameter_in = Query))]
#[serde(default)]
pub struct AuditFilter {
    /// Only events by this user (exact)
    pub actor: String,
    /// Only this action (exact, e.g. `campaign.start`)
    pub action: String,
    /// Only events about this object (exact, e.g. `campaign:12`)
    pub object: String,
    /// From this day (UTC, inclusive); an RFC 3339 instant is accepted too
    #[cfg_attr(
        feature = "ssr",
        param(pattern = "^(20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))?$")
    )]
    pub from: String,
    /// Up to this day (UTC, exclusive); an RFC 3339 instant is accepted too
    #[cfg_attr(
        feature = "ssr",
        param(pattern = "^(20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]))?$")
    )]
    pub to: String,
    /// Page number, from 0
    #[cfg_attr(feature = "ssr", param(maximum = 1_000_000))]
    pub page: u32,
    /// Events per page (0: 50; at most 500)
    #[cfg_attr(feature = "ssr", param(maximum = 500))]
    pub per_page: u32,
}

impl AuditFilter {
    pub const DEFAULT_PER_PAGE: u32 = 50;
    pub const MAX_PER_PAGE: u32 = 500;

    pub fn per_page(&self) -> u32 {
        match self.per_page {
            0 => Self::DEFAULT_PER_PAGE,
            n => n.min(Self::MAX_PER_PAGE),
        }
    }

    /// Query string for links (exports, next page), without a leading `?`.
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("object", &self.object),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", encode_component(v)));
            }
        }
        if self.page > 0 {
            parts.push(format!("page={}", self.page));
        }
        parts.join("&")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

/// Result of checking the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChainReport {
    pub intact: bool,
    pub events_checked: i64,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct BrokenLink {
    pub event_id: i64,
    pub reason: String,
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass through).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_query_encodes_values_and_skips_empty_fields() {
        let f = AuditFilter {
            actor: "a b".into(),
            action: "auth.login".into(),
            page: 2,
            ..Default::default()
        };
        assert_eq!(f.to_query(), "actor=a%20b&action=auth.login&page=2");
    }

    #[test]
    fn per_page_is_capped() {
        let f = AuditFilter { per_page: 10_000, ..Default::default() };
        assert_eq!(f.per_page(), AuditFilter::MAX_PER_PAGE);
    }
}
