"""make install: a staged install runs its launcher and holds the packages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pyqemu_config


def test_staged_install_runs(buildroot: Path, venv_bin: Path, tmp_path: Path) -> None:
    dest = tmp_path / "stage"
    subprocess.run(
        [
            str(venv_bin / "meson"),
            "install",
            "-C",
            str(buildroot),
            "--no-rebuild",
            "--quiet",
            "--destdir",
            str(dest),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    launchers = list(dest.rglob("bin/pyqemu-system-aarch64"))
    assert len(launchers) == 1
    assert list(dest.rglob("bin/pyqemu-system-x86_64"))
    res = subprocess.run(
        [str(launchers[0]), "-version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"pyqemu emulator version {pyqemu_config.VERSION}")
    pylib = launchers[0].parent.parent / "share" / "pyqemu" / "python"
    assert (pylib / "pyqemu_config.py").is_file()
    if pyqemu_config.HAVE_PYTHON:
        assert (pylib / "qemu_api" / "__init__.py").is_file()
        assert (pylib / "system" / "main.py").is_file()
        # the installed launcher imports the installed packages, not the source tree
        res = subprocess.run(
            [str(launchers[0]), "-help"], capture_output=True, text=True, check=True
        )
        assert "usage: pyqemu-system-aarch64" in res.stdout
        # ... with the runtime dependencies installed beside it: the virt board
        # builds its device tree with libfdt.
        dtb = tmp_path / "virt.dtb"
        res = subprocess.run(
            [str(launchers[0]), "-M", f"virt,dumpdtb={dtb}", "-nodefaults"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert res.returncode == 0, res.stderr
        assert dtb.read_bytes()[:4] == bytes.fromhex("d00dfeed")
    else:
        assert not (pylib / "qemu_api").exists()
