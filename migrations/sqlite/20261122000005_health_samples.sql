-- Health samples for charts: one row per target per sampling round of an active campaign
-- (and for a short while after it ends). Gates keep their own samples in step_runs; these
-- are what the campaign page draws, per target and in aggregate.
CREATE TABLE health_samples (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    -- End of the interval the figures cover (the store's RFC 3339 UTC text, sortable).
    at TEXT NOT NULL,
    -- Length of that interval in seconds.
    secs REAL NOT NULL,
    target TEXT NOT NULL,
    release TEXT,
    -- The router's weight for the target, read back, in basis points of the pool; NULL if unknown.
    weight_bp INTEGER,
    -- 'ready', 'drain', 'maint', … as the router reports it.
    state TEXT,
    -- Request figures, NULL when the health source cannot see requests.
    requests INTEGER,
    errors INTEGER,
    p50_ms REAL,
    p99_ms REAL,
    -- The probe of the target's health URL in this round, NULL if none was made.
    probe_ok INTEGER,
    probe_ms REAL
);
CREATE INDEX health_samples_campaign_at ON health_samples (campaign_id, at);
