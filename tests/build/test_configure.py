"""configure's command line: help, unknown options, conflicts, the interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_configure(
    srcroot: Path, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(srcroot / "configure"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_help_lists_every_option(srcroot: Path, tmp_path: Path) -> None:
    res = run_configure(srcroot, tmp_path, "--help")
    assert res.returncode == 0
    for opt in ("--prefix=", "--python=", "-Dname=value", "--enable-strict-gates"):
        assert opt in res.stdout
    for feature in ("docs", "python", "python-devices"):
        assert f"\n  {feature} " in res.stdout
    assert "[auto]" in res.stdout
    assert "[default: false]" in res.stdout
    assert list(tmp_path.iterdir()) == []  # --help creates nothing


def test_unknown_option(srcroot: Path, tmp_path: Path) -> None:
    res = run_configure(srcroot, tmp_path, "--foo")
    assert res.returncode == 1
    assert res.stderr.splitlines()[0] == "ERROR: unknown option --foo"
    assert list(tmp_path.iterdir()) == []


def test_conflicting_python_options(srcroot: Path, tmp_path: Path) -> None:
    res = run_configure(
        srcroot, tmp_path, "--disable-python", "--enable-python-devices"
    )
    assert res.returncode == 1
    assert "--enable-python-devices needs Python device support" in res.stderr
    assert "--disable-python" in res.stderr


def test_missing_interpreter(srcroot: Path, tmp_path: Path) -> None:
    res = run_configure(srcroot, tmp_path, "--python=/nonexistent/python9")
    assert res.returncode == 1
    assert "Cannot use '/nonexistent/python9'" in res.stderr


def test_old_interpreter(srcroot: Path, tmp_path: Path) -> None:
    # An interpreter that reports Python 3.9: the real one with version_info
    # replaced before the probe runs.
    shim = tmp_path / "python3.9"
    shim.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-c" ]; then\n'
        f'  exec {sys.executable} -c "import sys; sys.version_info = (3, 9, 18, '
        '\'final\', 0); exec(sys.argv[1])" "$2"\n'
        "fi\n"
        f'exec {sys.executable} "$@"\n'
    )
    shim.chmod(0o755)
    workdir = tmp_path / "b"
    workdir.mkdir()
    res = run_configure(srcroot, workdir, f"--python={shim}")
    assert res.returncode == 1
    assert f"Cannot use '{shim}', Python >= 3.11 is required (it is 3.9)" in (
        res.stderr
    )
    assert list(workdir.iterdir()) == []


def test_refuses_non_empty_foreign_dir(srcroot: Path, tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("data")
    res = run_configure(srcroot, tmp_path)
    assert res.returncode == 1
    assert "is not empty and not a build tree" in res.stderr
    assert sorted(os.listdir(tmp_path)) == ["precious.txt"]
