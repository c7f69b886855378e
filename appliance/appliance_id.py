"""This appliance's stable id, kept in its data folder (not in the database, so a restore of another
machine's database does not change who this machine is). Backups carry it, and a restore refuses a
foreign appliance's backup unless told the machine is new."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

ID_FILE = "appliance-id"
_VALID = re.compile(r"^[0-9a-f]{32}$")


def read(data_dir: Path) -> str | None:
    path = data_dir / ID_FILE
    if not path.exists():
        return None
    value = path.read_text(encoding="ascii").strip()
    if not _VALID.match(value):
        raise ValueError(f"{path} does not hold an appliance id (32 hex digits)")
    return value


def write(data_dir: Path, value: str) -> None:
    if not _VALID.match(value):
        raise ValueError(f"not an appliance id: {value!r}")
    tmp = data_dir / (ID_FILE + ".tmp")
    tmp.write_text(value + "\n", encoding="ascii")
    os.replace(tmp, data_dir / ID_FILE)


def ensure(data_dir: Path) -> str:
    """The id, made at the first need."""
    value = read(data_dir)
    if value is None:
        value = uuid.uuid4().hex
        write(data_dir, value)
    return value
