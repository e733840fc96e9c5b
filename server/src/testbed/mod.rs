//! Real backends on loopback, for the integration tests and the zero-downtime benchmark:
//! HAProxy and nginx processes with generated configurations, a block of free ports, and a
//! bounded keep-alive load generator that records every answer's status and release.
//! Nothing here is used by `serve`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`; panics naming `what`.
/// The one poll loop of the test suites (integration and engine tests alike).
pub async fn eventually<T>(
    what: &str,
    limit: Duration,
    check: impl AsyncFnMut() -> Option<T>,
) -> T {
    match within(limit, check).await {
        Some(v) => v,
        None => panic!("{what}: not within {limit:?}"),
    }
}

/// [`eventually`] for a caller with its own message: `None` once `limit` has passed. The limit
/// is wall time (`std::time::Instant`), so a test that pauses tokio's clock still gets it.
pub async fn within<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

static HANDED_OUT: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());

/// A free block of `n` ports below Linux's ephemeral range (32768+), where the kernel never
/// hands out ports for outgoing connections, so concurrent clients cannot take them.
pub fn free_port_block(n: u16) -> anyhow::Result<u16> {
    let span = u32::from(n.max(1));
    let start = 10_000 + (std::process::id() % 300) * span;
    let mut base = start;
    loop {
        let Ok(first) = u16::try_from(base) else { bail!("port arithmetic overflowed") };
        let free = (first..first.saturating_add(n))
            .all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
        // Blocks handed to other tests of this process are taken even before they bind.
        let mut taken = HANDED_OUT.lock().map_err(|_| anyhow::anyhow!("port lock poisoned"))?;
        let clash = taken.iter().any(|&(b, len)| first < b + len && b < first.saturating_add(n));
        if free && !clash {
            taken.push((first, n));
            return Ok(first);
        }
        drop(taken);
        base = if base + 2 * span > 32_000 { 10_000 } else { base + span };
        if base == start {
            bail!("no free block of {n} ports below 32000");
        }
    }
}

/// The path of a program from a Debian package, or an error saying what to install.
pub fn require(program: &str, package: &str) -> anyhow::Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(program);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "{program} is not installed: apt-get install {package} (the TEST command does this as root)"
    )
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A child process that is killed when dropped, with its output in a log file.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { name: name.into(), child: Some(child), log })
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the process now (to test a backend that goes away): SIGTERM first, so a master
    /// process (nginx) takes its workers along instead of orphaning them; SIGKILL after 3 s.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                Some(format!("{} exited ({status}): {}", self.name, self.log_text()))
            }
            _ => None,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for(what: &str, d: &mut Daemon, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        if let Some(e) = d.exited() {
            bail!("{what}: {e}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what} did not become ready in 10 s: {}", d.log_text())
}

fn listening(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
}

/// HAProxy with one HTTP frontend per pool and empty backends Switchyard fills through the
/// Runtime API (admin level, unix socket).
pub struct HaproxyProcess {
    pub daemon: Daemon,
    pub socket: PathBuf,
    pub frontends: BTreeMap<String, SocketAddr>,
    pub config: PathBuf,
}

impl HaproxyProcess {
    pub fn start(dir: &Path, frontends: &BTreeMap<String, SocketAddr>) -> anyhow::Result<Self> {
        let bin = require("haproxy", "haproxy")?;
        let socket = dir.join("haproxy-admin.sock");
        let mut cfg = format!(
            "global\n  stats socket {} level admin\n  maxconn 4096\n\n\
             defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  \
             retries 2\n  option redispatch\n\n",
            socket.display()
        );
        for (pool, addr) in frontends {
            cfg.push_str(&format!(
                "frontend fe_{pool}\n  bind {addr}\n  default_backend {pool}\n\n\
                 backend {pool}\n  balance roundrobin\n\n"
            ));
        }
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, cfg)?;
        let mut daemon = Daemon::spawn(
            "haproxy",
            Command::new(bin).arg("-db").arg("-f").arg(&config),
            dir.join("haproxy.log"),
        )?;
        let first = frontends.values().next().copied();
        let sock = socket.clone();
        wait_for("haproxy", &mut daemon, || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok() && first.is_none_or(listening)
        })?;
        Ok(Self { daemon, socket, frontends: frontends.clone(), config })
    }

    /// Settings for the `haproxy` router driver.
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({ "runtime_api": format!("unix:{}", self.socket.display()) })
    }
}

