"""Debian's docker-registry (a real image registry) on a loopback port with its storage in a
temporary folder, for the tests of `labrunner sandbox pull`: the engine treats 127.0.0.0/8
registries as plain HTTP by default. `packaging/ensure-registry.sh` installs it."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.requirements import unavailable
from tests.runner.appliance_process import free_port

CONFIG = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class LocalRegistry:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = folder / "registry.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalRegistry:
        command = shutil.which("docker-registry")
        if command is None:
            unavailable("Debian's docker-registry is not installed: run packaging/ensure-registry.sh")
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yml"
        config.write_text(CONFIG.format(root=self.folder / "storage", port=self.port))
        with open(self.log, "ab") as log:
            self._process = subprocess.Popen([command, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2)
                return self
            except (urllib.error.URLError, OSError):
                if self._process.poll() is not None:
                    break
                time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"docker-registry did not start:\n{self.log.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def manifest_requests(self) -> list[str]:
        """The manifest paths the engine asked for (from the registry's access log)."""
        return [
            word
            for line in self.log.read_text(errors="replace").splitlines()
            for word in line.replace('"', " ").split()
            if word.startswith("/v2/") and "/manifests/" in word
        ]
