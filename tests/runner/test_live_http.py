"""Live runs through the HTTP API and its WebSocket, with the real sandbox: the conversation, the
owner-only socket, one live run per student, the machine's capacity, and nothing left behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiohttp

from appliance.clock import iso, now
from appliance.sandbox_wiring import instance_label
from runner import engine
from runner.sandbox_container import LABEL_INSTANCE
from tests.conftest import ApiClient, LiveServer
from tests.ui.conftest import make_room

GREETER = 'name = input("Name? ")\nprint("Hello,", name)\nprint("Bye", input("Again? "))\n'


async def _messages_until(ws: Any, text: str, timeout_s: float = 30.0) -> tuple[str, dict[str, Any] | None]:
    """Output until `text` appears in it (or the run ends); the ending, if it came."""
    output = ""
    async with asyncio.timeout(timeout_s):
        while text not in output:
            message = await ws.receive_json()
            if message["type"] == "output":
                output += message["text"]
            elif message["type"] == "ended":
                return output, message
    return output, None


async def start_live(client: ApiClient, code: str = GREETER) -> dict[str, Any]:
    reply = await client.post("/api/live-runs", json={"language": "python", "code": code})
    assert reply.status == 201, reply
    return reply.json


@asynccontextmanager
async def at_first_prompt(client: ApiClient) -> AsyncIterator[Any]:
    """A live GREETER run of `client`'s, its socket open and the program waiting for a name."""
    run = await start_live(client)
    async with client.websocket(run["socket"]) as ws:
        assert (await ws.receive_json())["type"] == "started"
        output, ended = await _messages_until(ws, "Name? ")
        assert ended is None and output == "Name? "
        yield ws


async def assert_stopped_for(ws: Any, code: str) -> None:
    """The program waits for a name it will never get: only the access check can end it, saying why."""
    async with asyncio.timeout(30):
        said = await ws.receive_json()
        assert said["type"] == "error" and said["code"] == code, said
        ended = await ws.receive_json()
    assert ended["type"] == "ended" and ended["ending"] == "stopped", ended


def sandboxes_of(server: LiveServer) -> list[Any]:
    client = engine.connect(timeout_s=30)
    try:
        label = f"{LABEL_INSTANCE}={instance_label(server.settings.data_dir)}"
        return client.api.containers(all=True, filters={"label": label})
    finally:
        client.close()


