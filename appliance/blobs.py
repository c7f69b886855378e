"""Content-addressed blob store on disk: identical content stored once, compressed when it helps.

Writes go to a temporary file in the same folder, are fsynced, then renamed into place, so a
crash leaves either the whole blob or nothing under its name.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zlib
from pathlib import Path

_RAW, _ZLIB = b"R", b"Z"
_HASH = re.compile(r"^[0-9a-f]{64}$")


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        if not _HASH.match(digest):
            raise ValueError(f"not a blob hash: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if target.exists():
            # A fresh mtime tells the purge this blob is wanted again, before any row says so.
            os.utime(target)
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        packed = zlib.compress(data, 6)
        body = _ZLIB + packed if len(packed) < len(data) * 0.9 else _RAW + data
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        body = self.path_for(digest).read_bytes()
        data = zlib.decompress(body[1:]) if body[:1] == _ZLIB else body[1:]
        if hashlib.sha256(data).hexdigest() != digest:
            raise ValueError(f"blob {digest} is corrupt")
        return data

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def delete(self, digest: str) -> None:
        self.path_for(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        return [p.parent.name + p.name for p in self.root.glob("??/*") if not p.name.startswith(".tmp-")]

    def remove_partials(self) -> int:
        """Temporary files left by a crash mid-write; called at start-up."""
        count = 0
        for partial in self.root.glob("??/.tmp-*"):
            partial.unlink(missing_ok=True)
            count += 1
        return count
