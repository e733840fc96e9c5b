//! Script provider: the operator's own commands create, replace, destroy and describe
//! instances, for platforms Switchyard has no driver for. The scripts are the source of truth;
//! this provider keeps no state of its own beyond the last lines each target's commands printed.
//!
//! Each command is a program and its arguments, run **without a shell** (in `workdir` when
//! set): a list of words, or one line split into words when the settings are read
//! ([`super::argv`]). The placeholders `{action}`, `{target}`, `{release}` and `{group}` may
//! appear inside words and are filled in as whole arguments, never parsed again. Each command
//! gets the server's environment, the configured `env` (write-only: its values are secrets),
//! and these variables (empty when they do not apply):
//!
//! | variable | value |
//! |---|---|
//! | `SWITCHYARD_ACTION` | `create`, `replace`, `destroy` or `describe` |
//! | `SWITCHYARD_TARGET` | the instance's name |
//! | `SWITCHYARD_RELEASE` | the release to run (create, replace) |
//! | `SWITCHYARD_GROUP` | the target's group (create) |
//!
//! **Exit status**: `0` success; `75` (`EX_TEMPFAIL`) a temporary failure that the engine
//! retries; anything else, or death by a signal, a permanent failure reported with the last
//! lines of stderr. A command still running after `timeout_secs` is killed with its whole
//! process group and reported as temporary.
//!
//! **Output**: `describe` prints the instance as JSON,
//! `{"address": "10.0.0.5:8080", "release": "v2", "health_url": "http://10.0.0.5:8080/healthz"}`,
//! and prints nothing (or `null`) when the instance does not exist. `create` and `replace` may
//! print the same JSON; when they don't, the provider runs `describe`. The JSON is either the
//! whole of stdout or its last line, so progress lines can come before it.
//!
//! Commands must be idempotent: the engine repeats a call after a temporary failure or a
//! restart, and always reads the result back with `describe`. A command that leaves a process
//! running must redirect that process's output: once the shell exits, the provider stops
//! reading its pipes.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::argv::Template;
use super::{AdapterError, AdapterResult, BackendCheck, Instance, Provider};

pub const KIND: &str = "script";

/// `EX_TEMPFAIL` from `sysexits.h`: "try again later".
pub const EXIT_TEMPORARY: i32 = 75;
/// Lines kept per target for the step log.
const LOG_LINES: usize = 50;
/// Lines of stderr quoted in an error message.
const TAIL_LINES: usize = 5;
/// Output kept from one call; the rest is read and dropped so the command never blocks.
const MAX_OUTPUT: usize = 1 << 20;
/// How long to keep reading after the shell exited (a background process may hold its pipes).
const DRAIN: Duration = Duration::from_millis(500);

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub create: Template,
    pub replace: Template,
    pub destroy: Template,
    pub describe: Template,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Where commands run; the server's working directory when unset.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Extra environment variables for every command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_timeout_secs() -> u64 {
    60
}

/// What a command may use; the same values are in the `SWITCHYARD_*` variables.
pub const PLACEHOLDERS: &[&str] = &["action", "target", "release", "group"];

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: BTreeMap<&str, &str> =
            self.env.keys().map(|k| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("Config")
            .field("create", &self.create)
            .field("replace", &self.replace)
            .field("destroy", &self.destroy)
            .field("describe", &self.describe)
            .field("timeout_secs", &self.timeout_secs)
            .field("workdir", &self.workdir)
            .field("env", &env)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Replace,
    Destroy,
    Describe,
}

impl Action {
    const ALL: [Action; 4] = [Action::Create, Action::Replace, Action::Destroy, Action::Describe];

    fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Destroy => "destroy",
            Action::Describe => "describe",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// What a running command printed so far, shared by its stdout and stderr readers.
#[derive(Default)]
struct Captured {
    lines: Vec<(Stream, String)>,
    bytes: usize,
}

/// What one finished command left behind.
struct Finished {
    /// `None` when it was killed at the timeout.
    status: Option<ExitStatus>,
    lines: Vec<(Stream, String)>,
    elapsed: Duration,
}

impl Finished {
    fn stdout(&self) -> String {
        let out: Vec<&str> =
            self.lines.iter().filter(|(s, _)| *s == Stream::Out).map(|(_, l)| l.as_str()).collect();
        out.join("\n")
    }

