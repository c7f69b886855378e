"""Attacks on live runs over HTTP, as a malicious student would make them, with the real sandbox:
each either refused (and kept refused by its test) or fixed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from appliance.app_keys import LIVE_RUNS
from tests.conftest import ApiClient, LiveServer
from tests.runner.test_live_http import sandboxes_of, start_live

SPINNER = "print('spinning', flush=True)\nwhile True:\n    pass\n"


async def _until_ended(ws: Any, timeout_s: float = 30.0) -> tuple[str, list[dict[str, Any]]]:
    """The output and every other message until the run's `ended` (the last one in the list)."""
    output, others = "", []
    async with asyncio.timeout(timeout_s):
        while True:
            message = await ws.receive_json()
            if message["type"] == "output":
                output += message["text"]
                continue
            others.append(message)
            if message["type"] in ("ended", "error") and message.get("code") != "bad_message":
                return output, others


async def _until_output(ws: Any, text: str, timeout_s: float = 30.0) -> str:
    output = ""
    async with asyncio.timeout(timeout_s):
        while text not in output:
            message = await ws.receive_json()
            assert message["type"] != "ended", message
            if message["type"] == "output":
                output += message["text"]
    return output


async def _until_over(server: LiveServer, seconds: float = 30.0) -> None:
    """Until the appliance let go of every live run and no sandbox of this server is left."""
    for _ in range(round(seconds * 10)):
        if server.app[LIVE_RUNS].count() == 0 and not sandboxes_of(server):
            return
        await asyncio.sleep(0.1)
    runs = server.app[LIVE_RUNS].count()
    raise AssertionError(f"left behind: {runs} live run(s), {len(sandboxes_of(server))} sandbox(es)")


async def _handshake_then_drop(server: LiveServer, student: ApiClient, path: str) -> None:
    """Open the socket as a page would, then vanish (a closed lid, a dropped Wi-Fi) without
    reading a single message: the TCP connection just goes."""
    url = urlsplit(server.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {server.url}\r\n"
            f"Cookie: labrunner_session={student.session_cookie}\r\n\r\n"
        ).encode()
    )
    status = await reader.readline()
    assert b" 101 " in status, status
    writer.transport.abort()


