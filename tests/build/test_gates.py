"""Each gate can fail: run it on a broken fixture outside the tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def gate(srcroot: Path, venv_bin: Path, tmp: Path, kind: str, *files: Path):
    return subprocess.run(
        [
            sys.executable,
            str(srcroot / "scripts" / "gate.py"),
            "--name",
            "fixture",
            "--cache",
            str(tmp / "cache"),
            "--ruff",
            str(venv_bin / "ruff"),
            kind,
            "--",
            *map(str, files),
        ],
        cwd=srcroot,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


GOOD = (
    '"""A module."""\n\n\ndef double(x: int) -> int:\n'
    '    """Double x."""\n    return 2 * x\n'
)

BROKEN = {
    # an unused import and a mutable default argument
    "clippy": '"""A module."""\n\nimport os\n\n\ndef f(x: list[int] = []) -> int:\n'
    '    """F."""\n    return len(x)\n',
    # valid code, unformatted
    "pyfmt": '"""A module."""\n\n\ndef f( x:int )->int :\n    """F."""\n    return x\n',
    # a type error under --strict
    "mypy": '"""A module."""\n\n\ndef f(x: int) -> str:\n    """F."""\n    return x\n',
}


@pytest.mark.parametrize("kind", ["clippy", "pyfmt", "mypy"])
def test_gate_fails_on_broken_fixture(srcroot, venv_bin, tmp_path, kind):
    broken = tmp_path / "broken.py"
    broken.write_text(BROKEN[kind])
    res = gate(srcroot, venv_bin, tmp_path, kind, broken)
    assert res.returncode == 1
    assert f"fixture-{kind}: FAILED for package 'fixture'" in res.stderr


@pytest.mark.parametrize("kind", ["clippy", "pyfmt", "mypy"])
def test_gate_passes_on_good_fixture(srcroot, venv_bin, tmp_path, kind):
    good = tmp_path / "good.py"
    good.write_text(GOOD)
    res = gate(srcroot, venv_bin, tmp_path, kind, good)
    assert res.returncode == 0, res.stdout + res.stderr


def test_doctest_runner_fails_on_wrong_example(srcroot, tmp_path):
    rst = tmp_path / "page.rst"
    rst.write_text("Page\n====\n\n>>> 1 + 1\n3\n")
    res = subprocess.run(
        [sys.executable, str(srcroot / "scripts" / "run-doctests.py"), str(rst)],
        cwd=srcroot,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 1
    assert "doctest: 0 passed, 1 failed" in res.stdout
