//! Integration tests: the real server on port 0, a fresh SQLite file per test, a real HTTP
//! client. One binary (modules below) so the suite links once.

mod analysis;
mod approvals;
mod assets;
mod audit_trail;
mod auth;
mod backends_check;
mod campaigns_api;
mod chain;
mod charts;
mod cli;
mod comms;
mod crash;
mod demo;
mod durability;
mod editor;
mod haproxy;
mod hardening;
mod helpers;
mod injection;
mod layers;
mod nginx;
mod operations;
mod outbound;
mod powerdns;
mod prometheus;
mod providers;
mod real_backends;
mod registry;
mod role_matrix;
mod secret_sweep;
mod sessions;
mod settings_on_save;
mod zero_downtime;
