"""What both PyInstaller specs bundle: the code, and every file the program reads at run time.

Each package's files are collected from the installed copy (what the wheel carries), to the same
place inside the bundle, so the lookup `Path(package.__file__).parent` finds them unchanged in a
frozen binary. The sandbox folder is carried whole (sources too): `sandbox build` sends it to
Docker, and its content tag must equal the checkout's so the binary uses the image the checkout
built. Imported by the specs only (PyInstaller's hook helpers exist at build time).
"""

from __future__ import annotations

import os

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

# Set by packaging/build-binary.sh: the git commit baked in (the binary has no .git).
BUILD_INFO_ENV = "LABRUNNER_BUILD_INFO"


def datas() -> list[tuple[str, str]]:
    return [
        *collect_data_files("schema"),
        *collect_data_files("appliance"),
        *collect_data_files("ui"),
        *collect_data_files("sandbox", include_py_files=True, excludes=["**/__pycache__"]),
        # `--version` reads the version from the package's metadata.
        *copy_metadata("labrunner"),
        (os.environ[BUILD_INFO_ENV], "appliance"),
    ]


def hidden_imports() -> list[str]:
    # Every module of ours, whether or not the analysis sees a plain import of it.
    return [*(name for package in ("appliance", "runner", "sandbox", "ui") for name in collect_submodules(package))]
