-- OAuth groups: a credentials version for single-flight refreshes, and the
-- authorization-code flows waiting for their callback. (The sealing of
-- groups.credentials moved to host/src/auth/secrets.rs.)

-- Bumped on every change of credentials, so a worker whose token was refused
-- can tell whether another one has already refreshed it. A group's status is
-- ok, or needs-reconnect once the provider refused its refresh token.
ALTER TABLE groups ADD COLUMN credentials_version INTEGER NOT NULL DEFAULT 1;

-- Authorizations started and not yet called back (state -> who asked).
CREATE TABLE oauth_authorizations (
    state         TEXT    PRIMARY KEY,
    plugin_id     TEXT    NOT NULL,
    group_name    TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    -- The PKCE verifier sealed with the secret key; NULL without PKCE.
    code_verifier TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX oauth_authorizations_age ON oauth_authorizations (created_at);
