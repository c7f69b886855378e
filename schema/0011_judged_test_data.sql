-- What each test result was judged against, kept with the result. A problem's test cases are
-- replaced whenever the teacher edits them (job_tests.test_case_id then becomes NULL), so the
-- current test cases cannot tell what an older result was judged against.

-- Blob hashes (DESIGN §5: the data can be large, and identical data is stored once) of the test's
-- stdin and expected output as they were when the result was stored; NULL for a run, and for
-- results stored before this migration (while such a result's test_case_id still links, that test
-- is unchanged since judging, because edits replace tests rather than change them in place).
-- The `_blob` suffix puts them under the blob store's reference check (store/files.blob_columns).
ALTER TABLE job_tests ADD COLUMN stdin_blob TEXT;
ALTER TABLE job_tests ADD COLUMN expected_blob TEXT;
-- Who could see the test when the result was stored ('visible', 'hidden', 'reveal_later'): shown
-- to staff only. What a student sees is decided by the test case as it is now (a result whose test
-- was since replaced or deleted shows to a student as a hidden test), never by this snapshot.
ALTER TABLE job_tests ADD COLUMN visibility TEXT;
