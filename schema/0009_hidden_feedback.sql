-- How students see a problem's hidden tests, and how many bytes of full output each test result
-- keeps in the blob store.

-- summary: hidden tests show only as "passed k of n hidden tests" (no verdict, time or status of
-- any one of them); per_test: a verdict per hidden test. Staff always see every test in full.
ALTER TABLE problems ADD COLUMN hidden_feedback TEXT NOT NULL DEFAULT 'summary'
    CHECK (hidden_feedback IN ('per_test', 'summary'));

-- Bytes of the full stdout and stderr this result keeps in the blob store (0: none kept); their
-- sum over a user's jobs is held under `full_output_max_bytes_per_user` until the outputs expire.
ALTER TABLE job_tests ADD COLUMN full_output_bytes INTEGER NOT NULL DEFAULT 0;
