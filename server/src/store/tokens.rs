//! API tokens: stored as SHA-256 hashes of high-entropy secrets, never the secret itself.

use sqlx::FromRow;

use super::traits::*;
use super::{AuditRecord, SqliteStore, StoreError, StoreResult, UserRow, now_ts};

#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    #[sqlx(try_from = "super::TsText")]
    pub created_at: super::Timestamp,
    #[sqlx(try_from = "super::OptTsText")]
    pub last_used_at: Option<super::Timestamp>,
    #[sqlx(try_from = "super::OptTsText")]
    pub revoked_at: Option<super::Timestamp>,
    #[sqlx(try_from = "super::OptTsText")]
    pub expires_at: Option<super::Timestamp>,
    pub revoked_reason: Option<String>,
}

/// A token with its owner's name, for the admin's list of everyone's tokens.
#[derive(Debug, Clone, FromRow)]
pub struct TokenWithOwnerName {
    #[sqlx(flatten)]
    pub token: TokenRow,
    pub username: String,
}

#[derive(Debug, Clone)]
pub struct TokenWithOwner {
    pub token: TokenRow,
    pub owner: UserRow,
}

const TOKEN_COLUMNS: &str =
    "id, user_id, name, prefix, created_at, last_used_at, revoked_at, expires_at, revoked_reason";

/// The setting that holds the default (and longest) token lifetime in days; 0 is "never".
pub const TOKEN_EXPIRY_SETTING: &str = "tokens.default_expiry_days";
/// Used until an admin sets one.
pub const DEFAULT_TOKEN_EXPIRY_DAYS: u32 = 90;

#[async_trait::async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        prefix: &str,
        token_hash: &str,
        expires_at: Option<super::Timestamp>,
        audit: AuditRecord,
    ) -> StoreResult<TokenRow> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {TOKEN_COLUMNS}"
        );
        let row: TokenRow = sqlx::query_as(&sql)
            .bind(user_id)
            .bind(name)
            .bind(prefix)
            .bind(token_hash)
            .bind(now_ts())
            .bind(expires_at.map(super::format_ts))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, || "token collision; try again".into()))?;
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRow>> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? ORDER BY id DESC");
        Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(&self.pool).await?)
    }

    async fn list_all_tokens(&self) -> StoreResult<Vec<TokenWithOwnerName>> {
        let cols: String =
            TOKEN_COLUMNS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT {cols}, u.username FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id DESC"
        );
        Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
    }

    async fn find_token(&self, token_id: i64) -> StoreResult<Option<TokenRow>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?");
        Ok(sqlx::query_as(&sql).bind(token_id).fetch_optional(&self.pool).await?)
    }

    async fn revoke_token(
        &self,
        user_id: Option<i64>,
        token_id: i64,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?, revoked_reason = 'revoked' \
             WHERE id = ? AND (? IS NULL OR user_id = ?) AND revoked_at IS NULL",
        )
        .bind(now_ts())
        .bind(token_id)
        .bind(user_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("active token {token_id}")));
        }
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn find_active_token(&self, token_hash: &str) -> StoreResult<Option<TokenWithOwner>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > ?)"
        );
        let Some(token): Option<TokenRow> =
            sqlx::query_as(&sql).bind(token_hash).bind(now_ts()).fetch_optional(&self.pool).await?
        else {
            return Ok(None);
        };
        let owner = self
            .find_user(token.user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", token.user_id)))?;
        Ok(Some(TokenWithOwner { token, owner }))
    }

    async fn touch_token(&self, token_id: i64) -> StoreResult<()> {
        let now = now_ts();
        let cutoff = super::format_ts(chrono::Utc::now() - chrono::Duration::seconds(60));
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ? \
             AND (last_used_at IS NULL OR last_used_at < ?)",
        )
        .bind(now)
        .bind(token_id)
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_setting(&self, key: &str, value: &str, audit: AuditRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
        )
        .bind(key)
        .bind(value)
        .bind(now_ts())
        .bind(&audit.actor)
        .execute(&mut *tx)
        .await?;
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_expiry_days(&self) -> StoreResult<u32> {
        Ok(self
            .setting(TOKEN_EXPIRY_SETTING)
            .await?
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_TOKEN_EXPIRY_DAYS))
    }
}

impl SqliteStore {
    /// Revokes every active token of `user_id` inside `tx` (password reset, disable).
    pub(crate) async fn revoke_all_tokens_in(
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        user_id: i64,
        reason: &str,
    ) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE api_tokens SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now_ts())
        .bind(reason)
        .bind(user_id)
        .execute(&mut **tx)
        .await?
        .rows_affected())
    }
}
