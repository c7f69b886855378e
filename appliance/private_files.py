"""What other users of this machine must not read: the data folder (the database holds accounts,
hidden tests and students' work; the keys lie beside it) and the TLS key that proves this
appliance's certificate. A data folder the program creates is made owner-only; one it finds open,
or a TLS key school IT left readable by everyone, is said at start and by `labrunner tls`, not
changed: a folder or key shared with a group on purpose stays so."""

from __future__ import annotations

import stat
from pathlib import Path

from appliance.settings import Settings
from appliance.tls import Tls


def _open_to_others(path: Path) -> int | None:
    """The file's mode when users outside its owner and group may read, write or enter it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o007 else None


def warnings(settings: Settings, served: Tls | None) -> list[str]:
    said = []
    mode = _open_to_others(settings.data_dir)
    if mode is not None:
        said.append(
            f"the data folder {settings.data_dir} is open to every user of this machine (mode {mode:04o}): they can"
            " read the database (accounts, hidden tests, students' work); `chmod 700` it"
        )
    said += key_warnings(served)
    return said


def key_warnings(served: Tls | None) -> list[str]:
    mode = None if served is None else _open_to_others(served.key_file)
    if served is None or mode is None:
        return []
    return [
        f"the TLS key {served.key_file} is readable by every user of this machine (mode {mode:04o}): whoever copies"
        " it can pose as this appliance to browsers and classrooms; `chmod 600` it (or 640 with a group)"
    ]
