"""Python's syntax check, in a fork of the harness: no interpreter to start for it (a python3 -c
costs about 15 ms of CPU a job), and the image's own python3 compiles the source exactly as the
program's start-up would.

Compiling runs nothing of the source, so the fork needs none of a program's set-up: it stays
undumpable (it holds a copy of the harness's memory, the job's key among it), and no program is
alive while it runs. Only a SyntaxError (IndentationError, TabError) fails the check, printed as
python3 prints an uncaught one; anything else compile() raises (null bytes, no memory) is left for
the run to report, as it always was.
"""

from __future__ import annotations

import os
import traceback
import warnings
from typing import NoReturn

from sandbox.protocol import PYTHON_SYNTAX_CHECK

COMMAND = PYTHON_SYNTAX_CHECK
_MAX_MESSAGE_BYTES = 8192


def run(path: str, report_w: int) -> NoReturn:
    """In the forked child, set up as a program would be but for exec: check and exit."""
    os.close(report_w)  # nothing to exec: the parent may start watching now
    code = 0
    try:
        warnings.simplefilter("ignore")  # the run's to print
        with open(path, "rb") as source:
            text = source.read()
        try:
            compile(text, path, "exec", dont_inherit=True)
        except SyntaxError as error:
            message = "".join(traceback.format_exception_only(SyntaxError, error))
            os.write(1, message.encode(errors="replace")[:_MAX_MESSAGE_BYTES])
            code = 1
    except BaseException:  # not a syntax error: the run reports it as python3 would
        pass
    finally:
        os._exit(code)
