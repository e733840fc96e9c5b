//! Webhook provider: each lifecycle action is a signed JSON `POST` to the operator's endpoint,
//! which does the work on whatever platform it drives. This module only speaks the protocol
//! below; it keeps no instance state and must never log or show the shared secret.
//!
//! **Request.** `POST <url>` with `Content-Type: application/json` and
//!
//! ```json
//! {"action": "create", "target": "web-5", "release": "v2", "group": "blue",
//!  "idempotency_key": "3f1c…", "callback_url": "https://switchyard.example/api/v1/providers/webhook/hooks/complete"}
//! ```
//!
//! `action` is `create`, `replace`, `destroy`, `describe` or `check`; `release` is null for
//! destroy and describe, `group` is null except for create; `callback_url` is present only when
//! `callback_base_url` is configured. Headers:
//! - `X-Switchyard-Timestamp`: unix seconds;
//! - `X-Switchyard-Signature`: `sha256=` + hex HMAC-SHA256 with the shared secret of
//!   `"{timestamp}.{body}"` (the exact body bytes; an empty body for `GET`). Refuse a request
//!   whose signature does not match or whose timestamp is more than 5 minutes off;
//! - `Idempotency-Key`: the same value as in the body, derived from (backend, action, target,
//!   release). A retried call carries the same key. The key names a desired state, not an
//!   attempt: after a rollback the same state may be asked for again with the same key, so keep
//!   keys only while the action is in flight, or for minutes, not days.
//!
//! **Response.**
//! - `200`/`201`/`204` — done. For create, replace and describe the body is the instance,
//!   `{"address": "10.0.0.5:8080", "release": "v2", "health_url": "http://10.0.0.5:8080/healthz"}`,
//!   or empty/`null` (describe: no such instance; create/replace: Switchyard then asks describe).
//! - `202` — accepted, finishing later: `{"status_url": "/jobs/42"}` (on the endpoint's host,
//!   relative or absolute) and/or a later callback. Switchyard polls `status_url` with a signed
//!   `GET` every `poll_interval_ms` until it answers `{"status": "done", "instance": {…}}` or
//!   `{"status": "failed", "message": "…", "retryable": false}` (`{"status": "pending"}` until
//!   then), or until `completion_timeout_secs` pass (a temporary failure; the engine retries
//!   with the same key).
//! - `404` to describe means no such instance, to destroy that it is already gone.
//! - `408`, `429`, `5xx`, a timeout or a refused connection — a temporary failure, retried.
//! - any other `4xx` — a permanent failure; `{"message": "…"}` in the body is shown to the
//!   operator. Redirects are not followed.
//!
//! **Callback.** Instead of (or as well as) a status URL, the endpoint may `POST` to
//! `callback_url` the body `{"idempotency_key": "…", "status": "done"|"failed", "instance": …,
//! "message": …, "retryable": …}`, signed the same way with the same headers. Switchyard
//! answers `204` when a call was waiting for that key, `404` when none was (answer the next
//! `POST` with the same key directly), and `401` for a bad signature.
//!
//! `check` must change nothing; answer `200`, optionally with `{"version": "…"}`.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::{AdapterError, AdapterResult, BackendCheck, Instance, Provider};

pub const KIND: &str = "webhook";
pub const TIMESTAMP_HEADER: &str = "x-switchyard-timestamp";
pub const SIGNATURE_HEADER: &str = "x-switchyard-signature";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// How far a signed timestamp may be from the receiver's clock.
pub const MAX_SKEW_SECS: i64 = 300;
const MIN_SECRET_BYTES: usize = 16;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub url: String,
    /// The shared secret itself; prefer `secret_env`, which keeps it out of the environment's
    /// stored settings.
    #[serde(default)]
    pub secret: Option<String>,
    /// The name of an environment variable of the server holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    #[serde(default = "default_completion_timeout_secs")]
    pub completion_timeout_secs: u64,
    /// Where the endpoint reaches this server (e.g. `https://switchyard.example.com`); when
    /// set, requests carry a `callback_url` for completions.
    #[serde(default)]
    pub callback_base_url: Option<String>,
}

