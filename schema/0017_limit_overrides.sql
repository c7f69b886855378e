-- Quota overrides (issue 11): a teacher or admin lifts or lowers a per-student limit for one
-- student or for a whole class, optionally until a moment (the end of a lesson). One row per
-- (student or class, limit); exactly one of user_id and class_id is set. The limit names are the
-- settings they override (appliance.limit_overrides.NAMES); value 0 means no limit.
CREATE TABLE limit_overrides (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    class_id INTEGER REFERENCES classes(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value >= 0),
    -- NULL: until removed.
    until TEXT,
    -- The teacher's or admin's account may go later; the override stays.
    set_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    set_at TEXT NOT NULL,
    CHECK ((user_id IS NULL) != (class_id IS NULL))
);
CREATE UNIQUE INDEX limit_overrides_user ON limit_overrides (user_id, name) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX limit_overrides_class ON limit_overrides (class_id, name) WHERE class_id IS NOT NULL;
