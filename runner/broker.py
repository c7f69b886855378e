"""The task engine between the server and its runner hosts: Redis, through arq.

Names and codecs both sides share. Messages are JSON, never arq's default pickle: whoever can write
to the broker could otherwise make every reader run code of their choosing. Each host consumes its
own queue (`labrunner:host:<name>`): the server places every job on one host (runner.placement)
and moves it when that host is lost, so affinity and regions are the server's choice, and the
broker's own rules (a job leaves its queue only in the transaction that stores its result; an
aborted job's task is cancelled on its host) do the delivery.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix

RUN_PLAN = "run_plan"
HOST_QUEUE_PREFIX = "labrunner:host:"
HEARTBEAT_PREFIX = "labrunner:heartbeat:"
# Host names travel in queue names and keys: a short, plain vocabulary keeps them unambiguous.
HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
REGION_NAME = HOST_NAME


class BrokerUrlError(ValueError):
    """Not a Redis URL this program can use."""


def job_id_for(host: str) -> str:
    """A job's id names its host, so the broker's access list can give each host only its own
    jobs' keys (`acl_rule`)."""
    return f"{host}:{uuid.uuid4().hex}"


def acl_rule(host: str, password: str) -> str:
    """The Redis ACL line for one runner host: its own queue, its own jobs' plans and answers, its
    own heartbeat and the shared abort list, nothing else. Whoever holds one host's password reads
    only the plans that host would run anyway."""
    own = [host_queue(host), host_queue(host) + ":*", heartbeat_key(host)]
    jobs = (job_key_prefix, result_key_prefix, in_progress_key_prefix, retry_key_prefix)
    own += [f"{prefix}{host}:*" for prefix in jobs]
    keys = " ".join(f"~{pattern}" for pattern in [*own, abort_jobs_ss])
    return f"user {host} on >{password} resetkeys {keys} resetchannels +@all -@admin -@dangerous +info"


def host_queue(host: str) -> str:
    return HOST_QUEUE_PREFIX + host


def heartbeat_key(host: str) -> str:
    return HEARTBEAT_PREFIX + host


def dumps(value: Any) -> bytes:
    # A failed job's result is an exception object: its text is what the server reads.
    return json.dumps(value, default=repr, separators=(",", ":")).encode("utf-8")


def loads(data: bytes) -> Any:
    return json.loads(data)


def redis_settings(url: str, connect_retries: int = 2) -> RedisSettings:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise BrokerUrlError(
            "the broker is a redis:// or rediss:// URL with a host, e.g. redis://runner:PASS@server:6379/0"
        )
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = connect_retries
    settings.conn_timeout = 3
    return settings


def redacted(url: str) -> str:
    """The URL without its password, for logs and pages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


async def connect(url: str, connect_retries: int = 2) -> ArqRedis:
    return await create_pool(redis_settings(url, connect_retries), job_serializer=dumps, job_deserializer=loads)