/// nginx (master + one worker) whose `http` block includes the upstream file Switchyard
/// manages, with one proxy server per pool. `accept_mutex on`: without it nginx ≥ 1.11.3 uses
/// EPOLLEXCLUSIVE, and a connection whose wake-up went to a worker that is shutting down after
/// a reload can wait in the accept queue until the next connection arrives (seen here once as
/// a 10 s client timeout in ~6,000 requests).
pub struct NginxProcess {
    pub daemon: Daemon,
    pub config: PathBuf,
    pub prefix: PathBuf,
    pub upstream_file: PathBuf,
    pub pid_file: PathBuf,
    pub frontends: BTreeMap<String, SocketAddr>,
}

impl NginxProcess {
    pub fn start(dir: &Path, frontends: &BTreeMap<String, SocketAddr>) -> anyhow::Result<Self> {
        let bin = require("nginx", "nginx-light")?;
        let prefix = dir.join("nginx");
        for sub in ["", "logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(sub))?;
        }
        let upstream_file = prefix.join("switchyard-upstreams.conf");
        // nginx refuses an upstream with no server: start each pool with a placeholder that is
        // down, as the nginx driver writes for an empty pool.
        let mut upstreams = String::new();
        for pool in frontends.keys() {
            upstreams.push_str(&format!(
                "upstream {pool} {{\n    server 127.0.0.1:9 down; # switchyard placeholder\n}}\n"
            ));
        }
        std::fs::write(&upstream_file, upstreams)?;
        let pid_file = prefix.join("nginx.pid");
        let mut servers = String::new();
        for (pool, addr) in frontends {
            servers.push_str(&format!(
                "  server {{\n    listen {addr};\n    location / {{\n      proxy_pass http://{pool};\n      \
                 proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      \
                 proxy_next_upstream error timeout http_502;\n    }}\n  }}\n"
            ));
        }
        let tmp = prefix.join("tmp");
        let user = if running_as_root() { "user root;\n" } else { "" };
        let cfg = format!(
            "{user}worker_processes 1;\npid {pid};\nerror_log {log} info;\n\
             events {{ worker_connections 1024; accept_mutex on; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {t}/body;\n  proxy_temp_path {t}/proxy;\n  \
             fastcgi_temp_path {t}/fastcgi;\n  uwsgi_temp_path {t}/uwsgi;\n  scgi_temp_path {t}/scgi;\n  \
             keepalive_timeout 30s;\n  include {up};\n{servers}}}\n",
            pid = pid_file.display(),
            log = prefix.join("logs/error.log").display(),
            t = tmp.display(),
            up = upstream_file.display(),
        );
        let config = prefix.join("nginx.conf");
        std::fs::write(&config, cfg)?;
        let mut daemon = Daemon::spawn(
            "nginx",
            Command::new(bin)
                .arg("-g")
                .arg("daemon off;")
                .arg("-c")
                .arg(&config)
                .arg("-p")
                .arg(&prefix),
            dir.join("nginx.log"),
        )?;
        let first = frontends.values().next().copied();
        let pid = pid_file.clone();
        wait_for("nginx", &mut daemon, || pid.exists() && first.is_none_or(listening))?;
        Ok(Self { daemon, config, prefix, upstream_file, pid_file, frontends: frontends.clone() })
    }

    /// Settings for the `nginx` router driver.
    pub fn settings(&self) -> serde_json::Value {
        serde_json::json!({
            "upstream_file": self.upstream_file,
            "config": self.config,
            "prefix": self.prefix,
            "pid_file": self.pid_file,
        })
    }
}

