//! The service ports server functions call. The server crate implements them and provides a
//! [`Ports`] value through Leptos context; server functions stay thin and never touch storage.

use std::sync::Arc;

use async_trait::async_trait;

use super::error::ApiError;
use crate::domain::audit::{AuditFilter, AuditPage};
use crate::domain::auth::{Principal, Role, TokenPolicy, TokenView, UserView};
use crate::domain::lifecycle::Command;
use crate::domain::views::{
    BackendCheckView, CampaignDetail, CampaignPage, CampaignSummary, EnvironmentOverview,
    PoolOverview, TrafficView,
};

/// A freshly created API token: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub view: TokenView,
    pub secret: String,
}

#[async_trait]
pub trait AccountsPort: Send + Sync {
    async fn list_users(&self, actor: &Principal) -> Result<Vec<UserView>, ApiError>;
    async fn add_user(
        &self,
        actor: &Principal,
        username: &str,
        role: Role,
        password: &str,
    ) -> Result<UserView, ApiError>;
    async fn set_role(&self, actor: &Principal, user_id: i64, role: Role) -> Result<(), ApiError>;
    async fn set_disabled(
        &self,
        actor: &Principal,
        user_id: i64,
        disabled: bool,
    ) -> Result<(), ApiError>;
    /// Returns a new one-time password the user must change at next sign-in.
    async fn reset_password(&self, actor: &Principal, user_id: i64) -> Result<String, ApiError>;
    async fn change_own_password(
        &self,
        actor: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), ApiError>;
    async fn list_tokens(&self, actor: &Principal) -> Result<Vec<TokenView>, ApiError>;
    /// A token for the caller; `expires_in_days` `None` takes the admin's default, and no
    /// more than it may be asked for.
    async fn create_token(
        &self,
        actor: &Principal,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken, ApiError>;
    /// Revokes one of the caller's tokens, or anyone's when the caller is an admin.
    async fn revoke_token(&self, actor: &Principal, token_id: i64) -> Result<(), ApiError>;
    /// Every user's tokens (admin).
    async fn list_all_tokens(&self, actor: &Principal) -> Result<Vec<TokenView>, ApiError>;
    async fn token_policy(&self, actor: &Principal) -> Result<TokenPolicy, ApiError>;
    /// Sets the default and longest lifetime of new tokens (admin).
    async fn set_token_policy(
        &self,
        actor: &Principal,
        policy: TokenPolicy,
    ) -> Result<(), ApiError>;
}

/// The caller's own session, for the one change that must carry it over: after the caller
/// changes their password, every other session ends and this one continues under a new id.
#[async_trait]
pub trait SessionPort: Send + Sync {
    async fn renew_after_password_change(&self) -> Result<(), ApiError>;
}

/// Put in the request by the server's auth middleware for session-authenticated requests.
#[derive(Clone)]
pub struct SessionHandle(pub Arc<dyn SessionPort>);

#[async_trait]
pub trait CampaignsPort: Send + Sync {
    async fn list(
        &self,
        actor: &Principal,
        status: Option<String>,
        environment: Option<String>,
        search: Option<String>,
        page: u32,
    ) -> Result<CampaignPage, ApiError>;
    async fn get(&self, actor: &Principal, id: i64) -> Result<CampaignDetail, ApiError>;
    async fn command(
        &self,
        actor: &Principal,
        id: i64,
        command: Command,
        reason: &str,
    ) -> Result<CampaignSummary, ApiError>;
    async fn traffic(&self, actor: &Principal, id: i64) -> Result<TrafficView, ApiError>;
    /// The health chart (SVG) of one target or the whole pool (`None`), with times in `tz`
    /// (an IANA name; empty means UTC), `width` pixels wide.
    async fn chart(
        &self,
        actor: &Principal,
        id: i64,
        target: Option<String>,
        tz: String,
        width: u32,
    ) -> Result<crate::domain::views::ChartView, ApiError>;
    /// Every environment as it is now (viewer and above).
    async fn environments(&self, actor: &Principal) -> Result<Vec<EnvironmentOverview>, ApiError>;
    /// Connects to every backend and reports what it answers (operator and above).
    async fn check_backends(&self, actor: &Principal) -> Result<Vec<BackendCheckView>, ApiError>;
    /// The campaign's notice schedule, delivery log and notice previews (viewer and above).
    async fn comms(&self, actor: &Principal, id: i64) -> Result<super::comms::CommsView, ApiError>;
    /// What the campaign did to its users, measured (viewer and above).
    async fn impact(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<crate::domain::views::ImpactReport, ApiError>;
    /// A gate replayed against a past campaign's stored samples (viewer and above).
    async fn replay_gate(
        &self,
        actor: &Principal,
        id: i64,
        gate: crate::domain::campaign::GateSpec,
    ) -> Result<crate::domain::views::GateReplay, ApiError>;
    /// Rewrites a pool's record from its router and provider (operator and above; audited).
    async fn accept_live_state(
        &self,
        actor: &Principal,
        environment: &str,
        pool: &str,
    ) -> Result<PoolOverview, ApiError>;
}

#[async_trait]
pub trait AuditPort: Send + Sync {
    async fn search(&self, actor: &Principal, filter: AuditFilter) -> Result<AuditPage, ApiError>;
}

/// What the campaign editor needs: environments safe to send to a browser, draft creation, and
/// spec files read and written as TOML or YAML (parsers that stay out of the wasm build).
#[async_trait]
pub trait EditorPort: Send + Sync {
    /// Every environment, with backend settings removed (they may hold secrets) except what the
    /// plan compiler reads: a DNS router's record and TTL.
    async fn environments(
        &self,
        actor: &Principal,
    ) -> Result<Vec<crate::domain::environment::Environment>, ApiError>;
    /// Validates on the server again and stores a draft (operator and above); its id.
    async fn create_draft(
        &self,
        actor: &Principal,
        spec: crate::domain::campaign::CampaignSpec,
    ) -> Result<i64, ApiError>;
    /// Creates a draft (`id` `None`) or replaces draft `id`, validated on the server again.
    async fn save_draft(
        &self,
        actor: &Principal,
        id: Option<i64>,
        spec: crate::domain::campaign::CampaignSpec,
    ) -> Result<i64, ApiError>;
    /// A draft's spec, to edit in the form (operator and above).
    async fn draft_spec(
        &self,
        actor: &Principal,
        id: i64,
    ) -> Result<crate::domain::campaign::CampaignSpec, ApiError>;
    /// A new spec from campaign `id`: `clone` or `rollback_release` (operator and above).
    async fn draft_from(
        &self,
        actor: &Principal,
        id: i64,
        mode: &str,
    ) -> Result<crate::domain::campaign::CampaignSpec, ApiError>;
    /// Reads a spec written as `toml`, `yaml` or `json`; an error names the field and the line.
    fn read_spec(
        &self,
        text: &str,
        format: &str,
    ) -> Result<crate::domain::campaign::CampaignSpec, ApiError>;
    fn write_spec(
        &self,
        spec: &crate::domain::campaign::CampaignSpec,
        format: &str,
    ) -> Result<String, ApiError>;
}

/// Everything server functions may call, provided as Leptos context by the server.
#[derive(Clone)]
pub struct Ports {
    pub accounts: Arc<dyn AccountsPort>,
    pub audit: Arc<dyn AuditPort>,
    pub campaigns: Arc<dyn CampaignsPort>,
    pub editor: Arc<dyn EditorPort>,
}
