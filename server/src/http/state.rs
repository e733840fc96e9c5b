//! Shared application state handed to every handler.

use std::sync::Arc;

use app::api::ports::Ports;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::adapters::registry::AdapterFactory;
use crate::config::Config;
use crate::http::metrics::Metrics;
use crate::services::{CampaignService, ChartService, EnvironmentService, StatusService};
use crate::store::Store;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub ports: Ports,
    pub leptos_options: LeptosOptions,
    pub metrics: Arc<Metrics>,
    pub campaigns: CampaignService,
    pub environments: EnvironmentService,
    pub charts: ChartService,
    pub status: StatusService,
    pub notifier: crate::notify::Notifier,
    /// The adapters the engine uses (provider callbacks are routed to them).
    pub adapters: Arc<dyn AdapterFactory>,
    /// Sign-in attempts being checked now (counted by the throttle before hashing).
    pub login_attempts: Arc<crate::auth::throttle::InFlight>,
    /// Flips to true when the server starts shutting down, so long-lived streams end.
    pub closing: tokio::sync::watch::Receiver<bool>,
}
