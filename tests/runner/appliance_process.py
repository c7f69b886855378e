"""The appliance as a separate process, started by its CLI, for crash and restart tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import DEFAULT_PASSWORD, REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """`labrunner ARGS` as its own process, its output captured: none of this shell's LABRUNNER_
    settings reach it, only `env`. A failing command is returned, not raised."""
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")} | (env or {}),
        timeout=timeout_s,
        check=False,
    )


def cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """The command on `data_dir`, which must succeed."""
    done = run_cli("--data-dir", str(data_dir), *args, stdin=stdin, timeout_s=120)
    done.check_returncode()
    return done


def create_account(data_dir: Path, role: str, username: str) -> None:
    cli(data_dir, "users", "create", "--role", role, "--username", username, "--password-stdin", stdin=DEFAULT_PASSWORD)


class ApplianceProcess:
    def __init__(self, data_dir: Path, port: int, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.env = env or {}
        # Served over HTTPS when the environment turns TLS on; the start-up probe trusts any certificate.
        self.tls = self.env.get("LABRUNNER_TLS", "off") != "off"
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"appliance-{port}.log"

    def start(self, timeout_s: float = 60) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABRUNNER_")} | self.env
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "appliance",
                    "--data-dir",
                    str(self.data_dir),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the appliance exited at start-up:\n{self.log.read_text()[-3000:]}")
            try:
                context = ssl._create_unverified_context() if self.tls else None
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2, context=context)
                return
            except urllib.error.HTTPError:
                return  # it answers: a degraded health report is still a running server
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the appliance did not answer within {timeout_s}s:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        kill9(self.process)

    def stop(self) -> None:
        stop(self.process, signal.SIGINT)


def kill9(process: subprocess.Popen[bytes] | None) -> None:
    assert process is not None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def stop(process: subprocess.Popen[bytes] | None, signum: int) -> None:
    """Ask a running child to stop with `signum`; killed if it has not within a minute."""
    if process is not None and process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[ApplianceProcess]:
    """The appliance serving `data_dir` on a free port, stopped at the end whatever happened."""
    server = ApplianceProcess(data_dir, free_port(), env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()
