//! `spawn_app()` and friends.

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};

use app::domain::auth::Role;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use serde_json::json;
use server::audit::system_record;
use server::auth::password;
use server::config::Config;
use server::startup::Application;
use server::store::{NewUser, Store};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "a long enough password";

pub struct TestApp {
    pub url: String,
    pub store: Store,
    /// The running engine, and through it the server's adapter registry.
    pub engine: server::engine::Engine,
    pub db_path: PathBuf,
    /// Every (method, path) the server's router serves.
    pub routes: Vec<(String, String)>,
    pub public_routes: Vec<(String, String)>,
    /// The server's adapters (to bring an environment up as an operator would have it).
    pub registry: Option<std::sync::Arc<server::adapters::registry::Registry>>,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub fn test_config(db_path: &Path, overrides: &[(&str, &str)]) -> Config {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("SWITCHYARD_LISTEN".into(), "127.0.0.1:0".into());
    env.insert("SWITCHYARD_DATABASE_URL".into(), format!("sqlite://{}", db_path.display()));
    env.insert("SWITCHYARD_SITE_ROOT".into(), "/nonexistent-site".into());
    env.insert("SWITCHYARD_LOG".into(), "warn".into());
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    Config::load_from(None, &env).expect("test config is valid")
}

/// A server on a fresh database in its own temporary directory.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("switchyard.db");
    let mut app = spawn_app_on(&db, overrides).await;
    app._dir = Some(dir);
    app
}

