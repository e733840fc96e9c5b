//! nginx router: Switchyard owns one upstream file, which the operator's `nginx.conf`
//! includes in its `http` block. Each pool is an `upstream` block; each member a `server` line
//! with its weight, `down` when it takes no traffic, and a trailing comment that names the
//! target and its state:
//!
//! ```text
//! upstream web {
//!     server 127.0.0.1:9101 weight=2500; # switchyard target=web-1 state=ready
//!     server 127.0.0.1:9102 weight=2500 down; # switchyard target=web-2 state=drain
//! }
//! ```
//!
//! A change writes the whole file atomically, runs `nginx -t`, and only then reloads. When
//! `nginx -t` fails, the previous file is put back and nothing is reloaded: traffic is untouched
//! and the step fails with nginx's own message. After a reload the driver waits for the new
//! worker generation, so a call returns only once nginx serves the new upstreams.
//!
//! Read-back parses the file (so an out-of-band edit is seen). Drain: open-source nginx has no
//! per-server drain, so a draining member is `down` (no new requests) and the old workers of
//! the previous generation finish the requests in flight; [`Router::await_drained`] waits
//! until those workers have exited. Weights: nginx weights are relative integers ≥ 1, so a
//! share is written in basis points and a zero share is `down`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use app::domain::ids::Weight;
use app::domain::plan::MemberState;
use async_trait::async_trait;
use serde::Deserialize;

use super::{AdapterError, AdapterResult, BackendCheck, MemberReadback, Router};

pub const KIND: &str = "nginx";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file Switchyard owns; `nginx.conf` must `include` it inside `http { }`.
    pub upstream_file: PathBuf,
    /// The main configuration (`-c`); nginx's default when unset.
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// nginx's prefix (`-p`), when not the default.
    #[serde(default)]
    pub prefix: Option<PathBuf>,
    /// The master's pid file, to follow worker generations (reload and drain).
    pub pid_file: PathBuf,
    /// The nginx program.
    #[serde(default = "default_program")]
    pub program: PathBuf,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_program() -> PathBuf {
    PathBuf::from("/usr/sbin/nginx")
}

fn default_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    address: String,
    weight: Weight,
    state: MemberState,
}

type Pools = BTreeMap<String, BTreeMap<String, Member>>;

pub struct Nginx {
    cfg: Config,
    /// One change at a time: each is write, test, reload.
    lock: tokio::sync::Mutex<()>,
}

const MARK: &str = "# switchyard";

fn render(pools: &Pools) -> String {
    let mut out = String::from(
        "# Managed by Switchyard: changes made here are reported as drift, then overwritten\n# only by a campaign step an operator starts.\n",
    );
    for (pool, members) in pools {
        out.push_str(&format!("upstream {pool} {{\n"));
        if members.is_empty() {
            // nginx refuses an upstream without servers.
            out.push_str("    server 127.0.0.1:9 down; # switchyard placeholder\n");
        }
        for (target, m) in members {
            let nginx_weight = m.weight.basis_points().max(1);
            let down =
                if m.state != MemberState::Ready || m.weight.is_zero() { " down" } else { "" };
            out.push_str(&format!(
                "    server {} weight={nginx_weight}{down}; {MARK} target={target} state={}\n",
                m.address, m.state
            ));
        }
        out.push_str("}\n");
    }
    out
}

fn parse(text: &str) -> AdapterResult<Pools> {
    let mut pools = Pools::new();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            AdapterError::Permanent(format!(
                "the nginx upstream file, line {}: cannot read '{line}'",
                n + 1
            ))
        };
        if let Some(rest) = line.strip_prefix("upstream ") {
            let name = rest.trim_end_matches('{').trim().to_string();
            pools.entry(name.clone()).or_default();
            current = Some(name);
        } else if line == "}" {
            current = None;
        } else if let Some(rest) = line.strip_prefix("server ") {
            let pool = current.as_ref().ok_or_else(bad)?;
            let (directive, comment) = rest.split_once(';').ok_or_else(bad)?;
            let comment = comment.trim();
            if comment.contains("placeholder") {
                continue;
            }
            let mut words = directive.split_whitespace();
            let address = words.next().ok_or_else(bad)?.to_string();
            let mut weight = 1_u32;
            let mut down = false;
            for w in words {
                if let Some(v) = w.strip_prefix("weight=") {
                    weight = v.parse().map_err(|_| bad())?;
                } else if w == "down" {
                    down = true;
                }
            }
            let tag = |key: &str| {
                comment
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                    .map(str::to_string)
            };
            // A line someone added by hand has no target tag: it is named by its address.
            let target = tag("target").unwrap_or_else(|| address.clone());
            let noted = match tag("state").as_deref() {
                Some("drain") => MemberState::Drain,
                Some("maint") => MemberState::Maint,
                _ => MemberState::Ready,
            };
            let (state, weight) = match (down, noted) {
                (false, _) => (MemberState::Ready, weight),
                (true, MemberState::Ready) => (MemberState::Ready, 0),
                (true, s) => (s, weight),
            };
            pools.entry(pool.clone()).or_default().insert(
                target,
                Member { address, weight: Weight::saturating_from_basis_points(weight), state },
            );
        }
    }
    Ok(pools)
}

