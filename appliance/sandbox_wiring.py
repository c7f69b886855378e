"""The Docker sandbox as the runner's executor: one engine client per appliance, an instance label
derived from the data folder (so two appliances on one machine never sweep each other's
containers), orphans swept once before the first job, and health probes for /healthz."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import docker

from appliance.settings import SETTINGS, Settings
from runner import engine, image
from runner.docker_executor import DockerExecutor
from runner.executor import Executor, InfraError
from runner.sandbox_container import sweep_orphans
from runner.sandbox_settings import SandboxSettings

log = logging.getLogger(__name__)

# Every appliance setting that configures the sandbox, and the SandboxSettings field it sets.
SANDBOX_SETTINGS: dict[str, str] = {
    "sandbox_runtime": "runtime",
    "sandbox_pool_size": "pool_size",
    "sandbox_warm_max_jobs": "warm_max_jobs",
    "sandbox_warm_idle_s": "warm_idle_s",
    "sandbox_warm_max_memory_mb": "warm_max_memory_mb",
    "sandbox_warm_total_memory_mb": "warm_total_memory_mb",
    "sandbox_prewarm": "prewarm",
    "sandbox_pids_limit": "pids_limit",
    "sandbox_cpuset": "cpuset",
    "sandbox_output_limit_bytes": "output_limit_bytes",
    "sandbox_work_tmpfs_mb": "work_tmpfs_mb",
    "sandbox_tmp_tmpfs_mb": "tmp_tmpfs_mb",
    "sandbox_wall_time_factor": "wall_time_factor",
    "sandbox_compile_time_limit_ms": "compile_time_limit_ms",
    "graphical_wall_time_s": "graphical_wall_time_s",
    "live_wall_time_s": "live_wall_time_s",
    "live_idle_s": "live_idle_s",
    "live_output_limit_bytes": "live_output_limit_bytes",
    "live_frames_per_s": "live_frames_per_s",
    "live_frame_max_dimension": "live_frame_max_dimension",
    "graphics_max_frames": "graphics_max_frames",
    "graphics_max_dimension": "graphics_max_dimension",
    "graphics_max_image_bytes": "graphics_max_image_bytes",
}
# SandboxSettings fields no setting reaches: set here (instance) or fixed by the sandbox's design.
INTERNAL: frozenset[str] = frozenset(
    {
        "image",  # this checkout's tag (runner.image)
        "instance",  # from the data folder, below
        "user",
        "pool_max_age_s",
        "nano_cpus",
        "cpu_shares",
        "tmpfs_inodes",
        "shm_mb",
        "harness_memory_mb",
        "harness_test_memory_mb",
        "harness_test_cpu_ms",
        "open_files",
        "file_size_mb",
        "wall_time_slack_ms",
        "graphics_memory_mb",
        "compile_memory_mb",
        "compile_output_limit_bytes",
        "job_slack_ms",
        "stream_end_grace_ms",
        "api_timeout_s",
        "python_fork_server",  # always on; off only to compare against (tests, benchmarks)
    }
)
# Appliance settings with these prefixes are the sandbox's: each must be in SANDBOX_SETTINGS.
SANDBOX_PREFIXES = ("sandbox_", "graphics_", "graphical_")


def mapping_problems(setting_names: Iterable[str], sandbox_fields: Iterable[str]) -> list[str]:
    """What keeps SANDBOX_SETTINGS and INTERNAL from covering these appliance settings and
    SandboxSettings fields exactly (empty when they do)."""
    settings, fields = set(setting_names), set(sandbox_fields)
    targets = list(SANDBOX_SETTINGS.values())
    problems = [f"no such appliance setting: {name}" for name in sorted(SANDBOX_SETTINGS.keys() - settings)]
    problems += [f"no such SandboxSettings field: {name}" for name in sorted((set(targets) | INTERNAL) - fields)]
    problems += [
        f"appliance setting {name} is not mapped to SandboxSettings"
        for name in sorted(settings - SANDBOX_SETTINGS.keys())
        if name.startswith(SANDBOX_PREFIXES)
    ]
    problems += [
        f"SandboxSettings field {name} is neither mapped from a setting nor listed as internal"
        for name in sorted(fields - set(targets) - INTERNAL)
    ]
    problems += [
        f"SandboxSettings field {name} is both mapped and internal" for name in sorted(INTERNAL & set(targets))
    ]
    problems += [
        f"SandboxSettings field {name} is mapped twice" for name in sorted({t for t in targets if targets.count(t) > 1})
    ]
    return problems


_problems = mapping_problems((s.name for s in SETTINGS), (f.name for f in dataclasses.fields(SandboxSettings)))
if _problems:
    raise TypeError("appliance.sandbox_wiring: " + "; ".join(_problems))


def sandbox_settings(settings: Settings) -> SandboxSettings:
    """SandboxSettings with every sandbox setting of the appliance applied over its defaults."""
    chosen = {field: getattr(settings, name) for name, field in SANDBOX_SETTINGS.items()}
    return SandboxSettings(instance=instance_label(settings.data_dir), **chosen)


def instance_label(data_dir: Path) -> str:
    return hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]


class DockerSandbox:
    """Owns the engine client; hands the runner fresh executors and answers health probes."""

    engine_name = "docker"

    def __init__(self, settings: Settings) -> None:
        self.settings = sandbox_settings(settings)
        self._client: docker.DockerClient | None = None
        self._swept = False
        self._lock = asyncio.Lock()

    @property
    def image_ref(self) -> str:
        """The sandbox image this appliance runs jobs in (by default the tag derived from the recipe)."""
        return self.settings.image or image.expected_ref()

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
        """After the runner stopped: remove whatever of this instance is still on the engine (a
        container whose job was cut short by the shutdown), rather than leave it to the next start."""
        if self._client is not None:
            try:
                await sweep_orphans(self._client, self.settings.instance)
            except InfraError as exc:
                log.warning("could not remove leftover sandbox containers: %s", exc.message)
            await asyncio.to_thread(self._client.close)
            self._client = None
