"""The remote dispatch's parts without Docker or a broker: the plan and transcript codec (a round
trip, and every kind of message it refuses), the placement rule, the signed messages, and the
server's register of runner hosts and regions on a real SQLite database."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import classes, migrations, runner_hosts
from appliance.accounts import Accounts
from appliance.db import Database, open_database
from appliance.errors import AppError
from appliance.identity import public_key_text
from appliance.settings import load_settings
from runner.executor import CompileOutcome, ExecRequest, ExecResult, Image, InputFile, TestInput, TestOutcome
from runner.placement import HostLoad, capacity, choose
from runner.plan_codec import PlanError, request_from_json, request_to_json, result_from_json, result_to_json
from runner.signed_messages import HEARTBEAT, PLAN, TRANSCRIPT, SignatureRefused, open_sealed, seal

# -- plan_codec ------------------------------------------------------------------------------------

REQUEST = ExecRequest(
    language="python",
    code="print(input())\n",
    tests=[TestInput("one", b"hi\n"), TestInput("binary", bytes(range(256)))],
    files=[InputFile("data.csv", b"a,b\n1,2\n")],
    time_limit_ms=1500,
    memory_limit_mb=128,
    graphical=True,
    graphical_time=False,
    owner="u17",
    hidden_tests=True,
)

RESULT = ExecResult(
    compile=CompileOutcome(ok=True, output="warning: x\n", time_ms=120),
    tests=[
        TestOutcome("one", "ok", 0, b"hi\n", b"", 12),
        TestOutcome("two", "runtime_error", None, b"\xff\x00", b"Traceback", 7, truncated=True, signal=11),
        TestOutcome(
            "picture",
            "ok",
            0,
            b"",
            b"",
            30,
            images=[
                Image("image/png", "figure 1", 640, 480, b"\x89PNG\r\n\x1a\n..."),
                Image("image/apng", "animation", 10, 20, b"\x89PNGframes"),
            ],
        ),
    ],
    sandbox_id="c0ffee",
)


def _via_json(record: dict[str, Any]) -> Any:
    """As the other side reads it: the trip is JSON text."""
    return json.loads(json.dumps(record))


def test_a_request_survives_the_trip() -> None:
    assert request_from_json(_via_json(request_to_json(REQUEST))) == REQUEST
    bare = ExecRequest("c", "int main(void){}", [TestInput("run", b"")])
    assert request_from_json(_via_json(request_to_json(bare))) == bare


def test_the_region_stays_on_the_server() -> None:
    with_region = ExecRequest("python", "", [], region="north")
    assert "region" not in request_to_json(with_region)
    assert request_from_json(request_to_json(with_region)).region is None


def test_a_result_survives_the_trip_images_too() -> None:
    assert result_from_json(_via_json(result_to_json(RESULT))) == RESULT
    failed_compile = ExecResult(CompileOutcome(False, "main.c:1: error", 40), [])
    assert result_from_json(_via_json(result_to_json(failed_compile))) == failed_compile
    no_compile = ExecResult(None, [TestOutcome("run", "time_limit", None, b"", b"", 2000, signal=9)])
    assert result_from_json(_via_json(result_to_json(no_compile))) == no_compile


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        target: Any = record
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def _drop(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def change(record: dict[str, Any]) -> None:
        target: Any = record
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return change


REQUEST_REFUSALS = {
    "not an object": lambda r: r.clear() or r.update({"tests": "x"}),
    "code not text": _set(("code",), 7),
    "language missing": _drop(("language",)),
    "tests not a list": _set(("tests",), {"name": "x"}),
    "a test not an object": _set(("tests", 0), "hi"),
    "a test's name not text": _set(("tests", 0, "name"), None),
    "stdin not base64": _set(("tests", 0, "stdin"), "not base64!"),
    "stdin not text": _set(("tests", 0, "stdin"), 5),
    "stdin not ascii": _set(("tests", 0, "stdin"), "aGk=é"),
    "file data not base64": _set(("files", 0, "data"), "@@@@"),
    "time limit a bool": _set(("time_limit_ms",), True),
    "time limit a float": _set(("time_limit_ms",), 1.5),
    "memory limit text": _set(("memory_limit_mb",), "128"),
    "graphical an int": _set(("graphical",), 1),
    "hidden_tests missing": _drop(("hidden_tests",)),
    "owner a number": _set(("owner",), 17),
}


@pytest.mark.parametrize("change", REQUEST_REFUSALS.values(), ids=list(REQUEST_REFUSALS))
def test_a_malformed_plan_is_refused(change: Callable[[dict[str, Any]], None]) -> None:
    record = _via_json(request_to_json(REQUEST))
    change(record)
    with pytest.raises(PlanError):
        request_from_json(record)


def test_a_plan_that_is_no_object_is_refused() -> None:
    for record in (None, [], "plan", 3):
        with pytest.raises(PlanError):
            request_from_json(record)


RESULT_REFUSALS = {
    "unknown status": _set(("tests", 0, "status"), "accepted"),
    "status not text": _set(("tests", 0, "status"), 0),
    "exit code a bool": _set(("tests", 0, "exit_code"), False),
    "exit code text": _set(("tests", 0, "exit_code"), "0"),
    "time a bool": _set(("tests", 0, "time_ms"), True),
    "truncated an int": _set(("tests", 0, "truncated"), 0),
    "signal text": _set(("tests", 1, "signal"), "SIGSEGV"),
    "stdout not base64": _set(("tests", 0, "stdout"), "h i"),
    "stderr not text": _set(("tests", 0, "stderr"), ["x"]),
    "images not a list": _set(("tests", 2, "images"), {}),
    "an image not an object": _set(("tests", 2, "images", 0), "png"),
    "image width a bool": _set(("tests", 2, "images", 0, "width"), True),
    "image height text": _set(("tests", 2, "images", 0, "height"), "480"),
    "image data not base64": _set(("tests", 2, "images", 1, "data"), "%%%"),
    "image label missing": _drop(("tests", 2, "images", 0, "label")),
    "compile not an object": _set(("compile",), "ok"),
    "compile ok an int": _set(("compile", "ok"), 1),
    "compile output missing": _drop(("compile", "output")),
    "tests missing": _drop(("tests",)),
    "sandbox id a number": _set(("sandbox_id",), 5),
}


@pytest.mark.parametrize("change", RESULT_REFUSALS.values(), ids=list(RESULT_REFUSALS))
def test_a_malformed_transcript_is_refused(change: Callable[[dict[str, Any]], None]) -> None:
    record = _via_json(result_to_json(RESULT))
    change(record)
    with pytest.raises(PlanError):
        result_from_json(record)


def test_a_refusal_leaves_the_record_alone() -> None:
    record = _via_json(result_to_json(RESULT))
    record["tests"][2]["status"] = "solved"
    before = copy.deepcopy(record)
    with pytest.raises(PlanError, match="status"):
        result_from_json(record)
    assert record == before


# -- placement -------------------------------------------------------------------------------------


def _host(name: str, region: str = "default", slots: int = 2, placed: int = 0, usable: bool = True) -> HostLoad:
    return HostLoad(name, region, slots, placed, usable)


def test_the_sticky_host_wins_while_it_has_room() -> None:
    hosts = [_host("a"), _host("b", placed=1), _host("c", region="north")]
    assert choose(hosts, sticky="b", region=None, exclude=frozenset()) == "b"
    # The preferred region wins over the warm sandbox elsewhere; within the region the sandbox wins.
    assert choose(hosts, sticky="b", region="north", exclude=frozenset()) == "c"
    north = [_host("n1", region="north"), _host("n2", region="north", placed=1), _host("a")]
    assert choose(north, sticky="n2", region="north", exclude=frozenset()) == "n2"
    assert choose(north, sticky="a", region="south", exclude=frozenset()) == "a"
    full = [_host("a"), _host("b", placed=2)]
    assert choose(full, sticky="b", region=None, exclude=frozenset()) == "a"


def test_the_preferred_region_comes_next_then_anywhere() -> None:
    hosts = [_host("a", placed=0), _host("n1", region="north", placed=1), _host("n2", region="north", placed=1)]
    assert choose(hosts, sticky=None, region="north", exclude=frozenset()) == "n1"  # a tie: by name
    assert choose(hosts, sticky="gone", region="south", exclude=frozenset()) == "a"
    north_full = [_host("a", placed=1), _host("n1", region="north", slots=1, placed=1)]
    assert choose(north_full, sticky=None, region="north", exclude=frozenset()) == "a"


def test_least_loaded_is_by_share_of_slots() -> None:
    hosts = [_host("big", slots=8, placed=3), _host("small", slots=2, placed=1)]
    assert choose(hosts, sticky=None, region=None, exclude=frozenset()) == "big"
    assert choose(hosts, sticky=None, region=None, exclude=frozenset({"big"})) == "small"


def test_unusable_full_and_excluded_hosts_take_nothing() -> None:
    hosts = [
        _host("lost", usable=False),
        _host("full", slots=1, placed=1),
        _host("failed"),
        _host("over", slots=1, placed=2),
    ]
    assert choose(hosts, sticky="lost", region=None, exclude=frozenset({"failed"})) is None
    assert choose([], sticky=None, region=None, exclude=frozenset()) is None
    # What the claim gate counts claimed jobs against: every usable host's slots, placed or not.
    assert capacity(hosts) == 4
    assert capacity([_host("a", slots=3, placed=1), _host("b", usable=False)]) == 3


# -- signed_messages -------------------------------------------------------------------------------


def test_a_sealed_message_opens_with_its_key_and_context() -> None:
    key = Ed25519PrivateKey.generate()
    payload = {"job": "j1", "host": "alpha", "text": "héllo"}
    message = seal(PLAN, payload, key)
    assert open_sealed(PLAN, json.loads(json.dumps(message)), key.public_key()) == payload


def test_another_context_another_key_or_a_changed_body_is_refused() -> None:
    key, stranger = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    message = seal(TRANSCRIPT, {"job": "j1", "host": "alpha", "result": {}}, key)
    for context in (PLAN, HEARTBEAT):
        with pytest.raises(SignatureRefused):
            open_sealed(context, message, key.public_key())
    with pytest.raises(SignatureRefused):
        open_sealed(TRANSCRIPT, message, stranger.public_key())
    tampered = {**message, "body": message["body"].replace('"alpha"', '"beta"')}
    assert tampered["body"] != message["body"]
    with pytest.raises(SignatureRefused):
        open_sealed(TRANSCRIPT, tampered, key.public_key())
    forged_sig = {**message, "sig": base64.b64encode(stranger.sign(message["body"].encode())).decode()}
    with pytest.raises(SignatureRefused):
        open_sealed(TRANSCRIPT, forged_sig, key.public_key())


def test_what_is_not_a_signed_object_is_refused() -> None:
    key = Ed25519PrivateKey.generate()
    good = seal(HEARTBEAT, {"host": "a"}, key)
    not_an_object = {"body": "[1, 2]", "sig": base64.b64encode(key.sign(f"{HEARTBEAT}\n[1, 2]".encode())).decode()}
    for message in (
        None,
        "text",
        {"sig": good["sig"]},
        {"body": good["body"]},
        {**good, "sig": "not base64!"},
        {**good, "sig": 17},
        not_an_object,
    ):
        with pytest.raises(SignatureRefused):
            open_sealed(HEARTBEAT, message, key.public_key())


# -- runner_hosts on SQLite ------------------------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    settings = load_settings(data_dir=tmp_path, environ={})
    migrations.migrate(settings.db_path, settings.backup_dir)
    database = open_database(settings.database_location)
    await database.open()
    yield database
    await database.close()


def _key_text() -> str:
    return public_key_text(Ed25519PrivateKey.generate().public_key())


async def _error(call: Any) -> AppError:
    with pytest.raises(AppError) as caught:
        await call
    return caught.value


async def test_registering_checks_the_name_and_refuses_a_second_name_or_key(db: Database) -> None:
    key = _key_text()
    added = await runner_hosts.register(db, "alpha-1.lab", key)
    assert added["name"] == "alpha-1.lab" and added["fingerprint"]
    for bad in ("Alpha", "-alpha", "al pha", "a" * 64, "alpha/1", "", "ålpha"):
        error = await _error(runner_hosts.register(db, bad, _key_text()))
        assert (error.code, error.status) == ("invalid_host_name", 400), bad
    again = await _error(runner_hosts.register(db, "alpha-1.lab", _key_text()))
    same_key = await _error(runner_hosts.register(db, "beta", key))
    for error in (again, same_key):
        assert (error.code, error.status) == ("runner_host_already_registered", 409)
    bad_key = await _error(runner_hosts.register(db, "gamma", "ed25519:nonsense"))
    assert bad_key.code == "invalid_public_key"
    assert [row["name"] for row in await runner_hosts.listing(db)] == ["alpha-1.lab"]
    assert set(await runner_hosts.public_keys(db)) == {"alpha-1.lab"}


async def test_removing_a_host_and_a_host_not_there(db: Database) -> None:
    await runner_hosts.register(db, "alpha", _key_text())
    await runner_hosts.remove(db, "alpha")
    assert await runner_hosts.listing(db) == []
    error = await _error(runner_hosts.remove(db, "alpha"))
    assert (error.code, error.status) == ("runner_host_not_found", 404)


async def _regions(db: Database) -> tuple[Any, Any]:
    klass = await db.fetchall("SELECT region FROM classes")
    user = await db.fetchall("SELECT region FROM users WHERE username = 'kim'")
    return [row[0] for row in klass], [row[0] for row in user]


async def test_regions_are_checked_and_set_for_a_class_or_a_user(db: Database) -> None:
    settings = load_settings(data_dir=db.path.parent, environ={})
    teacher = await Accounts(db, settings).create_by(None, "teach", "password123", "teacher", None)
    await Accounts(db, settings).create_by(None, "kim", "password123", "student", None)
    class_id = (await classes.create(db, teacher, "7B"))["id"]

    await runner_hosts.prefer_region(db, class_id=class_id, username=None, region="north")
    await runner_hosts.prefer_region(db, class_id=None, username="kim", region="south-2")
    assert await _regions(db) == (["north"], ["south-2"])

    for bad in ("North", "no rth", "-x", "x" * 64):
        error = await _error(runner_hosts.prefer_region(db, class_id=class_id, username=None, region=bad))
        assert (error.code, error.status) == ("invalid_region", 400), bad
    missing = await _error(runner_hosts.prefer_region(db, class_id=class_id + 99, username=None, region="north"))
    assert (missing.code, missing.status) == ("class_not_found", 404)
    nobody = await _error(runner_hosts.prefer_region(db, class_id=None, username="nobody", region="north"))
    assert (nobody.code, nobody.status) == ("user_not_found", 404)
    assert await _regions(db) == (["north"], ["south-2"])  # refusals change nothing

    await runner_hosts.prefer_region(db, class_id=class_id, username=None, region="")
    assert await _regions(db) == ([None], ["south-2"])
