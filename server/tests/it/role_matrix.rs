//! The role matrix: every route the router serves — REST, server functions, pages and the
//! public endpoints, listed from the router itself — called as anonymous, viewer, operator,
//! approver and admin, and compared with [`TABLE`], the one table of who may do what. A route
//! missing from the table (or a row for a route that no longer exists) fails the test.
//!
//! Calls that would change something use ids that do not exist (999999), so an allowed caller
//! gets a 404 or a 422 — past the role check — and the matrix has no side effects to order.

use std::collections::BTreeMap;

use app::domain::auth::Role;
use leptos::server_fn::ServerFn;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, location, spawn_app_with};

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Anyone, signed in or not: an answer that is neither 401/403 nor a server error.
    Public,
    /// Anonymous: 401; below the role: 403; the role and above: neither (nor a 5xx).
    Min(Role),
    /// A page: anonymous is sent to sign in; below the role 403; the role and above see it.
    Page(Role),
    /// No session or token counts: a signature (absent here) is the only way in, so 401.
    Signed,
    /// Sign-out: a redirect for everyone (to the sign-in page).
    SignOut,
}

/// How a row's request is made.
#[derive(Debug, Clone)]
enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

struct Row {
    method: &'static str,
    path: String,
    expect: Expect,
    body: Body,
}

const MISSING: &str = "999999";

fn spec() -> Value {
    json!({
        "name": "matrix-draft", "service": "web", "environment": "nowhere", "pool": "web",
        "from_release": "v1", "to_release": "v2",
        "window": { "start": "2030-01-01T07:00:00Z", "end": "2030-01-01T09:00:00Z", "timezone": "UTC" },
        "strategy": { "kind": "canary", "steps": [{ "weight": "100", "bake_secs": 1 }] },
    })
}

fn environment() -> Value {
    json!({
        "name": "matrix-env", "targets": [], "pools": [],
        "backends": [{ "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": {} }],
    })
}

