"""One sandbox container: created, attached and started ahead of its jobs, then destroyed.

The job goes in and the events come out over the container's attach stream, read by the host
with its own byte cap and deadline: no bind mount, no file copied out, no log driver (Docker's
default log file would grow without bound). Container settings follow DESIGN §4.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import docker
import docker.errors
from docker.types import LogConfig, Ulimit

from runner import engine, image
from runner.attach_stream import TranscriptBuilder
from runner.cgroup_meter import CgroupMeter
from runner.executor import InfraError
from runner.sandbox_job import JobPlan, Transcript
from runner.sandbox_settings import MiB, SandboxSettings
from sandbox import protocol

log = logging.getLogger(__name__)

LABEL_SANDBOX = "labrunner.sandbox"
LABEL_INSTANCE = "labrunner.instance"
_RECV_BYTES = 256 * 1024
# How often to ask the engine whether a container whose stream ended has stopped.
_STATE_POLL_S = 0.05
CGROUP_DIR = "/sys/fs/cgroup"
# Docker's own list (what it masks when none is given), then the machine-wide counters a program
# can move at will and a later job could read back: memory and paging statistics (vmstat's
# pglazyfree carried a hidden input exactly from one job to the next), CPU and interrupt counts,
# load, pressure. A masked file reads as empty.
MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/proc/vmstat",
    "/proc/meminfo",
    "/proc/zoneinfo",
    "/proc/buddyinfo",
    "/proc/pagetypeinfo",
    "/proc/slabinfo",
    "/proc/vmallocinfo",
    "/proc/swaps",
    "/proc/stat",
    "/proc/schedstat",
    "/proc/interrupts",
    "/proc/softirqs",
    "/proc/diskstats",
    "/proc/loadavg",
    "/proc/pressure",
    "/proc/sys/fs",
]
_T = TypeVar("_T")


@dataclass
class Sandbox:
    container_id: str
    sock: socket.socket  # the attach stream, non-blocking
    sock_owner: Any  # the SDK object the socket belongs to: dropping it would close the socket
    started_at: float  # time.monotonic()
    memory_bytes: int
    meter: CgroupMeter | None  # the host's view of its cgroup; None where the host cannot read it
    # The one user whose jobs it may serve, from its first job on; None while it waits in the pool.
    owner: str | None = None
    jobs: int = 0  # jobs it has served
    idle_since: float = 0.0  # time.monotonic() when its last job ended
    idle_memory_bytes: int = 0  # what its cgroup held after its last job


@functools.cache
def seccomp_profile() -> str:
    """Docker's default seccomp profile less what no program needs and a program could misuse
    (sandbox/recipe/derive-seccomp.py says which and why), compact, as the engine's API takes it."""
    with open(image.SANDBOX_DIR / "recipe" / "seccomp.json", encoding="utf-8") as profile:
        return json.dumps(json.load(profile), separators=(",", ":"))


