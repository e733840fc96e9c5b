//! Environments, campaigns, step runs and campaign events. Every state change of a campaign is
//! one transaction with its audit event (when a person caused it) and its stream event.

use app::domain::lifecycle::{CampaignState, PauseCause, Phase, StepStatus};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, QueryBuilder, Row as _, Sqlite, SqliteConnection};

use super::traits::*;
use super::{
    AuditRecord, OptTsText, SqliteStore, StoreError, StoreResult, Timestamp, TsText, format_ts,
    now_ts,
};

/// A text column read into one of the domain's enums; an unknown value is a decode error.
fn enum_col<T: TryFrom<String, Error = String>>(row: &SqliteRow, col: &str) -> sqlx::Result<T> {
    let s: String = row.try_get(col)?;
    T::try_from(s).map_err(|e| sqlx::Error::ColumnDecode { index: col.into(), source: e.into() })
}

/// `'running', 'paused'`: the stored text of `states`, for an `IN (…)` (from the enum, never
/// from input).
fn in_list(states: impl IntoIterator<Item = CampaignState>) -> String {
    states.into_iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone, FromRow)]
pub struct EnvironmentRow {
    pub id: i64,
    pub name: String,
    pub spec: String,
    #[sqlx(try_from = "super::TsText")]
    pub created_at: Timestamp,
    #[sqlx(try_from = "super::TsText")]
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub environment: String,
    pub pool: String,
    pub strategy: String,
    pub status: CampaignState,
    /// Why it is paused, while it is.
    pub pause_cause: Option<PauseCause>,
    pub spec: String,
    pub plan: Option<String>,
    pub env_snapshot: Option<String>,
    pub step_index: i64,
    pub step_started_at: Option<Timestamp>,
    pub rollback_plan: Option<String>,
    pub rollback_index: i64,
    pub approvals: String,
    pub last_error: Option<String>,
    pub abort_reason: Option<String>,
    pub abort_requested_at: Option<Timestamp>,
    pub rollback_secs: Option<f64>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

const ENV_COLUMNS: &str = "id, name, spec, created_at, updated_at";

const CAMPAIGN_COLUMNS: &str = "id, name, environment, pool, strategy, status, pause_cause, spec, \
    plan, env_snapshot, step_index, step_started_at, rollback_plan, rollback_index, approvals, \
    last_error, abort_reason, abort_requested_at, rollback_secs, created_by, created_at, \
    updated_at, started_at, finished_at";

impl FromRow<'_, SqliteRow> for CampaignRow {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        let pause_cause: Option<String> = row.try_get("pause_cause")?;
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            environment: row.try_get("environment")?,
            pool: row.try_get("pool")?,
            strategy: row.try_get("strategy")?,
            status: enum_col(row, "status")?,
            pause_cause: pause_cause.map(PauseCause::try_from).transpose().map_err(|e| {
                sqlx::Error::ColumnDecode { index: "pause_cause".into(), source: e.into() }
            })?,
            spec: row.try_get("spec")?,
            plan: row.try_get("plan")?,
            env_snapshot: row.try_get("env_snapshot")?,
            step_index: row.try_get("step_index")?,
            step_started_at: row.try_get::<OptTsText, _>("step_started_at")?.into(),
            rollback_plan: row.try_get("rollback_plan")?,
            rollback_index: row.try_get("rollback_index")?,
            approvals: row.try_get("approvals")?,
            last_error: row.try_get("last_error")?,
            abort_reason: row.try_get("abort_reason")?,
            abort_requested_at: row.try_get::<OptTsText, _>("abort_requested_at")?.into(),
            rollback_secs: row.try_get("rollback_secs")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get::<TsText, _>("created_at")?.into(),
            updated_at: row.try_get::<TsText, _>("updated_at")?.into(),
            started_at: row.try_get::<OptTsText, _>("started_at")?.into(),
            finished_at: row.try_get::<OptTsText, _>("finished_at")?.into(),
        })
    }
}

/// The identifying columns of a new or edited draft.
pub struct DraftFields<'a> {
    pub name: &'a str,
    pub environment: &'a str,
    pub pool: &'a str,
    pub strategy: &'a str,
    pub spec: &'a str,
}

