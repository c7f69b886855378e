-- One timestamp representation (DESIGN §3): every time is a fixed-width UTC ISO 8601 string with
-- microseconds, 'YYYY-MM-DDTHH:MM:SS.ffffffZ', which sorts as text in time order, so SQL compares
-- times as plain text (no strftime) and the queue keeps its sub-second precision. Before this, the
-- queue and file tables held epoch seconds (REAL) and the others whole-second ISO text
-- ('YYYY-MM-DDTHH:MM:SSZ'). Values are converted in place: SQLite keeps a non-numeric text in a
-- REAL column as text, so no table is rebuilt. Epoch 0 (a job's "no backoff", a problem whose tests
-- were never replaced) becomes '1970-01-01T00:00:00.000000Z'. appliance/clock.py converts for the
-- code and the API, which shows the same forms as before. The DEFAULT 0 of jobs.not_before and
-- problems.tests_changed_at stays in the schema (changing it means rebuilding the tables): the code
-- always writes those columns.

UPDATE users SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at);

UPDATE sessions SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at),
    expires_at = COALESCE(CASE typeof(expires_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', expires_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(expires_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((expires_at - CAST(expires_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, expires_at);

UPDATE api_tokens SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at),
    revoked_at = COALESCE(CASE typeof(revoked_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', revoked_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(revoked_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((revoked_at - CAST(revoked_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, revoked_at),
    expires_at = COALESCE(CASE typeof(expires_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', expires_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(expires_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((expires_at - CAST(expires_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, expires_at),
    last_used_at = COALESCE(CASE typeof(last_used_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', last_used_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(last_used_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((last_used_at - CAST(last_used_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, last_used_at);

UPDATE legal_documents SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at);

UPDATE legal_acceptances SET
    accepted_at = COALESCE(CASE typeof(accepted_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', accepted_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(accepted_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((accepted_at - CAST(accepted_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, accepted_at);

UPDATE classes SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at);

UPDATE class_members SET
    added_at = COALESCE(CASE typeof(added_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', added_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(added_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((added_at - CAST(added_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, added_at);

UPDATE problems SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at),
    updated_at = COALESCE(CASE typeof(updated_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', updated_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(updated_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((updated_at - CAST(updated_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, updated_at),
    tests_changed_at = COALESCE(CASE typeof(tests_changed_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', tests_changed_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(tests_changed_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((tests_changed_at - CAST(tests_changed_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, tests_changed_at);

UPDATE test_cases SET
    reveal_at = COALESCE(CASE typeof(reveal_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', reveal_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(reveal_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((reveal_at - CAST(reveal_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, reveal_at);

UPDATE jobs SET
    not_before = COALESCE(CASE typeof(not_before)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', not_before) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(not_before AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((not_before - CAST(not_before AS INTEGER)) * 1000000) AS INTEGER)))
    END, not_before),
    lease_expires = COALESCE(CASE typeof(lease_expires)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', lease_expires) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(lease_expires AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((lease_expires - CAST(lease_expires AS INTEGER)) * 1000000) AS INTEGER)))
    END, lease_expires),
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at),
    started_at = COALESCE(CASE typeof(started_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', started_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(started_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((started_at - CAST(started_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, started_at),
    finished_at = COALESCE(CASE typeof(finished_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', finished_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(finished_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((finished_at - CAST(finished_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, finished_at);

UPDATE files SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at),
    expires_at = COALESCE(CASE typeof(expires_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', expires_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(expires_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((expires_at - CAST(expires_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, expires_at),
    deleted_at = COALESCE(CASE typeof(deleted_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', deleted_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(deleted_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((deleted_at - CAST(deleted_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, deleted_at);

UPDATE problem_assets SET
    created_at = COALESCE(CASE typeof(created_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', created_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(created_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((created_at - CAST(created_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, created_at);

UPDATE drafts SET
    updated_at = COALESCE(CASE typeof(updated_at)
        WHEN 'text' THEN strftime('%Y-%m-%dT%H:%M:%f', updated_at) || '000Z'
        ELSE strftime('%Y-%m-%dT%H:%M:%S', CAST(updated_at AS INTEGER), 'unixepoch')
            || printf('.%06dZ', min(999999, CAST(round((updated_at - CAST(updated_at AS INTEGER)) * 1000000) AS INTEGER)))
    END, updated_at);
