"""Staging promotes to production (issue 13): two real appliance processes on loopback, a staging
one and a production one, and `labrunner --env staging promote` between their data folders.

Must show: promote moves a problem with visible and hidden tests from staging to production, and a
student in production still sees only the visible ones (the production server's student API and
page). Also: production must trust staging's key (refused with the command to run, nothing
written), re-promoting updates the production copy, an unknown problem or owner and an owner who is
not a teacher are refused with nothing written, and an altered promote bundle is refused."""

from __future__ import annotations

import io
import re
import subprocess
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.settings import STAGING_PORT, load_settings
from tests.conftest import DEFAULT_PASSWORD, ApiClient, dump_db
from tests.runner.appliance_process import ApplianceProcess, create_account, free_port, run_cli

HIDDEN_IN = "promoted-hidden-in-8R2"
HIDDEN_OUT = "PROMOTED-HIDDEN-OUT-8R2"
# What promote may write on production (problems and their tests, the inbox, the origin mapping)
# and on staging (its publications).
PRODUCTION_TABLES = ("problems", "test_cases", "problem_classes", "problem_set_inbox", "problem_origins")
STAGING_TABLES = ("published_problem_sets",)


def labrunner(*args: str, xdg: Path) -> subprocess.CompletedProcess[str]:
    """The program as an admin types it; production's usual data folder lies under `xdg`."""
    return run_cli(*args, env={"XDG_DATA_HOME": str(xdg), "PYTHONIOENCODING": "utf-8"}, timeout_s=120)


@dataclass
class Pair:
    xdg: Path
    staging: ApplianceProcess
    production: ApplianceProcess

    def promote(self, *args: str) -> subprocess.CompletedProcess[str]:
        return labrunner("--env", "staging", "--data-dir", str(self.staging.data_dir), "promote", *args, xdg=self.xdg)

    def state(self) -> tuple[Any, ...]:
        production = dump_db(self.production.data_dir / "labrunner.sqlite3")
        staging = dump_db(self.staging.data_dir / "labrunner.sqlite3")
        return tuple(production[t] for t in PRODUCTION_TABLES), tuple(staging[t] for t in STAGING_TABLES)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    xdg = tmp_path / "xdg"
    # Production in its usual folder (found by promote without --to-data-dir); staging in its own.
    production = ApplianceProcess(xdg / "labrunner", free_port())
    staging = ApplianceProcess(tmp_path / "staging", free_port())
    for process, accounts in (
        (production, (("teacher", "prod-teacher"), ("student", "prod-student"))),
        (staging, (("teacher", "stage-teacher"),)),
    ):
        process.data_dir.mkdir(parents=True)
        for role, username in accounts:
            create_account(process.data_dir, role, username)
    started: list[ApplianceProcess] = []
    try:
        for process in (production, staging):
            process.start()
            started.append(process)
        yield Pair(xdg, staging, production)
    finally:
        for process in started:
            process.stop()


async def login(url: str, username: str) -> ApiClient:
    client = ApiClient(url)
    reply = await client.login(username, DEFAULT_PASSWORD)
    assert reply.status == 200, reply
    if reply.json["user"]["pending_legal"]:
        versions = {f"accept_{k}": (await client.get(f"/api/legal/{k}")).json["version"] for k in ("terms", "privacy")}
        assert (await client.post("/api/me/accept-legal", json=versions)).status == 200
    return client


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[dict[str, ApiClient]]:
    made = {
        "stage": await login(pair.staging.url, "stage-teacher"),
        "teacher": await login(pair.production.url, "prod-teacher"),
        "student": await login(pair.production.url, "prod-student"),
    }
    yield made
    for client in made.values():
        await client.close()


async def staging_problem(teacher: ApiClient) -> int:
    created = await teacher.post(
        "/api/problems",
        json={
            "title": "Shout",
            "statement": "Print the input in capitals.",
            "language": "python",
            "test_cases": [
                {"name": "example", "stdin": "hi\n", "expected_stdout": "HI\n", "visible": True},
                {"name": "secret", "stdin": HIDDEN_IN, "expected_stdout": HIDDEN_OUT, "visible": False},
            ],
        },
    )
    assert created.status == 201, created
    return int(created.json["id"])


async def production_class(teacher: ApiClient, student: ApiClient) -> int:
    klass = await teacher.post("/api/classes", json={"name": "9A"})
    assert klass.status == 201, klass
    assert (await student.post("/api/classes/join", json={"code": klass.json["join_code"]})).status == 200
    return int(klass.json["id"])


def refused(result: subprocess.CompletedProcess[str], code: str) -> str:
    assert result.returncode == 1 and f"({code})" in result.stderr, (result.returncode, result.stdout, result.stderr)
    return result.stderr


