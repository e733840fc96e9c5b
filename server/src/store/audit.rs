//! Audit events: appended inside the transaction of the change they record, sealed into the
//! hash chain under SQLite's write lock, and queried for the audit page, exports and `verify`.

use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use super::chain;
use super::traits::*;
use super::{SqliteStore, StoreResult, now_ts};

/// What happened, as a service describes it; the store adds id, time and the chain hashes.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub actor: String,
    pub role: String,
    pub source_ip: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub ts: String,
    pub actor: String,
    pub role: String,
    pub source_ip: String,
    pub action: String,
    pub object: String,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ChainHead {
    pub last_id: i64,
    pub last_hash: String,
}

/// Parsed, normalised audit filter (time bounds already in the store's text format).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action_prefix: Option<String>,
    pub object_prefix: Option<String>,
    pub from_ts: Option<super::Timestamp>,
    pub to_ts: Option<super::Timestamp>,
}

const AUDIT_COLUMNS: &str =
    "id, ts, actor, role, source_ip, action, object, outcome, details, prev_hash, hash";

fn like_prefix(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("{escaped}%")
}

fn push_where(qb: &mut QueryBuilder<'_, Sqlite>, q: &AuditQuery) {
    qb.push(" WHERE 1 = 1");
    if let Some(actor) = &q.actor {
        qb.push(" AND actor = ").push_bind(actor.clone()).push(" COLLATE NOCASE");
    }
    if let Some(action) = &q.action_prefix {
        qb.push(" AND action LIKE ").push_bind(like_prefix(action)).push(" ESCAPE '\\'");
    }
    if let Some(object) = &q.object_prefix {
        // A prefix ("user:v" finds user:vera), except that a whole number is a whole id:
        // "campaign:1" matches campaign 1 and what lies under it ("campaign:1/…"), never 12.
        let id = object.rsplit(':').next().unwrap_or_default();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || !object.contains(':') {
            qb.push(" AND object LIKE ").push_bind(like_prefix(object)).push(" ESCAPE '\\'");
        } else {
            qb.push(" AND (object = ")
                .push_bind(object.clone())
                .push(" OR object LIKE ")
                .push_bind(like_prefix(&format!("{object}/")))
                .push(" ESCAPE '\\' OR object LIKE ")
                .push_bind(like_prefix(&format!("{object}:")))
                .push(" ESCAPE '\\')");
        }
    }
    if let Some(from) = &q.from_ts {
        qb.push(" AND ts >= ").push_bind(super::format_ts(*from));
    }
    if let Some(to) = &q.to_ts {
        qb.push(" AND ts < ").push_bind(super::format_ts(*to));
    }
}

#[async_trait::async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, audit: AuditRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn search_audit(
        &self,
        q: &AuditQuery,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<AuditRow>, i64)> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM audit_events");
        push_where(&mut count, q);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_events"));
        push_where(&mut qb, q);
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = qb.build_query_as().fetch_all(&self.pool).await?;
        Ok((rows, total))
    }

    async fn export_audit(&self, q: &AuditQuery, limit: u32) -> StoreResult<Vec<AuditRow>> {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_events"));
        push_where(&mut qb, q);
        qb.push(" ORDER BY id ASC LIMIT ").push_bind(i64::from(limit));
        Ok(qb.build_query_as().fetch_all(&self.pool).await?)
    }

    async fn audit_chain_batch(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRow>> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_events WHERE id > ? ORDER BY id LIMIT ?");
        Ok(sqlx::query_as(&sql).bind(after).bind(i64::from(limit)).fetch_all(&self.pool).await?)
    }

    async fn audit_head(&self) -> StoreResult<ChainHead> {
        Ok(sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn count_login_failures(
        &self,
        username: Option<&str>,
        source_ip: Option<&str>,
        since: super::Timestamp,
    ) -> StoreResult<i64> {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'auth.login' AND outcome = 'failure' AND ts >= ",
        );
        qb.push_bind(super::format_ts(since));
        if let Some(u) = username {
            qb.push(" AND object = ").push_bind(format!("user:{u}")).push(" COLLATE NOCASE");
        }
        if let Some(ip) = source_ip {
            qb.push(" AND source_ip = ").push_bind(ip.to_string());
        }
        Ok(qb.build_query_scalar().fetch_one(&self.pool).await?)
    }
}

impl SqliteStore {
    /// Appends within a write transaction opened by `write_tx` (which holds the write lock, so
    /// the head read here is the head the new event links to).
    pub(super) async fn append_audit_in(
        conn: &mut SqliteConnection,
        audit: AuditRecord,
    ) -> StoreResult<i64> {
        let head: ChainHead =
            sqlx::query_as("SELECT last_id, last_hash FROM audit_head WHERE id = 1")
                .fetch_one(&mut *conn)
                .await?;
        let id = head.last_id + 1;
        let ts = now_ts();
        let details = chain::canonical_json(&audit.details);
        let content = chain::EventContent {
            id,
            ts: &ts,
            actor: &audit.actor,
            role: &audit.role,
            source_ip: &audit.source_ip,
            action: &audit.action,
            object: &audit.object,
            outcome: &audit.outcome,
            details: &details,
            prev_hash: &head.last_hash,
        };
        let hash = content.hash();
        sqlx::query(
            "INSERT INTO audit_events (id, ts, actor, role, source_ip, action, object, outcome, \
             details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&ts)
        .bind(&audit.actor)
        .bind(&audit.role)
        .bind(&audit.source_ip)
        .bind(&audit.action)
        .bind(&audit.object)
        .bind(&audit.outcome)
        .bind(&details)
        .bind(&head.last_hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1")
            .bind(id)
            .bind(&hash)
            .execute(&mut *conn)
            .await?;
        Ok(id)
    }
}
