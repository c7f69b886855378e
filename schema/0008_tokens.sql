-- API tokens expire (issue 9, finding 14) and record when they were last used. Tokens made before
-- this migration get 90 days from the upgrade, so no script stops the day the appliance updates;
-- a token with no expiry is refused (the query compares expires_at).
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
UPDATE api_tokens SET expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '+90 days') WHERE expires_at IS NULL;
CREATE INDEX api_tokens_user ON api_tokens(user_id);
