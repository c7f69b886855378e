"""The Docker engine behind a thin async facade.

The docker SDK is synchronous: every call goes to a worker thread so the event loop never blocks,
and whatever the engine raises comes back as an InfraError whose code tells the worker what
broke. Nothing a program does inside a sandbox surfaces here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import docker
import docker.errors
import requests

from runner.executor import InfraError

ENGINE_UNAVAILABLE = "engine_unavailable"
ENGINE_ERROR = "engine_error"
IMAGE_MISSING = "image_missing"
IMAGE_STALE = "image_stale"
SANDBOX_LOST = "sandbox_lost"
SANDBOX_PROTOCOL = "sandbox_protocol"

_P = ParamSpec("_P")
_T = TypeVar("_T")


def connect(timeout_s: int = 60) -> docker.DockerClient:
    """A client for the engine named by the environment (DOCKER_HOST, else the local socket)."""
    try:
        return docker.from_env(timeout=timeout_s)
    except docker.errors.DockerException as exc:
        raise InfraError(ENGINE_UNAVAILABLE, f"the Docker engine does not answer: {exc}") from exc


def as_infra_error(exc: Exception) -> InfraError:
    """The InfraError for an exception raised by the docker SDK or its transport."""
    if isinstance(exc, InfraError):
        return exc
    if isinstance(exc, docker.errors.ImageNotFound):
        return InfraError(IMAGE_MISSING, f"the sandbox image is missing: {exc}")
    if isinstance(exc, docker.errors.NotFound):
        return InfraError(SANDBOX_LOST, f"a sandbox container disappeared: {exc}")
    if isinstance(exc, docker.errors.APIError):
        return InfraError(ENGINE_ERROR, f"the Docker engine refused a request: {exc}")
    return InfraError(ENGINE_UNAVAILABLE, f"the Docker engine does not answer: {exc}")


async def call(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run one blocking SDK call in a thread; engine failures raise InfraError."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        raise as_infra_error(exc) from exc
