"""Problem sets handed down: a publisher (the central instance, or staging) signs a set of its own
problems with its sync key (`publish`); a classroom that trusts that key keeps what it receives in
an inbox (`receive`), and a teacher imports chosen problems from there into problems of their own
(`import_into_problems`).

A set is a `problem_set` sync bundle (appliance/sync_bundle.py): `problems.jsonl`, one record per
problem as appliance/problem_records.py makes it (every teacher-editable field, ALL test cases,
hidden ones too, and asset metadata) keyed by the publisher's problem id, plus `assets/<sha256>`.
Its manifest names the set: `set_id` (stable per publisher and name), `version` (one more at each
publication of that name), `name` and the problems' titles.

Trust is the receiving classroom's own list of publisher keys (`trusted_publishers`), never the
transport: a set is verified against it before anything is written, whether it came on a USB stick
(`labrunner import FILE`) or from the central instance (appliance/problem_sets_fetch.py). The inbox
keeps the latest version of each set; the same bundle again is recognised and writes nothing, an
older or equal version after a newer one is refused as replayed.

Importing keeps an origin mapping (publisher key, set, publisher's problem id → the teacher's
problem), so importing a newer version updates that teacher's copy instead of making another. A
copy the teacher edited since it was imported is not overwritten: the import is refused with
`problem_set_local_edits` (naming the problems) unless the teacher asks for `replace`, which puts
the publisher's version in place of the local edits. Classes are only ever added to a copy, never
taken away, and keep their due dates.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance import problems, sync_bundle
from appliance.accounts import User
from appliance.blob_refs import discard_unused_blobs
from appliance.blobs import BlobStore
from appliance.classes import require_staff
from appliance.clock import api_iso, db_now
from appliance.db import Conn, Database, Row
from appliance.errors import AppError, Conflict, Invalid, NotFound
from appliance.file_kinds import KINDS
from appliance.file_names import clean_name
from appliance.file_sniffing import archive_refused, check_allowed, sniff
from appliance.identity import Identity, parse_public_key
from appliance.problem_records import problem_record
from appliance.settings import Settings
from appliance.store import problem_sets as store
from appliance.store import problems as problem_store
from appliance.store.problems import EDITABLE_FIELDS
from appliance.sync_bundle import Bundle, BundleRefused

KIND = "problem_set"
MEMBER = "problems.jsonl"
_TEST_KEYS = ("name", "stdin", "expected_stdout", "visibility", "reveal_at", "weight")


def set_id_for(appliance_id: str, name: str) -> str:
    """Stable per publisher and name: publishing the same name again makes a new version of one set."""
    return hashlib.sha256(f"labrunner-problem-set\n{appliance_id}\n{name}".encode()).hexdigest()[:32]


def _set_name(raw: str) -> str:
    name = raw.strip()
    if not name or len(name) > sync_bundle.SET_NAME_MAX_CHARS or not name.isprintable():
        raise Invalid(
            "invalid_problem_set_name",
            f"a problem set's name is 1 to {sync_bundle.SET_NAME_MAX_CHARS} printable characters",
            field="name",
        )
    return name


def _grouped(rows: list[Row]) -> dict[int, list[Row]]:
    grouped: dict[int, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[int(row["problem_id"])].append(row)
    return grouped


# --- publishing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    set_id: str
    name: str
    version: int
    sha256: str
    data: bytes
    titles: list[str]


async def publish(
    db: Database, blobs: BlobStore, settings: Settings, me: Identity, name: str, problem_ids: Sequence[int]
) -> Published:
    """Signs these of this appliance's problems as the next version of the set `name`, keeps the
    bundle in the blob store and records the publication (offered to classrooms from then on)."""
    name = _set_name(name)
    ids = list(dict.fromkeys(problem_ids))
    if not ids:
        raise Invalid("no_problems_chosen", "name at least one problem to publish", field="problems")
    if len(ids) > settings.problem_set_max_problems:
        raise Invalid(
            "too_many_problems",
            f"a problem set holds at most {settings.problem_set_max_problems} problems (problem_set_max_problems)",
            field="problems",
        )
    set_id = set_id_for(me.appliance_id, name)
    async with db.snapshot() as conn:
        rows = await store.problems_by_id(conn, ids)
        missing = sorted(set(ids) - {int(row["id"]) for row in rows})
        if missing:
            raise NotFound("unknown_problem", f"there is no problem with id {missing[0]} here", field="problems")
        tests = _grouped(await store.tests_of(conn, ids))
        assets = _grouped(await store.assets_of(conn, ids))
        version = await store.latest_version(conn, set_id) + 1
    records = [problem_record(row, tests[row["id"]], assets[row["id"]]) for row in rows]
    members = {MEMBER: sync_bundle.json_lines(records), **sync_bundle.asset_members(blobs, records, "publish")}
    titles = [str(record["title"]) for record in records]
    head = {
        "kind": KIND,
        "appliance_id": me.appliance_id,
        "public_key": me.public_key_text,
        "set_id": set_id,
        "name": name,
        "version": version,
        "titles": titles,
    }
    data = sync_bundle.write(head, members, me.private_key)
    digest = await asyncio.to_thread(blobs.put, data)
    async with db.transaction() as conn:
        if await store.latest_version(conn, set_id) + 1 != version:
            raise Conflict(
                "problem_set_published_meanwhile",
                f"another publication of {name!r} was made meanwhile; publish again",
            )
        await store.add_publication(
            conn,
            {
                "set_id": set_id,
                "name": name,
                "version": version,
                "problem_ids": json.dumps(ids),
                "sha256": digest,
                "size": len(data),
                "bundle_blob": digest,
                "published_at": db_now(),
            },
        )
    return Published(set_id, name, version, digest, data, titles)


async def publications(db: Database) -> list[dict[str, Any]]:
    return [
        {**dict(row), "problem_ids": json.loads(row["problem_ids"]), "published_at": api_iso(row["published_at"])}
        for row in await store.publications(db)
    ]


# --- checking a received set ----------------------------------------------------------------------


@dataclass(frozen=True)
class SetProblem:
    """One problem of a verified set, checked against this appliance's own limits."""

    origin_id: int
    fields: dict[str, Any]
    tests: list[dict[str, Any]]
    assets: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        visible = sum(1 for test in self.tests if test["visibility"] == "visible")
        return {
            "id": self.origin_id,
            "title": self.fields["title"],
            "language": self.fields["language"],
            "visible_tests": visible,
            "hidden_tests": len(self.tests) - visible,
        }


