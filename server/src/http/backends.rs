//! `GET /api/v1/backends/check`: what every environment's backends answer (operator and above).

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};

use super::error::AppError;
use crate::http::state::AppState;
use crate::services::backends::{CHECK_TIMEOUT, CheckReport, check_all};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/backends/check", get(check)).route("/api/v1/drift", get(drift))
}

/// Router pools whose real state differs from what Switchyard last set (viewer and above).
async fn drift(State(s): State<AppState>) -> Json<Vec<crate::engine::drift::DriftFinding>> {
    Json(s.campaigns.engine().drift())
}

async fn check(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<CheckReport>, AppError> {
    if !p.role.allows(Role::Operator) {
        return Err(ApiError::forbidden(Role::Operator).into());
    }
    Ok(Json(check_all(&s.store, s.campaigns.engine().adapters(), CHECK_TIMEOUT).await?))
}
