"""Red team of issue 12's image file (`labrunner sandbox export|load`): someone hands school IT a
USB stick with a crafted file, or a local user lays a trap where the export is written. Real
engine, small throwaway images FROM scratch (repository `labrunner-test-rt12`); the shared
`labrunner-sandbox:*` images are never touched, and every image made here is removed again."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from appliance.sandbox_transfer import IMAGE_MEMBER, MANIFEST_MEMBER, export_image, load_image
from tests.ops.throwaway_images import (
    add_member,
    engine_client,
    fresh_tag,
    image_id,
    manifest_for,
    refused,
    throwaway_images,
    write_image_file,
)

REPOSITORY = "labrunner-test-rt12"

pytestmark = pytest.mark.docker


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    yield from engine_client()


@pytest.fixture
def make_image(client: docker.DockerClient, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`make_image(tag, label, text)`: a one-file image FROM scratch tagged `labrunner-test-rt12:<tag>`;
    every image made is removed at the end, whatever tags it by then."""
    with throwaway_images(client, tmp_path, REPOSITORY) as make:
        yield make


def _image_file(target: Path, inner: bytes, ref: str, image_id: str) -> None:
    write_image_file(target, inner, manifest_for(inner, ref, image_id))


def _add_link(archive: tarfile.TarFile, name: str, target: str) -> None:
    link = tarfile.TarInfo(name)
    link.type = tarfile.SYMTYPE
    link.linkname = target
    archive.addfile(link)


def _copy_all_but_the_listings(saved: tarfile.TarFile, crafted: tarfile.TarFile) -> None:
    """Every member of the engine's save but the listings that name its images and tags."""
    for member in saved.getmembers():
        if member.name not in ("manifest.json", "repositories"):
            crafted.addfile(member, saved.extractfile(member) if member.isfile() else None)


