//! API tokens: stored as SHA-256 hashes of high-entropy secrets, never the secret itself.

use sqlx::FromRow;

use super::{AuditRecord, Store, StoreError, StoreResult, UserRow, now_ts};

#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TokenWithOwner {
    pub token: TokenRow,
    pub owner: UserRow,
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, created_at, last_used_at, revoked_at";

impl Store {
    pub async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        prefix: &str,
        token_hash: &str,
        audit: AuditRecord,
    ) -> StoreResult<TokenRow> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING {TOKEN_COLUMNS}"
        );
        let row: TokenRow = sqlx::query_as(&sql)
            .bind(user_id)
            .bind(name)
            .bind(prefix)
            .bind(token_hash)
            .bind(now_ts())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_write(e, || "token collision; try again".into()))?;
        Self::append_audit_in(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRow>> {
        let sql =
            format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = ? ORDER BY id DESC");
        Ok(sqlx::query_as(&sql).bind(user_id).fetch_all(&self.pool).await?)
    }

    /// Revokes a token of `user_id`; `NotFound` when it is not theirs or does not exist.
    pub async fn revoke_token(
        &self,
        user_id: i64,
        token_id: i64,
        audit: AuditRecord,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        )
        .bind(now_ts())
        .bind(token_id)
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

    /// The active token with this hash and its owner.
    pub async fn find_active_token(&self, token_hash: &str) -> StoreResult<Option<TokenWithOwner>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"
        );
        let Some(token): Option<TokenRow> =
            sqlx::query_as(&sql).bind(token_hash).fetch_optional(&self.pool).await?
        else {
            return Ok(None);
        };
        let owner = self
            .find_user(token.user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", token.user_id)))?;
        Ok(Some(TokenWithOwner { token, owner }))
    }

    /// Marks a token used; at most once a minute so reads stay reads.
    pub async fn touch_token(&self, token_id: i64) -> StoreResult<()> {
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
}
