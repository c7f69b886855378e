"""The window's trusted bridge (pywebview's js_api): what a page cannot do by itself — open the
system browser or the data folder, and run a backup for a teacher, who may not call the admin
backup API, through the same domain code as `labrunner backup`.

Only the window's own pages get it: every call is refused unless the window shows a page of the
appliance (a link a teacher followed to another site does not).
Attributes are private, since pywebview hands every public one to the page.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import webbrowser
from typing import Any

from appliance.backups import BackupResult, passphrase_from, take_backup
from appliance.db import open_database
from appliance.errors import AppError
from appliance.settings import Settings
from ui.desktop.session import Session


async def backup_once(settings: Settings) -> BackupResult:
    """`labrunner backup`'s backup (recorded in the job history as triggered by the window)."""
    db = open_database(settings.database_location)
    await db.open()
    try:
        return await take_backup(db, settings, trigger="desktop", passphrase=passphrase_from(settings))
    finally:
        await db.close()


def open_folder(path: str) -> None:
    if sys.platform == "win32":
        os.startfile(path)  # type: ignore[attr-defined]  # Windows only
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen([opener, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Bridge:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._window: Any = None
        self._lock = threading.Lock()
        self._backup: dict[str, str] = {"state": "idle", "message": ""}

    def _attach(self, window: Any) -> None:
        self._window = window

    def _trusted(self) -> None:
        url = (self._window.get_current_url() if self._window is not None else None) or ""
        base = self._session.base_url
        if not (base and (url == base or url.startswith(base + "/"))):
            raise PermissionError("only Labrunner's own pages in this window may do this")

    def open_in_browser(self, path: str) -> bool:
        """Open one of the appliance's pages (a path on it, nothing else) in the system browser."""
        self._trusted()
        if not isinstance(path, str) or not path.startswith("/") or path.startswith("//") or "\\" in path:
            raise ValueError("not a page of this appliance")
        url = self._session.base_url + path
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        return True

    def open_data_folder(self) -> bool:
        self._trusted()
        open_folder(str(self._session.settings.data_dir))
        return True

    def backup_start(self) -> dict[str, str]:
        self._trusted()
        with self._lock:
            if self._backup["state"] != "running":
                self._backup = {"state": "running", "message": "Backing up…"}
                threading.Thread(target=self._run_backup, name="labrunner-backup", daemon=True).start()
            return dict(self._backup)

    def backup_status(self) -> dict[str, str]:
        self._trusted()
        with self._lock:
            return dict(self._backup)

    def _run_backup(self) -> None:
        try:
            result = asyncio.run(backup_once(self._session.settings))
            outcome = {
                "state": "done",
                "message": f"Backup written: {result.archive} ({result.size} bytes"
                f"{', encrypted' if result.encrypted else ''})",
            }
        except AppError as exc:
            outcome = {"state": "failed", "message": f"Backup failed ({exc.code}): {exc.message}"}
        except Exception as exc:  # a full disk, an unreadable folder: shown, not lost in a thread
            outcome = {"state": "failed", "message": f"Backup failed: {exc}"}
        with self._lock:
            self._backup = outcome
