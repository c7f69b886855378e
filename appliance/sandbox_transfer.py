"""Carrying the sandbox image to machines that cannot build it: `labrunner sandbox export FILE` and
`load FILE` (a USB stick to a school without internet), and `sandbox pull` from a registry.

An image file is an uncompressed tar of two members: `image.tar`, the engine's own save of the image
by its id (so loading it never moves a tag by itself), then `labrunner-image.json`, which names the
ref the image was exported as, its image id, and the SHA-256 and size of `image.tar`. Loading
refuses a file made for another recipe before the engine sees a byte, hashes `image.tar` while the
engine reads it, and tags the image only when the hash, the size and the loaded image's id all
match what the file says; a refused file leaves no image behind. Nothing is ever tagged `latest`:
the runner only ever uses the content tag (runner/image.py).

These calls block: they are for the command line (or a thread).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import requests

from appliance import __version__
from appliance.atomic_files import replacing
from appliance.errors import AppError, Invalid, NotFound, Unavailable
from appliance.settings import Settings
from runner import engine, image
from runner.executor import InfraError

Progress = Callable[[str], None]

FORMAT = "labrunner-sandbox-image/1"
IMAGE_MEMBER = "image.tar"
MANIFEST_MEMBER = "labrunner-image.json"
_CHUNK = 4 << 20
_REPORT_EVERY = 128 << 20  # bytes between two progress lines
_BLOCK = tarfile.BLOCKSIZE
_OCI_NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")


@dataclass(frozen=True)
class Transferred:
    ref: str
    image_id: str
    size: int
    sha256: str


def export_image(client: docker.DockerClient, ref: str, target: Path, progress: Progress) -> Transferred:
    """Write the image `ref` into `target` (under `target.partial` until complete)."""
    saved = _get(client, ref)
    # On a shared stick or in /tmp, a link planted under FILE.partial is never written through.
    with replacing(target, suffix=".partial") as out:
        size, digest = _write_archive(out, saved, ref, progress)
    return Transferred(ref, saved.id, size, digest)


def _get(client: docker.DockerClient, ref: str) -> Any:
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        raise NotFound(
            "image_missing",
            f"the sandbox image {ref} is not on this machine: build it (`labrunner sandbox build`) or pull it first",
        ) from None


def _write_archive(out: IO[bytes], saved: Any, ref: str, progress: Progress) -> tuple[int, str]:
    # The engine's save is a stream of unknown length and a tar header needs the length: the header
    # block is written last, over a placeholder, so the image goes to the stick once and is never
    # held in memory or in a second file.
    out.write(b"\0" * _BLOCK)
    digest = hashlib.sha256()
    meter = _Meter(progress, "exported", saved.attrs.get("Size"))
    size = 0
    for chunk in saved.save(chunk_size=_CHUNK, named=False):
        out.write(chunk)
        digest.update(chunk)
        size += len(chunk)
        meter.at(size)
    out.write(b"\0" * (-size % _BLOCK))
    manifest = {
        "format": FORMAT,
        "ref": ref,
        "image_id": saved.id,
        "sha256": digest.hexdigest(),
        "size": size,
        "labrunner_version": __version__,
    }
    data = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    out.write(_header(MANIFEST_MEMBER, len(data)))
    out.write(data + b"\0" * (-len(data) % _BLOCK))
    out.write(b"\0" * (2 * _BLOCK))  # end of archive
    out.seek(0)
    out.write(_header(IMAGE_MEMBER, size))
    out.flush()
    os.fsync(out.fileno())  # a stick pulled out right after the command returns keeps the file
    meter.done(size)
    return size, digest.hexdigest()


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    # GNU headers hold sizes past 8 GiB in the one block the placeholder leaves.
    block = info.tobuf(format=tarfile.GNU_FORMAT)
    assert len(block) == _BLOCK
    return block


def load_image(client: docker.DockerClient, expected_ref: str, source: Path, progress: Progress) -> Transferred:
    """Load `source` into the engine and tag it `expected_ref`; refuse a file made for another recipe
    (`image_mismatch`) or damaged on the way (`image_file_damaged`) and leave no image of it behind."""
    try:
        archive = tarfile.open(source, "r:")
    except FileNotFoundError:
        raise Invalid("image_file_not_found", f"{source} does not exist") from None
    except (tarfile.TarError, OSError) as exc:
        raise _damaged(source, f"it is not an image file ({exc})") from None
    with archive:
        manifest, member = _read_manifest(archive, source)
        if manifest["ref"] != expected_ref:
            raise Invalid(
                "image_mismatch",
                f"{source} holds the sandbox image {manifest['ref']}, but this Labrunner's recipe needs"
                f" {expected_ref}: export the image on a machine with this same Labrunner version",
            )
        present = _find(client, expected_ref)
        if present is not None and present.id == manifest["image_id"]:
            progress(f"{expected_ref} is already present (image {present.short_id}): nothing to load")
            return Transferred(expected_ref, present.id, manifest["size"], manifest["sha256"])
        # A refused file's images are removed again, but only those it brought: a crafted file may
        # also hold an image the engine had (the sandbox image itself), which must stay.
        existed = {each.id for each in client.images.list(all=True)}
        stream = archive.extractfile(member)
        if stream is None:  # _read_manifest saw a regular file: never None, but typed so
            raise _damaged(source, f"its {IMAGE_MEMBER} is not a file")
        _check_save(stream, source, manifest["image_id"])
        hashed = _HashingReader(stream, _Meter(progress, "loaded", manifest["size"]))
        try:
            loaded = [each.id for each in _load(client, hashed, source)]
            if hashed.size != manifest["size"] or hashed.digest.hexdigest() != manifest["sha256"]:
                raise _damaged(source, "its image's SHA-256 does not match the one written beside it")
            if loaded != [manifest["image_id"]]:
                raise Invalid(
                    "image_mismatch",
                    f"{source} loaded image {', '.join(loaded) or 'none'}, not the {manifest['image_id']} it names",
                )
            result = client.images.get(manifest["image_id"])
            _check_label(result, expected_ref, source)
            repository, _, tag = expected_ref.rpartition(":")
            result.tag(repository, tag)
        except BaseException:
            # The save holds this one image (_check_save): the engine's answer may not list it.
            _remove_quietly(client, [] if manifest["image_id"] in existed else [manifest["image_id"]])
            raise
    progress(f"loaded {expected_ref} (image {result.short_id})")
    return Transferred(expected_ref, result.id, hashed.size, manifest["sha256"])


def _damaged(source: Path, why: str) -> AppError:
    return Invalid("image_file_damaged", f"{source} is damaged or incomplete: {why}; export it again")


def _read_manifest(archive: tarfile.TarFile, source: Path) -> tuple[dict[str, Any], tarfile.TarInfo]:
    try:
        member = archive.getmember(IMAGE_MEMBER)
        manifest_file = archive.extractfile(MANIFEST_MEMBER)
        if manifest_file is None or not member.isfile():
            raise KeyError("not files")
        manifest = json.loads(manifest_file.read(1 << 16))
    except (KeyError, tarfile.TarError, OSError, ValueError) as exc:
        raise _damaged(source, f"it holds no readable {MANIFEST_MEMBER} and {IMAGE_MEMBER} ({exc})") from None
    expected_types = {"ref": str, "image_id": str, "sha256": str, "size": int}
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or any(not isinstance(manifest.get(key), kind) for key, kind in expected_types.items())
    ):
        raise _damaged(source, f"its {MANIFEST_MEMBER} is not of the format {FORMAT}")
    if member.size != manifest["size"]:
        raise _damaged(source, f"{IMAGE_MEMBER} is {member.size} bytes, not the {manifest['size']} written beside it")
    return manifest, member


def _check_save(stream: IO[bytes], source: Path, image_id: str) -> None:
    """Refuse, before the engine reads a byte, a save that `sandbox export` did not write: one that
    names tags (the engine tags an image the moment it loads it, so `labrunner-sandbox:<tag>` would
    move before any check), or that holds any image but the one the file names (the engine's answer
    does not always list what it loaded, so extra ones could stay behind). The engine unpacks the save
    into a folder and reads its files there: a member whose path goes through a link (`sub -> .`,
    then `sub/manifest.json`) would replace what a reading by member name saw, so there is none, and
    the listing files are plain files. Only the inner tar's headers are read (seeking past the layers)."""
    try:
        with tarfile.open(fileobj=stream, mode="r:") as saved:
            # As the engine unpacks it: "./manifest.json" lands where "manifest.json" does, and the
            # last member of a name wins.
            members = {os.path.normpath(m.name.lstrip("/")): m for m in saved.getmembers()}
            _refuse_paths_through_links(members, source)
            entries = json.loads(_listing(saved, members, "manifest.json", source) or b"[]")
            named = bool(json.loads(_listing(saved, members, "repositories", source) or b"{}"))
            named |= _oci_named(json.loads(_listing(saved, members, "index.json", source) or b"{}"))
            if not isinstance(entries, list) or any(not isinstance(e, dict) for e in entries):
                raise ValueError("manifest.json is not a list of images")
            held = [_config_id(entry) for entry in entries]
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise _damaged(source, f"its {IMAGE_MEMBER} is not an image archive ({exc})") from None
    if named or any(entry.get("RepoTags") for entry in entries):
        raise _damaged(source, f"its {IMAGE_MEMBER} names image tags, which `sandbox export` never writes")
    if held != [image_id]:
        raise Invalid(
            "image_mismatch",
            f"{source} holds the images {', '.join(held) or 'none'}, not only the {image_id} it names",
        )
    stream.seek(0)


