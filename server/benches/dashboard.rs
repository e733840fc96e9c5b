//! The dashboard benchmark, on a release build in one process (server and clients share the
//! machine's cores, as they would on a small host):
//! - the campaign list rendered on the server with 10,000 campaigns: latency p50/p99 of three
//!   pages, and requests per second from 8 concurrent clients;
//! - live viewers of a running demo canary: each holds the event stream open and, on every
//!   `sample` event, fetches the chart and the router weights, as the page does. Lag is the
//!   time from a sampling round being stored to a viewer holding the redrawn chart.
//!
//! `cargo bench -p server --bench dashboard` (VIEWERS=1,50,… changes the steps). Rewrites the
//! dashboard section of BENCHMARKS.md.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use server::audit::system_record;
use server::store::DraftFields;
use server::testbed::bench::{BenchServer, percentile, write_section};
use server::testbed::scenarios::Api;

const CAMPAIGNS: usize = 10_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

async fn seed(srv: &BenchServer, api: &Api) -> anyhow::Result<f64> {
    let demo = api.call(reqwest::Method::GET, "/api/v1/campaigns/1", None).await?;
    let mut spec = demo["spec"].clone();
    let started = Instant::now();
    for i in 1..CAMPAIGNS {
        let name = format!("canary-{i:05}");
        spec["name"] = Value::String(name.clone());
        let json = spec.to_string();
        srv.store
            .create_campaign(
                DraftFields {
                    name: &name,
                    environment: "demo",
                    pool: "web",
                    strategy: "canary",
                    spec: &json,
                },
                "bench",
                system_record("campaign.create", format!("campaign:{name}"), serde_json::json!({})),
            )
            .await?;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Latency of `n` sequential GETs of `path` (ms, sorted); each must be 200 and contain `want`.
async fn latencies(api: &Api, path: &str, want: &str, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let res = api.http.get(format!("{}{path}", api.url)).bearer_auth(&api.token).send().await?;
        let status = res.status();
        let body = res.text().await?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(status.is_success() && body.contains(want), "{path}: {status}, no {want}");
    }
    Ok(sorted(out))
}

/// Requests per second from `clients` concurrent clients over `secs`.
async fn throughput(api: &Api, path: &str, clients: usize, secs: u64) -> anyhow::Result<f64> {
    let until = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url, token) =
            (api.http.clone(), format!("{}{path}", api.url), api.token.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0_u64;
            while Instant::now() < until {
                if let Ok(res) = http.get(&url).bearer_auth(&token).send().await
                    && res.status().is_success()
                    && res.bytes().await.is_ok()
                {
                    n += 1;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

#[derive(Default)]
struct Lags {
    /// stored → the event received (ms)
    event: Vec<f64>,
    /// stored → chart and weights fetched (ms)
    redraw: Vec<f64>,
    failed: usize,
}

/// One viewer: the event stream, and on each sample event the chart and the weights.
async fn viewer(
    api: Arc<Api>,
    id: i64,
    record_after: Instant,
    until: Instant,
    lags: Arc<Mutex<Lags>>,
) {
    let events = format!("{}/api/v1/campaigns/{id}/events", api.url);
    let Ok(mut res) = api.http.get(&events).bearer_auth(&api.token).send().await else {
        if let Ok(mut l) = lags.lock() {
            l.failed += 1;
        }
        return;
    };
    let mut text = String::new();
    while Instant::now() < until {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, res.chunk()).await else { break };
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if !event.contains("event: sample") {
                continue;
            }
            let received = now_ms();
            let Some(stored) = event
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
                .and_then(|v| v["stored_ms"].as_i64())
            else {
                continue;
            };
            let chart = api
                .http
                .get(format!("{}/api/v1/campaigns/{id}/chart?tz=Europe/Berlin&width=760", api.url))
                .bearer_auth(&api.token)
                .send();
            let traffic = api
                .http
                .get(format!("{}/api/v1/campaigns/{id}/traffic", api.url))
                .bearer_auth(&api.token)
                .send();
            let (c, t) = tokio::join!(chart, traffic);
            let ok = match (c, t) {
                (Ok(c), Ok(t)) => c.bytes().await.is_ok() && t.bytes().await.is_ok(),
                _ => false,
            };
            let done = now_ms();
            if Instant::now() >= record_after
                && let Ok(mut l) = lags.lock()
            {
                if ok {
                    l.event.push((received - stored) as f64);
                    l.redraw.push((done - stored) as f64);
                } else {
                    l.failed += 1;
                }
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let steps: Vec<usize> = std::env::var("VIEWERS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 50, 200, 500, 1000]);
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let base = server::testbed::free_port_block(64)?;
    let (router, first) = (format!("127.0.0.1:{base}"), (base + 1).to_string());
    let exe = env!("CARGO_BIN_EXE_switchyard");
    let srv = BenchServer::start(
        dir.path(),
        &[
            ("SWITCHYARD_DEMO", "true"),
            ("SWITCHYARD_DEMO_ROUTER", router.as_str()),
            ("SWITCHYARD_DEMO_FIRST_PORT", first.as_str()),
            ("SWITCHYARD_DEMO_TRAFFIC_RPS", "50"),
            ("SWITCHYARD_DEMO_EXE", exe),
        ],
    )
    .await?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(2048).build()?;
    let api = Arc::new(Api { url: srv.url.clone(), token: srv.token.clone(), http });

    eprintln!("== seeding {CAMPAIGNS} campaigns");
    let seed_secs = seed(&srv, &api).await?;
    eprintln!("   {seed_secs:.1} s");
    let mut list_rows = String::new();
    for (label, path, want) in [
        ("first page", "/campaigns", "canary-09999"),
        ("search by name", "/campaigns?q=canary-04242", "canary-04242"),
        ("page 100", "/campaigns?page=100", "canary-0"),
    ] {
        let l = latencies(&api, path, want, 300).await?;
        let row = format!(
            "| {label} (`{path}`) | {:.1} ms | {:.1} ms |",
            percentile(&l, 0.5),
            percentile(&l, 0.99)
        );
        eprintln!("   {row}");
        list_rows.push_str(&row);
        list_rows.push('\n');
    }
    let rps = throughput(&api, "/campaigns", 8, 10).await?;
    eprintln!("   {rps:.0} requests/s from 8 clients");

    eprintln!("== live viewers");
    api.call(reqwest::Method::POST, "/api/v1/campaigns/1/start", None).await?;
    api.wait_status(1, &["running"], Duration::from_secs(30)).await?;
    // Wait for the canary to take traffic, so charts have two releases to draw.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut viewer_rows = String::new();
    let mut single = (f64::NAN, f64::NAN);
    for &n in &steps {
        let lags = Arc::new(Mutex::new(Lags::default()));
        let record_after = Instant::now() + Duration::from_secs(3);
        let until = record_after + Duration::from_secs(8);
        let tasks: Vec<_> = (0..n)
            .map(|_| tokio::spawn(viewer(api.clone(), 1, record_after, until, lags.clone())))
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        let l = std::mem::take(&mut *lags.lock().map_err(|_| anyhow::anyhow!("lock"))?);
        let (event, redraw) = (sorted(l.event), sorted(l.redraw));
        let within = redraw.iter().filter(|ms| **ms <= 1000.0).count() as f64 * 100.0
            / redraw.len().max(1) as f64;
        if n == 1 {
            single = (percentile(&redraw, 0.5), percentile(&redraw, 0.99));
        }
        let row = format!(
            "| {n} | {} | {:.0} / {:.0} ms | {:.0} / {:.0} / {:.0} ms | {within:.1} % | {} |",
            redraw.len(),
            percentile(&event, 0.5),
            percentile(&event, 0.99),
            percentile(&redraw, 0.5),
            percentile(&redraw, 0.99),
            redraw.last().copied().unwrap_or(f64::NAN),
            l.failed
        );
        eprintln!("   {row}");
        viewer_rows.push_str(&row);
        viewer_rows.push('\n');
    }
    let _ = api
        .call(
            reqwest::Method::POST,
            "/api/v1/campaigns/1/abort",
            Some(serde_json::json!({ "reason": "bench done" })),
        )
        .await;
    let _ = api.wait_status(1, &["rolled_back"], Duration::from_secs(30)).await;
    srv.stop().await;

    let section = format!(
        "<!-- dashboard:begin (written by `cargo bench -p server --bench dashboard`) -->\n\
## Dashboard: campaign list and live viewers\n\n\
Written by `cargo bench -p server --bench dashboard` on {date}, one run of {mins:.1} min, on the\n\
project's machine (2 cores; release build; server and clients in one process, so the clients'\n\
work counts against the same two cores).\n\n\
### Campaign list rendered on the server, {CAMPAIGNS} campaigns in SQLite\n\n\
Seeding took {seed_secs:.1} s (one transaction with its audit event per campaign). 300 sequential\n\
requests per page, full HTML including the app shell:\n\n\
| page | p50 | p99 |\n|---|---|---|\n{list_rows}\n\
8 concurrent clients on the first page for 10 s: **{rps:.0} requests/s**.\n\n\
### Live viewers of a running canary\n\n\
Each viewer keeps the campaign's event stream open and, on every `sample` event (one a second),\n\
fetches the chart (SVG, Europe/Berlin) and the router weights, as the page does. *Event*: from\n\
the sampling round being stored to the event arriving. *Redraw*: to the viewer holding both\n\
answers. A sample reaches a single viewer's chart in **{s50:.0} ms** (p50; p99 {s99:.0} ms).\n\n\
| viewers | redraws measured | event p50 / p99 | redraw p50 / p99 / max | redraws within 1 s | failed |\n\
|---|---|---|---|---|---|\n{viewer_rows}\n\
<!-- dashboard:end -->",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        mins = started.elapsed().as_secs_f64() / 60.0,
        s50 = single.0,
        s99 = single.1,
    );
    println!("{section}");
    write_section("dashboard", &section)?;
    Ok(())
}
