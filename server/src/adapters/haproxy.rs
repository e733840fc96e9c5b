//! HAProxy router, driven through its Runtime API (the `stats socket … level admin`, on a unix
//! socket or TCP). Pool = HAProxy backend; member = server named after the target.
//!
//! - Membership: `add server` (dynamic servers, HAProxy ≥ 2.4), then weight, `enable server`;
//!   removal puts the server in maintenance and `del server`s it (HAProxy refuses while it still
//!   has connections: a transient error, retried by the engine).
//! - Weights: Switchyard's weight is a member's share of the pool; HAProxy's is relative, 0–256,
//!   so a share maps to `round(share × 256)` and reads back to the nearest 1/256.
//! - Drain: `set server … state drain`; [`Router::await_drained`] polls `show stat` until the
//!   server's current sessions reach 0 or the timeout passes.
//! - Read-back: `show servers state` (address, port, admin state, user weight).
//!
//! Every call is one short connection with a timeout; a refused or timed-out connection is
//! transient, an answer HAProxy gives to refuse a command is permanent with its text.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{AdapterError, AdapterResult, BackendCheck, MemberReadback, Router};

pub const KIND: &str = "haproxy";

/// HAProxy's largest server weight.
const MAX_WEIGHT: u32 = 256;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Runtime API: `unix:/run/haproxy/admin.sock`, a bare socket path, or
    /// `tcp:127.0.0.1:9999`.
    pub runtime_api: String,
    /// Switchyard pool → HAProxy backend, when the names differ.
    #[serde(default)]
    pub backends: BTreeMap<String, String>,
    /// Add new servers with HAProxy health checks enabled (`check`).
    #[serde(default)]
    pub health_checks: bool,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    3000
}

pub struct Haproxy {
    cfg: Config,
}

/// One row of `show stat` for a server (the fields Switchyard reads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerStat {
    pub backend: String,
    pub server: String,
    pub status: String,
    /// Current sessions (requests being served).
    pub scur: u64,
    /// Total sessions since start.
    pub stot: u64,
    pub hrsp_5xx: u64,
    /// Connection and response errors (requests that never got a server's answer).
    pub econ: u64,
    pub eresp: u64,
    /// Average response time over the last 1024 requests, ms.
    pub rtime_ms: u64,
    pub check_status: String,
}

impl Haproxy {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        if cfg.runtime_api.trim().is_empty() {
            return Err(AdapterError::Permanent("haproxy: runtime_api is empty".into()));
        }
        for (pool, backend) in &cfg.backends {
            if !is_word(backend) {
                return Err(AdapterError::Permanent(format!(
                    "haproxy: backends.{pool} = {backend:?} is not an HAProxy backend name (letters, digits, '-', '_', '.', ':')"
                )));
            }
        }
        Ok(Self { cfg })
    }

    fn backend<'a>(&'a self, pool: &'a str) -> &'a str {
        self.cfg.backends.get(pool).map_or(pool, String::as_str)
    }

    /// Sends one command and returns HAProxy's answer.
    pub async fn command(&self, cmd: &str) -> AdapterResult<String> {
        // The Runtime API runs every `;`-separated command of a line: one line, one command.
        if cmd.contains(';') || cmd.chars().any(char::is_control) {
            return Err(AdapterError::Permanent(format!(
                "refused to send {cmd:?} to HAProxy: it contains ';' or a control character"
            )));
        }
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let api = self.cfg.runtime_api.as_str();
        let run = async {
            let line = format!("{cmd}\n");
            let mut out = Vec::new();
            if let Some(addr) = api.strip_prefix("tcp:") {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(line.as_bytes()).await?;
                s.read_to_end(&mut out).await?;
            } else {
                let path = api.strip_prefix("unix:").unwrap_or(api);
                let mut s = tokio::net::UnixStream::connect(path).await?;
                s.write_all(line.as_bytes()).await?;
                s.read_to_end(&mut out).await?;
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                Err(AdapterError::Transient(format!("haproxy runtime API {api} unreachable: {e}")))
            }
            Err(_) => Err(AdapterError::Transient(format!(
                "haproxy runtime API {api} did not answer '{cmd}' within {} ms",
                self.cfg.timeout_ms
            ))),
        }
    }

    /// A command that answers nothing on success (the `set …` family).
    async fn quiet(&self, cmd: &str) -> AdapterResult<()> {
        let answer = self.command(cmd).await?;
        let text = answer.trim();
        if text.is_empty() { Ok(()) } else { Err(refused(cmd, text)) }
    }

    async fn servers(&self, pool: &str) -> AdapterResult<Vec<MemberReadback>> {
        let backend = self.backend(pool);
        let answer = self.command(&format!("show servers state {backend}")).await?;
        parse_servers_state(&answer, backend)
    }

    async fn has(&self, pool: &str, target: &str) -> AdapterResult<Option<MemberReadback>> {
        Ok(self.servers(pool).await?.into_iter().find(|m| m.target == target))
    }

    /// `show stat` rows of the servers in `pool` (all pools when `None`).
    pub async fn stats(&self, pool: Option<&str>) -> AdapterResult<Vec<ServerStat>> {
        let answer = self.command("show stat").await?;
        let rows = parse_stat(&answer)?;
        Ok(match pool {
            Some(p) => {
                let backend = self.backend(p);
                rows.into_iter().filter(|r| r.backend == backend).collect()
            }
            None => rows,
        })
    }
}

