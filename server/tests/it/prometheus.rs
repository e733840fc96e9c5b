//! The Prometheus health source against a real `prometheus` on loopback that scrapes a tiny
//! `/metrics` endpoint served by the test: gate samples, the version check, bad queries, and a
//! Prometheus that goes away.

use std::sync::Arc;

use app::domain::environment::{BackendConfig, BackendKind};
use app::domain::ids::Name;
use axum::routing::get;
use serde_json::{Value, json};
use server::adapters::registry::{AdapterFactory, Registry};
use server::adapters::{AdapterError, HealthSource};

use crate::real_backends::{Prometheus, closed_port};

/// Per-target gauges in the text exposition format. `web-1` (the old release) is far worse, so a
/// query that forgot to filter by target would show it.
const METRICS: &str = "\
# HELP demo_request_rate Requests per second.
# TYPE demo_request_rate gauge
demo_request_rate{target=\"web-1-v2\"} 20
demo_request_rate{target=\"web-2-v2\"} 10
demo_request_rate{target=\"web-1\"} 1000
# HELP demo_error_rate Failed requests per second.
# TYPE demo_error_rate gauge
demo_error_rate{target=\"web-1-v2\"} 0.6
demo_error_rate{target=\"web-2-v2\"} 0.3
demo_error_rate{target=\"web-1\"} 500
# HELP demo_p99_ms 99th-percentile latency in milliseconds.
# TYPE demo_p99_ms gauge
demo_p99_ms{target=\"web-1-v2\"} 120
demo_p99_ms{target=\"web-2-v2\"} 180
demo_p99_ms{target=\"web-1\"} 5000
";

/// Serves `/metrics` and `/healthz` on a port the kernel picks; returns `host:port`.
async fn serve_metrics() -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(|| async { ([("content-type", "text/plain; version=0.0.4")], METRICS) }),
        )
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

fn source(settings: Value) -> Arc<dyn HealthSource> {
    let cfg = BackendConfig {
        name: Name::parse("metrics").expect("name"),
        kind: BackendKind::HealthSource,
        driver: "prometheus".into(),
        settings,
        environment: None,
    };
    Registry::new(None).health(&cfg).expect("the registry builds a prometheus source")
}

fn settings(url: &str) -> Value {
    json!({
        "url": url,
        "timeout_secs": 2,
        "sample_secs": 60,
        "queries": {
            "request_rate": "sum(demo_request_rate{target=~\"{targets}\"})",
            "error_rate": "sum(demo_error_rate{target=~\"{targets}\"}) / sum(demo_request_rate{target=~\"{targets}\"})",
            "p99_latency_ms": "max(demo_p99_ms{target=~\"{targets}\"})",
            "up": "up{job=\"{pool}\", instance=~\"{instances}\"}",
        },
    })
}

#[tokio::test]
async fn a_sample_holds_what_prometheus_scraped_for_the_new_targets_only() {
    let (metrics, _server) = serve_metrics().await;
    let prom = Prometheus::start("web-pool", &metrics).await;
    let s = source(settings(&prom.url));

    let check = s.check().await.expect("check");
    assert!(check.version.as_deref().is_some_and(|v| v.starts_with("2.")), "{check:?}");
    assert_eq!(check.capabilities, ["probe", "request-rate", "error-rate", "latency", "up"]);

    let health = format!("http://{metrics}/healthz");
    let targets = vec![("web-1-v2".to_string(), health.clone()), ("web-2-v2".to_string(), health)];
    let sample = s.sample("web-pool", &targets).await.expect("sample");
    // 30 requests a second for the 60 s a sample stands for; 0.9 of them fail each second.
    assert_eq!(sample.requests, 1800);
    assert_eq!(sample.errors, 54);
    assert_eq!(sample.p99_ms, Some(180.0));
    assert_eq!((sample.probes, sample.probe_failures), (1, 0), "one scraped instance, up");

    let probe = s.probe("web-1-v2", &targets[0].1).await.expect("probe");
    assert!(probe.ok, "{probe:?}");

    let none = s.sample("web-pool", &[("web-9".into(), "http://127.0.0.1:1/".into())]).await;
    let none = none.expect("a target Prometheus never saw is no data, not an error");
    assert_eq!((none.requests, none.errors, none.p99_ms, none.probes), (0, 0, None, 0));
}

#[tokio::test]
async fn bad_queries_are_permanent_errors_that_say_what_to_fix() {
    let (metrics, _server) = serve_metrics().await;
    let prom = Prometheus::start("web-pool", &metrics).await;
    let targets = vec![("web-1-v2".to_string(), format!("http://{metrics}/healthz"))];

    let typo =
        source(json!({ "url": prom.url, "queries": { "p99_latency_ms": "max(demo_p99_ms{" } }));
    match typo.check().await {
        Err(AdapterError::Permanent(m)) => {
            assert!(m.contains("queries.p99_latency_ms") && m.contains("parse error"), "{m}")
        }
        other => panic!("a query that does not parse fails the check: {other:?}"),
    }

    let many = source(json!({ "url": prom.url, "queries": { "p99_latency_ms": "demo_p99_ms" } }));
    match many.sample("web-pool", &targets).await {
        Err(AdapterError::Permanent(m)) => {
            assert!(m.contains("3 series") && m.contains("sum()"), "{m}")
        }
        other => panic!("several series for one figure is a configuration error: {other:?}"),
    }
}

#[tokio::test]
async fn prometheus_down_is_a_transient_error() {
    let (metrics, _server) = serve_metrics().await;
    let mut prom = Prometheus::start("web-pool", &metrics).await;
    let s = source(settings(&prom.url));
    let targets = vec![("web-1-v2".to_string(), format!("http://{metrics}/healthz"))];
    s.sample("web-pool", &targets).await.expect("sample while up");
    prom.kill().await;

    assert!(s.sample("web-pool", &targets).await.expect_err("down").is_transient());
    assert!(s.check().await.expect_err("down").is_transient());

    let nowhere = source(settings(&format!("http://127.0.0.1:{}", closed_port())));
    assert!(nowhere.sample("web-pool", &targets).await.expect_err("closed").is_transient());
}
