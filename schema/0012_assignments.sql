-- What teachers expect from an assignment (issue 15): starter code per problem, a due date per
-- problem and class with its late policy, submissions marked late, and teachers' comments on a
-- submission that its student sees.

-- Loaded into a student's editor while they have neither a draft nor a submission.
ALTER TABLE problems ADD COLUMN starter_code TEXT NOT NULL DEFAULT '';

-- The due date (appliance/clock.py's stored form; NULL: none) of a problem in one class, and what
-- happens to a student's submission after it: 'accept_late' takes it and marks it late, 'close'
-- refuses it. Columns of the problem<->class link, so a class that stops showing the problem
-- forgets its due date with it.
ALTER TABLE problem_classes ADD COLUMN due_at TEXT;
ALTER TABLE problem_classes ADD COLUMN late_policy TEXT NOT NULL DEFAULT 'accept_late'
    CHECK (late_policy IN ('accept_late', 'close'));

-- A submission made after the due date that applied to its student (decided when it was made).
ALTER TABLE jobs ADD COLUMN late INTEGER NOT NULL DEFAULT 0;

CREATE TABLE submission_comments (
    id INTEGER PRIMARY KEY,
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    -- A teacher's account may go; their comment stays with the student's submission.
    author_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX submission_comments_job ON submission_comments(job_id, id);
