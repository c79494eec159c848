"""The build tree's launchers: -version, -help and errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("PYQEMU_BUILD_ROOT", Path(__file__).parents[2] / "build"))


def run(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUILD / f"pyqemu-system-{target}"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("target", ["aarch64", "x86_64"])
def test_version(target: str) -> None:
    res = run(target, "-version")
    assert res.returncode == 0
    assert res.stdout.startswith("pyqemu emulator version ")


@pytest.mark.parametrize("target", ["aarch64", "x86_64"])
def test_help(target: str) -> None:
    res = run(target, "-help")
    assert res.returncode == 0
    assert f"usage: pyqemu-system-{target} [options]" in res.stdout
    assert "-version" in res.stdout


def test_bad_option_is_a_clean_error() -> None:
    res = run("aarch64", "-bogus")
    assert res.returncode == 1
    assert res.stderr == "pyqemu-system-aarch64: -bogus: invalid option\n"
    assert "Traceback" not in res.stderr
