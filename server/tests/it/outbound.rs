//! Outbound calls: TLS through the shared client builder against a local HTTPS server whose
//! certificate a throwaway CA signed (trusted only when configured), no redirects, and public
//! subscriber webhooks refused for every internal range at send time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use server::adapters::HealthSource as _;
use server::notify::SendError;
use server::outbound::{WebhookPolicy, parse_host_rules};
use server::store::DeliveryJob;
use server::testbed::Daemon;

use crate::helpers::spawn_app_with;

/// A CA and a certificate it signed for `localhost` and 127.0.0.1, in `dir`:
/// `(ca.pem, leaf.pem, leaf.key)`.
fn throwaway_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output();
        let out = out.expect("openssl is missing: apt-get install openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Switchyard throwaway CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &["-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
    (dir.join("ca.pem"), dir.join("leaf.pem"), dir.join("leaf.key"))
}

const HTTPS_SERVER: &str = r#"
import http.server, ssl, sys
port_file, cert, key, log = sys.argv[1:5]
class H(http.server.BaseHTTPRequestHandler):
    def answer(self):
        n = int(self.headers.get('content-length') or 0)
        body = self.rfile.read(n) if n else b''
        auth = 'bearer' if self.headers.get('authorization') else '-'
        with open(log, 'a') as f:
            f.write('%s %s %s %d\n' % (self.command, self.path, auth, len(body)))
        if self.path.startswith('/redirect'):
            self.send_response(302)
            self.send_header('Location', 'http://169.254.169.254/latest/meta-data/')
            self.send_header('Content-Length', '0')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
    do_GET = answer
    do_POST = answer
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(port_file + '.tmp', 'w').write(str(srv.server_address[1]))
import os; os.rename(port_file + '.tmp', port_file)
srv.serve_forever()
"#;

/// An HTTPS server (Python's, from Debian's python3) with a certificate from its own CA.
struct HttpsServer {
    port: u16,
    ca: PathBuf,
    log: PathBuf,
    _daemon: Daemon,
}

impl HttpsServer {
    fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("dir");
        let (ca, cert, key) = throwaway_ca(dir);
        let script = dir.join("https.py");
        std::fs::write(&script, HTTPS_SERVER).expect("script");
        let (port_file, log) = (dir.join("port"), dir.join("requests.log"));
        std::fs::write(&log, "").expect("log");
        let daemon = Daemon::spawn(
            "https server",
            Command::new("python3").arg(&script).arg(&port_file).arg(&cert).arg(&key).arg(&log),
            dir.join("https.out"),
        )
        .expect("python3 is missing: apt-get install python3");
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().parse().expect("port");
            }
            assert!(
                Instant::now() < deadline,
                "the HTTPS server did not start: {}",
                daemon.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self { port, ca, log, _daemon: daemon }
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

fn cause(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_client_speaks_tls_to_a_server_its_ca_file_vouches_for_and_follows_no_redirect()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let trusted = HttpsServer::start(&dir.path().join("trusted"));
    let stranger = HttpsServer::start(&dir.path().join("stranger"));
    server::outbound::trust_ca_file(&trusted.ca).expect("the CA file is read");

    let http = server::outbound::client(Duration::from_secs(5)).expect("client");
    let res =
        http.get(format!("https://localhost:{}/x", trusted.port)).send().await.expect("TLS works");
    assert_eq!(res.status(), StatusCode::OK);
    let res = http
        .get(format!("https://localhost:{}/redirect", trusted.port))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status(), StatusCode::FOUND, "a redirect is returned, not followed");
    assert_eq!(trusted.requests().len(), 2, "{:?}", trusted.requests());

    // A certificate from a CA nobody configured is refused.
    let err = http
        .get(format!("https://localhost:{}/x", stranger.port))
        .send()
        .await
        .expect_err("unknown CA");
    let why = cause(&err);
    assert!(why.contains("certificate") || why.contains("UnknownIssuer"), "{why}");
    assert!(stranger.requests().is_empty());

    // An adapter through the same builder: the HTTP probe reaches the https health URL.
    let probe =
        server::adapters::http_probe::HttpProbe::new(Default::default(), None).expect("probe");
    let ok = probe
        .probe("web-1", &format!("https://localhost:{}/healthz", trusted.port))
        .await
        .expect("probed");
    assert!(ok.ok, "{ok:?}");
    let bad = probe.probe("web-2", &format!("https://localhost:{}/healthz", stranger.port)).await;
    assert!(bad.is_err() || bad.is_ok_and(|p| !p.ok), "a probe does not trust the stranger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_tls_to_a_remote_server_with_the_ca_file_and_refuses_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = HttpsServer::start(&dir.path().join("tls"));
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/canary.toml");
    let run = |ca: Option<&Path>, url: String| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.env("SWITCHYARD_URL", url)
            .env("SWITCHYARD_TOKEN", "swy_test")
            .env_remove("SWITCHYARD_OUTBOUND_CA_FILE")
            .env_remove("SWITCHYARD_INSECURE_HTTP")
            .arg("plan")
            .arg("-f")
            .arg(&spec);
        if let Some(ca) = ca {
            cmd.env("SWITCHYARD_OUTBOUND_CA_FILE", ca);
        }
        cmd.output()
    };
    let https = format!("https://localhost:{}", tls.port);
    let without = run(None, https.clone()).await.expect("runs");
    assert!(!without.status.success());
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(err.contains("certificate") || err.contains("UnknownIssuer"), "{err}");
    assert!(tls.requests().is_empty(), "the token was not sent: {:?}", tls.requests());

    // With the CA the request (and its token) arrives; the fake server's answer is not a plan.
    let with = run(Some(&tls.ca), https).await.expect("runs");
    assert!(!with.status.success());
    assert_eq!(tls.requests().len(), 1, "{:?}", tls.requests());
    assert!(tls.requests()[0].starts_with("POST /api/v1/plan bearer"), "{:?}", tls.requests());

    // Plain http to another machine is refused before anything is sent.
    let clear = run(None, "http://switchyard.example.com".into()).await.expect("runs");
    assert!(!clear.status.success());
    assert!(String::from_utf8_lossy(&clear.stderr).contains("clear text"));
}

