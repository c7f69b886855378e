"""The Docker sandbox as the runner's executor: one engine client per appliance, an instance label
derived from the data folder (so two appliances on one machine never sweep each other's
containers), orphans swept once before the first job, and health probes for /healthz."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from pathlib import Path

import docker

from appliance.settings import Settings
from runner import engine, image
from runner.docker_executor import DockerExecutor
from runner.executor import Executor, InfraError
from runner.sandbox_container import sweep_orphans
from runner.sandbox_settings import SandboxSettings

log = logging.getLogger(__name__)
_PREFIX = "sandbox_"
# Graphics settings keep their own names, which are SandboxSettings fields as they stand.
_GRAPHICS = ("graphical_wall_time_s", "graphics_max_frames", "graphics_max_dimension", "graphics_max_image_bytes")


def sandbox_settings(settings: Settings) -> SandboxSettings:
    """SandboxSettings with every `sandbox_*` appliance setting (and the graphics ones) applied
    over its defaults."""
    names = {f.name for f in dataclasses.fields(SandboxSettings)}
    chosen = {
        f.name[len(_PREFIX) :]: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if f.name.startswith(_PREFIX) and f.name[len(_PREFIX) :] in names
    }
    chosen.update({name: getattr(settings, name) for name in _GRAPHICS})
    return SandboxSettings(instance=instance_label(settings.data_dir), **chosen)


def instance_label(data_dir: Path) -> str:
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]


class DockerSandbox:
    """Owns the engine client; hands the runner fresh executors and answers health probes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = sandbox_settings(settings)
        self._client: docker.DockerClient | None = None
        self._swept = False
        self._lock = asyncio.Lock()

    async def _connected(self) -> docker.DockerClient:
        async with self._lock:
            if self._client is None:
                self._client = await asyncio.to_thread(engine.connect, self.settings.api_timeout_s)
            if not self._swept:
                removed = await sweep_orphans(self._client, self.settings.instance)
                if removed:
                    log.warning("removed %d sandbox container(s) left by an earlier run", removed)
                self._swept = True
            return self._client

    async def new_executor(self) -> Executor:
        executor = DockerExecutor(await self._connected(), self.settings)
        await executor.start()
        return executor

    async def engine_up(self) -> bool:
        """The engine answers and the image is this checkout's: jobs can run."""
        return await self.image_state() == "ok"

    async def image_state(self) -> str:
        try:
            client = await self._connected()
            status = await engine.call(image.image_status, client, self.settings.image)
        except InfraError as error:
            return error.code
        return "ok" if status == "present" else status

    async def close(self) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
            self._client = None
