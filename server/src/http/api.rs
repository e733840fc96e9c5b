//! REST API under `/api/v1`. Handlers are thin: find the caller, call a service, map errors.

use app::api::ApiError;
use app::domain::audit::{AuditFilter, AuditPage, ChainReport};
use app::domain::auth::{Principal, Role, TokenPolicy, TokenView, UserView};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::error::AppError;
use crate::audit;
use crate::http::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(list_users).post(add_user))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/admin/tokens", get(list_all_tokens))
        .route("/api/v1/settings/tokens", get(token_policy).put(set_token_policy))
        .route("/api/v1/audit", get(search_audit))
        .route("/api/v1/audit/export", get(export_audit))
        .route("/api/v1/audit/verify", get(verify_audit))
}

#[derive(Serialize)]
struct Me {
    username: String,
    role: Role,
    via: app::domain::auth::AuthVia,
}

async fn me(Extension(p): Extension<Principal>) -> Json<Me> {
    Json(Me { username: p.username, role: p.role, via: p.via })
}

async fn list_users(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<UserView>>, AppError> {
    Ok(Json(s.ports.accounts.list_users(&p).await?))
}

#[derive(Deserialize)]
struct NewUserBody {
    username: String,
    role: String,
    password: String,
}

async fn add_user(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<NewUserBody>,
) -> Result<(axum::http::StatusCode, Json<UserView>), AppError> {
    let role: Role = body
        .role
        .parse()
        .map_err(|e: app::domain::auth::UnknownRole| ApiError::field("role", e.to_string()))?;
    let user = s.ports.accounts.add_user(&p, &body.username, role, &body.password).await?;
    Ok((axum::http::StatusCode::CREATED, Json(user)))
}

async fn list_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<TokenView>>, AppError> {
    Ok(Json(s.ports.accounts.list_tokens(&p).await?))
}

#[derive(Deserialize)]
struct NewTokenBody {
    name: String,
    /// Omitted: the admin's default lifetime.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

#[derive(Serialize)]
struct CreatedToken {
    token: TokenView,
    secret: String,
}

async fn create_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(body): Json<NewTokenBody>,
) -> Result<(axum::http::StatusCode, Json<CreatedToken>), AppError> {
    let t = s.ports.accounts.create_token(&p, &body.name, body.expires_in_days).await?;
    Ok((axum::http::StatusCode::CREATED, Json(CreatedToken { token: t.view, secret: t.secret })))
}

async fn revoke_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Result<axum::http::StatusCode, AppError> {
    s.ports.accounts.revoke_token(&p, id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn list_all_tokens(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<TokenView>>, AppError> {
    Ok(Json(s.ports.accounts.list_all_tokens(&p).await?))
}

async fn token_policy(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<TokenPolicy>, AppError> {
    Ok(Json(s.ports.accounts.token_policy(&p).await?))
}

async fn set_token_policy(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    super::campaigns::Body(policy): super::campaigns::Body<TokenPolicy>,
) -> Result<Json<TokenPolicy>, AppError> {
    s.ports.accounts.set_token_policy(&p, policy).await?;
    Ok(Json(s.ports.accounts.token_policy(&p).await?))
}

async fn search_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(filter): Query<AuditFilter>,
) -> Result<Json<AuditPage>, AppError> {
    Ok(Json(s.ports.audit.search(&p, filter).await?))
}

#[derive(Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(flatten)]
    filter: AuditFilter,
}

async fn export_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, AppError> {
    if !p.role.allows(Role::Viewer) {
        return Err(ApiError::forbidden(Role::Viewer).into());
    }
    let query = audit::parse_filter(&q.filter)?;
    let rows = s.store.export_audit(&query, audit::EXPORT_LIMIT).await?;
    let (body, content_type, ext) = match q.format.as_str() {
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

async fn verify_audit(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<ChainReport>, AppError> {
    if !p.role.allows(Role::Admin) {
        return Err(ApiError::forbidden(Role::Admin).into());
    }
    Ok(Json(audit::verify_chain(&s.store).await?))
}