    /// The last lines of stderr, for an error message.
    fn stderr_tail(&self) -> String {
        let err: Vec<&str> =
            self.lines.iter().filter(|(s, _)| *s == Stream::Err).map(|(_, l)| l.as_str()).collect();
        let tail = &err[err.len().saturating_sub(TAIL_LINES)..];
        if tail.is_empty() { String::new() } else { format!(":\n{}", tail.join("\n")) }
    }
}

pub struct Script {
    cfg: Config,
    logs: Mutex<BTreeMap<String, VecDeque<String>>>,
}

impl Script {
    pub fn new(cfg: Config) -> AdapterResult<Self> {
        for action in Action::ALL {
            command_of(&cfg, action).check(PLACEHOLDERS).map_err(|why| {
                AdapterError::Permanent(format!("the '{}' command: {why}", action.as_str()))
            })?;
        }
        if cfg.timeout_secs == 0 || cfg.timeout_secs > 24 * 3600 {
            return Err(AdapterError::Permanent(format!(
                "timeout_secs must be between 1 and 86400, not {}",
                cfg.timeout_secs
            )));
        }
        for key in cfg.env.keys() {
            let valid = !key.is_empty()
                && !key.starts_with(|c: char| c.is_ascii_digit())
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(AdapterError::Permanent(format!(
                    "env: '{key}' is not a valid variable name"
                )));
            }
            if key.starts_with("SWITCHYARD_") {
                return Err(AdapterError::Permanent(format!(
                    "env: '{key}' is set by Switchyard itself"
                )));
            }
        }
        Ok(Self { cfg, logs: Mutex::new(BTreeMap::new()) })
    }

    /// The last lines the commands for `target` printed, oldest first: stdout and stderr
    /// (marked), and how each call ended. A `describe` that succeeded adds only its stderr.
    pub fn log(&self, target: &str) -> Vec<String> {
        self.logs
            .lock()
            .ok()
            .and_then(|l| l.get(target).map(|l| l.iter().cloned().collect()))
            .unwrap_or_default()
    }

    fn remember(&self, action: Action, target: &str, done: &Finished) {
        let quiet = action == Action::Describe && done.status.is_some_and(|s| s.success());
        let name = action.as_str();
        let mut lines: Vec<String> = done
            .lines
            .iter()
            .filter(|(s, _)| !quiet || *s == Stream::Err)
            .map(|(s, l)| match s {
                Stream::Out => format!("[{name}] {l}"),
                Stream::Err => format!("[{name} stderr] {l}"),
            })
            .collect();
        if !quiet {
            let secs = done.elapsed.as_secs_f64();
            lines.push(match done.status {
                Some(s) => format!("[{name}] {} after {secs:.1}s", describe_status(s)),
                None => format!("[{name}] killed after {secs:.1}s (timeout)"),
            });
        }
        if lines.is_empty() {
            return;
        }
        if let Ok(mut logs) = self.logs.lock() {
            let log = logs.entry(target.to_string()).or_default();
            for line in lines {
                if log.len() == LOG_LINES {
                    log.pop_front();
                }
                log.push_back(line);
            }
        }
    }

    /// Runs the command for `action` and maps how it ended to the exit-code convention;
    /// `Ok` carries its stdout.
    #[tracing::instrument(skip_all, fields(action = action.as_str(), instance = target), err)]
    async fn run(
        &self,
        action: Action,
        target: &str,
        release: &str,
        group: &str,
    ) -> AdapterResult<String> {
        let name = action.as_str();
        let done = self.execute(action, target, release, group).await?;
        self.remember(action, target, &done);
        match done.status {
            None => Err(AdapterError::Transient(format!(
                "{name} {target}: killed after {}s (timeout){}",
                self.cfg.timeout_secs,
                done.stderr_tail()
            ))),
            Some(s) if s.success() => Ok(done.stdout()),
            Some(s) if s.code() == Some(EXIT_TEMPORARY) => Err(AdapterError::Transient(format!(
                "{name} {target}: {} (temporary failure){}",
                describe_status(s),
                done.stderr_tail()
            ))),
            Some(s) => Err(AdapterError::Permanent(format!(
                "{name} {target}: {}{}",
                describe_status(s),
                done.stderr_tail()
            ))),
        }
    }