fn form(pairs: &[(&'static str, &str)]) -> Body {
    Body::Form(pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect())
}

/// The one table: (method, path, who, the request).
fn table() -> Vec<Row> {
    use Expect::*;
    use Role::*;
    let row =
        |method, path: &str, expect, body| Row { method, path: path.to_string(), expect, body };
    let reason = || Body::Json(json!({ "reason": "matrix" }));
    let none = || Body::None;
    let mut rows = vec![
        // Public and operational endpoints.
        row("GET", "/healthz", Public, none()),
        row("GET", "/readyz", Public, none()),
        row("GET", "/metrics", Public, none()),
        row(
            "POST",
            "/auth/login",
            Public,
            form(&[("username", "nobody"), ("password", "wrong wrong wrong")]),
        ),
        row("POST", "/auth/logout", SignOut, none()),
        row("GET", "/status", Public, none()),
        row("GET", "/status/feed.atom", Public, none()),
        row("GET", "/status/calendar.ics", Public, none()),
        row("POST", "/status/subscribe", Public, form(&[("email", "not-an-address")])),
        row("GET", "/status/confirm", Public, none()),
        row("GET", "/status/unsubscribe", Public, none()),
        row("POST", "/status/unsubscribe", Public, form(&[("token", "nope")])),
        row("POST", "/api/v1/providers/webhook/{backend}/complete", Signed, Body::Json(json!({}))),
        // REST.
        row("GET", "/api/v1/openapi.json", Min(Viewer), none()),
        row("GET", "/api/v1/me", Min(Viewer), none()),
        row("GET", "/api/v1/users", Min(Admin), none()),
        row(
            "POST",
            "/api/v1/users",
            Min(Admin),
            Body::Json(
                json!({ "username": "Bad Name!", "role": "viewer", "password": "long enough password" }),
            ),
        ),
        row("GET", "/api/v1/tokens", Min(Viewer), none()),
        row("POST", "/api/v1/tokens", Min(Viewer), Body::Json(json!({ "name": "" }))),
        row("DELETE", "/api/v1/tokens/{id}", Min(Viewer), none()),
        row("GET", "/api/v1/admin/tokens", Min(Admin), none()),
        row("GET", "/api/v1/settings/tokens", Min(Viewer), none()),
        row(
            "PUT",
            "/api/v1/settings/tokens",
            Min(Admin),
            Body::Json(json!({ "default_expiry_days": 99999 })),
        ),
        row("GET", "/api/v1/audit", Min(Viewer), none()),
        row("GET", "/api/v1/audit/export", Min(Viewer), none()),
        row("GET", "/api/v1/audit/verify", Min(Admin), none()),
        row("GET", "/api/v1/backends/check", Min(Operator), none()),
        row("GET", "/api/v1/drift", Min(Viewer), none()),
        row("GET", "/api/v1/environments", Min(Viewer), none()),
        row(
            "POST",
            "/api/v1/environments",
            Min(Admin),
            Body::Json(
                json!({ "name": "matrix-env", "targets": [], "pools": [], "backends": [{ "name": "x", "kind": "router", "driver": "traefik" }] }),
            ),
        ),
        row("GET", "/api/v1/environments/{id}", Min(Viewer), none()),
        row("PUT", "/api/v1/environments/{id}", Min(Admin), Body::Json(environment())),
        row("DELETE", "/api/v1/environments/{id}", Min(Admin), none()),
        row("GET", "/api/v1/environments/{id}/pools/{pool}", Min(Viewer), none()),
        row("POST", "/api/v1/environments/{id}/pools/{pool}/accept-live", Min(Operator), none()),
        row("POST", "/api/v1/plan", Min(Viewer), Body::Json(spec())),
        row("GET", "/api/v1/campaigns", Min(Viewer), none()),
        row("POST", "/api/v1/campaigns", Min(Operator), Body::Json(spec())),
        row("GET", "/api/v1/campaigns/{id}", Min(Viewer), none()),
        row("PUT", "/api/v1/campaigns/{id}", Min(Operator), Body::Json(spec())),
        row("DELETE", "/api/v1/campaigns/{id}", Min(Operator), none()),
        row("POST", "/api/v1/campaigns/{id}/plan", Min(Viewer), none()),
        row("GET", "/api/v1/campaigns/{id}/spec", Min(Viewer), none()),
        row("POST", "/api/v1/campaigns/{id}/clone", Min(Operator), none()),
        row("POST", "/api/v1/campaigns/{id}/rollback-release", Min(Operator), none()),
        row("POST", "/api/v1/campaigns/{id}/gate-replay", Min(Viewer), none()),
        row("GET", "/api/v1/campaigns/{id}/impact", Min(Viewer), none()),
        row("POST", "/api/v1/campaigns/{id}/start", Min(Operator), none()),
        row("POST", "/api/v1/campaigns/{id}/schedule", Min(Operator), none()),
        row(
            "POST",
            "/api/v1/campaigns/{id}/reschedule",
            Min(Operator),
            Body::Json(spec()["window"].clone()),
        ),
        row("GET", "/api/v1/campaigns/{id}/notices", Min(Viewer), none()),
        row("POST", "/api/v1/campaigns/{id}/pause", Min(Operator), none()),
        row("POST", "/api/v1/campaigns/{id}/resume", Min(Operator), none()),
        row("POST", "/api/v1/campaigns/{id}/approve", Min(Approver), none()),
        row("POST", "/api/v1/campaigns/{id}/reject", Min(Approver), reason()),
        row("POST", "/api/v1/campaigns/{id}/skip", Min(Operator), reason()),
        row("POST", "/api/v1/campaigns/{id}/abort", Min(Operator), reason()),
        row("GET", "/api/v1/campaigns/{id}/events", Min(Viewer), none()),
        row("GET", "/api/v1/campaigns/{id}/chart", Min(Viewer), none()),
        row("GET", "/api/v1/campaigns/{id}/traffic", Min(Viewer), none()),
        row("GET", "/api/v1/subscribers", Min(Operator), none()),
        // Pages.
        row("GET", "/login", Public, none()),
        row("GET", "/", Page(Viewer), none()),
        row("GET", "/audit", Page(Viewer), none()),
        row("GET", "/campaigns", Page(Viewer), none()),
        row("GET", "/campaigns/new", Page(Viewer), none()),
        row("GET", "/campaigns/{id}", Page(Viewer), none()),
        row("GET", "/campaigns/{id}/edit", Page(Operator), none()),
        row("GET", "/environments", Page(Viewer), none()),
        row("GET", "/account", Page(Viewer), none()),
        row("GET", "/admin/users", Page(Admin), none()),
    ];
    // Server functions (POST, form-encoded unless they take JSON).
    use app::api::{
        accounts as a, audit as au, campaigns as c, comms as co, editor as e, environments as en,
    };
    let f = |path: &'static str, expect, body| Row {
        method: "POST",
        path: path.to_string(),
        expect,
        body,
    };
    rows.extend([
        f(a::CurrentUser::PATH, Min(Viewer), none()),
        f(a::ListUsers::PATH, Min(Admin), none()),
        f(
            a::AddUser::PATH,
            Min(Admin),
            form(&[
                ("username", "Bad Name!"),
                ("role", "viewer"),
                ("password", "long enough password"),
            ]),
        ),
        f(a::SetUserRole::PATH, Min(Admin), form(&[("user_id", MISSING), ("role", "viewer")])),
        f(
            a::SetUserDisabled::PATH,
            Min(Admin),
            form(&[("user_id", MISSING), ("disabled", "true")]),
        ),
        f(a::ResetUserPassword::PATH, Min(Admin), form(&[("user_id", MISSING)])),
        f(
            a::ChangePassword::PATH,
            Min(Viewer),
            form(&[
                ("current", "not it at all"),
                ("new", "a new long password"),
                ("confirm", "a new long password"),
            ]),
        ),
        f(a::ListTokens::PATH, Min(Viewer), none()),
        f(a::CreateToken::PATH, Min(Viewer), form(&[("name", "")])),
        f(a::RevokeToken::PATH, Min(Viewer), form(&[("token_id", MISSING)])),
        f(a::ListAllTokens::PATH, Min(Admin), none()),
        f(a::GetTokenPolicy::PATH, Min(Viewer), none()),
        f(a::SetTokenPolicy::PATH, Min(Admin), form(&[("default_expiry_days", "99999")])),
        f(au::SearchAudit::PATH, Min(Viewer), form(&[("filter[page]", "1")])),
        f(
            c::ListCampaigns::PATH,
            Min(Viewer),
            form(&[("status", ""), ("search", ""), ("page", "0")]),
        ),
        f(c::GetCampaign::PATH, Min(Viewer), form(&[("id", MISSING)])),
        f(c::CampaignTraffic::PATH, Min(Viewer), form(&[("id", MISSING)])),
        f(c::CampaignCommand::PATH, Min(Operator), form(&[("id", MISSING), ("command", "pause")])),
        f(c::CampaignChart::PATH, Min(Viewer), form(&[("id", MISSING)])),
        f(c::CampaignImpact::PATH, Min(Viewer), form(&[("id", MISSING)])),
        f(co::CampaignComms::PATH, Min(Viewer), form(&[("id", MISSING)])),
        f(e::EditorEnvironments::PATH, Min(Viewer), none()),
        f(e::CreateDraft::PATH, Min(Operator), Body::Json(json!({ "spec": spec() }))),
        f(e::SaveDraft::PATH, Min(Operator), Body::Json(json!({ "id": 0, "spec": spec() }))),
        f(
            e::EditorStart::PATH,
            Min(Operator),
            form(&[("draft", MISSING), ("from", "0"), ("mode", "")]),
        ),
        f(
            e::ReplayGate::PATH,
            Min(Viewer),
            Body::Json(json!({ "id": MISSING.parse::<i64>().unwrap_or(0), "gate": { "max_error_rate": 0.01, "max_p99_ms": 1000, "min_probe_success": 0.99, "window_secs": 60, "min_samples": 10, "deadline_secs": 300, "consecutive_failures": 3 } })),
        ),
        f(
            e::ImportSpec::PATH,
            Min(Viewer),
            Body::Json(json!({ "text": "name = 1", "format": "toml" })),
        ),
        f(
            e::ExportSpec::PATH,
            Min(Viewer),
            Body::Json(json!({ "spec": spec(), "format": "toml" })),
        ),
        f(en::EnvironmentOverviews::PATH, Min(Viewer), none()),
        f(en::CheckBackends::PATH, Min(Operator), none()),
        f(en::AcceptLiveState::PATH, Min(Operator), form(&[("environment", "nowhere"), ("pool", "web")])),
    ]);
    rows
}

/// The callers, lowest first: `None` is anonymous.
const CALLERS: [Option<Role>; 5] =
    [None, Some(Role::Viewer), Some(Role::Operator), Some(Role::Approver), Some(Role::Admin)];

fn user_of(role: Role) -> &'static str {
    match role {
        Role::Viewer => "vera",
        Role::Operator => "olivia",
        Role::Approver => "abe",
        Role::Admin => "ada",
    }
}

