-- Classroom -> central sync (issue 13). Two sides of one program:
--
-- The classroom side keeps a change log: one row per exported thing (a user, a class with its
-- members, a problem with its classes, test cases and assets, a finished submission) holding the
-- sequence number of its latest change, written by the triggers below. An export takes what
-- changed after a watermark; the watermark is the counter itself, so it is part of the data (the
-- same data gives the same bundle, byte for byte) and only grows. Deletions leave their row
-- behind, so a bundle can tell the central instance to drop its copy. Triggers, not code in each
-- store, because every writer (HTTP, CLI, retention purge, erasure, restore's re-erasure) would
-- have to remember it, and one forgotten path would silently never sync.
--
-- The central side keeps registered appliance keys and the imported copies in tables of their
-- own (`synced_*`, keyed by appliance id and the appliance's local id), never mixed with its own
-- users, classes and problems.
--
-- PostgreSQL's form of schema/0020_sync.sql (keep the two in step; tests/core/test_migrations_pg.py
-- compares the catalogues): the same tables, and the same 23 triggers (names, events, column lists,
-- conditions) calling one PL/pgSQL function instead of 23 bodies.

CREATE TABLE sync_counter (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO sync_counter (id, seq) VALUES (1, 0);

CREATE TABLE sync_changes (
    entity TEXT NOT NULL CHECK (entity IN ('user', 'class', 'problem', 'submission')),
    local_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (entity, local_id)
);
CREATE INDEX sync_changes_seq ON sync_changes(seq);

-- What existed before this migration is one change, the first.
INSERT INTO sync_changes (entity, local_id, seq) SELECT 'user', id, 1 FROM users;
INSERT INTO sync_changes (entity, local_id, seq) SELECT 'class', id, 1 FROM classes;
INSERT INTO sync_changes (entity, local_id, seq) SELECT 'problem', id, 1 FROM problems;
INSERT INTO sync_changes (entity, local_id, seq)
    SELECT 'submission', id, 1 FROM jobs WHERE kind = 'submission';
UPDATE sync_counter SET seq = (SELECT COALESCE(MAX(seq), 0) FROM sync_changes);

-- Classroom side: every change to what a bundle carries bumps its thing's sequence. One function
-- does what each SQLite trigger's body does; its arguments name the entity and the column holding
-- the thing's id.

CREATE FUNCTION sync_touch() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed record;
    thing BIGINT;
    next_seq BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := OLD;
    ELSE
        changed := NEW;
    END IF;
    CASE TG_ARGV[1]
        WHEN 'id' THEN thing := changed.id;
        WHEN 'class_id' THEN thing := changed.class_id;
        WHEN 'problem_id' THEN thing := changed.problem_id;
    END CASE;
    UPDATE sync_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO next_seq;
    INSERT INTO sync_changes (entity, local_id, seq) VALUES (TG_ARGV[0], thing, next_seq)
        ON CONFLICT (entity, local_id) DO UPDATE SET seq = excluded.seq;
    RETURN NULL;
END
$$;

CREATE TRIGGER sync_user_insert AFTER INSERT ON users FOR EACH ROW
    EXECUTE FUNCTION sync_touch('user', 'id');
CREATE TRIGGER sync_user_update AFTER UPDATE OF username, role ON users FOR EACH ROW
    EXECUTE FUNCTION sync_touch('user', 'id');
CREATE TRIGGER sync_user_delete AFTER DELETE ON users FOR EACH ROW
    EXECUTE FUNCTION sync_touch('user', 'id');
CREATE TRIGGER sync_class_insert AFTER INSERT ON classes FOR EACH ROW
    EXECUTE FUNCTION sync_touch('class', 'id');
CREATE TRIGGER sync_class_update AFTER UPDATE OF name, owner_id ON classes FOR EACH ROW
    EXECUTE FUNCTION sync_touch('class', 'id');
CREATE TRIGGER sync_class_delete AFTER DELETE ON classes FOR EACH ROW
    EXECUTE FUNCTION sync_touch('class', 'id');
CREATE TRIGGER sync_member_insert AFTER INSERT ON class_members FOR EACH ROW
    EXECUTE FUNCTION sync_touch('class', 'class_id');
CREATE TRIGGER sync_member_delete AFTER DELETE ON class_members FOR EACH ROW
    EXECUTE FUNCTION sync_touch('class', 'class_id');
CREATE TRIGGER sync_problem_insert AFTER INSERT ON problems FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'id');
CREATE TRIGGER sync_problem_update AFTER UPDATE ON problems FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'id');
CREATE TRIGGER sync_problem_delete AFTER DELETE ON problems FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'id');
CREATE TRIGGER sync_problem_class_insert AFTER INSERT ON problem_classes FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_problem_class_update AFTER UPDATE ON problem_classes FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_problem_class_delete AFTER DELETE ON problem_classes FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_test_case_insert AFTER INSERT ON test_cases FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_test_case_update AFTER UPDATE ON test_cases FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_test_case_delete AFTER DELETE ON test_cases FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_asset_insert AFTER INSERT ON problem_assets FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_asset_update AFTER UPDATE ON problem_assets FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');
CREATE TRIGGER sync_asset_delete AFTER DELETE ON problem_assets FOR EACH ROW
    EXECUTE FUNCTION sync_touch('problem', 'problem_id');

