"""The desktop window as the teacher starts it: `labrunner desktop` in its own process, on a
virtual screen (Xvfb) of its own; its page is driven over the DevTools protocol (cdp.py), the
screen is photographed with ImageMagick's `import`, and the window is closed as a window manager
closes it (x11.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from appliance import classes, legal
from appliance.accounts import User
from appliance.db import open_database
from appliance.sandbox_wiring import instance_label
from appliance.settings import load_settings
from appliance.store import users as user_store
from tests.conftest import REPO_ROOT
from tests.desktop.x11 import send_delete_window
from tests.requirements import unavailable
from tests.runner.appliance_process import create_account

SCREEN = "1600x1000x24"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "desktop"


def require_window_tools() -> None:
    """Xvfb, `import`, `xdotool` and Qt WebEngine: else a skip, or a failure under CI."""
    for tool in ("Xvfb", "import", "xdotool"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is missing: run packaging/ensure-desktop.sh")
    for module in ("webview", "PyQt6.QtWebEngineWidgets"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is missing: install the `desktop` extra")


def start_xvfb() -> Iterator[str]:
    """A virtual screen on a display number Xvfb picks itself (-displayfd); stopped after."""
    require_window_tools()
    read, write = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    try:
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def data_folder(path: Path, **config: object) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {value!r}" if isinstance(value, str) else f"{key} = {value}" for key, value in config.items()]
    (path / "config.toml").write_text("\n".join(lines).replace("True", "true").replace("False", "false") + "\n")
    return path


async def teacher_with_class(data_dir: Path, username: str, class_name: str) -> str:
    """A teacher made by the CLI who has accepted the legal texts, with one class; its join code."""
    await asyncio.to_thread(create_account, data_dir, "teacher", username)
    settings = load_settings(data_dir=data_dir, environ={})
    db = open_database(settings.database_location)
    await db.open()
    try:
        await legal.ensure_defaults(db)
        row = await user_store.get_with_hash(db, username)
        assert row is not None
        user = User.from_row(row)
        await legal.accept(db, user.id, await legal.current_versions(db))
        return str((await classes.create(db, user, class_name))["join_code"])
    finally:
        await db.close()


def containers_of(data_dir: Path) -> list[str]:
    """The sandbox containers of the appliance on `data_dir` (labelled by its folder)."""
    label = instance_label(data_dir.resolve())
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=labrunner.instance={label}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.split()


def remove_containers_of(data_dir: Path) -> None:
    if ids := containers_of(data_dir):
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


def screenshot(display: str, path: Path, timeout_s: float = 30) -> Path:
    """The whole virtual screen once the window shows on it (not a blank screen), saved in the
    test's folder and copied to test-artifacts/desktop/ for people to look at (the test folders
    of old runs are removed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        subprocess.run(["import", "-display", display, "-window", "root", str(path)], check=True, timeout=60)
        with Image.open(path) as picture:
            colours = picture.convert("RGB").getcolors(maxcolors=4)
        if colours is None:  # more than a few colours: something is drawn
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen stayed blank for {timeout_s} s ({path})")
        time.sleep(0.5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = shutil.copy(path, ARTIFACTS / path.name)
    print(f"screenshot: {path} (kept as {kept})")
    return path


def window_id(display: str, title: str = "Labrunner", timeout_s: float = 30) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", title],
            capture_output=True,
            text=True,
            env={**os.environ, "DISPLAY": display},
        )
        if ids := found.stdout.split():
            return int(ids[0])
        time.sleep(0.3)
    raise AssertionError(f"no visible window named {title!r} on {display}")


def window_name(display: str, window: int) -> str:
    found = subprocess.run(
        ["xdotool", "getwindowname", str(window)],
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": display},
    )
    return found.stdout.strip()


class Desktop:
    """`labrunner desktop` on `data_dir`, with its output in `log`; `script` starts it as the README
    tells a teacher to, through packaging/desktop.sh (which installs what the window needs first)."""

    def __init__(self, data_dir: Path, log: Path, env: dict[str, str], *args: str, script: bool = False) -> None:
        self.data_dir = data_dir
        self.log = log
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LABRUNNER_", "QTWEBENGINE_"))}
        # The window's server listens on every interface: no multicast onto the machine's real network.
        base["LABRUNNER_LAN_ANNOUNCE"] = "false"
        command = (
            ["bash", "packaging/desktop.sh", *args]
            if script
            else [sys.executable, "-m", "appliance", "--data-dir", str(data_dir), "desktop", *args]
        )
        if script:
            env = {**env, "LABRUNNER_DATA_DIR": str(data_dir)}
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**base, **env},
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def close_window(self, display: str) -> None:
        send_delete_window(display, window_id(display))

    def wait(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            message = f"the desktop process still runs after {timeout_s} s:\n{self.output()[-3000:]}"
            raise AssertionError(message) from None

    def kill(self) -> None:
        """Cleanup after a failed test: no process, and none of its sandbox containers, left."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        remove_containers_of(self.data_dir)


def window_env(display: str, devtools_port: int) -> dict[str, str]:
    return {
        "DISPLAY": display,
        # Root in a container: Chromium's own sandbox cannot start (DESIGN §8).
        "QTWEBENGINE_CHROMIUM_FLAGS": "--no-sandbox",
        "QTWEBENGINE_REMOTE_DEBUGGING": str(devtools_port),
    }
