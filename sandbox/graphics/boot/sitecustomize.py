"""Start-up hook of graphical Python programs: the harness puts this folder on their PYTHONPATH.

Python imports `sitecustomize` before the program runs. This one loads the graphics package under
a private name (so a program's own module called `sandbox` or `png` is never shadowed by ours)
and installs the shim's hooks. It replaces Debian's sitecustomize, which only installs apport's
crash reporter, absent from the image.
"""

import importlib
import importlib.util
import os
import sys


def _install() -> None:
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        "_labrunner_graphics", os.path.join(package_dir, "__init__.py"), submodule_search_locations=[package_dir]
    )
    if spec is None or spec.loader is None:
        return
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    importlib.import_module("_labrunner_graphics.shim").install()


_install()
