"""Fixtures for the sandbox tests: a real Docker engine and the built sandbox image.

Where either is missing, the integration tests skip on a developer's machine but FAIL under CI
(the environment variable CI is set): CI must never pass by skipping the sandbox (see
tests/requirements.py). Set them up with `packaging/ensure-docker.sh` and `labrunner sandbox build`.

Every test runs on its own executor whose containers carry this session's instance label, and
checks after every job that none of them is left behind.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import docker
import pytest

from runner import engine, image, sandbox_container
from runner.docker_executor import DockerExecutor
from runner.executor import ExecRequest, ExecResult, InputFile, TestInput
from runner.sandbox_container import LABEL_INSTANCE
from runner.sandbox_settings import SandboxSettings
from tests.requirements import require_sandbox

INSTANCE = f"pytest-{os.getpid()}"
SANDBOX_UID = 65432

Run = Callable[..., Awaitable[ExecResult]]
T = TypeVar("T")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    require_sandbox()
    client = engine.connect(timeout_s=30)
    yield client
    client.close()


def sandbox_containers(client: docker.DockerClient) -> list[dict[str, object]]:
    return client.api.containers(all=True, filters={"label": f"{LABEL_INSTANCE}={INSTANCE}"})


def _sandbox_processes() -> dict[int, str]:
    """Host processes running as the sandbox uid, with the container (cgroup) each runs in."""
    found = {}
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == SANDBOX_UID:
                with open(f"/proc/{name}/cgroup") as cgroup:
                    found[int(name)] = cgroup.read()
        except FileNotFoundError:
            continue
    return found


def orphaned_sandbox_processes(client: docker.DockerClient) -> list[int]:
    """Sandbox-uid processes on the host outside every existing container: none may outlive its
    container. (Other instances' containers, e.g. a concurrent test run, are left alone.)"""
    live = [c["Id"] for c in client.api.containers(all=True)]
    suspects = [pid for pid, cgroup in _sandbox_processes().items() if not any(cid in cgroup for cid in live)]
    if suspects:
        time.sleep(1)  # a container being removed right now takes a moment to reap its processes
        suspects = [pid for pid in suspects if os.path.exists(f"/proc/{pid}")]
    return suspects


def assert_nothing_left(client: docker.DockerClient) -> None:
    assert sandbox_containers(client) == [], "a sandbox container was left behind"
    assert orphaned_sandbox_processes(client) == [], "a sandbox process outlived its container"


@pytest.fixture
def sandbox_settings() -> SandboxSettings:
    # No pool: each job's container must be gone the moment it returns, which the checks verify.
    return SandboxSettings(instance=INSTANCE, pool_size=0)


@pytest.fixture
async def executor(
    docker_client: docker.DockerClient, sandbox_settings: SandboxSettings
) -> AsyncIterator[DockerExecutor]:
    executor = DockerExecutor(docker_client, sandbox_settings)
    yield executor
    await executor.close()
    assert_nothing_left(docker_client)


@pytest.fixture
def run(executor: DockerExecutor, docker_client: docker.DockerClient) -> Run:
    """run(code, language="python", stdins=(b"",), time_limit_ms=1000, memory_limit_mb=128, files=())"""

    async def _run(
        code: str,
        language: str = "python",
        stdins: Sequence[bytes] = (b"",),
        *,
        time_limit_ms: int = 1000,
        memory_limit_mb: int = 128,
        files: Sequence[InputFile] = (),
    ) -> ExecResult:
        result = await executor.execute(
            ExecRequest(
                language=language,
                code=code,
                tests=[TestInput(f"t{i}", stdin) for i, stdin in enumerate(stdins)],
                files=list(files),
                time_limit_ms=time_limit_ms,
                memory_limit_mb=memory_limit_mb,
            )
        )
        await executor.settle()
        assert_nothing_left(docker_client)
        return result

    return _run


async def poll(condition: Callable[[], T | None], timeout_s: float = 20.0) -> T:
    """The first truthy value of condition(), checked every 50 ms."""
    for _ in range(int(timeout_s / 0.05)):
        if value := condition():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"still waiting after {timeout_s} s")


def one_test(code: str, language: str = "python", **limits: int) -> ExecRequest:
    """A request with a single test named "run" on empty input."""
    return ExecRequest(language=language, code=code, tests=[TestInput("run", b"")], **limits)


def profile_allowing_them_on_any_process() -> str:
    """The sandbox's profile as it was before: these calls allowed on any process."""
    path = image.SANDBOX_DIR / "recipe" / "derive-seccomp.py"
    spec = importlib.util.spec_from_file_location("derive_seccomp", path)
    assert spec is not None and spec.loader is not None
    derivation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derivation)
    profile = json.loads(sandbox_container.seccomp_profile())
    for rule in profile["syscalls"]:
        if set(rule["names"]) <= derivation.SELF_ONLY.keys():
            rule["args"] = []
    return json.dumps(profile)
