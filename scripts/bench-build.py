#!/usr/bin/env python3
"""Benchmark: a no-op ``ninja`` and a whole-tree ``ninja clippy``.

Usage: bench-build.py BUILD_DIR

Builds once so that the tree is up to date, then times a ninja run with nothing
changed and a ``ninja clippy`` run, a few times each, and prints the best and the
median in seconds next to their targets (1 s and 2 s).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    build = Path(argv[0])
    ninja = str(Path(sys.executable).parent / "ninja")
    subprocess.run([ninja, "-C", str(build)], check=True, stdout=subprocess.DEVNULL)
    for label, cmd, target in (
        ("no-op ninja", [ninja, "-C", str(build)], 1.0),
        ("ninja clippy", [ninja, "-C", str(build), "clippy"], 2.0),
    ):
        runs = [timed(cmd) for _ in range(5)]
        print(
            f"{label:>14}: best {min(runs):.3f} s, median "
            f"{statistics.median(runs):.3f} s (target < {target:.0f} s)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
