"""The docs gate (sphinx-build -W) fails on a warning."""

from __future__ import annotations

import subprocess
from pathlib import Path


def test_docs_gate_fails_on_warning(venv_bin: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text("project = 'fixture'\n")
    (src / "index.rst").write_text("Fixture\n=======\n\nSee :doc:`missing-page`.\n")
    res = subprocess.run(
        [
            str(venv_bin / "sphinx-build"),
            "-W",
            "-q",
            "-b",
            "html",
            str(src),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0
    assert "missing-page" in res.stderr
