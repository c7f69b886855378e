"""The harness: runs inside a sandbox container on the image's own python3 (stdlib only).

It reads one job from stdin, compiles once, runs every test as a fresh process under limits in a
fresh working directory, and writes protocol events to stdout. It never imports `appliance` or
`runner`.
"""
