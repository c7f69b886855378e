"""`labrunner worker`: this machine as a runner host of a server (runner_mode = remote there).

It runs jobs in this machine's Docker engine and sandbox image, with its own data folder (its key,
and the instance label that keeps its containers apart from any other appliance or host on the
same engine), and stores nothing but that key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

from appliance import identity
from appliance.errors import Invalid
from appliance.identity import KeyTextError, parse_public_key
from appliance.runner_hosts import check_host_name, check_region
from appliance.sandbox_wiring import DockerSandbox
from appliance.settings import Settings
from runner.broker import BrokerUrlError, redacted, redis_settings
from runner.runner_host import HostSettings, RunnerHost

log = logging.getLogger(__name__)


def default_name() -> str:
    """The machine's short host name, lower-cased, when it is a valid host name."""
    name = socket.gethostname().split(".")[0].lower()
    return name if name else "runner"


def host_settings(settings: Settings, name: str | None, region: str | None, slots: int | None) -> HostSettings:
    chosen_region = check_region(region if region is not None else settings.worker_region) or "default"
    chosen_slots = slots if slots is not None else settings.worker_slots
    if chosen_slots < 1:
        raise Invalid("invalid_slots", "a runner host runs at least one job at a time", field="slots")
    return HostSettings(
        name=check_host_name(name or default_name()),
        region=chosen_region,
        slots=chosen_slots,
        heartbeat_s=settings.worker_heartbeat_s,
        job_timeout_s=settings.worker_job_timeout_s,
    )


def build(settings: Settings, url: str, server_key: str, host: HostSettings) -> tuple[RunnerHost, DockerSandbox]:
    try:
        redis_settings(url)
    except BrokerUrlError as error:
        raise Invalid("invalid_broker_url", str(error), field="connect") from None
    try:
        server = parse_public_key(server_key)
    except KeyTextError as error:
        raise Invalid("invalid_public_key", f"--server-key: {error}", field="server_key") from None
    sandbox = DockerSandbox(settings)
    me = identity.ensure(settings.data_dir)
    return RunnerHost(url, host, sandbox.new_executor, sandbox.engine_up, me.private_key, server), sandbox


async def serve(runner_host: RunnerHost, sandbox: DockerSandbox) -> None:
    """Until SIGTERM or SIGINT: then a last heartbeat says the host stopped, and its containers go."""
    # arq logs each job's arguments (a plan: code and hidden tests' inputs) at INFO.
    logging.getLogger("arq").setLevel(logging.WARNING)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    log.info(
        "runner host %s (region %s, %d slots) taking jobs from %s",
        runner_host.settings.name,
        runner_host.settings.region,
        runner_host.settings.slots,
        redacted(runner_host.url),
    )
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await runner_host.run()
    finally:
        await sandbox.close()
