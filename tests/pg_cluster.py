"""A private PostgreSQL cluster for one test run, for `pytest --db=postgresql`.

The cluster lives in its own temporary directory and listens only on a Unix socket there, so runs
never clash over ports or data, and the machine's own PostgreSQL service (if any) is not used.
Durability is switched off (fsync, synchronous commit, full-page writes): the data is thrown away.

Nothing it starts outlives the run: `stop()` (called at session end and again on interpreter exit)
stops the server with `-m immediate` and removes the directory, and a watchdog process does the
same as soon as the test process is gone for any reason — also `kill -9`, or pytest-timeout's
`os._exit` — because it waits for the end of a pipe only the test process holds.

``initdb`` and ``postgres`` refuse to run as root (CI runs as root): then the binaries run as the
``postgres`` user that Debian's package creates, through ``runuser``, on a directory chowned to it.

- ``postgres_bindir() -> Path | None``: the directory with ``initdb`` and ``pg_ctl``, if installed.
- ``PgCluster.start()`` / ``.stop()``; ``.url(name)``; ``.create_database(name, template=None)``
  (returns its URL); ``.drop_database(name)``.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psycopg
from psycopg import sql

USER = "labrunner"
SERVER_OPTIONS = (
    "-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
)

# Runs in its own process: blocks until the test process's end of the pipe closes (it exited,
# however), then stops the cluster if it still runs and removes its directory.
_WATCHDOG = """
import os, shutil, signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
sys.stdin.buffer.read()
command, data, root = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
if os.path.exists(os.path.join(data, "postmaster.pid")):
    subprocess.run([*command, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
shutil.rmtree(root, ignore_errors=True)
"""


def postgres_bindir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: `pg_config --bindir`, else the newest Debian version."""
    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    by_version = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True)
    candidates += map(Path, by_version)
    return next((d for d in candidates if (d / "initdb").is_file() and (d / "pg_ctl").is_file()), None)


class PgCluster:
    """One throwaway cluster in a fresh temporary directory; `start()` before use."""

    def __init__(self, bindir: Path, options: str = SERVER_OPTIONS) -> None:
        self.bindir = bindir
        self.options = options
        # Short path under /tmp: a Unix socket's path may not exceed 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="labrunner-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self._as_postgres = os.geteuid() == 0
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._admin: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._running = False

    def _command(self, binary: str) -> list[str]:
        path = str(self.bindir / binary)
        return ["runuser", "-u", "postgres", "--", path] if self._as_postgres else [path]

    def _run(self, binary: str, *args: str) -> None:
        done = subprocess.run([*self._command(binary), *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{binary} {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, user="postgres")
        # The watchdog first: from here on, whatever happens to this process, the cluster goes.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, *self._command("pg_ctl"), str(self.data), str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for pytest must not stop it before it acts
        )
        atexit.register(self.stop)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "--encoding=UTF8", "--locale=C", "-N")
        options = f"-k {self.root} {self.options}"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        self._running = True

    def stop(self) -> None:
        """Stop the server at once and remove its directory; safe to call more than once."""
        with self._lock:
            if self._admin is not None:
                self._admin.close()
                self._admin = None
            if self._running:
                self._running = False
                subprocess.run(
                    [*self._command("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                    capture_output=True,
                    check=False,
                )
            if self._watchdog is not None:
                self._watchdog.stdin.close()  # type: ignore[union-attr]
                self._watchdog.wait(timeout=60)
                self._watchdog = None
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def log(self) -> str:
        """The server's log so far (for a failing test's message)."""
        try:
            return (self.root / "log").read_text(errors="replace")
        except OSError:
            return ""

    def url(self, dbname: str) -> str:
        """The URL asyncpg and psycopg both take for database `dbname` (over the Unix socket)."""
        return f"postgresql://{USER}@/{dbname}?host={self.root}"

    def _execute(self, statement: sql.Composable) -> None:
        with self._lock:
            if self._admin is None or self._admin.closed:
                self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
            self._admin.execute(statement)

    def create_database(self, name: str, template: str | None = None) -> str:
        """A new database (empty, or a copy of `template`, which nobody may be connected to); its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self._execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop `name` if it exists, closing whatever connections to it are still open."""
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def database_exists(self, name: str) -> bool:
        with self._lock:
            if self._admin is None or self._admin.closed:
                self._admin = psycopg.connect(self.url("postgres"), autocommit=True)
            return self._admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
