"""scripts/new-device: what it writes passes the gates and its own tests.

In the tree the scaffold writes into a scratch copy of the files it edits
(``--root``); its trace module is generated there with scripts/tracetool.py,
as the build does. Out of the tree the package's own gates (python -m
pyqemu.gate) and tests run on it as generated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRCROOT = Path(os.environ.get("PYQEMU_SOURCE_ROOT", Path(__file__).parents[2]))
BUILDROOT = Path(os.environ.get("PYQEMU_BUILD_ROOT", SRCROOT / "build"))
NEW_DEVICE = SRCROOT / "scripts" / "new-device"


def run(
    cmd: list[str], cwd: Path, pythonpath: list[Path]
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    res = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert res.returncode == 0, f"{cmd}:\n{res.stdout}\n{res.stderr}"
    return res


def gates_and_tests(
    root: Path, files: list[Path], tests: Path, path: list[Path]
) -> None:
    py = sys.executable
    cache = BUILDROOT / "test-cache" / "new-device"
    run([py, "-m", "pyqemu.gate", "all", "--root", str(root), "--cache", str(cache),
         *map(str, files)], root, path)  # fmt: skip
    res = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
              root, path)  # fmt: skip
    assert "2 passed" in res.stdout


def test_in_tree(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for rel in ("hw/__init__.py", "hw/py.typed", "hw/meson.build",
                "docs/devices/index.rst"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SRCROOT / rel, root / rel)
    res = subprocess.run(
        [str(NEW_DEVICE), "--root", str(root), "--desc", "a test device",
         "testcat", "scaffold_dev"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    pkg = root / "hw" / "testcat" / "scaffold_dev"
    assert sorted(p.name for p in pkg.iterdir()) == [
        "__init__.py", "device.py", "meson.build", "tests", "trace-events",
    ]  # fmt: skip
    assert "  subdir('testcat')\n" in (root / "hw" / "meson.build").read_text()
    assert (
        (root / "hw" / "testcat" / "meson.build")
        .read_text()
        .endswith("subdir('scaffold_dev')\n")
    )
    assert (
        "device_modules += 'hw.testcat.scaffold_dev'"
        in (pkg / "meson.build").read_text()
    )
    assert (
        (root / "docs" / "devices" / "index.rst")
        .read_text()
        .endswith("   scaffold_dev\n")
    )
    assert (root / "docs" / "devices" / "scaffold_dev.rst").is_file()
    # the trace module, as the build generates it (qemu_trace/meson.build),
    # beside the build's own
    gen = root / "qemu_trace"
    shutil.copytree(BUILDROOT / "qemu_trace", gen)
    tracetool = [sys.executable, str(SRCROOT / "scripts" / "tracetool.py"),
                 "--backends", "log"]  # fmt: skip
    run([*tracetool, "--group", "scaffold_dev", str(pkg / "trace-events"),
         str(gen / "scaffold_dev.py")], root, [SRCROOT])  # fmt: skip
    (gen / "py.typed").touch()
    gates_and_tests(
        root,
        [pkg / "__init__.py", pkg / "device.py", pkg / "tests" / "test_device.py"],
        pkg / "tests",
        [root, SRCROOT, BUILDROOT],
    )


def test_out_of_tree(tmp_path: Path) -> None:
    pkg = tmp_path / "my-widget"
    res = subprocess.run(
        [str(NEW_DEVICE), "--out-of-tree", str(pkg), "my_widget", "--type",
         "my-widget"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    pyproject = (pkg / "pyproject.toml").read_text()
    assert (
        '[project.entry-points."pyqemu.devices"]\n"my-widget" = "my_widget.device"'
        in (pyproject)
    )
    assert "python', '-m', 'pyqemu.gate'" not in (pkg / "meson.build").read_text()
    assert "'-m', 'pyqemu.gate', gate" in (pkg / "meson.build").read_text()
    gates_and_tests(
        pkg,
        [pkg / "my_widget" / "__init__.py", pkg / "my_widget" / "device.py",
         pkg / "tests" / "test_device.py"],
        pkg / "tests",
        [pkg, SRCROOT, BUILDROOT],
    )  # fmt: skip


def test_refuses_bad_names_and_existing_files(tmp_path: Path) -> None:
    res = subprocess.run(
        [str(NEW_DEVICE), "--out-of-tree", str(tmp_path), "My-Dev"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert "NAME must be a Python package name in lower case" in res.stderr
    (tmp_path / "pyproject.toml").write_text("")
    res = subprocess.run(
        [str(NEW_DEVICE), "--out-of-tree", str(tmp_path), "dev"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert f"{tmp_path / 'pyproject.toml'} exists; not overwriting it" in res.stderr


pytestmark = pytest.mark.skipif(
    not (SRCROOT / "qemu_api").is_dir(), reason="no qemu_api in the tree"
)