def _malformed(origin: Any, detail: str) -> BundleRefused:
    return BundleRefused(
        "bundle_malformed",
        f"problem {origin!r} of this problem set cannot be taken here: {detail}; nothing was received",
    )


def _assets(bundle: Bundle, settings: Settings, origin: int, raw: Any) -> list[dict[str, Any]]:
    """The problem's assets, judged as a teacher's upload is: the kind and media type come from the
    bytes, never from the set (they are served as they are stored: text/html or a script type from
    this origin would run in students' browsers), with the upload limits of this appliance."""
    if not isinstance(raw, list) or len(raw) > settings.assets_max_per_problem:
        raise _malformed(origin, f"it needs a list of at most {settings.assets_max_per_problem} assets")
    assets: list[dict[str, Any]] = []
    for item in raw:
        name, digest = item.get("name"), item.get("sha256")
        try:
            safe = isinstance(name, str) and clean_name(name, settings.file_name_max_chars) == name
        except Invalid:
            safe = False
        data = bundle.members.get(sync_bundle.ASSET_PREFIX + str(digest))
        if not safe or data is None or item.get("size") != len(data):
            raise _malformed(origin, f"asset {name!r} has an unsafe name or is not the file the set holds")
        if len(data) > settings.asset_max_bytes:
            raise _malformed(
                origin, f"asset {name!r} is larger than asset_max_bytes ({settings.asset_max_bytes} bytes)"
            )
        try:
            kind = sniff(data, name)
            if kind == "zip":
                raise archive_refused(name, "ZIP")
            check_allowed(kind, settings, name)
        except AppError as error:
            raise _malformed(origin, error.message) from None
        assets.append(
            {
                "name": name,
                "kind": kind,
                "media_type": KINDS[kind].media_type,
                "size": len(data),
                "sha256": digest,
                "in_workdir": item.get("in_workdir") is True,
            }
        )
    if len({asset["name"] for asset in assets}) != len(assets):
        raise _malformed(origin, "two assets have one name")
    workdir = [asset["size"] for asset in assets if asset["in_workdir"]]
    if len(workdir) > settings.job_files_max or sum(workdir) > settings.job_files_max_bytes:
        raise _malformed(
            origin,
            f"its files for every submission exceed job_files_max ({settings.job_files_max}) or job_files_max_bytes"
            f" ({settings.job_files_max_bytes} bytes)",
        )
    return assets


