"""Pictures of graphical programs: PNG and APNG writing, Xvfb screen reading, and the shim.

Stdlib only, and imported two ways: by the harness as `sandbox.graphics`, and inside a student's
program (by `boot/sitecustomize.py`) under a private name, so modules here import each other
relatively and never by the name `sandbox`.
"""
