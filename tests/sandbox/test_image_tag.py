"""The image tag follows the content of sandbox/, without Docker."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from runner import image


@pytest.fixture
def sandbox_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "sandbox"
    shutil.copytree(image.SANDBOX_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(image, "SANDBOX_DIR", copy)
    return copy


def test_tags_are_stable_and_short() -> None:
    assert image.image_tag() == image.image_tag()
    assert re.fullmatch(r"labrunner-sandbox:[0-9a-f]{16}", image.expected_ref())
    assert re.fullmatch(r"labrunner-sandbox-base:[0-9a-f]{16}", image.base_ref())


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
