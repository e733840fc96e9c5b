//! Health, readiness, metrics and error pages.

use app::domain::auth::Role;
use reqwest::StatusCode;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer_without_signing_in() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.text().await.expect("body"), "ready");
    app.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_report_build_info() {
    let app = spawn_app().await;
    app.get("/healthz", None).await;
    app.get("/api/v1/me", None).await;
    let text = app.get("/metrics", None).await.text().await.expect("body");
    assert!(
        text.contains(
            r#"switchyard_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="/api/v1/me",status="401""#), "{text}");
    assert!(text.contains("switchyard_http_request_duration_seconds_bucket"));
    assert!(text.contains("switchyard_build_info{version="));
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_page_is_a_real_404_page() {
    let app = spawn_app().await;
    app.add_user("vera", Role::Viewer).await;
    let cookie = app.login_ok("vera").await;
    let res = app.get("/no/such/page", Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body = res.text().await.expect("body");
    assert!(body.contains("Page not found"), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn pages_render_on_the_server_for_a_signed_in_admin() {
    let app = spawn_app().await;
    app.add_user("ada", Role::Admin).await;
    let cookie = app.login_ok("ada").await;
    for (path, needle) in
        [("/audit", "matching event"), ("/admin/users", "ada"), ("/account", "API tokens")]
    {
        let res = app.get(path, Some(&cookie)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body = res.text().await.expect("body");
        assert!(body.contains(needle), "{path} lacks {needle}");
    }
    app.stop().await;
}
