"""The appliance served from a thread of the window's process, on that thread's own event loop
(pywebview owns the main thread). Stopping it is `labrunner serve`'s clean stop: no new requests,
running jobs finish or are requeued, every sandbox container is removed, the database closed."""

from __future__ import annotations

import asyncio
import logging
import threading

from aiohttp import web

from appliance import lan_announce, server_record
from appliance.settings import Settings

log = logging.getLogger(__name__)


class InProcessServer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        # With TLS on, the plain-HTTP loopback port the window uses (appliance.listeners).
        self.window_port: int | None = None

    def start(self) -> None:
        """Return once the server listens; raise what kept it from starting."""
        self._thread = threading.Thread(target=self._run, name="labrunner-server", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float) -> bool:
        """Stop cleanly; False when it did not finish within `timeout_s`."""
        self._stopping.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(), or logged by the thread if it came later
            if not self._started.is_set():
                self._error = exc
                self._started.set()
            else:
                raise

    async def _serve(self) -> None:
        from appliance.app_keys import TLS
        from appliance.listeners import listen
        from appliance.runtime import create_app

        settings = self._settings
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stopping.is_set():  # closed while still starting: stop as soon as it stands
            self._stop.set()
        await runner.setup()
        announcement = None
        try:
            self.window_port = await listen(runner, settings, app[TLS])
            server_record.write(settings.data_dir, settings.host, settings.port, self.window_port)
            self._started.set()
            announcement = await lan_announce.start(settings, log.info)
            await self._stop.wait()
        finally:
            if announcement is not None:
                await announcement.close()
            server_record.remove(settings.data_dir)
            await runner.cleanup()
