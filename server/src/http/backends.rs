//! `GET /api/v1/backends/check`: what every environment's backends answer (operator and above).

use app::domain::auth::Principal;
use axum::extract::State;
use axum::{Extension, Json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use crate::http::state::AppState;
use crate::services::backends::CheckReport;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(check)).routes(routes!(drift))
}

/// Router pools whose real state differs from what Switchyard last set (viewer and above).
#[utoipa::path(get, path = "/api/v1/drift", tag = "environments", summary = "Router pools whose read-back differs from what Switchyard last set", extensions(("x-switchyard-role" = json!("viewer"))), responses((status = 200, body = Vec<crate::engine::drift::DriftFinding>)))]
async fn drift(State(s): State<AppState>) -> Json<Vec<crate::engine::drift::DriftFinding>> {
    Json(s.campaigns.engine().drift())
}

#[utoipa::path(get, path = "/api/v1/backends/check", tag = "environments", summary = "Connect to every environment's backends and report what each answers (changes nothing)", extensions(("x-switchyard-role" = json!("operator"))), responses((status = 200, body = CheckReport)))]
async fn check(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<CheckReport>, AppError> {
    Ok(Json(s.environments.backends_report(&p).await?))
}
