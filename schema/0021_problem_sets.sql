-- Down-sync of problem sets (issue 13): a publisher (the central instance, or staging) signs sets
-- of its own problems; a classroom that trusts the publisher's key keeps the sets it receives in an
-- inbox, and a teacher imports chosen problems from there into problems of their own.
--
-- Bundle bytes live in the blob store; the columns naming them end in `_blob`, so the blob purge
-- (store/files.blob_columns) keeps them while a row names them.

-- Publisher side: every publication of a set. `set_id` is stable per publisher and name, `version`
-- grows by one with each publication of that name.
CREATE TABLE published_problem_sets (
    id INTEGER PRIMARY KEY,
    set_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    problem_ids TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    bundle_blob TEXT NOT NULL,
    published_at TEXT NOT NULL,
    UNIQUE (set_id, version)
);

-- Classroom side: the publisher keys this appliance accepts sets from (not `sync_appliances`, the
-- central side's register of classrooms it accepts pushes from: another direction, another trust).
CREATE TABLE trusted_publishers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    added_at TEXT NOT NULL
);

-- The inbox: the latest received version of each (publisher, set). A newer version replaces the
-- row; an older one is refused as replayed. `problems` is the summary teachers see (titles,
-- languages, numbers of visible and hidden tests: never the tests themselves), so listing the
-- inbox never opens a bundle. Untrusting a publisher drops its sets from the inbox.
CREATE TABLE problem_set_inbox (
    id INTEGER PRIMARY KEY,
    publisher_id INTEGER NOT NULL REFERENCES trusted_publishers(id) ON DELETE CASCADE,
    set_id TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    bundle_blob TEXT NOT NULL,
    problems TEXT NOT NULL,
    received_at TEXT NOT NULL,
    UNIQUE (publisher_id, set_id)
);

-- Where a teacher's imported problem came from, so importing a newer version updates that
-- teacher's copy instead of making another. `content_sha256` is the hash of the problem as
-- imported: a copy whose content hash differs now was edited locally.
CREATE TABLE problem_origins (
    problem_id INTEGER PRIMARY KEY REFERENCES problems(id) ON DELETE CASCADE,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    publisher_key TEXT NOT NULL,
    set_id TEXT NOT NULL,
    origin_problem_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    content_sha256 TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (owner_id, publisher_key, set_id, origin_problem_id)
);