fn default_timeout_secs() -> u64 {
    10
}
fn default_poll_interval_ms() -> u64 {
    1000
}
fn default_completion_timeout_secs() -> u64 {
    600
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .field("timeout_secs", &self.timeout_secs)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("completion_timeout_secs", &self.completion_timeout_secs)
            .field("callback_base_url", &self.callback_base_url)
            .finish()
    }
}

/// Signs and verifies messages with the shared secret; `Debug` never shows it.
#[derive(Clone)]
pub struct Signer(Hmac<Sha256>);

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signer(<redacted>)")
    }
}

/// Why a signed request was refused (said in the server log, never to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the timestamp header is missing or not a number")]
    BadTimestamp,
    #[error("the timestamp is more than 5 minutes off")]
    Stale,
    #[error("the signature header is missing or malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
}

impl Signer {
    pub fn new(secret: &[u8]) -> AdapterResult<Self> {
        if secret.is_empty() {
            return Err(AdapterError::Permanent("the webhook secret is empty".into()));
        }
        Hmac::<Sha256>::new_from_slice(secret)
            .map(Self)
            .map_err(|e| AdapterError::Permanent(format!("the webhook secret: {e}")))
    }

    /// `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        format!("sha256={}", hex::encode(self.mac(timestamp, body).finalize().into_bytes()))
    }

    /// Checks a signature in constant time, and that `timestamp` is within
    /// [`MAX_SKEW_SECS`] of `now`.
    pub fn verify(
        &self,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
        if now.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(SignatureError::Stale);
        }
        let given = signature
            .trim()
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
            .ok_or(SignatureError::Malformed)?;
        self.mac(ts, body).verify_slice(&given).map_err(|_| SignatureError::Mismatch)
    }

    /// Verifies the signature headers of a request.
    pub fn verify_headers(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), SignatureError> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let ts = get(TIMESTAMP_HEADER).ok_or(SignatureError::BadTimestamp)?;
        let sig = get(SIGNATURE_HEADER).ok_or(SignatureError::Malformed)?;
        self.verify(ts, sig, body, now)
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

/// The key a call carries in `Idempotency-Key`: the same for every attempt at one
/// (backend, action, target, release).
pub fn idempotency_key(backend: &str, action: &str, target: &str, release: Option<&str>) -> String {
    let digest =
        Sha256::digest(format!("{backend}\n{action}\n{target}\n{}", release.unwrap_or_default()));
    hex::encode(&digest[..16])
}

/// An instance as the endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reported {
    pub address: String,
    pub release: String,
    pub health_url: String,
}

impl Reported {
    fn instance(self, target: &str) -> Instance {
        Instance {
            target: target.to_string(),
            address: self.address,
            release: self.release,
            health_url: self.health_url,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Done,
    Failed,
}

/// How an accepted (202) action ended, from its status URL or a callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Completion {
    pub status: Status,
    #[serde(default)]
    pub instance: Option<Reported>,
    #[serde(default)]
    pub message: Option<String>,
    /// A failure the engine should retry.
    #[serde(default)]
    pub retryable: bool,
}

/// The body of a completion callback.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct Callback {
    pub idempotency_key: String,
    #[serde(flatten)]
    pub completion: Completion,
}

#[derive(Serialize)]
struct Request<'a> {
    action: &'a str,
    target: Option<&'a str>,
    release: Option<&'a str>,
    group: Option<&'a str>,
    idempotency_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    callback_url: Option<&'a str>,
}

#[derive(Deserialize)]
struct Accepted {
    #[serde(default)]
    status_url: Option<String>,
}

pub struct Webhook {
    backend: String,
    url: Url,
    signer: Signer,
    http: reqwest::Client,
    poll_interval: Duration,
    completion_timeout: Duration,
    callback_url: Option<String>,
    /// Calls waiting for a completion callback, by idempotency key.
    waiting: Mutex<HashMap<String, watch::Sender<Option<Completion>>>>,
}

