//! REST API for environments and campaigns, and the campaign event stream (SSE).

use std::convert::Infallible;
use std::time::Duration;

use app::api::ApiError;
use app::domain::auth::Principal;
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::plan::Plan;
use app::domain::views::{CampaignDetail, CampaignPage, CampaignSummary, EnvironmentView};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use futures_util::Stream;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use super::extract::{ApiPath, ApiQuery, Body, Reason, ReasonBody, optional_json};
use crate::http::state::AppState;
use crate::services::campaigns::FeedItem;
use crate::store::CampaignQuery;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_environments, create_environment))
        .routes(routes!(get_environment, update_environment, delete_environment))
        .routes(routes!(pool_overview))
        .routes(routes!(accept_live))
        .routes(routes!(plan_spec))
        .routes(routes!(list_campaigns, create_campaign))
        .routes(routes!(get_campaign, update_campaign, delete_campaign))
        .routes(routes!(plan_campaign))
        .routes(routes!(clone_campaign))
        .routes(routes!(gate_replay))
        .routes(routes!(impact))
        .routes(routes!(rollback_release))
        .routes(routes!(start))
        .routes(routes!(schedule))
        .routes(routes!(reschedule))
        .routes(routes!(notices))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(skip))
        .routes(routes!(abort))
        .routes(routes!(events))
        .routes(routes!(chart))
        .routes(routes!(traffic))
}

#[utoipa::path(get, path = "/api/v1/environments", tag = "environments", summary = "List environments", extensions(("x-switchyard-role" = json!("viewer"))), responses((status = 200, body = Vec<EnvironmentView>)))]
async fn list_environments(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<EnvironmentView>>, AppError> {
    Ok(Json(s.environments.list(&p).await?))
}

#[utoipa::path(post, path = "/api/v1/environments", tag = "environments", summary = "Create an environment", extensions(("x-switchyard-role" = json!("admin"))), request_body = Environment, responses((status = 201, body = EnvironmentView)))]
async fn create_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(env): Body<Environment>,
) -> Result<(StatusCode, Json<EnvironmentView>), AppError> {
    Ok((StatusCode::CREATED, Json(s.environments.create(&p, env).await?)))
}

#[utoipa::path(get, path = "/api/v1/environments/{id}", tag = "environments", summary = "One environment", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The environment's id")), responses((status = 200, body = EnvironmentView)))]
async fn get_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<EnvironmentView>, AppError> {
    Ok(Json(s.environments.get(&p, id).await?))
}

#[utoipa::path(put, path = "/api/v1/environments/{id}", tag = "environments", summary = "Replace an environment", extensions(("x-switchyard-role" = json!("admin"))), params(("id" = i64, Path, description = "The environment's id")), request_body = Environment, responses((status = 200, body = EnvironmentView)))]
async fn update_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    Body(env): Body<Environment>,
) -> Result<Json<EnvironmentView>, AppError> {
    Ok(Json(s.environments.update(&p, id, env).await?))
}

