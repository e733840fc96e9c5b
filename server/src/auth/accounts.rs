//! User administration and API tokens: the rules (who may do what to whom) live here, the
//! storage in `store`, the edges in server functions and the REST API.

use app::api::ApiError;
use app::api::ports::{AccountsPort, NewToken};
use app::domain::auth::{
    Principal, Role, TokenPolicy, TokenView, UserView, Username, check_new_password,
};
use async_trait::async_trait;
use serde_json::json;

use super::{password, tokens};
use crate::audit::record;
use crate::store::{NewUser, Store, TokenRow, UserRow, format_ts};

pub struct AccountsService {
    store: Store,
}

impl AccountsService {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    async fn target_user(&self, user_id: i64) -> Result<UserRow, ApiError> {
        self.store
            .find_user(user_id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("user {user_id}")))
    }

    /// Refuses changes that would leave no active admin to manage the system.
    async fn ensure_other_admin_remains(&self, changing: &UserRow) -> Result<(), ApiError> {
        if changing.role != Role::Admin.as_str() || changing.disabled {
            return Ok(());
        }
        let others = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| u.id != changing.id && u.role == Role::Admin.as_str() && !u.disabled)
            .count();
        if others == 0 {
            return Err(ApiError::conflict(format!(
                "{} is the last active admin: make another user admin first",
                changing.username
            )));
        }
        Ok(())
    }
}

fn require(actor: &Principal, role: Role) -> Result<(), ApiError> {
    if actor.role.allows(role) { Ok(()) } else { Err(ApiError::forbidden(role)) }
}

pub fn user_view(u: UserRow) -> UserView {
    UserView {
        id: u.id,
        role: u.role.parse().unwrap_or(Role::Viewer),
        username: u.username,
        disabled: u.disabled,
        must_change_password: u.must_change_password,
        created_at: format_ts(u.created_at),
        last_login_at: u.last_login_at.map(format_ts),
    }
}

fn token_view(t: TokenRow, owner: String) -> TokenView {
    let expired = t.expires_at.is_some_and(|e| e <= chrono::Utc::now());
    TokenView {
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        created_at: format_ts(t.created_at),
        last_used_at: t.last_used_at.map(format_ts),
        revoked: t.revoked_at.is_some(),
        expires_at: t.expires_at.map(format_ts),
        expired,
        revoked_reason: t.revoked_reason,
        owner,
    }
}

/// The longest lifetime anyone may give a token, whatever the policy.
const MAX_TOKEN_DAYS: u32 = 3650;

#[async_trait]
impl AccountsPort for AccountsService {
    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn list_users(&self, actor: &Principal) -> Result<Vec<UserView>, ApiError> {
        require(actor, Role::Admin)?;
        Ok(self.store.list_users().await?.into_iter().map(user_view).collect())
    }

