//! Local process provider: runs each instance of a release as a process on this machine, from
//! a command template (`{exe}`, `{release}`, `{port}`, `{target}`), on its own loopback port.
//! The template is split into words when the settings are read and run without a shell
//! ([`super::argv`]): a release is always exactly one argument.
//! Which target runs on which port is kept in a state file, and the read-back asks the
//! instance itself (its `x-release` header), so after a restart the provider sees what really
//! runs, including instances that outlived the server.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::argv::Template;
use super::{AdapterError, AdapterResult, BackendCheck, Instance, Provider};

pub const KIND: &str = "local-process";

/// What a command template may use.
pub const PLACEHOLDERS: &[&str] = &["exe", "release", "port", "target", "host"];

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `{exe}` is this program, `{release}`, `{port}` and `{target}` the instance's; a list of
    /// words or one line split into words (never given to a shell).
    pub command: Template,
    pub host: String,
    pub port_min: u16,
    pub port_max: u16,
    pub health_path: String,
    pub start_timeout_secs: u64,
    /// Where target → port assignments are kept; `None` keeps them in memory only.
    pub state_file: Option<PathBuf>,
    /// Fixed ports for targets that must keep their address (the environment's own targets).
    pub ports: BTreeMap<String, u16>,
    /// Targets whose instances listen on another host (IP) than `host` (`{host}` in the
    /// command), e.g. the old set of a DNS pool on other addresses than the new one.
    pub hosts: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            command: Template::literal(&[
                "{exe}",
                "demo-service",
                "--release",
                "{release}",
                "--port",
                "{port}",
            ]),
            host: "127.0.0.1".into(),
            port_min: 9200,
            port_max: 9299,
            health_path: "/healthz".into(),
            start_timeout_secs: 15,
            state_file: None,
            ports: BTreeMap::new(),
            hosts: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Assignments {
    ports: BTreeMap<String, u16>,
    /// Process ids, to stop instances that outlived a restart of the server.
    #[serde(default)]
    pids: BTreeMap<String, u32>,
    /// The release each instance was last started with, so instances stopped with the server
    /// come back with it: on a real provider they would have kept running.
    #[serde(default)]
    releases: BTreeMap<String, String>,
}

struct Running {
    child: tokio::process::Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

pub struct LocalProcess {
    cfg: Config,
    http: reqwest::Client,
    assignments: Mutex<Assignments>,
    running: tokio::sync::Mutex<BTreeMap<String, Running>>,
}

const LOG_LINES: usize = 50;

impl LocalProcess {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        cfg.command
            .check(PLACEHOLDERS)
            .map_err(|why| AdapterError::Permanent(format!("command: {why}")))?;
        if cfg.port_min > cfg.port_max {
            return Err(AdapterError::Permanent(format!(
                "port_min {} is above port_max {}",
                cfg.port_min, cfg.port_max
            )));
        }
        let assignments = cfg
            .state_file
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        let http = crate::outbound::builder(Duration::from_secs(2))
            .build()
            .map_err(|e| AdapterError::Permanent(format!("HTTP client: {e}")))?;
        Ok(Self {
            cfg,
            http,
            assignments: Mutex::new(assignments),
            running: tokio::sync::Mutex::new(BTreeMap::new()),
        })
    }

    /// Takes over from `old` (its settings changed): the instances it started keep running and
    /// are this provider's now, so nothing is killed or forgotten by an edit.
    pub fn replace(old: &LocalProcess, cfg: Config) -> AdapterResult<Self> {
        let new = Self::new(cfg)?;
        if let (Ok(from), Ok(mut to)) = (old.assignments.lock(), new.assignments.lock()) {
            for (t, p) in &from.ports {
                to.ports.entry(t.clone()).or_insert(*p);
            }
            for (t, p) in &from.pids {
                to.pids.entry(t.clone()).or_insert(*p);
            }
            for (t, r) in &from.releases {
                to.releases.entry(t.clone()).or_insert_with(|| r.clone());
            }
            new.save(&to);
        }
        if let (Ok(mut from), Ok(mut to)) = (old.running.try_lock(), new.running.try_lock()) {
            to.append(&mut from);
        }
        Ok(new)
    }

