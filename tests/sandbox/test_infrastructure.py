"""Infrastructure failures surface as InfraError with a code the worker can act on; the pool hands
out every container once and keeps none past its age."""

from __future__ import annotations

import asyncio
import re

import docker
import pytest

from runner import engine, image
from runner.docker_executor import DockerExecutor
from runner.executor import InfraError
from runner.sandbox_container import sweep_orphans
from runner.sandbox_settings import SandboxSettings
from tests.engine_forwarder import engine_forwarder
from tests.sandbox.conftest import INSTANCE, assert_nothing_left, one_test, poll, sandbox_containers

pytestmark = pytest.mark.docker

HELLO = one_test("print('hello')")
# The container's own cgroup path names it: how a program can tell which container it is in.
WHICH_CONTAINER = one_test("print(open('/proc/self/cgroup').read())")


async def test_engine_down_is_engine_unavailable() -> None:
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41", timeout=5)
    executor = DockerExecutor(client, SandboxSettings(instance=INSTANCE))
    with pytest.raises(InfraError) as caught:
        await executor.execute(HELLO)
    assert caught.value.code == engine.ENGINE_UNAVAILABLE
    await executor.close()


def test_connect_to_a_dead_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(InfraError) as caught:
        engine.connect(timeout_s=5)
    assert caught.value.code == engine.ENGINE_UNAVAILABLE


@pytest.mark.parametrize(
    ("image_ref", "code"),
    [
        ("labrunner-no-such-image:0", engine.IMAGE_MISSING),
        # Another tag of the right repository: built from an older recipe.
        ("labrunner-sandbox:0000000000000000", engine.IMAGE_STALE),
    ],
)
async def test_unusable_image(docker_client: docker.DockerClient, image_ref: str, code: str) -> None:
    executor = DockerExecutor(docker_client, SandboxSettings(instance=INSTANCE, image=image_ref))
    with pytest.raises(InfraError) as caught:
        await executor.execute(HELLO)
    assert caught.value.code == code
    await executor.close()
    assert_nothing_left(docker_client)


def test_image_status_of_the_built_image(docker_client: docker.DockerClient) -> None:
    assert image.image_status(docker_client) == "present"


async def test_a_container_removed_mid_job_is_sandbox_lost(
    executor: DockerExecutor, docker_client: docker.DockerClient
) -> None:
    request = one_test("import time\ntime.sleep(30)\n", time_limit_ms=10_000)
    job = asyncio.create_task(executor.execute(request))
    containers = await poll(lambda: sandbox_containers(docker_client))
    await asyncio.sleep(0.5)
    docker_client.api.remove_container(containers[0]["Id"], force=True)
    with pytest.raises(InfraError) as caught:
        await job
    assert caught.value.code == engine.SANDBOX_LOST


async def test_a_stream_lost_while_the_sandbox_runs_is_sandbox_lost_not_the_programs_doing(
    docker_client: docker.DockerClient, sandbox_settings: SandboxSettings
) -> None:
    """The attach connection breaks (a blip between host and engine) while the program still runs,
    and the engine still answers: the job is the host's failure, to be run again, never a
    runtime error for the student."""
    with engine_forwarder() as forwarder:
        client = docker.DockerClient(base_url=forwarder.docker_host, timeout=30)
        executor = DockerExecutor(client, sandbox_settings)
        try:
            job = asyncio.create_task(executor.execute(one_test("import time\ntime.sleep(20)\n", time_limit_ms=30_000)))
            await poll(lambda: [c for c in sandbox_containers(docker_client) if c["State"] == "running"] or None)
            await asyncio.sleep(2)  # the program is sleeping, the harness waiting on it
            forwarder.drop()
            try:
                result = await job
            except InfraError as error:
                caught = error
            else:
                raise AssertionError(f"the job came back as the program's doing: {result}")
            assert (caught.code, caught.message) == (
                engine.SANDBOX_LOST,
                "lost the sandbox's attach stream while the sandbox still ran",
            )
        finally:
            await executor.close()
            client.close()
    assert_nothing_left(docker_client)


async def test_sweep_removes_leftovers(docker_client: docker.DockerClient) -> None:
    leftover = docker_client.api.create_container(
        image.expected_ref(), labels={"labrunner.sandbox": "1", "labrunner.instance": INSTANCE}
    )
    assert await sweep_orphans(docker_client, INSTANCE) == 1
    assert_nothing_left(docker_client)
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(leftover["Id"])


async def test_pooled_containers_serve_one_job_each(docker_client: docker.DockerClient) -> None:
    executor = DockerExecutor(docker_client, SandboxSettings(instance=INSTANCE, pool_size=2))
    try:
        seen = []
        for _ in range(4):
            result = await executor.execute(WHICH_CONTAINER)
            seen.append(re.findall(rb"[0-9a-f]{64}", result.tests[0].stdout)[0])
        assert len(set(seen)) == 4
    finally:
        await executor.close()
    assert_nothing_left(docker_client)


async def test_pool_replaces_containers_past_their_age(docker_client: docker.DockerClient) -> None:
    executor = DockerExecutor(docker_client, SandboxSettings(instance=INSTANCE, pool_size=1, pool_max_age_s=1.0))
    try:
        await executor.start()
        first = await poll(lambda: {c["Id"] for c in sandbox_containers(docker_client)})

        def replaced() -> set[str] | None:
            ids = {c["Id"] for c in sandbox_containers(docker_client)}
            return ids if ids and not ids & first else None

        assert len(await poll(replaced)) == 1
    finally:
        await executor.close()
    assert_nothing_left(docker_client)


async def test_a_cancelled_job_leaves_nothing(executor: DockerExecutor, docker_client: docker.DockerClient) -> None:
    job = asyncio.create_task(executor.execute(one_test("while True: pass")))
    await asyncio.sleep(0.2)  # likely still launching the container
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await executor.close()
    assert_nothing_left(docker_client)
