"""What the window shows and stops: a server of the data folder (one already running, or one
started here) and the one-time link that logs the teacher in (or, with no teacher or admin yet, the
setup link). The links are made by this process in the database, so they work with either server."""

from __future__ import annotations

import asyncio
import threading

from appliance import login_links, server_record
from appliance.db import open_database
from appliance.errors import AppError
from appliance.settings import Settings
from ui.desktop import startup
from ui.desktop.progress import Progress
from ui.desktop.server_thread import InProcessServer

_LOCAL_HOSTS = ("", "0.0.0.0", "127.0.0.1", "localhost", "::", "::1")


class DesktopError(Exception):
    """Start-up cannot go on; the message says why and what to do."""


def _check_local_host(host: str, who: str) -> None:
    """The window's one-time link is accepted from loopback only: a server on one LAN address alone
    would refuse (and spend) it."""
    if host not in _LOCAL_HOSTS and not host.startswith("127."):
        raise DesktopError(
            f"{who} on {host} only, where the window's one-time link is refused:"
            " use --host 0.0.0.0 (every interface) or 127.0.0.1"
        )


class Session:
    def __init__(self, settings: Settings, username: str | None, progress: Progress) -> None:
        self.settings = settings
        self.username = username
        self.progress = progress
        self.base_url = ""
        self.attached = False
        self._server: InProcessServer | None = None
        self._lock = threading.Lock()
        self._closing = False

    def prepare(self) -> str:
        """Attach to the folder's running server or start one; return the one-time link's URL."""
        settings = self.settings
        try:
            record = server_record.running(settings.data_dir, settings.desktop_attach_wait_s)
        except TimeoutError as exc:
            raise DesktopError(str(exc)) from None
        if record is not None:
            _check_local_host(record.host, "the server already running for this data folder listens")
            self.attached = True
            self.base_url = record.local_url
            for key in ("engine", "image", "database"):
                self.progress.update(key, "skipped", "the running server looks after it")
            self.progress.update("server", "done", f"attached to the server already running at {self.base_url}")
        else:
            self._start_server()
        self.progress.update("login", "running")
        path = asyncio.run(self._link_path())
        self.progress.update("login", "done")
        return self.base_url + path

    def _start_server(self) -> None:
        settings = self.settings
        _check_local_host(settings.host, "the server would listen")
        startup.ensure_image(startup.check_engine(self.progress), self.progress)
        startup.migrate(settings, self.progress)
        self.progress.update("server", "running")
        server = InProcessServer(settings)
        with self._lock:
            if self._closing:
                raise DesktopError("the window was closed")
            self._server = server
        try:
            server.start()
        except OSError as exc:
            raise DesktopError(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}") from None
        self.base_url = server_record.local_url(settings.host, settings.port, server.window_port)
        self.progress.update("server", "done", f"listening on {settings.host}:{settings.port}")

    async def _link_path(self) -> str:
        db = open_database(self.settings.database_location)
        await db.open()
        try:
            if await login_links.needs_setup(db):
                return f"/desktop/setup/{await login_links.create_setup_link(db, self.settings)}"
            token, user = await login_links.create_login_link(db, self.settings, self.username)
            self.progress.update("login", "running", f"as {user.username} ({user.role})")
            return f"/desktop/login/{token}"
        except AppError as exc:
            self.progress.update("login", "failed")
            raise DesktopError(exc.message) from None
        finally:
            await db.close()

    def stop(self) -> bool:
        """Stop the server this window started (a server found running is left running)."""
        with self._lock:
            self._closing = True
            server = self._server
        if server is None:
            return True
        return server.stop(self.settings.desktop_stop_wait_s)