/// HAProxy answered a command with a refusal. "Still has connections" is worth retrying.
fn refused(cmd: &str, text: &str) -> AdapterError {
    let first = text.lines().next().unwrap_or(text);
    let msg = format!("haproxy refused '{cmd}': {first}");
    if text.contains("still has connections") || text.contains("is busy") {
        AdapterError::Transient(msg)
    } else {
        AdapterError::Permanent(msg)
    }
}

/// Share of the pool (basis points) → HAProxy weight (0–256).
pub fn to_haproxy_weight(w: Weight) -> u32 {
    (u64::from(w.basis_points()) * u64::from(MAX_WEIGHT) + 5_000).div_euclid(10_000) as u32
}

/// HAProxy weight → share of the pool (basis points), to the nearest basis point.
pub fn from_haproxy_weight(w: u32) -> Weight {
    Weight::saturating_from_basis_points(
        ((u64::from(w.min(MAX_WEIGHT)) * 10_000 + 128) / u64::from(MAX_WEIGHT)) as u32,
    )
}

/// Parses `show servers state BACKEND` (format version 1: a version line, a `#` header, rows).
pub fn parse_servers_state(answer: &str, backend: &str) -> AdapterResult<Vec<MemberReadback>> {
    let mut lines = answer.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default().trim();
    if first != "1" {
        // An error text instead of the table, e.g. "Can't find backend."
        return Err(AdapterError::Permanent(format!(
            "haproxy cannot show backend '{backend}': {first}"
        )));
    }
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix('#'))
        .map(|h| h.split_whitespace().collect())
        .unwrap_or_default();
    let col = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            AdapterError::Permanent(format!("haproxy 'show servers state' lacks column {name}"))
        })
    };
    let (name, addr, port, admin, weight) = (
        col("srv_name")?,
        col("srv_addr")?,
        col("srv_port")?,
        col("srv_admin_state")?,
        col("srv_uweight")?,
    );
    let mut out = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        let get = |i: usize| f.get(i).copied().unwrap_or_default();
        let admin: u32 = get(admin).parse().unwrap_or(0);
        // Admin state bits: 0x01 forced maint, 0x02 inherited, 0x04 config, 0x20 resolution,
        // 0x40 hostname; 0x08 forced drain, 0x10 inherited drain.
        let state = if admin & (0x01 | 0x02 | 0x04 | 0x20 | 0x40) != 0 {
            MemberState::Maint
        } else if admin & (0x08 | 0x10) != 0 {
            MemberState::Drain
        } else {
            MemberState::Ready
        };
        out.push(MemberReadback {
            target: get(name).to_string(),
            address: format!("{}:{}", get(addr), get(port)),
            weight: from_haproxy_weight(get(weight).parse().unwrap_or(0)),
            state,
        });
    }
    Ok(out)
}