    fn port_of(&self, target: &str) -> Option<u16> {
        self.cfg
            .ports
            .get(target)
            .copied()
            .or_else(|| self.assignments.lock().ok()?.ports.get(target).copied())
    }

    fn assign(&self, target: &str) -> AdapterResult<u16> {
        if let Some(p) = self.port_of(target) {
            return Ok(p);
        }
        let mut a = self
            .assignments
            .lock()
            .map_err(|_| AdapterError::Permanent("state lock poisoned".into()))?;
        let taken: Vec<u16> = a.ports.values().chain(self.cfg.ports.values()).copied().collect();
        let port = (self.cfg.port_min..=self.cfg.port_max)
            .find(|p| {
                !taken.contains(p)
                    && std::net::TcpListener::bind((self.cfg.host.as_str(), *p)).is_ok()
            })
            .ok_or_else(|| {
                AdapterError::Transient(format!(
                    "no free port in {}–{}",
                    self.cfg.port_min, self.cfg.port_max
                ))
            })?;
        a.ports.insert(target.to_string(), port);
        self.save(&a);
        Ok(port)
    }

    fn forget(&self, target: &str) {
        if let Ok(mut a) = self.assignments.lock() {
            a.ports.remove(target);
            a.releases.remove(target);
            self.save(&a);
        }
    }

    fn save(&self, a: &Assignments) {
        if let Some(path) = &self.cfg.state_file {
            super::write_state(path, a);
        }
    }

    /// The host `target`'s instance listens on.
    fn host_of(&self, target: &str) -> &str {
        self.cfg.hosts.get(target).map_or(self.cfg.host.as_str(), String::as_str)
    }

    fn instance(&self, target: &str, port: u16, release: String) -> Instance {
        let address = format!("{}:{port}", self.host_of(target));
        Instance {
            target: target.into(),
            health_url: format!("http://{address}{}", self.cfg.health_path),
            address,
            release,
        }
    }

