"""What the sandbox image file tests share: the real engine, small throwaway images FROM scratch in a
test repository of their own (the shared `labrunner-sandbox:*` images are never touched), and image
files (`labrunner sandbox export`'s format) written by hand."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from appliance import sandbox_transfer
from appliance.errors import AppError
from appliance.sandbox_transfer import IMAGE_MEMBER, MANIFEST_MEMBER
from runner import engine
from runner.image import CONTENT_TAG_LABEL
from tests.requirements import unavailable


def engine_client() -> Iterator[docker.DockerClient]:
    """For a fixture to `yield from`: a client of the real engine, closed afterwards."""
    try:
        client = engine.connect(timeout_s=60)
        client.ping()
    except Exception as exc:  # whatever the engine or its transport raises: no engine here
        unavailable(f"no Docker engine ({exc}): run packaging/ensure-docker.sh")
    yield client
    client.close()


@contextmanager
def throwaway_images(client: docker.DockerClient, folder: Path, repository: str) -> Iterator[Callable[..., Any]]:
    """`make(tag, label, text)`: a one-file image FROM scratch (`/hello.txt` holding `text`) tagged
    `<repository>:<tag>` and labelled as built from recipe `label`; every image made is removed at
    the end, whatever tags it by then."""
    made: list[str] = []

    def make(tag: str, label: str, text: str) -> Any:
        context = folder / f"context-{uuid.uuid4().hex}"
        context.mkdir()
        (context / "hello.txt").write_text(text)
        (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
        image, _ = client.images.build(
            path=str(context), tag=f"{repository}:{tag}", labels={CONTENT_TAG_LABEL: label}, rm=True, pull=False
        )
        made.append(image.id)
        return image

    try:
        yield make
    finally:
        for image_id in made:
            try:
                client.images.remove(image_id, force=True)
            except docker.errors.ImageNotFound:
                pass


def fresh_tag() -> str:
    return uuid.uuid4().hex[:16]


def image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def present(client: docker.DockerClient, name: str) -> bool:
    return image_id(client, name) is not None


def refused(code: str, call: Callable[[], object]) -> AppError:
    with pytest.raises(AppError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    return caught.value


def add_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def manifest_for(inner: bytes, ref: str, image_id: str) -> dict[str, Any]:
    """The manifest an honest export of `inner` (the engine's save of image `image_id`) as `ref` has."""
    return {
        "format": sandbox_transfer.FORMAT,
        "ref": ref,
        "image_id": image_id,
        "sha256": hashlib.sha256(inner).hexdigest(),
        "size": len(inner),
    }


def write_image_file(target: Path, inner: bytes, manifest: dict[str, Any]) -> None:
    with tarfile.open(target, "w") as archive:
        add_member(archive, IMAGE_MEMBER, inner)
        add_member(archive, MANIFEST_MEMBER, json.dumps(manifest).encode())
