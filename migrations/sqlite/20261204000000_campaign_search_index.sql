-- The campaign list's name/pool search is a LIKE '%…%', which no index can seek; this covering
-- index lets SQLite scan ~50 bytes a campaign instead of each row with its spec JSON.
CREATE INDEX campaigns_search ON campaigns (name, pool, status, environment);
