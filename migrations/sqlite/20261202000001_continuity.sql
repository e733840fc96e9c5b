-- A campaign whose rollback paused (rather than route users to a dead member) still holds its
-- pool: no other campaign may start there until the rollback finishes.
DROP INDEX campaigns_one_active_per_pool;
CREATE UNIQUE INDEX campaigns_one_active_per_pool ON campaigns (environment, pool)
    WHERE status IN ('running', 'paused', 'awaiting_approval', 'aborting', 'rollback_paused');

-- Why a paused campaign is paused (person, error, drift), so resuming knows what to do.
ALTER TABLE campaigns ADD COLUMN pause_cause TEXT;