def _oci_named(index: Any) -> bool:
    """Whether an OCI layout's index names images: an engine storing images in containerd tags them
    from these annotations as it loads the save, as the older one does from RepoTags."""
    manifests = index.get("manifests", []) if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise ValueError("index.json is not an OCI image index")
    return any(
        not isinstance(entry, dict) or any(name in (entry.get("annotations") or {}) for name in _OCI_NAME_ANNOTATIONS)
        for entry in manifests
    )


def _refuse_paths_through_links(members: dict[str, tarfile.TarInfo], source: Path) -> None:
    links = {name for name, member in members.items() if member.issym() or member.islnk()}
    for name in members:
        parts = name.split("/")
        if parts[0] == ".." or any("/".join(parts[:i]) in links for i in range(1, len(parts))):
            raise _damaged(source, f"its {IMAGE_MEMBER} holds {name!r}, a path out of it or through a link")


def _listing(saved: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, source: Path) -> bytes | None:
    member = members.get(name)
    if member is None:
        return None
    if not member.isfile():
        raise _damaged(source, f"its {IMAGE_MEMBER} holds {name} as a link or folder, not a file")
    listing = saved.extractfile(member)
    return listing.read(1 << 20) if listing is not None else None


def _config_id(entry: dict[str, Any]) -> str:
    # "<hex>.json" in the engine's own layout, "blobs/sha256/<hex>" in the OCI one.
    config = entry.get("Config")
    if not isinstance(config, str):
        raise ValueError("an image in manifest.json names no Config")
    return "sha256:" + config.rpartition("/")[2].removesuffix(".json")


