//! Server functions for the signed-in user, user administration and API tokens.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::domain::auth::{Principal, TokenPolicy, TokenView, UserView};

/// The signed-in user, or `None` for an anonymous visitor.
#[server]
pub async fn current_user() -> Result<Option<Principal>, ApiError> {
    Ok(super::ctx::maybe_principal())
}

#[server]
pub async fn list_users() -> Result<Vec<UserView>, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.accounts.list_users(&me).await.map_err(super::ctx::fail)
}

#[server]
pub async fn add_user(
    username: String,
    role: String,
    password: String,
) -> Result<UserView, ApiError> {
    let me = super::ctx::principal()?;
    let role: crate::domain::auth::Role =
        role.parse().map_err(|e: crate::domain::auth::UnknownRole| {
            super::ctx::fail(ApiError::field("role", e.to_string()))
        })?;
    super::ctx::ports()?
        .accounts
        .add_user(&me, &username, role, &password)
        .await
        .map_err(super::ctx::fail)
}

#[server]
pub async fn set_user_role(user_id: i64, role: String) -> Result<(), ApiError> {
    let me = super::ctx::principal()?;
    let role: crate::domain::auth::Role =
        role.parse().map_err(|e: crate::domain::auth::UnknownRole| {
            super::ctx::fail(ApiError::field("role", e.to_string()))
        })?;
    super::ctx::ports()?.accounts.set_role(&me, user_id, role).await.map_err(super::ctx::fail)
}

#[server]
pub async fn set_user_disabled(user_id: i64, disabled: bool) -> Result<(), ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?
        .accounts
        .set_disabled(&me, user_id, disabled)
        .await
        .map_err(super::ctx::fail)
}

/// Who got a new password, and the password itself (shown once to the admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PasswordReset {
    pub user_id: i64,
    pub one_time_password: String,
}

#[server]
pub async fn reset_user_password(user_id: i64) -> Result<PasswordReset, ApiError> {
    let me = super::ctx::principal()?;
    let one_time_password = super::ctx::ports()?
        .accounts
        .reset_password(&me, user_id)
        .await
        .map_err(super::ctx::fail)?;
    Ok(PasswordReset { user_id, one_time_password })
}

#[server]
pub async fn change_password(
    current: String,
    new: String,
    confirm: String,
) -> Result<(), ApiError> {
    let me = super::ctx::principal()?;
    if new != confirm {
        return Err(super::ctx::fail(ApiError::field(
            "confirm",
            "the two new passwords differ: type the same password twice",
        )));
    }
    super::ctx::ports()?
        .accounts
        .change_own_password(&me, &current, &new)
        .await
        .map_err(super::ctx::fail)?;
    // Every other session of this user has ended; this one goes on under a new id.
    if let Some(handle) = super::ctx::session() {
        handle.0.renew_after_password_change().await.map_err(super::ctx::fail)?;
    }
    Ok(())
}

#[server]
pub async fn list_tokens() -> Result<Vec<TokenView>, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.accounts.list_tokens(&me).await.map_err(super::ctx::fail)
}

/// A token just created: `secret` is shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub token: TokenView,
    pub secret: String,
}

/// `expires_in_days`: empty takes the admin's default lifetime.
#[server]
pub async fn create_token(
    name: String,
    #[server(default)] expires_in_days: String,
) -> Result<CreatedToken, ApiError> {
    let me = super::ctx::principal()?;
    let days = match expires_in_days.trim() {
        "" => None,
        d => Some(d.parse::<u32>().map_err(|_| {
            super::ctx::fail(ApiError::field(
                "expires_in_days",
                format!("{d:?} is not a number of days; leave it empty for the default"),
            ))
        })?),
    };
    let created = super::ctx::ports()?
        .accounts
        .create_token(&me, &name, days)
        .await
        .map_err(super::ctx::fail)?;
    Ok(CreatedToken { token: created.view, secret: created.secret })
}

/// Every user's API tokens (admin).
#[server]
pub async fn list_all_tokens() -> Result<Vec<TokenView>, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.accounts.list_all_tokens(&me).await.map_err(super::ctx::fail)
}

#[server]
pub async fn get_token_policy() -> Result<TokenPolicy, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.accounts.token_policy(&me).await.map_err(super::ctx::fail)
}

/// Sets how long new tokens live by default, and at most (admin); 0: no default expiry.
#[server]
pub async fn set_token_policy(default_expiry_days: u32) -> Result<(), ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?
        .accounts
        .set_token_policy(&me, TokenPolicy { default_expiry_days })
        .await
        .map_err(super::ctx::fail)
}

#[server]
pub async fn revoke_token(token_id: i64) -> Result<(), ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.accounts.revoke_token(&me, token_id).await.map_err(super::ctx::fail)
}
