-- What Switchyard last set on each router pool, as read back after the change. Drift is any
-- difference between this and what the router reports later.
CREATE TABLE router_expectations (
    environment TEXT NOT NULL,
    backend     TEXT NOT NULL,
    pool        TEXT NOT NULL,
    target      TEXT NOT NULL,
    address     TEXT NOT NULL,
    weight_bp   INTEGER NOT NULL CHECK (weight_bp BETWEEN 0 AND 10000),
    state       TEXT NOT NULL CHECK (state IN ('ready', 'drain', 'maint')),
    campaign_id INTEGER,
    set_at      TEXT NOT NULL,
    PRIMARY KEY (environment, backend, pool, target)
);

-- A router change a campaign has begun and not yet recorded: after a crash between the change
-- and its record, the same campaign may redo it without that being taken for drift.
CREATE TABLE router_pending (
    environment TEXT NOT NULL,
    backend     TEXT NOT NULL,
    pool        TEXT NOT NULL,
    campaign_id INTEGER NOT NULL,
    since       TEXT NOT NULL,
    PRIMARY KEY (environment, backend, pool)
);
