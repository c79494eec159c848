"""The committed scripts/meson-buildoptions.sh matches meson_options.txt."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_buildoptions_file_is_current(srcroot: Path, venv_bin: Path) -> None:
    introspect = subprocess.run(
        [str(venv_bin / "meson"), "introspect", "--buildoptions", "meson.build"],
        cwd=srcroot,
        capture_output=True,
        text=True,
        check=True,
    )
    generated = subprocess.run(
        [sys.executable, "scripts/meson-buildoptions.py"],
        cwd=srcroot,
        input=introspect.stdout,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (srcroot / "scripts" / "meson-buildoptions.sh").read_text()
    assert generated == committed, (
        "scripts/meson-buildoptions.sh is stale: run 'make update-buildoptions'"
    )


def test_every_option_is_parsed(srcroot: Path) -> None:
    text = (srcroot / "scripts" / "meson-buildoptions.sh").read_text()
    for name in ("python", "python_devices", "docs", "strict_gates"):
        dashed = name.replace("_", "-")
        assert f"--enable-{dashed})" in text
        assert f"--disable-{dashed})" in text
        assert f"-D{name}=" in text
