#!/usr/bin/env python3
"""Create or reuse the build tree's tool venv from the pins in subprojects/.

Usage: mkvenv.py VENV_DIR SUBPROJECTS_DIR GROUP [GROUP ...]

The venv is reused when the interpreter and the pinned groups are unchanged (a stamp
holds their hash), so re-running configure is quick. Otherwise it is created anew and
every group is installed with pip.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import venv
from pathlib import Path

STAMP = "pyqemu-pins.sha256"


def pins_digest(subprojects: Path, groups: list[str]) -> str:
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(str(Path(sys.executable).resolve()).encode())
    for group in groups:
        path = subprojects / f"{group}.txt"
        h.update(group.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    venv_dir = Path(argv[0])
    subprojects = Path(argv[1])
    groups = argv[2:]
    for group in groups:
        if not (subprojects / f"{group}.txt").is_file():
            print(f"ERROR: no pin file {subprojects}/{group}.txt", file=sys.stderr)
            return 1
    digest = pins_digest(subprojects, groups)
    stamp = venv_dir / STAMP
    if stamp.is_file() and stamp.read_text().strip() == digest:
        print(f"Reusing Python venv {venv_dir} (pins unchanged)")
        return 0
    if venv_dir.exists():
        shutil.rmtree(venv_dir)
    print(f"Creating Python venv {venv_dir} for: {', '.join(groups)}")
    venv.EnvBuilder(with_pip=True, symlinks=True).create(venv_dir)
    pip = [str(venv_dir / "bin" / "python3"), "-m", "pip"]
    cmd = [*pip, "install", "--quiet", "--disable-pip-version-check"]
    for group in groups:
        cmd += ["-r", str(subprojects / f"{group}.txt")]
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        print(
            "ERROR: installing the pinned packages failed (see pip's output above)",
            file=sys.stderr,
        )
        return 1
    stamp.write_text(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
