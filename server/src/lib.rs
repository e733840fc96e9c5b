//! Switchyard's server: configuration, startup, authentication, the HTTP surface (pages,
//! server functions, REST API), the store and the audit trail.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod demo_service;
pub mod engine;
pub mod http;
pub mod notify;
pub mod outbound;
pub mod services;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod testbed;
