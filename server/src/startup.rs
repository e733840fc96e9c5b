//! Building and running the server: open the store, make sure an admin exists, bind, serve,
//! and stop gracefully on SIGTERM/SIGINT (or when a test drops its handle).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use app::api::ports::Ports;
use leptos::config::LeptosOptions;
use serde_json::json;
use tokio::net::TcpListener;

use crate::adapters::registry::{AdapterFactory, Registry};
use crate::audit::{AuditService, system_record};
use crate::auth::accounts::AccountsService;
use crate::auth::password;
use crate::config::Config;
use crate::engine::{Engine, EngineConfig};
use crate::http;
use crate::http::state::AppState;
use crate::notify::Notifier;
use crate::services::CampaignService;
use crate::store::{NewUser, SqlSessionStore, Store};

pub struct Application {
    pub addr: SocketAddr,
    pub store: Store,
    pub engine: Engine,
    pub notifier: Notifier,
    /// Every (method, path) served, read from the router (for tests that must cover them all).
    pub routes: Vec<(String, String)>,
    /// The part of `routes` anyone may reach (the public router); the rest needs a sign-in.
    pub public_routes: Vec<(String, String)>,
    registry: Option<Arc<Registry>>,
    listener: TcpListener,
    router: axum::Router,
    closing: tokio::sync::watch::Sender<bool>,
    drift_interval: std::time::Duration,
    sample_interval: std::time::Duration,
    /// This server drives the database's campaigns until it stops.
    _lock: crate::store::EngineLock,
    retention: crate::store::Retention,
}

impl Application {
    /// Opens the store (applying migrations), binds the listener and assembles the router.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let registry = Arc::new(Registry::new(config.data_dir()));
        let engine_config =
            EngineConfig { alert_webhook: config.alert_webhook.clone(), ..EngineConfig::default() };
        let mut app = Self::build_with(config.clone(), registry.clone(), engine_config).await?;
        if let Some(demo) = &config.demo {
            crate::demo::seed(&app.store, &registry, demo)
                .await
                .context("seeding the demo environment failed")?;
        }
        app.registry = Some(registry);
        Ok(app)
    }

    /// Like [`Application::build`], with the adapters and engine settings chosen by the caller.
    pub async fn build_with(
        config: Config,
        adapters: Arc<dyn AdapterFactory>,
        engine_config: EngineConfig,
    ) -> anyhow::Result<Self> {
        let lock = crate::store::EngineLock::acquire(&config.database_url)?;
        if let Some(ca) = &config.security.outbound_ca_file {
            let n = crate::outbound::trust_ca_file(ca)
                .map_err(|why| anyhow::anyhow!("outbound.ca_file: {why}"))?;
            tracing::info!(certificates = n, file = %ca.display(), "trusting extra CA certificates for outbound HTTPS");
        }
        crate::auth::password::set_concurrency(config.security.hash_concurrency);
        let store = crate::store::connect(&config.database_url).await?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| {
            format!("cannot listen on {} (is another server running there?)", config.listen)
        })?;
        let addr = listener.local_addr()?;
        let leptos_options = LeptosOptions::builder()
            .output_name(http::assets::output_name(&config.site_root))
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .build();
        let engine = Engine::new(store.clone(), adapters.clone(), engine_config);
        let drift_interval = std::time::Duration::from_secs(config.drift_interval_secs);
        let r = config.retention;
        let retention = crate::store::Retention {
            samples_days: r.samples_days,
            events_days: r.events_days,
            deliveries_days: r.deliveries_days,
            unconfirmed_subscribers_days: r.unconfirmed_subscribers_days,
        };
        let sample_interval = std::time::Duration::from_millis(config.sample_interval_ms);
        let notifier = Notifier::new(store.clone(), config.notify.clone());
        let campaigns =
            CampaignService::new(store.clone(), engine.clone()).with_notifier(notifier.clone());
        let charts = crate::services::ChartService::new(store.clone());
        let ports = Ports {
            accounts: Arc::new(AccountsService::new(store.clone())),
            audit: Arc::new(AuditService::new(store.clone())),
            campaigns: Arc::new(crate::services::Services {
                campaigns: campaigns.clone(),
                environments: campaigns.environments().clone(),
                charts: charts.clone(),
            }),
            editor: Arc::new(campaigns.clone()),
        };
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let state = AppState {
            config: Arc::new(config),
            store: store.clone(),
            ports,
            leptos_options,
            metrics: Arc::default(),
            environments: campaigns.environments().clone(),
            campaigns,
            charts,
            status: crate::services::StatusService::new(store.clone(), notifier.clone()),
            notifier: notifier.clone(),
            adapters,
            login_attempts: Arc::default(),
            closing: closing_rx,
        };
        let routes = http::route_table(&state);
        let public_routes = http::public_route_table(&state);
        let router = http::app(state);
        Ok(Self {
            addr,
            store,
            engine,
            notifier,
            routes,
            public_routes,
            registry: None,
            listener,
            router,
            closing,
            drift_interval,
            sample_interval,
            _lock: lock,
            retention,
        })
    }

    /// The adapters this server drives (absent when built with a custom factory).
    pub fn registry(&self) -> Option<Arc<Registry>> {
        self.registry.clone()
    }

    /// Serves until `shutdown` resolves, finishing in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let sessions = SqlSessionStore::new(self.store.clone());
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
            loop {
                tick.tick().await;
                if let Err(e) = sessions.delete_expired().await {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
            }
        });
        let (store, keep) = (self.store.clone(), self.retention);
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                match store.prune(keep, chrono::Utc::now()).await {
                    Ok(p) if p != crate::store::Pruned::default() => {
                        tracing::info!(?p, "pruned old rows")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not prune old rows"),
                }
            }
        });
        // After a restart every active campaign carries on from its persisted step, and the
        // outbox from its last committed delivery.
        self.engine.resume_all().await?;
        self.engine.watch_drift(self.drift_interval);
        self.engine.watch_samples(self.sample_interval);
        self.engine.watch_tasks(std::time::Duration::from_secs(5));
        let dispatcher = tokio::spawn(self.notifier.clone().run());
        let closing = self.closing;
        let shutdown = async move {
            shutdown.await;
            // End live event streams so in-flight requests can finish.
            let _ = closing.send(true);
        };
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        // Pages stream in parts (the shell, then each resolved section): without TCP_NODELAY
        // each later part waits for the client's delayed ACK, about 40 ms a page.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
        sweeper.abort();
        pruner.abort();
        dispatcher.abort();
        self.engine.kill();
        if let Some(r) = &self.registry {
            r.stop_processes().await;
        }
        self.store.close().await;
        result.context("server error")
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// On a store with no users, creates `admin` with a random one-time password and returns it.
/// Never a fixed default: the password is printed once and must be changed at first sign-in.
pub async fn bootstrap_admin(store: &Store) -> anyhow::Result<Option<String>> {
    if store.user_count().await? > 0 {
        return Ok(None);
    }
    let one_time = password::generate_one_time();
    let hash = password::hash(one_time.clone()).await?;
    store
        .create_user(
            NewUser {
                username: "admin",
                password_hash: &hash,
                role: "admin",
                must_change_password: true,
            },
            system_record(
                "user.create",
                "user:admin",
                json!({ "role": "admin", "first_run": true }),
            ),
        )
        .await?;
    Ok(Some(one_time))
}
