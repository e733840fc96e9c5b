//! Pure domain logic shared by the server and the browser: validated types, the campaign model,
//! the plan compiler and state transitions. No I/O, no async, no framework types.

pub mod audit;
pub mod auth;
