"""Print every member of a one-file binary whose bytes name a given path (the build machine's
checkout or build folder), one per line. Run with the Python of the build's own virtual environment
(it has PyInstaller): `python bundle_leaks.py BINARY PATH...`."""

import sys

from PyInstaller.archive.readers import CArchiveReader

binary, *paths = sys.argv[1:]
archive = CArchiveReader(binary)
for name in archive.toc:
    try:
        data = archive.extract(name)
    except Exception:  # an entry of a kind that has no bytes of its own (a link, a directory)
        continue
    if data and any(path.encode() in data for path in paths):
        print(name)
