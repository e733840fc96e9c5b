//! Backend settings as an environment stores them: checked against the driver's typed
//! `Config` when the environment is saved (API, `switchyard apply`, the UI), and their
//! secrets kept write-only.
//!
//! **Checked on save.** Each driver's `Config` refuses unknown keys and wrong types; the error
//! names the key as a field path (`backends[0].settings.socket`), so a typo is found when the
//! environment is applied, not when a campaign first needs the backend.
//!
//! **Secrets are write-only.** The settings listed in [`SECRET_FIELDS`] (API keys, HMAC
//! secrets, script `env` values) are never sent back: every view of an environment shows them
//! as [`SECRET_SET`]. On update, a secret that is blank (`""`, `null` or [`SECRET_SET`] itself)
//! keeps the stored value, so an environment read from the API can be sent back unchanged;
//! leaving the key out removes it. Audit details and error messages never carry them.

use std::collections::BTreeMap;

use app::domain::environment::{BackendConfig, BackendKind, Environment};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    embedded, haproxy, haproxy_stats, http_probe, local_process, nginx, powerdns, prometheus,
    script, webhook,
};

/// What every view shows instead of a secret that is set.
pub const SECRET_SET: &str = "<set>";

/// The secret settings of each driver: a key, or `key.*` for every value of a map.
pub const SECRET_FIELDS: &[(&str, &[&str])] =
    &[(powerdns::KIND, &["api_key"]), (webhook::KIND, &["secret"]), (script::KIND, &["env.*"])];

/// Channel drivers: configured by the server's `smtp.*` settings and subscribers, so their
/// backend entries carry no settings of their own.
const CHANNEL_DRIVERS: [&str; 3] = ["email", "smtp", "webhook"];

fn secret_fields(driver: &str) -> &'static [&'static str] {
    SECRET_FIELDS.iter().find(|(d, _)| *d == driver).map_or(&[], |(_, f)| f)
}

/// Field errors of an environment's approval floor, backend settings and target addresses,
/// keyed by path
/// (`backends[0].settings.socket`, `targets[1].address`).
pub fn environment_errors(env: &Environment) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    if let Some(a) = env.approvals {
        if a.required > app::domain::validate::MAX_APPROVALS {
            errors.insert(
                "approvals.required".into(),
                format!("use 0 to {} approvals", app::domain::validate::MAX_APPROVALS),
            );
        }
        if !matches!(a.role, app::domain::auth::Role::Approver | app::domain::auth::Role::Admin) {
            errors.insert("approvals.role".into(), "use approver or admin".into());
        }
    }
    for (i, a) in env.alerts.iter().enumerate() {
        if let Some(why) = a.problem() {
            errors.insert(format!("alerts[{i}]"), why);
        }
    }
    for (i, t) in env.targets.iter().enumerate() {
        if let Err(why) = app::domain::address::HostPort::parse(&t.address) {
            errors.insert(format!("targets[{i}].address"), why);
        }
    }
    for (i, b) in env.backends.iter().enumerate() {
        for (path, why) in check_all(b) {
            let field = if path.is_empty() {
                format!("backends[{i}].settings")
            } else if path == "driver" {
                format!("backends[{i}].driver")
            } else {
                format!("backends[{i}].settings.{path}")
            };
            errors.insert(field, why);
        }
    }
    errors
}

/// Checks one backend's settings against its driver's `Config`: `Err((path in settings, why))`;
/// the path `driver` means the driver itself is unknown.
pub fn check(cfg: &BackendConfig) -> Result<(), (String, String)> {
    let s = &cfg.settings;
    match (cfg.kind, cfg.driver.as_str()) {
        (BackendKind::Router, embedded::KIND) => typed::<embedded::Config>(s).map(drop),
        (BackendKind::Router, haproxy::KIND) => {
            let c = typed::<haproxy::Config>(s)?;
            haproxy::Haproxy::new(c).map(drop).map_err(whole)
        }
        (BackendKind::Router, nginx::KIND) => {
            let c = typed::<nginx::Config>(s)?;
            nginx::Nginx::new(c).map(drop).map_err(whole)
        }
        (BackendKind::Router, powerdns::KIND) => typed::<powerdns::Config>(s).map(drop),
        (BackendKind::Provider, local_process::KIND) => {
            let c = typed::<local_process::Config>(s)?;
            c.command.check(local_process::PLACEHOLDERS).map_err(|why| ("command".into(), why))?;
            if c.port_min > c.port_max {
                return Err((
                    "port_min".into(),
                    format!("port_min {} is above port_max {}", c.port_min, c.port_max),
                ));
            }
            Ok(())
        }
        (BackendKind::Provider, script::KIND) => {
            let c = typed::<script::Config>(s)?;
            script::Script::new(c).map(drop).map_err(whole)
        }
        (BackendKind::Provider, webhook::KIND) => typed::<webhook::Config>(s).map(drop),
        (BackendKind::HealthSource, http_probe::KIND) => typed::<http_probe::Config>(s).map(drop),
        (BackendKind::HealthSource, haproxy_stats::KIND) => {
            typed::<haproxy_stats::Config>(s).map(drop)
        }
        (BackendKind::HealthSource, prometheus::KIND) => typed::<prometheus::Config>(s).map(drop),
        (BackendKind::Channel, d) if CHANNEL_DRIVERS.contains(&d) => match s {
            Value::Null => Ok(()),
            Value::Object(m) if m.is_empty() => Ok(()),
            Value::Object(m) => Err((
                m.keys().next().cloned().unwrap_or_default(),
                "channel backends have no settings: e-mail uses the server's smtp.* settings and webhooks the subscribers' own URLs".into(),
            )),
            _ => Err((String::new(), "expected a table of settings".into())),
        },
        (kind, driver) => Err(("driver".into(), unknown_driver(kind, driver))),
    }
}

