"""Writing a file whole or not at all, never through what is already there.

The data goes to a fresh temporary file beside the target, made with O_EXCL and O_NOFOLLOW after
removing whatever had its name, then is flushed to disk and renamed over the target. A crash or a
full disk leaves the old file or the whole new one, never half of one; and a link someone planted
under the temporary name (a shared USB stick, /tmp, a data folder others can write to) is never
written through.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def replacing(path: Path, mode: int = 0o644, suffix: str = ".tmp") -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content into; it becomes `path` when the block ends."""
    partial = path.with_name(path.name + suffix)
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def replace_with(path: Path, data: bytes, mode: int = 0o644, suffix: str = ".tmp") -> None:
    with replacing(path, mode, suffix) as out:
        out.write(data)