#[utoipa::path(delete, path = "/api/v1/environments/{id}", tag = "environments", summary = "Delete an unused environment", extensions(("x-switchyard-role" = json!("admin"))), params(("id" = i64, Path, description = "The environment's id")), responses((status = 204, description = "Deleted")))]
async fn delete_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    s.environments.delete(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A pool's record beside what its router and provider have now, with every difference.
#[utoipa::path(get, path = "/api/v1/environments/{id}/pools/{pool}", tag = "environments", summary = "A pool's record beside what its router and provider have now, with every difference", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The environment's id"), ("pool" = String, Path, description = "The pool's name")), responses((status = 200, body = app::domain::views::PoolOverview)))]
async fn pool_overview(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((id, pool)): ApiPath<(i64, String)>,
) -> Result<Json<app::domain::views::PoolOverview>, AppError> {
    Ok(Json(s.environments.pool_overview(&p, id, &pool).await?))
}

/// Rewrites the pool's record from its router and provider (operators; audited).
#[utoipa::path(post, path = "/api/v1/environments/{id}/pools/{pool}/accept-live", tag = "environments", summary = "Rewrite the pool's record from its router and provider (audited)", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The environment's id"), ("pool" = String, Path, description = "The pool's name")), responses((status = 200, body = app::domain::views::PoolOverview)))]
async fn accept_live(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((id, pool)): ApiPath<(i64, String)>,
) -> Result<Json<app::domain::views::PoolOverview>, AppError> {
    Ok(Json(s.environments.accept_live_state_of(&p, id, &pool).await?))
}

/// What the campaign did to its users, measured.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/impact", tag = "campaigns", summary = "The impact report: requests and failures by release, gate verdicts, rollback time, step durations", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = app::domain::views::ImpactReport)))]
async fn impact(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<app::domain::views::ImpactReport>, AppError> {
    Ok(Json(s.campaigns.impact(&p, id).await?))
}

/// A gate definition (the body; empty: the campaign's own first gate) replayed against the
/// campaign's stored samples at each of its gate steps.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/gate-replay", tag = "campaigns", summary = "Replay a gate (the body, or the campaign's own) against the campaign's stored samples", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id")), request_body(content = Option<app::domain::campaign::GateSpec>, description = "Optional: a gate; an empty body replays the campaign's own first gate"), responses((status = 200, body = app::domain::views::GateReplay)))]
async fn gate_replay(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> Result<Json<app::domain::views::GateReplay>, AppError> {
    let gate = optional_json(&body, "gate.", "gate")?;
    Ok(Json(s.campaigns.replay_gate(&p, id, gate).await?))
}

/// A new draft copied from the campaign, starting from what its pool runs now.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/clone", tag = "campaigns", summary = "A new draft copied from the campaign, from what its pool runs now", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 201, body = CampaignDetail)))]
async fn clone_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<CampaignDetail>), AppError> {
    let d = s.campaigns.create_from(&p, id, crate::services::campaigns::DraftFrom::Clone).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// A new draft that takes a succeeded campaign's pool back to the release it replaced.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/rollback-release", tag = "campaigns", summary = "A new draft taking a succeeded campaign's pool back to the release it replaced", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 201, body = CampaignDetail)))]
async fn rollback_release(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<CampaignDetail>), AppError> {
    let d = s
        .campaigns
        .create_from(&p, id, crate::services::campaigns::DraftFrom::RollbackRelease)
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

#[utoipa::path(post, path = "/api/v1/plan", tag = "campaigns", summary = "Validate a campaign spec and preview its plan", extensions(("x-switchyard-role" = json!("viewer"))), request_body = CampaignSpec, responses((status = 200, body = Plan)))]
async fn plan_spec(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(spec): Body<CampaignSpec>,
) -> Result<Json<Plan>, AppError> {
    Ok(Json(s.campaigns.preview(&p, &spec).await?))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct ListQuery {
    /// Only campaigns in this state (empty: any)
    #[param(
        pattern = "^(draft|scheduled|running|paused|awaiting_approval|succeeded|aborting|rollback_paused|rolled_back|failed)?$"
    )]
    status: String,
    /// Only campaigns in this environment (its name)
    environment: String,
    /// Text in the name, service or releases
    q: String,
    /// Page number, from 0
    #[param(maximum = 1_000_000)]
    page: u32,
    /// Campaigns per page (0: 50)
    #[param(maximum = 200)]
    per_page: u32,
}

#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", summary = "List campaigns, newest first, filtered and paged", extensions(("x-switchyard-role" = json!("viewer"))), params(ListQuery), responses((status = 200, body = CampaignPage)))]
async fn list_campaigns(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<CampaignPage>, AppError> {
    let opt = |v: String| (!v.trim().is_empty()).then(|| v.trim().to_string());
    if q.per_page > 200 {
        return Err(ApiError::field("per_page", "at most 200 campaigns per page").into());
    }
    if q.page > 1_000_000 {
        return Err(ApiError::field("page", "at most page 1000000").into());
    }
    let query = CampaignQuery {
        status: crate::services::campaigns::status_filter(Some(q.status))?,
        environment: opt(q.environment),
        search: opt(q.q),
    };
    Ok(Json(
        s.campaigns.list(&p, query, q.page, if q.per_page == 0 { 50 } else { q.per_page }).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", summary = "Create a draft campaign", extensions(("x-switchyard-role" = json!("operator"))), request_body = CampaignSpec, responses((status = 201, body = CampaignDetail)))]
async fn create_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(spec): Body<CampaignSpec>,
) -> Result<(StatusCode, Json<CampaignDetail>), AppError> {
    Ok((StatusCode::CREATED, Json(s.campaigns.create(&p, spec).await?)))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", summary = "One campaign with its plan, step runs and approvals", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = CampaignDetail)))]
async fn get_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignDetail>, AppError> {
    Ok(Json(s.campaigns.get(&p, id).await?))
}

#[utoipa::path(put, path = "/api/v1/campaigns/{id}", tag = "campaigns", summary = "Replace a draft's spec", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), request_body = CampaignSpec, responses((status = 200, body = CampaignDetail)))]
async fn update_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    Body(spec): Body<CampaignSpec>,
) -> Result<Json<CampaignDetail>, AppError> {
    Ok(Json(s.campaigns.update(&p, id, spec).await?))
}

#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", tag = "campaigns", summary = "Delete a draft", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 204, description = "Deleted")))]
async fn delete_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    s.campaigns.delete(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The campaign's plan: frozen once started, otherwise a fresh preview of the draft.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/plan", tag = "campaigns", summary = "The campaign's plan: frozen once started, else a preview", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = Plan)))]
async fn plan_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Plan>, AppError> {
    let detail = s.campaigns.get(&p, id).await?;
    match detail.plan {
        Some(plan) => Ok(Json(plan)),
        None => Ok(Json(s.campaigns.preview(&p, &detail.spec).await?)),
    }
}

/// `{"override_reason": "…"}`: an admin starting outside the window or inside a freeze.
#[derive(Deserialize, Default, ToSchema)]
struct StartBody {
    #[serde(default)]
    override_reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/campaigns/{id}/start", tag = "campaigns", summary = "Freeze the plan and start", extensions(("x-switchyard-role" = json!("operator"))), description = "An admin may send override_reason to start outside the window or in a freeze.", params(("id" = i64, Path, description = "The campaign's id")), request_body(content = Option<StartBody>, description = "Optional"), responses((status = 200, body = CampaignSummary)))]
async fn start(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    body: axum::body::Bytes,
) -> Result<Json<CampaignSummary>, AppError> {
    let body: StartBody = optional_json(&body, "", "override_reason")
        .map_err(|e| {
            AppError(ApiError::field(
                "override_reason",
                format!("send {{\"override_reason\": \"…\"}}: {}", e.0.message),
            ))
        })?
        .unwrap_or_default();
    Ok(Json(s.campaigns.start_with(&p, id, body.override_reason.as_deref()).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/schedule", tag = "campaigns", summary = "Announce a draft's window: publish it and queue its notices", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = CampaignSummary)))]
async fn schedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.schedule(&p, id).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/reschedule", tag = "campaigns", summary = "Move a scheduled campaign's window (SEQUENCE goes up, an updated notice goes out)", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), request_body = app::domain::campaign::MaintenanceWindow, responses((status = 200, body = CampaignSummary)))]
async fn reschedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    Body(window): Body<app::domain::campaign::MaintenanceWindow>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.reschedule(&p, id, window).await?))
}
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/notices", tag = "campaigns", summary = "The campaign's notice schedule and delivery log", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = Vec<crate::store::DeliveryRow>)))]
async fn notices(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<crate::store::DeliveryRow>>, AppError> {
    Ok(Json(s.campaigns.notices(&p, id).await?))
}
#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct ChartQuery {
    /// One target's health only (its name); empty: the whole pool
    target: String,
    /// The IANA zone for the time axis (e.g. Europe/Berlin); empty: UTC
    tz: String,
    /// Width in pixels (0: 760; drawn at least 320 and at most 1200 wide)
    #[param(maximum = 10_000)]
    width: u32,
}
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/chart", tag = "campaigns", summary = "Health chart from stored samples (SVG in JSON)", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id"), ChartQuery), responses((status = 200, body = app::domain::views::ChartView)))]
async fn chart(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ChartQuery>,
) -> Result<Json<app::domain::views::ChartView>, AppError> {
    let target = (!q.target.is_empty()).then_some(q.target);
    if q.width > 10_000 {
        return Err(ApiError::field("width", "at most 10000 pixels").into());
    }
    let width = if q.width == 0 { 760 } else { q.width };
    Ok(Json(s.charts.chart(&p, id, target, &q.tz, width).await?))
}
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/traffic", tag = "campaigns", summary = "The pool's members and weights as the router reports them now, with each one's release", extensions(("x-switchyard-role" = json!("viewer"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = app::domain::views::TrafficView)))]
async fn traffic(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<app::domain::views::TrafficView>, AppError> {
    Ok(Json(s.campaigns.traffic(&p, id).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns", summary = "Pause at the next pass boundary", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = CampaignSummary)))]
async fn pause(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.pause(&p, id).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/resume", tag = "campaigns", summary = "Resume (past a planned pause, or retry a failed step)", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = CampaignSummary)))]
async fn resume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.resume(&p, id).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/approve", tag = "campaigns", summary = "Approve the current approval step (never your own campaign)", extensions(("x-switchyard-role" = json!("approver"))), params(("id" = i64, Path, description = "The campaign's id")), responses((status = 200, body = CampaignSummary)))]
async fn approve(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.approve(&p, id).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/reject", tag = "campaigns", summary = "Reject: roll back", extensions(("x-switchyard-role" = json!("approver"))), params(("id" = i64, Path, description = "The campaign's id")), request_body(content = Option<ReasonBody>, description = "Optional: `{\"reason\": \"…\"}`; an empty body means none"), responses((status = 200, body = CampaignSummary)))]
async fn reject(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    Reason(r): Reason,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.reject(&p, id, &r).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/skip", tag = "campaigns", summary = "Cut the current bake, pause or drain wait short", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), request_body(content = Option<ReasonBody>, description = "Optional: `{\"reason\": \"…\"}`; an empty body means none"), responses((status = 200, body = CampaignSummary)))]
async fn skip(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    Reason(r): Reason,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.skip(&p, id, &r).await?))
}
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/abort", tag = "campaigns", summary = "Stop and roll back until all traffic is on the from-release", extensions(("x-switchyard-role" = json!("operator"))), params(("id" = i64, Path, description = "The campaign's id")), request_body(content = Option<ReasonBody>, description = "Optional: `{\"reason\": \"…\"}`; an empty body means none"), responses((status = 200, body = CampaignSummary)))]
async fn abort(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    Reason(r): Reason,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.abort(&p, id, &r).await?))
}

#[derive(Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
struct EventsQuery {
    /// Resume after this event id (for clients that cannot send `Last-Event-ID`).
    after: i64,
}

/// Server-Sent Events: every stored event of the campaign after `Last-Event-ID` (or `?after=`),
/// then new ones as they are stored. Ids are the events' database ids, so a reconnect after a
/// network drop or a server restart catches up without gaps.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/events", tag = "campaigns", summary = "The campaign's events as Server-Sent Events", extensions(("x-switchyard-role" = json!("viewer"))), description = "Resumable with Last-Event-ID (or ?after=). Each stored health-sample round also arrives as a named `sample` event (no id).", params(("id" = i64, Path, description = "The campaign's id"), EventsQuery, ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event id")), responses((status = 200, description = "An endless event stream", content_type = "text/event-stream", body = String)))]
async fn events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<EventsQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(q.after);
    let feed = s.campaigns.event_feed(&p, id, after, s.closing.clone()).await?;
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = match feed.next().await? {
            FeedItem::Event(ev) => {
                let data = serde_json::json!({
                    "id": ev.id, "ts": ev.ts, "kind": ev.kind,
                    "data": serde_json::from_str::<serde_json::Value>(&ev.data).unwrap_or_default(),
                });
                // Unnamed events reach every EventSource `onmessage`; the kind is in the data.
                Event::default().id(ev.id.to_string()).data(data.to_string())
            }
            // Not part of the event log, so without an id: a reconnecting chart simply redraws.
            FeedItem::Sample { sample, stored_ms } => Event::default()
                .event("sample")
                .data(serde_json::json!({ "sample": sample, "stored_ms": stored_ms }).to_string()),
        };
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
