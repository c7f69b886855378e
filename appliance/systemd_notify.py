"""Readiness for systemd (`Type=notify`, the Debian package's unit): once the server listens it
sends READY=1 to $NOTIFY_SOCKET, so `systemctl start` returns when the server answers, and the
package's postinst finds it running. Without $NOTIFY_SOCKET (any other way of starting) it does nothing.

The protocol is one datagram on a Unix socket (sd_notify(3)); an address starting with "@" is in
the abstract namespace.
"""

from __future__ import annotations

import os
import socket

NOTIFY_SOCKET = "NOTIFY_SOCKET"


def ready() -> None:
    address = os.environ.get(NOTIFY_SOCKET, "")
    if not address.startswith(("/", "@")):
        return
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(target)
        sock.sendall(b"READY=1")
