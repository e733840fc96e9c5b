//! The embedded router: an in-process weighted HTTP reverse proxy, one listener per pool, so
//! the demo (and anyone without a load balancer) has real traffic to move. It sends each
//! request to a ready member chosen by weight, never starts new requests on a draining member
//! while letting in-flight ones finish, retries an idempotent request once on another member
//! when a connection fails, and sends requests that match the preview route to the preview
//! members only. Membership is saved to a state file, so a restart keeps the traffic split.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use app::domain::campaign::PreviewRoute;
use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::{AdapterError, AdapterResult, BackendCheck, Hit, MemberReadback, Router};

pub const KIND: &str = "embedded";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pool name → the address its listener binds.
    pub listen: BTreeMap<String, SocketAddr>,
    #[serde(default)]
    pub state_file: Option<PathBuf>,
    #[serde(default = "default_timeout")]
    pub upstream_timeout_secs: u64,
}

fn default_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MemberConf {
    address: String,
    weight: Weight,
    state: MemberState,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PoolConf {
    members: BTreeMap<String, MemberConf>,
    preview: Option<(PreviewRoute, Vec<String>)>,
}

struct Shared {
    pools: RwLock<BTreeMap<String, PoolConf>>,
    in_flight: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    hits: Mutex<BTreeMap<String, VecDeque<Hit>>>,
    http: reqwest::Client,
    state_file: Option<PathBuf>,
}

const HITS_KEPT: usize = 20_000;

pub struct EmbeddedRouter {
    shared: Arc<Shared>,
    pub addresses: BTreeMap<String, SocketAddr>,
    /// Tells the listeners to stop accepting (when new settings replace this router).
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for EmbeddedRouter {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl EmbeddedRouter {
    /// Binds a listener per pool and starts proxying (needs a Tokio runtime).
    pub fn start(cfg: Config) -> AdapterResult<Self> {
        Self::start_with(cfg, None)
    }

    /// Takes over from `old` (its settings changed): the members it has, and its addresses,
    /// which both listen on for a moment (`SO_REUSEPORT`) so no connection is refused; then the
    /// old listeners stop accepting.
    pub fn replace(old: &EmbeddedRouter, cfg: Config) -> AdapterResult<Self> {
        let pools = old.shared.pools.read().map(|p| p.clone()).unwrap_or_default();
        let new = Self::start_with(cfg, Some(pools))?;
        let _ = old.stop.send(true);
        Ok(new)
    }

    fn start_with(cfg: Config, pools: Option<BTreeMap<String, PoolConf>>) -> AdapterResult<Self> {
        let pools: BTreeMap<String, PoolConf> = pools.unwrap_or_else(|| {
            cfg.state_file
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or_default()
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let http = crate::outbound::builder(Duration::from_secs(cfg.upstream_timeout_secs))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| AdapterError::Permanent(format!("HTTP client: {e}")))?;
        let shared = Arc::new(Shared {
            pools: RwLock::new(pools),
            in_flight: Mutex::default(),
            hits: Mutex::default(),
            http,
            state_file: cfg.state_file.clone(),
        });
        let mut addresses = BTreeMap::new();
        for (pool, addr) in &cfg.listen {
            let cannot = |e: std::io::Error| {
                AdapterError::Permanent(format!(
                    "the embedded router cannot listen on {addr} for pool {pool}: {e}"
                ))
            };
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(cannot)?;
            socket.set_reuseaddr(true).map_err(cannot)?;
            socket.set_reuseport(true).map_err(cannot)?;
            socket.bind(*addr).map_err(cannot)?;
            let listener = socket.listen(1024).map_err(cannot)?;
            let bound =
                listener.local_addr().map_err(|e| AdapterError::Permanent(e.to_string()))?;
            addresses.insert(pool.clone(), bound);
            let app =
                axum::Router::new().fallback(proxy).with_state((shared.clone(), pool.clone()));
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "embedded router listener stopped");
                }
            });
            tracing::info!(pool = %pool, address = %bound, "embedded router listening");
        }
        Ok(Self { shared, addresses, stop })
    }

    fn save(&self) {
        let Some(path) = &self.shared.state_file else { return };
        let Ok(pools) = self.shared.pools.read() else { return };
        super::write_state(path, &*pools);
    }

    fn update(
        &self,
        pool: &str,
        f: impl FnOnce(&mut PoolConf) -> AdapterResult<()>,
    ) -> AdapterResult<()> {
        {
            let mut pools = self
                .shared
                .pools
                .write()
                .map_err(|_| AdapterError::Permanent("router state lock poisoned".into()))?;
            f(pools.entry(pool.to_string()).or_default())?;
        }
        self.save();
        Ok(())
    }

    /// Requests proxied for `pool` since `since`, oldest first.
    pub fn hits_since(&self, pool: &str, since: DateTime<Utc>) -> Vec<Hit> {
        self.shared
            .hits
            .lock()
            .map(|h| {
                h.get(pool)
                    .map(|q| q.iter().filter(|x| x.at > since).cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn in_flight(&self, target: &str) -> u64 {
        self.shared
            .in_flight
            .lock()
            .ok()
            .and_then(|m| m.get(target).map(|c| c.load(Ordering::SeqCst)))
            .unwrap_or(0)
    }
}

fn counter(shared: &Shared, target: &str) -> Arc<AtomicU64> {
    let mut m = shared.in_flight.lock().unwrap_or_else(|p| p.into_inner());
    m.entry(target.to_string()).or_default().clone()
}

/// Chooses a member: preview members for preview requests, else weighted among ready ones.
fn pick(pool: &PoolConf, headers: &HeaderMap, exclude: &[String]) -> Option<(String, String)> {
    if let Some((route, addresses)) = &pool.preview {
        let header_hit = route.header.as_ref().is_some_and(|h| {
            headers.get(h.name.as_str()).and_then(|v| v.to_str().ok()) == Some(h.value.as_str())
        });
        let cookie_hit = route.cookie.as_ref().is_some_and(|c| {
            headers
                .get_all("cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .any(|kv| kv.trim() == format!("{}={}", c.name, c.value))
        });
        if header_hit || cookie_hit {
            let candidates: Vec<(String, String)> = pool
                .members
                .iter()
                .filter(|(t, m)| addresses.contains(&m.address) && !exclude.contains(t))
                .map(|(t, m)| (t.clone(), m.address.clone()))
                .collect();
            if !candidates.is_empty() {
                let i = rand::thread_rng().gen_range(0..candidates.len());
                return candidates.into_iter().nth(i);
            }
        }
    }
    let ready: Vec<(&String, &MemberConf)> = pool
        .members
        .iter()
        .filter(|(t, m)| {
            m.state == MemberState::Ready && !m.weight.is_zero() && !exclude.contains(t)
        })
        .collect();
    let total: u32 = ready.iter().map(|(_, m)| m.weight.basis_points()).sum();
    if total == 0 {
        return None;
    }
    let mut roll = rand::thread_rng().gen_range(0..total);
    for (t, m) in ready {
        if roll < m.weight.basis_points() {
            return Some((t.clone(), m.address.clone()));
        }
        roll -= m.weight.basis_points();
    }
    None
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn proxy(State((shared, pool)): State<(Arc<Shared>, String)>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    };
    let idempotent = matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE");
    let path =
        parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let mut tried: Vec<String> = Vec::new();
    loop {
        let choice = shared
            .pools
            .read()
            .ok()
            .and_then(|p| p.get(&pool).and_then(|conf| pick(conf, &parts.headers, &tried)));
        let Some((target, address)) = choice else {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("no ready member in pool {pool}\n"))
                .into_response();
        };
        let flight = counter(&shared, &target);
        flight.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        let mut upstream =
            shared.http.request(parts.method.clone(), format!("http://{address}{path}"));
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str()) && name != "host" {
                upstream = upstream.header(name, value);
            }
        }
        let result = upstream.body(body.clone()).send().await;
        let outcome = match result {
            Ok(res) => {
                let status = res.status();
                let headers = res.headers().clone();
                match res.bytes().await {
                    Ok(bytes) => Ok((status, headers, bytes)),
                    Err(e) => Err((false, e)),
                }
            }
            Err(e) => Err((e.is_connect(), e)),
        };
        flight.fetch_sub(1, Ordering::SeqCst);
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok((status, headers, bytes)) => {
                let release =
                    headers.get("x-release").and_then(|v| v.to_str().ok()).map(str::to_string);
                record(
                    &shared,
                    &pool,
                    Hit {
                        at: Utc::now(),
                        target: target.clone(),
                        release,
                        status: status.as_u16(),
                        latency_ms,
                    },
                );
                let mut out = Response::builder().status(status.as_u16());
                for (name, value) in &headers {
                    if !HOP_BY_HOP.contains(&name.as_str()) && name != "content-length" {
                        out = out.header(name, value);
                    }
                }
                out = out.header(HeaderName::from_static("x-switchyard-target"), target.as_str());
                return out
                    .body(Body::from(bytes))
                    .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response());
            }
            Err((connect, e)) => {
                // A member that refuses connections gets no user request: try another once.
                if connect && idempotent && tried.is_empty() {
                    tried.push(target);
                    continue;
                }
                record(
                    &shared,
                    &pool,
                    Hit {
                        at: Utc::now(),
                        target: target.clone(),
                        release: None,
                        status: 502,
                        latency_ms,
                    },
                );
                return (StatusCode::BAD_GATEWAY, format!("upstream {target} failed: {e}\n"))
                    .into_response();
            }
        }
    }
}

