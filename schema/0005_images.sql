-- Graphical programs: whether a problem or a run is one, and the pictures each test drew.
-- The pictures live in the blob store; `blob` holds the hash (the blob purge finds referencing
-- columns by that name).

-- NULL: decided from the program's imports (pygame, turtle, tkinter, matplotlib).
ALTER TABLE problems ADD COLUMN graphical INTEGER CHECK (graphical IN (0, 1));
ALTER TABLE jobs ADD COLUMN graphical INTEGER CHECK (graphical IN (0, 1));

-- One row per picture of a test result, in the order drawn (idx from 1). Students reach them
-- only through queries that join the test's visibility, like its output.
CREATE TABLE job_images (
    job_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    -- still: a frame, figure or window; animation: the frames as an APNG.
    kind TEXT NOT NULL CHECK (kind IN ('still', 'animation')),
    media_type TEXT NOT NULL CHECK (media_type IN ('image/png', 'image/apng')),
    label TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (job_id, position, idx),
    FOREIGN KEY (job_id, position) REFERENCES job_tests(job_id, position) ON DELETE CASCADE
);
CREATE INDEX job_images_blob ON job_images(blob);
