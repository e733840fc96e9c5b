//! Authentication and authorisation: passwords, sessions, API tokens, sign-in throttling and
//! the account services (the request guards that use them are in `http::guard`). Role checks for each action live in the services, not in the UI.

pub mod accounts;
pub mod password;
pub mod throttle;
pub mod tokens;

/// Session keys.
pub(crate) const SESSION_USER: &str = "uid";
pub(crate) const SESSION_LOGIN_AT: &str = "login_at";
pub(crate) const SESSION_EPOCH: &str = "epoch";
