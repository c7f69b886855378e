"""The one-file `labrunner-desktop` binary opens its window: run by packaging/check-binary.sh as
`python -m tests.desktop.binary_window BINARY FOLDER` with the test tools (Xvfb, the DevTools
client, the X11 close), while the binary itself sees no virtual environment, only the system's PATH.

The window must load a page of the server it started, show something on the screen, and stop
cleanly (exit 0) when closed as a window manager closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.desktop.cdp import WindowPage
from tests.desktop.window import (
    data_folder,
    free_port,
    remove_containers_of,
    screenshot,
    start_xvfb,
    window_env,
    window_id,
)
from tests.desktop.x11 import send_delete_window

# Unpacking Qt WebEngine from the one-file archive comes first: generous, not a measure.
START_S = 240
STOP_S = 60


def _clean_env(folder: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(folder / "home"), "LANG": "C.UTF-8"}


async def _page_shows(devtools: int, port: int) -> None:
    page = await WindowPage.connect(devtools, START_S)
    try:
        await page.wait_for(f"location.port === '{port}' && document.readyState === 'complete'", START_S)
    finally:
        await page.close()


def check(binary: Path, folder: Path) -> float:
    """Seconds from the start to the window's page; raises AssertionError when it does not open."""
    (folder / "home").mkdir(parents=True, exist_ok=True)
    port = free_port()
    data = data_folder(folder / "data", port=port, sandbox_pool_size=0)
    env = _clean_env(folder)
    subprocess.run(
        [binary, "--data-dir", data, "users", "create", "--role", "teacher", "--username", "tina", "--password-stdin"],
        input="a long enough password\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    with contextlib.contextmanager(start_xvfb)() as display:
        devtools = free_port()
        log = folder / "desktop.log"
        started = time.monotonic()
        with open(log, "wb") as out:
            process = subprocess.Popen(
                [binary, "--data-dir", data, "desktop"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, **window_env(display, devtools)},
                # Its own process group: a one-file binary runs the program in a child process, which
                # a SIGKILL of the bootloader alone would leave behind.
                start_new_session=True,
            )
        try:
            asyncio.run(_page_shows(devtools, port))
            seconds = time.monotonic() - started
            screenshot(display, folder / "desktop-binary.png")
            send_delete_window(display, window_id(display))
            code = process.wait(timeout=STOP_S)
            assert code == 0, f"the window's process exited with {code}:\n{log.read_text(errors='replace')[-3000:]}"
            return seconds
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            remove_containers_of(data)


if __name__ == "__main__":
    seconds = check(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"check-binary: the window showed the server's page after {seconds:.1f} s and closed cleanly")
