"""Entry point of the one-file `labrunner` binary (PyInstaller runs this as its main script).

It lives outside appliance/ because PyInstaller puts the script's folder on the import path, and
appliance/http would then shadow the standard library's http.
"""

import os

from appliance.cli import main

# A binary is an install on a classroom machine, never a developer's checkout: production unless
# LABRUNNER_ENV or --env says otherwise (packaging/start.sh does the same).
os.environ.setdefault("LABRUNNER_ENV", "production")

raise SystemExit(main())