def _problem(bundle: Bundle, settings: Settings, record: dict[str, Any]) -> SetProblem:
    origin = record.get("id")
    if not isinstance(origin, int) or isinstance(origin, bool) or not 1 <= origin < sync_bundle.INT_LIMIT:
        raise _malformed(origin, "its id is not a positive whole number")
    try:
        body = {key: record[key] for key in EDITABLE_FIELDS}
        graphical = body["graphical"]
        if graphical not in (None, 0, 1):
            raise _malformed(origin, "'graphical' is not true, false or null")
        body["graphical"] = None if graphical is None else bool(graphical)
        body["test_cases"] = [
            {key: test[key] for key in _TEST_KEYS if test[key] is not None} for test in record["test_cases"]
        ]
        # The same checks (and this appliance's limits) as a teacher's own problem gets.
        parsed = problems.create_schema(settings).parse(body)
        tests = problems.normalize_tests(parsed["test_cases"])
    except AppError as error:
        raise _malformed(origin, error.message) from None
    except (KeyError, TypeError, AttributeError):
        raise _malformed(origin, "a field is missing or of the wrong type") from None
    fields = {key: parsed[key] for key in EDITABLE_FIELDS}
    fields["title"] = fields["title"].strip()
    if not fields["title"]:
        raise _malformed(origin, "its title is blank")
    try:
        assets = _assets(bundle, settings, origin, record.get("assets"))
    except AttributeError:
        raise _malformed(origin, "an asset is not an object") from None
    return SetProblem(origin, fields, tests, assets)


def problems_of(bundle: Bundle, settings: Settings) -> list[SetProblem]:
    """Every problem of a verified set, each checked as a teacher's own would be."""
    records = bundle.records(MEMBER)
    if len(records) > settings.problem_set_max_problems:
        raise BundleRefused(
            "bundle_malformed",
            f"this problem set holds {len(records)} problems; this appliance takes at most"
            f" {settings.problem_set_max_problems} (problem_set_max_problems); nothing was received",
        )
    checked = [_problem(bundle, settings, record) for record in records]
    if len({p.origin_id for p in checked}) != len(checked):
        raise BundleRefused("bundle_malformed", "this problem set names one problem twice; nothing was received")
    return checked


# --- receiving into the inbox ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    inbox_id: int
    publisher: str
    set_id: str
    name: str
    version: int
    problems: int
    already: bool = False


def _already_here(entry: Row | None, bundle: Bundle) -> bool:
    """True when the inbox holds this very bundle; refuses one not newer than the inbox's."""
    if entry is None:
        return False
    if entry["sha256"] == bundle.sha256:
        return True
    version = int(bundle.manifest["version"])
    if version <= int(entry["version"]):
        raise BundleRefused(
            "bundle_replayed",
            f"this is version {version} of the problem set {bundle.manifest['name']!r}, but version"
            f" {entry['version']} is in the inbox already; nothing was received",
        )
    return False


async def _trusted(src: Database | Conn, bundle: Bundle) -> Row:
    publisher = await store.publisher_by_key(src, bundle.public_key)
    if publisher is None:
        raise BundleRefused(
            "bundle_untrusted_publisher",
            "this problem set is signed by a key this appliance does not trust; if you trust its publisher, add the"
            " key with `labrunner publishers add NAME PUBLIC-KEY`; nothing was received",
        )
    return publisher


def _verify(bundle: Bundle, public_key: str) -> None:
    sync_bundle.verify(bundle, parse_public_key(public_key), "the trusted key of the publisher it names")


def _verified_problems(bundle: Bundle, public_key: str, settings: Settings) -> list[SetProblem]:
    """Called in a worker thread (asyncio.to_thread), as is reading the bundle: a set may be
    sync_bundle_max_bytes large, and on the event loop it would hold up every student for seconds."""
    _verify(bundle, public_key)
    return problems_of(bundle, settings)


