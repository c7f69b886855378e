"""The server's log lines (security review, issue 9, finding 11): text a sandbox, a user or a
request chose is logged with its control characters escaped, so it can neither forge log lines
nor send escape sequences to the terminal running the server.

Checked through the handler `labrunner` itself installs (`appliance.cli.main`), not a copy.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import cli
from appliance.logs import CONTINUATION

EVIL = "\x1b[2J\x1b]0;pwned\x07done\r\nFAKE 2026 INFO admin logged in\x9b31m\u2028x\x00"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


class Output:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def read(self) -> str:
        text = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return text


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[Output]:
    """Logging as `labrunner` configures it; its handler's terminal swapped for a buffer."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    assert cli.main(["--data-dir", str(tmp_path), "migrate", "--status"]) == 0
    installed = [h for h in root.handlers if h not in handlers]
    try:
        assert len(installed) == 1 and isinstance(installed[0], logging.StreamHandler), installed
        output = Output(io.StringIO())
        installed[0].setStream(output.stream)
        yield output
    finally:
        for handler in installed:
            root.removeHandler(handler)
        root.setLevel(level)


def test_untrusted_text_in_a_record_stays_on_one_line(configured: Output) -> None:
    # What the worker logs when a sandbox reports an infrastructure failure in its own words.
    logging.getLogger("runner.worker").warning(
        "job %d: infrastructure failure %s (%s); now %s", 7, "sandbox_error", EVIL, "queued"
    )
    err = configured.read()
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    line = err.rstrip("\n")
    assert RECORD_START.match(line) and " WARNING runner.worker: job 7: infrastructure failure" in line, line
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028]", line), repr(line)
    assert "\\x1b[2J\\x1b]0;pwned\\x07done\\r\\nFAKE 2026 INFO admin logged in\\x9b31m\\u2028x\\x00" in line, line


def test_untrusted_text_in_the_message_itself_and_in_a_traceback(configured: Output) -> None:
    log = logging.getLogger("appliance.http.middleware")
    log.info("a message built before logging: " + EVIL)  # untrusted text in the format string itself
    try:
        raise ValueError(EVIL)
    except ValueError:
        log.exception("unhandled error on %s %s", "GET", "/api/\x1b[31m\n2026-01-01 00:00:00,000 INFO forged")
    lines = configured.read().splitlines()
    # Exactly two records: every other line is a traceback line, indented under its record.
    assert [bool(RECORD_START.match(line)) for line in lines].count(True) == 2, lines
    assert RECORD_START.match(lines[0]) and "\\x1b[2J" in lines[0] and "\\nFAKE 2026" in lines[0], lines
    assert RECORD_START.match(lines[1]) and "/api/\\x1b[31m\\n2026-01-01" in lines[1], lines
    assert len(lines) > 3 and all(line.startswith(CONTINUATION) for line in lines[2:]), lines
    assert any("Traceback" in line for line in lines[2:]), lines
    # The exception's text keeps no escape character, and its forged line is an indented one.
    assert not any(re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", line) for line in lines), lines
    assert f"{CONTINUATION}FAKE 2026 INFO admin logged in\\x9b31m\\u2028x\\x00" in lines
