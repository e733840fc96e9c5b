//! The real programs Switchyard drives, started on loopback for one test each: PowerDNS
//! (authoritative, gsqlite3) and Prometheus. A missing program fails the test naming the Debian
//! package to install. Each child is killed when its handle drops, so a failing test leaves no
//! process behind.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::process::{Child, Command};

pub const PDNS_SERVER: &str = "/usr/sbin/pdns_server";
pub const PDNS_SCHEMA: &str = "/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql";
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Fails (never skips) when a program the test needs is not installed.
pub fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

/// A port free for TCP and UDP on 127.0.0.1, below Linux's ephemeral range (32768+) so that no
/// outgoing connection of a concurrent test can be handed it. Free when asked: a caller that
/// loses a race retries with another.
pub fn free_port() -> u16 {
    loop {
        let port: u16 = 20_000 + rand::random::<u16>() % 12_000;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    free_port()
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
}

async fn spawn_logged(program: &str, args: &[String], dir: &Path) -> Child {
    let log = std::fs::File::create(dir.join("log")).expect("log file");
    let err = log.try_clone().expect("log file");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"))
}

pub struct Pdns {
    /// The webserver's base URL, as the `api_url` setting takes it.
    pub api_url: String,
    pub api_key: String,
    /// UDP and TCP port of the DNS server.
    pub dns_port: u16,
    pub zone: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Pdns {
    /// PowerDNS on fresh ports with a gsqlite3 database made from Debian's schema, serving
    /// `zone` (created through the API, as an operator would).
    pub async fn start(zone: &str) -> Self {
        require(PDNS_SERVER, "pdns-server");
        require(PDNS_SCHEMA, "pdns-backend-sqlite3");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = dir.path().join("pdns.sqlite3");
            let schema = std::fs::read_to_string(PDNS_SCHEMA).expect("schema");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=rwc", db.display()))
                .await
                .expect("create the pdns database");
            sqlx::raw_sql(&schema).execute(&pool).await.expect("load the pdns schema");
            pool.close().await;

            let (dns_port, web_port) = (free_port(), free_port());
            let api_key = format!("test-key-{}", rand::random::<u32>());
            let conf = format!(
                "launch=gsqlite3\n\
                 gsqlite3-database={db}\n\
                 local-address=127.0.0.1\n\
                 local-port={dns_port}\n\
                 api=yes\n\
                 api-key={api_key}\n\
                 webserver=yes\n\
                 webserver-address=127.0.0.1\n\
                 webserver-port={web_port}\n\
                 webserver-allow-from=127.0.0.0/8\n\
                 security-poll-suffix=\n\
                 loglevel=4\n",
                db = db.display()
            );
            std::fs::write(dir.path().join("pdns.conf"), conf).expect("pdns.conf");
            let args = [
                format!("--config-dir={}", dir.path().display()),
                "--daemon=no".into(),
                "--guardian=no".into(),
                "--disable-syslog".into(),
                "--write-pid=no".into(),
                format!("--socket-dir={}", dir.path().display()),
            ];
            let child = spawn_logged(PDNS_SERVER, &args, dir.path()).await;
            let mut pdns = Pdns {
                api_url: format!("http://127.0.0.1:{web_port}"),
                api_key,
                dns_port,
                zone: zone.to_string(),
                child,
                dir,
            };
            if pdns.wait_ready().await {
                pdns.create_zone().await;
                return pdns;
            }
            last_log = log_of(pdns.dir.path());
        }
        panic!("pdns_server did not start (3 tries); its last log:\n{last_log}");
    }

    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let res = http
                .get(format!("{}/api/v1/servers/localhost", self.api_url))
                .header("X-API-Key", &self.api_key)
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if res.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    async fn create_zone(&self) {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/servers/localhost/zones", self.api_url))
            .header("X-API-Key", &self.api_key)
            .json(&json!({ "name": self.zone, "kind": "Native", "nameservers": [] }))
            .send()
            .await
            .expect("create zone");
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap_or_default());
    }

    /// The settings of a `powerdns` router backend for this server.
    pub fn settings(&self, ttl: u64) -> Value {
        json!({
            "api_url": self.api_url,
            "api_key": self.api_key,
            "zone": self.zone,
            "ttl": ttl,
            "timeout_secs": 2,
        })
    }

    /// A change made behind Switchyard's back, straight through the API.
    pub async fn patch(&self, rrsets: Value) -> reqwest::Response {
        reqwest::Client::new()
            .patch(format!("{}/api/v1/servers/localhost/zones/{}", self.api_url, self.zone))
            .header("X-API-Key", &self.api_key)
            .json(&json!({ "rrsets": rrsets }))
            .send()
            .await
            .expect("patch")
    }

    /// What the DNS server answers for `name` and `qtype` (1 = A, 28 = AAAA): (address, TTL).
    pub async fn resolve(&self, name: &str, qtype: u16) -> Vec<(IpAddr, u32)> {
        let (name, port) = (name.to_string(), self.dns_port);
        tokio::task::spawn_blocking(move || dns_query(port, &name, qtype))
            .await
            .expect("dns query task")
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    pub fn log(&self) -> String {
        log_of(self.dir.path())
    }
}

/// A DNS question over UDP, built and read by hand (RFC 1035), for A and AAAA answers.
fn dns_query(port: u16, name: &str, qtype: u16) -> Vec<(IpAddr, u32)> {
    let id: u16 = rand::random();
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // no flags, 1 question
    for label in name.trim_end_matches('.').split('.') {
        q.push(u8::try_from(label.len()).expect("short label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1_u16.to_be_bytes()); // IN

    let sock = UdpSocket::bind(("127.0.0.1", 0)).expect("udp socket");
    sock.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    sock.send_to(&q, ("127.0.0.1", port)).expect("send the question");
    let mut buf = [0_u8; 1500];
    let n = sock.recv(&mut buf).expect("an answer from pdns");
    let r = &buf[..n];
    assert_eq!(u16::from_be_bytes([r[0], r[1]]), id, "answer to our question");
    assert_eq!(r[3] & 0x0f, 0, "rcode NOERROR for {name}: {:?}", &r[..12]);
    let answers = u16::from_be_bytes([r[6], r[7]]);

    let skip_name = |mut i: usize| -> usize {
        loop {
            let len = r[i];
            if len == 0 {
                return i + 1;
            }
            if len & 0xc0 == 0xc0 {
                return i + 2; // compression pointer
            }
            i += 1 + usize::from(len);
        }
    };
    let mut i = skip_name(12) + 4;
    let mut out = Vec::new();
    for _ in 0..answers {
        i = skip_name(i);
        let rtype = u16::from_be_bytes([r[i], r[i + 1]]);
        let ttl = u32::from_be_bytes([r[i + 4], r[i + 5], r[i + 6], r[i + 7]]);
        let len = usize::from(u16::from_be_bytes([r[i + 8], r[i + 9]]));
        let data = &r[i + 10..i + 10 + len];
        match (rtype, len) {
            (1, 4) => {
                out.push((IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3])), ttl))
            }
            (28, 16) => {
                let octets: [u8; 16] = data.try_into().expect("16 bytes");
                out.push((IpAddr::V6(Ipv6Addr::from(octets)), ttl));
            }
            _ => {}
        }
        i += 10 + len;
    }
    out.sort();
    out
}

pub struct Prometheus {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Prometheus scraping `scrape_target` (`host:port`, path `/metrics`) every second as job
    /// `job`; returns once it has scraped it at least once.
    pub async fn start(job: &str, scrape_target: &str) -> Self {
        require(PROMETHEUS, "prometheus");
        let mut last_log = String::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let config = format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['{scrape_target}']\n"
            );
            let cfg_path: PathBuf = dir.path().join("prometheus.yml");
            std::fs::write(&cfg_path, config).expect("prometheus.yml");
            let port = free_port();
            let args = [
                format!("--config.file={}", cfg_path.display()),
                format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".into(),
            ];
            let child = spawn_logged(PROMETHEUS, &args, dir.path()).await;
            let mut p = Prometheus { url: format!("http://127.0.0.1:{port}"), child, dir };
            if p.wait_scraped(job).await {
                return p;
            }
            last_log = log_of(p.dir.path());
        }
        panic!("prometheus did not start and scrape (3 tries); its last log:\n{last_log}");
    }

    async fn wait_scraped(&mut self, job: &str) -> bool {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let res = http
                .get(format!("{}/api/v1/query", self.url))
                .query(&[("query", format!("up{{job=\"{job}\"}} == 1"))])
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if let Ok(r) = res
                && let Ok(v) = r.json::<Value>().await
                && v["data"]["result"].as_array().is_some_and(|a| !a.is_empty())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}