async def test_a_student_answers_each_prompt_as_it_comes(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    student = await server.make_user("student")
    async with at_first_prompt(student) as ws:
        await ws.send_json({"type": "stdin", "text": "Ada\n"})
        output, ended = await _messages_until(ws, "Again? ")
        assert output == "Hello, Ada\nAgain? "
        await ws.send_json({"type": "nonsense"})
        assert (await ws.receive_json())["code"] == "bad_message"  # said, and the run goes on
        await ws.send_json({"type": "stdin", "text": "soon\n"})
        output, ended = await _messages_until(ws, "never printed")
        assert output == "Bye soon\n" and ended is not None and ended["ending"] == "finished", (output, ended)


async def test_only_the_owner_may_open_the_socket_and_only_from_our_pages(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    owner = await server.make_user("student")
    other = await server.make_user("student")
    teacher = await server.make_user("teacher")
    run = await start_live(owner)
    for intruder in (other, teacher):
        try:
            async with intruder.websocket(run["socket"]):
                raise AssertionError("another user's socket was opened")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 404
    try:
        async with owner.websocket(run["socket"], origin="http://evil.example"):
            raise AssertionError("a cross-site page opened the socket")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 403
    anonymous = server.client()
    try:
        async with anonymous.websocket(run["socket"]):
            raise AssertionError("an anonymous socket was opened")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401
    async with owner.websocket(run["socket"]) as ws:
        assert (await ws.receive_json())["type"] == "started"
        # The same run in a second tab: refused while the first follows it.
        try:
            async with owner.websocket(run["socket"]):
                raise AssertionError("a run was opened twice")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 409
        await ws.send_json({"type": "stop"})
        _, ended = await _messages_until(ws, "never printed")
        assert ended is not None and ended["ending"] == "stopped"


async def test_one_live_run_per_student_and_a_full_machine_says_so(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(live_sessions_max=1)
    first = await server.make_user("student")
    second = await server.make_user("student")
    await start_live(first)
    again = await first.post("/api/live-runs", json={"language": "python", "code": GREETER})
    assert again.status == 409 and again.error_code == "live_run_active", again
    assert "already have a live run" in again.error["message"]
    full = await second.post("/api/live-runs", json={"language": "python", "code": GREETER})
    assert full.status == 503 and full.error_code == "live_runs_full", full
    assert full.headers["Retry-After"] == "30" and "input box" in full.error["message"]
    bad = await second.post("/api/live-runs", json={"language": "cobol", "code": "x"})
    assert bad.status == 400, bad
    admin = await server.make_user("admin")
    assert (await admin.get("/api/admin/stats")).json["live_runs"] == {"open": 1, "max": 1}


async def test_closing_the_page_stops_the_program_and_leaves_no_sandbox(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    # No pool and no prewarm: the live run's sandbox is the only one.
    server = await server_factory(sandbox_pool_size=0, sandbox_prewarm=False)
    student = await server.make_user("student")
    run = await start_live(student, "print('spinning', flush=True)\nwhile True:\n    pass\n")
    async with student.websocket(run["socket"]) as ws:
        assert (await ws.receive_json())["type"] == "started"
        await _messages_until(ws, "spinning")
        assert len(sandboxes_of(server)) == 1
    # The page went away: the program stops, its sandbox goes, and the student's place is free.
    for _ in range(100):
        if not sandboxes_of(server):
            break
        await asyncio.sleep(0.1)
    assert sandboxes_of(server) == [], "the live run's sandbox was left"
    reply = await student.post("/api/live-runs", json={"language": "python", "code": "print(1)"})
    assert reply.status == 201, reply


async def test_a_flood_of_messages_is_cut_to_the_setting_and_the_page_is_told(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(live_messages_per_s=5)
    student = await server.make_user("student")
    run = await start_live(student, "import sys\nfor line in sys.stdin:\n    print('got', line.strip(), flush=True)\n")
    async with student.websocket(run["socket"]) as ws:
        assert (await ws.receive_json())["type"] == "started"
        for index in range(20):
            await ws.send_json({"type": "stdin", "text": f"{index}\n"})
        output, errors = "", []
        async with asyncio.timeout(30):
            while not errors or "got 4\n" not in output:
                message = await ws.receive_json()
                if message["type"] == "error":
                    errors.append(message["code"])
                elif message["type"] == "output":
                    output += message["text"]
        assert errors == ["too_many_messages"], errors
        await asyncio.sleep(1.5)  # a new second: messages pass again
        await ws.send_json({"type": "eof"})
        rest, ended = await _messages_until(ws, "never printed")
    assert ended is not None and ended["ending"] == "finished", ended
    assert output + rest == "".join(f"got {i}\n" for i in range(5)), output + rest


async def test_a_live_run_open_when_an_exam_without_runs_begins_is_stopped(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(live_access_check_s=1)
    room = await make_room(server)
    async with at_first_prompt(room.student) as ws:
        window = {"starts_at": iso(now() - timedelta(minutes=1)), "ends_at": iso(now() + timedelta(hours=1))}
        exam = {"title": "Midterm", "problem_ids": [room.problem_id], "runs_allowed": False, **window}
        assert (await room.teacher.post(f"/api/classes/{room.class_id}/exams", json=exam)).status == 201
        await assert_stopped_for(ws, "exam_runs_disabled")


async def test_a_live_run_whose_login_ends_is_stopped(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(live_access_check_s=1)
    student = await server.make_user("student")
    async with at_first_prompt(student) as ws:
        # Logged out in another tab (or disabled by their teacher): the open program ends too.
        assert (await student.post("/api/auth/logout")).status in (200, 204)
        await assert_stopped_for(ws, "login_ended")