def _disguised(named_save: bytes, how: str) -> bytes:
    """The engine's save naming a tag, rewritten so that a reader of the tar's member names sees a
    `manifest.json` that names none, while the engine, unpacking it to a folder, reads the named one."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(named_save)) as saved, tarfile.open(fileobj=out, mode="w") as crafted:
        listing = saved.extractfile("manifest.json")
        assert listing is not None
        entries = json.loads(listing.read())
        assert entries[0]["RepoTags"], "the save was meant to name a tag"
        add_member(crafted, "manifest.json", json.dumps([{**e, "RepoTags": None} for e in entries]).encode())
        _copy_all_but_the_listings(saved, crafted)
        _add_link(crafted, "sub", "." if how == "symlinked_folder" else "./")
        add_member(crafted, "sub/manifest.json", json.dumps(entries).encode())
    return out.getvalue()


def _merged(*saves: bytes) -> bytes:
    """One save holding the images of several (as `docker save A B` writes it)."""
    out = io.BytesIO()
    entries: list[Any] = []
    seen: set[str] = set()
    with tarfile.open(fileobj=out, mode="w") as merged:
        for data in saves:
            with tarfile.open(fileobj=io.BytesIO(data)) as saved:
                listing = saved.extractfile("manifest.json")
                assert listing is not None
                entries += json.loads(listing.read())
                for member in saved.getmembers():
                    if member.name not in ("manifest.json", "repositories") and member.name not in seen:
                        seen.add(member.name)
                        merged.addfile(member, saved.extractfile(member) if member.isfile() else None)
        add_member(merged, "manifest.json", json.dumps(entries).encode())
    return out.getvalue()


def _impostor_saved_then_replaced(
    client: docker.DockerClient, make_image: Callable[..., Any], *, named: bool
) -> tuple[str, Any, bytes, Any]:
    """An image built from another recipe, tagged `ref`, saved by the engine (naming `ref` or not) and
    untagged; then the image in use tagged `ref` in its place: (ref, impostor, its save, image in use)."""
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    impostor = make_image(tag, "0123456789abcdef", "impostor")
    saved = b"".join(impostor.save(named=ref if named else False))
    client.images.remove(ref)
    in_use = make_image(tag, tag, "the image in use")
    return ref, impostor, saved, in_use


@pytest.mark.parametrize("how", ["symlinked_folder", "symlinked_folder_slash"])
def test_a_save_naming_the_tag_through_a_symlinked_folder_moves_no_tag(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path, how: str
) -> None:
    """The engine unpacks the save into a folder: `sub -> .` then `sub/manifest.json` overwrites the
    harmless `manifest.json` a name-by-name check read. Before the fix the engine tagged the impostor
    as it loaded it, and the clean-up then removed it together with the tag: the image in use lost
    its tag (the appliance's sandbox image gone until rebuilt)."""
    ref, impostor, named, in_use = _impostor_saved_then_replaced(client, make_image, named=True)
    target = tmp_path / "stick.tar"
    _image_file(target, _disguised(named, how), ref, impostor.id)

    refused("image_file_damaged", lambda: load_image(client, ref, target, lambda line: None))
    assert image_id(client, ref) == in_use.id
    assert image_id(client, impostor.id) is None


def test_a_metadata_file_that_is_a_link_is_refused(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """`manifest.json` as a symlink to a file elsewhere in the save (the engine follows it)."""
    ref, impostor, named, in_use = _impostor_saved_then_replaced(client, make_image, named=True)
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(named)) as saved, tarfile.open(fileobj=out, mode="w") as crafted:
        listing = saved.extractfile("manifest.json")
        assert listing is not None
        add_member(crafted, "elsewhere/listing.json", listing.read())
        _copy_all_but_the_listings(saved, crafted)
        _add_link(crafted, "manifest.json", "elsewhere/listing.json")
    target = tmp_path / "stick.tar"
    _image_file(target, out.getvalue(), ref, impostor.id)

    refused("image_file_damaged", lambda: load_image(client, ref, target, lambda line: None))
    assert image_id(client, ref) == in_use.id
    assert image_id(client, impostor.id) is None


def test_an_extra_unnamed_image_in_the_file_is_refused_and_removed(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """A file that loads a second image beside the one it names: both go, the tag stays unset."""
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    wanted = make_image(tag, tag, "wanted")
    extra = make_image(fresh_tag(), "0123456789abcdef", "extra")
    both = _merged(b"".join(wanted.save(named=False)), b"".join(extra.save(named=False)))
    client.images.remove(wanted.id, force=True)
    client.images.remove(extra.id, force=True)
    target = tmp_path / "stick.tar"
    _image_file(target, both, ref, wanted.id)

    refused("image_mismatch", lambda: load_image(client, ref, target, lambda line: None))
    assert image_id(client, ref) is None
    assert image_id(client, wanted.id) is None and image_id(client, extra.id) is None


def test_outer_members_with_traversal_names_write_nothing_outside(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """The outer tar is read by member name, never extracted: `../` and absolute members, and a
    symlink called like the image member, land nowhere on disk."""
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    make_image(tag, tag, "traversal")
    target = tmp_path / "inner" / "stick.tar"
    target.parent.mkdir()
    export_image(client, ref, target, lambda line: None)
    client.images.remove(ref)
    with tarfile.open(target, "a") as archive:
        add_member(archive, "../escaped.txt", b"escaped")
        add_member(archive, "/tmp/rt12-escaped.txt", b"escaped")
        _add_link(archive, IMAGE_MEMBER, "/etc/passwd")
    refused("image_file_damaged", lambda: load_image(client, ref, target, lambda line: None))
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/rt12-escaped.txt").exists()
    assert image_id(client, ref) is None


def test_a_manifest_lying_about_the_size_or_huge_is_refused_unread(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    image = make_image(tag, tag, "sizes")
    saved = b"".join(image.save(named=False))
    client.images.remove(ref)
    lying = tmp_path / "lying.tar"
    manifest = {**manifest_for(saved, ref, image.id), "size": len(saved) // 2}
    write_image_file(lying, saved, manifest)
    refused("image_file_damaged", lambda: load_image(client, ref, lying, lambda line: None))
    huge = tmp_path / "huge.tar"
    # 8 MiB of JSON: only the first 64 KiB are read, which do not parse.
    write_image_file(huge, saved, {**manifest, "padding": "x" * (8 << 20)})
    refused("image_file_damaged", lambda: load_image(client, ref, huge, lambda line: None))
    assert image_id(client, ref) is None and image_id(client, image.id) is None


def test_export_does_not_write_through_a_planted_partial_symlink(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """Export writes `FILE.partial` first. In a folder others may write (a shared stick, /tmp), a
    symlink planted there under that name made the export overwrite the file it points to, with
    the exporting user's rights (before the fix: the victim file held the image)."""
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    make_image(tag, tag, "partial")
    victim = tmp_path / "teacher-notes.txt"
    victim.write_text("precious\n")
    target = tmp_path / "shared" / "sandbox.tar"
    target.parent.mkdir()
    (target.parent / "sandbox.tar.partial").symlink_to(victim)

    export_image(client, ref, target, lambda line: None)
    assert victim.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink()
    assert not (target.parent / "sandbox.tar.partial").exists()
    with tarfile.open(target) as archive:
        assert {m.name for m in archive.getmembers()} == {IMAGE_MEMBER, MANIFEST_MEMBER}


def test_export_onto_a_symlinked_target_replaces_the_link_not_its_file(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    tag = fresh_tag()
    ref = f"{REPOSITORY}:{tag}"
    make_image(tag, tag, "target link")
    victim = tmp_path / "teacher-notes.txt"
    victim.write_text("precious\n")
    target = tmp_path / "sandbox.tar"
    target.symlink_to(victim)
    export_image(client, ref, target, lambda line: None)
    assert victim.read_text() == "precious\n"
    assert target.is_file() and not target.is_symlink()


def test_an_oci_index_naming_the_tag_is_refused_before_the_engine_reads_it(
    client: docker.DockerClient, make_image: Callable[..., Any], tmp_path: Path
) -> None:
    """An engine keeping its images in containerd names what it loads from the OCI index's
    annotations (this engine reads manifest.json only): a file naming the tag there is refused too."""
    ref, impostor, saved, in_use = _impostor_saved_then_replaced(client, make_image, named=False)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 1,
                "annotations": {"io.containerd.image.name": f"docker.io/library/{ref}"},
            }
        ],
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(saved)) as original, tarfile.open(fileobj=out, mode="w") as crafted:
        for member in original.getmembers():
            crafted.addfile(member, original.extractfile(member) if member.isfile() else None)
        add_member(crafted, "index.json", json.dumps(index).encode())
    target = tmp_path / "stick.tar"
    _image_file(target, out.getvalue(), ref, impostor.id)

    refused("image_file_damaged", lambda: load_image(client, ref, target, lambda line: None))
    assert image_id(client, ref) == in_use.id
    assert image_id(client, impostor.id) is None