-- Submissions change as they are judged and when a rejudge's result is published; lease renewals and
-- the retention purge's stripping of outputs are not changes a central instance needs.

CREATE TRIGGER sync_submission_insert AFTER INSERT ON jobs FOR EACH ROW
    WHEN (NEW.kind = 'submission')
    EXECUTE FUNCTION sync_touch('submission', 'id');
CREATE TRIGGER sync_submission_update AFTER UPDATE OF status, verdict, score, published_rejudge, late ON jobs FOR EACH ROW
    WHEN (NEW.kind = 'submission')
    EXECUTE FUNCTION sync_touch('submission', 'id');
CREATE TRIGGER sync_submission_delete AFTER DELETE ON jobs FOR EACH ROW
    WHEN (OLD.kind = 'submission')
    EXECUTE FUNCTION sync_touch('submission', 'id');

-- Central side. An appliance is registered by name and public key (`labrunner appliances add`); its
-- appliance id is learnt from its first bundle and pinned to that key from then on. The last
-- (generation, watermark) and last_bundle_sha256 refuse a replayed older bundle and recognise the
-- same bundle again (a restore on the appliance starts a new generation: appliance/identity.py).
CREATE TABLE sync_appliances (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    appliance_id TEXT UNIQUE,
    added_at TEXT NOT NULL,
    last_generation BIGINT,
    last_watermark BIGINT,
    last_bundle_sha256 TEXT,
    last_imported_at TEXT
);

-- Each imported thing: a few columns the central views will filter on, and the whole record as the
-- bundle carried it (canonical JSON), so a later view needs no migration for every new field.
CREATE TABLE synced_users (
    appliance_id TEXT NOT NULL REFERENCES sync_appliances(appliance_id) ON DELETE CASCADE,
    local_id BIGINT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (appliance_id, local_id)
);

CREATE TABLE synced_classes (
    appliance_id TEXT NOT NULL REFERENCES sync_appliances(appliance_id) ON DELETE CASCADE,
    local_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    owner_local_id BIGINT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (appliance_id, local_id)
);

CREATE TABLE synced_problems (
    appliance_id TEXT NOT NULL REFERENCES sync_appliances(appliance_id) ON DELETE CASCADE,
    local_id BIGINT NOT NULL,
    title TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (appliance_id, local_id)
);

-- A synced problem's assets, one row each: the column named `blob` keeps their bytes from the blob
-- purge (store/files.blob_columns finds referencing columns by that name).
CREATE TABLE synced_problem_assets (
    appliance_id TEXT NOT NULL,
    problem_local_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (appliance_id, problem_local_id, name),
    FOREIGN KEY (appliance_id, problem_local_id) REFERENCES synced_problems(appliance_id, local_id) ON DELETE CASCADE
);
CREATE INDEX synced_problem_assets_blob ON synced_problem_assets(blob);

CREATE TABLE synced_submissions (
    appliance_id TEXT NOT NULL REFERENCES sync_appliances(appliance_id) ON DELETE CASCADE,
    local_id BIGINT NOT NULL,
    user_local_id BIGINT NOT NULL,
    problem_local_id BIGINT NOT NULL,
    verdict TEXT,
    score DOUBLE PRECISION,
    record TEXT NOT NULL,
    PRIMARY KEY (appliance_id, local_id)
);
