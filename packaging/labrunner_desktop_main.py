"""Entry point of the one-file `labrunner-desktop` binary: the whole command line, and the
teacher's window when started without arguments (a double click)."""

import sys

from appliance.cli import main

raise SystemExit(main(sys.argv[1:] or ["desktop"]))
