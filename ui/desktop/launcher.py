"""`labrunner desktop`: the teacher's window (pywebview: Qt on Linux, the system's web view
elsewhere). It attaches to the data folder's running server or starts one in this process,
shows the start-up steps meanwhile, then opens a one-time login link (the setup link on the very
first start). Closing the window stops the server it started, cleanly; a server it found running
keeps running. Where no window can open, the system browser gets the link instead."""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import threading
import webbrowser
from pathlib import Path
from types import FrameType
from typing import NoReturn

from appliance import login_links
from appliance.settings import Settings
from ui.desktop import link_file
from ui.desktop.bridge import Bridge
from ui.desktop.progress import Progress
from ui.desktop.session import DesktopError, Session

log = logging.getLogger(__name__)

TITLE = "Labrunner"
LOADING_VIEW = Path(__file__).with_name("loading.html")
USER_AGENT = f"Mozilla/5.0 (compatible; {login_links.WINDOW_AGENT}/1)"


def _say(line: str) -> None:
    print(line, flush=True)


def gui_missing() -> str | None:
    """Why no window can open here, or None."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY is not set)"
    modules = ["webview"] + (["PyQt6.QtWebEngineWidgets"] if sys.platform.startswith("linux") else [])
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:  # also the OSError-like failures of Qt's shared libraries
            return f"{module} cannot load ({exc}); install the `desktop` extra"
    return None


def run(settings: Settings, username: str | None) -> int:
    progress = Progress(_say)
    session = Session(settings, username, progress)
    reason = gui_missing()
    if reason is not None:
        message = f"labrunner desktop: no window can open here: {reason}. Opening the system browser instead."
        print(message, file=sys.stderr)
        return _in_browser(session)
    return _in_window(session, progress)


def _in_window(session: Session, progress: Progress) -> NoReturn:
    import webview

    bridge = Bridge(session)
    window = webview.create_window(
        TITLE, html=LOADING_VIEW.read_text(encoding="utf-8"), js_api=bridge, width=1280, height=800, min_size=(800, 600)
    )
    bridge._attach(window)
    progress.show_with(lambda snapshot: window.evaluate_js(f"show({json.dumps(snapshot)})"))

    def start() -> None:
        try:
            window.load_url(session.prepare())
        except DesktopError as exc:
            progress.fail(str(exc))
        except Exception as exc:  # shown in the window, which otherwise would wait forever
            log.exception("the window's start-up failed")
            progress.fail(f"start-up failed: {exc}")

    starter = threading.Thread(target=start, name="labrunner-start", daemon=True)
    webview.start(starter.start, gui="qt" if sys.platform.startswith("linux") else None, user_agent=USER_AGENT)
    # The window is closed.
    _end_process(_stop(session))


def _end_process(code: int) -> NoReturn:
    """End now, without joining pywebview's threads. A bridge call or a script injection that was
    half-way when the window closed waits, with no timeout and in a non-daemon thread, for an answer
    from a Qt event loop that has ended; Python's exit would join it forever (CI saw a closed window's
    process still running a minute later). The server this window started is already stopped."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stop(session: Session) -> int:
    if session.attached:
        _say(f"The server at {session.base_url} keeps running.")
        return 0
    _say("Labrunner is stopping…")
    stopped = session.stop()
    if not stopped:
        print("error: the server did not stop in time", file=sys.stderr)
        return 1
    _say("Labrunner stopped.")
    return 0


def _in_browser(session: Session) -> int:
    """No window: the system browser gets the one-time link; serve until Ctrl-C (or SIGTERM)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    try:
        url = session.prepare()
    except DesktopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        session.stop()
        return 1
    # Not the link itself: a browser's address is on its command line, which every user can read.
    page = link_file.write(session.settings.data_dir, url)
    if not webbrowser.open(page.as_uri()):
        print(f"No browser opened: open {url} on this machine (it works once).", file=sys.stderr)
    if session.attached:
        return 0
    _say("Serving; press Ctrl-C to stop.")
    while not stop.wait(0.5):
        pass
    return _stop(session)
