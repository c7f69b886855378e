"""The desktop window's tests: HTTP-level ones on an in-process server reachable over loopback
and over this machine's LAN address, and window tests (test_window*.py) on their own Xvfb."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from aiohttp.test_utils import TestServer

from appliance.lan import lan_addresses
from appliance.runtime import create_app
from appliance.settings import Settings
from tests.conftest import ApiClient, LiveServer
from tests.desktop.window import Desktop, start_xvfb
from tests.requirements import unavailable
from tests.ui.conftest import no_docker


@pytest.fixture
def display() -> Iterator[str]:
    """A display of its own (Xvfb) for a window test."""
    yield from start_xvfb()


@pytest.fixture
def desktops() -> Iterator[list[Desktop]]:
    """The windows a test starts (it appends each): killed at the end, whatever happened."""
    started: list[Desktop] = []
    yield started
    for desktop in started:
        desktop.kill()


@pytest.fixture
async def both_sides(settings_factory: Callable[..., Settings]) -> AsyncIterator[LiveServer]:
    """A server on every interface: reachable over loopback and over this machine's LAN address."""
    settings = settings_factory()
    app = create_app(settings, **no_docker())
    test_server = TestServer(app, host="0.0.0.0")
    await test_server.start_server()
    live = LiveServer(url=f"http://127.0.0.1:{test_server.port}", settings=settings, app=app, test_server=test_server)
    yield live
    await live.close()


def lan_client(live: LiveServer) -> ApiClient:
    """A client the server sees at a LAN address of this machine (not loopback)."""
    addresses = lan_addresses()
    if not addresses:
        unavailable("this machine has no LAN address to call the server from")
    address = addresses[0]
    client = ApiClient(f"http://{address}:{live.test_server.port}", local_address=address)
    live.clients.append(client)
    return client
