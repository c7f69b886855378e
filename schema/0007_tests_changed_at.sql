-- When a problem's test cases were last replaced (epoch seconds, sub-second): a job graded
-- against the old tests is run again rather than stored against reused test ids.
ALTER TABLE problems ADD COLUMN tests_changed_at REAL NOT NULL DEFAULT 0;
