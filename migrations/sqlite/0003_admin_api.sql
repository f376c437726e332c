-- The admin API's tokens, and the webhook deliveries already accepted.

-- Bearer tokens for /api. Only a SHA-256 of the token is kept: the token is
-- shown once, when it is created.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    token_sha256 TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
);

-- One row per accepted delivery (keyed by the SHA-256 of its body), so a
-- replay of the same delivery is answered without storing it twice.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id    TEXT    NOT NULL,
    group_id     INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    delivery_key TEXT    NOT NULL,
    body_bytes   INTEGER NOT NULL,
    batches      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    UNIQUE (group_id, delivery_key)
);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (received_at);

-- When an operator last asked for a run ("Update now"), so repeated clicks
-- within the configured minimum are refused instead of queued.
ALTER TABLE integrations ADD COLUMN last_triggered_at INTEGER;

-- When a fetch last succeeded. A webhook's run (it only processes what a
-- delivery brought) counts as a success but not as a fetch: the first fetch
-- after it must still be a backfill, and the schedule is not moved by it.
ALTER TABLE integrations ADD COLUMN last_fetched_at INTEGER;
UPDATE integrations SET last_fetched_at = last_success_at;

-- OAuth start links already opened: a link works once (and until it expires).
CREATE TABLE oauth_start_links (
    nonce      TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
