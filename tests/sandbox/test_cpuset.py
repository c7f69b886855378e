"""The sandbox_cpuset setting pins every sandbox container to those CPUs: the engine records it and
the program inside can run nowhere else (what keeps a pinned runner host's jobs on its own core)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable

import docker
import pytest

from appliance.sandbox_wiring import sandbox_settings
from appliance.settings import Settings
from runner.docker_executor import DockerExecutor
from tests.sandbox.conftest import INSTANCE, assert_nothing_left, one_test, poll, sandbox_containers

pytestmark = pytest.mark.docker

# Sleeps long enough for the container to be inspected, then says where the kernel lets it run.
ALLOWED_CPUS = one_test(
    "import time\ntime.sleep(1)\n"
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('Cpus_allowed_list')][0])",
    time_limit_ms=5000,
)


async def test_a_sandbox_runs_only_on_the_cpus_of_sandbox_cpuset(
    docker_client: docker.DockerClient, settings_factory: Callable[..., Settings]
) -> None:
    # On a one-core machine "0" is every CPU and proves nothing.
    assert len(os.sched_getaffinity(0)) > 1, "this test needs a machine with two CPUs or more"
    chosen = dataclasses.replace(sandbox_settings(settings_factory(sandbox_cpuset="0")), instance=INSTANCE, pool_size=0)
    executor = DockerExecutor(docker_client, chosen)
    try:
        running = asyncio.ensure_future(executor.execute(ALLOWED_CPUS))
        containers = await poll(lambda: sandbox_containers(docker_client))
        inspected = docker_client.api.inspect_container(containers[0]["Id"])
        result = await running
    finally:
        await executor.close()
    assert inspected["HostConfig"]["CpusetCpus"] == "0"
    assert result.tests[0].stdout.strip() == b"0"
    assert_nothing_left(docker_client)
