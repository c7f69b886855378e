"""The harness's file handling, run on the host (it is plain stdlib code), without Docker."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sandbox.harness import workspace


def test_emptying_survives_what_a_program_can_build(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not the sandbox's")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # A tree deeper than any recursion limit, descriptor budget or PATH_MAX...
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(3000):
        os.mkdir("d", dir_fd=fd)
        fd, parent = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
        os.close(parent)
    os.close(fd)
    # ...locked directories, symlinks out of the sandbox, unreadable files, odd names.
    (scratch / "locked").mkdir()
    (scratch / "locked" / "inner").write_text("x")
    os.chmod(scratch / "locked", 0)
    (scratch / "to-outside").symlink_to(outside)
    (scratch / "locked-file").write_text("x")
    os.chmod(scratch / "locked-file", 0)
    (scratch / os.fsdecode(b"\xff-not-utf8")).write_text("x")
    (scratch / ".labrunner-wipe-0").mkdir()  # the name the wipe itself uses

    workspace.empty_directory(str(scratch))

    assert os.listdir(scratch) == []
    assert (outside / "keep").read_text() == "not the sandbox's"


def test_snapshot_and_lay_out(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "main").write_bytes(b"\x7fELF")
    os.chmod(build / "main", 0o755)
    (build / "pkg").mkdir()
    (build / "pkg" / "Helper.class").write_bytes(b"\xca\xfe")
    (build / "escape").symlink_to("/etc/passwd")

    artifacts = workspace.snapshot(str(build))
    assert sorted(a.path for a in artifacts) == ["main", "pkg/Helper.class"]  # no symlink followed

    run = tmp_path / "run"
    workspace.lay_out(str(run), artifacts)
    assert (run / "pkg" / "Helper.class").read_bytes() == b"\xca\xfe"
    assert stat.S_IMODE(os.stat(run / "main").st_mode) == 0o555
    assert stat.S_IMODE(os.stat(run / "pkg" / "Helper.class").st_mode) == 0o444
