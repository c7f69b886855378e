"""The sandbox image: its recipe, the harness that runs inside a container, and the wire protocol.

Stdlib only: this package is imported both by the host runner and by the image's own python3.
"""