def _find(client: docker.DockerClient, name: str) -> Any | None:
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def _load(client: docker.DockerClient, data: _HashingReader, source: Path) -> list[Any]:
    try:
        return list(client.images.load(data.chunks()))
    except (docker.errors.ImageLoadError, docker.errors.APIError) as exc:
        raise _damaged(source, f"the Docker engine could not read its image ({exc})") from None


def _check_label(loaded: Any, expected_ref: str, source: object) -> None:
    """Images built by `sandbox build` and the workflow name their content tag in a label; one that
    names another tag was made from another recipe, whatever the ref it travelled under says."""
    label = (loaded.labels or {}).get(image.CONTENT_TAG_LABEL)
    tag = expected_ref.rpartition(":")[2]
    if label is not None and label != tag:
        raise Invalid(
            "image_mismatch", f"{source} holds an image built from the recipe {label}, not {tag} as it claims"
        )


def _remove_quietly(client: docker.DockerClient, image_ids: list[str]) -> None:
    for image_id in image_ids:
        try:
            client.images.remove(image_id)
        except docker.errors.APIError:
            pass  # in use or gone already: nothing tags it, and the error being raised says what failed


class _HashingReader:
    """The image member as chunks for the engine, hashed and counted on the way."""

    def __init__(self, stream: IO[bytes], meter: _Meter) -> None:
        self._stream = stream
        self._meter = meter
        self.digest = hashlib.sha256()
        self.size = 0

    def chunks(self) -> Iterator[bytes]:
        while chunk := self._stream.read(_CHUNK):
            self.digest.update(chunk)
            self.size += len(chunk)
            self._meter.at(self.size)
            yield chunk
        self._meter.done(self.size)


