//! The OpenAPI 3 document at `/api/v1/openapi.json`, generated from [`OPERATIONS`]: the one
//! table of REST operations. A test requests every row against the real router, so a route
//! missing from the table or the router fails the build.

use axum::Json;
use serde_json::{Value, json};

/// (method, path, summary, minimum role, request body schema, success status)
pub type Operation =
    (&'static str, &'static str, &'static str, &'static str, Option<&'static str>, u16);

pub const OPERATIONS: &[Operation] = &[
    ("get", "/api/v1/me", "The caller's name and role", "viewer", None, 200),
    ("get", "/api/v1/users", "List users", "admin", None, 200),
    ("post", "/api/v1/users", "Add a user", "admin", Some("NewUser"), 201),
    ("get", "/api/v1/tokens", "Your API tokens", "viewer", None, 200),
    (
        "post",
        "/api/v1/tokens",
        "Create an API token (the secret is returned once)",
        "viewer",
        Some("NewToken"),
        201,
    ),
    (
        "delete",
        "/api/v1/tokens/{id}",
        "Revoke one of your tokens (an admin: anyone's)",
        "viewer",
        None,
        204,
    ),
    ("get", "/api/v1/admin/tokens", "Every user's API tokens", "admin", None, 200),
    ("get", "/api/v1/settings/tokens", "How long new API tokens live", "viewer", None, 200),
    (
        "put",
        "/api/v1/settings/tokens",
        "Set the default (and longest) lifetime of new tokens; 0: no expiry",
        "admin",
        Some("TokenPolicy"),
        200,
    ),
    ("get", "/api/v1/audit", "Audit events, newest first, filtered and paged", "viewer", None, 200),
    (
        "get",
        "/api/v1/audit/export",
        "Export the filtered audit events as CSV or JSON Lines",
        "viewer",
        None,
        200,
    ),
    ("get", "/api/v1/audit/verify", "Verify the audit hash chain", "admin", None, 200),
    ("get", "/api/v1/environments", "List environments", "viewer", None, 200),
    (
        "get",
        "/api/v1/backends/check",
        "Connect to every environment's backends and report what each answers (changes nothing)",
        "operator",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/drift",
        "Router pools whose read-back differs from what Switchyard last set",
        "viewer",
        None,
        200,
    ),
    ("post", "/api/v1/environments", "Create an environment", "admin", Some("Environment"), 201),
    ("get", "/api/v1/environments/{id}", "One environment", "viewer", None, 200),
    (
        "put",
        "/api/v1/environments/{id}",
        "Replace an environment",
        "admin",
        Some("Environment"),
        200,
    ),
    ("delete", "/api/v1/environments/{id}", "Delete an unused environment", "admin", None, 204),
    (
        "get",
        "/api/v1/environments/{id}/pools/{pool}",
        "A pool's record beside what its router and provider have now, with every difference",
        "viewer",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/environments/{id}/pools/{pool}/accept-live",
        "Rewrite the pool's record from its router and provider (audited)",
        "operator",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/plan",
        "Validate a campaign spec and preview its plan",
        "viewer",
        Some("CampaignSpec"),
        200,
    ),
    (
        "get",
        "/api/v1/campaigns",
        "List campaigns (filter: status, environment, q; paged)",
        "viewer",
        None,
        200,
    ),
    ("post", "/api/v1/campaigns", "Create a draft campaign", "operator", Some("CampaignSpec"), 201),
    (
        "get",
        "/api/v1/campaigns/{id}",
        "One campaign with its plan, step runs and approvals",
        "viewer",
        None,
        200,
    ),
    (
        "put",
        "/api/v1/campaigns/{id}",
        "Replace a draft's spec",
        "operator",
        Some("CampaignSpec"),
        200,
    ),
    ("delete", "/api/v1/campaigns/{id}", "Delete a draft", "operator", None, 204),
    (
        "post",
        "/api/v1/campaigns/{id}/plan",
        "The campaign's plan: frozen once started, else a preview",
        "viewer",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/clone",
        "A new draft copied from the campaign, from what its pool runs now",
        "operator",
        None,
        201,
    ),
    (
        "get",
        "/api/v1/campaigns/{id}/impact",
        "The impact report: requests and failures by release, gate verdicts, rollback time, step durations",
        "viewer",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/gate-replay",
        "Replay a gate (the body, or the campaign's own) against the campaign's stored samples",
        "viewer",
        Some("GateSpec"),
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/rollback-release",
        "A new draft taking a succeeded campaign's pool back to the release it replaced",
        "operator",
        None,
        201,
    ),
    (
        "get",
        "/api/v1/campaigns/{id}/spec",
        "The campaign's spec as a file (?format=toml, yaml or json; default toml)",
        "viewer",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/start",
        "Freeze the plan and start (an admin may send override_reason to start outside the window or in a freeze)",
        "operator",
        Some("StartOverride"),
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/pause",
        "Pause at the next pass boundary",
        "operator",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/resume",
        "Resume (past a planned pause, or retry a failed step)",
        "operator",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/approve",
        "Approve the current approval step (never your own campaign)",
        "approver",
        None,
        200,
    ),
    ("post", "/api/v1/campaigns/{id}/reject", "Reject: roll back", "approver", Some("Reason"), 200),
    (
        "post",
        "/api/v1/campaigns/{id}/skip",
        "Cut the current bake, pause or drain wait short",
        "operator",
        Some("Reason"),
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/abort",
        "Stop and roll back until all traffic is on the from-release",
        "operator",
        Some("Reason"),
        200,
    ),
    (
        "get",
        "/api/v1/campaigns/{id}/events",
        "Server-Sent Events; resumable with Last-Event-ID. Each stored health-sample round also \
         arrives as a named `sample` event (no id)",
        "viewer",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/campaigns/{id}/traffic",
        "The pool's members and weights as the router reports them now, with each one's release",
        "viewer",
        None,
        200,
    ),
    (
        "get",
        "/api/v1/campaigns/{id}/chart",
        "Health chart from stored samples (SVG in JSON); ?target=NAME&tz=IANA&width=PX",
        "viewer",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/schedule",
        "Announce a draft's window: publish it and queue its notices",
        "operator",
        None,
        200,
    ),
    (
        "post",
        "/api/v1/campaigns/{id}/reschedule",
        "Move a scheduled campaign's window (SEQUENCE goes up, an updated notice goes out)",
        "operator",
        Some("MaintenanceWindow"),
        200,
    ),
    (
        "get",
        "/api/v1/campaigns/{id}/notices",
        "The campaign's notice schedule and delivery log",
        "viewer",
        None,
        200,
    ),
    ("get", "/api/v1/subscribers", "Subscribers to maintenance notices", "operator", None, 200),
    (
        "post",
        "/api/v1/providers/webhook/{backend}/complete",
        "A webhook provider's endpoint reports an accepted action's end",
        SIGNED,
        Some("WebhookCompletion"),
        204,
    ),
];

/// The "role" of operations that take no session or token but an HMAC signature.
pub const SIGNED: &str = "signed";

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, role, body, status) in OPERATIONS {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        let mut op = json!({
            "summary": summary,
            "description": if *role == SIGNED {
                "No session or token: signed with the backend's shared secret \
                 (`X-Switchyard-Timestamp`, `X-Switchyard-Signature`), as the webhook provider documents."
                    .to_string()
            } else {
                format!("Needs the {role} role or higher.")
            },
            "operationId": format!("{method}_{}", path.trim_start_matches("/api/v1/").replace(['/', '{', '}'], "_").trim_end_matches('_')),
            "responses": {
                status.to_string(): { "description": "success" },
                "401": { "$ref": "#/components/responses/Error" },
                "403": { "$ref": "#/components/responses/Error" },
                "422": { "$ref": "#/components/responses/Error" },
            },
        });
        if path.contains("{id}") {
            op["parameters"] = json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }]);
        }
        if path.contains("{pool}") {
            op["parameters"] = json!([
                { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } },
                { "name": "pool", "in": "path", "required": true, "schema": { "type": "string" } },
            ]);
        }
        if path.contains("{backend}") {
            op["parameters"] = json!([{ "name": "backend", "in": "path", "required": true, "schema": { "type": "string" } }]);
        }
        if *role == SIGNED {
            op["security"] = json!([]);
        }
        if let Some(schema) = body {
            op["requestBody"] = json!({
                "required": *schema != "Reason" && *schema != "StartOverride" && *schema != "GateSpec",
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } },
            });
        }
        entry[*method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Switchyard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Zero-downtime deployment campaigns. Authenticate with `Authorization: Bearer <token>` (create one with `switchyard token create`).",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "An error with a stable code, a human message and per-field messages",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string", "enum": ["unauthorized", "forbidden", "not_found", "conflict", "invalid", "too_many_requests", "unavailable", "internal"] },
                        "message": { "type": "string" },
                        "fields": { "type": "object", "additionalProperties": { "type": "string" } },
                    }, "required": ["code", "message"] } },
                },
                "StartOverride": { "type": "object", "properties": { "override_reason": { "type": "string" } } },
                "MaintenanceWindow": { "type": "object", "required": ["start", "end", "timezone"], "description": "start/end: an RFC 3339 instant or a wall-clock time (2026-12-01T08:00) in timezone; impact, components, message, start_only_inside" },
                "Reason": { "type": "object", "properties": { "reason": { "type": "string" } } },
                "NewUser": { "type": "object", "required": ["username", "role", "password"], "properties": {
                    "username": { "type": "string" }, "role": { "type": "string", "enum": ["viewer", "operator", "approver", "admin"] }, "password": { "type": "string", "minLength": 12 } } },
                "WebhookCompletion": { "type": "object", "required": ["idempotency_key", "status"], "properties": {
                    "idempotency_key": { "type": "string" }, "status": { "type": "string", "enum": ["done", "failed"] },
                    "instance": { "type": "object", "properties": { "address": { "type": "string" }, "release": { "type": "string" }, "health_url": { "type": "string" } } },
                    "message": { "type": "string" }, "retryable": { "type": "boolean" } } },
                "NewToken": { "type": "object", "required": ["name"], "properties": { "name": { "type": "string" }, "expires_in_days": { "type": "integer", "minimum": 1, "description": "omitted: the admin's default; never more than it" } } },
                "TokenPolicy": { "type": "object", "required": ["default_expiry_days"], "properties": { "default_expiry_days": { "type": "integer", "minimum": 0, "maximum": 3650, "description": "0: tokens never expire unless their creator says when" } } },
                "Environment": { "type": "object", "description": "Targets, pools and backends; see examples/environment.toml", "required": ["name", "targets", "pools", "backends"] },
                "GateSpec": { "type": "object", "description": "max_error_rate, max_p99_ms, min_probe_success, window_secs, min_samples, deadline_secs, consecutive_failures, optional compare" },
                "CampaignSpec": { "type": "object", "description": "See examples/*.toml for every strategy", "required": ["name", "service", "environment", "pool", "from_release", "to_release", "strategy", "window"] },
            },
        },
    })
}

pub async fn handler() -> Json<Value> {
    Json(document())
}
