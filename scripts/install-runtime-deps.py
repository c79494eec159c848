#!/usr/bin/env python3
"""Install the runtime dependencies next to the installed packages.

Usage: install-runtime-deps.py PINS PYLIB_RELDIR

Run by ``meson install`` with the build venv's interpreter. For every package
pinned in PINS (``subprojects/runtime.txt``), the files that pip installed in the
venv are copied into ``$MESON_INSTALL_DESTDIR_PREFIX/PYLIB_RELDIR``, the directory
the installed launchers put on ``sys.path``. The launchers run on the venv's base
interpreter, the one these files were built for, so an installed tree runs
without a venv and without network access.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==")


def pinned(pins: Path) -> list[str]:
    names = []
    for line in pins.read_text().splitlines():
        m = PIN.match(line)
        if m:
            names.append(m.group(1))
    return names


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    pins, reldir = Path(argv[0]), argv[1]
    prefix = os.environ.get("MESON_INSTALL_DESTDIR_PREFIX")
    if not prefix:
        print("install-runtime-deps.py: run me from meson install", file=sys.stderr)
        return 2
    dest = Path(prefix) / reldir
    for name in pinned(pins):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            print(
                f"install-runtime-deps.py: {name} is not installed in "
                f"{sys.prefix}; re-run ./configure",
                file=sys.stderr,
            )
            return 1
        for entry in dist.files or ():
            parts = Path(entry).parts
            # Only what lives in site-packages: no scripts in ../../bin, no caches.
            if ".." in parts or "__pycache__" in parts:
                continue
            src = Path(str(dist.locate_file(entry)))
            if not src.is_file():
                continue
            target = dest / entry
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
