//! `switchyard demo-service`: a tiny HTTP service that says which release it is, for the demo
//! environment and the zero-downtime tests. It can be told to fail or slow down, at start or
//! while running, to show what gates and rollbacks do.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

#[derive(Default)]
struct Behaviour {
    /// Share of requests answered with 500, in per-mille.
    fail_per_mille: AtomicU32,
    delay_ms: AtomicU64,
    served: AtomicU64,
}

#[derive(Clone)]
struct Demo {
    release: Arc<str>,
    behaviour: Arc<Behaviour>,
}

pub async fn run(
    release: String,
    listen: SocketAddr,
    fail_rate: f64,
    delay_ms: u64,
) -> anyhow::Result<()> {
    let behaviour = Arc::new(Behaviour::default());
    behaviour.fail_per_mille.store(per_mille(fail_rate), Ordering::Relaxed);
    behaviour.delay_ms.store(delay_ms, Ordering::Relaxed);
    let demo = Demo { release: release.into(), behaviour };
    let app = Router::new()
        .route("/healthz", get(health))
        .route("/admin/behaviour", post(set_behaviour))
        .fallback(serve)
        .with_state(demo.clone());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("demo-service {} listening on http://{}", demo.release, listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(crate::startup::shutdown_signal()).await?;
    Ok(())
}

fn per_mille(rate: f64) -> u32 {
    (rate.clamp(0.0, 1.0) * 1000.0).round() as u32
}

fn with_release(release: &str, mut res: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(release) {
        res.headers_mut().insert("x-release", v);
    }
    res
}

async fn serve(State(d): State<Demo>) -> Response {
    let n = d.behaviour.served.fetch_add(1, Ordering::Relaxed);
    let delay = d.behaviour.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fail = d.behaviour.fail_per_mille.load(Ordering::Relaxed);
    // Deterministic spread: request n fails when its slot in every thousand is below the rate.
    let res = if fail > 0 && (n % 1000) < u64::from(fail) {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("release {} failed this request on purpose\n", d.release),
        )
            .into_response()
    } else {
        format!("hello from release {}\n", d.release).into_response()
    };
    with_release(&d.release, res)
}

async fn health(State(d): State<Demo>) -> Response {
    let failing = d.behaviour.fail_per_mille.load(Ordering::Relaxed) >= 500;
    let res = if failing {
        (StatusCode::SERVICE_UNAVAILABLE, "failing\n").into_response()
    } else {
        "ok\n".into_response()
    };
    with_release(&d.release, res)
}

#[derive(Deserialize)]
struct BehaviourQuery {
    fail_rate: Option<f64>,
    delay_ms: Option<u64>,
}

/// `POST /admin/behaviour?fail_rate=0.5&delay_ms=200` changes how the instance answers.
async fn set_behaviour(State(d): State<Demo>, Query(q): Query<BehaviourQuery>) -> Response {
    if let Some(rate) = q.fail_rate {
        d.behaviour.fail_per_mille.store(per_mille(rate), Ordering::Relaxed);
    }
    if let Some(ms) = q.delay_ms {
        d.behaviour.delay_ms.store(ms, Ordering::Relaxed);
    }
    with_release(&d.release, "ok\n".into_response())
}