    #[tracing::instrument(skip_all, fields(username = %username, role = %role), err(level = "debug"))]
    async fn add_user(
        &self,
        actor: &Principal,
        username: &str,
        role: Role,
        password: &str,
    ) -> Result<UserView, ApiError> {
        require(actor, Role::Admin)?;
        let name = Username::parse(username).map_err(|m| ApiError::field("username", m))?;
        check_new_password(password).map_err(|m| ApiError::field("password", m))?;
        let hash = password::hash(password.to_string()).await.map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })?;
        let audit = record(
            actor,
            "user.create",
            format!("user:{name}"),
            "success",
            json!({ "role": role.as_str() }),
        );
        let row = self
            .store
            .create_user(
                NewUser {
                    username: name.as_str(),
                    password_hash: &hash,
                    role: role.as_str(),
                    must_change_password: true,
                },
                audit,
            )
            .await
            .map_err(|e| match e {
                crate::store::StoreError::Conflict(m) => ApiError::field("username", m),
                other => other.into(),
            })?;
        Ok(user_view(row))
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id, role = %role), err(level = "debug"))]
    async fn set_role(&self, actor: &Principal, user_id: i64, role: Role) -> Result<(), ApiError> {
        require(actor, Role::Admin)?;
        let target = self.target_user(user_id).await?;
        if role != Role::Admin {
            self.ensure_other_admin_remains(&target).await?;
        }
        let audit = record(
            actor,
            "user.role",
            format!("user:{}", target.username),
            "success",
            json!({ "from": target.role, "to": role.as_str() }),
        );
        Ok(self.store.set_user_role(user_id, role.as_str(), audit).await?)
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id, disabled = disabled), err(level = "debug"))]
    async fn set_disabled(
        &self,
        actor: &Principal,
        user_id: i64,
        disabled: bool,
    ) -> Result<(), ApiError> {
        require(actor, Role::Admin)?;
        let target = self.target_user(user_id).await?;
        if disabled {
            if target.id == actor.user_id {
                return Err(ApiError::conflict("you cannot disable your own account"));
            }
            self.ensure_other_admin_remains(&target).await?;
        }
        let action = if disabled { "user.disable" } else { "user.enable" };
        let audit =
            record(actor, action, format!("user:{}", target.username), "success", json!({}));
        Ok(self.store.set_user_disabled(user_id, disabled, audit).await?)
    }

    #[tracing::instrument(skip_all, fields(user_id = user_id), err(level = "debug"))]
    async fn reset_password(&self, actor: &Principal, user_id: i64) -> Result<String, ApiError> {
        require(actor, Role::Admin)?;
        let target = self.target_user(user_id).await?;
        let one_time = password::generate_one_time();
        let hash = password::hash(one_time.clone()).await.map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })?;
        let audit = record(
            actor,
            "user.password_reset",
            format!("user:{}", target.username),
            "success",
            json!({}),
        );
        self.store.set_password(user_id, &hash, true, audit).await?;
        Ok(one_time)
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn change_own_password(
        &self,
        actor: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), ApiError> {
        let me = self.target_user(actor.user_id).await?;
        let matches = password::try_verify(current.to_string(), Some(me.password_hash.clone()))
            .await
            .map_err(|busy| ApiError::new(app::api::ErrorCode::Unavailable, busy.to_string()))?;
        if !matches {
            return Err(ApiError::field("current", "the current password is wrong"));
        }
        check_new_password(new).map_err(|m| ApiError::field("new", m))?;
        if new == current {
            return Err(ApiError::field("new", "choose a password different from the current one"));
        }
        let hash = password::hash(new.to_string()).await.map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::internal()
        })?;
        let audit = record(
            actor,
            "user.password_change",
            format!("user:{}", me.username),
            "success",
            json!({}),
        );
        self.store.set_password(me.id, &hash, false, audit).await?;
        Ok(())
    }

    async fn list_tokens(&self, actor: &Principal) -> Result<Vec<TokenView>, ApiError> {
        Ok(self
            .store
            .list_tokens(actor.user_id)
            .await?
            .into_iter()
            .map(|t| token_view(t, actor.username.clone()))
            .collect())
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn create_token(
        &self,
        actor: &Principal,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken, ApiError> {
        if actor.must_change_password {
            return Err(password_change_required());
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ApiError::field(
                "name",
                "give the token a name of 1–64 characters, e.g. ci-pipeline",
            ));
        }
        issue_token_with(
            &self.store,
            actor.user_id,
            name,
            expires_in_days,
            record(
                actor,
                "token.create",
                format!("user:{}", actor.username),
                "success",
                json!({ "name": name }),
            ),
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(token_id = token_id), err(level = "debug"))]
    async fn revoke_token(&self, actor: &Principal, token_id: i64) -> Result<(), ApiError> {
        let token = self
            .store
            .find_token(token_id)
            .await?
            .filter(|t| t.user_id == actor.user_id || actor.role.allows(Role::Admin))
            .ok_or_else(|| ApiError::not_found(format!("token {token_id}")))?;
        let owner = self.target_user(token.user_id).await?;
        let audit = record(
            actor,
            "token.revoke",
            format!("user:{}", owner.username),
            "success",
            json!({ "token_id": token_id, "prefix": token.prefix }),
        );
        let only_own = (!actor.role.allows(Role::Admin)).then_some(actor.user_id);
        Ok(self.store.revoke_token(only_own, token_id, audit).await?)
    }

    async fn list_all_tokens(&self, actor: &Principal) -> Result<Vec<TokenView>, ApiError> {
        require(actor, Role::Admin)?;
        Ok(self
            .store
            .list_all_tokens()
            .await?
            .into_iter()
            .map(|t| token_view(t.token, t.username))
            .collect())
    }

    async fn token_policy(&self, actor: &Principal) -> Result<TokenPolicy, ApiError> {
        require(actor, Role::Viewer)?;
        Ok(TokenPolicy { default_expiry_days: self.store.token_expiry_days().await? })
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    async fn set_token_policy(
        &self,
        actor: &Principal,
        policy: TokenPolicy,
    ) -> Result<(), ApiError> {
        require(actor, Role::Admin)?;
        let days = policy.default_expiry_days;
        if days > MAX_TOKEN_DAYS {
            return Err(ApiError::field(
                "default_expiry_days",
                format!("{days} days is too long; use 1 to {MAX_TOKEN_DAYS}, or 0 for no expiry"),
            ));
        }
        let audit = record(
            actor,
            "settings.token_expiry",
            crate::store::TOKEN_EXPIRY_SETTING,
            "success",
            json!({ "default_expiry_days": days }),
        );
        Ok(self
            .store
            .set_setting(crate::store::TOKEN_EXPIRY_SETTING, &days.to_string(), audit)
            .await?)
    }
}

/// What a caller who must choose a new password gets for anything else.
pub fn password_change_required() -> ApiError {
    ApiError::new(
        app::api::ErrorCode::Forbidden,
        "choose a new password first (Account → Change password); until then only the password change and sign-out work",
    )
}

/// Creates a token for `user_id` with the admin's default lifetime; shared by the service and
/// the `token create` command.
pub async fn issue_token(
    store: &Store,
    user_id: i64,
    name: &str,
    audit: crate::store::AuditRecord,
) -> Result<NewToken, ApiError> {
    issue_token_with(store, user_id, name, None, audit).await
}

/// Creates a token living `days` (`None`: the admin's default; never more than it).
pub async fn issue_token_with(
    store: &Store,
    user_id: i64,
    name: &str,
    days: Option<u32>,
    audit: crate::store::AuditRecord,
) -> Result<NewToken, ApiError> {
    let policy = store.token_expiry_days().await?;
    let days = match (days, policy) {
        (None, p) => p,
        (Some(0), _) => {
            return Err(ApiError::field("expires_in_days", "a token lives at least 1 day"));
        }
        (Some(d), p) if (p > 0 && d > p) || d > MAX_TOKEN_DAYS => {
            let limit = if p > 0 { p } else { MAX_TOKEN_DAYS };
            return Err(ApiError::field(
                "expires_in_days",
                format!(
                    "{d} days is longer than tokens may live here ({limit} days, set by an admin)"
                ),
            ));
        }
        (Some(d), _) => d,
    };
    let expires_at =
        (days > 0).then(|| chrono::Utc::now() + chrono::Duration::days(i64::from(days)));
    let generated = tokens::generate();
    let mut audit = audit;
    if let Some(obj) = audit.details.as_object_mut() {
        obj.insert("prefix".into(), json!(generated.prefix));
        obj.insert("expires_at".into(), json!(expires_at.map(format_ts)));
    }
    let row = store
        .create_token(user_id, name, &generated.prefix, &generated.hash, expires_at, audit)
        .await?;
    let owner = store.find_user(user_id).await?.map(|u| u.username).unwrap_or_default();
    Ok(NewToken { view: token_view(row, owner), secret: generated.secret })
}
