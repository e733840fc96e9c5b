//! Who may do what: roles, the authenticated principal, and validated user names and passwords.
//! Shared by the server (which enforces) and the browser (which only hides what it may not use).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Roles are ordered: each one may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// True when this role includes everything `required` may do.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role '{0}': expected one of viewer, operator, approver, admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuthVia {
    Session,
    Token,
}

/// The authenticated caller of a request, resolved once by the server's auth middleware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub via: AuthVia,
    pub source_ip: String,
    pub must_change_password: bool,
}

/// A login name: 1–64 characters of letters, digits, `.`, `_`, `-` and `@`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("user name is empty: use 1–64 letters, digits, '.', '_', '-' or '@'".into());
        }
        if s.chars().count() > 64 {
            return Err("user name is longer than 64 characters".into());
        }
        if let Some(bad) =
            s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
        {
            return Err(format!(
                "user name contains '{bad}': use only letters, digits, '.', '_', '-' or '@'"
            ));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub const MIN_PASSWORD_LEN: usize = 12;

/// Checks a new password against the policy; returns a message saying what would be valid.
pub fn check_new_password(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(format!("password has {n} characters: use at least {MIN_PASSWORD_LEN}"));
    }
    if n > 256 {
        return Err("password is longer than 256 characters".into());
    }
    Ok(())
}

/// A user as the admin page and the API show it (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
}

/// An API token as listed; the secret itself is shown once, at creation, and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked: bool,
    /// When it stops working; `None`: never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Past `expires_at` (and so refused).
    #[serde(default)]
    pub expired: bool,
    /// Why it was revoked: `revoked`, `password_reset` or `disabled`.
    #[serde(default)]
    pub revoked_reason: Option<String>,
    /// Whose token it is (the admin's list shows everyone's).
    #[serde(default)]
    pub owner: String,
}

/// How long new API tokens live, set by an admin: the default and the longest a creator may
/// ask for; 0 days means tokens never expire unless their creator says when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenPolicy {
    pub default_expiry_days: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_from_viewer_to_admin() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Approver.allows(Role::Operator));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Approver));
    }

    #[test]
    fn role_parsing_names_the_valid_choices() {
        assert_eq!("Operator".parse::<Role>(), Ok(Role::Operator));
        let err = "root".parse::<Role>().expect_err("root is not a role");
        assert!(err.to_string().contains("viewer, operator, approver, admin"));
    }

    #[test]
    fn usernames_reject_spaces_and_empty() {
        assert!(Username::parse("alice@example").is_ok());
        assert!(Username::parse("  ").is_err());
        assert!(Username::parse("bob smith").unwrap_err().contains("' '"));
    }

    #[test]
    fn short_passwords_are_refused_with_the_minimum() {
        assert!(check_new_password("short").unwrap_err().contains("at least 12"));
        assert!(check_new_password("correct horse battery").is_ok());
    }
}