async def receive(db: Database, blobs: BlobStore, settings: Settings, raw: bytes) -> Received:
    """Verifies a `problem_set` bundle against the trusted publishers, checks every problem, and puts
    it in the inbox. A refusal (`bundle_*` code) writes nothing, neither a row nor a blob file."""
    bundle = await asyncio.to_thread(sync_bundle.read, raw, settings.sync_bundle_max_bytes)
    if bundle.kind != KIND:
        raise BundleRefused(
            "bundle_unsupported_kind", f"this is a {bundle.kind} bundle, not a problem set; nothing was received"
        )
    publisher = await _trusted(db, bundle)
    checked = await asyncio.to_thread(_verified_problems, bundle, publisher["public_key"], settings)
    set_id, name, version = bundle.manifest["set_id"], bundle.manifest["name"], int(bundle.manifest["version"])
    found = Received(0, publisher["name"], set_id, name, version, len(checked))
    async with db.snapshot() as conn:
        entry = await store.inbox_entry(conn, publisher["id"], set_id)
    if _already_here(entry, bundle):
        assert entry is not None
        return dataclasses.replace(found, inbox_id=int(entry["id"]), already=True)
    digest = await asyncio.to_thread(blobs.put, raw)
    async with db.transaction() as conn:
        # Again under the writer: the publisher may have been removed, or a newer version received, meanwhile.
        publisher = await _trusted(conn, bundle)
        entry = await store.inbox_entry(conn, publisher["id"], set_id)
        if _already_here(entry, bundle):
            assert entry is not None
            return dataclasses.replace(found, inbox_id=int(entry["id"]), already=True)
        inbox_id = await store.put_inbox(
            conn,
            {
                "publisher_id": publisher["id"],
                "set_id": set_id,
                "name": name,
                "version": version,
                "sha256": digest,
                "size": len(raw),
                "bundle_blob": digest,
                "problems": json.dumps([p.summary() for p in checked]),
                "received_at": db_now(),
            },
        )
        if entry is not None:
            await discard_unused_blobs(conn, blobs, [entry["bundle_blob"]])
    return dataclasses.replace(found, inbox_id=inbox_id)


def describe(result: Received) -> str:
    what = f"problem set {result.name!r} version {result.version} from {result.publisher}"
    if result.already:
        return f"already in the inbox: {what}; nothing changed"
    return (
        f"received into the inbox: {what} ({result.problems} problems); a teacher imports them at /teach/problem-sets"
    )


async def drop_from_inbox(db: Database, blobs: BlobStore, inbox_id: int) -> None:
    """Takes a set out of the inbox (its bundle file goes when nothing else names it); copies
    imported from it stay."""
    async with db.transaction() as conn:
        blob = await store.remove_inbox(conn, inbox_id)
        if blob is not None:
            await discard_unused_blobs(conn, blobs, [blob])


# --- the inbox, for staff -------------------------------------------------------------------------


async def inbox(db: Database, user: User) -> list[dict[str, Any]]:
    """The received sets with each problem's summary (never its tests), and which of them this
    teacher imported already."""
    require_staff(user)
    mine = {
        (row["publisher_key"], row["set_id"], int(row["origin_problem_id"])): row
        for row in await store.origins_for_owner(db, user.id)
    }
    out = []
    for row in await store.inbox(db):
        listed = []
        for summary in json.loads(row["problems"]):
            copy = mine.get((row["public_key"], row["set_id"], int(summary["id"])))
            imported = None if copy is None else {"problem_id": copy["problem_id"], "version": copy["version"]}
            listed.append({**summary, "imported": imported})
        out.append(
            {
                "id": row["id"],
                "publisher": {"name": row["publisher"], "fingerprint": row["fingerprint"]},
                "set_id": row["set_id"],
                "name": row["name"],
                "version": row["version"],
                "received_at": api_iso(row["received_at"]),
                "problems": listed,
            }
        )
    return out


# --- importing into a teacher's problems ----------------------------------------------------------


async def _content_sha256(conn: Conn, problem_id: int) -> str:
    """The hash of a local problem's content as a set would carry it: unchanged since its import
    exactly when it equals the hash recorded then."""
    rows = await store.problems_by_id(conn, [problem_id])
    tests = await store.tests_of(conn, [problem_id])
    assets = await store.assets_of(conn, [problem_id])
    record = problem_record(rows[0], tests, assets)
    del record["id"]
    return hashlib.sha256(sync_bundle.canonical_json(record)).hexdigest()


async def _plan(conn: Conn, owner: User, entry: Row, chosen: list[SetProblem], replace: bool) -> dict[int, Row]:
    copies = {
        int(row["origin_problem_id"]): row
        for row in await store.origins_of_owner(conn, owner.id, entry["public_key"], entry["set_id"])
    }
    edited = []
    for item in chosen:
        copy = copies.get(item.origin_id)
        if copy is None or replace or int(copy["version"]) >= int(entry["version"]):
            continue
        if await _content_sha256(conn, int(copy["problem_id"])) != copy["content_sha256"]:
            edited.append(f"{item.fields['title']!r} (your problem {copy['problem_id']})")
    if edited:
        raise Conflict(
            "problem_set_local_edits",
            f"you changed {', '.join(edited)} since importing; importing version {entry['version']} would overwrite"
            " your changes. Import with replace to take the publisher's version anyway; nothing was changed",
            field="replace",
        )
    return copies


