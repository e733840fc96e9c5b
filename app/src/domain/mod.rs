//! Pure domain logic shared by the server and the browser: validated types, the campaign model,
//! the plan compiler and state transitions. No I/O, no async, no framework types.

pub mod address;
pub mod audit;
pub mod auth;
pub mod campaign;
pub mod compare;
pub mod environment;
pub mod gate;
pub mod ids;
pub mod lifecycle;
pub mod notice;
pub mod plan;
pub mod reality;
pub mod rollback;
#[cfg(feature = "ssr")]
mod schema;
pub mod traffic;
pub mod validate;
pub mod views;
pub mod window;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod testkit;
