-- Communications: published maintenance windows (status page, feeds), subscribers, and the
-- durable outbox of notices with one delivery row per recipient and a log of every attempt.

-- What the public sees of a campaign's window. The UID never changes; SEQUENCE goes up on every
-- reschedule, extension and cancellation (RFC 5545 §3.8.7.4).
CREATE TABLE maintenance_windows (
    campaign_id INTEGER PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    uid         TEXT    NOT NULL UNIQUE,
    sequence    INTEGER NOT NULL DEFAULT 0,
    status      TEXT    NOT NULL CHECK (status IN ('scheduled', 'in_progress', 'completed', 'rolled_back', 'cancelled')),
    title       TEXT    NOT NULL,
    start_at    TEXT    NOT NULL,
    end_at      TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    impact      TEXT    NOT NULL,
    components  TEXT    NOT NULL DEFAULT '[]',  -- JSON array
    message     TEXT    NOT NULL DEFAULT '',
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);
CREATE INDEX maintenance_windows_start ON maintenance_windows (start_at);

CREATE TABLE subscribers (
    id           INTEGER PRIMARY KEY,
    email        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    webhook_url  TEXT,
    webhook_secret TEXT,
    components   TEXT    NOT NULL DEFAULT '[]',  -- JSON array; empty means every component
    -- Carried in the confirm and unsubscribe links; grants nothing else.
    token        TEXT    NOT NULL UNIQUE,
    created_at   TEXT    NOT NULL,
    confirmed_at TEXT,
    unsubscribed_at TEXT
);

-- One announcement: a campaign's window was scheduled, is 1 h away, started, … (or a sign-up's
-- confirmation request, with no campaign). Written in the transaction of the change causing it.
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER REFERENCES campaigns (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    sequence    INTEGER NOT NULL DEFAULT 0,
    due_at      TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    payload     TEXT    NOT NULL,              -- JSON snapshot of the window at that moment
    created_at  TEXT    NOT NULL,
    UNIQUE (campaign_id, kind, sequence)
);
CREATE INDEX notices_due ON notices (due_at);

-- The outbox proper: one row per notice, channel and recipient.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    notice_id       INTEGER NOT NULL REFERENCES notices (id) ON DELETE CASCADE,
    subscriber_id   INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient       TEXT    NOT NULL,
    -- Also the e-mail Message-ID and the webhook Idempotency-Key: every attempt carries the same.
    idempotency_key TEXT    NOT NULL UNIQUE,
    due_at          TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'cancelled', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    sent_at         TEXT,
    UNIQUE (notice_id, channel, recipient)
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    -- sent, retry, failed, or interrupted (the process died mid-attempt; found at restart)
    outcome     TEXT,
    detail      TEXT
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