/// The pids of `parent`'s children and whether each is an old worker shutting down.
fn children(parent: u32) -> Vec<(u32, bool)> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command sits in parentheses and may contain spaces: fields follow the last ')'.
            let after = stat.rsplit_once(')')?.1;
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            if ppid != parent {
                return None;
            }
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd);
            Some((pid, cmd.contains("shutting down")))
        })
        .collect()
}

impl Nginx {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        if cfg.upstream_file.as_os_str().is_empty() {
            return Err(AdapterError::Permanent("nginx: upstream_file is empty".into()));
        }
        Ok(Self { cfg, lock: tokio::sync::Mutex::new(()) })
    }

    fn read(&self) -> AdapterResult<(String, Pools)> {
        let text = match std::fs::read_to_string(&self.cfg.upstream_file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(AdapterError::Permanent(format!(
                    "cannot read {}: {e}",
                    self.cfg.upstream_file.display()
                )));
            }
        };
        let pools = parse(&text)?;
        Ok((text, pools))
    }

    fn write_atomically(&self, text: &str) -> AdapterResult<()> {
        let path = &self.cfg.upstream_file;
        let tmp = path.with_extension("switchyard-tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| AdapterError::Permanent(format!("cannot write {}: {e}", path.display())))
    }

    fn nginx(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.cfg.program);
        if let Some(conf) = &self.cfg.config {
            c.arg("-c").arg(conf);
        }
        if let Some(prefix) = &self.cfg.prefix {
            c.arg("-p").arg(prefix);
        }
        c.args(args).kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> AdapterResult<(bool, String)> {
        let timeout = Duration::from_secs(self.cfg.timeout_secs);
        let out = tokio::time::timeout(timeout, self.nginx(args).output())
            .await
            .map_err(|_| {
                AdapterError::Transient(format!("nginx {} took over {timeout:?}", args.join(" ")))
            })?
            .map_err(|e| {
                AdapterError::Permanent(format!("cannot run {}: {e}", self.cfg.program.display()))
            })?;
        let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Ok((out.status.success(), text))
    }

    fn master(&self) -> AdapterResult<u32> {
        std::fs::read_to_string(&self.cfg.pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .ok_or_else(|| {
                AdapterError::Transient(format!(
                    "nginx is not running (no live master in {})",
                    self.cfg.pid_file.display()
                ))
            })
    }

    /// Applies `f` to the pools: write, `nginx -t`, reload, wait for the new workers. A rejected
    /// configuration puts the previous file back and reloads nothing.
    async fn change(&self, f: impl FnOnce(&mut Pools) -> AdapterResult<()>) -> AdapterResult<()> {
        let _one = self.lock.lock().await;
        let master = self.master()?;
        let (old_text, mut pools) = self.read()?;
        f(&mut pools)?;
        let new_text = render(&pools);
        if new_text == old_text {
            return Ok(());
        }
        self.write_atomically(&new_text)?;
        let (ok, msg) = self.run(&["-t", "-q"]).await?;
        if !ok {
            self.write_atomically(&old_text)?;
            return Err(AdapterError::Permanent(format!(
                "nginx rejected the new upstreams, so nothing was reloaded and traffic is unchanged: {msg}"
            )));
        }
        let before: Vec<u32> = children(master).into_iter().map(|(p, _)| p).collect();
        let (ok, msg) = self.run(&["-s", "reload"]).await?;
        if !ok {
            return Err(AdapterError::Transient(format!("nginx reload failed: {msg}")));
        }
        // The reload is done when a worker of the new generation runs and every worker of
        // the old one has stopped accepting (it is shutting down, or gone).
        let deadline = Instant::now() + Duration::from_secs(self.cfg.timeout_secs);
        loop {
            let now = children(master);
            let new_runs = now.iter().any(|(p, old)| !old && !before.contains(p));
            let old_accepts = now.iter().any(|(p, old)| !old && before.contains(p));
            if new_runs && !old_accepts {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(AdapterError::Transient(format!(
                    "nginx started no new workers within {}s of the reload; see its error log",
                    self.cfg.timeout_secs
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn member<'a>(pools: &'a mut Pools, pool: &str, target: &str) -> AdapterResult<&'a mut Member> {
        pools
            .get_mut(pool)
            .and_then(|p| p.get_mut(target))
            .ok_or_else(|| AdapterError::Permanent(format!("{target} is not a member of {pool}")))
    }
}

#[async_trait]
impl Router for Nginx {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let (_, version) = self.run(&["-v"]).await?;
        let master = self.master()?;
        let (ok, msg) = self.run(&["-t", "-q"]).await?;
        if !ok {
            return Err(AdapterError::Permanent(format!("nginx -t fails: {msg}")));
        }
        let (_, pools) = self.read()?;
        Ok(BackendCheck {
            version: Some(version.trim_start_matches("nginx version: ").to_string()),
            capabilities: ["membership", "weights", "drain", "read-back"]
                .map(String::from)
                .to_vec(),
            detail: format!(
                "master pid {master}; {} manages {} upstream(s)",
                self.cfg.upstream_file.display(),
                pools.len()
            ),
        })
    }

    async fn set_weight(&self, pool: &str, target: &str, weight: Weight) -> AdapterResult<()> {
        self.change(|p| {
            Self::member(p, pool, target)?.weight = weight;
            Ok(())
        })
        .await
    }

    async fn set_state(&self, pool: &str, target: &str, state: MemberState) -> AdapterResult<()> {
        self.change(|p| {
            Self::member(p, pool, target)?.state = state;
            Ok(())
        })
        .await
    }

    async fn add_member(
        &self,
        pool: &str,
        target: &str,
        address: &str,
        weight: Weight,
    ) -> AdapterResult<()> {
        let address = super::member_address(target, address)?.to_string();
        self.change(|p| {
            p.entry(pool.to_string())
                .or_default()
                .insert(target.to_string(), Member { address, weight, state: MemberState::Ready });
            Ok(())
        })
        .await
    }

    async fn remove_member(&self, pool: &str, target: &str) -> AdapterResult<()> {
        self.change(|p| {
            if let Some(members) = p.get_mut(pool) {
                members.remove(target);
            }
            Ok(())
        })
        .await
    }

    async fn await_drained(
        &self,
        _pool: &str,
        _target: &str,
        timeout_secs: u64,
    ) -> AdapterResult<bool> {
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        loop {
            let master = self.master()?;
            if !children(master).iter().any(|(_, old)| *old) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn read_pool(&self, pool: &str) -> AdapterResult<Vec<MemberReadback>> {
        let (_, pools) = self.read()?;
        Ok(pools
            .get(pool)
            .map(|m| {
                m.iter()
                    .map(|(t, m)| MemberReadback {
                        target: t.clone(),
                        address: m.address.clone(),
                        weight: m.weight,
                        state: m.state,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_file_round_trips_and_hand_edits_are_read_as_nginx_would() {
        let mut pools = Pools::new();
        let w = |bp| Weight::from_basis_points(bp).expect("weight");
        let m = |a: &str, bp, s| Member { address: a.into(), weight: w(bp), state: s };
        pools.entry("web".into()).or_default().extend([
            ("web-1".to_string(), m("127.0.0.1:9101", 2500, MemberState::Ready)),
            ("web-2".to_string(), m("127.0.0.1:9102", 2500, MemberState::Drain)),
            ("web-3".to_string(), m("127.0.0.1:9103", 0, MemberState::Ready)),
        ]);
        pools.entry("empty".into()).or_default();
        let text = render(&pools);
        assert!(
            text.contains(
                "server 127.0.0.1:9101 weight=2500; # switchyard target=web-1 state=ready"
            )
        );
        assert!(text.contains("server 127.0.0.1:9102 weight=2500 down;"));
        assert!(text.contains("server 127.0.0.1:9103 weight=1 down;"));
        assert!(text.contains("server 127.0.0.1:9 down; # switchyard placeholder"));
        assert_eq!(parse(&text).expect("parsed"), pools);

        // Someone removes `down` from the draining member and changes a weight by hand.
        let edited = text
            .replace(
                "weight=2500 down; # switchyard target=web-2",
                "weight=2500; # switchyard target=web-2",
            )
            .replace("9101 weight=2500", "9101 weight=7000");
        let back = parse(&edited).expect("parsed");
        assert_eq!(back["web"]["web-2"].state, MemberState::Ready, "nginx would send it traffic");
        assert_eq!(back["web"]["web-1"].weight, w(7000));
        let broken = parse("upstream web {\n server 127.0.0.1:1 weight=x;\n}\n").expect_err("bad");
        assert!(broken.to_string().contains("line 2"), "{broken}");
    }
}
