-- API tokens expire (issue 9, finding 14) and record when they were last used. Tokens made before
-- this migration get 90 days from the upgrade, so no script stops the day the appliance updates;
-- a token with no expiry is refused (the query compares expires_at).
-- PostgreSQL's form of schema/0008_tokens.sql: the same 90 days, in the same whole-second UTC text.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
UPDATE api_tokens SET expires_at = to_char((now() AT TIME ZONE 'UTC') + interval '90 days', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    WHERE expires_at IS NULL;
CREATE INDEX api_tokens_user ON api_tokens(user_id);