/// Parses `show stat` CSV into server rows (frontends and backend totals are skipped).
pub fn parse_stat(answer: &str) -> AdapterResult<Vec<ServerStat>> {
    let mut lines = answer.lines();
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .ok_or_else(|| AdapterError::Permanent(format!("haproxy 'show stat' answered: {answer}")))?
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let num = |f: &[&str], name: &str| {
        col(name).and_then(|i| f.get(i)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let text = |f: &[&str], name: &str| {
        col(name).and_then(|i| f.get(i)).map(|v| (*v).to_string()).unwrap_or_default()
    };
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| !matches!(f.get(1).copied(), Some("FRONTEND" | "BACKEND") | None))
        .map(|f| ServerStat {
            backend: text(&f, "pxname"),
            server: text(&f, "svname"),
            status: text(&f, "status"),
            scur: num(&f, "scur"),
            stot: num(&f, "stot"),
            hrsp_5xx: num(&f, "hrsp_5xx"),
            econ: num(&f, "econ"),
            eresp: num(&f, "eresp"),
            rtime_ms: num(&f, "rtime"),
            check_status: text(&f, "check_status"),
        })
        .collect())
}

fn state_word(state: MemberState) -> &'static str {
    match state {
        MemberState::Ready => "ready",
        MemberState::Drain => "drain",
        MemberState::Maint => "maint",
    }
}

