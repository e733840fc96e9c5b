//! Who may see whom a notice went to. Subscribers' e-mail addresses and webhook URLs (a Slack
//! or Teams URL is itself a credential) are shown to operators and above only; a viewer sees
//! that a delivery happened, how, when and with what result, with the recipient hidden, in the
//! result text too (an SMTP server's answer may quote the address).

use app::domain::auth::{Principal, Role};

use crate::store::DeliveryRow;

/// What a viewer sees instead of a recipient.
pub const HIDDEN: &str = "(hidden: operators and above see recipients)";

/// The deliveries as `actor` may see them.
pub fn visible_to(actor: &Principal, rows: Vec<DeliveryRow>) -> Vec<DeliveryRow> {
    if actor.role.allows(Role::Operator) {
        return rows;
    }
    rows.into_iter()
        .map(|mut d| {
            let hide = |text: Option<String>| text.map(|t| scrub(&t, &d.recipient));
            d.last_error = hide(d.last_error.take());
            d.last_result = hide(d.last_result.take());
            d.recipient = HIDDEN.to_string();
            d
        })
        .collect()
}

/// `text` without `recipient` (nor, for an e-mail address, its local part and domain).
fn scrub(text: &str, recipient: &str) -> String {
    let mut out = text.replace(recipient, "(recipient)");
    if let Some((local, domain)) = recipient.split_once('@') {
        for part in [local, domain] {
            if part.len() >= 3 {
                out = out.replace(part, "…");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_smtp_answer_quoting_the_address_is_scrubbed() {
        let t = scrub(
            "550 5.1.1 <alice@corp.example>: Recipient address rejected",
            "alice@corp.example",
        );
        assert!(!t.contains("alice") && !t.contains("corp.example"), "{t}");
        assert!(t.contains("550 5.1.1"), "{t}");
    }
}