/// One answer (or failure) the load generator saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Since the load started.
    pub at: Duration,
    /// HTTP status; 0 when the request failed without one.
    pub status: u16,
    /// The `x-release` header, or the error text.
    pub release: String,
    /// The first attempt met a connection closed before any answer and was sent again.
    pub retried: bool,
}

/// One GET: (status or 0, release or error, whether a retry may help).
async fn fetch(http: &reqwest::Client, url: &str) -> (u16, String, bool) {
    match http.get(url).send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let release = res
                .headers()
                .get("x-release")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .to_string();
            // Read the body: a response cut short is a failure too.
            match res.bytes().await {
                Ok(_) => (status, release, false),
                Err(e) => (0, format!("body: {e}"), false),
            }
        }
        // No answer at all (not a timeout): the connection was closed or refused.
        Err(e) => (0, format!("{e:?}"), !e.is_timeout()),
    }
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

/// A bounded load: `clients` keep-alive clients sharing `rps` requests a second, for at most
/// `max` (and at most `rps × max` requests), until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    started: Instant,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(url: String, rps: u32, clients: u32, max: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let clients = clients.max(1);
        let per_client = f64::from(rps.max(1)) / f64::from(clients);
        let budget = (per_client * max.as_secs_f64()).ceil() as u64;
        let tasks = (0..clients)
            .map(|i| {
                let (stop, outcomes, url) = (stop.clone(), outcomes.clone(), url.clone());
                tokio::spawn(async move {
                    let Ok(http) = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .pool_max_idle_per_host(1)
                        .build()
                    else {
                        return;
                    };
                    // Spread the clients over one tick so the load is even.
                    let period = Duration::from_secs_f64(1.0 / per_client);
                    tokio::time::sleep(period.mul_f64(f64::from(i) / f64::from(clients))).await;
                    let mut tick = tokio::time::interval(period);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    for _ in 0..budget {
                        tick.tick().await;
                        if stop.load(Ordering::SeqCst) || started.elapsed() > max {
                            break;
                        }
                        // Like a browser, a request on a kept-alive connection the server
                        // closed before answering is retried once (it is idempotent); the
                        // retry is counted.
                        let mut retried = false;
                        let mut outcome = fetch(&http, &url).await;
                        if outcome.0 == 0 && outcome.2 {
                            retried = true;
                            outcome = fetch(&http, &url).await;
                        }
                        if let Ok(mut o) = outcomes.lock() {
                            o.push(Outcome {
                                at: started.elapsed(),
                                status: outcome.0,
                                release: outcome.1,
                                retried,
                            });
                        }
                    }
                })
            })
            .collect();
        Self { stop, started, outcomes, tasks }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// What has been seen so far.
    pub fn snapshot(&self) -> Vec<Outcome> {
        self.outcomes.lock().map(|o| o.clone()).unwrap_or_default()
    }

    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.tasks {
            let _ = t.await;
        }
        let mut all = self.outcomes.lock().map(|o| o.clone()).unwrap_or_default();
        all.sort_by_key(|o| o.at);
        all
    }
}

/// Counts of a load's outcomes.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub sent: usize,
    pub failed: usize,
    /// Requests that succeeded only on their one retry (see [`Outcome::retried`]).
    pub retried: usize,
    pub by_release: BTreeMap<String, usize>,
    /// A few failures, for the message when a test fails.
    pub examples: Vec<String>,
}

pub fn tally(outcomes: &[Outcome]) -> Tally {
    let mut t = Tally { sent: outcomes.len(), ..Default::default() };
    for o in outcomes {
        if o.retried {
            t.retried += 1;
        }
        if o.ok() {
            *t.by_release.entry(o.release.clone()).or_default() += 1;
        } else {
            t.failed += 1;
            if t.examples.len() < 5 {
                t.examples.push(format!("{:?}: {} {}", o.at, o.status, o.release));
            }
        }
    }
    t
}

pub mod bench;
pub mod scenarios;