/// A server on an existing database file (to test restarts).
pub async fn spawn_app_on(db_path: &Path, overrides: &[(&str, &str)]) -> TestApp {
    let config = test_config(db_path, overrides);
    let app = Application::build(config).await.expect("server builds");
    let addr = app.addr;
    let store = app.store.clone();
    let registry = app.registry();
    let engine = app.engine.clone();
    let routes = app.routes.clone();
    let public_routes = app.public_routes.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        url: format!("http://{addr}"),
        store,
        engine,
        db_path: db_path.to_path_buf(),
        routes,
        public_routes,
        registry,
        _dir: None,
        stop: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Stops the server gracefully; the database file stays (for restart tests).
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("server task ends cleanly");
        }
        self._dir.take()
    }

    pub async fn add_user(&self, name: &str, role: Role) -> i64 {
        let hash = password::hash(PASSWORD.to_string()).await.expect("hash");
        self.store
            .create_user(
                NewUser {
                    username: name,
                    password_hash: &hash,
                    role: role.as_str(),
                    must_change_password: false,
                },
                system_record(
                    "user.create",
                    format!("user:{name}"),
                    json!({ "role": role.as_str() }),
                ),
            )
            .await
            .expect("user created")
            .id
    }

    /// A token for `name`, created as the CLI would.
    pub async fn token_for(&self, name: &str) -> String {
        let user = self.store.find_user_by_name(name).await.expect("lookup").expect("user exists");
        server::auth::accounts::issue_token(
            &self.store,
            user.id,
            "test",
            system_record("token.create", format!("user:{name}"), json!({})),
        )
        .await
        .expect("token")
        .secret
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    /// Signs in through the form; returns the response (303) and the session cookie, if any.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> (reqwest::Response, Option<String>) {
        let res = self
            .client()
            .post(format!("{}/auth/login", self.url))
            .header("origin", &self.url)
            .form(&[("username", username), ("password", password), ("next", "/")])
            .send()
            .await
            .expect("login request");
        let cookie = session_cookie(res.headers());
        (res, cookie)
    }

    pub async fn login_ok(&self, username: &str) -> String {
        let (res, cookie) = self.login(username, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/", "a successful sign-in goes home");
        cookie.expect("a session cookie is set at sign-in")
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.client().get(format!("{}{path}", self.url));
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        req.send().await.expect("request")
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client()
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn audit_actions(&self) -> Vec<(String, String, String)> {
        self.audit_rows("").await.into_iter().map(|r| (r.action, r.object, r.outcome)).collect()
    }

    /// The audit events of `action` (every event for `""`), in chain order, read through the
    /// store.
    pub async fn audit_rows(&self, action: &str) -> Vec<server::store::AuditRow> {
        let q = server::store::AuditQuery {
            action_prefix: (!action.is_empty()).then(|| action.to_string()),
            ..Default::default()
        };
        let rows = self.store.export_audit(&q, 100_000).await.expect("audit rows");
        rows.into_iter().filter(|r| action.is_empty() || r.action == action).collect()
    }

    /// How many API tokens exist, anyone's.
    pub async fn token_count(&self) -> usize {
        self.store.list_all_tokens().await.expect("tokens").len()
    }

    /// A separate connection for poking at the database the way an attacker could (tampering,
    /// reading what is really on disk); everything else goes through the store.
    pub async fn raw_pool(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&format!("sqlite://{}", self.db_path.display()))
            .await
            .expect("raw pool")
    }
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("switchyard_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get(LOCATION)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// `env` rewritten so campaigns on it really run on this machine: every router becomes one
/// embedded router with a loopback listener per pool, the provider a local-process provider
/// running this build's demo service, the health source an http-probe counting the router's
/// traffic; each target gets its own loopback port. Channels and everything else stay.
pub fn runnable(mut env: serde_json::Value) -> serde_json::Value {
    let targets = env["targets"].as_array().map(Vec::len).unwrap_or(0) as u16;
    let pools: Vec<String> = env["pools"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let base = server::testbed::free_port_block(targets + pools.len() as u16 + 40).expect("ports");
    let mut ports = serde_json::Map::new();
    for (i, t) in env["targets"].as_array_mut().into_iter().flatten().enumerate() {
        let port = base + i as u16;
        let address = format!("127.0.0.1:{port}");
        t["health_url"] = json!(format!("http://{address}/healthz"));
        t["address"] = json!(address);
        ports.insert(t["name"].as_str().unwrap_or_default().to_string(), json!(port));
    }
    let listen: serde_json::Map<String, serde_json::Value> = pools
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), json!(format!("127.0.0.1:{}", base + targets + i as u16))))
        .collect();
    for p in env["pools"].as_array_mut().into_iter().flatten() {
        p["router"] = json!("edge");
    }
    let first_free = base + targets + pools.len() as u16;
    let exe = env!("CARGO_BIN_EXE_switchyard");
    let mut backends = vec![
        json!({ "name": "edge", "kind": "router", "driver": "embedded",
                "settings": { "listen": listen, "state_file": "router.json" } }),
        json!({ "name": "local", "kind": "provider", "driver": "local-process",
                "settings": { "command": format!("{exe} demo-service --release {{release}} --port {{port}}"),
                              "ports": ports, "port_min": first_free, "port_max": first_free + 39,
                              "state_file": "processes.json" } }),
        json!({ "name": "probe", "kind": "health_source", "driver": "http-probe", "settings": { "router": "edge" } }),
    ];
    backends.extend(
        env["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["kind"] == "channel")
            .cloned(),
    );
    env["backends"] = json!(backends);
    env
}

impl TestApp {
    /// Starts the environment's instances and fills its pools, as an operator's machines and
    /// load balancer would be before a first campaign.
    pub async fn bring_up(&self, env: &serde_json::Value) {
        let env: app::domain::environment::Environment =
            serde_json::from_value(env.clone()).expect("an environment");
        let registry = self.registry.clone().expect("the server's adapters");
        server::demo::bring_up(&registry, &env).await.expect("the environment comes up");
    }
}

pub use server::testbed::eventually;

/// What a receiver saw: the hook's name, the headers and the body of every POST.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, BTreeMap<String, String>, Vec<u8>)>>>;

/// A webhook receiver on loopback: records every request; `/gone` answers 410.
pub struct Receiver {
    pub url: String,
    pub seen: Seen,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn receiver() -> Receiver {
    use axum::extract::{Path as AxPath, State};
    async fn hook(
        State(seen): State<Seen>,
        AxPath(name): AxPath<String>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        seen.lock().expect("lock").push((name.clone(), headers, body.to_vec()));
        if name == "gone" { axum::http::StatusCode::GONE } else { axum::http::StatusCode::OK }
    }
    let seen: Seen = Default::default();
    let app = axum::Router::new()
        .route("/hook/{name}", axum::routing::post(hook))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, seen, _task: task }
}

pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}
