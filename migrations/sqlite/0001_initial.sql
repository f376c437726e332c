-- Times are INTEGER milliseconds since the Unix epoch (UTC), as in the WIT contract.

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    -- Credentials (access token, API key, ...) as JSON sealed with the secret key
    -- (host/src/secrets.rs). Never returned by the API.
    credentials TEXT    NOT NULL DEFAULT '{}',
    status      TEXT    NOT NULL DEFAULT 'ok',
    created_at  INTEGER NOT NULL,
    UNIQUE (plugin_id, name)
);

CREATE TABLE integrations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin_id     TEXT    NOT NULL,
    instance_type TEXT    NOT NULL,
    group_id      INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    config        TEXT    NOT NULL DEFAULT '{}',
    -- JSON schedule; NULL means the instance type's default from the manifest.
    schedule      TEXT,
    -- NULL when running normally; else why it is paused: operator, error, needs-reconnect.
    paused_reason TEXT,
    -- When the scheduler should enqueue the next run; NULL while one is queued
    -- or running, for manual schedules, and while paused.
    next_due_at          INTEGER,
    last_started_at      INTEGER,
    last_success_at      INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX integrations_group ON integrations (group_id);
CREATE INDEX integrations_due ON integrations (next_due_at) WHERE next_due_at IS NOT NULL;

CREATE TABLE integration_state (
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    key            TEXT    NOT NULL,
    value          TEXT    NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (integration_id, key)
);

CREATE TABLE sync_runs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id    INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    trigger           TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 1,
    started_at        INTEGER,
    finished_at       INTEGER,
    duration_ms       INTEGER,
    batches           INTEGER NOT NULL DEFAULT 0,
    items_seen        INTEGER NOT NULL DEFAULT 0,
    records_created   INTEGER NOT NULL DEFAULT 0,
    records_updated   INTEGER NOT NULL DEFAULT 0,
    records_unchanged INTEGER NOT NULL DEFAULT 0,
    records_deleted   INTEGER NOT NULL DEFAULT 0,
    progress_done     INTEGER,
    progress_total    INTEGER,
    error_class       TEXT,
    error_message     TEXT,
    created_at        INTEGER NOT NULL
);
CREATE INDEX sync_runs_integration ON sync_runs (integration_id, id DESC);

CREATE TABLE sync_run_logs (
    sync_run_id INTEGER NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    level       TEXT    NOT NULL,
    message     TEXT    NOT NULL,
    PRIMARY KEY (sync_run_id, seq)
);

CREATE TABLE raw_batches (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    sync_run_id    INTEGER REFERENCES sync_runs (id) ON DELETE SET NULL,
    kind           TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    -- pending: stored, not yet turned into records; processed; failed.
    status         TEXT    NOT NULL DEFAULT 'pending',
    error          TEXT,
    created_at     INTEGER NOT NULL,
    processed_at   INTEGER
);
CREATE INDEX raw_batches_pending ON raw_batches (integration_id, status, id);

-- Records. `version` starts at 1 and grows on every real change, which lets an
-- upsert tell created from updated portably; unchanged rows are not touched.
CREATE TABLE objects (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL,
    external_id    TEXT    NOT NULL,
    name           TEXT,
    data           TEXT    NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER,
    UNIQUE (integration_id, kind, external_id)
);

CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL,
    external_id    TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    actor          TEXT,
    target         TEXT,
    value          REAL,
    unit           TEXT,
    data           TEXT    NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER,
    UNIQUE (integration_id, kind, external_id)
);
CREATE INDEX events_time ON events (integration_id, occurred_at);

CREATE TABLE blocks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL,
    external_id    TEXT    NOT NULL,
    event_id       TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER,
    UNIQUE (integration_id, kind, external_id)
);
CREATE INDEX blocks_event ON blocks (integration_id, event_id);

-- Durable work. A job is claimed with a lease its worker renews; a job whose
-- lease expires is rescued.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    queue            TEXT    NOT NULL,
    integration_id   INTEGER REFERENCES integrations (id) ON DELETE CASCADE,
    -- JSON: trigger, backfill start.
    args             TEXT    NOT NULL DEFAULT '{}',
    -- available | running | completed | failed | cancelled
    state            TEXT    NOT NULL DEFAULT 'available',
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    sync_run_id      INTEGER,
    error_class      TEXT,
    error_message    TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX jobs_claimable ON jobs (queue, run_at, id) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (state, finished_at) WHERE state IN ('completed', 'failed', 'cancelled');
-- Repeated triggers coalesce in the enqueue query (one waiting job per
-- integration and queue), not by an index: a retry or a rescue may meet a job
-- queued meanwhile, and the claim takes one job per integration at a time.
CREATE INDEX jobs_waiting ON jobs (integration_id, queue) WHERE state = 'available';
-- Never two runs of one integration at once, whatever the queue.
CREATE UNIQUE INDEX jobs_one_running ON jobs (integration_id) WHERE state = 'running';

-- Named leases, e.g. the scheduler leadership.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
