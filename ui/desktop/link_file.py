"""The one-time link handed to the system browser without putting it on a command line.

A browser is started with its address as an argument, and every user of the machine can read a
process's arguments (`ps`, /proc/PID/cmdline): another user there could take the link and redeem it
from loopback before the browser does, and be logged in as the teacher (or, on the first start, do
the setup and make the admin). So the browser gets a file instead: a page only this user can read
(0600), in the data folder, that forwards to the link. It is replaced on every start; a link in it
works once and expires (desktop_login_link_s)."""

from __future__ import annotations

import html
import os
from pathlib import Path

from appliance.atomic_files import replace_with

LINK_FILE = "desktop-link.html"


def write(data_dir: Path, url: str) -> Path:
    """The page forwarding to `url`, written owner-only and never through what is there already."""
    path = data_dir / LINK_FILE
    quoted = html.escape(url, quote=True)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer">\n'
        f'<meta http-equiv="refresh" content="0;url={quoted}"><title>Labrunner</title></head>\n'
        f'<body><p><a href="{quoted}">Open Labrunner</a></p></body></html>\n'
    )
    replace_with(path, page.encode(), 0o600, suffix=f".{os.getpid()}")
    return path
