//! The campaign spec as a file: `GET /api/v1/campaigns/{id}/spec?format=toml|yaml|json`, the
//! same text the editor exports, for `switchyard apply -f` or a repository.

use app::domain::auth::Principal;
use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use super::extract::{ApiPath, ApiQuery};
use crate::http::state::AppState;
use crate::services::editor::{SpecFormat, write_spec};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(campaign_spec))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct SpecQuery {
    /// toml (the default), yaml or json
    #[param(pattern = "^(toml|yaml|json)?$")]
    format: String,
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}/spec", tag = "campaigns", summary = "The campaign's spec as a file", extensions(("x-switchyard-role" = json!("viewer"))), description = "The same text the editor exports, for `switchyard apply -f`.", params(("id" = i64, Path, description = "The campaign's id"), SpecQuery), responses((status = 200, description = "The spec", content((String = "text/plain"), (app::domain::campaign::CampaignSpec = "application/json")))))]
async fn campaign_spec(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<SpecQuery>,
) -> Result<impl IntoResponse, AppError> {
    let format = SpecFormat::parse(if q.format.is_empty() { "toml" } else { &q.format })?;
    let detail = s.campaigns.get(&p, id).await?;
    let text = write_spec(&detail.spec, format)?;
    let content_type = match format {
        SpecFormat::Json => "application/json",
        // Plain text, so a browser shows the file instead of downloading it.
        SpecFormat::Toml | SpecFormat::Yaml => "text/plain; charset=utf-8",
    };
    let disposition = format!("inline; filename=\"{}.{}\"", detail.spec.name, format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    ))
}
