"""`labrunner sandbox export|load|pull` on the real engine, with small throwaway images (FROM scratch,
repository `labrunner-test-export`): the shared `labrunner-sandbox:*` images are never touched here.
The must-show round trip of the real image is tests/ops/test_sandbox_image_roundtrip.py."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from appliance import sandbox_transfer
from appliance.sandbox_transfer import IMAGE_MEMBER, MANIFEST_MEMBER, export_image, load_image, pull_image
from appliance.settings import SettingsError, load_settings
from runner.image import expected_ref
from tests.ops.local_registry import LocalRegistry
from tests.ops.throwaway_images import (
    engine_client,
    fresh_tag,
    manifest_for,
    present,
    refused,
    throwaway_images,
    write_image_file,
)
from tests.runner.appliance_process import free_port, run_cli

REPOSITORY = "labrunner-test-export"

pytestmark = pytest.mark.docker


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    yield from engine_client()


@pytest.fixture
def make_image(client: docker.DockerClient, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`make_image(tag, label=tag)`: a two-file image FROM scratch tagged `labrunner-test-export:<tag>`;
    every image made (and whatever still tags it) is removed at the end."""
    with throwaway_images(client, tmp_path, REPOSITORY) as make:
        yield lambda tag, label=None: make(tag, label or tag, f"hello from {tag} built from {label or tag}\n")


def _members(path: Path) -> tuple[bytes, dict[str, Any]]:
    with tarfile.open(path) as archive:
        image = archive.extractfile(IMAGE_MEMBER)
        manifest = archive.extractfile(MANIFEST_MEMBER)
        assert image is not None and manifest is not None
        return image.read(), json.loads(manifest.read())


def _exported_then_removed(
    client: docker.DockerClient, make_image: Callable[..., Any], target: Path, label: str | None = None
) -> tuple[str, Any]:
    """A fresh image (built from recipe `label`) exported to `target`, then removed: its ref and image."""
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    image = make_image(tag, label)
    export_image(client, ref, target, lambda line: None)
    client.images.remove(ref)
    return ref, image