    async fn execute(
        &self,
        action: Action,
        target: &str,
        release: &str,
        group: &str,
    ) -> AdapterResult<Finished> {
        let argv = command_of(&self.cfg, action).render(&[
            ("action", action.as_str()),
            ("target", target),
            ("release", release),
            ("group", group),
        ]);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(&self.cfg.env)
            .env("SWITCHYARD_ACTION", action.as_str())
            .env("SWITCHYARD_TARGET", target)
            .env("SWITCHYARD_RELEASE", release)
            .env("SWITCHYARD_GROUP", group)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills everything the command started.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(dir) = &self.cfg.workdir {
            cmd.current_dir(dir);
        }
        let started = tokio::time::Instant::now();
        let mut child = cmd.spawn().map_err(|e| {
            AdapterError::Permanent(format!(
                "{} {target}: cannot start {}: {e}",
                action.as_str(),
                argv[0]
            ))
        })?;
        let lines: Arc<Mutex<Captured>> = Arc::default();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect(out, Stream::Out, lines.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect(err, Stream::Err, lines.clone())));
        }
        let timeout = Duration::from_secs(self.cfg.timeout_secs);
        let status = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => Some(status),
            Ok(Err(e)) => {
                readers.iter().for_each(|r| r.abort());
                return Err(AdapterError::Transient(format!(
                    "{} {target}: waiting for the command failed: {e}",
                    action.as_str()
                )));
            }
            Err(_) => {
                if let Some(pid) = child.id() {
                    kill_group(pid).await;
                }
                let _ = child.start_kill();
                let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                None
            }
        };
        let drained = tokio::time::Instant::now() + DRAIN;
        for r in &mut readers {
            if tokio::time::timeout_at(drained, &mut *r).await.is_err() {
                r.abort();
            }
        }
        let lines = lines.lock().map(|l| l.lines.clone()).unwrap_or_default();
        Ok(Finished { status, lines, elapsed: started.elapsed() })
    }

    /// `create` or `replace`, then the instance: from their output, else from `describe`.
    async fn ensure(
        &self,
        action: Action,
        target: &str,
        release: &str,
        group: &str,
    ) -> AdapterResult<Instance> {
        let out = self.run(action, target, release, group).await?;
        if let Ok(Some(instance)) = parse_instance(target, &out) {
            return Ok(instance);
        }
        self.describe(target).await?.ok_or_else(|| {
            AdapterError::Transient(format!(
                "{} {target} succeeded, but describe does not show the instance",
                action.as_str()
            ))
        })
    }
}

fn command_of(cfg: &Config, action: Action) -> &Template {
    match action {
        Action::Create => &cfg.create,
        Action::Replace => &cfg.replace,
        Action::Destroy => &cfg.destroy,
        Action::Describe => &cfg.describe,
    }
}

fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (s.code(), s.signal()) {
        (Some(code), _) => format!("exited {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "ended".into(),
    }
}

/// Reads `stream` to its end, keeping up to [`MAX_OUTPUT`] bytes of it as lines.
async fn collect(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    kind: Stream,
    lines: Arc<Mutex<Captured>>,
) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0_u8; 8192];
    let keep = |line: &[u8]| {
        if let Ok(mut l) = lines.lock()
            && l.bytes < MAX_OUTPUT
        {
            l.bytes += line.len();
            let text = String::from_utf8_lossy(line);
            l.lines.push((kind, text.trim_end_matches(['\n', '\r']).to_string()));
        }
    };
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            keep(&line);
        }
        if pending.len() > 64 * 1024 {
            keep(&std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        keep(&pending);
    }
}

/// Kills the process group `pgid` (the command's shell is its leader).
async fn kill_group(pgid: u32) {
    let killed = tokio::process::Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if !killed.is_ok_and(|s| s.success()) {
        tracing::warn!(pgid, "could not kill a timed-out command's process group");
    }
}

#[derive(Deserialize)]
struct Printed {
    address: String,
    release: String,
    health_url: String,
}

/// The instance a command printed: all of stdout, or its last non-empty line, as JSON;
/// nothing or `null` means there is none.
fn parse_instance(target: &str, stdout: &str) -> Result<Option<Instance>, String> {
    let text = stdout.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let printed = serde_json::from_str::<Option<Printed>>(text)
        .or_else(|_| serde_json::from_str::<Option<Printed>>(last))
        .map_err(|e| {
            let shown: String = last.chars().take(200).collect();
            format!(
                "expected {{\"address\", \"release\", \"health_url\"}} as JSON, or nothing; \
                 got '{shown}' ({e})"
            )
        })?;
    Ok(printed.map(|p| Instance {
        target: target.to_string(),
        address: p.address,
        release: p.release,
        health_url: p.health_url,
    }))
}

/// Whether `program` resolves to an executable file, relative to `workdir` or on `PATH`.
fn executable(program: &str, workdir: Option<&Path>) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let runnable =
        |p: &Path| p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let path = Path::new(program);
        return match workdir {
            Some(dir) if path.is_relative() => runnable(&dir.join(path)),
            _ => runnable(path),
        };
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| runnable(&d.join(program))))
}

#[async_trait]
impl Provider for Script {
    async fn log_tail(&self, target: &str) -> Vec<String> {
        self.log(target)
    }

