"""A problem as sync bundles carry it, one function for both kinds: a classroom bundle's problem
(to the central instance) and a problem set's (down to classrooms) are the same record, the
classroom one adding its owner, classes and times. Every field a teacher edits, ALL test cases
(hidden ones too: whoever receives them grades with them) and the assets' metadata (their bytes
travel as `assets/<sha256>` members).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from appliance.db import Row
from appliance.store.problems import EDITABLE_FIELDS

TEST_FIELDS = ("position", "name", "stdin", "expected_stdout", "visibility", "reveal_at", "weight")


def problem_record(row: Row, tests: Sequence[Row], assets: Sequence[Row]) -> dict[str, Any]:
    """`row`: the problem (id and EDITABLE_FIELDS); `tests` in position order; `assets` by name,
    each with its blob's hash in `blob`."""
    return {
        "id": row["id"],
        **{key: row[key] for key in EDITABLE_FIELDS},
        "test_cases": [{key: test[key] for key in TEST_FIELDS} for test in tests],
        "assets": [
            {
                "name": asset["name"],
                "kind": asset["kind"],
                "media_type": asset["media_type"],
                "size": asset["size"],
                "sha256": asset["blob"],
                "in_workdir": bool(asset["in_workdir"]),
            }
            for asset in assets
        ],
    }