def test_export_then_remove_then_load_brings_the_same_image_back(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    original = make_image(tag)
    target = tmp_path / "sandbox-image.tar"
    lines: list[str] = []
    exported = export_image(client, ref, target, lines.append)
    assert target.is_file() and not (tmp_path / "sandbox-image.tar.partial").exists()
    assert any("exported" in line for line in lines)
    image_bytes, manifest = _members(target)
    assert manifest["ref"] == ref and manifest["image_id"] == original.id == exported.image_id
    assert manifest["size"] == len(image_bytes) == exported.size
    # The engine's save by id: loading it moves no tag by itself, and nothing is ever tagged latest.
    with tarfile.open(fileobj=io.BytesIO(image_bytes)) as saved:
        [entry] = json.loads(saved.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert not entry.get("RepoTags")

    client.images.remove(ref)
    assert not present(client, original.id)
    loaded = load_image(client, ref, target, lines.append)
    assert loaded.image_id == original.id
    assert client.images.get(ref).id == original.id
    assert client.images.get(original.id).tags == [ref]
    # Loading it once more finds it there and does nothing.
    assert load_image(client, ref, target, lines.append).image_id == original.id
    assert "nothing to load" in lines[-1]


def test_a_file_for_another_recipe_is_refused_before_the_engine_sees_it(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    target = tmp_path / "image.tar"
    ref, original = _exported_then_removed(client, make_image, target)
    other = f"{REPOSITORY}:{fresh_tag()}"
    error = refused("image_mismatch", lambda: load_image(client, other, target, lambda line: None))
    assert ref in error.message and other in error.message
    assert not present(client, original.id) and not present(client, other)


def test_a_file_whose_image_is_not_the_one_it_names_is_refused_and_leaves_nothing(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    target = tmp_path / "image.tar"
    ref, original = _exported_then_removed(client, make_image, target)
    image_bytes, manifest = _members(target)
    write_image_file(target, image_bytes, {**manifest, "image_id": "sha256:" + "0" * 64})
    refused("image_mismatch", lambda: load_image(client, ref, target, lambda line: None))
    assert not present(client, original.id) and not present(client, ref)


def test_an_image_built_from_another_recipe_is_refused_whatever_its_file_claims(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    target = tmp_path / "image.tar"
    # Built from another recipe, tagged as this one.
    ref, original = _exported_then_removed(client, make_image, target, label="0123456789abcdef")
    error = refused("image_mismatch", lambda: load_image(client, ref, target, lambda line: None))
    assert "0123456789abcdef" in error.message
    assert not present(client, original.id) and not present(client, ref)


def test_a_file_that_names_tags_is_refused_before_the_engine_can_move_one(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """The engine tags a named save as it loads it, before any check could run: such a file would
    take the tag in use away from the right image."""
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    impostor = make_image(tag, label="0123456789abcdef")
    named = b"".join(impostor.save(named=ref))
    client.images.remove(ref)
    in_use = make_image(tag)
    target = tmp_path / "named.tar"
    write_image_file(target, named, manifest_for(named, ref, impostor.id))
    refused("image_file_damaged", lambda: load_image(client, ref, target, lambda line: None))
    assert client.images.get(ref).id == in_use.id
    assert not present(client, impostor.id)


@pytest.mark.parametrize("damage", ["flipped_layer_byte", "wrong_sha256", "truncated", "not_an_image_file"])
def test_a_damaged_file_is_refused_and_leaves_nothing(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path, damage: str
) -> None:
    target = tmp_path / "image.tar"
    ref, original = _exported_then_removed(client, make_image, target)
    image_bytes, manifest = _members(target)
    if damage == "flipped_layer_byte":
        at = image_bytes.index(b"hello from ")
        write_image_file(target, image_bytes[:at] + b"J" + image_bytes[at + 1 :], manifest)
    elif damage == "wrong_sha256":
        # The engine loads these bytes happily: only the file's own hash can tell.
        write_image_file(target, image_bytes, {**manifest, "sha256": "f" * 64})
    elif damage == "truncated":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    else:
        target.write_bytes(b"these are the minutes of the staff meeting\n" * 100)
    refused("image_file_damaged", lambda: load_image(client, ref, target, lambda line: None))
    assert not present(client, original.id) and not present(client, ref)


def test_exporting_an_image_that_is_not_there_is_refused(client: docker.DockerClient, tmp_path: Path) -> None:
    target = tmp_path / "image.tar"
    refused("image_missing", lambda: export_image(client, f"{REPOSITORY}:{fresh_tag()}", target, lambda line: None))
    assert list(tmp_path.iterdir()) == []


def _push(client: docker.DockerClient, registry: LocalRegistry, image: Any, name: str, tag: str) -> None:
    """Publish `image` in the registry as `name:tag`, as the workflow does, then drop it from the engine."""
    remote = f"{registry.address}/{name}"
    image.tag(remote, tag)
    for event in client.images.push(remote, tag=tag, stream=True, decode=True):
        assert "error" not in event, event
    client.images.remove(f"{remote}:{tag}")
    for ref in image.tags:
        client.images.remove(ref)
    assert not present(client, image.id)


def test_pull_fetches_the_content_tag_from_a_registry_and_keeps_only_the_local_name(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    original = make_image(tag)
    with LocalRegistry(tmp_path / "registry") as registry:
        _push(client, registry, client.images.get(ref), f"school/{REPOSITORY}", tag)
        lines: list[str] = []
        pulled = pull_image(client, f"{registry.address}/school", ref, lines.append)
        asked = registry.manifest_requests()
    # Asked by its content tag: never a moving tag such as latest.
    assert f"/v2/school/{REPOSITORY}/manifests/{tag}" in asked, asked
    assert not any("latest" in path for path in asked), asked
    assert pulled.image_id == original.id
    assert client.images.get(original.id).tags == [ref]
    assert any("Pull complete" in line for line in lines), lines


def test_pull_refuses_an_image_not_built_from_this_recipe(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    impostor = make_image(tag, label="0123456789abcdef")
    with LocalRegistry(tmp_path / "registry") as registry:
        _push(client, registry, impostor, REPOSITORY, tag)
        refused("image_mismatch", lambda: pull_image(client, registry.address, ref, lambda line: None))
    assert not present(client, impostor.id) and not present(client, ref)


def test_pull_of_a_tag_the_registry_lacks_says_so(client: docker.DockerClient, tmp_path: Path) -> None:
    with LocalRegistry(tmp_path / "registry") as registry:
        error = refused(
            "image_not_in_registry",
            lambda: pull_image(client, registry.address, f"{REPOSITORY}:{fresh_tag()}", lambda line: None),
        )
    assert "sandbox build" in error.message


def test_pull_from_an_unreachable_registry_suggests_the_offline_build(client: docker.DockerClient) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    ref = f"{REPOSITORY}:{fresh_tag()}"
    error = refused("registry_unreachable", lambda: pull_image(client, closed, ref, lambda line: None))
    assert closed in error.message and "labrunner sandbox build" in error.message
    assert not present(client, ref)


def _labrunner(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("--data-dir", str(data_dir), *args, timeout_s=120)


def test_the_cli_refuses_with_codes_and_leaves_the_sandbox_image_alone(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """Through the real command: pull with no registry set, and load of a file made for another recipe
    (this one's image, `labrunner-sandbox:<tag>`, is neither removed nor replaced)."""
    before = client.images.get(expected_ref()).id if present(client, expected_ref()) else None
    pulled = _labrunner(tmp_path / "data", "sandbox", "pull")
    assert pulled.returncode == 1 and "error (no_image_registry)" in pulled.stderr, pulled.stderr
    assert "labrunner sandbox build" in pulled.stderr

    tag = fresh_tag()
    make_image(tag)
    target = tmp_path / "other-recipe.tar"
    export_image(client, f"{REPOSITORY}:{tag}", target, lambda line: None)
    loaded = _labrunner(tmp_path / "data", "sandbox", "load", str(target))
    assert loaded.returncode == 1 and "error (image_mismatch)" in loaded.stderr, loaded.stderr
    assert (client.images.get(expected_ref()).id if present(client, expected_ref()) else None) == before


def test_the_engine_being_away_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{free_port()}")  # nothing listens there
    settings = load_settings(data_dir=tmp_path / "data", environ={}, overrides={"image_transfer_timeout_s": 5})
    refused("engine_unavailable", lambda: sandbox_transfer.export(settings, tmp_path / "x.tar", lambda line: None))
    assert not (tmp_path / "x.tar").exists() and not (tmp_path / "x.tar.partial").exists()


@pytest.mark.parametrize("registry", ["https://registry.example", "registry.example/school:tag", "Registry Example"])
def test_an_image_registry_that_is_no_repository_prefix_is_refused(tmp_path: Path, registry: str) -> None:
    with pytest.raises(SettingsError, match="image_registry"):
        load_settings(data_dir=tmp_path, environ={}, overrides={"image_registry": registry})


def test_an_image_registry_with_port_and_path_is_taken(tmp_path: Path) -> None:
    wanted = "registry.example:5000/school"
    settings = load_settings(data_dir=tmp_path, environ={}, overrides={"image_registry": wanted})
    assert settings.image_registry == wanted
