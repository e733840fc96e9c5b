//! REST API for environments and campaigns, and the campaign event stream (SSE).

use std::convert::Infallible;
use std::time::Duration;

use app::api::ApiError;
use app::domain::auth::Principal;
use app::domain::campaign::CampaignSpec;
use app::domain::environment::Environment;
use app::domain::plan::Plan;
use app::domain::views::{CampaignDetail, CampaignPage, CampaignSummary, EnvironmentView};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::Stream;
use serde::Deserialize;

use super::error::AppError;
use crate::http::state::AppState;
use crate::services::campaigns::FeedItem;
use crate::store::CampaignQuery;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/environments", get(list_environments).post(create_environment))
        .route(
            "/api/v1/environments/{id}",
            get(get_environment).put(update_environment).delete(delete_environment),
        )
        .route("/api/v1/environments/{id}/pools/{pool}", get(pool_overview))
        .route("/api/v1/environments/{id}/pools/{pool}/accept-live", post(accept_live))
        .route("/api/v1/plan", post(plan_spec))
        .route("/api/v1/campaigns", get(list_campaigns).post(create_campaign))
        .route(
            "/api/v1/campaigns/{id}",
            get(get_campaign).put(update_campaign).delete(delete_campaign),
        )
        .route("/api/v1/campaigns/{id}/plan", post(plan_campaign))
        .route("/api/v1/campaigns/{id}/clone", post(clone_campaign))
        .route("/api/v1/campaigns/{id}/gate-replay", post(gate_replay))
        .route("/api/v1/campaigns/{id}/impact", get(impact))
        .route("/api/v1/campaigns/{id}/rollback-release", post(rollback_release))
        .route("/api/v1/campaigns/{id}/start", post(start))
        .route("/api/v1/campaigns/{id}/schedule", post(schedule))
        .route("/api/v1/campaigns/{id}/reschedule", post(reschedule))
        .route("/api/v1/campaigns/{id}/notices", get(notices))
        .route("/api/v1/campaigns/{id}/pause", post(pause))
        .route("/api/v1/campaigns/{id}/resume", post(resume))
        .route("/api/v1/campaigns/{id}/approve", post(approve))
        .route("/api/v1/campaigns/{id}/reject", post(reject))
        .route("/api/v1/campaigns/{id}/skip", post(skip))
        .route("/api/v1/campaigns/{id}/abort", post(abort))
        .route("/api/v1/campaigns/{id}/events", get(events))
        .route("/api/v1/campaigns/{id}/chart", get(chart))
        .route("/api/v1/campaigns/{id}/traffic", get(traffic))
}

/// A JSON body that failed to parse is a 422 naming what is wrong, not axum's plain-text 400.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = AppError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| {
            AppError(ApiError::new(
                app::api::ErrorCode::Invalid,
                "the request body could not be read",
            ))
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { "body".to_string() } else { path };
            AppError(ApiError::field(field, e.inner().to_string()))
        })
    }
}

async fn list_environments(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<EnvironmentView>>, AppError> {
    Ok(Json(s.environments.list(&p).await?))
}

async fn create_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(env): Body<Environment>,
) -> Result<(StatusCode, Json<EnvironmentView>), AppError> {
    Ok((StatusCode::CREATED, Json(s.environments.create(&p, env).await?)))
}

async fn get_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<EnvironmentView>, AppError> {
    Ok(Json(s.environments.get(&p, id).await?))
}

async fn update_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Body(env): Body<Environment>,
) -> Result<Json<EnvironmentView>, AppError> {
    Ok(Json(s.environments.update(&p, id, env).await?))
}

async fn delete_environment(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    s.environments.delete(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A pool's record beside what its router and provider have now, with every difference.
async fn pool_overview(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, pool)): Path<(i64, String)>,
) -> Result<Json<app::domain::views::PoolOverview>, AppError> {
    Ok(Json(s.environments.pool_overview(&p, id, &pool).await?))
}

/// Rewrites the pool's record from its router and provider (operators; audited).
async fn accept_live(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, pool)): Path<(i64, String)>,
) -> Result<Json<app::domain::views::PoolOverview>, AppError> {
    Ok(Json(s.environments.accept_live_state_of(&p, id, &pool).await?))
}

/// What the campaign did to its users, measured.
async fn impact(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<app::domain::views::ImpactReport>, AppError> {
    Ok(Json(s.campaigns.impact(&p, id).await?))
}

/// A gate definition (the body; empty: the campaign's own first gate) replayed against the
/// campaign's stored samples at each of its gate steps.
async fn gate_replay(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<app::domain::views::GateReplay>, AppError> {
    let gate = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let de = &mut serde_json::Deserializer::from_slice(&body);
        Some(serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            AppError(ApiError::field(
                if path == "." { "gate".to_string() } else { format!("gate.{path}") },
                e.inner().to_string(),
            ))
        })?)
    };
    Ok(Json(s.campaigns.replay_gate(&p, id, gate).await?))
}

/// A new draft copied from the campaign, starting from what its pool runs now.
async fn clone_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<CampaignDetail>), AppError> {
    let d = s.campaigns.create_from(&p, id, crate::services::campaigns::DraftFrom::Clone).await?;
    Ok((StatusCode::CREATED, Json(d)))
}