    /// The release answering on `target`'s host at `port`, if any.
    async fn answering(&self, target: &str, port: u16) -> Option<String> {
        let url = format!("http://{}:{port}{}", self.host_of(target), self.cfg.health_path);
        let res = self.http.get(url).send().await.ok()?;
        res.headers().get("x-release").and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    async fn stop(&self, target: &str, port: u16) {
        let pid = self.assignments.lock().ok().and_then(|mut a| {
            let pid = a.pids.remove(target);
            self.save(&a);
            pid
        });
        if let Some(mut r) = self.running.lock().await.remove(target) {
            let _ = r.child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), r.child.wait()).await;
        } else if let Some(pid) = pid {
            // Started before this server restarted: we hold no handle, only its pid.
            let _ = tokio::process::Command::new("kill").arg(pid.to_string()).status().await;
        }
        for _ in 0..50 {
            if self.answering(target, port).await.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ensures `target` runs `release`; idempotent.
    pub async fn ensure(&self, target: &str, release: &str) -> AdapterResult<Instance> {
        let port = self.assign(target)?;
        match self.answering(target, port).await {
            Some(r) if r == release => return Ok(self.instance(target, port, r)),
            Some(_) => self.stop(target, port).await,
            None => {}
        }
        let exe = std::env::current_exe()
            .map_err(|e| AdapterError::Permanent(format!("cannot find this program: {e}")))?;
        let (exe, port_text) = (exe.display().to_string(), port.to_string());
        let argv = self.cfg.command.render(&[
            ("exe", &exe),
            ("release", release),
            ("port", &port_text),
            ("target", target),
            ("host", self.host_of(target)),
        ]);
        let command = argv.join(" ");
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            // Dropped handles (a server that exits, a test that panics) take their process
            // along; after a hard crash the instances live on and are adopted at restart.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| AdapterError::Permanent(format!("cannot start `{command}`: {e}")))?;
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES)));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(mut l) = log.lock() {
                        if l.len() == LOG_LINES {
                            l.pop_front();
                        }
                        l.push_back(line);
                    }
                }
            });
        }
        if let (Some(pid), Ok(mut a)) = (child.id(), self.assignments.lock()) {
            a.pids.insert(target.to_string(), pid);
            a.releases.insert(target.to_string(), release.to_string());
            self.save(&a);
        }
        self.running.lock().await.insert(target.to_string(), Running { child, log: log.clone() });
        let deadline =
            tokio::time::Instant::now() + Duration::from_secs(self.cfg.start_timeout_secs);
        loop {
            if self.answering(target, port).await.as_deref() == Some(release) {
                return Ok(self.instance(target, port, release.to_string()));
            }
            let exited = match self.running.lock().await.get_mut(target) {
                Some(r) => r.child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                let tail = log
                    .lock()
                    .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                return Err(AdapterError::Permanent(format!(
                    "`{command}` exited ({status}): {tail}"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdapterError::Transient(format!(
                    "{target} did not answer on port {port} within {}s",
                    self.cfg.start_timeout_secs
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines an instance printed.
    pub async fn log_tail(&self, target: &str) -> Vec<String> {
        self.running
            .lock()
            .await
            .get(target)
            .and_then(|r| r.log.lock().ok().map(|l| l.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// Starts again every instance the state file records that does not answer (after the
    /// server stopped them at its last shutdown); returns how many were started.
    pub async fn restore(&self) -> AdapterResult<usize> {
        let wanted: Vec<(String, String)> = self
            .assignments
            .lock()
            .map(|a| a.releases.iter().map(|(t, r)| (t.clone(), r.clone())).collect())
            .unwrap_or_default();
        let mut started = 0;
        for (target, release) in wanted {
            let Some(port) = self.port_of(&target) else { continue };
            if self.answering(&target, port).await.is_none() {
                self.ensure(&target, &release).await?;
                started += 1;
            }
        }
        Ok(started)
    }

    /// Stops every instance this provider started (on shutdown).
    pub async fn stop_all(&self) {
        let mut running = self.running.lock().await;
        for (_, r) in running.iter_mut() {
            let _ = r.child.start_kill();
        }
        for (_, mut r) in std::mem::take(&mut *running) {
            let _ = tokio::time::timeout(Duration::from_secs(2), r.child.wait()).await;
        }
    }
}

#[async_trait]
impl Provider for LocalProcess {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
        let program = self.cfg.command.render(&[("exe", &exe)]).swap_remove(0);
        let path = std::path::Path::new(&program);
        let found = if path.is_absolute() {
            path.is_file()
        } else {
            std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(&program).is_file()))
        };
        if !found {
            return Err(AdapterError::Permanent(format!("program '{program}' not found")));
        }
        Ok(BackendCheck {
            version: None,
            capabilities: ["create", "replace", "destroy", "logs"].map(String::from).to_vec(),
            detail: format!(
                "runs '{}' on ports {}–{}",
                self.cfg.command, self.cfg.port_min, self.cfg.port_max
            ),
        })
    }

    async fn log_tail(&self, target: &str) -> Vec<String> {
        LocalProcess::log_tail(self, target).await
    }

    async fn create(&self, target: &str, release: &str, _group: &str) -> AdapterResult<Instance> {
        self.ensure(target, release).await
    }

    async fn replace(&self, target: &str, release: &str) -> AdapterResult<Instance> {
        if self.port_of(target).is_none() {
            return Err(AdapterError::Permanent(format!(
                "{target} is not an instance of this provider"
            )));
        }
        self.ensure(target, release).await
    }

    async fn destroy(&self, target: &str) -> AdapterResult<()> {
        if let Some(port) = self.port_of(target) {
            self.stop(target, port).await;
            if !self.cfg.ports.contains_key(target) {
                self.forget(target);
            }
        }
        Ok(())
    }

    async fn describe(&self, target: &str) -> AdapterResult<Option<Instance>> {
        let Some(port) = self.port_of(target) else { return Ok(None) };
        Ok(self.answering(target, port).await.map(|release| self.instance(target, port, release)))
    }
}
