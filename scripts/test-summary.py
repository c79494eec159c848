#!/usr/bin/env python3
"""Print one closing line for a ``meson test`` run: ``check: N passed, N failed``.

Usage: test-summary.py BUILD_DIR

Reads ``meson-logs/testlog.json`` of the last run. Skipped tests are counted apart,
never as passed; expected failures count as passed only as meson counts them.
Exits non-zero when a test failed, timed out or none ran.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def main(argv: list[str]) -> int:
    log = Path(argv[0]) / "meson-logs" / "testlog.json"
    if not log.is_file():
        print(f"test-summary: no test log at {log}", file=sys.stderr)
        return 1
    results: Counter[str] = Counter()
    for line in log.read_text().splitlines():
        if line.strip():
            results[json.loads(line)["result"]] += 1
    passed = results["OK"] + results["EXPECTEDFAIL"]
    failed = sum(
        results[r] for r in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS", "INTERRUPT")
    )
    skipped = results["SKIP"]
    print(f"check: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
