"""Which programs are graphical, when neither the problem nor the run says so.

A Python program is graphical when it imports a drawing toolkit the image has (pygame,
turtle/tkinter, matplotlib) — or one it lacks, so that the sandbox's graphics shim explains the
missing module instead of the program failing with a bare ImportError.
"""

from __future__ import annotations

import ast
import re

DRAWING_MODULES = frozenset({"pygame", "turtle", "tkinter", "matplotlib"})
# These open X windows, so their programs need the virtual display (Xvfb).
WINDOW_MODULES = frozenset({"turtle", "tkinter"})
# Window toolkits and sound libraries that are not in the sandbox image.
MISSING_MODULES = frozenset(
    {
        "arcade",
        "kivy",
        "OpenGL",
        "pgzero",
        "pgzrun",
        "playsound",
        "pyaudio",
        "pyglet",
        "pyray",
        "PyQt5",
        "PyQt6",
        "PySide2",
        "PySide6",
        "raylib",
        "simpleaudio",
        "ursina",
        "winsound",
        "wx",
    }
)
# For code that does not parse (it will fail to run anyway): import statements at a line's start.
_IMPORT_LINE = re.compile(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", re.MULTILINE)


def imported_modules(code: str) -> frozenset[str]:
    """The top-level names of every module `code` imports, wherever the import statement is."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return frozenset(_IMPORT_LINE.findall(code))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.partition(".")[0])
    return frozenset(names)


def is_graphical(language: str, code: str) -> bool:
    return language == "python" and bool(imported_modules(code) & (DRAWING_MODULES | MISSING_MODULES))


def needs_display(code: str) -> bool:
    """Whether a graphical program gets a virtual X display: for tkinter and turtle, and when its
    imports name no toolkit the image has (it was said to be graphical; better safe)."""
    modules = imported_modules(code)
    return bool(modules & WINDOW_MODULES) or not modules & DRAWING_MODULES