async def test_promote_moves_visible_and_hidden_tests_and_a_production_student_sees_only_the_visible(
    pair: Pair, clients: dict[str, ApiClient]
) -> None:
    problem = await staging_problem(clients["stage"])
    class_id = await production_class(clients["teacher"], clients["student"])
    args = (str(problem), "--owner", "prod-teacher", "--class", str(class_id))

    # Production does not trust staging yet: refused, with the exact command to run, nothing written.
    before = pair.state()
    message = refused(pair.promote(*args), "promote_untrusted_staging")
    assert pair.state() == before
    command = re.search(r"run once: labrunner (.+?) ; nothing was promoted", message.replace("\n", " "))
    assert command is not None, message
    ok = labrunner(*command.group(1).split(" "), xdg=pair.xdg)
    assert ok.returncode == 0 and "trusting publisher" in ok.stdout, ok.stderr

    promoted = pair.promote(*args)
    assert promoted.returncode == 0, promoted.stderr
    found = re.search(rf"staging problem {problem} -> production problem (\d+) \(created\)", promoted.stdout)
    assert found is not None, promoted.stdout
    copy = int(found.group(1))

    # The teacher's copy holds every test, the hidden one intact.
    every = await clients["teacher"].get(f"/api/problems/{copy}/test-cases/all")
    assert every.status == 200, every
    assert [(t["stdin"], t["expected_stdout"], t["visibility"]) for t in every.json["test_cases"]] == [
        ("hi\n", "HI\n", "visible"),
        (HIDDEN_IN, HIDDEN_OUT, "hidden"),
    ]
    # The class's student sees the problem and only its visible test, in the API and on the page.
    student = clients["student"]
    listed = await student.get("/api/problems")
    assert copy in [p["id"] for p in listed.json["problems"]], listed
    tests = await student.get(f"/api/problems/{copy}/test-cases")
    assert [t["stdin"] for t in tests.json["test_cases"]] == ["hi\n"], tests
    for reply in (listed, tests, await student.get(f"/api/problems/{copy}"), await student.get(f"/problems/{copy}")):
        assert reply.status == 200 and HIDDEN_IN not in reply.text and HIDDEN_OUT not in reply.text, reply

    # Promoting again after an edit on staging updates the same production problem.
    edited = await clients["stage"].patch(f"/api/problems/{problem}", json={"title": "Shout louder"})
    assert edited.status == 200, edited
    again = pair.promote(*args)
    assert f"staging problem {problem} -> production problem {copy} (updated)" in again.stdout, again
    mine = (await clients["teacher"].get("/api/problems")).json["problems"]
    assert [(p["id"], p["title"]) for p in mine] == [(copy, "Shout louder")], mine

    # With production's server stopped, promote writes its database all the same.
    pair.production.stop()
    offline = pair.promote(*args)
    assert f"staging problem {problem} -> production problem {copy} (updated)" in offline.stdout, offline


async def test_unknown_problems_and_owners_are_refused_and_nothing_is_written(
    pair: Pair, clients: dict[str, ApiClient]
) -> None:
    problem = await staging_problem(clients["stage"])
    public_key = labrunner("--data-dir", str(pair.staging.data_dir), "identity", xdg=pair.xdg).stdout
    key = re.search(r"public key:\s+(\S+)", public_key)
    assert key is not None
    trusted = labrunner("--env", "production", "publishers", "add", "staging", key.group(1), xdg=pair.xdg)
    assert trusted.returncode == 0, trusted.stderr
    before = pair.state()
    refused(pair.promote("999", "--owner", "prod-teacher"), "unknown_problem")
    refused(pair.promote(str(problem), "--owner", "nobody-here"), "promote_unknown_owner")
    refused(pair.promote(str(problem), "--owner", "prod-student"), "promote_owner_not_teacher")
    # A class the owner does not have (here: none at all).
    assert pair.promote(str(problem), "--owner", "prod-teacher", "--class", "4242").returncode == 1
    assert pair.state() == before


async def test_an_altered_promote_bundle_is_refused_by_production(
    tmp_path: Path, pair: Pair, clients: dict[str, ApiClient]
) -> None:
    problem = await staging_problem(clients["stage"])
    key = re.search(
        r"public key:\s+(\S+)", labrunner("--data-dir", str(pair.staging.data_dir), "identity", xdg=pair.xdg).stdout
    )
    assert key is not None
    assert labrunner("--env", "production", "publishers", "add", "staging", key.group(1), xdg=pair.xdg).returncode == 0
    bundle = tmp_path / "promote.zip"
    written = pair.promote(str(problem), "--out", str(bundle))
    assert written.returncode == 0 and bundle.is_file(), written.stderr

    # A well-formed zip (correct CRCs) with the hidden test turned visible: the signature check must catch it.
    packed = io.BytesIO()
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(packed, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data.replace(b'"visibility":"hidden"', b'"visibility":"visible"'))
    assert packed.getvalue() != bundle.read_bytes()
    altered = tmp_path / "altered.zip"
    altered.write_bytes(packed.getvalue())
    before = pair.state()
    refused(labrunner("--env", "production", "import", str(altered), xdg=pair.xdg), "bundle_tampered")
    assert pair.state() == before
    # The genuine one goes into production's inbox.
    taken = labrunner("--env", "production", "import", str(bundle), xdg=pair.xdg)
    assert taken.returncode == 0 and "received into the inbox" in taken.stdout, taken.stderr


def test_staging_listens_on_its_own_port_unless_told_otherwise(tmp_path: Path) -> None:
    staging = load_settings(environment="staging", data_dir=tmp_path / "s", environ={})
    production = load_settings(environment="production", data_dir=tmp_path / "p", environ={})
    assert (staging.port, production.port) == (STAGING_PORT, 8080)
    assert (
        load_settings(environment="staging", data_dir=tmp_path / "s", environ={"LABRUNNER_PORT": "9000"}).port == 9000
    )
    assert (
        load_settings(environment="staging", data_dir=tmp_path / "s", overrides={"port": 9001}, environ={}).port == 9001
    )
    (tmp_path / "s" / "config.toml").write_text("port = 9002\n")
    assert load_settings(environment="staging", data_dir=tmp_path / "s", environ={}).port == 9002
