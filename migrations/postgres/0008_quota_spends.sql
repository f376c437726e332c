-- Requests counted against a plugin's declared quotas, per group: one row per
-- request, kept for the quota's period (a sliding window). `quota_key` is the
-- quota's id and what its `*` segments matched (one account, one endpoint).
CREATE TABLE quota_spends (
    group_id  BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    quota_key TEXT   NOT NULL,
    spent_at  BIGINT NOT NULL
);
CREATE INDEX quota_spends_by_key ON quota_spends (group_id, quota_key, spent_at);
