//! Maintenance windows and communications against a real SMTP server on loopback (aiosmtpd,
//! writing each message it accepts to a Maildir), with the `.ics` and Atom documents read by
//! independent parsers (Python's `icalendar`, `feedparser` and `xml.etree`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use app::domain::auth::{AuthVia, Principal, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::testbed::{Daemon, free_port_block};

use crate::helpers::{TestApp, eventually, hmac_hex, receiver, spawn_app_on};

// ---- the SMTP server and the parsers ------------------------------------------------------------

fn require_python_module(module: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the Python module {module} is missing: python3 -m pip install aiosmtpd icalendar feedparser \
         (scripts/test installs them)"
    );
}

struct Smtp {
    _daemon: Daemon,
    port: u16,
    maildir: PathBuf,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        Smtp::start_with(dir, "maildir", &[])
    }

    /// An aiosmtpd writing to `dir/name`, with extra options (e.g. TLS certificates).
    fn start_with(dir: &Path, name: &str, args: &[&str]) -> Smtp {
        require_python_module("aiosmtpd");
        let maildir = dir.join(name);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
        }
        let port = free_port_block(1).expect("a free port");
        let daemon = Daemon::spawn(
            "aiosmtpd",
            Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
                .args(args)
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir),
            dir.join(format!("aiosmtpd-{name}.log")),
        )
        .expect("aiosmtpd starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen: {}", daemon.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { _daemon: daemon, port, maildir }
    }

    fn count(&self) -> usize {
        std::fs::read_dir(self.maildir.join("new")).map(|d| d.count()).unwrap_or(0)
    }

    /// Every message received, parsed by Python's `email` package.
    fn mails(&self) -> Vec<Value> {
        const SCRIPT: &str = r#"
import email, json, os, sys
from email import policy
d = sys.argv[1]
out = []
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), 'rb') as f:
        m = email.message_from_binary_file(f, policy=policy.default)
    def body(kind):
        p = m.get_body(preferencelist=(kind,))
        return p.get_content() if p is not None else ''
    atts = []
    for part in m.iter_attachments():
        c = part.get_content()
        atts.append({'filename': part.get_filename(), 'type': part.get_content_type(),
                     'content': c if isinstance(c, str) else c.decode()})
    out.append({'message_id': m['Message-ID'], 'subject': str(m['Subject']), 'to': str(m['To']),
                'text': body('plain'), 'html': body('html'), 'attachments': atts})