/// A new draft that takes a succeeded campaign's pool back to the release it replaced.
async fn rollback_release(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<CampaignDetail>), AppError> {
    let d = s
        .campaigns
        .create_from(&p, id, crate::services::campaigns::DraftFrom::RollbackRelease)
        .await?;
    Ok((StatusCode::CREATED, Json(d)))
}

async fn plan_spec(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(spec): Body<CampaignSpec>,
) -> Result<Json<Plan>, AppError> {
    Ok(Json(s.campaigns.preview(&p, &spec).await?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    status: String,
    environment: String,
    q: String,
    page: u32,
    per_page: u32,
}

async fn list_campaigns(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListQuery>,
) -> Result<Json<CampaignPage>, AppError> {
    let opt = |v: String| (!v.trim().is_empty()).then(|| v.trim().to_string());
    let query = CampaignQuery {
        status: crate::services::campaigns::status_filter(Some(q.status))?,
        environment: opt(q.environment),
        search: opt(q.q),
    };
    Ok(Json(
        s.campaigns.list(&p, query, q.page, if q.per_page == 0 { 50 } else { q.per_page }).await?,
    ))
}

async fn create_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Body(spec): Body<CampaignSpec>,
) -> Result<(StatusCode, Json<CampaignDetail>), AppError> {
    Ok((StatusCode::CREATED, Json(s.campaigns.create(&p, spec).await?)))
}

async fn get_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<CampaignDetail>, AppError> {
    Ok(Json(s.campaigns.get(&p, id).await?))
}

async fn update_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Body(spec): Body<CampaignSpec>,
) -> Result<Json<CampaignDetail>, AppError> {
    Ok(Json(s.campaigns.update(&p, id, spec).await?))
}

async fn delete_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    s.campaigns.delete(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The campaign's plan: frozen once started, otherwise a fresh preview of the draft.
async fn plan_campaign(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Plan>, AppError> {
    let detail = s.campaigns.get(&p, id).await?;
    match detail.plan {
        Some(plan) => Ok(Json(plan)),
        None => Ok(Json(s.campaigns.preview(&p, &detail.spec).await?)),
    }
}

/// `{"reason": "…"}`; an empty body means no reason (the service says if one is required).
pub struct Reason(String);

impl<S: Send + Sync> axum::extract::FromRequest<S> for Reason {
    type Rejection = AppError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        #[derive(Deserialize)]
        struct ReasonBody {
            #[serde(default)]
            reason: String,
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| {
            AppError(ApiError::new(
                app::api::ErrorCode::Invalid,
                "the request body could not be read",
            ))
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Reason(String::new()));
        }
        serde_json::from_slice::<ReasonBody>(&bytes).map(|b| Reason(b.reason)).map_err(|e| {
            AppError(ApiError::field("reason", format!("send {{\"reason\": \"…\"}}: {e}")))
        })
    }
}

/// `{"override_reason": "…"}`: an admin starting outside the window or inside a freeze.
#[derive(Deserialize, Default)]
struct StartBody {
    #[serde(default)]
    override_reason: Option<String>,
}

async fn start(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Json<CampaignSummary>, AppError> {
    let body: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            AppError(ApiError::field(
                "override_reason",
                format!("send {{\"override_reason\": \"…\"}}: {e}"),
            ))
        })?
    };
    Ok(Json(s.campaigns.start_with(&p, id, body.override_reason.as_deref()).await?))
}
async fn schedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.schedule(&p, id).await?))
}
async fn reschedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Body(window): Body<app::domain::campaign::MaintenanceWindow>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.reschedule(&p, id, window).await?))
}
async fn notices(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<crate::store::DeliveryRow>>, AppError> {
    Ok(Json(s.campaigns.notices(&p, id).await?))
}
#[derive(Deserialize, Default)]
#[serde(default)]
struct ChartQuery {
    target: String,
    tz: String,
    width: u32,
}
async fn chart(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<ChartQuery>,
) -> Result<Json<app::domain::views::ChartView>, AppError> {
    let target = (!q.target.is_empty()).then_some(q.target);
    let width = if q.width == 0 { 760 } else { q.width };
    Ok(Json(s.charts.chart(&p, id, target, &q.tz, width).await?))
}
async fn traffic(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<app::domain::views::TrafficView>, AppError> {
    Ok(Json(s.campaigns.traffic(&p, id).await?))
}
async fn pause(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.pause(&p, id).await?))
}
async fn resume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.resume(&p, id).await?))
}
async fn approve(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.approve(&p, id).await?))
}
async fn reject(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Reason(r): Reason,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.reject(&p, id, &r).await?))
}
async fn skip(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Reason(r): Reason,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.skip(&p, id, &r).await?))
}
async fn abort(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Reason(r): Reason,
) -> Result<Json<CampaignSummary>, AppError> {
    Ok(Json(s.campaigns.abort(&p, id, &r).await?))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EventsQuery {
    /// Resume after this event id (for clients that cannot send `Last-Event-ID`).
    after: i64,
}

/// Server-Sent Events: every stored event of the campaign after `Last-Event-ID` (or `?after=`),
/// then new ones as they are stored. Ids are the events' database ids, so a reconnect after a
/// network drop or a server restart catches up without gaps.
async fn events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    Query(q): Query<EventsQuery>,
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