/// A registration for a callback; dropping it (the call ended or was cancelled) unregisters.
struct Waiter<'a> {
    hook: &'a Webhook,
    key: String,
    rx: Option<watch::Receiver<Option<Completion>>>,
}

impl Waiter<'_> {
    async fn completion(&mut self) -> Completion {
        if let Some(rx) = self.rx.as_mut()
            && let Ok(c) =
                rx.wait_for(|c| c.as_ref().is_some_and(|c| c.status != Status::Pending)).await
            && let Some(c) = c.clone()
        {
            return c;
        }
        std::future::pending().await
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.rx.take();
        if let Ok(mut w) = self.hook.waiting.lock()
            && w.get(&self.key).is_some_and(|tx| tx.receiver_count() == 0)
        {
            w.remove(&self.key);
        }
    }
}

fn bounded(name: &str, value: u64, min: u64, max: u64) -> AdapterResult<u64> {
    if !(min..=max).contains(&value) {
        return Err(AdapterError::Permanent(format!(
            "{name} must be between {min} and {max}, not {value}"
        )));
    }
    Ok(value)
}

fn http_url(name: &str, raw: &str) -> AdapterResult<Url> {
    let url =
        Url::parse(raw).map_err(|e| AdapterError::Permanent(format!("{name} '{raw}': {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(AdapterError::Permanent(format!("{name}: '{other}' is not http(s)"))),
    }
}

/// The error chain of `e` in one line, without URLs (they may carry credentials).
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The operator-facing message in an error body: `message` or `error` (or `error.message`),
/// else the start of the body.
fn body_message(body: &str) -> String {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = json.as_ref().and_then(|v| {
        v.get("message")
            .or_else(|| v.get("error").and_then(|e| e.get("message")))
            .or_else(|| v.get("error"))
            .and_then(serde_json::Value::as_str)
    });
    let text = field.unwrap_or(body).trim();
    let mut shown: String = text.chars().take(300).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

fn parse_instance(target: &str, body: &str) -> Result<Option<Instance>, String> {
    if body.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str::<Option<Reported>>(body).map(|r| r.map(|r| r.instance(target))).map_err(
        |e| {
            format!("the body is not an instance {{\"address\", \"release\", \"health_url\"}}: {e}")
        },
    )
}

impl Webhook {
    /// A provider for backend `backend` (its name is part of idempotency keys and of the
    /// callback URL).
    pub fn new(backend: &str, cfg: Config) -> AdapterResult<Self> {
        let url = http_url("url", &cfg.url)?;
        let secret = match (&cfg.secret, &cfg.secret_env) {
            (Some(s), None) => s.clone(),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                AdapterError::Permanent(format!(
                    "secret_env: the environment variable '{var}' is not set"
                ))
            })?,
            _ => {
                return Err(AdapterError::Permanent(
                    "set exactly one of secret and secret_env".into(),
                ));
            }
        };
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AdapterError::Permanent(format!(
                "the webhook secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        let timeout = Duration::from_secs(bounded("timeout_secs", cfg.timeout_secs, 1, 300)?);
        let poll_interval =
            Duration::from_millis(bounded("poll_interval_ms", cfg.poll_interval_ms, 10, 60_000)?);
        let completion_timeout = Duration::from_secs(bounded(
            "completion_timeout_secs",
            cfg.completion_timeout_secs,
            1,
            86_400,
        )?);
        let callback_url = match &cfg.callback_base_url {
            // This server's own address, which the endpoint calls: https is fine here.
            Some(base) => match Url::parse(base) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(format!(
                    "{}/api/v1/providers/webhook/{backend}/complete",
                    u.as_str().trim_end_matches('/')
                )),
                _ => {
                    return Err(AdapterError::Permanent(format!(
                        "callback_base_url '{base}' is not an http(s) URL"
                    )));
                }
            },
            None => None,
        };
        let http = crate::outbound::builder(timeout)
            .build()
            .map_err(|e| AdapterError::Permanent(format!("HTTP client: {}", chain(e))))?;
        Ok(Self {
            backend: backend.to_string(),
            url,
            signer: Signer::new(secret.as_bytes())?,
            http,
            poll_interval,
            completion_timeout,
            callback_url,
            waiting: Mutex::new(HashMap::new()),
        })
    }

    /// Checks a completion callback's signature headers against this backend's secret.
    pub fn verify_callback(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        self.signer.verify_headers(headers, body, chrono::Utc::now().timestamp())
    }

    /// Hands a completion to the call waiting for `key`; false when none is waiting.
    pub fn complete(&self, key: &str, completion: Completion) -> bool {
        match self.waiting.lock() {
            Ok(w) => match w.get(key) {
                Some(tx) => {
                    tx.send_replace(Some(completion));
                    true
                }
                None => false,
            },
            Err(_) => false,
        }
    }

    fn wait_for_callback(&self, key: &str) -> Option<Waiter<'_>> {
        self.callback_url.as_ref()?;
        let mut w = self.waiting.lock().ok()?;
        let rx = w.entry(key.to_string()).or_insert_with(|| watch::channel(None).0).subscribe();
        Some(Waiter { hook: self, key: key.to_string(), rx: Some(rx) })
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> AdapterResult<(StatusCode, String)> {
        let ts = chrono::Utc::now().timestamp();
        let mut req = self
            .http
            .request(method, url)
            .header(TIMESTAMP_HEADER, ts.to_string())
            .header(SIGNATURE_HEADER, self.signer.sign(ts, &body));
        if let Some(key) = key {
            req = req.header(IDEMPOTENCY_HEADER, key);
        }
        if !body.is_empty() {
            req = req.header(http::header::CONTENT_TYPE, "application/json").body(body);
        }
        let res = req.send().await.map_err(|e| {
            if e.is_builder() {
                AdapterError::Permanent(chain(e))
            } else {
                AdapterError::Transient(chain(e))
            }
        })?;
        let status = res.status();
        let text = res.text().await.map_err(|e| AdapterError::Transient(chain(e)))?;
        Ok((status, text))
    }

    /// Maps a status the protocol gives no meaning to onto the error convention.
    fn failure(what: &str, status: StatusCode, body: &str) -> AdapterError {
        let message = format!("{what}: HTTP {}: {}", status.as_u16(), body_message(body));
        let temporary = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        if temporary {
            AdapterError::Transient(message)
        } else if status.is_redirection() {
            AdapterError::Permanent(format!(
                "{message} (redirects are not followed; set the final url)"
            ))
        } else {
            AdapterError::Permanent(message)
        }
    }

    #[tracing::instrument(skip_all, fields(backend = %self.backend, action, instance = target), err)]
    async fn call(
        &self,
        action: &str,
        target: &str,
        release: Option<&str>,
        group: Option<&str>,
    ) -> AdapterResult<Option<Instance>> {
        let what = format!("{action} {target}");
        let key = idempotency_key(&self.backend, action, target, release);
        // Registered before sending, so a callback that beats the 202 is not lost.
        let mut waiter = self.wait_for_callback(&key);
        let body = serde_json::to_vec(&Request {
            action,
            target: Some(target),
            release,
            group,
            idempotency_key: &key,
            callback_url: self.callback_url.as_deref(),
        })
        .map_err(|e| AdapterError::Permanent(format!("{what}: {e}")))?;
        let (status, text) = self
            .send(Method::POST, self.url.clone(), body, Some(&key))
            .await
            .map_err(|e| prefix(&what, e))?;
        match status {
            StatusCode::ACCEPTED => {
                // A body that is not JSON (some frameworks say "Accepted") names no status URL.
                let accepted = serde_json::from_str::<Accepted>(&text).ok();
                let status_url = accepted
                    .and_then(|a| a.status_url)
                    .map(|u| self.status_url(&u))
                    .transpose()
                    .map_err(|e| prefix(&what, e))?;
                if status_url.is_none() && waiter.is_none() {
                    return Err(AdapterError::Permanent(format!(
                        "{what}: the endpoint answered 202 without a status_url, and no \
                         callback_base_url is configured"
                    )));
                }
                let c = self.await_completion(&what, status_url, waiter.as_mut()).await?;
                settle(&what, target, c)
            }
            StatusCode::NOT_FOUND if action == "describe" || action == "destroy" => Ok(None),
            s if s.is_success() && action == "destroy" => Ok(None),
            s if s.is_success() => parse_instance(target, &text)
                .map_err(|e| AdapterError::Permanent(format!("{what}: {e}"))),
            s => Err(Self::failure(&what, s, &text)),
        }
    }

    fn status_url(&self, raw: &str) -> AdapterResult<Url> {
        let url = self
            .url
            .join(raw)
            .map_err(|e| AdapterError::Permanent(format!("status_url '{raw}': {e}")))?;
        if url.origin() != self.url.origin() {
            return Err(AdapterError::Permanent(format!(
                "status_url '{raw}' is not on the endpoint's host; Switchyard only sends signed \
                 requests there"
            )));
        }
        Ok(url)
    }

    /// Waits for a callback or polls `status_url` until the action is done or failed.
    async fn await_completion(
        &self,
        what: &str,
        status_url: Option<Url>,
        mut waiter: Option<&mut Waiter<'_>>,
    ) -> AdapterResult<Completion> {
        let deadline = tokio::time::Instant::now() + self.completion_timeout;
        let mut last_problem = String::new();
        loop {
            let next = (tokio::time::Instant::now() + self.poll_interval).min(deadline);
            let callback = async {
                match waiter.as_mut() {
                    Some(w) => w.completion().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = callback => {
                    if c.status != Status::Pending {
                        return Ok(c);
                    }
                }
                () = tokio::time::sleep_until(next) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AdapterError::Transient(format!(
                    "{what}: not complete after {}s{last_problem}",
                    self.completion_timeout.as_secs()
                )));
            }
            let Some(url) = &status_url else { continue };
            match self.poll(what, url.clone()).await {
                Ok(c) if c.status == Status::Pending => {}
                Ok(c) => return Ok(c),
                Err(e) if e.is_transient() => last_problem = format!(" (last poll: {e})"),
                Err(e) => return Err(e),
            }
        }
    }

    async fn poll(&self, what: &str, url: Url) -> AdapterResult<Completion> {
        let (status, text) =
            self.send(Method::GET, url, Vec::new(), None).await.map_err(|e| prefix(what, e))?;
        if !status.is_success() {
            return Err(Self::failure(&format!("{what}: status_url"), status, &text));
        }
        serde_json::from_str(&text).map_err(|e| {
            AdapterError::Permanent(format!(
                "{what}: the status_url answered something that is not \
                 {{\"status\": \"pending\"|\"done\"|\"failed\", …}}: {e}"
            ))
        })
    }

    async fn ensure(
        &self,
        action: &str,
        target: &str,
        release: &str,
        group: Option<&str>,
    ) -> AdapterResult<Instance> {
        if let Some(i) = self.call(action, target, Some(release), group).await? {
            return Ok(i);
        }
        self.describe(target).await?.ok_or_else(|| {
            AdapterError::Transient(format!(
                "{action} {target} succeeded, but describe does not show the instance"
            ))
        })
    }
}

fn prefix(what: &str, e: AdapterError) -> AdapterError {
    match e {
        AdapterError::Transient(m) => AdapterError::Transient(format!("{what}: {m}")),
        AdapterError::Permanent(m) => AdapterError::Permanent(format!("{what}: {m}")),
        AdapterError::Unsupported(m) => AdapterError::Unsupported(format!("{what}: {m}")),
        AdapterError::Drift(m) => AdapterError::Drift(format!("{what}: {m}")),
    }
}

fn settle(what: &str, target: &str, c: Completion) -> AdapterResult<Option<Instance>> {
    let message = || c.message.clone().unwrap_or_else(|| "no message".into());
    match c.status {
        Status::Done => Ok(c.instance.map(|r| r.instance(target))),
        Status::Failed if c.retryable => {
            Err(AdapterError::Transient(format!("{what} failed: {}", message())))
        }
        Status::Failed | Status::Pending => {
            Err(AdapterError::Permanent(format!("{what} failed: {}", message())))
        }
    }
}

#[async_trait]
impl Provider for Webhook {
    async fn check(&self) -> AdapterResult<BackendCheck> {
        let key = idempotency_key(&self.backend, "check", "", None);
        let body = serde_json::to_vec(&Request {
            action: "check",
            target: None,
            release: None,
            group: None,
            idempotency_key: &key,
            callback_url: None,
        })
        .map_err(|e| AdapterError::Permanent(e.to_string()))?;
        let (status, text) = self.send(Method::POST, self.url.clone(), body, Some(&key)).await?;
        if !status.is_success() {
            return Err(Self::failure("check", status, &text));
        }
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("version")?.as_str().map(str::to_string));
        let mut capabilities: Vec<String> =
            ["create", "replace", "destroy", "describe", "poll"].map(String::from).to_vec();
        if self.callback_url.is_some() {
            capabilities.push("callback".into());
        }
        Ok(BackendCheck {
            version,
            capabilities,
            detail: format!("signed POSTs to {}", self.url.origin().ascii_serialization()),
        })
    }

    async fn create(&self, target: &str, release: &str, group: &str) -> AdapterResult<Instance> {
        self.ensure("create", target, release, Some(group)).await
    }

    async fn replace(&self, target: &str, release: &str) -> AdapterResult<Instance> {
        self.ensure("replace", target, release, None).await
    }

    async fn destroy(&self, target: &str) -> AdapterResult<()> {
        self.call("destroy", target, None, None).await.map(|_| ())
    }

    async fn describe(&self, target: &str) -> AdapterResult<Option<Instance>> {
        self.call("describe", target, None, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-very-long-shared-secret";

    #[test]
    fn hmac_sha256_matches_the_rfc_4231_vector() {
        let mac = Hmac::<Sha256>::new_from_slice(b"Jefe")
            .expect("key")
            .chain_update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_the_timestamp_a_dot_and_the_body() {
        // Computed independently: python3 -c 'import hmac,hashlib; print(hmac.new(
        //   b"a-very-long-shared-secret", b"1700000000." + body, hashlib.sha256).hexdigest())'
        let signer = Signer::new(SECRET.as_bytes()).expect("signer");
        let body = br#"{"action":"create","target":"web-5"}"#;
        assert_eq!(
            signer.sign(1_700_000_000, body),
            "sha256=fdca695e36ff36faf67324ad550db155b923e10d36e2bdebb7be24e70a032a8e"
        );
        assert_eq!(
            signer.sign(1_700_000_000, b""),
            "sha256=9341a3a5586a127d57d810d4f1d1d385e341abe1561e36730a7a18b2cb36b641"
        );
    }

    #[test]
    fn verification_refuses_another_body_secret_stale_timestamp_or_bad_header() {
        let signer = Signer::new(SECRET.as_bytes()).expect("signer");
        let now = 1_700_000_000;
        let sig = signer.sign(now, b"{}");
        assert_eq!(signer.verify(&now.to_string(), &sig, b"{}", now + 299), Ok(()));
        assert_eq!(
            signer.verify(&now.to_string(), &sig, b"{ }", now),
            Err(SignatureError::Mismatch)
        );
        let other = Signer::new(b"another-long-shared-secret").expect("signer");
        assert_eq!(other.verify(&now.to_string(), &sig, b"{}", now), Err(SignatureError::Mismatch));
        assert_eq!(
            signer.verify(&now.to_string(), &sig, b"{}", now + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(signer.verify("soon", &sig, b"{}", now), Err(SignatureError::BadTimestamp));
        let bare = sig.trim_start_matches("sha256=");
        assert_eq!(
            signer.verify(&now.to_string(), bare, b"{}", now),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn the_idempotency_key_is_stable_per_backend_action_target_and_release() {
        let key = idempotency_key("hooks", "create", "web-5", Some("v2"));
        assert_eq!(key, idempotency_key("hooks", "create", "web-5", Some("v2")));
        assert_eq!(key.len(), 32);
        for other in [
            idempotency_key("other", "create", "web-5", Some("v2")),
            idempotency_key("hooks", "replace", "web-5", Some("v2")),
            idempotency_key("hooks", "create", "web-6", Some("v2")),
            idempotency_key("hooks", "create", "web-5", Some("v3")),
        ] {
            assert_ne!(key, other);
        }
    }

    fn config(value: serde_json::Value) -> Result<Config, serde_json::Error> {
        serde_json::from_value(value)
    }

    #[test]
    fn settings_errors_are_caught_before_any_call() {
        let err = config(serde_json::json!({ "url": "http://x", "secret": SECRET, "retries": 3 }))
            .expect_err("unknown field");
        assert!(err.to_string().contains("unknown field `retries`"), "{err}");

        let refused = |v: serde_json::Value| {
            Webhook::new("hooks", config(v).expect("parses")).err().expect("refused").to_string()
        };
        let both =
            refused(serde_json::json!({ "url": "http://x", "secret": SECRET, "secret_env": "X" }));
        assert!(both.contains("exactly one"), "{both}");
        let neither = refused(serde_json::json!({ "url": "http://x" }));
        assert!(neither.contains("exactly one"), "{neither}");
        let short = refused(serde_json::json!({ "url": "http://x", "secret": "short" }));
        assert!(short.contains("at least 16 bytes"), "{short}");
        let unset = refused(serde_json::json!({
            "url": "http://x", "secret_env": "SWITCHYARD_TEST_SURELY_UNSET_SECRET"
        }));
        assert!(unset.contains("is not set"), "{unset}");
        let bad_url = refused(serde_json::json!({ "url": "not a url", "secret": SECRET }));
        assert!(bad_url.contains("url 'not a url'"), "{bad_url}");
        let ftp = refused(serde_json::json!({ "url": "ftp://x", "secret": SECRET }));
        assert!(ftp.contains("not http(s)"), "{ftp}");
        let slow =
            refused(serde_json::json!({ "url": "http://x", "secret": SECRET, "timeout_secs": 0 }));
        assert!(slow.contains("timeout_secs"), "{slow}");
    }

    #[test]
    fn debug_of_the_settings_never_shows_the_secret() {
        let cfg = config(serde_json::json!({ "url": "http://x", "secret": SECRET })).expect("ok");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains(SECRET) && shown.contains("<redacted>"), "{shown}");
        let signer = Signer::new(SECRET.as_bytes()).expect("signer");
        assert!(!format!("{signer:?}").contains(SECRET));
    }

    #[test]
    fn callback_urls_name_the_backend_and_a_status_url_must_stay_on_the_endpoint() {
        let hook = Webhook::new(
            "hooks",
            config(serde_json::json!({
                "url": "http://127.0.0.1:9/hook", "secret": SECRET,
                "callback_base_url": "https://switchyard.example.com/"
            }))
            .expect("parses"),
        )
        .expect("valid");
        assert_eq!(
            hook.callback_url.as_deref(),
            Some("https://switchyard.example.com/api/v1/providers/webhook/hooks/complete")
        );
        assert_eq!(
            hook.status_url("/jobs/1").expect("same host").as_str(),
            "http://127.0.0.1:9/jobs/1"
        );
        assert!(hook.status_url("http://evil.test/jobs/1").is_err());
    }

    #[test]
    fn a_completion_reaches_only_a_call_that_waits_for_its_key() {
        let hook = Webhook::new(
            "hooks",
            config(serde_json::json!({
                "url": "http://127.0.0.1:9/hook", "secret": SECRET,
                "callback_base_url": "http://127.0.0.1:3000"
            }))
            .expect("parses"),
        )
        .expect("valid");
        let done =
            Completion { status: Status::Done, instance: None, message: None, retryable: false };
        assert!(!hook.complete("k1", done.clone()), "nobody waits yet");
        let waiter = hook.wait_for_callback("k1").expect("callbacks are configured");
        assert!(hook.complete("k1", done.clone()));
        assert!(!hook.complete("k2", done.clone()));
        drop(waiter);
        assert!(!hook.complete("k1", done), "a finished call no longer waits");
    }
}
