"""Entry point of the one-file `labrunner-desktop` binary: the whole command line, and the
teacher's window when started without arguments (a double click)."""

import os
import sys

from appliance.cli import main

# A binary is an install on a classroom machine, never a developer's checkout: production unless
# LABRUNNER_ENV or --env says otherwise (packaging/start.sh does the same).
os.environ.setdefault("LABRUNNER_ENV", "production")

raise SystemExit(main(sys.argv[1:] or ["desktop"]))
