"""`labrunner export`: a signed `classroom` bundle of what changed after a watermark.

Everything is read in one snapshot, so the bundle is one moment of the data, and its watermark is
the change counter of that moment (schema/0020_sync.sql): the same data gives the same bundle,
byte for byte, and a later edit gives a higher watermark. Users travel under their per-appliance
pseudonym unless `sync_real_names` allows usernames; birth dates, passwords and join codes never
travel; submissions' code only with `sync_submission_code`. Watermarks count within a generation
(appliance/identity.py: a restore starts a new one), and --since means one of the current generation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from appliance import identity as identity_module
from appliance import sync_bundle
from appliance.blobs import BlobStore
from appliance.db import Database, Row
from appliance.errors import Invalid
from appliance.identity import Identity
from appliance.problem_records import problem_record
from appliance.settings import Settings
from appliance.store import sync as store


@dataclass(frozen=True)
class Exported:
    data: bytes
    generation: int
    since: int
    watermark: int
    counts: dict[str, int]


def _by(rows: list[Row], key: str) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[int(row[key])].append(row)
    return grouped


def _tombstones(ids: list[int]) -> list[dict[str, Any]]:
    return [{"id": local_id, "deleted": True} for local_id in ids]


def _ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda record: int(record["id"]))


async def export(db: Database, blobs: BlobStore, settings: Settings, me: Identity, since: int) -> Exported:
    if since < 0:
        raise Invalid("invalid_watermark", "a watermark is a whole number, 0 or more", field="since")
    async with db.snapshot() as conn:
        mark = await store.watermark(conn)
        if since > mark:
            raise Invalid(
                "invalid_watermark",
                f"watermark {since} is beyond this appliance's latest change ({mark}); it comes from another appliance"
                " or a restored database",
                field="since",
            )
        users = [
            {
                "id": row["id"],
                "role": row["role"],
                "name": row["username"] if settings.sync_real_names else identity_module.pseudonym(me, row["id"]),
                "created_at": row["created_at"],
            }
            for row in await store.users(conn, since)
        ]
        members = _by(await store.class_members(conn, since), "class_id")
        classes = [
            {
                "id": row["id"],
                "name": row["name"],
                "owner": row["owner_id"],
                "created_at": row["created_at"],
                "members": [m["user_id"] for m in members[row["id"]]],
            }
            for row in await store.classes(conn, since)
        ]
        links = _by(await store.problem_classes(conn, since), "problem_id")
        tests = _by(await store.test_cases(conn, since), "problem_id")
        assets = _by(await store.problem_assets(conn, since), "problem_id")
        problems = [
            {
                **problem_record(row, tests[row["id"]], assets[row["id"]]),
                "owner": row["owner_id"],
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
                "classes": [
                    {"class": link["class_id"], "due_at": link["due_at"], "late_policy": link["late_policy"]}
                    for link in links[row["id"]]
                ],
            }
            for row in await store.problems(conn, since)
        ]
        submissions = [
            {
                "id": row["id"],
                "user": row["user_id"],
                "problem": row["problem_id"],
                "language": row["language"],
                "status": row["status"],
                "verdict": row["verdict"],
                "score": row["score"],
                "late": bool(row["late"]),
                "created_at": row["created_at"],
                "finished_at": row["finished_at"],
                **({"code": row["code"]} if settings.sync_submission_code else {}),
            }
            for row in await store.submissions(conn, since)
        ]
        gone = {entity: await store.deleted(conn, entity, since) for entity in store.ENTITIES}
    members_out: dict[str, bytes] = {
        "users.jsonl": sync_bundle.json_lines(_ordered(users + _tombstones(gone["user"]))),
        "classes.jsonl": sync_bundle.json_lines(_ordered(classes + _tombstones(gone["class"]))),
        "problems.jsonl": sync_bundle.json_lines(_ordered(problems + _tombstones(gone["problem"]))),
        "submissions.jsonl": sync_bundle.json_lines(_ordered(submissions + _tombstones(gone["submission"]))),
    }
    # Read after the snapshot ends: blobs are never rewritten.
    members_out |= sync_bundle.asset_members(blobs, problems, "export")
    head = {
        "kind": "classroom",
        "appliance_id": me.appliance_id,
        "public_key": me.public_key_text,
        "generation": me.generation,
        "since": since,
        "watermark": mark,
        "policy": {"real_names": settings.sync_real_names, "submission_code": settings.sync_submission_code},
    }
    counts = {
        "users": len(users),
        "classes": len(classes),
        "problems": len(problems),
        "submissions": len(submissions),
        "deleted": sum(len(ids) for ids in gone.values()),
    }
    return Exported(sync_bundle.write(head, members_out, me.private_key), me.generation, since, mark, counts)
