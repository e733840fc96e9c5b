//! REST API under `/api/v1`. Handlers are thin: find the caller, call a service, map errors.

use app::api::ApiError;
use app::domain::audit::{AuditFilter, AuditPage, ChainReport};
use app::domain::auth::{Principal, Role, TokenPolicy, TokenView, UserView};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use super::extract::{ApiPath, ApiQuery, Body};
use crate::audit;
use crate::http::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_users, add_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_all_tokens))
        .routes(routes!(token_policy, set_token_policy))
        .routes(routes!(search_audit))
        .routes(routes!(export_audit))
        .routes(routes!(verify_audit))
}

#[derive(Serialize, ToSchema)]
struct Me {
    username: String,
    role: Role,
    via: app::domain::auth::AuthVia,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", summary = "The caller's name and role", extensions(("x-switchyard-role" = json!("viewer"))), responses((status = 200, body = Me)))]
async fn me(Extension(p): Extension<Principal>) -> Json<Me> {
    Json(Me { username: p.username, role: p.role, via: p.via })
}

#[utoipa::path(get, path = "/api/v1/users", tag = "accounts", summary = "List users", extensions(("x-switchyard-role" = json!("admin"))), responses((status = 200, body = Vec<UserView>)))]
async fn list_users(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<UserView>>, AppError> {
    Ok(Json(s.ports.accounts.list_users(&p).await?))
}

#[derive(Deserialize, ToSchema)]
struct NewUserBody {
    username: String,
    /// viewer, operator, approver or admin
    #[schema(value_type = Role)]
    role: String,
    #[schema(min_length = 12)]
    password: String,
}

#[utoipa::path(post, path = "/api/v1/users", tag = "accounts", summary = "Add a user", extensions(("x-switchyard-role" = json!("admin"))), request_body = NewUserBody, responses((status = 201, body = UserView)))]
async fn add_user(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(body): Body<NewUserBody>,
) -> Result<(axum::http::StatusCode, Json<UserView>), AppError> {
    let role: Role = body
        .role
        .parse()
        .map_err(|e: app::domain::auth::UnknownRole| ApiError::field("role", e.to_string()))?;
    let user = s.ports.accounts.add_user(&p, &body.username, role, &body.password).await?;
    Ok((axum::http::StatusCode::CREATED, Json(user)))
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts", summary = "Your API tokens", extensions(("x-switchyard-role" = json!("viewer"))), responses((status = 200, body = Vec<TokenView>)))]
async fn list_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<TokenView>>, AppError> {
    Ok(Json(s.ports.accounts.list_tokens(&p).await?))
}

#[derive(Deserialize, ToSchema)]
struct NewTokenBody {
    name: String,
    /// Omitted: the admin's default lifetime.
    #[serde(default)]
    #[schema(minimum = 1)]
    expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
struct CreatedToken {
    token: TokenView,
    secret: String,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", summary = "Create an API token (the secret is returned once)", extensions(("x-switchyard-role" = json!("viewer"))), request_body = NewTokenBody, responses((status = 201, body = CreatedToken)))]
async fn create_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(body): Body<NewTokenBody>,
) -> Result<(axum::http::StatusCode, Json<CreatedToken>), AppError> {
    let t = s.ports.accounts.create_token(&p, &body.name, body.expires_in_days).await?;
    Ok((axum::http::StatusCode::CREATED, Json(CreatedToken { token: t.view, secret: t.secret })))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts", summary = "Revoke one of your tokens (an admin: anyone's)", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The token's id")), responses((status = 204, description = "Revoked")))]
async fn revoke_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<axum::http::StatusCode, AppError> {
    s.ports.accounts.revoke_token(&p, id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "accounts", summary = "Every user's API tokens", extensions(("x-switchyard-role" = json!("admin"))), responses((status = 200, body = Vec<TokenView>)))]
async fn list_all_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<TokenView>>, AppError> {
    Ok(Json(s.ports.accounts.list_all_tokens(&p).await?))
}

#[utoipa::path(get, path = "/api/v1/settings/tokens", tag = "accounts", summary = "How long new API tokens live", extensions(("x-switchyard-role" = json!("viewer"))), responses((status = 200, body = TokenPolicy)))]
async fn token_policy(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<TokenPolicy>, AppError> {
    Ok(Json(s.ports.accounts.token_policy(&p).await?))
}

#[utoipa::path(put, path = "/api/v1/settings/tokens", tag = "accounts", summary = "Set the default (and longest) lifetime of new tokens; 0: no expiry", extensions(("x-switchyard-role" = json!("admin"))), request_body = TokenPolicy, responses((status = 200, body = TokenPolicy)))]
async fn set_token_policy(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(policy): Body<TokenPolicy>,
) -> Result<Json<TokenPolicy>, AppError> {
    s.ports.accounts.set_token_policy(&p, policy).await?;
    Ok(Json(s.ports.accounts.token_policy(&p).await?))
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", summary = "Audit events, newest first, filtered and paged", extensions(("x-switchyard-role" = json!("viewer"))), params(AuditFilter), responses((status = 200, body = AuditPage)))]
async fn search_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Json<AuditPage>, AppError> {
    Ok(Json(s.ports.audit.search(&p, filter).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportFormat {
    /// csv (the default) or jsonl
    #[serde(default)]
    #[param(pattern = "^(csv|jsonl)?$")]
    format: String,
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", summary = "Export the filtered audit events as CSV or JSON Lines", extensions(("x-switchyard-role" = json!("viewer"))), params(ExportFormat, AuditFilter), responses((status = 200, description = "The events, oldest first", content((String = "text/csv"), (String = "application/x-ndjson")))))]
async fn export_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(format): ApiQuery<ExportFormat>,
    ApiQuery(filter): ApiQuery<AuditFilter>,
) -> Result<Response, AppError> {
    if !p.role.allows(Role::Viewer) {
        return Err(ApiError::forbidden(Role::Viewer).into());
    }
    let query = audit::parse_filter(&filter)?;
    let rows = s.store.export_audit(&query, audit::EXPORT_LIMIT).await?;
    let (body, content_type, ext) = match format.format.as_str() {
        "csv" | "" => (audit::to_csv(&rows), "text/csv; charset=utf-8", "csv"),
        "jsonl" => (audit::to_jsonl(rows), "application/x-ndjson", "jsonl"),
        other => {
            return Err(ApiError::field(
                "format",
                format!("unknown export format '{other}': use csv or jsonl"),
            )
            .into());
        }
    };
    let disposition = format!("attachment; filename=\"switchyard-audit.{ext}\"");
    Ok(([("content-type", content_type.to_string()), ("content-disposition", disposition)], body)
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", summary = "Verify the audit hash chain", extensions(("x-switchyard-role" = json!("admin"))), responses((status = 200, body = ChainReport)))]
async fn verify_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<ChainReport>, AppError> {
    if !p.role.allows(Role::Admin) {
        return Err(ApiError::forbidden(Role::Admin).into());
    }
    Ok(Json(audit::verify_chain(&s.store).await?))
}