class Launcher:
    """Creates, feeds and removes sandbox containers of one image and one set of settings."""

    def __init__(self, client: docker.DockerClient, settings: SandboxSettings, image_ref: str) -> None:
        self._api = client.api
        self._settings = settings
        self._image_ref = image_ref
        self._background: set[asyncio.Task[Any]] = set()
        # Containers whose removal failed (the engine stopped under them): tried again at close(),
        # when the executor is replaced after the engine came back, or at shut-down.
        self._unremoved: set[str] = set()

    def _host_config(self, memory_bytes: int) -> dict[str, Any]:
        s = self._settings
        uid, _, gid = s.user.partition(":")
        config = self._api.create_host_config(
            network_mode="none",
            cap_drop=["ALL"],
            security_opt=["no-new-privileges", f"seccomp={seccomp_profile()}"],
            read_only=True,
            tmpfs={
                # Compiled programs run from the work dir; nothing needs to run from /tmp.
                protocol.WORK_DIR: f"rw,exec,nosuid,nodev,size={s.work_tmpfs_mb}m,nr_inodes={s.tmpfs_inodes},"
                f"uid={uid},gid={gid},mode=0700",
                protocol.TMP_DIR: f"rw,noexec,nosuid,nodev,size={s.tmp_tmpfs_mb}m,nr_inodes={s.tmpfs_inodes},mode=1777",
                # An empty, read-only folder over the container's cgroup: its counters (fork
                # failures, peak memory, OOM kills) keep counting across tests, so a program could
                # leave data in them for the next test to read.
                CGROUP_DIR: "ro,nosuid,nodev,noexec,size=4k,mode=0555",
            },
            shm_size=s.shm_mb * MiB,
            pids_limit=s.pids_limit,
            mem_limit=memory_bytes,
            memswap_limit=memory_bytes,
            nano_cpus=s.nano_cpus,
            cpu_shares=s.cpu_shares,
            cpuset_cpus=s.cpuset or None,
            ulimits=[
                Ulimit(name="fsize", soft=s.file_size_mb * MiB, hard=s.file_size_mb * MiB),
                Ulimit(name="nofile", soft=s.open_files, hard=s.open_files),
                Ulimit(name="core", soft=0, hard=0),
            ],
            # No init: the harness is PID 1, so nothing a program can reach (an init runs as the
            # program's uid and is dumpable) holds the attach stream.
            init=False,
            ipc_mode="private",
            log_config=LogConfig(type="none"),
            runtime=s.runtime,
        )
        # The SDK has no argument for it; the engine's API takes it and replaces its own list.
        config["MaskedPaths"] = MASKED_PATHS
        return config

    def _launch_blocking(self, memory_bytes: int) -> Sandbox:
        container = self._api.create_container(
            image=self._image_ref,
            user=self._settings.user,
            hostname="sandbox",
            # Like `docker run -i`: stdin stays open for the one attached client and closes when
            # it goes, so a container whose host vanished gets end-of-file and exits.
            stdin_open=True,
            detach=False,
            tty=False,
            environment={},
            labels={LABEL_SANDBOX: "1", LABEL_INSTANCE: self._settings.instance},
            host_config=self._host_config(memory_bytes),
        )
        container_id = container["Id"]
        try:
            # Attached before it starts, so not a byte of its output can be missed.
            owner = self._api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._api.start(container_id)
        except BaseException:
            self._remove_or_remember(container_id)
            raise
        sock = getattr(owner, "_sock", owner)  # the SDK hands back a SocketIO around the socket
        sock.setblocking(False)
        meter = None
        try:
            meter = CgroupMeter.find(self._api.inspect_container(container_id)["State"]["Pid"])
        except Exception as exc:  # optional: whatever failed, the container is up and must be used or removed
            log.warning("no cgroup meter for sandbox %s: %s", container_id[:12], exc)
        return Sandbox(container_id, sock, owner, time.monotonic(), memory_bytes, meter)

    async def launch(self, memory_bytes: int) -> Sandbox:
        """A started container waiting for its job. Safe to cancel: a container that comes up after
        the caller gave up is removed, not leaked."""
        task = self._track(engine.call(self._launch_blocking, memory_bytes))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._track(self._discard_when_up(task))
            raise

    async def _discard_when_up(self, launching: asyncio.Future[Sandbox]) -> None:
        try:
            sandbox = await launching
        except InfraError:
            return  # it never came up
        await self.destroy(sandbox)

    def _track(self, coro: Coroutine[Any, Any, _T]) -> asyncio.Task[_T]:
        """Run coro as a task that close() waits for, whoever stops waiting for it."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def resize(self, sandbox: Sandbox, memory_bytes: int) -> None:
        await engine.call(
            self._api.update_container, sandbox.container_id, mem_limit=memory_bytes, memswap_limit=memory_bytes
        )
        sandbox.memory_bytes = memory_bytes

    async def exchange(self, sandbox: Sandbox, plan: JobPlan) -> Transcript:
        """Send the job, collect the events until the harness's last word, end of stream, or the
        plan's deadline, whichever comes first."""
        loop = asyncio.get_running_loop()
        meter = sandbox.meter
        transcript = TranscriptBuilder(plan, meter.finish if meter else None)
        try:
            async with asyncio.timeout(plan.deadline_s):
                await loop.sock_sendall(sandbox.sock, plan.frame)
                while data := await loop.sock_recv(sandbox.sock, _RECV_BYTES):
                    if (finished := transcript.feed(data)) is not None:
                        return finished
                    while transcript.inputs_wanted:
                        index = transcript.inputs_wanted.pop(0)
                        if index == 0 and sandbox.memory_bytes != plan.run_memory_bytes:
                            # Compiling is over: the program gets its own budget, not the compiler's.
                            await self.resize(sandbox, plan.run_memory_bytes)
                        if meter:
                            meter.start()
                        await loop.sock_sendall(sandbox.sock, protocol.encode_input(plan.inputs[index]))
            return transcript.finish("eof")
        except TimeoutError:
            return transcript.finish("deadline")
        except OSError as exc:
            raise InfraError(engine.SANDBOX_LOST, f"lost the sandbox's attach stream: {exc}") from exc

    async def _state(self, sandbox: Sandbox) -> dict[str, Any]:
        """The engine's word on the container's process: Running, OOMKilled, ExitCode."""
        inspected = await engine.call(self._api.inspect_container, sandbox.container_id)
        return dict(inspected.get("State", {}))

    async def oom_killed(self, sandbox: Sandbox) -> bool:
        return bool((await self._state(sandbox)).get("OOMKilled"))

    async def stopped_oom_killed(self, sandbox: Sandbox) -> bool:
        """For a stream that ended before the harness's last word: whether the kernel killed the
        sandbox for memory. Raises InfraError when the container still runs: then the stream was
        lost on the way (a dropped connection to the engine), and blaming the program would turn a
        host's failure into a student's wrong verdict instead of a job run again elsewhere."""
        deadline = time.monotonic() + self._settings.stream_end_grace_ms / 1000
        while True:
            try:
                state = await self._state(sandbox)
            except InfraError as error:
                # What broke the stream may have broken the client's pooled connection too: the
                # engine is down only if it stays unreachable.
                if error.code != engine.ENGINE_UNAVAILABLE or time.monotonic() >= deadline:
                    raise
            else:
                if not state.get("Running"):
                    return bool(state.get("OOMKilled"))
                if time.monotonic() >= deadline:
                    raise InfraError(
                        engine.SANDBOX_LOST, "lost the sandbox's attach stream while the sandbox still ran"
                    )
            await asyncio.sleep(_STATE_POLL_S)

    async def destroy(self, sandbox: Sandbox) -> None:
        """Kill and remove; runs to the end even when the caller is cancelled meanwhile. A failure
        is logged, not raised: the job's result stands, and the start-up sweep catches leftovers."""
        await asyncio.shield(self.destroy_soon(sandbox))

    def destroy_soon(self, sandbox: Sandbox) -> asyncio.Task[None]:
        """Start killing and removing without waiting: once the transcript is in, the result is
        final, so the removal (about 0.1 s of engine time) need not delay it. close() and
        settle() wait for it."""
        # The socket stays open while the SDK's file object on it lives: close both, rather than
        # leave the descriptor to the garbage collector.
        sandbox.sock.close()
        sandbox.sock_owner.close()
        return self._track(self._remove(sandbox.container_id))

    async def settle(self) -> None:
        """Wait for launches and removals under way (for callers that check nothing is left)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _remove_or_remember(self, container_id: str) -> None:
        """Remove now (blocking); if the engine refuses, remember it for close()."""
        try:
            _remove_container(self._api, container_id)
        except Exception as exc:  # the engine's failure, whatever the SDK raised
            self._unremoved.add(container_id)
            log.warning("could not remove sandbox container %s: %s", container_id[:12], exc)

    async def _remove(self, container_id: str) -> None:
        await engine.call(self._remove_or_remember, container_id)

    async def close(self) -> None:
        """Wait for launches and removals still under way, then try again what could not be removed."""
        await self.settle()
        leftovers, self._unremoved = self._unremoved, set()
        for container_id in leftovers:
            await self._remove(container_id)


async def sweep_orphans(client: docker.DockerClient, instance: str = "default") -> int:
    """Remove every sandbox container this instance left behind (a crash, a kill -9); call once at
    start-up, before any executor runs. Returns how many were removed."""
    labels = [f"{LABEL_SANDBOX}=1", f"{LABEL_INSTANCE}={instance}"]
    found = await engine.call(client.api.containers, all=True, filters={"label": labels})
    for container in found:
        await engine.call(_remove_container, client.api, container["Id"])
    if found:
        log.info("removed %d leftover sandbox containers", len(found))
    return len(found)


def _remove_container(api: docker.APIClient, container_id: str) -> None:
    try:
        api.remove_container(container_id, force=True, v=True)
    except docker.errors.NotFound:
        pass  # already gone
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: a removal is already under way
            raise
