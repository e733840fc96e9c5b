//! What the benchmarks share: a real server in this process on a fresh database with an admin
//! API token, and writing a marked section of BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::adapters::registry::Registry;
use crate::audit::system_record;
use crate::auth::password;
use crate::config::Config;
use crate::startup::Application;
use crate::store::{NewUser, Store};

pub struct BenchServer {
    pub url: String,
    /// An admin's API token.
    pub token: String,
    pub store: Store,
    pub registry: Arc<Registry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl BenchServer {
    /// Starts a server on `127.0.0.1:0` with its database in `dir`; `extra` adds settings
    /// (`SWITCHYARD_*` names) to the defaults.
    pub async fn start(dir: &Path, extra: &[(&str, &str)]) -> anyhow::Result<Self> {
        let db = dir.join("bench.db");
        let mut env = BTreeMap::from([
            ("SWITCHYARD_LISTEN".to_string(), "127.0.0.1:0".to_string()),
            ("SWITCHYARD_DATABASE_URL".to_string(), format!("sqlite://{}", db.display())),
            ("SWITCHYARD_SITE_ROOT".to_string(), "/nonexistent-site".to_string()),
            ("SWITCHYARD_LOG".to_string(), "error".to_string()),
        ]);
        for (k, v) in extra {
            env.insert((*k).to_string(), (*v).to_string());
        }
        let config = Config::load_from(None, &env)?;
        let app = Application::build(config).await?;
        let url = format!("http://{}", app.addr);
        let registry = app.registry().ok_or_else(|| anyhow::anyhow!("no registry"))?;
        let store = app.store.clone();
        let hash = password::hash("bench password long enough".to_string()).await?;
        let user = store
            .create_user(
                NewUser {
                    username: "bench",
                    password_hash: &hash,
                    role: "admin",
                    must_change_password: false,
                },
                system_record("user.create", "user:bench", serde_json::json!({ "role": "admin" })),
            )
            .await?;
        let token = crate::auth::accounts::issue_token(
            &store,
            user.id,
            "bench",
            system_record("token.create", "user:bench", serde_json::json!({})),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?
        .secret;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = app
                .run_until(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self { url, token, store, registry, stop: Some(stop), task })
    }

    /// Stops the server and waits for it (and the processes it started) to end.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Replaces the part of BENCHMARKS.md between `<!-- NAME:begin` and `<!-- NAME:end -->` with
/// `section` (which carries both markers), or appends it.
pub fn write_section(name: &str, section: &str) -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (begin, end) = (format!("<!-- {name}:begin"), format!("<!-- {name}:end -->"));
    let new = match (text.find(&begin), text.find(&end)) {
        (Some(a), Some(b)) => format!("{}{section}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{}\n\n{section}\n", text.trim_end()),
    };
    std::fs::write(&path, new)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The value below which `p` (0–1) of `sorted` lie (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
