//! E-mail over SMTP with lettre: plain text with an HTML alternative, an `.ics` attachment for
//! notices about a window, an unsubscribe link in every message, and the delivery's idempotency
//! key as the Message-ID so a resent copy is recognisable. Credentials never reach a log line.
//! TLS: STARTTLS (required) or implicit TLS, verified against the public roots plus an optional
//! CA file (`smtp.ca_file`).

use std::time::Duration;

use anyhow::Context as _;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::render::{CalendarEvent, Notice, calendar};
use super::{SendError, confirm_url, status_url, unsubscribe_url};
use crate::config::{SmtpConfig, SmtpTls};
use crate::store::DeliveryJob;

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    pub fn new(cfg: &SmtpConfig) -> anyhow::Result<Self> {
        // The server's certificate must be valid for `host` and chain to a public root or to
        // a CA in `ca_file`; STARTTLS is required, never opportunistic.
        let params = || -> anyhow::Result<TlsParameters> {
            let mut b = TlsParameters::builder(cfg.host.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading smtp.ca_file {}", path.display()))?;
                b = b.add_root_certificate(
                    Certificate::from_pem(&pem).context("smtp.ca_file holds no usable PEM")?,
                );
            }
            Ok(b.build_rustls()?)
        };
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::Tls => Tls::Wrapper(params()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host)
            .tls(tls)
            .port(cfg.port)
            .timeout(Some(Duration::from_secs(20)));
        if !cfg.username.is_empty() {
            builder =
                builder.credentials(Credentials::new(cfg.username.clone(), cfg.password.clone()));
        }
        Ok(Self { transport: builder.build(), from: cfg.from.parse()? })
    }

    pub async fn send(&self, job: &DeliveryJob, base: &str) -> Result<String, SendError> {
        let message = build(job, base, &self.from)?;
        match self.transport.send(message).await {
            Ok(r) => Ok(format!("accepted: {}", r.code())),
            Err(e) if e.is_permanent() => {
                Err(SendError::Permanent(format!("SMTP refused it: {e}")))
            }
            Err(e) => Err(SendError::Transient(format!("SMTP: {e}"))),
        }
    }
}

/// The Message-ID of a delivery: its idempotency key, the same on every attempt.
pub fn message_id(job: &DeliveryJob, base: &str) -> String {
    let host =
        base.split("://").nth(1).and_then(|r| r.split(['/', ':']).next()).unwrap_or("switchyard");
    format!("<{}@{host}>", job.idempotency_key)
}

pub fn build(job: &DeliveryJob, base: &str, from: &Mailbox) -> Result<Message, SendError> {
    let to: Mailbox = job.recipient.parse().map_err(|e| {
        SendError::Permanent(format!("the address {} is invalid: {e}", job.recipient))
    })?;
    let token = job.token.clone().unwrap_or_default();
    let builder =
        Message::builder().from(from.clone()).to(to).message_id(Some(message_id(job, base)));
    let bad = |e: lettre::error::Error| SendError::Permanent(format!("building the message: {e}"));
    if job.kind == "confirm" {
        let link = confirm_url(base, &token);
        let text = format!(
            "Someone (hopefully you) asked to receive maintenance notices at this address.\n\n\
             Confirm: {link}\n\nIf it was not you, ignore this message: nothing more will be sent.\n"
        );
        let html = format!(
            "<!doctype html><html lang=\"en\"><body><p>Someone (hopefully you) asked to receive maintenance \
             notices at this address.</p><p><a href=\"{0}\">Confirm the subscription</a></p><p><small>If it was \
             not you, ignore this message: nothing more will be sent.</small></p></body></html>",
            super::render::esc(&link)
        );
        return builder
            .subject("Confirm your subscription to maintenance notices")
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(bad);
    }
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let notice = Notice { kind: &job.kind, sequence: job.sequence, payload: &payload };
    if notice.is_alert() {
        // To an operator channel: no unsubscribe link (an admin edits the environment's alerts).
        return builder
            .subject(notice.headline())
            .multipart(MultiPart::alternative_plain_html(
                notice.alert_text(base),
                notice.alert_html(base),
            ))
            .map_err(bad);
    }
    let (status, unsubscribe) = (status_url(base), unsubscribe_url(base, &token));
    let body = MultiPart::alternative_plain_html(
        notice.text(&status, &unsubscribe),
        notice.html(&status, &unsubscribe),
    );
    let builder = builder.subject(notice.headline());
    if !notice.has_calendar() {
        return builder.multipart(body).map_err(bad);
    }
    let ics = calendar_for(job, &notice, &payload, base);
    let method = if job.kind == "cancelled" { "CANCEL" } else { "PUBLISH" };
    let content_type =
        ContentType::parse(&format!("text/calendar; charset=utf-8; method={method}"))
            .map_err(|e| SendError::Permanent(format!("content type: {e}")))?;
    let attachment: SinglePart = Attachment::new("maintenance.ics".into()).body(ics, content_type);
    builder.multipart(MultiPart::mixed().multipart(body).singlepart(attachment)).map_err(bad)
}

fn calendar_for(
    job: &DeliveryJob,
    notice: &Notice<'_>,
    payload: &serde_json::Value,
    base: &str,
) -> String {
    let time = |k: &str| {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc())
            .unwrap_or_default()
    };
    let event = CalendarEvent {
        uid: job
            .uid
            .clone()
            .unwrap_or_else(|| format!("campaign-{}@switchyard", job.campaign_id.unwrap_or(0))),
        sequence: job.sequence,
        start: time("start"),
        end: time("end"),
        summary: format!("Maintenance: {}", notice.title()),
        description: format!(
            "{} — {}",
            notice.impact(),
            payload.get("message").and_then(|m| m.as_str()).unwrap_or_default()
        ),
        cancelled: job.kind == "cancelled",
        stamp: chrono::Utc::now(),
        url: status_url(base),
    };
    calendar(if job.kind == "cancelled" { "CANCEL" } else { "PUBLISH" }, &[event])
}
