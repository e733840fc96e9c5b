//! Who may do what, and how a refusal reads: shared by every service.

use std::collections::BTreeMap;

use app::api::ApiError;
use app::domain::auth::{Principal, Role};
use app::domain::validate::ValidationErrors;

/// Refuses unless `actor` has at least `role`.
pub fn require(actor: &Principal, role: Role) -> Result<(), ApiError> {
    if actor.role.allows(role) { Ok(()) } else { Err(ApiError::forbidden(role)) }
}

/// Field errors as the API returns them: the first message per field.
pub fn invalid(errors: &ValidationErrors) -> ApiError {
    let mut fields = BTreeMap::new();
    for e in &errors.0 {
        fields.entry(e.field.clone()).or_insert_with(|| e.message.clone());
    }
    let n = errors.0.len();
    let first = errors.0.first().map(|e| format!("{}: {}", e.field, e.message)).unwrap_or_default();
    let mut err = ApiError::new(
        app::api::ErrorCode::Invalid,
        if n == 1 {
            format!("the campaign has a problem: {first}")
        } else {
            format!("the campaign has {n} problems; first, {first}")
        },
    );
    err.fields = fields;
    err
}
