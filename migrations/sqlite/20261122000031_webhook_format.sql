-- A subscriber's webhook body: 'json' (the signed notice) or 'slack' (a Slack-compatible
-- incoming-webhook body, still signed).
ALTER TABLE subscribers ADD COLUMN webhook_format TEXT NOT NULL DEFAULT 'json' CHECK (webhook_format IN ('json', 'slack'));
