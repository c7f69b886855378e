"""What `labrunner --version` prints: the program's version, the git commit it was built from and
the sandbox image it needs (the content tag of the sandbox files it carries).

The commit comes from `build_info.json` beside this module when a build baked it in (the one-file
binary has no .git), else from git when running from a checkout, else it is "unknown" (a wheel).
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

BAKED_FILE = Path(__file__).resolve().parent / "build_info.json"
_CHECKOUT = Path(__file__).resolve().parent.parent
UNKNOWN = "unknown"
_GIT_TIMEOUT_S = 10


def version() -> str:
    try:
        return metadata.version("labrunner")
    except metadata.PackageNotFoundError:
        return UNKNOWN


def git_commit(root: Path = _CHECKOUT) -> str | None:
    """The checkout's commit (12 hex digits, "-dirty" when tracked files differ from it), or None
    when `root` is not a git checkout or git is missing."""
    if not (root / ".git").exists():
        return None
    try:
        head = _git(root, "rev-parse", "--short=12", "HEAD")
        changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if changed else "")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=_GIT_TIMEOUT_S
    )
    return done.stdout.strip()


def commit() -> str:
    if BAKED_FILE.is_file():
        return str(json.loads(BAKED_FILE.read_text(encoding="utf-8"))["commit"])
    return git_commit() or UNKNOWN


def baked(commit_id: str) -> str:
    """The contents of `build_info.json` for a build of `commit_id`."""
    return json.dumps({"commit": commit_id}) + "\n"


def describe() -> str:
    from runner.image import expected_ref

    return f"labrunner {version()}\ncommit {commit()}\nsandbox image {expected_ref()}"
