"""A launcher of this build in ``--enable-modules`` mode, without a second build.

:func:`modules_launcher` writes, into a scratch directory, the registry that
``--enable-modules`` generates (``scripts/modinfo.py`` over this build's
device packages), a ``pyqemu_config`` that differs from the build's only in
``MODULES = True``, and a launcher (``scripts/make-launcher.py``) that puts that
directory before the source and build trees on ``sys.path``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyqemu_config

__all__ = ["modules_launcher"]

SRCROOT = Path(os.environ.get("PYQEMU_SOURCE_ROOT", Path(__file__).parents[2]))
BUILDROOT = Path(os.environ.get("PYQEMU_BUILD_ROOT", SRCROOT / "build"))


def modules_launcher(scratch: Path, target: str = "aarch64") -> Path:
    """Write the overlay into *scratch*; return its launcher's path."""
    scratch.mkdir(parents=True, exist_ok=True)
    config = Path(pyqemu_config.__file__).read_text()
    config, n = re.subn(r"(?m)^MODULES = \w+$", "MODULES = True", config)
    assert n == 1, "pyqemu_config has no MODULES line"
    (scratch / "pyqemu_config.py").write_text(config)
    env = {**os.environ, "PYTHONPATH": f"{SRCROOT}:{BUILDROOT}"}
    subprocess.run(
        [sys.executable, str(SRCROOT / "scripts" / "modinfo.py"),
         "--output", str(scratch / "pyqemu_modinfo.py"),
         *pyqemu_config.DEVICE_MODULES],
        check=True, env=env, timeout=300,
    )  # fmt: skip
    launcher = scratch / f"pyqemu-system-{target}"
    subprocess.run(
        [sys.executable, str(SRCROOT / "scripts" / "make-launcher.py"),
         "--target", target, "--python", sys.executable,
         "--path", str(scratch), "--path", str(SRCROOT), "--path", str(BUILDROOT),
         "--pycache", str(BUILDROOT / "pycache"), str(launcher)],
        check=True, timeout=60,
    )  # fmt: skip
    return launcher
