//! Users: lookups and audited changes.

use sqlx::FromRow;

use super::traits::*;
use super::{AuditRecord, SqliteStore, StoreError, StoreResult, now_ts};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    pub must_change_password: bool,
    pub session_epoch: i64,
    #[sqlx(try_from = "super::TsText")]
    pub created_at: super::Timestamp,
    #[sqlx(try_from = "super::OptTsText")]
    pub last_login_at: Option<super::Timestamp>,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub must_change_password: bool,
}

const USER_COLUMNS: &str = "id, username, password_hash, role, disabled, must_change_password, \
                            session_epoch, created_at, last_login_at";

#[async_trait::async_trait]
impl UserStore for SqliteStore {
    async fn user_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn find_user_by_name(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?");
        Ok(sqlx::query_as(&sql).bind(username).fetch_optional(&self.pool).await?)
    }

    async fn find_user(&self, id: i64) -> StoreResult<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        Ok(sqlx::query_as(&sql).bind(id).fetch_optional(&self.pool).await?)
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    async fn create_user(&self, new: NewUser<'_>, audit: AuditRecord) -> StoreResult<UserRow> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, password_hash, role, must_change_password, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(new.username)
        .bind(new.password_hash)
        .bind(new.role)
        .bind(new.must_change_password)
        .bind(now_ts())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            StoreError::from_write(e, || format!("a user named '{}' already exists", new.username))
        })?;
        Self::append_audit_in(&mut tx, audit).await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row = sqlx::query_as(&sql).bind(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn set_user_role(&self, id: i64, role: &str, audit: AuditRecord) -> StoreResult<()> {
        self.update_user(
            id,
            "UPDATE users SET role = ?, session_epoch = session_epoch + 1 WHERE id = ?",
            role,
            audit,
        )
        .await
    }

    async fn set_user_disabled(
        &self,
        id: i64,
        disabled: bool,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE users SET disabled = ?, session_epoch = session_epoch + 1 WHERE id = ?",
        )
        .bind(disabled)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        if disabled {
            Self::revoke_all_tokens_in(&mut tx, id, "disabled").await?;
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        must_change_password: bool,
        audit: AuditRecord,
    ) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "UPDATE users SET password_hash = ?, must_change_password = ?, \
             session_epoch = session_epoch + 1 WHERE id = ? RETURNING session_epoch",
        )
        .bind(password_hash)
        .bind(must_change_password)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(epoch) = epoch else {
            return Err(StoreError::NotFound(format!("user {id}")));
        };
        if must_change_password {
            Self::revoke_all_tokens_in(&mut tx, id, "password_reset").await?;
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(epoch)
    }

    async fn record_login(&self, id: i64, audit: AuditRecord) -> StoreResult<()> {
        self.update_user(id, "UPDATE users SET last_login_at = ? WHERE id = ?", &now_ts(), audit)
            .await
    }
}

impl SqliteStore {
    async fn update_user(
        &self,
        id: i64,
        sql: &'static str,
        value: &str,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(sql).bind(value).bind(id).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }
}