#[async_trait]
impl Router for Haproxy {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let version = self.command("show version").await?.trim().to_string();
        if version.is_empty() || version.contains("Unknown command") {
            return Err(AdapterError::Permanent(format!(
                "{} does not look like an HAProxy Runtime API: {version}",
                self.cfg.runtime_api
            )));
        }
        // `set server` needs the admin level; `show servers state` of no backend is harmless.
        let probe = self.command("set server switchyard-check/none weight 1").await?;
        let admin = !probe.contains("Permission denied");
        let mut capabilities = vec!["read-back".to_string(), "stats".to_string()];
        if admin {
            capabilities.extend(["membership", "weights", "drain"].map(String::from));
        }
        Ok(BackendCheck {
            version: Some(format!("HAProxy {version}")),
            capabilities,
            detail: if admin {
                format!("runtime API at {} (admin level)", self.cfg.runtime_api)
            } else {
                format!(
                    "runtime API at {} is not at admin level: Switchyard can read but not change",
                    self.cfg.runtime_api
                )
            },
        })
    }

    async fn set_weight(&self, pool: &str, target: &str, weight: Weight) -> AdapterResult<()> {
        server_name(target)?;
        let b = self.backend(pool);
        self.quiet(&format!("set server {b}/{target} weight {}", to_haproxy_weight(weight))).await
    }

    async fn set_state(&self, pool: &str, target: &str, state: MemberState) -> AdapterResult<()> {
        server_name(target)?;
        let b = self.backend(pool);
        self.quiet(&format!("set server {b}/{target} state {}", state_word(state))).await
    }

    async fn add_member(
        &self,
        pool: &str,
        target: &str,
        address: &str,
        weight: Weight,
    ) -> AdapterResult<()> {
        let b = self.backend(pool).to_string();
        let parsed = super::member_address(target, address)?;
        let (address, host, port) = (parsed.to_string(), parsed.host(), parsed.port());
        let address = address.as_str();
        match self.has(pool, target).await? {
            Some(m) if m.address == address => {}
            Some(_) => {
                // Same name, new address: move it (HAProxy keeps its stats and state).
                self.quiet(&format!("set server {b}/{target} addr {host} port {port}")).await?;
            }
            None => {
                let check = if self.cfg.health_checks { " check" } else { "" };
                let answer = self
                    .command(&format!(
                        "add server {b}/{target} {address} weight {}{check}",
                        to_haproxy_weight(weight)
                    ))
                    .await?;
                if !answer.contains("New server registered") && !answer.contains("Already exists") {
                    return Err(refused(&format!("add server {b}/{target}"), answer.trim()));
                }
            }
        }
        self.set_weight(pool, target, weight).await?;
        if self.cfg.health_checks {
            self.quiet(&format!("enable health {b}/{target}")).await?;
        }
        self.set_state(pool, target, MemberState::Ready).await
    }

    async fn remove_member(&self, pool: &str, target: &str) -> AdapterResult<()> {
        server_name(target)?;
        let b = self.backend(pool).to_string();
        if self.has(pool, target).await?.is_none() {
            return Ok(());
        }
        self.set_state(pool, target, MemberState::Maint).await?;
        let answer = self.command(&format!("del server {b}/{target}")).await?;
        if answer.contains("Server deleted") || answer.contains("No such server") {
            Ok(())
        } else {
            Err(refused(&format!("del server {b}/{target}"), answer.trim()))
        }
    }

    async fn await_drained(
        &self,
        pool: &str,
        target: &str,
        timeout_secs: u64,
    ) -> AdapterResult<bool> {
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        let backend = self.backend(pool).to_string();
        loop {
            let rows = self.stats(Some(pool)).await?;
            let busy = rows
                .iter()
                .find(|r| r.backend == backend && r.server == target)
                .map_or(0, |r| r.scur);
            if busy == 0 {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn read_pool(&self, pool: &str) -> AdapterResult<Vec<MemberReadback>> {
        self.servers(pool).await
    }

    fn weight_resolution(&self) -> u32 {
        // One HAProxy weight step is 10000 / 256 ≈ 39 basis points.
        40
    }
}

/// A target becomes an HAProxy server name: it must be a valid target name (one word).
fn server_name(target: &str) -> AdapterResult<()> {
    app::domain::ids::Name::parse(target).map(drop).map_err(|_| {
        AdapterError::Permanent(format!(
            "refused {target:?} as an HAProxy server name: not a valid target name"
        ))
    })
}

/// A backend or server name HAProxy reads as one word.
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_round_trip_to_the_nearest_haproxy_step() {
        let w = |bp| Weight::from_basis_points(bp).expect("weight");
        assert_eq!(to_haproxy_weight(Weight::FULL), 256);
        assert_eq!(to_haproxy_weight(Weight::ZERO), 0);
        assert_eq!(to_haproxy_weight(w(2500)), 64);
        assert_eq!(to_haproxy_weight(w(100)), 3);
        assert_eq!(from_haproxy_weight(64).basis_points(), 2500);
        assert_eq!(from_haproxy_weight(256), Weight::FULL);
        for bp in (0..=10_000).step_by(7) {
            let back = from_haproxy_weight(to_haproxy_weight(w(bp))).basis_points();
            assert!(back.abs_diff(bp) <= 20, "{bp} → {back}");
        }
    }

    #[test]
    fn servers_state_is_parsed_by_column_name() {
        let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord\n\
3 web 1 web-1 127.0.0.1 2 0 64 1 0 1 0 0 0 0 0 0 - 9101 -\n\
3 web 2 web-2 127.0.0.1 2 8 64 1 0 1 0 0 0 0 0 0 - 9102 -\n\
3 web 3 web-3 127.0.0.1 0 1 3 1 0 1 0 0 0 0 0 0 - 9103 -\n";
        let m = parse_servers_state(answer, "web").expect("parsed");
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].target, "web-1");
        assert_eq!(m[0].address, "127.0.0.1:9101");
        assert_eq!(m[0].weight.basis_points(), 2500);
        assert_eq!(m[0].state, MemberState::Ready);
        assert_eq!(m[1].state, MemberState::Drain);
        assert_eq!(m[2].state, MemberState::Maint);
        let err = parse_servers_state("Can't find backend.\n", "nope").expect_err("refused");
        assert!(err.to_string().contains("Can't find backend"), "{err}");
    }

    #[test]
    fn stat_rows_skip_frontends_and_backend_totals() {
        let answer = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime\n\
web,FRONTEND,,,0,0,1000,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,\n\
web,web-1,0,0,2,3,,120,0,0,,0,,1,4,0,0,UP,64,1,0,,,1,,,1,3,1,,0,,2,0,,0,L7OK,,,0,100,0,0,7,0,,,,0,0,0,,,,,-1,,,0,0,12,15\n\
web,BACKEND,0,0,2,3,,120,0,0,,0,,1,4,0,0,UP,64,1,0,,,1,,,1,3,0,,0,,1,0,,0,,,,0,100,0,0,7,0,,,,0,0,0,,,,,-1,,,0,0,12,15\n";
        let rows = parse_stat(answer).expect("parsed");
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.backend.as_str(), r.server.as_str()), ("web", "web-1"));
        assert_eq!(
            (r.scur, r.stot, r.hrsp_5xx, r.econ, r.eresp, r.rtime_ms),
            (2, 120, 7, 1, 4, 12)
        );
        assert_eq!(r.check_status, "L7OK");
    }
}