fn record(shared: &Shared, pool: &str, hit: Hit) {
    if let Ok(mut hits) = shared.hits.lock() {
        let q = hits.entry(pool.to_string()).or_default();
        if q.len() == HITS_KEPT {
            q.pop_front();
        }
        q.push_back(hit);
    }
}

fn member_of<'a>(
    conf: &'a mut PoolConf,
    pool: &str,
    target: &str,
) -> AdapterResult<&'a mut MemberConf> {
    conf.members
        .get_mut(target)
        .ok_or_else(|| AdapterError::Permanent(format!("{target} is not a member of {pool}")))
}

#[async_trait]
impl Router for EmbeddedRouter {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let pools: Vec<String> =
            self.addresses.iter().map(|(pool, addr)| format!("{pool} on {addr}")).collect();
        Ok(BackendCheck {
            version: Some(format!("switchyard {}", env!("CARGO_PKG_VERSION"))),
            capabilities: ["membership", "weights", "drain", "preview-route", "request-log"]
                .map(String::from)
                .to_vec(),
            detail: format!("in-process proxy listening: {}", pools.join(", ")),
        })
    }

    async fn set_weight(&self, pool: &str, target: &str, weight: Weight) -> AdapterResult<()> {
        self.update(pool, |c| {
            member_of(c, pool, target)?.weight = weight;
            Ok(())
        })
    }

    async fn set_state(&self, pool: &str, target: &str, state: MemberState) -> AdapterResult<()> {
        self.update(pool, |c| {
            member_of(c, pool, target)?.state = state;
            Ok(())
        })
    }

    async fn add_member(
        &self,
        pool: &str,
        target: &str,
        address: &str,
        weight: Weight,
    ) -> AdapterResult<()> {
        let address = super::member_address(target, address)?.to_string();
        self.update(pool, |c| {
            c.members.insert(
                target.to_string(),
                MemberConf { address, weight, state: MemberState::Ready },
            );
            Ok(())
        })
    }

    async fn remove_member(&self, pool: &str, target: &str) -> AdapterResult<()> {
        self.update(pool, |c| {
            c.members.remove(target);
            Ok(())
        })
    }

    async fn await_drained(
        &self,
        _pool: &str,
        target: &str,
        timeout_secs: u64,
    ) -> AdapterResult<bool> {
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        loop {
            if self.in_flight(target) == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn set_preview_route(
        &self,
        pool: &str,
        route: &PreviewRoute,
        addresses: &[String],
    ) -> AdapterResult<()> {
        self.update(pool, |c| {
            c.preview = Some((route.clone(), addresses.to_vec()));
            Ok(())
        })
    }

    async fn clear_preview_route(&self, pool: &str) -> AdapterResult<()> {
        self.update(pool, |c| {
            c.preview = None;
            Ok(())
        })
    }

    async fn read_pool(&self, pool: &str) -> AdapterResult<Vec<MemberReadback>> {
        let pools = self
            .shared
            .pools
            .read()
            .map_err(|_| AdapterError::Permanent("router state lock poisoned".into()))?;
        Ok(pools
            .get(pool)
            .map(|c| {
                c.members
                    .iter()
                    .map(|(t, m)| MemberReadback {
                        target: t.clone(),
                        address: m.address.clone(),
                        weight: m.weight,
                        state: m.state,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn recent_hits(&self, pool: &str, since: DateTime<Utc>) -> Option<Vec<Hit>> {
        Some(self.hits_since(pool, since))
    }
}
