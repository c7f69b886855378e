-- Server-side drafts: what a user last typed for a problem, or in their one scratchpad, so code
-- survives a reload, a lost connection and a server restart. `revision` lets a stale tab's save be
-- refused instead of silently overwriting newer work from another tab or computer.
CREATE TABLE drafts (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- NULL: the user's scratchpad.
    problem_id INTEGER REFERENCES problems(id) ON DELETE CASCADE,
    language TEXT NOT NULL,
    code TEXT NOT NULL,
    stdin TEXT NOT NULL DEFAULT '',
    revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX drafts_problem ON drafts(user_id, problem_id) WHERE problem_id IS NOT NULL;
CREATE UNIQUE INDEX drafts_scratch ON drafts(user_id) WHERE problem_id IS NULL;
