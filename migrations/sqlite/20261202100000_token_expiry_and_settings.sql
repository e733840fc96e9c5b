-- API tokens may expire; admin-set policies (the default token lifetime) live in settings.
-- Migrations are append-only: never edit this file once it has landed; add a new one.

ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
-- Why a token stopped working: 'revoked' by its owner or an admin, 'password_reset', 'disabled'.
ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT;

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
