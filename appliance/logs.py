"""The server's log output: one record is one line, whatever text a record carries.

Log messages interpolate text nobody trusts: a sandbox's failure messages, usernames, file names,
request paths. Written verbatim to the terminal running the server, that text could move the
cursor, clear the screen or retitle the window (escape sequences), or forge whole log lines
(CR, LF). `SafeFormatter` escapes every control character of the formatted line, so such text
shows as `\\x1b[2J` or `\\n` instead. Tracebacks keep their line breaks, but each of their lines
is indented under the record, so none of them can pass for a record of its own.

Installed once, on the root logger, by `configure_logging` (called by the command line), so it
covers every logger, the runner's included, without the runner importing the appliance.
"""

from __future__ import annotations

import collections
import logging
import re
import sys
from typing import IO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# C0 controls (CR, LF, ESC, tab …), DEL, C1 controls (NEL, CSI …), the Unicode line and
# paragraph separators, and the bidirectional overrides that reorder what a terminal shows.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Every line of a traceback or stack under a record starts with this, never with a timestamp.
CONTINUATION = "  | "


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` on one line with every control character spelled out (`\\x1b`, `\\n`, `\\u2028`)."""
    return _CONTROLS.sub(_escape_char, text)


def _indented_block(text: str) -> str:
    """A multi-line block (a traceback) whose lines all belong visibly to the record above."""
    safe = _CONTROLS_BUT_NEWLINE.sub(_escape_char, text)
    return "\n".join(CONTINUATION + line for line in safe.split("\n"))


class SafeFormatter(logging.Formatter):
    """A Formatter whose records cannot inject lines or terminal escape sequences."""

    def format(self, record: logging.LogRecord) -> str:
        # As logging.Formatter.format, except that a traceback another handler formatted and
        # cached on the record (`exc_text`, verbatim) is never reused unescaped.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + _indented_block(record.exc_text)
        if record.stack_info:
            text += "\n" + self.formatStack(record.stack_info)
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: object) -> str:
        return _indented_block(super().formatException(ei))  # type: ignore[arg-type]

    def formatStack(self, stack_info: str) -> str:
        return _indented_block(super().formatStack(stack_info))


def configure_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Send every logger's records to `stream` (default: standard error) through `SafeFormatter`.

    Replaces a handler an earlier call installed, so calling it twice never doubles the output.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_labrunner", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(SafeFormatter(FORMAT))
    handler._labrunner = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class ErrorTail(logging.Handler):
    """The last `lines` warnings and errors of every logger, formatted as the log shows them, for
    the admin's dashboard (the appliance may log to a terminal nobody watches)."""

    def __init__(self, lines: int) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(SafeFormatter(FORMAT))
        self._lines: collections.deque[str] = collections.deque(maxlen=lines)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The first line only: a traceback would push the other records out of a short tail.
            self._lines.append(self.format(record).split("\n", 1)[0])
        except Exception:  # a broken record must not break the code that logged it
            self.handleError(record)

    def lines(self) -> list[str]:
        return list(self._lines)

    def install(self) -> None:
        logging.getLogger().addHandler(self)

    def remove(self) -> None:
        logging.getLogger().removeHandler(self)
