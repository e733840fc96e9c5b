//! Authentication and authorisation: passwords, sessions, API tokens, sign-in throttling,
//! the request guards (who is calling, must they sign in, is a mutation same-origin) and the
//! account services. Role checks for each action live in the services, not in the UI.

pub mod accounts;
pub mod guard;
pub mod login;
pub mod password;
pub mod throttle;
pub mod tokens;

/// Session keys.
pub(crate) const SESSION_USER: &str = "uid";
pub(crate) const SESSION_LOGIN_AT: &str = "login_at";
pub(crate) const SESSION_EPOCH: &str = "epoch";
