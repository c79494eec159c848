"""Every counterexample the campaigns found, replayed against its target.

Each file under ``corpus/<target>/`` is an input in that target's format
(``.gz`` files are compressed); it must now pass every property of the
target: no crash, no hang, no runaway memory, no traceback, the target's
own checks.  The names say what each one found.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from qemu_api import bql
from tests.fuzz.engine import replay, targets

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(
    p for p in CORPUS.glob("*/*") if p.suffix in (".bin", ".gz") and p.is_file()
)


@pytest.fixture(autouse=True)
def _bql() -> None:
    if not bql.bql_locked():
        bql.bql_lock()


def test_the_corpus_has_a_case_per_target() -> None:
    names = {p.parent.name for p in CASES}
    assert names >= {"migration", "qmp", "qtest"}
    assert names <= set(targets())


@pytest.mark.parametrize(
    "path", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES]
)
def test_counterexample_passes(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    target = targets()[path.parent.name]()
    build = os.environ.get("PYQEMU_BUILD_ROOT")
    workdir = Path(build) / "fuzz" if build else tmp_path  # QEMU's seeds are cached
    failure = replay(target, data, workdir)
    assert failure is None, failure
