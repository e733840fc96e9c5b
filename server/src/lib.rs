//! Switchyard's server: configuration, startup, authentication, the HTTP surface (pages,
//! server functions, REST API), the store and the audit trail.
#![forbid(unsafe_code)]

pub mod adapters;
pub mod audit;
pub mod auth;
pub mod backends;
pub mod campaigns;
pub mod charts;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod demo_service;
pub mod editor;
pub mod engine;
pub mod environments;
pub mod flights;
pub mod gates;
pub mod http;
pub mod impact;
pub mod notify;
pub mod outbound;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod testbed;
