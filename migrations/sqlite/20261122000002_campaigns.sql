-- Environments, campaigns, their step log and their event stream (for SSE).

CREATE TABLE environments (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    spec       TEXT NOT NULL,           -- JSON: domain::environment::Environment
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE campaigns (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL,
    environment        TEXT    NOT NULL,
    pool               TEXT    NOT NULL,
    strategy           TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    spec               TEXT    NOT NULL,  -- JSON: domain::campaign::CampaignSpec
    plan               TEXT,              -- JSON Plan, frozen at start; never re-planned
    env_snapshot       TEXT,              -- JSON Environment the plan was compiled against
    step_index         INTEGER NOT NULL DEFAULT 0,  -- next forward step to complete
    step_started_at    TEXT,
    rollback_plan      TEXT,              -- JSON Vec<Step>, computed once when aborting begins
    rollback_index     INTEGER NOT NULL DEFAULT 0,
    approvals          TEXT    NOT NULL DEFAULT '[]',  -- who approved the current approval step
    last_error         TEXT,
    abort_reason       TEXT,
    abort_requested_at TEXT,
    rollback_secs      REAL,              -- abort requested → all traffic on the from-release
    created_by         TEXT    NOT NULL,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL,
    started_at         TEXT,
    finished_at        TEXT
);
CREATE INDEX campaigns_status ON campaigns (status, id);
CREATE INDEX campaigns_environment ON campaigns (environment, id);
-- One campaign at a time may hold a pool.
CREATE UNIQUE INDEX campaigns_one_active_per_pool ON campaigns (environment, pool)
    WHERE status IN ('running', 'paused', 'awaiting_approval', 'aborting');

CREATE TABLE step_runs (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    phase       TEXT    NOT NULL CHECK (phase IN ('forward', 'rollback')),
    step_index  INTEGER NOT NULL,
    status      TEXT    NOT NULL,        -- running, done, skipped, failed
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    calls       TEXT    NOT NULL DEFAULT '[]',  -- JSON: each call, its result and read-back
    verdict     TEXT,                           -- JSON gate verdict
    log         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (campaign_id, phase, step_index)
);

CREATE TABLE campaign_events (
    id          INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    ts          TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL
);
CREATE INDEX campaign_events_campaign ON campaign_events (campaign_id, id);
