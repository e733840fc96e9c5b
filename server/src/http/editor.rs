//! The campaign spec as a file: `GET /api/v1/campaigns/{id}/spec?format=toml|yaml|json`, the
//! same text the editor exports, for `switchyard apply -f` or a repository.

use app::domain::auth::Principal;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::error::AppError;
use crate::http::state::AppState;
use crate::services::editor::{SpecFormat, write_spec};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/campaigns/{id}/spec", get(campaign_spec))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SpecQuery {
    format: String,
}

async fn campaign_spec(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<SpecQuery>,
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
