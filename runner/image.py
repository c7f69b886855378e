"""The sandbox image: its content-derived tag, its state on the engine, and how to build it.

The tag is a hash of everything under sandbox/ (recipe, harness, protocol), so a runner can tell
the right image from a stale one; the base image (the slow mmdebstrap part) has its own tag from
its recipe alone and is rebuilt only when that changes. These calls block: from async code, run
them in a thread.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

import docker
import docker.errors

import sandbox
from runner import engine

SANDBOX_DIR = Path(sandbox.__file__).resolve().parent
IMAGE_REPO = "labrunner-sandbox"
BASE_REPO = "labrunner-sandbox-base"
_BASE_RECIPE = ("recipe/build-base.sh", "recipe/packages.txt")
_TAG_HEX_CHARS = 16
# Every image built from the recipe names its content tag in this label (the workflow's too), so an
# image that travelled by file or registry can be told from one built from another recipe.
CONTENT_TAG_LABEL = "org.labrunner.content-tag"

ImageStatus = Literal["present", "stale", "missing"]
Progress = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """Building the sandbox image failed; the message says at which step."""


def _image_files() -> list[str]:
    return sorted(
        path.relative_to(SANDBOX_DIR).as_posix()
        for path in SANDBOX_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def _digest(relative_paths: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for relative in relative_paths:
        # Name and length go in too, so moving bytes between files changes the tag.
        content = (SANDBOX_DIR / relative).read_bytes()
        digest.update(b"%s\0%d\0" % (relative.encode(), len(content)))
        digest.update(content)
    return digest.hexdigest()[:_TAG_HEX_CHARS]


def image_tag() -> str:
    return _digest(_image_files())


def expected_ref() -> str:
    """The image this checkout's runner must use."""
    return f"{IMAGE_REPO}:{image_tag()}"


def base_ref() -> str:
    return f"{BASE_REPO}:{_digest(_BASE_RECIPE)}"


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def image_status(client: docker.DockerClient, ref: str | None = None) -> ImageStatus:
    """present: the image is there; stale: only other tags of it are (the recipe changed since
    they were built); missing: none. Raises InfraError when the engine does not answer."""
    ref = ref or expected_ref()
    try:
        if _exists(client, ref):
            return "present"
        return "stale" if client.images.list(name=ref.rpartition(":")[0]) else "missing"
    except docker.errors.DockerException as exc:
        raise engine.as_infra_error(exc) from exc


def build_image(client: docker.DockerClient, progress: Progress) -> str:
    """Build the base image when its tag is missing, then the sandbox image; returns its ref."""
    base = base_ref()
    if _exists(client, base):
        progress(f"base image {base} is present")
    else:
        progress(f"building base image {base} from Debian packages (takes minutes)")
        _build_base(base, progress)
    ref = expected_ref()
    progress(f"building sandbox image {ref}")
    try:
        for chunk in client.api.build(
            path=str(SANDBOX_DIR),
            dockerfile="recipe/Dockerfile",
            tag=ref,
            buildargs={"BASE_IMAGE": base},
            labels={CONTENT_TAG_LABEL: ref.rpartition(":")[2]},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                raise ImageBuildError(f"building {ref} failed: {chunk['error'].strip()}")
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    progress(line)
    except docker.errors.DockerException as exc:
        raise ImageBuildError(f"building {ref} failed: {exc}") from exc
    _remove_other_tags(client, IMAGE_REPO, keep=ref, progress=progress)
    _remove_other_tags(client, BASE_REPO, keep=base, progress=progress)
    return ref


def _build_base(ref: str, progress: Progress) -> None:
    script = SANDBOX_DIR / "recipe" / "build-base.sh"
    with subprocess.Popen(
        ["bash", str(script), ref],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            progress(line.rstrip("\n"))
    if proc.returncode != 0:
        raise ImageBuildError(f"building the base image {ref} failed (exit {proc.returncode}); see the lines above")


def _remove_other_tags(client: docker.DockerClient, repo: str, keep: str, progress: Progress) -> None:
    # Each stale base is well over a gigabyte: drop the old tags once the new image exists.
    for image in client.images.list(name=repo):
        for tag in image.tags:
            if tag != keep and tag.rpartition(":")[0] == repo:
                try:
                    client.images.remove(tag)
                    progress(f"removed old image {tag}")
                except docker.errors.APIError as exc:
                    progress(f"kept old image {tag}: {exc.explanation or exc}")


def build(progress: Progress) -> str:
    """`labrunner sandbox build`: connect to the engine and build; returns the image ref."""
    client = engine.connect()
    try:
        return build_image(client, progress)
    finally:
        client.close()