async fn call(app: &TestApp, row: &Row, cookie: Option<&str>) -> (StatusCode, String, String) {
    let path =
        row.path.replace("{id}", MISSING).replace("{backend}", "nohook").replace("{pool}", "web");
    let method = reqwest::Method::from_bytes(row.method.as_bytes()).expect("method");
    let mut req =
        app.client().request(method, format!("{}{path}", app.url)).header("origin", &app.url);
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    req = match &row.body {
        Body::None => req,
        Body::Json(v) => req.json(v),
        Body::Form(pairs) => req.form(pairs),
    };
    let res = tokio::time::timeout(std::time::Duration::from_secs(20), req.send())
        .await
        .expect("answers within 20 s")
        .expect("request");
    let status = res.status();
    let loc = location(&res);
    let text = tokio::time::timeout(std::time::Duration::from_secs(2), res.text())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    (status, loc, text.chars().take(300).collect())
}

/// Whether the answer is what `expect` says `caller` gets; `Err` says what was wrong.
fn judge(
    expect: Expect,
    caller: Option<Role>,
    status: StatusCode,
    loc: &str,
) -> Result<(), String> {
    let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
    let ok = |cond: bool, wanted: &str| if cond { Ok(()) } else { Err(format!("wanted {wanted}")) };
    if status.is_server_error() {
        return Err("a server error".into());
    }
    match (expect, caller) {
        (Expect::Public, _) => ok(!refused, "an answer, not 401/403"),
        (Expect::Signed, _) => ok(status == StatusCode::UNAUTHORIZED, "401"),
        (Expect::SignOut, _) => {
            ok(status == StatusCode::SEE_OTHER && loc.starts_with("/login"), "303 to /login")
        }
        (Expect::Min(_), None) => ok(status == StatusCode::UNAUTHORIZED, "401"),
        (Expect::Page(_), None) => {
            ok(status == StatusCode::SEE_OTHER && loc.starts_with("/login"), "303 to /login")
        }
        (Expect::Min(min) | Expect::Page(min), Some(role)) if !role.allows(min) => {
            ok(status == StatusCode::FORBIDDEN, "403")
        }
        (Expect::Min(_), Some(_)) => ok(!refused, "past the role check (not 401/403)"),
        (Expect::Page(_), Some(_)) => ok(!refused && !status.is_redirection(), "the page"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_server_function_answers_each_role_as_the_table_says() {
    let app = spawn_app_with(&[("SWITCHYARD_MAX_FAILURES_PER_IP", "1000")]).await;
    let mut cookies = BTreeMap::new();
    for role in Role::ALL {
        app.add_user(user_of(role), role).await;
        cookies.insert(role, app.login_ok(user_of(role)).await);
    }
    let table = table();

    // The table and the router list the same routes.
    let served: Vec<(String, String)> = app.routes.clone();
    let listed: Vec<(String, String)> =
        table.iter().map(|r| (r.method.to_string(), r.path.clone())).collect();
    let missing: Vec<_> = served.iter().filter(|r| !listed.contains(r)).collect();
    let stale: Vec<_> = listed.iter().filter(|r| !served.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "routes the router serves but the role table does not list: {missing:#?}"
    );
    assert!(stale.is_empty(), "rows for routes the router does not serve: {stale:#?}");
    // Public by construction: the public router holds exactly the rows anyone may reach;
    // every other route sits behind the protected router's sign-in gate.
    for row in &table {
        let key = (row.method.to_string(), row.path.clone());
        let anyone = matches!(row.expect, Expect::Public | Expect::Signed | Expect::SignOut);
        assert_eq!(
            app.public_routes.contains(&key),
            anyone,
            "{} {}: in the public router exactly when anyone may reach it",
            row.method,
            row.path
        );
    }
    let mut dupes = listed.clone();
    dupes.sort();
    dupes.dedup();
    assert_eq!(dupes.len(), listed.len(), "a route is listed twice");

    // The REST rows agree with the roles the OpenAPI document states.
    for (method, path, role) in server::http::openapi::operations() {
        let row = table.iter().find(|r| r.method.eq_ignore_ascii_case(&method) && r.path == path);
        let row =
            row.unwrap_or_else(|| panic!("{method} {path} is in the document but not the table"));
        let documented = match role.as_str() {
            server::http::openapi::SIGNED => Expect::Signed,
            r => Expect::Min(r.parse().expect("a role")),
        };
        assert_eq!(
            row.expect, documented,
            "{method} {path}: the table and the OpenAPI document disagree"
        );
    }

    let mut wrong = Vec::new();
    let mut checked = 0;
    for row in &table {
        for caller in CALLERS {
            // Sign-out ends the session it is sent with: give it one of its own.
            let fresh;
            let cookie = match (row.expect, caller) {
                (_, None) => None,
                (Expect::SignOut, Some(role)) => {
                    fresh = app.login_ok(user_of(role)).await;
                    Some(fresh.as_str())
                }
                (_, Some(role)) => cookies.get(&role).map(String::as_str),
            };
            let (status, loc, body) = call(&app, row, cookie).await;
            checked += 1;
            if let Err(why) = judge(row.expect, caller, status, &loc) {
                let who = caller.map_or("anonymous", |r| r.as_str());
                wrong.push(format!(
                    "{} {} as {who}: {status} {loc} {why}: {body}",
                    row.method, row.path
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} calls answered otherwise than the table says:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!("role matrix: {} routes × {} callers = {checked} calls", table.len(), CALLERS.len());
    assert_eq!(checked, table.len() * CALLERS.len());
    // The sign-in the matrix made as each role still works (nothing above logged them out).
    for role in Role::ALL {
        let res = app.get("/api/v1/me", cookies.get(&role).map(String::as_str)).await;
        assert_eq!(res.status(), StatusCode::OK, "{role}");
    }
    let _ = PASSWORD;
    app.stop().await;
}
