"""Results keep the test data they were judged against, and rejudges say what they changed (issue 15).

No browser and no Docker: the sandbox is the EchoExecutor stand-in (a program's output is its own
code), so a submission's code chooses which tests it passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from appliance.app_keys import DB
from tests.conftest import ApiClient
from tests.ui.conftest import FakeSandbox, GatedEcho, Room, make_room
from tests.ui.test_classroom_api import submit, wait_done


def edited_tests() -> list[dict[str, Any]]:
    """The room's two tests with new data: what a teacher's fix of the tests looks like."""
    return [
        {"name": "example", "stdin": "bye\n", "expected_stdout": "BYE\n", "visible": True},
        {"name": "secret", "stdin": "EDITED-SECRET-IN", "expected_stdout": "EDITED-SECRET-OUT", "visible": False},
    ]


async def edit_tests(room: Room, tests: list[dict[str, Any]]) -> None:
    reply = await room.teacher.patch(f"/api/problems/{room.problem_id}", json={"test_cases": tests})
    assert reply.status == 200, reply


async def rejudge_results(client: ApiClient, problem_id: int, wait: str = "0") -> Any:
    return await client.get(f"/api/problems/{problem_id}/rejudges", params={"wait": wait})


async def test_teacher_sees_the_test_data_a_result_was_judged_against(room: Room) -> None:
    judged = await submit(room.student, room.problem_id, "HELLO\n")
    assert judged["verdict"] == "wrong_answer" and judged["hidden_tests"] == {"passed": 0, "total": 1}
    await edit_tests(room, edited_tests())

    staff = (await room.teacher.get(f"/api/submissions/{judged['id']}")).json
    example, secret = staff["tests"]
    assert (example["stdin"], example["expected_stdout"], example["stdout"]) == ("hello\n", "HELLO\n", "HELLO\n")
    assert (secret["stdin"], secret["expected_stdout"]) == (room.hidden_in, room.hidden_out)
    assert example["test_data_kept"] and secret["test_data_kept"]
    # Which tests students saw as a verdict only, as it was when judged (the tests are replaced now).
    assert (example["visibility"], secret["visibility"]) == ("visible", "hidden")
    assert staff["original"]["tests"][1]["stdin"] == room.hidden_in

    # The student sees nothing of the hidden test, neither as judged nor as it is now; and since
    # every test was replaced, their old result no longer shows even the old example in full.
    seen = await room.student.get(f"/api/submissions/{judged['id']}")
    assert seen.status == 200, seen
    for secret_text in (room.hidden_in, room.hidden_out, "EDITED-SECRET-IN", "EDITED-SECRET-OUT"):
        assert secret_text.encode() not in seen.body
    assert b"test_data_kept" not in seen.body and b"_blob" not in seen.body
    assert seen.json["hidden_tests"] == {"passed": 1, "total": 2}


async def test_results_from_before_snapshots_say_what_is_known(room: Room) -> None:
    judged = await submit(room.student, room.problem_id, "HELLO\n")
    # A result stored before migration 0011: no snapshot of its tests.
    await room.server.app[DB].execute(
        "UPDATE job_tests SET stdin_blob = NULL, expected_blob = NULL, visibility = NULL WHERE job_id = ?",
        (judged["id"],),
    )
    # While its test cases still link, they are what it was judged against: edits replace them.
    linked = (await room.teacher.get(f"/api/submissions/{judged['id']}")).json["tests"]
    assert [(t["stdin"], t["test_data_kept"]) for t in linked] == [("hello\n", True), (room.hidden_in, True)]

    await edit_tests(room, edited_tests())
    unknown = (await room.teacher.get(f"/api/submissions/{judged['id']}")).json["tests"]
    assert [(t["stdin"], t["expected_stdout"], t["test_data_kept"]) for t in unknown] == [(None, None, False)] * 2
    assert unknown[0]["stdout"] == "HELLO\n"  # the program's own output is kept regardless


async def test_rejudge_lists_old_and_new_verdicts(room: Room) -> None:
    assert (await rejudge_results(room.teacher, room.problem_id)).json["state"] == "none"
    fixed = await submit(room.student, room.problem_id, "HELLO\n")  # fails only the secret test
    other = await room.server.make_user("student")
    joined = await other.post("/api/classes/join", json={"code": room.join_code})
    assert joined.status == 200, joined
    stays = await submit(other, room.problem_id, "nope\n")
    assert (fixed["verdict"], stays["verdict"]) == ("wrong_answer", "wrong_answer")

    # The teacher makes the secret test expect what the first program prints, and rejudges.
    await edit_tests(
        room,
        [
            {"name": "example", "stdin": "hello\n", "expected_stdout": "HELLO\n", "visible": True},
            {"name": "secret", "stdin": room.hidden_in, "expected_stdout": "HELLO\n", "visible": False},
        ],
    )
    started = await room.teacher.post(f"/api/problems/{room.problem_id}/rejudge")
    assert started.status == 202 and len(started.json["rejudges"]) == 2
    for job_id in started.json["rejudges"]:
        await wait_done(room.teacher, "submissions", job_id)

    listed = await rejudge_results(room.teacher, room.problem_id, wait="10")
    assert listed.status == 200, listed
    results = listed.json
    assert (results["state"], results["total"], results["finished"], results["changed"]) == ("done", 2, 2, 1)
    rows = {row["submission_id"]: row for row in results["submissions"]}
    assert rows[fixed["id"]]["old"] == {"status": "done", "verdict": "wrong_answer", "score": 50.0}
    assert rows[fixed["id"]]["new"] == {"status": "done", "verdict": "accepted", "score": 100.0}
    assert rows[fixed["id"]]["changed"] is True and rows[fixed["id"]]["published"] is False
    assert rows[stays["id"]]["old"]["verdict"] == rows[stays["id"]]["new"]["verdict"] == "wrong_answer"
    assert rows[stays["id"]]["changed"] is False
    assert {row["rejudge_id"] for row in results["submissions"]} == set(started.json["rejudges"])

    # A second rejudge compares with the first one's results, not with the original ones.
    again = await room.teacher.post(f"/api/problems/{room.problem_id}/rejudge")
    for job_id in again.json["rejudges"]:
        await wait_done(room.teacher, "submissions", job_id)
    second = (await rejudge_results(room.teacher, room.problem_id)).json
    assert second["changed"] == 0 and {r["old"]["verdict"] for r in second["submissions"]} == {
        "accepted",
        "wrong_answer",
    }

    # Published: the list says so. Students and other teachers get nothing of it.
    assert (await room.teacher.post(f"/api/problems/{room.problem_id}/rejudge/publish")).json["published"] == 2
    assert all(r["published"] for r in (await rejudge_results(room.teacher, room.problem_id)).json["submissions"])
    for stranger in (room.student, room.outsider, await room.server.make_user("teacher")):
        denied = await rejudge_results(stranger, room.problem_id)
        assert denied.status in (403, 404), denied


async def test_waiting_for_rejudge_results_holds_while_it_runs(server_factory: Callable[..., Any]) -> None:
    gate = asyncio.Event()
    gate.set()
    room = await make_room(await server_factory(app_options={"sandbox": FakeSandbox(lambda: GatedEcho(gate))}))
    judged = await submit(room.student, room.problem_id, "HELLO\n")
    gate.clear()
    try:
        started = await room.teacher.post(f"/api/problems/{room.problem_id}/rejudge")
        assert started.status == 202
        now = await rejudge_results(room.teacher, room.problem_id)
        assert (now.json["state"], now.json["finished"], now.json["total"]) == ("running", 0, 1)
        # ?wait= holds while the rejudge runs, and answers once it finished.
        waiting = asyncio.create_task(rejudge_results(room.teacher, room.problem_id, wait="30"))
        await asyncio.sleep(0.5)
        assert not waiting.done(), waiting.result()
        gate.set()
        results = (await waiting).json
    finally:
        gate.set()
    assert (results["state"], results["finished"]) == ("done", 1)
    assert results["submissions"][0]["submission_id"] == judged["id"]
    bad = await rejudge_results(room.teacher, room.problem_id, wait="-1")
    assert bad.status == 400 and bad.error_code == "invalid_wait", bad
