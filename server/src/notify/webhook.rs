//! Webhook notices: a JSON POST signed like the webhook provider's calls
//! (`X-Switchyard-Signature: sha256=HMAC(secret, "{timestamp}.{body}")` and
//! `X-Switchyard-Timestamp`), with the delivery's idempotency key in `Idempotency-Key`.
//! The body has a `text` field, so a Slack-compatible incoming webhook accepts it as is; a
//! subscriber who chose the `slack` format gets a body with `text` only (still signed).

use super::render::Notice;
use super::{SendError, status_url};
use crate::adapters::webhook::{IDEMPOTENCY_HEADER, SIGNATURE_HEADER, Signer, TIMESTAMP_HEADER};
use crate::outbound::{WebhookPolicy, check_webhook_url};
use crate::store::DeliveryJob;

/// Sends one notice with `client` (from [`crate::outbound::subscriber_client`]: no redirects,
/// only public addresses unless an admin allowed the host). Errors never repeat the URL: the
/// delivery log shows it to operators, and some webhook URLs are secrets themselves.
pub async fn send(
    client: &reqwest::Client,
    policy: &WebhookPolicy,
    job: &DeliveryJob,
    base: &str,
) -> Result<String, SendError> {
    let url = check_webhook_url(&job.recipient, policy).map_err(SendError::Permanent)?;
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let notice = Notice { kind: &job.kind, sequence: job.sequence, payload: &payload };
    let body = if job.webhook_format.as_deref() == Some("slack") {
        notice.slack_json(&status_url(base))
    } else {
        notice.webhook_json(&job.idempotency_key, &status_url(base))
    };
    let secret = job.webhook_secret.clone().unwrap_or_default();
    post_signed(client, url, job, &body, Some(&secret)).await
}

/// Sends an operator alert to an environment's webhook channel with `client` (the shared
/// outbound client: an admin configured the URL, so internal hosts are allowed), signed with
/// `alerts.webhook_secret`.
pub async fn send_alert(
    client: &reqwest::Client,
    job: &DeliveryJob,
    base: &str,
    secret: &str,
) -> Result<String, SendError> {
    let url = reqwest::Url::parse(&job.recipient)
        .map_err(|e| SendError::Permanent(format!("the alert webhook URL is invalid: {e}")))?;
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let notice = Notice { kind: &job.kind, sequence: job.sequence, payload: &payload };
    // Unsigned when no key is set (a Slack hook does not check); the delivery log says so.
    let signed = (!secret.is_empty()).then_some(secret);
    let sent =
        post_signed(client, url, job, &notice.alert_json(&job.idempotency_key, base), signed)
            .await?;
    Ok(if signed.is_some() {
        sent
    } else {
        format!("{sent} (unsigned: alerts.webhook_secret is not set)")
    })
}

async fn post_signed(
    client: &reqwest::Client,
    url: reqwest::Url,
    job: &DeliveryJob,
    body: &serde_json::Value,
    secret: Option<&str>,
) -> Result<String, SendError> {
    let body = serde_json::to_vec(body)
        .map_err(|e| SendError::Permanent(format!("encoding the body: {e}")))?;
    let ts = chrono::Utc::now().timestamp();
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .header(IDEMPOTENCY_HEADER, &job.idempotency_key)
        .header(TIMESTAMP_HEADER, ts.to_string());
    if let Some(secret) = secret {
        let signer = Signer::new(secret.as_bytes())
            .map_err(|e| SendError::Permanent(format!("signing key: {e}")))?;
        req = req.header(SIGNATURE_HEADER, signer.sign(ts, &body));
    }
    let res = req.body(body).send().await.map_err(|e| {
        let cause = crate::adapters::root_cause(&e.without_url());
        // The resolver refusing an internal address will refuse it next time too.
        if cause.starts_with("refused:") {
            SendError::Permanent(cause)
        } else {
            SendError::Transient(format!("POST failed: {cause}"))
        }
    })?;
    let status = res.status();
    if status.is_success() {
        Ok(format!("HTTP {status}"))
    } else if status.is_redirection() {
        Err(SendError::Permanent(format!(
            "HTTP {status}: webhooks are not redirected; register the final URL"
        )))
    } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(SendError::Transient(format!("HTTP {status}")))
    } else {
        Err(SendError::Permanent(format!("HTTP {status}")))
    }
}
