//! Server functions behind the campaign editor: environments for in-browser validation, saving
//! a draft (validated again on the server), and TOML/YAML import and export.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use super::error::ApiError;
use crate::domain::campaign::CampaignSpec;
use crate::domain::environment::Environment;

/// Environments as the browser may see them: backend settings stripped.
#[server(endpoint = "editor/environments")]
pub async fn editor_environments() -> Result<Vec<Environment>, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.editor.environments(&me).await.map_err(super::ctx::fail)
}

/// Creates a draft campaign (operator and above); returns its id.
#[server(endpoint = "editor/create_draft", input = Json)]
pub async fn create_draft(spec: CampaignSpec) -> Result<i64, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.editor.create_draft(&me, spec).await.map_err(super::ctx::fail)
}

/// Saves the form: a new draft (`id` 0) or an existing draft replaced; returns its id.
#[server(endpoint = "editor/save_draft", input = Json)]
pub async fn save_draft(id: i64, spec: CampaignSpec) -> Result<i64, ApiError> {
    let me = super::ctx::principal()?;
    let id = (id > 0).then_some(id);
    super::ctx::ports()?.editor.save_draft(&me, id, spec).await.map_err(super::ctx::fail)
}

/// What the form starts with: draft `draft` to edit, or a new spec made `mode` (`clone` or
/// `rollback_release`) from campaign `from`; `None` (both 0) for a blank form.
#[server(endpoint = "editor/start")]
pub async fn editor_start(
    draft: i64,
    from: i64,
    mode: String,
) -> Result<Option<CampaignSpec>, ApiError> {
    let me = super::ctx::principal()?;
    let ports = super::ctx::ports()?;
    if draft > 0 {
        return ports.editor.draft_spec(&me, draft).await.map(Some).map_err(super::ctx::fail);
    }
    if from > 0 {
        return ports.editor.draft_from(&me, from, &mode).await.map(Some).map_err(super::ctx::fail);
    }
    Ok(None)
}

/// Reads a pasted or uploaded spec (`toml`, `yaml` or `json`) into a spec the form can show.
#[server(endpoint = "editor/import", input = Json)]
pub async fn import_spec(text: String, format: String) -> Result<CampaignSpec, ApiError> {
    super::ctx::principal()?;
    super::ctx::ports()?.editor.read_spec(&text, &format).map_err(super::ctx::fail)
}

/// Writes the form's spec as `toml`, `yaml` or `json`.
#[server(endpoint = "editor/export", input = Json)]
pub async fn export_spec(spec: CampaignSpec, format: String) -> Result<String, ApiError> {
    super::ctx::principal()?;
    super::ctx::ports()?.editor.write_spec(&spec, &format).map_err(super::ctx::fail)
}

/// The form's first gate replayed against campaign `id`'s stored samples.
#[server(endpoint = "editor/replay_gate", input = Json)]
pub async fn replay_gate(
    id: i64,
    gate: crate::domain::campaign::GateSpec,
) -> Result<crate::domain::views::GateReplay, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.campaigns.replay_gate(&me, id, gate).await.map_err(super::ctx::fail)
}
