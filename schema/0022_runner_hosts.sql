-- Runner hosts (`labrunner worker`): the server gives jobs only to hosts registered here, by the
-- name each host declares and the Ed25519 key that signs its heartbeats and transcripts.
CREATE TABLE runner_hosts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    added_at TEXT NOT NULL
);

-- Which host ran a job (NULL: the server's own engine), for the dashboard and the job's record.
ALTER TABLE jobs ADD COLUMN host TEXT;

-- The runner-host region a class or a user prefers (NULL: any); a user's own wins over a class's.
ALTER TABLE classes ADD COLUMN region TEXT;
ALTER TABLE users ADD COLUMN region TEXT;