async def test_a_page_that_drops_before_started_leaves_no_sandbox(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    # No pool and no prewarm: the handshake is answered while the sandbox still starts, and the
    # connection is gone before "started" can be sent.
    server = await server_factory(sandbox_pool_size=0, sandbox_prewarm=False)
    student = await server.make_user("student")
    run = await start_live(student, SPINNER)
    await _handshake_then_drop(server, student, run["socket"])
    await _until_over(server)
    again = await start_live(student, "print(1)")
    async with student.websocket(again["socket"]) as ws:
        output, messages = await _until_ended(ws)
        assert output == "1\n" and messages[-1]["ending"] == "finished", (output, messages)


async def test_hostile_messages_are_refused_one_by_one_and_the_run_goes_on(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory()
    student = await server.make_user("student")
    run = await start_live(student, 'print("got", repr(input("? ")))\n')
    hostile: list[str] = [
        "[" * 60_000,  # deeper than the JSON parser's recursion
        '{"type":"key","key":"\\ud800","code":"KeyA","down":true}',  # a lone surrogate
        '{"type":"key","key":1,"code":"KeyA","down":true}',
        '{"type":"key","key":"a","code":"KeyA","down":1}',
        '{"type":"pointer","kind":"move","x":-1,"y":0}',
        '{"type":"pointer","kind":"move","x":1e308,"y":0}',
        '{"type":"pointer","kind":"move","x":true,"y":0}',
        '{"type":"pointer","kind":"drag","x":1,"y":0}',
        '{"type":"stdin","text":"' + "x" * 4001 + '"}',
        '{"type":"stdin","text":null}',
        '{"type":"end"}',  # the host's own message to the harness, not a page's
        "NaN",
        "not json",
        "[]",
    ]
    async with student.websocket(run["socket"]) as ws:
        assert (await ws.receive_json())["type"] == "started"
        await _until_output(ws, "? ")
        for text in hostile:
            await ws.send_str(text)
            reply = await ws.receive_json(timeout=10)
            assert reply["type"] == "error" and reply["code"] == "bad_message", (text[:60], reply)
        await ws.send_bytes(b'{"type":"stop"}')  # binary messages carry nothing from a page
        await ws.send_json({"type": "stdin", "text": "\ud800ok\n"})  # a lone surrogate typed
        output, messages = await _until_ended(ws)
        assert output == "got '?ok'\n" and messages[-1]["ending"] == "finished", (output, messages)


async def test_an_oversized_message_closes_the_socket_and_stops_the_program(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(sandbox_pool_size=0, sandbox_prewarm=False)
    student = await server.make_user("student")
    run = await start_live(student, SPINNER)
    async with student.websocket(run["socket"]) as ws:
        assert (await ws.receive_json())["type"] == "started"
        await _until_output(ws, "spinning")
        await ws.send_str('{"type":"stdin","text":"' + "x" * 100_000 + '"}')
        async with asyncio.timeout(30):
            while (await ws.receive()).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                pass
    await _until_over(server)


async def test_a_page_that_stops_reading_cannot_keep_its_run_past_its_limits(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    # The program floods; the page reads nothing, so the socket, then the sandbox's stream, back
    # up and the harness blocks on its own output, where it cannot see its wall time. The page
    # keeps sending (which keeps the socket's heartbeat content, and the run from going idle).
    server = await server_factory(
        sandbox_pool_size=0,
        sandbox_prewarm=False,
        live_wall_time_s=4.0,
        live_page_stall_s=2.0,
        live_output_limit_bytes=1 << 30,
    )
    student = await server.make_user("student")
    run = await start_live(student, "while True:\n    print('x' * 1000)\n")
    async with student.websocket(run["socket"]) as ws:
        await asyncio.sleep(1.0)
        assert len(sandboxes_of(server)) == 1
        # Past the wall time and the stall allowance, but well before the session's deadline
        # (which allows for a compilation too: over a minute here).
        for _ in range(30):
            if server.app[LIVE_RUNS].count() == 0 and not sandboxes_of(server):
                break
            with contextlib.suppress(ConnectionResetError):
                await ws.send_json({"type": "stdin", "text": ""})
            await asyncio.sleep(1.0)
        await _until_over(server, seconds=1)


async def test_cross_site_and_guessed_sockets_are_refused_and_an_unopened_run_lapses(
    server_factory: Callable[..., Awaitable[LiveServer]], sandbox_ready: None
) -> None:
    server = await server_factory(live_connect_s=1.0)
    student = await server.make_user("student")
    run = await start_live(student, SPINNER)
    url = (server.url + run["socket"]).replace("http", "ws", 1)
    # The student's cookie, from anywhere but our pages: no Origin at all, a sandboxed frame's
    # "null", a lookalike host, or the browser's own word that it is cross-site.
    for headers, status in [
        ({}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": server.url + ".evil.example"}, 403),
        ({"Origin": server.url, "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": server.url, "Sec-Fetch-Site": "same-site"}, 403),
    ]:
        try:
            async with student._session.ws_connect(url, headers=headers):
                raise AssertionError(f"the socket opened with {headers}")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == status, (headers, exc.status)
    # A guessed id, or the run's id with another ending, is nobody's.
    for guess in ("AAAAAAAAAAAAAAAAAAAAAA", run["id"][:-1], run["id"] + "A", "..%2f..%2fjobs"):
        try:
            async with student.websocket(f"/api/live-runs/{guess}/socket"):
                raise AssertionError(f"{guess} opened")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 404, (guess, exc.status)
    # None of that spent the run; left unopened, it lapses and frees the student's place.
    await asyncio.sleep(1.5)
    assert server.app[LIVE_RUNS].count() == 0
    try:
        async with student.websocket(run["socket"]):
            raise AssertionError("a lapsed run opened")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 404
    again = await start_live(student, "print(2)")
    async with student.websocket(again["socket"]) as ws:
        output, messages = await _until_ended(ws)
        assert output == "2\n" and messages[-1]["ending"] == "finished", (output, messages)