fn job(url: &str) -> DeliveryJob {
    DeliveryJob {
        id: 1,
        attempt_id: 1,
        channel: "webhook".into(),
        recipient: url.into(),
        idempotency_key: "k-1".into(),
        attempts: 1,
        kind: "scheduled".into(),
        sequence: 0,
        campaign_id: None,
        payload: "{}".into(),
        uid: None,
        token: None,
        webhook_secret: Some("a-signing-secret-of-enough-bytes".into()),
        webhook_format: None,
    }
}

async fn send(policy: &Arc<WebhookPolicy>, url: &str) -> Result<String, SendError> {
    let client = server::outbound::subscriber_client(policy.clone(), Duration::from_secs(5))
        .expect("client");
    server::notify::webhook::send(&client, policy, &job(url), "https://status.example.test").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_webhooks_are_refused_for_every_internal_range_at_send_time_and_are_never_redirected()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = HttpsServer::start(dir.path());
    server::outbound::trust_ca_file(&hooks.ca).expect("CA");
    let p = hooks.port;
    let nobody = Arc::new(WebhookPolicy::default());
    let cases = [
        (format!("https://127.0.0.1:{p}/hook"), "127.0.0.1 is a loopback address"),
        (format!("https://localhost:{p}/hook"), "localhost resolves to"),
        (format!("https://[::1]:{p}/hook"), "::1 is a loopback address"),
        (format!("https://[::ffff:127.0.0.1]:{p}/hook"), "loopback"),
        ("https://10.0.0.1/hook".into(), "a private address"),
        ("https://192.168.1.1/hook".into(), "a private address"),
        ("https://172.16.0.1/hook".into(), "a private address"),
        ("https://[fd00::1]/hook".into(), "private (unique local)"),
        ("https://169.254.169.254/latest/meta-data/".into(), "link-local"),
        ("https://[fd00:ec2::254]/latest".into(), "link-local"),
        ("https://[fe80::1]/hook".into(), "link-local"),
        ("https://224.0.0.1/hook".into(), "a multicast address"),
        ("https://[ff02::1]/hook".into(), "a multicast address"),
        ("https://0.0.0.0/hook".into(), "unspecified"),
        ("https://100.64.0.1/hook".into(), "carrier-grade NAT"),
        (format!("http://localhost:{p}/hook"), "must use https"),
        ("ftp://hooks.example.com/x".into(), "is not https"),
    ];
    let mut answered = Vec::new();
    for (url, expected) in &cases {
        let err = send(&nobody, url).await.expect_err(url);
        let SendError::Permanent(why) = &err else { panic!("{url}: not permanent: {err}") };
        assert!(why.contains(expected), "{url}: {why}");
        assert!(!why.contains("/hook"), "the URL is not repeated: {why}");
        answered.push(format!("{url} → {why}"));
    }
    assert!(hooks.requests().is_empty(), "nothing reached the server: {:?}", hooks.requests());
    // For the closing note: what each refused case answered.
    eprintln!("refused webhook URLs:\n{}", answered.join("\n"));

    // An admin allows the internal host: delivered over TLS; a redirect is a permanent failure
    // and its target is never asked.
    let admin = Arc::new(WebhookPolicy {
        allow_hosts: parse_host_rules("localhost,127.0.0.1,::1").expect("rules"),
        allow_http: Vec::new(),
    });
    assert_eq!(
        send(&admin, &format!("https://localhost:{p}/hook")).await.expect("sent"),
        "HTTP 200 OK"
    );
    let err = send(&admin, &format!("https://localhost:{p}/redirect")).await.expect_err("302");
    assert!(
        matches!(&err, SendError::Permanent(m) if m.contains("302") && m.contains("not redirected")),
        "{err}"
    );
    let seen = hooks.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].starts_with("POST /hook") && seen[1].starts_with("POST /redirect"), "{seen:?}");
}

#[tokio::test]
async fn the_status_page_refuses_a_webhook_that_is_not_https_or_points_inside_at_sign_up() {
    let app = spawn_app_with(&[]).await;
    for (url, expected) in [
        ("http://hooks.example.com/x", "https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/x", "loopback"),
    ] {
        let res = app
            .client()
            .post(format!("{}/status/subscribe", app.url))
            .header("accept", "application/json")
            .header("origin", &app.url)
            .form(&[("email", "a@example.test"), ("webhook_url", url)])
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        let body: serde_json::Value = res.json().await.expect("json");
        let why = body["error"]["fields"]["webhook_url"].as_str().unwrap_or_default();
        assert!(why.contains(expected), "{url}: {body}");
    }
    app.stop().await;
}
