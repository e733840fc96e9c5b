//! Switchyard's server: configuration, startup, authentication, the HTTP surface (pages,
//! server functions, REST API), the store and the audit trail.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod http;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
