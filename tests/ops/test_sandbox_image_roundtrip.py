"""The must-show of the USB-stick way, on the real sandbox image and through the real commands:
`sandbox export` → remove the image → `sandbox load` → `selftest` passes; and a file whose image was
not built from this recipe is refused, leaving the real image as it was.

It removes `labrunner-sandbox:<tag>` for a minute, which breaks every other test or appliance using
the engine meanwhile: it runs in CI (one suite at a time), and on a developer machine only with
LABRUNNER_TEST_IMAGE_ROUNDTRIP=1. Whatever happens, the image is loaded back from the export."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import docker
import docker.errors
import pytest

from appliance.sandbox_transfer import load_image
from runner import engine
from runner.image import CONTENT_TAG_LABEL, expected_ref
from tests.ops.throwaway_images import manifest_for, present, write_image_file
from tests.requirements import require_sandbox
from tests.runner.appliance_process import run_cli

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(
        not (os.environ.get("CI") or os.environ.get("LABRUNNER_TEST_IMAGE_ROUNDTRIP")),
        reason="removes the machine's sandbox image for a minute: runs in CI, or with LABRUNNER_TEST_IMAGE_ROUNDTRIP=1",
    ),
]


def _labrunner(data_dir: Path, *args: str, timeout_s: int) -> subprocess.CompletedProcess[str]:
    return run_cli("--data-dir", str(data_dir), *args, timeout_s=timeout_s)


def _impostor_file(client: docker.DockerClient, tmp_path: Path, ref: str) -> tuple[Path, str]:
    """A file that says it holds `ref` but holds an image built from another recipe (FROM scratch)."""
    context = tmp_path / "impostor"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY note.txt /note.txt\n")
    (context / "note.txt").write_text("not the sandbox\n")
    impostor, _ = client.images.build(
        path=str(context), labels={CONTENT_TAG_LABEL: "0000000000000000"}, rm=True, pull=False
    )
    saved = b"".join(impostor.save(named=False))
    client.images.remove(impostor.id)
    path = tmp_path / "impostor.tar"
    write_image_file(path, saved, manifest_for(saved, ref, impostor.id))
    return path, impostor.id


def test_export_remove_load_then_selftest_passes_and_a_foreign_image_is_refused(tmp_path: Path) -> None:
    require_sandbox()
    ref = expected_ref()
    data_dir = tmp_path / "data"
    client = engine.connect(timeout_s=1800)
    try:
        original = client.images.get(ref)
        users = client.containers.list(all=True, filters={"ancestor": original.id})
        assert not users, f"containers still use {ref}, so it cannot be removed: {[c.name for c in users]}"
        export = tmp_path / "sandbox-image.tar"
        exported = _labrunner(data_dir, "sandbox", "export", str(export), timeout_s=1800)
        assert exported.returncode == 0, exported.stderr
        assert f"image file written: {export}" in exported.stdout and "exported" in exported.stdout
        assert not export.with_name(export.name + ".partial").exists()
        try:
            client.images.remove(ref)
            assert not present(client, ref) and not present(client, original.id)
            loaded = _labrunner(data_dir, "sandbox", "load", str(export), timeout_s=1800)
            assert loaded.returncode == 0, loaded.stderr
            assert client.images.get(ref).id == original.id
        finally:
            if not present(client, ref):  # put the shared image back, whatever failed above
                load_image(client, ref, export, lambda line: None)
        selftest = _labrunner(data_dir, "selftest", timeout_s=900)
        assert selftest.returncode == 0, selftest.stdout + selftest.stderr
        assert " 0 failed" in selftest.stdout, selftest.stdout

        impostor_file, impostor_id = _impostor_file(client, tmp_path, ref)
        refused = _labrunner(data_dir, "sandbox", "load", str(impostor_file), timeout_s=300)
        assert refused.returncode == 1 and "error (image_mismatch)" in refused.stderr, refused.stderr
        assert client.images.get(ref).id == original.id
        assert not present(client, impostor_id)
    finally:
        client.close()
