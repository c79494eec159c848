"""Bad command lines: each fails with status 1 and QEMU's error lines, no traceback.

The corpus is ``corpus/cmdline-bad.txt``.  Every line runs through the
launchers' entry point (:func:`system.main.launch`) in process; a sample,
including the three that ended in tracebacks, also runs through the real
launcher.
"""

from __future__ import annotations

import io
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu_api import bql
from system import vl
from system.main import launch
from tests.fuzz.target_cmdline import PROG, check_error_output
from tests.qtest.libqtest import qemu_binary
from tests.runtime import reset_runtime

CORPUS = Path(__file__).resolve().parent / "corpus" / "cmdline-bad.txt"
LINES = [
    line
    for line in CORPUS.read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
# The three that ended in tracebacks (OverflowError, OSError, ValueError),
# and a few of every kind, through the real launcher.
SAMPLE = LINES[:3] + LINES[3::20]


def _ids(lines: list[str]) -> list[str]:
    return [line if len(line) < 60 else line[:57] + "..." for line in lines]


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """BQL held, run from an empty directory; a start that succeeds returns 0."""
    if not bql.bql_locked():
        bql.bql_lock()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(vl.Emulator, "run", lambda self: 0)
    reset_runtime()
    yield
    reset_runtime()


@pytest.mark.parametrize("line", LINES, ids=_ids(LINES))
def test_bad_command_line_in_process(
    line: str, in_process: None, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    status = launch("aarch64", [PROG, "-display", "none", *shlex.split(line)], out, err)
    assert status == 1, err.getvalue()
    check_error_output(status, err.getvalue())
    assert list(tmp_path.iterdir()) == []  # nothing created, nothing left


@pytest.mark.parametrize("line", SAMPLE, ids=_ids(SAMPLE))
def test_bad_command_line_through_the_launcher(line: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [str(qemu_binary("aarch64")), "-display", "none", *shlex.split(line)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert res.returncode == 1, res.stderr
    check_error_output(res.returncode, res.stderr)
    assert res.stdout == ""
    assert list(tmp_path.iterdir()) == []