fn unknown_driver(kind: BackendKind, driver: &str) -> String {
    let known: &[&str] = match kind {
        BackendKind::Router => &[embedded::KIND, haproxy::KIND, nginx::KIND, powerdns::KIND],
        BackendKind::Provider => &[local_process::KIND, script::KIND, webhook::KIND],
        BackendKind::HealthSource => &[http_probe::KIND, haproxy_stats::KIND, prometheus::KIND],
        BackendKind::Channel => &CHANNEL_DRIVERS,
    };
    format!("no {} driver named '{driver}'; use one of {}", kind.label(), known.join(", "))
}

fn whole(e: super::AdapterError) -> (String, String) {
    let message = match e {
        super::AdapterError::Permanent(m)
        | super::AdapterError::Transient(m)
        | super::AdapterError::Unsupported(m)
        | super::AdapterError::Drift(m) => m,
    };
    (String::new(), message)
}

/// Deserializes `settings` as `T`, with the path of the first problem. Values are never quoted
/// in the message (a secret in the wrong place must not be echoed).
pub(crate) fn typed<T: DeserializeOwned>(settings: &Value) -> Result<T, (String, String)> {
    let value =
        if settings.is_null() { Value::Object(Default::default()) } else { settings.clone() };
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        (path, scrub(&e.inner().to_string()))
    })
}

/// Every problem with one backend's settings: each unknown key is reported (a misspelt table
/// usually has several), then the first other problem.
pub fn check_all(cfg: &BackendConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut cfg = cfg.clone();
    for _ in 0..32 {
        match check(&cfg) {
            Ok(()) => break,
            Err((path, why)) => {
                let unknown = unknown_key(&why).is_some() && remove_path(&mut cfg.settings, &path);
                problems.push((path, why));
                if !unknown {
                    break;
                }
            }
        }
    }
    problems
}

/// Removes the key at a dotted `path` of `settings`; whether there was one.
fn remove_path(settings: &mut Value, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return false };
    let mut at = settings;
    for p in parts {
        match at.get_mut(p) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at.as_object_mut().is_some_and(|m| m.remove(last).is_some())
}

/// `unknown field `socket`, expected …` → `socket`.
fn unknown_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// serde quotes the offending value for some errors (`invalid type: string "…"`); keep the
/// shape of the message but not the value.
fn scrub(message: &str) -> String {
    match message.split_once(": string \"") {
        Some((before, rest)) => {
            let after = rest.split_once('"').map_or("", |(_, a)| a);
            format!("{before}: a string{after}")
        }
        None => message.to_string(),
    }
}

// ---- secrets ------------------------------------------------------------------------------

/// The environment with every secret setting shown as [`SECRET_SET`].
pub fn redacted(mut env: Environment) -> Environment {
    for b in &mut env.backends {
        redact_backend(b);
    }
    env
}

fn redact_backend(b: &mut BackendConfig) {
    for field in secret_fields(&b.driver) {
        for_each_secret(&mut b.settings, field, |v| {
            if !is_blank(v) {
                *v = Value::String(SECRET_SET.into());
            }
        });
    }
}

/// Every secret value stored in the environment (for tests and log scrubbing).
pub fn secret_values(env: &Environment) -> Vec<String> {
    let mut out = Vec::new();
    for b in &env.backends {
        let mut settings = b.settings.clone();
        for field in secret_fields(&b.driver) {
            for_each_secret(&mut settings, field, |v| {
                if let Some(s) = v.as_str().filter(|s| !s.is_empty()) {
                    out.push(s.to_string());
                }
            });
        }
    }
    out
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty() || s == SECRET_SET,
        _ => false,
    }
}

