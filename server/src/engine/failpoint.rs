//! Failpoints for the crash tests: a named point in the engine where, when the server was
//! started with `SWITCHYARD_FAILPOINTS=name[,name…]`, the reconciler stops for good (and says so
//! on standard error) so a test can SIGKILL the process exactly there, e.g. after a router
//! change was applied and before it was recorded. Without the variable a point costs one
//! lookup in an empty list.

use std::sync::OnceLock;

static POINTS: OnceLock<Vec<String>> = OnceLock::new();

fn armed(name: &str) -> bool {
    POINTS
        .get_or_init(|| {
            std::env::var("SWITCHYARD_FAILPOINTS")
                .map(|v| {
                    v.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
                })
                .unwrap_or_default()
        })
        .iter()
        .any(|p| p == name)
}

/// Waits forever at `name` if it is armed.
pub async fn hit(name: &str) {
    if armed(name) {
        eprintln!("switchyard: failpoint {name} reached");
        tracing::warn!(failpoint = name, "failpoint reached; this reconciler stops here");
        std::future::pending::<()>().await;
    }
}
