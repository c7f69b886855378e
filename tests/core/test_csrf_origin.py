"""The CSRF check compares origins as a browser means them: scheme, host and port, normalised."""

from __future__ import annotations

import pytest

from tests.conftest import ApiClient, LiveServer


async def _with_cookie(server: LiveServer, user: ApiClient, origin: str) -> ApiClient:
    client = server.client(origin=origin)
    client.use_session(user.session_cookie)
    return client


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://LOCALHOST:{port}", "localhost:{port}", True),  # host names are case-insensitive
        ("HTTP://localhost:{port}", "localhost:{port}", True),  # so are schemes
        ("http://localhost:{port}", "LocalHost:{port}", True),
        ("http://127.0.0.1:80", "127.0.0.1", True),  # the default port, spelled out or not
        ("http://127.0.0.1", "127.0.0.1:80", True),
        ("http://127.0.0.1:81", "127.0.0.1", False),
        ("https://127.0.0.1:{port}", "127.0.0.1:{port}", False),  # another scheme
        ("http://127.0.0.1:{port}/path", "127.0.0.1:{port}", False),  # not an origin
        ("http://user@127.0.0.1:{port}", "127.0.0.1:{port}", False),
        ("http://127.0.0.2:{port}", "127.0.0.1:{port}", False),
        ("null", "127.0.0.1:{port}", False),
    ],
)
async def test_origins_are_compared_normalised(
    server: LiveServer, make_user, origin: str, host: str, allowed: bool
) -> None:
    teacher = await make_user("teacher")
    port = server.url.rsplit(":", 1)[1]
    client = await _with_cookie(server, teacher, origin.format(port=port))
    before = server.db_rows()
    reply = await client.post("/api/classes", json={"name": "c"}, headers={"Host": host.format(port=port)})
    if allowed:
        assert reply.status == 201, reply
    else:
        assert reply.status == 403 and reply.error_code == "csrf_failed", reply
        assert server.db_rows() == before