/// Calls `f` on the value at `field` (`key` or `key.*`) of `settings`, if present.
fn for_each_secret(settings: &mut Value, field: &str, mut f: impl FnMut(&mut Value)) {
    let Some(obj) = settings.as_object_mut() else { return };
    match field.strip_suffix(".*") {
        Some(map) => {
            if let Some(Value::Object(m)) = obj.get_mut(map) {
                m.values_mut().for_each(f);
            }
        }
        None => {
            if let Some(v) = obj.get_mut(field) {
                f(v);
            }
        }
    }
}

/// Fills in blank secrets of `new` from `old` (the stored environment, `None` when creating):
/// a blank secret keeps the stored value of the same backend (by name, same driver), and is
/// dropped when there is none. A [`SECRET_SET`] with nothing stored behind it is a field error.
pub fn keep_blank_secrets(
    new: &mut Environment,
    old: Option<&Environment>,
) -> Result<(), BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    for (i, b) in new.backends.iter_mut().enumerate() {
        let stored =
            old.and_then(|o| o.backends.iter().find(|s| s.name == b.name && s.driver == b.driver));
        for field in secret_fields(&b.driver) {
            let keys = secret_keys(&b.settings, field);
            for key in keys {
                let Some(value) = get(&b.settings, field, &key) else { continue };
                if !is_blank(&value) {
                    continue;
                }
                let kept =
                    stored.and_then(|s| get(&s.settings, field, &key)).filter(|v| !is_blank(v));
                match kept {
                    Some(v) => set(&mut b.settings, field, &key, Some(v)),
                    None if value.as_str() == Some(SECRET_SET) => {
                        errors.insert(
                            format!("backends[{i}].settings.{}", shown_path(field, &key)),
                            format!("{SECRET_SET} stands for a stored secret, but none is stored for this backend; give the value"),
                        );
                    }
                    None => set(&mut b.settings, field, &key, None),
                }
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn shown_path(field: &str, key: &str) -> String {
    match field.strip_suffix(".*") {
        Some(map) => format!("{map}.{key}"),
        None => field.to_string(),
    }
}

/// The keys a secret field covers in `settings`: the key itself, or every key of the map.
fn secret_keys(settings: &Value, field: &str) -> Vec<String> {
    match field.strip_suffix(".*") {
        Some(map) => settings
            .get(map)
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        None => settings.get(field).map(|_| vec![field.to_string()]).unwrap_or_default(),
    }
}

fn get(settings: &Value, field: &str, key: &str) -> Option<Value> {
    match field.strip_suffix(".*") {
        Some(map) => settings.get(map)?.get(key).cloned(),
        None => settings.get(key).cloned(),
    }
}

fn set(settings: &mut Value, field: &str, key: &str, value: Option<Value>) {
    let Some(obj) = settings.as_object_mut() else { return };
    let target = match field.strip_suffix(".*") {
        Some(map) => match obj.get_mut(map).and_then(Value::as_object_mut) {
            Some(m) => m,
            None => return,
        },
        None => obj,
    };
    match value {
        Some(v) => {
            target.insert(key.to_string(), v);
        }
        None => {
            target.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn backend(kind: &str, driver: &str, settings: Value) -> BackendConfig {
        serde_json::from_value(
            json!({ "name": "b", "kind": kind, "driver": driver, "settings": settings }),
        )
        .expect("backend")
    }

    fn env(backends: Vec<BackendConfig>) -> Environment {
        Environment {
            name: app::domain::ids::Name::parse("prod").expect("name"),
            targets: Vec::new(),
            pools: Vec::new(),
            backends,
            freezes: Vec::new(),
            approvals: None,
            alerts: Vec::new(),
        }
    }

    #[test]
    fn an_unknown_key_is_named_as_a_field_path() {
        let e = env(vec![backend(
            "router",
            "haproxy",
            json!({ "socket": "/run/h.sock", "backend": "web" }),
        )]);
        let errors = environment_errors(&e);
        let message =
            errors.get("backends[0].settings.socket").unwrap_or_else(|| panic!("{errors:?}"));
        assert!(message.contains("unknown field `socket`"), "{message}");
        assert!(message.contains("runtime_api"), "the known keys are listed: {message}");
        assert!(
            errors.contains_key("backends[0].settings.backend"),
            "every unknown key: {errors:?}"
        );
    }

    #[test]
    fn wrong_types_missing_keys_bad_templates_and_unknown_drivers_are_field_errors() {
        let e = env(vec![
            backend("router", "haproxy", json!({ "runtime_api": "unix:/x", "timeout_ms": "soon" })),
            backend("router", "powerdns", json!({ "api_url": "http://x" })),
            backend("provider", "local-process", json!({ "command": "run {relaese}" })),
            backend(
                "provider",
                "script",
                json!({ "create": "a; b", "replace": "a", "destroy": "a", "describe": "a" }),
            ),
            backend("router", "traefik", json!({})),
            backend("channel", "email", json!({ "to": "x" })),
            backend("provider", "webhook", json!({ "url": "http://x", "secret": 5 })),
        ]);
        let errors = environment_errors(&e);
        let keys: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "backends[0].settings.timeout_ms",
                "backends[1].settings",
                "backends[2].settings.command",
                "backends[3].settings.create",
                "backends[4].driver",
                "backends[5].settings.to",
                "backends[6].settings.secret",
            ],
            "{errors:#?}"
        );
        assert!(errors["backends[1].settings"].contains("zone"), "{errors:#?}");
        assert!(errors["backends[4].driver"].contains("haproxy"), "{errors:#?}");
    }

    #[test]
    fn the_demo_environment_passes_the_checks_made_on_save() {
        let demo = crate::demo::environment(&crate::demo::DemoConfig {
            router_listen: "127.0.0.1:8080".parse().expect("addr"),
            first_port: 9101,
            exe: Some("/opt/switch yard/switchyard".into()),
            traffic_rps: 0,
        })
        .expect("demo environment");
        assert_eq!(environment_errors(&demo), BTreeMap::new());
    }

    #[test]
    fn a_secret_in_the_wrong_place_is_not_echoed() {
        let e = env(vec![backend(
            "router",
            "haproxy",
            json!({ "runtime_api": "unix:/x", "timeout_ms": "hunter2-key" }),
        )]);
        let errors = environment_errors(&e);
        assert!(!format!("{errors:?}").contains("hunter2"), "{errors:?}");
    }

    #[test]
    fn target_addresses_must_be_host_and_port() {
        let mut e = env(Vec::new());
        e.targets = serde_json::from_value(json!([
            { "name": "a", "address": "10.0.0.1:80", "group": "", "release": "v1", "health_url": "" },
            { "name": "b", "address": "10.0.0.1:80; server x", "group": "", "release": "v1", "health_url": "" },
        ]))
        .expect("targets");
        let errors = environment_errors(&e);
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["targets[1].address"]);
    }

    #[test]
    fn secrets_are_shown_as_set_and_blank_ones_keep_the_stored_value() {
        let stored = env(vec![
            backend(
                "router",
                "powerdns",
                json!({ "api_url": "http://x", "api_key": "pdns-key", "zone": "z" }),
            ),
            backend(
                "provider",
                "script",
                json!({ "create": "a", "replace": "a", "destroy": "a", "describe": "a", "env": { "TOKEN": "tok", "REGION": "eu" } }),
            ),
        ]);
        assert_eq!(secret_values(&stored), ["pdns-key", "eu", "tok"]);
        let shown = redacted(stored.clone());
        let text = serde_json::to_string(&shown).expect("json");
        assert!(
            !text.contains("pdns-key") && !text.contains("\"tok\"") && !text.contains("\"eu\""),
            "{text}"
        );
        assert_eq!(shown.backends[0].settings["api_key"], SECRET_SET);

        // Sent back as read: nothing changes.
        let mut back = shown.clone();
        keep_blank_secrets(&mut back, Some(&stored)).expect("kept");
        assert_eq!(back, stored);

        // Blank keeps, a new value replaces, an omitted key is removed.
        let mut edit = shown;
        edit.backends[0].settings["api_key"] = json!("");
        edit.backends[1].settings["env"] = json!({ "TOKEN": "tok-2" });
        keep_blank_secrets(&mut edit, Some(&stored)).expect("kept");
        assert_eq!(edit.backends[0].settings["api_key"], "pdns-key");
        assert_eq!(edit.backends[1].settings["env"], json!({ "TOKEN": "tok-2" }));

        // On create there is nothing to keep: "<set>" is an error, "" is dropped.
        let mut fresh = redacted(stored.clone());
        let errors = keep_blank_secrets(&mut fresh, None).expect_err("nothing stored");
        assert!(errors.contains_key("backends[0].settings.api_key"), "{errors:?}");
        assert!(errors.contains_key("backends[1].settings.env.TOKEN"), "{errors:?}");
        let mut empty = stored;
        empty.backends[0].settings["api_key"] = json!("");
        keep_blank_secrets(&mut empty, None).expect("dropped");
        assert!(empty.backends[0].settings.get("api_key").is_none());
    }
}
