-- Switches the admin sets on the running appliance that must survive a restart (issue 11): the
-- queue paused, maintenance mode and its message for students. One row per switch; a missing row
-- is the switch's default (off).
CREATE TABLE appliance_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by INTEGER REFERENCES users(id) ON DELETE SET NULL
);

-- The dashboard and /metrics count jobs finished in the last minutes, every second or two.
CREATE INDEX jobs_finished ON jobs(finished_at);
