//! The public side of communications, reachable without signing in: the status page, its Atom
//! and iCalendar feeds, and sign-up with double opt-in (subscribe → confirm link by e-mail →
//! confirmed; unsubscribe from the link in every e-mail). Plain server-rendered HTML: it must
//! work for anyone, with no script.

use app::api::ApiError;
use app::domain::auth::Principal;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use serde::Deserialize;

use std::sync::Arc;

use super::error::AppError;
use crate::auth::throttle::Throttle;
use crate::http::guard::ClientIp;
use crate::http::state::AppState;
use crate::notify::render::{self, CalendarEvent, FeedEntry, Notice, esc};
use crate::store::{StoreError, SubscriberRow, WindowRow};

/// Sign-ups per client IP per minute: enough for a person correcting a typo, not for a script
/// filling the outbox with confirmation e-mails to strangers.
pub const SUBSCRIBE_PER_MINUTE: usize = 5;

/// The public status page, its feeds and the sign-up: anyone may reach these.
pub fn public_router() -> Router<AppState> {
    let throttle =
        Arc::new(Throttle::new(SUBSCRIBE_PER_MINUTE, std::time::Duration::from_secs(60)));
    Router::new()
        .route("/status", get(page))
        .route("/status/feed.atom", get(atom))
        .route("/status/calendar.ics", get(ics))
        .route("/status/subscribe", post(subscribe).layer(Extension(throttle)))
        .route("/status/confirm", get(confirm))
        .route("/status/unsubscribe", get(unsubscribe_page).post(unsubscribe))
}

/// The subscriber list, for operators (behind the sign-in gate).
pub fn subscribers_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(list_subscribers))
}

fn internal(e: StoreError) -> AppError {
    AppError(e.into())
}

fn impact_label(impact: &str) -> &'static str {
    match impact {
        "degraded" => "degraded performance",
        "partial_outage" => "partial outage",
        "full_outage" => "full outage",
        _ => "no impact expected",
    }
}

fn local_range(w: &WindowRow) -> String {
    let tz: chrono_tz::Tz = w.timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let (s, e) = (w.start_at.with_timezone(&tz), w.end_at.with_timezone(&tz));
    format!(
        "{} – {} ({})",
        s.format("%a %-d %b %Y %H:%M"),
        e.format("%a %-d %b %H:%M %Z"),
        w.timezone
    )
}

fn components(w: &WindowRow) -> Vec<String> {
    serde_json::from_str(&w.components).unwrap_or_default()
}

fn shell(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width, initial-scale=1\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/pkg/switchyard.css\"><link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\">\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"Maintenance feed\" href=\"/status/feed.atom\">\
         </head><body><main class=\"container\" id=\"main\">{body}</main></body></html>",
        esc(title)
    ))
}

fn window_table(rows: &[&WindowRow], caption: &str) -> String {
    if rows.is_empty() {
        return format!(
            "<section class=\"card\"><h2>{}</h2><p class=\"empty\">None.</p></section>",
            esc(caption)
        );
    }
    let mut out = format!(
        "<section class=\"card\"><h2>{}</h2><div class=\"table-wrap\"><table class=\"data\"><thead><tr><th scope=\"col\">Maintenance</th>\
         <th scope=\"col\">When</th><th scope=\"col\">Components</th><th scope=\"col\">Impact</th><th scope=\"col\">Status</th></tr></thead><tbody>",
        esc(caption)
    );
    for w in rows {
        let message = if w.message.is_empty() {
            String::new()
        } else {
            format!("<br><span class=\"muted\">{}</span>", esc(&w.message))
        };
        out.push_str(&format!(
            "<tr><td>{}{message}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"badge badge-{}\">{}</span></td></tr>",
            esc(&w.title),
            esc(&local_range(w)),
            esc(&components(w).join(", ")),
            impact_label(&w.impact),
            match w.status.as_str() {
                "in_progress" => "running",
                "completed" => "succeeded",
                "rolled_back" => "rolled",
                "cancelled" => "failed",
                _ => "draft",
            },
            esc(&w.status.replace('_', " "))
        ));
    }
    out.push_str("</tbody></table></div></section>");
    out
}