async def _open(blobs: BlobStore, settings: Settings, entry: Row) -> tuple[Bundle, list[SetProblem]]:
    """The inbox entry's bundle, verified again: the blob file could have been altered on disk."""
    try:
        raw = await asyncio.to_thread(blobs.get, entry["bundle_blob"])
    except (OSError, ValueError):
        raise Conflict(
            "problem_set_unreadable", "this problem set's file is missing or damaged here; receive it again"
        ) from None
    bundle = await asyncio.to_thread(sync_bundle.read, raw, settings.sync_bundle_max_bytes)
    return bundle, await asyncio.to_thread(_verified_problems, bundle, entry["public_key"], settings)


async def import_into_problems(
    db: Database,
    blobs: BlobStore,
    settings: Settings,
    owner: User,
    inbox_id: int,
    problem_ids: Sequence[int],
    class_ids: Sequence[int] = (),
    *,
    replace: bool = False,
) -> list[dict[str, Any]]:
    """Imports the publisher's problems `problem_ids` of inbox entry `inbox_id` as problems owned by
    `owner`, shown to `class_ids` (which must be the owner's), all or none. Each result:
    {origin_id, problem_id, outcome: created | updated | unchanged}."""
    require_staff(owner)
    entry = await store.inbox_get(db, inbox_id)
    if entry is None:
        raise NotFound("not_found", "no such problem set in the inbox")
    ids = list(dict.fromkeys(problem_ids))
    if not ids:
        raise Invalid("no_problems_chosen", "choose at least one problem of the set", field="problems")
    classes = list(dict.fromkeys(class_ids))
    await problems.check_classes(db, owner, classes)
    bundle, offered = await _open(blobs, settings, entry)
    by_id = {item.origin_id: item for item in offered}
    for index, origin in enumerate(ids):
        if origin not in by_id:
            raise Invalid("unknown_set_problem", f"the set has no problem {origin}", field=f"problems[{index}]")
    chosen = [by_id[origin] for origin in ids]
    async with db.snapshot() as conn:
        await _plan(conn, owner, entry, chosen, replace)  # refuses before any blob file is written
    digests = {asset["sha256"] for item in chosen for asset in item.assets}
    for digest in digests:
        await asyncio.to_thread(blobs.put, bundle.members[sync_bundle.ASSET_PREFIX + digest])
    results: list[dict[str, Any]] = []
    async with db.transaction() as conn:
        copies = await _plan(conn, owner, entry, chosen, replace)
        stamp, gone = db_now(), []
        for item in chosen:
            copy = copies.get(item.origin_id)
            if copy is None:
                problem_id = await problem_store.insert(conn, owner.id, item.fields, classes, item.tests)
                outcome = "created"
            else:
                problem_id = int(copy["problem_id"])
                await store.add_classes(conn, problem_id, classes)
                if not replace and int(copy["version"]) >= int(entry["version"]):
                    results.append({"origin_id": item.origin_id, "problem_id": problem_id, "outcome": "unchanged"})
                    continue
                await problem_store.update_in(conn, problem_id, item.fields, None, item.tests)
                outcome = "updated"
            gone += await store.replace_assets(conn, problem_id, item.assets, owner.id, stamp)
            await store.set_origin(
                conn,
                {
                    "problem_id": problem_id,
                    "owner_id": owner.id,
                    "publisher_key": entry["public_key"],
                    "set_id": entry["set_id"],
                    "origin_problem_id": item.origin_id,
                    "version": entry["version"],
                    "content_sha256": await _content_sha256(conn, problem_id),
                    "imported_at": stamp,
                },
            )
            results.append({"origin_id": item.origin_id, "problem_id": problem_id, "outcome": outcome})
        await discard_unused_blobs(conn, blobs, [d for d in gone if d not in digests])
    # A purge may have unlinked an identical orphan between our put and our commit (blob_refs.ensure_blobs).
    for digest in digests:
        if not blobs.exists(digest):
            await asyncio.to_thread(blobs.put, bundle.members[sync_bundle.ASSET_PREFIX + digest])
    return results
