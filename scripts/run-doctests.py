#!/usr/bin/env python3
"""Run the ``>>>`` examples of Python modules and reStructuredText files.

Usage: run-doctests.py FILES...

Each ``.py`` file is imported from the source tree as the real package module (its
dotted name is derived from its path relative to the current directory, the source
root), so the examples run against the code itself, not a copy. ``.rst`` files run
with ``doctest.testfile``. When :mod:`qemu_api.bql` exists, the big lock is taken
before each file's examples and released afterwards, as QEMU's ``bql_start_test``
does for Rust doctests. Exits non-zero when any example fails or a file has none
to import.
"""

from __future__ import annotations

import doctest
import importlib
import sys
from pathlib import Path

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_name(path: Path, root: Path) -> str:
    rel = path.resolve().relative_to(root.resolve()).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def run_one(path: Path, root: Path) -> tuple[int, int]:
    try:
        bql = importlib.import_module("qemu_api.bql")
    except ImportError:
        bql = None
    if bql is not None and not bql.bql_locked():
        bql.bql_lock()
    try:
        if path.suffix == ".rst":
            res = doctest.testfile(str(path), module_relative=False, optionflags=FLAGS)
        else:
            module = importlib.import_module(module_name(path, root))
            res = doctest.testmod(module, optionflags=FLAGS)
    finally:
        if bql is not None and bql.bql_locked():
            try:
                bql.bql_unlock()
            except RuntimeError as e:
                print(f"{path}: the examples left the BQL unreleasable: {e}")
                return (1, 0)
    return (res.failed, res.attempted)


def main(argv: list[str]) -> int:
    root = Path.cwd()
    sys.path.insert(0, str(root))
    failed = attempted = 0
    for arg in argv:
        f, a = run_one(Path(arg), root)
        failed += f
        attempted += a
        print(f"{arg}: {a} examples, {f} failed")
    print(f"doctest: {attempted - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