async fn page(State(s): State<AppState>) -> Result<Html<String>, AppError> {
    let windows = s.status.windows(200).await.map_err(internal)?;
    let now = Utc::now();
    let current: Vec<&WindowRow> = windows.iter().filter(|w| w.status == "in_progress").collect();
    let mut upcoming: Vec<&WindowRow> =
        windows.iter().filter(|w| w.status == "scheduled" && w.end_at > now).collect();
    upcoming.reverse();
    let history: Vec<&WindowRow> = windows
        .iter()
        .filter(|w| matches!(w.status.as_str(), "completed" | "rolled_back" | "cancelled"))
        .take(20)
        .collect();
    let mut all: Vec<String> = windows.iter().flat_map(components).collect();
    all.sort();
    all.dedup();
    let per_component = if all.is_empty() {
        String::new()
    } else {
        let items: String = all
            .iter()
            .map(|c| {
                let state = if current.iter().any(|w| components(w).contains(c)) {
                    "under maintenance"
                } else if upcoming.iter().any(|w| components(w).contains(c)) {
                    "maintenance scheduled"
                } else {
                    "operational"
                };
                format!("<li><strong>{}</strong>: {state}</li>", esc(c))
            })
            .collect();
        format!("<section class=\"card\"><h2>Components</h2><ul>{items}</ul></section>")
    };
    let body = format!(
        "<h1>Status</h1><p>Planned maintenance and its history. Follow it in a feed reader \
         (<a href=\"/status/feed.atom\">Atom</a>) or your calendar (<a href=\"/status/calendar.ics\">iCalendar</a>).</p>\
         {per_component}{}{}{}\
         <section class=\"card\"><h2>Get notices by e-mail</h2>\
         <form method=\"post\" action=\"/status/subscribe\" class=\"stack\">\
         <label for=\"email\">E-mail address</label><input id=\"email\" name=\"email\" type=\"email\" required autocomplete=\"email\">\
         <label for=\"components\">Components (comma-separated; empty for all)</label><input id=\"components\" name=\"components\" type=\"text\">\
         <label for=\"webhook\">Webhook URL (optional)</label><input id=\"webhook\" name=\"webhook_url\" type=\"url\">\
         <label for=\"webhook-format\">Webhook body</label><select id=\"webhook-format\" name=\"webhook_format\">\
         <option value=\"json\">JSON notice (signed)</option><option value=\"slack\">Slack-compatible (signed)</option></select>\
         <button class=\"btn btn-primary\" type=\"submit\">Subscribe</button></form>\
         <p class=\"muted\">We send a confirmation link first; nothing else until you confirm.</p></section>",
        window_table(&current, "Under maintenance now"),
        window_table(&upcoming, "Upcoming maintenance"),
        window_table(&history, "Recent history"),
    );
    Ok(shell("Status", &body))
}

async fn atom(State(s): State<AppState>) -> Result<Response, AppError> {
    let base = s.notifier.public_url().to_string();
    let entries = s.status.feed(50).await.map_err(internal)?;
    let entries: Vec<FeedEntry> = entries
        .iter()
        .map(|e| {
            let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
            let n = Notice { kind: &e.kind, sequence: e.sequence, payload: &payload };
            let message = payload.get("message").and_then(|m| m.as_str()).unwrap_or_default();
            FeedEntry {
                id: format!("{base}/status#notice-{}", e.id),
                title: n.headline(),
                updated: e.due_at,
                summary: format!("{} — {}. {message}", n.when(), n.impact()).trim().to_string(),
                link: format!("{base}/status"),
            }
        })
        .collect();
    let body = render::atom(
        &format!("{base}/status/feed.atom"),
        &format!("{base}/status/feed.atom"),
        &format!("{base}/status"),
        &entries,
    );
    Ok(([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], body).into_response())
}

