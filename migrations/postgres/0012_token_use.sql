-- When each admin token was last used (to the minute), so an operator can
-- tell which tokens are still in use before revoking one.
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
