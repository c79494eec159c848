#!/usr/bin/env python3
"""Byte-compile Python sources into a pycache tree outside the source tree.

Usage: pycompile.py PYCACHE_PREFIX STAMP FILES...

FILES that are not ``.py`` files (a generator's other outputs) are skipped.

Uses ``sys.pycache_prefix`` (PEP 3147/``-X pycache_prefix``) so that the source tree
stays clean; the launchers and tests run with the same prefix and find the files.
"""

from __future__ import annotations

import py_compile
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    prefix, stamp, *files = argv
    sys.pycache_prefix = str(Path(prefix).resolve())
    for f in files:
        if not f.endswith(".py"):
            continue
        try:
            py_compile.compile(f, doraise=True)
        except py_compile.PyCompileError as e:
            print(e.msg, file=sys.stderr)
            return 1
    Path(stamp).write_text("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