class _Meter:
    """A progress line every _REPORT_EVERY bytes: the CLI shows a long copy is moving."""

    def __init__(self, progress: Progress, verb: str, total: int | None) -> None:
        self._progress = progress
        self._verb = verb
        self._total = total
        self._next = _REPORT_EVERY

    def at(self, done: int) -> None:
        if done >= self._next:
            self._next = done + _REPORT_EVERY
            of = f" of about {_mib(self._total)}" if self._total else ""
            self._progress(f"  {self._verb} {_mib(done)}{of}")

    def done(self, done: int) -> None:
        self._progress(f"  {self._verb} {_mib(done)} in all")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f} MiB"


def pull_image(client: docker.DockerClient, registry: str, expected_ref: str, progress: Progress) -> Transferred:
    """Pull `registry/<repository>:<content tag>` (never a moving tag), check its label and tag it
    `expected_ref`; the registry's name for it is dropped again."""
    if not registry:
        raise Invalid(
            "no_image_registry",
            "no image_registry is set: build the image here with `labrunner sandbox build`,"
            " or load an exported one with `labrunner sandbox load FILE`",
        )
    repository, _, tag = expected_ref.rpartition(":")
    remote = f"{registry}/{repository}"
    progress(f"pulling {remote}:{tag}")
    try:
        _stream_pull(client, remote, tag, progress)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        explanation = str(getattr(exc, "explanation", None) or exc)
        # The engine answers a tag the registry lacks with a 404, a 500 or an error in the stream, by version.
        if isinstance(exc, docker.errors.NotFound) or "manifest unknown" in explanation:
            raise NotFound(
                "image_not_in_registry",
                f"{remote}:{tag} is not in the registry ({explanation}): the workflow publishes the image of every"
                " merge to main; for another version build it here with `labrunner sandbox build`",
            ) from None
        raise Unavailable(
            "registry_unreachable",
            f"cannot pull {remote}:{tag}: {explanation}. Without the registry, build the image here with"
            " `labrunner sandbox build`, or load an exported one with `labrunner sandbox load FILE`",
        ) from None
    pulled = client.images.get(f"{remote}:{tag}")
    try:
        if (pulled.labels or {}).get(image.CONTENT_TAG_LABEL) != tag:
            raise Invalid(
                "image_mismatch",
                f"{remote}:{tag} does not carry the label {image.CONTENT_TAG_LABEL}={tag}: it was not built from"
                " this recipe by the workflow; it is removed again",
            )
        pulled.tag(repository, tag)
    finally:
        # Untag only: under expected_ref the image stays; refused, it goes (unless something else tags it).
        _remove_quietly(client, [f"{remote}:{tag}"])
    progress(f"pulled {expected_ref} (image {pulled.short_id})")
    return Transferred(expected_ref, pulled.id, int(pulled.attrs.get("Size") or 0), "")


def _stream_pull(client: docker.DockerClient, remote: str, tag: str, progress: Progress) -> None:
    last: dict[str, str] = {}
    for event in client.api.pull(remote, tag=tag, stream=True, decode=True):
        if "error" in event:
            detail = str(event.get("errorDetail", {}).get("message") or event["error"])
            raise docker.errors.APIError(f"the pull failed: {detail}", explanation=detail)
        # One line per layer and step ("Downloading", "Pull complete"), not per byte.
        layer, status = str(event.get("id", "")), str(event.get("status", ""))
        if status and last.get(layer) != status:
            last[layer] = status
            progress(f"  {layer + ': ' if layer else ''}{status}")


@contextmanager
def _engine(settings: Settings) -> Iterator[docker.DockerClient]:
    try:
        client = engine.connect(timeout_s=settings.image_transfer_timeout_s)
    except InfraError as exc:
        raise Unavailable(exc.code, exc.message) from None
    try:
        yield client
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        error = engine.as_infra_error(exc)
        raise Unavailable(error.code, error.message) from None
    finally:
        client.close()


def export(settings: Settings, target: Path, progress: Progress) -> Transferred:
    """`labrunner sandbox export FILE`: this recipe's image into FILE."""
    with _engine(settings) as client:
        return export_image(client, image.expected_ref(), target, progress)


def load(settings: Settings, source: Path, progress: Progress) -> Transferred:
    """`labrunner sandbox load FILE`: FILE's image, if it is this recipe's."""
    with _engine(settings) as client:
        return load_image(client, image.expected_ref(), source, progress)


def pull(settings: Settings, progress: Progress) -> Transferred:
    """`labrunner sandbox pull`: this recipe's image from `image_registry`."""
    with _engine(settings) as client:
        return pull_image(client, settings.image_registry, image.expected_ref(), progress)
