-- One-time links made by the local `labrunner desktop` process (issue 11): a login link logs a
-- teacher in without typing a password; a setup link opens the first-start page that creates the
-- admin and the teacher. Only a hash of the token is kept, so the database never holds a usable link.
CREATE TABLE login_links (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL CHECK (purpose IN ('login', 'setup')),
    -- Who a login link logs in; NULL for a setup link (no account exists yet).
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    -- Set by the first attempt to use the link, whether or not it was accepted: a link is tried once.
    used_at TEXT,
    CHECK ((purpose = 'login') = (user_id IS NOT NULL))
);
CREATE INDEX login_links_expires ON login_links(expires_at);