/// A change to a campaign's progress. `None` leaves a column alone; `Some(None)` clears it.
#[derive(Debug, Default, Clone)]
pub struct CampaignPatch {
    pub status: Option<CampaignState>,
    /// Set with a pause (why), cleared otherwise.
    pub pause_cause: Option<Option<PauseCause>>,
    pub plan: Option<String>,
    pub env_snapshot: Option<String>,
    pub step_index: Option<i64>,
    pub step_started_at: Option<Option<Timestamp>>,
    pub rollback_plan: Option<String>,
    pub rollback_index: Option<i64>,
    pub approvals: Option<String>,
    pub last_error: Option<Option<String>>,
    pub abort_reason: Option<String>,
    pub abort_requested_at: Option<Timestamp>,
    pub rollback_secs: Option<f64>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// A new spec (a reschedule changes the window of a scheduled campaign).
    pub spec: Option<String>,
    /// The window, notices and deliveries this change causes, written in its transaction.
    pub comms: Option<super::CommsChange>,
    /// The environment record this change rewrites (a campaign that ends leaves its pool as it
    /// really is), with the audit event that says so.
    pub environment: Option<EnvironmentUpdate>,
    /// The operator alert this change raises, queued in the outbox in its transaction.
    pub alert: Option<super::NewAlert>,
    /// Marks the forward steps still running as interrupted (a rollback begins), in the same
    /// transaction.
    pub interrupt_forward_steps: bool,
}

/// A new spec for the environment named `name`, written with the campaign change.
#[derive(Debug, Clone)]
pub struct EnvironmentUpdate {
    pub name: String,
    pub spec: String,
    pub audit: AuditRecord,
}

/// A stream event of one campaign (the SSE feed).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct CampaignEventRow {
    pub id: i64,
    pub campaign_id: i64,
    #[serde(with = "super::ts_text")]
    #[sqlx(try_from = "super::TsText")]
    pub ts: Timestamp,
    pub kind: String,
    pub data: String,
}

#[derive(Debug, Clone)]
pub struct StepRunRow {
    pub campaign_id: i64,
    pub phase: Phase,
    pub step_index: i64,
    pub status: StepStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub attempts: i64,
    pub calls: String,
    pub verdict: Option<String>,
    pub log: String,
}

impl FromRow<'_, SqliteRow> for StepRunRow {
    fn from_row(row: &SqliteRow) -> sqlx::Result<Self> {
        Ok(Self {
            campaign_id: row.try_get("campaign_id")?,
            phase: enum_col(row, "phase")?,
            step_index: row.try_get("step_index")?,
            status: enum_col(row, "status")?,
            started_at: row.try_get::<TsText, _>("started_at")?.into(),
            finished_at: row.try_get::<OptTsText, _>("finished_at")?.into(),
            attempts: row.try_get("attempts")?,
            calls: row.try_get("calls")?,
            verdict: row.try_get("verdict")?,
            log: row.try_get("log")?,
        })
    }
}

/// One step's execution as it stands: written (or updated) by [`CampaignStore::record_step_run`](super::CampaignStore::record_step_run).
#[derive(Debug, Clone, Copy)]
pub struct StepRun<'a> {
    pub campaign_id: i64,
    pub phase: Phase,
    pub step_index: i64,
    pub status: StepStatus,
    pub attempts: i64,
    /// JSON: the calls and their read-back, or a gate's samples.
    pub calls: &'a str,
    /// JSON: a gate's verdicts (kept when `None`).
    pub verdict: Option<&'a str>,
    /// A line appended to the step's log.
    pub log_line: Option<&'a str>,
}

#[derive(Debug, Clone, Default)]
pub struct CampaignQuery {
    pub status: Option<CampaignState>,
    pub environment: Option<String>,
    pub search: Option<String>,
}

