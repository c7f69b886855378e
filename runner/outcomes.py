"""How a program's ending is told to a student, beyond the verdict: their own file names in its
messages, a hint when it ran out of input, and whether the runner stopped it.

Runtimes name the sandbox's directories in their messages (CPython and Node make the program's
path absolute: "/work/run/main.py", "/work/build/main.js:3"); a student wrote "main.py" and
knows nothing of the sandbox. Only those exact directory prefixes go, nothing else of the text.
"""

from __future__ import annotations

import re

from sandbox.protocol import BUILD_DIR, RUN_DIR

# A sandbox directory where a path starts: not inside a longer path or word ("/x/work/run/").
_SANDBOX_DIR = re.compile(rb"(?<![\w./-])(?:%b|%b)/" % (re.escape(RUN_DIR.encode()), re.escape(BUILD_DIR.encode())))

# What each runtime prints, last, when the program read past the end of its input.
_INPUT_RAN_OUT = {
    "python": (
        b"EOFError: EOF when reading a line",
        "Your program asked for more input than it was given (input() found no more lines).",
    ),
    "java": (
        b'Exception in thread "main" java.util.NoSuchElementException',
        "Your program asked for more input than it was given (the Scanner found no more input).",
    ),
}


def student_paths(data: bytes) -> bytes:
    """`data` with the sandbox's run and build directories taken off the paths in it."""
    return _SANDBOX_DIR.sub(b"", data)


def hint(language: str, verdict: str | None, stderr: str | None) -> str | None:
    """A sentence on why the program failed, where its own message is not plain to a beginner."""
    if verdict != "runtime_error" or not stderr or language not in _INPUT_RAN_OUT:
        return None
    marker, sentence = _INPUT_RAN_OUT[language]
    return sentence if marker.decode() in stderr else None


def stopped_at_wall_time(verdict: str | None, signal: int | None) -> bool:
    """Whether the runner stopped the program at its wall time and judged what it drew: the one
    way a program a signal ended is judged on its output (a graphical program whose window never
    closes; every other signal is a verdict of its own)."""
    return signal is not None and verdict in ("accepted", "wrong_answer")