    async fn check(&self) -> AdapterResult<BackendCheck> {
        let workdir = self.cfg.workdir.as_deref();
        if let Some(dir) = workdir
            && !dir.is_dir()
        {
            return Err(AdapterError::Permanent(format!(
                "workdir '{}' is not a directory",
                dir.display()
            )));
        }
        let mut programs = Vec::new();
        for action in Action::ALL {
            let program = command_of(&self.cfg, action).program();
            if program.contains('{') {
                continue;
            }
            if !executable(program, workdir) {
                return Err(AdapterError::Permanent(format!(
                    "{} command: '{program}' is not an executable file{}",
                    action.as_str(),
                    if program.contains('/') { "" } else { " on PATH" }
                )));
            }
            if !programs.contains(&program) {
                programs.push(program);
            }
        }
        Ok(BackendCheck {
            version: None,
            capabilities: ["create", "replace", "destroy", "describe", "logs"]
                .map(String::from)
                .to_vec(),
            detail: format!(
                "runs commands without a shell (timeout {}s); found {}",
                self.cfg.timeout_secs,
                programs.join(", ")
            ),
        })
    }

    async fn create(&self, target: &str, release: &str, group: &str) -> AdapterResult<Instance> {
        self.ensure(Action::Create, target, release, group).await
    }

    async fn replace(&self, target: &str, release: &str) -> AdapterResult<Instance> {
        self.ensure(Action::Replace, target, release, "").await
    }

    async fn destroy(&self, target: &str) -> AdapterResult<()> {
        self.run(Action::Destroy, target, "", "").await.map(|_| ())
    }

    async fn describe(&self, target: &str) -> AdapterResult<Option<Instance>> {
        let out = self.run(Action::Describe, target, "", "").await?;
        parse_instance(target, &out)
            .map_err(|e| AdapterError::Permanent(format!("describe {target}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: serde_json::Value) -> Result<Config, serde_json::Error> {
        serde_json::from_value(value)
    }

    fn commands() -> serde_json::Value {
        serde_json::json!({
            "create": "./deploy.sh", "replace": "./deploy.sh", "destroy": "./deploy.sh",
            "describe": "./deploy.sh"
        })
    }

    #[test]
    fn settings_need_all_four_commands_and_refuse_unknown_fields() {
        let missing = config(serde_json::json!({ "create": "a", "replace": "b", "destroy": "c" }));
        let missing = missing.expect_err("describe is missing").to_string();
        assert!(missing.contains("describe"), "{missing}");
        let mut extra = commands();
        extra["timeout"] = 5.into();
        assert!(config(extra).is_err_and(|e| e.to_string().contains("unknown field `timeout`")));
        let ok = config(commands()).expect("four commands are enough");
        assert_eq!(ok.timeout_secs, 60);
    }

    #[test]
    fn an_empty_command_a_zero_timeout_and_switchyard_variables_are_refused() {
        let mut empty = commands();
        empty["destroy"] = " ".into();
        let err = config(empty).expect_err("refused");
        assert!(err.to_string().contains("command is empty"), "{err}");
        let mut typo = commands();
        typo["create"] = "./deploy.sh {relaese}".into();
        let err = Script::new(config(typo).expect("parses")).err().expect("refused");
        assert!(
            err.to_string().contains("'create' command: unknown placeholder {relaese}"),
            "{err}"
        );

        let mut zero = commands();
        zero["timeout_secs"] = 0.into();
        assert!(Script::new(config(zero).expect("parses")).is_err());

        let mut reserved = commands();
        reserved["env"] = serde_json::json!({ "SWITCHYARD_TARGET": "x" });
        let err = Script::new(config(reserved).expect("parses")).err().expect("refused");
        assert!(err.to_string().contains("set by Switchyard"), "{err}");

        let mut bad_name = commands();
        bad_name["env"] = serde_json::json!({ "A-B": "x" });
        assert!(Script::new(config(bad_name).expect("parses")).is_err());
    }

    #[test]
    fn printed_instances_are_read_from_all_of_stdout_or_its_last_line() {
        let json = r#"{"address": "10.0.0.5:8080", "release": "v2", "health_url": "http://10.0.0.5:8080/h"}"#;
        let one = parse_instance("web-1", json).expect("parses").expect("an instance");
        assert_eq!((one.target.as_str(), one.release.as_str()), ("web-1", "v2"));
        let with_progress = format!("pulling image\nstarting\n{json}\n");
        assert!(parse_instance("web-1", &with_progress).expect("parses").is_some());
        let pretty =
            "{\n  \"address\": \"a:1\",\n  \"release\": \"v1\",\n  \"health_url\": \"h\"\n}";
        assert!(parse_instance("web-1", pretty).expect("parses").is_some());
        assert_eq!(parse_instance("web-1", "  \n").expect("parses"), None);
        assert_eq!(parse_instance("web-1", "null\n").expect("parses"), None);
        assert!(parse_instance("web-1", "running").is_err());
    }

    #[test]
    fn debug_output_shows_the_env_names_but_never_their_values() {
        let mut c = commands();
        c["env"] = serde_json::json!({ "DEPLOY_TOKEN": "tok-very-secret" });
        let shown = format!("{:?}", config(c).expect("parses"));
        assert!(shown.contains("DEPLOY_TOKEN") && !shown.contains("tok-very-secret"), "{shown}");
    }
}