#[async_trait::async_trait]
impl EnvironmentStore for SqliteStore {
    async fn list_environments(&self) -> StoreResult<Vec<EnvironmentRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ENV_COLUMNS} FROM environments ORDER BY name"))
            .fetch_all(&self.pool)
            .await?)
    }

    async fn environment_names(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM environments ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn find_environment(&self, id: i64) -> StoreResult<Option<EnvironmentRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ENV_COLUMNS} FROM environments WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn find_environment_by_name(&self, name: &str) -> StoreResult<Option<EnvironmentRow>> {
        Ok(sqlx::query_as(&format!("SELECT {ENV_COLUMNS} FROM environments WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn create_environment(
        &self,
        name: &str,
        spec: &str,
        audit: AuditRecord,
    ) -> StoreResult<EnvironmentRow> {
        let mut tx = self.write_tx().await?;
        let now = now_ts();
        let row: EnvironmentRow = sqlx::query_as(&format!(
            "INSERT INTO environments (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?) \
                 RETURNING {ENV_COLUMNS}"
        ))
        .bind(name)
        .bind(spec)
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || format!("an environment named '{name}' already exists"))
        })?;
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn update_environment(&self, id: i64, spec: &str, audit: AuditRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE environments SET spec = ?, updated_at = ? WHERE id = ?")
            .bind(spec)
            .bind(now_ts())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("environment {id}")));
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_environment(&self, id: i64, name: &str, audit: AuditRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM campaigns WHERE environment = ?")
            .bind(name)
            .fetch_one(&mut *tx)
            .await?;
        if used > 0 {
            return Err(StoreError::Conflict(format!(
                "environment '{name}' is used by {used} campaign(s); delete those drafts first"
            )));
        }
        let n = sqlx::query("DELETE FROM environments WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("environment {id}")));
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl CampaignStore for SqliteStore {
    async fn find_campaign(&self, id: i64) -> StoreResult<Option<CampaignRow>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn list_campaigns(
        &self,
        q: &CampaignQuery,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<CampaignRow>, i64)> {
        fn push_where(qb: &mut QueryBuilder<'_, Sqlite>, q: &CampaignQuery) {
            qb.push(" WHERE 1 = 1");
            if let Some(s) = q.status {
                qb.push(" AND status = ").push_bind(s.as_str());
            }
            if let Some(e) = &q.environment {
                qb.push(" AND environment = ").push_bind(e.clone());
            }
            if let Some(s) = &q.search {
                let like = format!(
                    "%{}%",
                    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                );
                qb.push(" AND (name LIKE ")
                    .push_bind(like.clone())
                    .push(" ESCAPE '\\' OR pool LIKE ");
                qb.push_bind(like).push(" ESCAPE '\\')");
            }
        }
        // A search scans the covering `campaigns_search` index (no spec JSON read) for the
        // count and the page's ids; only the page's rows are read whole.
        let from =
            if q.search.is_some() { "campaigns INDEXED BY campaigns_search" } else { "campaigns" };
        let mut count = QueryBuilder::<Sqlite>::new(format!("SELECT COUNT(*) FROM {from}"));
        push_where(&mut count, q);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id IN (SELECT id FROM {from}"
        ));
        push_where(&mut qb, q);
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(limit))
            .push(" OFFSET ")
            .push_bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .push(") ORDER BY id DESC");
        Ok((qb.build_query_as().fetch_all(&self.pool).await?, total))
    }

    async fn active_campaign_ids(&self) -> StoreResult<Vec<i64>> {
        let active = in_list(CampaignState::ALL.into_iter().filter(|s| s.is_active()));
        Ok(sqlx::query_scalar(&format!(
            "SELECT id FROM campaigns WHERE status IN ({active}) ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn campaign_holding_pool(
        &self,
        environment: &str,
        pool: &str,
    ) -> StoreResult<Option<CampaignRow>> {
        let holding = in_list(CampaignState::ALL.into_iter().filter(|s| s.holds_pool()));
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE environment = ? AND pool = ? AND status IN \
             ({holding}) LIMIT 1"
        );
        Ok(sqlx::query_as(&sql).bind(environment).bind(pool).fetch_optional(&self.pool).await?)
    }

    async fn create_campaign(
        &self,
        f: DraftFields<'_>,
        created_by: &str,
        audit: AuditRecord,
    ) -> StoreResult<CampaignRow> {
        let mut tx = self.write_tx().await?;
        let now = now_ts();
        let sql = format!(
            "INSERT INTO campaigns (name, environment, pool, strategy, status, spec, created_by, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 'draft', ?, ?, ?, ?) RETURNING {CAMPAIGN_COLUMNS}"
        );
        let row: CampaignRow = sqlx::query_as(&sql)
            .bind(f.name)
            .bind(f.environment)
            .bind(f.pool)
            .bind(f.strategy)
            .bind(f.spec)
            .bind(created_by)
            .bind(&now)
            .bind(&now)
            .fetch_one(&mut *tx)
            .await?;
        let mut audit = audit;
        audit.object = format!("campaign:{}", row.id);
        Self::append_audit_in(&mut tx, audit).await?;
        Self::append_event_in(
            &mut tx,
            row.id,
            "created",
            &serde_json::json!({ "status": "draft" }),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn update_draft(
        &self,
        id: i64,
        f: DraftFields<'_>,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE campaigns SET name = ?, environment = ?, pool = ?, strategy = ?, spec = ?, updated_at = ? \
             WHERE id = ? AND status = 'draft'",
        )
        .bind(f.name)
        .bind(f.environment)
        .bind(f.pool)
        .bind(f.strategy)
        .bind(f.spec)
        .bind(now_ts())
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(self.not_draft(&mut tx, id).await);
        }
        Self::append_audit_in(&mut tx, audit).await?;
        Self::append_event_in(&mut tx, id, "updated", &serde_json::json!({})).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_draft(&self, id: i64, audit: AuditRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("DELETE FROM campaigns WHERE id = ? AND status = 'draft'")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(self.not_draft(&mut tx, id).await);
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn patch_campaign(
        &self,
        id: i64,
        expect: &[CampaignState],
        patch: CampaignPatch,
        audit: Option<AuditRecord>,
        event: Option<(&str, serde_json::Value)>,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let mut qb = QueryBuilder::<Sqlite>::new("UPDATE campaigns SET updated_at = ");
        qb.push_bind(now_ts());
        macro_rules! set {
            ($col:literal, $val:expr) => {
                if let Some(v) = $val {
                    qb.push(concat!(", ", $col, " = ")).push_bind(v);
                }
            };
        }
        set!("status", patch.status.map(CampaignState::as_str));
        set!("pause_cause", patch.pause_cause.map(|c| c.map(PauseCause::as_str)));
        set!("plan", patch.plan);
        set!("env_snapshot", patch.env_snapshot);
        set!("step_index", patch.step_index);
        set!("step_started_at", patch.step_started_at.map(|t| t.map(format_ts)));
        set!("rollback_plan", patch.rollback_plan);
        set!("rollback_index", patch.rollback_index);
        set!("approvals", patch.approvals);
        set!("last_error", patch.last_error);
        set!("abort_reason", patch.abort_reason);
        set!("abort_requested_at", patch.abort_requested_at.map(format_ts));
        set!("rollback_secs", patch.rollback_secs);
        set!("started_at", patch.started_at.map(format_ts));
        set!("finished_at", patch.finished_at.map(format_ts));
        set!("spec", patch.spec);
        qb.push(" WHERE id = ").push_bind(id);
        if !expect.is_empty() {
            qb.push(" AND status IN (");
            let mut sep = qb.separated(", ");
            for s in expect {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
        }
        let result = qb.build().execute(&mut *tx).await;
        let n = match result {
            Ok(r) => r.rows_affected(),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                return Err(StoreError::Conflict(
                    "another campaign is already active on this pool; wait for it to finish or abort it first".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM campaigns WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Err(match status {
                None => StoreError::NotFound(format!("campaign {id}")),
                Some(s) => StoreError::Conflict(format!(
                    "campaign {id} is {}",
                    CampaignState::parse(&s).map_or(s.clone(), |s| s.label().to_string())
                )),
            });
        }
        if let Some(audit) = audit {
            Self::append_audit_in(&mut tx, audit).await?;
        }
        if let Some((kind, data)) = event {
            Self::append_event_in(&mut tx, id, kind, &data).await?;
        }
        if let Some(comms) = patch.comms {
            Self::apply_comms_in(&mut tx, id, comms).await?;
        }
        if let Some(alert) = patch.alert {
            Self::queue_alert_in(&mut tx, id, alert).await?;
        }
        if patch.interrupt_forward_steps {
            sqlx::query(
                "UPDATE step_runs SET status = ?, finished_at = ? \
                 WHERE campaign_id = ? AND phase = ? AND status = ?",
            )
            .bind(StepStatus::Interrupted.as_str())
            .bind(now_ts())
            .bind(id)
            .bind(Phase::Forward.as_str())
            .bind(StepStatus::Running.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(env) = patch.environment {
            let n = sqlx::query("UPDATE environments SET spec = ?, updated_at = ? WHERE name = ?")
                .bind(&env.spec)
                .bind(now_ts())
                .bind(&env.name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound(format!("environment {}", env.name)));
            }
            Self::append_audit_in(&mut tx, env.audit).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_step_run(&self, run: StepRun<'_>) -> StoreResult<()> {
        let now = now_ts();
        let finished = run.status.is_finished().then(|| now.clone());
        let line = run.log_line.map(|l| format!("{now} {l}\n")).unwrap_or_default();
        sqlx::query(
            "INSERT INTO step_runs (campaign_id, phase, step_index, status, started_at, finished_at, attempts, calls, verdict, log) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (campaign_id, phase, step_index) DO UPDATE SET status = excluded.status, \
             finished_at = excluded.finished_at, attempts = excluded.attempts, calls = excluded.calls, \
             verdict = COALESCE(excluded.verdict, step_runs.verdict), log = step_runs.log || excluded.log",
        )
        .bind(run.campaign_id)
        .bind(run.phase.as_str())
        .bind(run.step_index)
        .bind(run.status.as_str())
        .bind(&now)
        .bind(finished)
        .bind(run.attempts)
        .bind(run.calls)
        .bind(run.verdict)
        .bind(line)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn step_runs(&self, campaign_id: i64) -> StoreResult<Vec<StepRunRow>> {
        Ok(sqlx::query_as(
            "SELECT campaign_id, phase, step_index, status, started_at, finished_at, attempts, calls, verdict, log \
             FROM step_runs WHERE campaign_id = ? ORDER BY phase DESC, step_index",
        )
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn append_event(
        &self,
        campaign_id: i64,
        kind: &str,
        data: &serde_json::Value,
    ) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let id = Self::append_event_in(&mut tx, campaign_id, kind, data).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn latest_event(
        &self,
        campaign_id: i64,
        kind: &str,
    ) -> StoreResult<Option<CampaignEventRow>> {
        Ok(sqlx::query_as(
            "SELECT id, campaign_id, ts, kind, data FROM campaign_events WHERE campaign_id = ? AND kind = ? ORDER BY id DESC LIMIT 1",
        )
        .bind(campaign_id)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn campaign_events_since(
        &self,
        campaign_id: i64,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<CampaignEventRow>> {
        Ok(sqlx::query_as(
            "SELECT id, campaign_id, ts, kind, data FROM campaign_events WHERE campaign_id = ? AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(campaign_id)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}

impl SqliteStore {
    async fn not_draft(&self, conn: &mut SqliteConnection, id: i64) -> StoreError {
        match sqlx::query_scalar::<_, String>("SELECT status FROM campaigns WHERE id = ?")
            .bind(id)
            .fetch_optional(conn)
            .await
        {
            Ok(Some(status)) => StoreError::Conflict(format!(
                "campaign {id} is {}; only drafts can be changed",
                CampaignState::parse(&status).map_or(status.clone(), |s| s.label().to_string())
            )),
            Ok(None) => StoreError::NotFound(format!("campaign {id}")),
            Err(e) => StoreError::Other(e),
        }
    }

    pub(super) async fn append_event_in(
        conn: &mut SqliteConnection,
        campaign_id: i64,
        kind: &str,
        data: &serde_json::Value,
    ) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("INSERT INTO campaign_events (campaign_id, ts, kind, data) VALUES (?, ?, ?, ?) RETURNING id")
            .bind(campaign_id)
            .bind(now_ts())
            .bind(kind)
            .bind(data.to_string())
            .fetch_one(conn)
            .await?)
    }
}
