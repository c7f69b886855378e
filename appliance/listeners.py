"""Where the appliance listens: `host:port`, over HTTPS when `tls` is on; and then also a plain
HTTP port on loopback, for the teacher's window on this machine only.

Why the window gets plain HTTP on loopback rather than HTTPS: pywebview's Qt web view offers no
way to trust exactly one certificate (it would have to accept every certificate error, or a
self-signed certificate be installed in the system's store), and the loopback link never leaves
the machine, so TLS would protect nothing there. The window's one-time login and setup links are
accepted from loopback only anyway. The port is any free one, written to `server.json` so that
`labrunner desktop` attaches there.
"""

from __future__ import annotations

import socket

from aiohttp import web

from appliance.settings import Settings
from appliance.tls import Tls

WINDOW_HOST = "127.0.0.1"


async def listen(runner: web.AppRunner, settings: Settings, tls: Tls | None) -> int | None:
    """Start listening; the window's loopback plain-HTTP port when TLS is on, else None."""
    context = tls.server_context() if tls is not None else None
    await web.TCPSite(runner, settings.host, settings.port, ssl_context=context).start()
    if tls is None:
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((WINDOW_HOST, 0))
        sock.listen(128)
        sock.setblocking(False)
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        raise
    return int(sock.getsockname()[1])
