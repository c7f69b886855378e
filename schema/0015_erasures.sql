-- Per-student erasure (issue 10): which account was erased, by whom and when. The account's row
-- stays, under a pseudonym and without its personal data, so its class's gradebook still adds up;
-- this row holds none of the erased data either, only how many rows of each kind went.
CREATE TABLE erasures (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    -- The teacher's or admin's account may go later; the record of the erasure stays.
    erased_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    erased_at TEXT NOT NULL,
    -- JSON: {"drafts": 2, "files": 1, ...}.
    counts TEXT NOT NULL
);
