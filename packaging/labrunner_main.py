"""Entry point of the one-file `labrunner` binary (PyInstaller runs this as its main script).

It lives outside appliance/ because PyInstaller puts the script's folder on the import path, and
appliance/http would then shadow the standard library's http.
"""

from appliance.cli import main

raise SystemExit(main())
