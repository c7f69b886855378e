"""Run inside the Debian test container by its own python3 (standard library only): what an admin's
browser on the classroom machine does over loopback. tests/packaging/test_deb.py drives it.

  deb_probe.py health PORT        wait until /healthz says ok for everything; print it
  deb_probe.py setup LINK         open the setup link, create the admin and the teacher; print the session cookie
  deb_probe.py me PORT COOKIE     print the username the session cookie belongs to
  deb_probe.py down PORT          wait until nothing listens on PORT any more
"""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

HEALTHY_WAIT_S = 120
PASSWORD = "a-long-setup-password"


def get(url: str, cookie: str = "") -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def health(port: str) -> None:
    deadline = time.monotonic() + HEALTHY_WAIT_S
    last = ""
    while time.monotonic() < deadline:
        try:
            _status, body, _headers = get(f"http://127.0.0.1:{port}/healthz")
            last = body.decode()
            report = json.loads(last)
            if all(report.get(key) == "ok" for key in ("status", "db", "runner", "image")):
                print(last)
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.25)
    sys.exit(f"/healthz was not all ok within {HEALTHY_WAIT_S}s: {last}")


def setup(link: str) -> None:
    status, page, _headers = get(link)
    if status != 200 or b'id="setup-form"' not in page:
        sys.exit(f"the setup link did not open the setup page: {status} {page[:500]!r}")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(link))
    body = {
        "token": link.rsplit("/", 1)[1],
        "admin_username": "ada",
        "admin_password": PASSWORD,
        "teacher_username": "tina",
        "teacher_password": PASSWORD,
    }
    for kind in ("terms", "privacy"):
        body[f"accept_{kind}"] = json.loads(get(f"{origin}/api/legal/{kind}")[1])["version"]
    request = urllib.request.Request(
        f"{origin}/api/desktop/setup",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Origin": origin},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        cookie = reply.headers["Set-Cookie"].split(";", 1)[0]
    print(cookie)


def down(port: str) -> None:
    deadline = time.monotonic() + HEALTHY_WAIT_S
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.1)
    sys.exit(f"port {port} still answers after {HEALTHY_WAIT_S}s")


def me(port: str, cookie: str) -> None:
    status, body, _headers = get(f"http://127.0.0.1:{port}/api/me", cookie)
    if status != 200:
        sys.exit(f"/api/me answered {status}: {body[:300]!r}")
    print(json.loads(body)["username"])


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"health": health, "setup": setup, "me": me, "down": down}[command](*args)
