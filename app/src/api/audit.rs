//! Server function behind the audit page.

use leptos::prelude::*;

use super::error::ApiError;
use crate::domain::audit::{AuditFilter, AuditPage};

#[server]
pub async fn search_audit(filter: AuditFilter) -> Result<AuditPage, ApiError> {
    let me = super::ctx::principal()?;
    super::ctx::ports()?.audit.search(&me, filter).await.map_err(super::ctx::fail)
}