async fn ics(State(s): State<AppState>) -> Result<Response, AppError> {
    let base = s.notifier.public_url().to_string();
    let windows = s.status.windows(500).await.map_err(internal)?;
    let events: Vec<CalendarEvent> = windows
        .iter()
        .map(|w| CalendarEvent {
            uid: w.uid.clone(),
            sequence: w.sequence,
            start: w.start_at,
            end: w.end_at,
            summary: format!("Maintenance: {}", w.title),
            description: format!("{} — {}", impact_label(&w.impact), w.message),
            cancelled: w.status == "cancelled",
            stamp: w.updated_at,
            url: format!("{base}/status"),
        })
        .collect();
    let body = render::calendar("PUBLISH", &events);
    Ok(([(header::CONTENT_TYPE, "text/calendar; charset=utf-8")], body).into_response())
}

#[derive(Deserialize)]
struct SubscribeForm {
    email: String,
    #[serde(default)]
    components: String,
    #[serde(default)]
    webhook_url: String,
    /// `json` (default) or `slack`.
    #[serde(default)]
    webhook_format: String,
}

/// Addresses are checked by the same parser that later sends to them.
fn valid_email(email: &str) -> Result<String, String> {
    let e = email.trim();
    if e.len() > 254 || !e.contains('@') || e.contains(['<', '>', ' ', ',']) {
        return Err(format!("{e:?} is not an e-mail address; write it like name@example.com"));
    }
    e.parse::<lettre::Address>()
        .map(|a| a.to_string())
        .map_err(|_| format!("{e:?} is not an e-mail address; write it like name@example.com"))
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

async fn subscribe(
    State(s): State<AppState>,
    Extension(throttle): Extension<Arc<Throttle>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    axum::Form(form): axum::Form<SubscribeForm>,
) -> Response {
    let json = wants_json(&headers);
    if let Err(wait) = throttle.check(&ip) {
        let secs = wait.as_secs().max(1);
        let message = format!(
            "too many sign-ups from your address: at most {SUBSCRIBE_PER_MINUTE} a minute; try again in {secs} s"
        );
        tracing::warn!(ip = %ip, "public sign-up throttled");
        let retry = [(header::RETRY_AFTER, secs.to_string())];
        let err = ApiError::new(app::api::ErrorCode::TooManyRequests, message.clone());
        return if json {
            (retry, AppError(err)).into_response()
        } else {
            (StatusCode::TOO_MANY_REQUESTS, retry, shell("Subscription", &format!("<h1>Not subscribed</h1><p class=\"notice notice-error\" role=\"alert\">{}</p><p><a href=\"/status\">Back to the status page</a></p>", esc(&message)))).into_response()
        };
    }
    let fail = |status: StatusCode, field: &str, message: String| -> Response {
        if json {
            AppError(ApiError::field(field, message)).into_response()
        } else {
            (status, shell("Subscription", &format!("<h1>Not subscribed</h1><p class=\"notice notice-error\" role=\"alert\">{}</p><p><a href=\"/status\">Back to the status page</a></p>", esc(&message)))).into_response()
        }
    };
    let email = match valid_email(&form.email) {
        Ok(e) => e,
        Err(m) => return fail(StatusCode::UNPROCESSABLE_ENTITY, "email", m),
    };
    let webhook = form.webhook_url.trim();
    // Checked again, with the addresses it resolves to, every time a notice is sent.
    let webhook = if webhook.is_empty() {
        None
    } else if webhook.len() > 2000 {
        return fail(StatusCode::UNPROCESSABLE_ENTITY, "webhook_url", "the URL is too long".into());
    } else {
        match crate::outbound::check_webhook_url(webhook, &s.config.notify.webhooks) {
            Ok(_) => Some(webhook),
            Err(why) => return fail(StatusCode::UNPROCESSABLE_ENTITY, "webhook_url", why),
        }
    };
    let format = match form.webhook_format.trim() {
        "" | "json" => "json",
        "slack" => "slack",
        other => {
            return fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                "webhook_format",
                format!("{other:?} is not a webhook format; use json or slack"),
            );
        }
    };
    let components: Vec<String> = form
        .components
        .split(',')
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c.len() <= 64)
        .collect();
    match s.status.subscribe(&email, webhook, format, &components).await {
        Ok(_) => {
            if json {
                (StatusCode::ACCEPTED, Json(serde_json::json!({ "status": "confirmation_sent" })))
                    .into_response()
            } else {
                (StatusCode::ACCEPTED, shell("Check your inbox", "<h1>Check your inbox</h1><p class=\"notice notice-ok\" role=\"status\">We sent a confirmation link. Nothing else is sent until you follow it.</p>")).into_response()
            }
        }
        Err(StoreError::Conflict(m)) => fail(StatusCode::CONFLICT, "email", m),
        Err(e) => AppError(e.into()).into_response(),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn confirm(
    State(s): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    let Some(sub) = s.status.confirm(q.token.trim()).await.map_err(internal)? else {
        return Ok((StatusCode::NOT_FOUND, shell("Subscription", "<h1>Link not valid</h1><p>This confirmation link is unknown. Subscribe again from the <a href=\"/status\">status page</a>.</p>")).into_response());
    };
    let secret = match (&sub.webhook_url, &sub.webhook_secret) {
        (Some(url), Some(secret)) => format!(
            "<p>Webhook notices go to {} signed with HMAC-SHA256 in <code>X-Switchyard-Signature</code> over \
             <code>timestamp.body</code>. Your signing secret: <code class=\"secret\">{}</code></p>",
            esc(url),
            esc(secret)
        ),
        _ => String::new(),
    };
    Ok(shell("Subscribed", &format!(
        "<h1>Subscribed</h1><p class=\"notice notice-ok\" role=\"status\">{} will get maintenance notices.</p>{secret}\
         <p><a href=\"/status/unsubscribe?token={}\">Unsubscribe</a> · <a href=\"/status\">Status page</a></p>",
        esc(&sub.email),
        esc(&sub.token)
    )).into_response())
}

async fn unsubscribe_page(
    State(s): State<AppState>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, AppError> {
    let Some(sub) = s.status.subscriber(q.token.trim()).await.map_err(internal)? else {
        return Ok((
            StatusCode::NOT_FOUND,
            shell("Unsubscribe", "<h1>Link not valid</h1><p>This link is unknown.</p>"),
        )
            .into_response());
    };
    // A form, not a GET side effect: mail scanners follow links.
    Ok(shell("Unsubscribe", &format!(
        "<h1>Unsubscribe</h1><p>Stop all maintenance notices to {}?</p><form method=\"post\" action=\"/status/unsubscribe\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\"><button class=\"btn btn-danger\" type=\"submit\">Unsubscribe</button></form>",
        esc(&sub.email),
        esc(&sub.token)
    )).into_response())
}

async fn unsubscribe(
    State(s): State<AppState>,
    axum::Form(q): axum::Form<TokenQuery>,
) -> Result<Response, AppError> {
    match s.status.unsubscribe(q.token.trim()).await.map_err(internal)? {
        Some(sub) => Ok(shell("Unsubscribed", &format!("<h1>Unsubscribed</h1><p class=\"notice notice-ok\" role=\"status\">{} will get no more notices.</p>", esc(&sub.email))).into_response()),
        None => Ok((StatusCode::NOT_FOUND, shell("Unsubscribe", "<h1>Link not valid</h1><p>This link is unknown.</p>")).into_response()),
    }
}

#[utoipa::path(get, path = "/api/v1/subscribers", tag = "comms", summary = "Subscribers to maintenance notices", extensions(("x-switchyard-role" = json!("operator"))), responses((status = 200, body = Vec<SubscriberRow>)))]
async fn list_subscribers(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<SubscriberRow>>, AppError> {
    Ok(Json(s.status.subscribers(&p).await?))
}
