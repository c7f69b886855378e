"""The image tag follows the content of sandbox/, without Docker."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runner import image


@pytest.fixture
def sandbox_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "sandbox"
    shutil.copytree(image.SANDBOX_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(image, "SANDBOX_DIR", copy)
    return copy


def _tag_in_a_fresh_interpreter(sandbox_dir: Path, hash_seed: str) -> str:
    code = (
        "import sys; from pathlib import Path; from runner import image; "
        "image.SANDBOX_DIR = Path(sys.argv[1]); print(image.image_tag(), image.base_ref())"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", code, str(sandbox_dir)], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


def test_tags_are_stable_and_short(sandbox_copy: Path) -> None:
    tag, base = image.image_tag(), image.base_ref()
    assert re.fullmatch(r"[0-9a-f]{16}", tag)
    assert image.expected_ref() == f"labrunner-sandbox:{tag}"
    assert re.fullmatch(r"labrunner-sandbox-base:[0-9a-f]{16}", base)
    # The same bytes give the same tags whatever else differs: every file written again (new
    # inode, directory order, times and mode), and other interpreters with other hash seeds.
    for path in sorted(sandbox_copy.rglob("*"), reverse=True):
        if path.is_file():
            data, mode = path.read_bytes(), path.stat().st_mode
            path.unlink()
            path.write_bytes(data)
            os.utime(path, (1_000_000_000, 1_000_000_000))
            path.chmod(mode ^ 0o040)
    assert (image.image_tag(), image.base_ref()) == (tag, base)
    for seed in ("1", "2"):
        assert _tag_in_a_fresh_interpreter(sandbox_copy, seed) == f"{tag} {base}"
    # One byte anywhere, and they are not the same any more.
    script = sandbox_copy / "recipe" / "build-base.sh"
    script.write_bytes(script.read_bytes().replace(b"\n", b" \n", 1))
    assert image.image_tag() != tag and image.base_ref() != base


def test_only_content_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Not where the checkout lives, nor what Python cached beside the sources.
    tag, base = image.image_tag(), image.base_ref()
    copy = tmp_path / "elsewhere"
    shutil.copytree(image.SANDBOX_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "harness" / "__pycache__").mkdir()
    (copy / "harness" / "__pycache__" / "job.cpython-311.pyc").write_bytes(b"cache")
    monkeypatch.setattr(image, "SANDBOX_DIR", copy)
    assert (image.image_tag(), image.base_ref()) == (tag, base)


@pytest.mark.parametrize("changed", ["harness/job.py", "protocol.py", "recipe/Dockerfile"])
def test_harness_changes_make_a_new_image_on_the_same_base(sandbox_copy: Path, changed: str) -> None:
    tag, base = image.image_tag(), image.base_ref()
    with (sandbox_copy / changed).open("a") as f:
        f.write("\n")
    assert image.image_tag() != tag
    assert image.base_ref() == base


def test_a_new_file_makes_a_new_image(sandbox_copy: Path) -> None:
    tag = image.image_tag()
    (sandbox_copy / "harness" / "extra.py").write_text("")
    assert image.image_tag() != tag


@pytest.mark.parametrize("changed", ["recipe/packages.txt", "recipe/build-base.sh"])
def test_package_changes_make_a_new_base(sandbox_copy: Path, changed: str) -> None:
    tag, base = image.image_tag(), image.base_ref()
    with (sandbox_copy / changed).open("a") as f:
        f.write("\n")
    assert image.base_ref() != base
    assert image.image_tag() != tag
