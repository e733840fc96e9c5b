//! `GET /api/v1/backends/check`: what every environment's backends answer (operator and above).

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use axum::extract::State;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use crate::http::state::AppState;
use crate::services::backends::{CHECK_TIMEOUT, CheckReport, check_all};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(check)).routes(routes!(drift))
}

/// Router pools whose real state differs from what Switchyard last set (viewer and above).
#[utoipa::path(get, path = "/api/v1/drift", tag = "environments", summary = "Router pools whose read-back differs from what Switchyard last set", description = "Needs the viewer role or higher.", responses((status = 200, body = Vec<crate::engine::drift::DriftFinding>)))]
async fn drift(State(s): State<AppState>) -> Json<Vec<crate::engine::drift::DriftFinding>> {
    Json(s.campaigns.engine().drift())
}

#[utoipa::path(get, path = "/api/v1/backends/check", tag = "environments", summary = "Connect to every environment's backends and report what each answers (changes nothing)", description = "Needs the operator role or higher.", responses((status = 200, body = CheckReport)))]
async fn check(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<CheckReport>, AppError> {
    if !p.role.allows(Role::Operator) {
        return Err(ApiError::forbidden(Role::Operator).into());
    }
    Ok(Json(check_all(&s.store, s.campaigns.engine().adapters(), CHECK_TIMEOUT).await?))
}