print(json.dumps(out))
"#;
        let out = Command::new("python3")
            .args(["-c", SCRIPT])
            .arg(self.maildir.join("new"))
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("json")
    }

    async fn wait_for(&self, what: &str, mut found: impl FnMut(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mails = self.mails();
            if found(&mails) {
                return mails;
            }
            assert!(Instant::now() < deadline, "no {what} arrived; got {mails:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn subjects_with<'a>(mails: &'a [Value], needle: &str) -> Vec<&'a Value> {
    mails.iter().filter(|m| m["subject"].as_str().unwrap_or_default().contains(needle)).collect()
}

/// The VEVENTs of a calendar as Python's `icalendar` reads them.
fn parse_ics(text: &str) -> Vec<Value> {
    require_python_module("icalendar");
    const SCRIPT: &str = r#"
import icalendar, json, sys
cal = icalendar.Calendar.from_ical(sys.stdin.read())
out = []
for ev in cal.walk('VEVENT'):
    out.append({'uid': str(ev['UID']), 'sequence': int(ev.get('SEQUENCE', 0)), 'status': str(ev.get('STATUS', '')),
                'start': ev.decoded('DTSTART').isoformat(), 'end': ev.decoded('DTEND').isoformat(),
                'summary': str(ev['SUMMARY'])})
print(json.dumps({'method': str(cal.get('METHOD', '')), 'events': out}))
"#;
    let out = run_python(SCRIPT, text);
    out["events"].as_array().cloned().unwrap_or_default()
}

fn run_python(script: &str, stdin: &str) -> Value {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "the parser refused it: {}\n{stdin}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

// ---- the app ------------------------------------------------------------------------------------

struct Comms {
    app: TestApp,
    smtp: Smtp,
    admin: String,
    operator: String,
    _dir: tempfile::TempDir,
}

async fn comms_app(freezes: Value) -> Comms {
    let dir = tempfile::tempdir().expect("tempdir");
    let smtp = Smtp::start(dir.path());
    let port = free_port_block(1).expect("port");
    let url = format!("http://127.0.0.1:{port}");
    let app = spawn_app_on(
        &dir.path().join("s.db"),
        &[
            ("SWITCHYARD_LISTEN", &format!("127.0.0.1:{port}")),
            ("SWITCHYARD_PUBLIC_URL", &url),
            ("SWITCHYARD_SMTP_HOST", "127.0.0.1"),
            ("SWITCHYARD_SMTP_PORT", &smtp.port.to_string()),
            ("SWITCHYARD_SMTP_TLS", "none"),
            ("SWITCHYARD_SMTP_FROM", "Status <status@example.test>"),
            ("SWITCHYARD_NOTIFY_MAX_PER_SECOND", "100"),
            ("SWITCHYARD_NOTIFY_RETRY_BASE_SECS", "1"),
            // The test's webhook receivers listen on plain http on loopback.
            ("SWITCHYARD_WEBHOOK_ALLOW_HOSTS", "127.0.0.1"),
            ("SWITCHYARD_WEBHOOK_ALLOW_HTTP", "127.0.0.1"),
        ],
    )
    .await;
    app.add_user("ada", Role::Admin).await;
    app.add_user("olivia", Role::Operator).await;
    let admin = app.token_for("ada").await;
    let operator = app.token_for("olivia").await;
    let env = environment(freezes);
    let (status, body) =
        call(&app, &admin, Method::POST, "/api/v1/environments", Some(env.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.bring_up(&env).await;
    Comms { app, smtp, admin, operator, _dir: dir }
}

/// The example environment made runnable here (embedded router, demo-service instances).
fn environment(freezes: Value) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/environment.toml");
    let mut env = crate::helpers::runnable(
        server::client::read_spec_file(&path).expect("example environment"),
    );
    env["backends"]
        .as_array_mut()
        .expect("backends")
        .push(json!({ "name": "mail", "kind": "channel", "driver": "email" }));
    env["freezes"] = freezes;
    env
}

fn campaign(window: Value) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/canary.toml");
    let mut spec = server::client::read_spec_file(&path).expect("example campaign");
    spec["window"] = window;
    spec["communications"] = json!({ "notify": true, "audiences": ["customers"] });
    spec
}

fn window_in(hours_from_now: i64, minutes: i64) -> Value {
    let start = chrono::Utc::now()
        + chrono::Duration::hours(hours_from_now)
        + chrono::Duration::minutes(minutes);
    json!({
        "start": start.to_rfc3339(), "end": (start + chrono::Duration::hours(2)).to_rfc3339(),
        "timezone": "Europe/Berlin", "impact": "partial_outage", "components": ["api", "checkout"],
        "message": "Checkout may be slow; orders are kept.",
    })
}

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app.client().request(method, format!("{}{path}", app.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("request");
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// The notice deliveries of campaign `id`, as an operator reads them.
async fn notices(c: &Comms, id: i64) -> (StatusCode, Value) {
    call(&c.app, &c.operator, Method::GET, &format!("/api/v1/campaigns/{id}/notices"), None).await
}

async fn create(c: &Comms, spec: Value) -> i64 {
    let (status, body) =
        call(&c.app, &c.operator, Method::POST, "/api/v1/campaigns", Some(spec)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["summary"]["id"].as_i64().expect("id")
}

async fn public_get(app: &TestApp, path: &str) -> (StatusCode, String) {
    let res = app.get(path, None).await;
    (res.status(), res.text().await.unwrap_or_default())
}

/// A confirmed subscriber, straight through the store (the sign-up path has its own test).
async fn confirmed_subscriber(app: &TestApp, email: &str) {
    let s = app.store.subscribe(email, None, &[]).await.expect("subscribe");
    app.store.confirm_subscriber(&s.token).await.expect("confirm").expect("known token");
}

// ---- the tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn schedule_then_subscribe_and_confirm_through_the_emailed_link_then_receive_the_reminder() {
    let c = comms_app(json!([])).await;
    // The 1-hour reminder falls due a few seconds from now.
    let start = chrono::Utc::now() + chrono::Duration::hours(1) + chrono::Duration::seconds(6);
    let id = create(&c, campaign(json!({
        "start": start.to_rfc3339(), "end": (start + chrono::Duration::hours(1)).to_rfc3339(), "timezone": "Europe/Berlin",
        "components": ["api"], "message": "Short API maintenance.", "impact": "degraded"
    })))
    .await;
    let (status, body) =
        call(&c.app, &c.operator, Method::POST, &format!("/api/v1/campaigns/{id}/schedule"), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "scheduled");

    let (status, page) = public_get(&c.app, "/status").await;
    assert_eq!(status, StatusCode::OK, "the status page needs no sign-in");
    assert!(
        page.contains("Upcoming maintenance") && page.contains("web: v1.4.2 → v1.5.0"),
        "{page}"
    );
    assert!(page.contains("Short API maintenance."));

    let res = c
        .app
        .client()
        .post(format!("{}/status/subscribe", c.app.url))
        .header("origin", &c.app.url)
        .form(&[("email", "reader@example.test"), ("components", "api")])
        .send()
        .await
        .expect("subscribe");
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    let mails = c
        .smtp
        .wait_for("confirmation e-mail", |m| {
            !subjects_with(m, "Confirm your subscription").is_empty()
        })
        .await;
    let confirm = subjects_with(&mails, "Confirm your subscription")[0].clone();
    assert_eq!(mails.len(), 1, "an unconfirmed subscriber gets nothing but the confirmation");
    let text = confirm["text"].as_str().expect("text");
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/status/confirm?token="))
        .expect("a confirm link");
    assert!(link.starts_with(&c.app.url), "{link}");
    let res = c.app.client().get(link).send().await.expect("confirm");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap_or_default()
            .contains("reader@example.test will get maintenance notices")
    );

    let mails = c
        .smtp
        .wait_for("1-hour reminder", |m| !subjects_with(m, "maintenance in 1 hour").is_empty())
        .await;
    let reminder = subjects_with(&mails, "maintenance in 1 hour")[0];
    assert_eq!(reminder["to"], "reader@example.test");
    let text = reminder["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("Unsubscribe: ") && text.contains("/status/unsubscribe?token="),
        "{text}"
    );
    assert!(text.contains("degraded performance") && text.contains("Affected: api"), "{text}");
    assert!(reminder["html"].as_str().unwrap_or_default().contains("Unsubscribe</a>"));
    let ics =
        reminder["attachments"].as_array().and_then(|a| a.first()).expect("an .ics attachment");
    assert_eq!(ics["filename"], "maintenance.ics");
    let events = parse_ics(ics["content"].as_str().unwrap_or_default());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["sequence"], 0);

    // The server records the delivery as sent just after the SMTP server has it.
    let sent: Vec<String> = crate::helpers::eventually(
        "the reminder's delivery is recorded as sent",
        std::time::Duration::from_secs(5),
        async || {
            let (_, deliveries) = notices(&c, id).await;
            let sent: Vec<String> = deliveries
                .as_array()
                .expect("list")
                .iter()
                .filter(|d| d["status"] == "sent")
                .filter_map(|d| d["kind"].as_str().map(str::to_string))
                .collect();
            (!sent.is_empty()).then_some(sent)
        },
    )
    .await;
    assert_eq!(sent, ["reminder_1h"]);
    let (status, subs) = call(&c.app, &c.operator, Method::GET, "/api/v1/subscribers", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(subs[0]["confirmed_at"].is_string() && subs[0].get("token").is_none(), "{subs}");
    c.app.stop().await;
}

#[tokio::test]
async fn a_reschedule_sends_an_update_and_raises_the_sequence_and_a_cancellation_is_published_cancelled()
 {
    let c = comms_app(json!([])).await;
    confirmed_subscriber(&c.app, "ops@example.test").await;
    let id = create(&c, campaign(window_in(48, 0))).await;
    let (status, body) =
        call(&c.app, &c.operator, Method::POST, &format!("/api/v1/campaigns/{id}/schedule"), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.smtp
        .wait_for("scheduled notice", |m| !subjects_with(m, "Maintenance scheduled").is_empty())
        .await;

    let (status, ics) = public_get(&c.app, "/status/calendar.ics").await;
    assert_eq!(status, StatusCode::OK);
    let first = parse_ics(&ics);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0]["sequence"].as_i64(), first[0]["status"].as_str()),
        (Some(0), Some("CONFIRMED"))
    );

    // Moved to 72 h ahead, written as wall-clock time in Berlin.
    let local = (chrono::Utc::now() + chrono::Duration::hours(72))
        .with_timezone(&chrono_tz::Europe::Berlin);
    let start = local.format("%Y-%m-%dT%H:00").to_string();
    let end = (local + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:00").to_string();
    let mut moved = window_in(72, 0);
    moved["start"] = json!(start);
    moved["end"] = json!(end);
    let (status, body) = call(
        &c.app,
        &c.operator,
        Method::POST,
        &format!("/api/v1/campaigns/{id}/reschedule"),
        Some(moved),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mails = c
        .smtp
        .wait_for("rescheduled notice", |m| !subjects_with(m, "Maintenance rescheduled").is_empty())
        .await;
    let update = subjects_with(&mails, "Maintenance rescheduled")[0];
    let attached = parse_ics(update["attachments"][0]["content"].as_str().unwrap_or_default());
    assert_eq!(attached[0]["sequence"], 1, "the e-mailed update carries the new SEQUENCE");
    assert_eq!(attached[0]["uid"], first[0]["uid"]);

    let (_, ics) = public_get(&c.app, "/status/calendar.ics").await;
    let second = parse_ics(&ics);
    assert_eq!(second[0]["uid"], first[0]["uid"], "the UID never changes");
    assert_eq!(second[0]["sequence"], 1);
    let berlin_start =
        chrono::NaiveDateTime::parse_from_str(&start, "%Y-%m-%dT%H:%M").expect("start");
    let expected = chrono::TimeZone::from_local_datetime(&chrono_tz::Europe::Berlin, &berlin_start)
        .single()
        .expect("unambiguous")
        .to_utc();
    let got = chrono::DateTime::parse_from_rfc3339(second[0]["start"].as_str().unwrap_or_default())
        .expect("dtstart")
        .to_utc();
    assert_eq!(got, expected, "the wall-clock start was read in Europe/Berlin");

    let (_, deliveries) = notices(&c, id).await;
    let by_kind = |kind: &str| -> Vec<String> {
        deliveries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"] == kind)
            .filter_map(|d| d["status"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        by_kind("reminder_24h"),
        ["cancelled", "pending"],
        "the old reminder is cancelled, a new one queued"
    );

    let (status, body) = call(
        &c.app,
        &c.operator,
        Method::POST,
        &format!("/api/v1/campaigns/{id}/abort"),
        Some(json!({ "reason": "vendor delay" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "draft");
    let mails = c
        .smtp
        .wait_for("cancellation", |m| !subjects_with(m, "Maintenance cancelled").is_empty())
        .await;
    let cancel = subjects_with(&mails, "Maintenance cancelled")[0];
    assert!(cancel["attachments"][0]["type"] == "text/calendar", "{cancel}");
    let (_, ics) = public_get(&c.app, "/status/calendar.ics").await;
    let third = parse_ics(&ics);
    assert_eq!(
        (third[0]["sequence"].as_i64(), third[0]["status"].as_str()),
        (Some(2), Some("CANCELLED"))
    );
    let (_, page) = public_get(&c.app, "/status").await;
    assert!(page.contains("Recent history") && page.contains(">cancelled<"), "{page}");

    // The Atom feed: well-formed XML, and a valid feed to feedparser.
    let (status, atom) = public_get(&c.app, "/status/feed.atom").await;
    assert_eq!(status, StatusCode::OK);
    require_python_module("feedparser");
    let parsed = run_python(
        r#"
import feedparser, json, sys, xml.etree.ElementTree as ET
text = sys.stdin.read()
ET.fromstring(text.encode())
f = feedparser.parse(text)
print(json.dumps({'bozo': int(f.bozo), 'version': f.version, 'titles': [e.title for e in f.entries],
                  'ids': [e.id for e in f.entries], 'feed_id': f.feed.get('id', '')}))
"#,
        &atom,
    );
    assert_eq!(parsed["bozo"], 0, "{atom}");
    assert_eq!(parsed["version"], "atom10");
    let titles: Vec<&str> =
        parsed["titles"].as_array().expect("titles").iter().filter_map(Value::as_str).collect();
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(
        titles[0].starts_with("Maintenance cancelled")
            && titles[1].starts_with("Maintenance rescheduled")
            && titles[2].starts_with("Maintenance scheduled"),
        "{titles:?}"
    );
    c.app.stop().await;
}

#[tokio::test]
async fn a_freeze_refuses_a_start_and_an_admin_override_of_the_window_gate_is_audited() {
    let today = chrono::Utc::now().format("%a").to_string();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).format("%a").to_string();
    let freeze = json!([{ "name": "all-day", "from": format!("{today} 00:00"), "to": format!("{tomorrow} 00:00"), "timezone": "UTC" }]);
    let c = comms_app(freeze).await;
    let mut w = window_in(30, 0);
    w["start_only_inside"] = json!(true);
    let id = create(&c, campaign(w)).await;
    let path = format!("/api/v1/campaigns/{id}/start");

    let (status, body) = call(&c.app, &c.operator, Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("freeze 'all-day'") && msg.contains("only start inside its window"),
        "{msg}"
    );

    let (status, body) = call(
        &c.app,
        &c.operator,
        Method::POST,
        &path,
        Some(json!({ "override_reason": "hotfix" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only an admin overrides: {body}");

    let (status, body) = call(
        &c.app,
        &c.admin,
        Method::POST,
        &path,
        Some(json!({ "override_reason": "security hotfix CVE-1" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let start = c.app.audit_rows("campaign.start").await.pop().expect("the start is audited");
    let details: Value = serde_json::from_str(&start.details).expect("json");
    assert_eq!(start.actor, "ada");
    assert_eq!(details["override"]["reason"], "security hotfix CVE-1");
    assert_eq!(details["override"]["overrode"].as_array().map(Vec::len), Some(2), "{details}");
    c.app.stop().await;
}

#[tokio::test]
async fn bad_windows_and_addresses_get_clear_field_errors() {
    let c = comms_app(json!([])).await;
    let cases = [
        (
            json!({ "start": "2027-03-28T02:30", "end": "2027-03-28T05:00", "timezone": "Europe/Berlin" }),
            "window.start",
            "does not exist in Europe/Berlin",
        ),
        (
            json!({ "start": "2027-10-31T02:30", "end": "2027-10-31T05:00", "timezone": "Europe/Berlin" }),
            "window.start",
            "happens twice",
        ),
        (
            json!({ "start": "2027-06-01T08:00", "end": "2027-06-01T07:00", "timezone": "Europe/Berlin" }),
            "window.end",
            "not after its start",
        ),
        (
            json!({ "start": "2027-06-01T08:00", "end": "2027-06-01T09:00", "timezone": "Europe/Berln" }),
            "window.timezone",
            "IANA",
        ),
    ];
    for (window, field, words) in cases {
        let (status, body) = call(
            &c.app,
            &c.operator,
            Method::POST,
            "/api/v1/campaigns",
            Some(campaign(window.clone())),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{window}: {body}");
        let msg = body["error"]["fields"][field].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{window}: {field} says {msg:?}");
    }
    // With its offset, the second 02:30 of the fall-back night is accepted.
    create(&c, campaign(json!({ "start": "2027-10-31T02:30:00+01:00", "end": "2027-10-31T05:00", "timezone": "Europe/Berlin" }))).await;

    let past = create(&c, campaign(window_in(-3, 0))).await;
    let (status, body) = call(
        &c.app,
        &c.operator,
        Method::POST,
        &format!("/api/v1/campaigns/{past}/schedule"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["fields"]["window.end"]
            .as_str()
            .unwrap_or_default()
            .contains("pick a window in the future")
    );

    let res = c
        .app
        .client()
        .post(format!("{}/status/subscribe", c.app.url))
        .header("origin", &c.app.url)
        .header("accept", "application/json")
        .form(&[("email", "not an address")])
        .send()
        .await
        .expect("subscribe");
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = res.json().await.expect("json");
    assert!(
        body["error"]["fields"]["email"]
            .as_str()
            .unwrap_or_default()
            .contains("not an e-mail address")
    );
    c.app.stop().await;
}

#[tokio::test]
async fn killing_the_server_mid_batch_still_delivers_every_notice_exactly_once() {
    require_python_module("aiosmtpd");
    let dir = tempfile::tempdir().expect("tempdir");
    let smtp = Smtp::start(dir.path());
    let db = dir.path().join("s.db");
    const SUBSCRIBERS: usize = 30;

    // Build the outbox with no dispatcher running: sign-ups (a confirmation each) and one
    // scheduled campaign (an announcement to each confirmed subscriber).
    {
        let store =
            server::store::connect(&format!("sqlite://{}", db.display())).await.expect("store");
        for i in 0..SUBSCRIBERS {
            let s = store
                .subscribe(&format!("reader{i}@example.test"), None, &[])
                .await
                .expect("subscribe");
            store.confirm_subscriber(&s.token).await.expect("confirm");
        }
        let engine = server::engine::Engine::new(
            store.clone(),
            std::sync::Arc::new(server::adapters::registry::Registry::new(None)),
            server::engine::EngineConfig::default(),
        );
        let service = server::services::CampaignService::new(store.clone(), engine);
        let admin = Principal {
            user_id: 0,
            username: "ada".into(),
            role: Role::Admin,
            via: AuthVia::Token,
            source_ip: "test".into(),
            must_change_password: false,
        };
        service
            .environments()
            .create(&admin, serde_json::from_value(environment(json!([]))).expect("env"))
            .await
            .expect("environment");
        let spec = serde_json::from_value(campaign(window_in(48, 0))).expect("spec");
        let id = service.create(&admin, spec).await.expect("draft").summary.id;
        service.schedule(&admin, id).await.expect("scheduled");
        store.close().await;
    }
    let expected = 2 * SUBSCRIBERS;

    let port = free_port_block(1).expect("port");
    let serve = |log: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.env_remove("SWITCHYARD_CONFIG")
            .env("SWITCHYARD_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
            .env("SWITCHYARD_SITE_ROOT", "/nonexistent-site")
            .env("SWITCHYARD_SMTP_HOST", "127.0.0.1")
            .env("SWITCHYARD_SMTP_PORT", smtp.port.to_string())
            .env("SWITCHYARD_SMTP_TLS", "none")
            .env("SWITCHYARD_NOTIFY_MAX_PER_SECOND", "10")
            .env("SWITCHYARD_LOG", "warn")
            .arg("serve");
        Daemon::spawn("switchyard serve", &mut cmd, dir.path().join(log)).expect("serve starts")
    };

    let mut first = serve("first.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while smtp.count() < expected / 3 {
        assert!(Instant::now() < deadline, "the dispatcher sent nothing: {}", first.log_text());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Between two sends (the dispatcher paces them 100 ms apart): SIGKILL, no shutdown.
    tokio::time::sleep(Duration::from_millis(30)).await;
    first.kill();
    let at_kill = smtp.count();
    assert!(at_kill < expected, "the kill came after the batch ({at_kill} of {expected})");

    let second = serve("second.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while smtp.count() < expected {
        assert!(
            Instant::now() < deadline,
            "after the restart only {} of {expected} arrived: {}",
            smtp.count(),
            second.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // nothing more may arrive
    drop(second);

    let mails = smtp.mails();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for m in &mails {
        *by_id.entry(m["message_id"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    let store = server::store::connect(&format!("sqlite://{}", db.display())).await.expect("db");
    let deliveries = store.deliveries_due_by(chrono::Utc::now(), 1000).await.expect("deliveries");
    assert_eq!(deliveries.len(), expected);
    for d in &deliveries {
        let key = &d.idempotency_key;
        assert_eq!(d.status, "sent", "{key}");
        let n = by_id
            .iter()
            .filter(|(id, _)| id.contains(key.as_str()))
            .map(|(_, n)| *n)
            .sum::<usize>();
        assert_eq!(n, 1, "{key} reached the SMTP server {n} times");
    }
    assert_eq!(mails.len(), expected, "{at_kill} before the kill, {} in all", mails.len());
    // A delivery tried twice is one whose attempt the kill interrupted (the SMTP server never
    // refuses here, so nothing else retries).
    let retried: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.attempts > 1)
        .map(|d| d.last_result.as_deref().unwrap_or_default())
        .collect();
    assert!(retried.len() <= 1, "at most the one message in flight is retried: {retried:?}");
}

// ---- publishing, reminders, webhooks, overruns, failures, throttling ----------------------------

#[tokio::test]
async fn a_campaign_without_notices_is_still_published_and_one_with_publish_off_is_not() {
    let c = comms_app(json!([])).await;
    confirmed_subscriber(&c.app, "quiet@example.test").await;
    let mut quiet = campaign(window_in(48, 0));
    quiet["name"] = json!("quiet-canary");
    quiet["communications"] = json!({ "notify": false });
    let id = create(&c, quiet).await;
    let mut hidden = campaign(window_in(50, 0));
    hidden["name"] = json!("hidden-canary");
    hidden["to_release"] = json!("v1.6.0");
    hidden["communications"] = json!({ "notify": false, "publish": false });
    let hidden_id = create(&c, hidden).await;
    for id in [id, hidden_id] {
        let (status, body) = call(
            &c.app,
            &c.operator,
            Method::POST,
            &format!("/api/v1/campaigns/{id}/schedule"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let (_, page) = public_get(&c.app, "/status").await;
    assert!(page.contains("web: v1.4.2 → v1.5.0"), "the quiet campaign is on the page: {page}");
    assert!(!page.contains("v1.6.0"), "publish = false keeps it off the page");
    let (_, ics) = public_get(&c.app, "/status/calendar.ics").await;
    let events = parse_ics(&ics);
    assert_eq!(events.len(), 1, "{ics}");
    assert!(events[0]["summary"].as_str().unwrap_or_default().contains("v1.5.0"));
    let (_, atom) = public_get(&c.app, "/status/feed.atom").await;
    assert!(
        atom.contains("Maintenance scheduled: web: v1.4.2 → v1.5.0") && !atom.contains("v1.6.0")
    );

    let (_, deliveries) = notices(&c, id).await;
    assert_eq!(deliveries, json!([]), "nobody is sent anything");
    let mails = c.smtp.wait_for("the sign-up confirmation", |m| !m.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(subjects_with(&mails, "Maintenance").is_empty(), "{mails:#?}");
    c.app.stop().await;
}

#[tokio::test]
async fn reminder_offsets_are_the_campaigns_and_bad_ones_name_their_field() {
    let c = comms_app(json!([])).await;
    let mut spec = campaign(window_in(48, 0));
    spec["communications"]["reminders"] = json!(["1h", "an hour", 0]);
    let (status, body) =
        call(&c.app, &c.operator, Method::POST, "/api/v1/campaigns", Some(spec.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields = &body["error"]["fields"];
    assert!(
        fields["communications.reminders[1]"].as_str().unwrap_or_default().contains("like 24h"),
        "{body}"
    );
    assert!(fields["communications.reminders[2]"].is_string(), "{body}");

    spec["communications"]["reminders"] = json!(["1d", "30m", 45]);
    spec["communications"]["templates"] =
        json!({ "reminder": { "subject": "{service} goes down in {in}", "body": "{when}" } });
    let id = create(&c, spec).await;
    let (status, _) =
        call(&c.app, &c.operator, Method::POST, &format!("/api/v1/campaigns/{id}/schedule"), None)
            .await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<String> = c
        .app
        .store
        .campaign_notices(id)
        .await
        .expect("notices")
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(kinds, ["scheduled", "reminder_24h", "reminder_30m", "reminder_45s"]);
    c.app.stop().await;
}

#[tokio::test]
async fn webhook_notices_are_signed_slack_bodies_are_plain_text_and_a_refused_one_is_a_visible_failure()
 {
    let c = comms_app(json!([])).await;
    let hooks = receiver().await;
    let mut secrets = BTreeMap::new();
    for (email, name, format) in [
        ("json@example.test", "json", "json"),
        ("slack@example.test", "slack", "slack"),
        ("gone@example.test", "gone", "json"),
    ] {
        let url = format!("{}/hook/{name}", hooks.url);
        let s = c
            .app
            .store
            .subscribe_with_format(email, Some(&url), format, &[])
            .await
            .expect("subscribe");
        c.app.store.confirm_subscriber(&s.token).await.expect("confirm").expect("known");
        secrets.insert(name.to_string(), s.webhook_secret.expect("a signing secret"));
    }
    let id = create(&c, campaign(window_in(48, 0))).await;
    let (status, body) =
        call(&c.app, &c.operator, Method::POST, &format!("/api/v1/campaigns/{id}/schedule"), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let deliveries =
        eventually("the webhook deliveries settle", Duration::from_secs(30), async || {
            let (_, d) = notices(&c, id).await;
            let settled = d
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"] == "scheduled" && d["channel"] == "webhook")
                .filter(|d| d["status"] == "sent" || d["status"] == "failed")
                .count();
            (settled == 3).then_some(d)
        })
        .await;

    let seen = hooks.seen.lock().expect("lock").clone();
    for (name, headers, body) in &seen {
        let ts = headers.get("x-switchyard-timestamp").expect("a timestamp header");
        let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().expect("unix seconds");
        assert!((0..60).contains(&age), "timestamp {ts} is {age}s old");
        let mut signed = format!("{ts}.").into_bytes();
        signed.extend_from_slice(body);
        assert_eq!(
            headers.get("x-switchyard-signature").map(String::as_str),
            Some(format!("sha256={}", hmac_hex(&secrets[name], &signed)).as_str()),
            "{name}: the signature is HMAC-SHA256 over timestamp.body with the subscriber's secret"
        );
        // A tampered body would not verify.
        assert_ne!(hmac_hex(&secrets[name], b"1.{}"), hmac_hex(&secrets[name], &signed));
        let json: Value = serde_json::from_slice(body).expect("a JSON body");
        assert!(json["text"].as_str().unwrap_or_default().contains("Maintenance scheduled"));
        match name.as_str() {
            "slack" => assert_eq!(json.as_object().map(|o| o.len()), Some(1), "only text: {json}"),
            _ => {
                assert_eq!(json["kind"], "scheduled");
                assert_eq!(
                    json["id"].as_str(),
                    headers.get("idempotency-key").map(String::as_str),
                    "{json}"
                );
                assert_eq!(json["window"]["components"], json!(["api", "checkout"]));
            }
        }
    }
    assert_eq!(seen.len(), 3, "one POST each; a 410 is not retried");

    let gone = deliveries
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["recipient"].as_str().is_some_and(|r| r.ends_with("/hook/gone")))
        .expect("the refused delivery is listed");
    assert_eq!(gone["status"], "failed", "{gone:#}");
    assert_eq!(gone["attempts"], 1);
    assert!(gone["last_error"].as_str().unwrap_or_default().contains("410"), "{gone:#}");
    assert!(gone["last_result"].as_str().unwrap_or_default().starts_with("failed: HTTP 410"));

    // A viewer sees the failure on the server-rendered campaign page, called out at the top.
    c.app.add_user("vera", Role::Viewer).await;
    let cookie = c.app.login_ok("vera").await;
    let res = c.app.get(&format!("/campaigns/{id}"), Some(&cookie)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap_or_default();
    let alert = html.split("data-testid=\"comms-failed\"").nth(1).unwrap_or_default();
    assert!(alert.contains("1 failed delivery") && alert.contains("HTTP 410"), "{html}");
    assert!(html.contains("Notice previews") && html.contains("Maintenance scheduled: web"));
    c.app.stop().await;
}

#[tokio::test]
async fn a_window_that_runs_over_is_extended_announced_and_republished_with_a_higher_sequence() {
    let c = comms_app(json!([])).await;
    // The campaign only has to be running (the example canary bakes for minutes).
    confirmed_subscriber(&c.app, "watcher@example.test").await;
    let now = chrono::Utc::now();
    let end = now + chrono::Duration::seconds(3);
    let id = create(
        &c,
        campaign(json!({
            "start": (now - chrono::Duration::minutes(10)).to_rfc3339(), "end": end.to_rfc3339(),
            "timezone": "UTC", "impact": "degraded", "components": ["api"],
        })),
    )
    .await;
    let (status, body) =
        call(&c.app, &c.operator, Method::POST, &format!("/api/v1/campaigns/{id}/start"), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    c.smtp
        .wait_for("started notice", |m| !subjects_with(m, "Maintenance started").is_empty())
        .await;
    let (_, ics) = public_get(&c.app, "/status/calendar.ics").await;
    let before = parse_ics(&ics);
    assert_eq!(before[0]["sequence"], 0);

    // The dispatcher looks for overruns every 15 s.
    let mails = eventually("an extension is announced", Duration::from_secs(45), async || {
        let mails = c.smtp.mails();
        (!subjects_with(&mails, "Maintenance extended").is_empty()).then_some(mails)
    })
    .await;
    let extended = subjects_with(&mails, "Maintenance extended")[0];
    let attached = parse_ics(extended["attachments"][0]["content"].as_str().unwrap_or_default());
    assert_eq!(attached[0]["sequence"], 1, "the e-mailed calendar entry is the new version");

    let (_, ics) = public_get(&c.app, "/status/calendar.ics").await;
    let after = parse_ics(&ics);
    assert_eq!(after[0]["uid"], before[0]["uid"]);
    assert_eq!(after[0]["sequence"], 1);
    let new_end =
        chrono::DateTime::parse_from_rfc3339(after[0]["end"].as_str().unwrap_or_default())
            .expect("dtend")
            .to_utc();
    assert!(new_end > end + chrono::Duration::minutes(25), "{new_end} vs {end}");
    let (_, page) = public_get(&c.app, "/status").await;
    let shown = new_end.format("%H:%M").to_string();
    assert!(page.contains("Under maintenance now") && page.contains(&shown), "{shown}: {page}");
    let (_, atom) = public_get(&c.app, "/status/feed.atom").await;
    assert!(atom.contains("Maintenance extended"));
    c.app.stop().await;
}

#[tokio::test]
async fn public_sign_ups_are_limited_per_address_with_a_429_that_says_when_to_retry() {
    let c = comms_app(json!([])).await;
    let subscribe = |i: usize| {
        c.app
            .client()
            .post(format!("{}/status/subscribe", c.app.url))
            .header("origin", &c.app.url)
            .header("accept", "application/json")
            .form(&[("email", format!("burst{i}@example.test"))])
            .send()
    };
    for i in 0..server::http::status::SUBSCRIBE_PER_MINUTE {
        let res = subscribe(i).await.expect("subscribe");
        assert_eq!(res.status(), StatusCode::ACCEPTED, "sign-up {i}");
    }
    let res = subscribe(99).await.expect("subscribe");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert!(
        body["error"]["message"].as_str().unwrap_or_default().contains("too many sign-ups"),
        "{body}"
    );
    let subs = c.app.store.list_subscribers().await.expect("subscribers");
    assert_eq!(
        subs.len(),
        server::http::status::SUBSCRIBE_PER_MINUTE,
        "the refused one was not stored"
    );
    c.app.stop().await;
}

/// A private CA, and a certificate for 127.0.0.1 that it signed: `(ca.pem, smtp.pem, smtp.key)`.
fn private_ca(dir: &Path) -> (String, String, String) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output();
        let out = out.expect("openssl is missing: apt-get install openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    let ca_req = format!("req -x509 {ec} -keyout ca.key -out ca.pem -days 2");
    let ca_args: Vec<&str> = ca_req.split(' ').collect();
    openssl(&[&ca_args[..], &["-subj", "/CN=Switchyard test CA"]].concat());
    let leaf_req = format!("req {ec} -keyout smtp.key -out smtp.csr");
    let leaf_args: Vec<&str> = leaf_req.split(' ').collect();
    openssl(&[&leaf_args[..], &["-subj", "/CN=127.0.0.1"]].concat());
    let sign = "x509 -req -in smtp.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out smtp.pem \
                -days 2 -extfile leaf.ext";
    openssl(&sign.split_whitespace().collect::<Vec<_>>());
    let p = |f: &str| dir.join(f).display().to_string();
    (p("ca.pem"), p("smtp.pem"), p("smtp.key"))
}

#[tokio::test]
async fn email_goes_over_starttls_and_implicit_tls_to_a_server_a_private_ca_vouches_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = private_ca(dir.path());
    let starttls =
        Smtp::start_with(dir.path(), "starttls", &["--tlscert", &cert, "--tlskey", &key]);
    let smtps = Smtp::start_with(dir.path(), "smtps", &["--smtpscert", &cert, "--smtpskey", &key]);
    // Without the CA the certificate is refused: the delivery waits with the reason.
    for (smtp, mode, trust_ca) in
        [(&starttls, "starttls", true), (&smtps, "tls", true), (&starttls, "starttls", false)]
    {
        let address = format!("{mode}-{trust_ca}@example.test");
        let port = smtp.port.to_string();
        let mut settings = vec![
            ("SWITCHYARD_SMTP_HOST", "127.0.0.1"),
            ("SWITCHYARD_SMTP_PORT", port.as_str()),
            ("SWITCHYARD_SMTP_TLS", mode),
            ("SWITCHYARD_NOTIFY_RETRY_BASE_SECS", "1"),
        ];
        if trust_ca {
            settings.push(("SWITCHYARD_SMTP_CA_FILE", ca.as_str()));
        }
        let app = spawn_app_on(&dir.path().join(format!("{mode}-{trust_ca}.db")), &settings).await;
        app.store.subscribe(&address, None, &[]).await.expect("subscribe");
        if trust_ca {
            let mails = smtp
                .wait_for(&format!("the confirmation over {mode}"), |m| {
                    m.iter().any(|m| m["to"] == address.as_str())
                })
                .await;
            assert!(!subjects_with(&mails, "Confirm your subscription").is_empty());
        } else {
            let error =
                eventually("a failed attempt is recorded", Duration::from_secs(20), async || {
                    let all = app
                        .store
                        .deliveries_due_by(chrono::Utc::now(), 10)
                        .await
                        .expect("deliveries");
                    all.into_iter().find_map(|d| d.last_error)
                })
                .await;
            assert!(error.to_lowercase().contains("certificate"), "{error}");
            assert!(!smtp.mails().iter().any(|m| m["to"] == address.as_str()));
        }
        app.stop().await;
    }
}
