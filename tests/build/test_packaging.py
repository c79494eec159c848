"""pyqemu as a library and out-of-tree device packages, in a fresh venv.

The pyqemu wheel is built with meson-python from the tree's meson.build and
installed, with its runtime dependencies from a local wheelhouse (filled once
from pip's cache or PyPI), into a venv of its own; the launchers run from
there with nothing of the tree on ``sys.path``. The example device package of
``tests/oot/example-device`` is then built the same way, installed beside it
and driven through the installed launcher; its own ``meson.build`` runs the
project's gates on it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pyqemu_config
from tests.qtest.libqtest import QTestState

pytestmark = pytest.mark.skipif(
    not pyqemu_config.HAVE_PYTHON, reason="built without Python device support"
)

SRCROOT = Path(os.environ.get("PYQEMU_SOURCE_ROOT", Path(__file__).parents[2]))
BUILDROOT = Path(os.environ.get("PYQEMU_BUILD_ROOT", SRCROOT / "build"))
UART0 = 0x0900_0000
PBUS = 0x0C00_0000
PBUS_SPI = 112
# Nothing of the tree or the build venv may leak into the fresh venv's processes.
CLEAN_ENV = {"PYTHONPATH": "", "PYTHONPYCACHEPREFIX": "", "MYPYPATH": ""}


def run(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        cmd, capture_output=True, text=True, check=False, timeout=600, env=env, cwd=cwd
    )
    assert res.returncode == 0, f"{cmd} failed:\n{res.stdout}\n{res.stderr}"
    return res


def build_env(venv_bin: Path) -> dict[str, str]:
    # meson-python finds meson and ninja on PATH: those of the build venv.
    return {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYQEMU_")}
    env.update(CLEAN_ENV)
    return env


@pytest.fixture(scope="module")
def wheelhouse() -> Path:
    """subprojects/runtime.txt as wheels (pip's cache makes refills quick)."""
    house = BUILDROOT / "wheelhouse"
    pins = (SRCROOT / "subprojects" / "runtime.txt").read_text()
    stamp = house / "runtime.txt"
    if not stamp.is_file() or stamp.read_text() != pins:
        house.mkdir(parents=True, exist_ok=True)
        run([sys.executable, "-m", "pip", "wheel", "--quiet",
             "--disable-pip-version-check", "-w", str(house),
             "-r", str(SRCROOT / "subprojects" / "runtime.txt")])  # fmt: skip
        stamp.write_text(pins)
    return house


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dist")


def build_wheel(source: Path, dist: Path, venv_bin: Path, build_dir: str) -> Path:
    before = set(dist.glob("*.whl"))
    # meson-python's build directory is kept in the build tree: later runs
    # rebuild only what changed.
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--no-build-isolation", "--disable-pip-version-check", "-w", str(dist),
         f"--config-settings=build-dir={BUILDROOT / build_dir}",
         str(source)], env=build_env(venv_bin))  # fmt: skip
    (wheel,) = set(dist.glob("*.whl")) - before
    return wheel


@pytest.fixture(scope="module")
def fresh_venv(
    wheelhouse: Path,
    dist: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Path]:
    """A venv with only the pyqemu wheel and its dependencies; its bin dir."""
    venv_bin = Path(sys.executable).parent
    wheel = build_wheel(SRCROOT, dist, venv_bin, "wheel-build")
    assert wheel.name == f"pyqemu-{pyqemu_config.VERSION}-py3-none-any.whl"
    venv = tmp_path_factory.mktemp("venv") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", "--without-pip", str(venv)])
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
         "install", "--quiet", "--disable-pip-version-check", "--no-index",
         "--find-links", str(wheelhouse), str(wheel)])  # fmt: skip
    yield venv / "bin"
    shutil.rmtree(venv, ignore_errors=True)


def test_wheel_installs_the_library(fresh_venv: Path, tmp_path: Path) -> None:
    py = str(fresh_venv / "python")
    res = run(
        [py, "-c", "import qemu_api, hw.char.pl011, pyqemu; print(qemu_api.__file__)"],
        env=clean_env(),
        cwd=tmp_path,
    )
    site = Path(res.stdout.strip()).parent.parent
    assert site.is_relative_to(fresh_venv.parent), res.stdout
    # the generated modules are installed too
    for generated in ("pyqemu_config.py", "qapi/qmp_schema.py", "qemu_trace"):
        assert (site / generated).exists(), generated
    assert (site / "qemu_api" / "py.typed").is_file()
    res = run([py, "-m", "pyqemu.system", "-version"], env=clean_env(), cwd=tmp_path)
    assert res.stdout.startswith(f"pyqemu emulator version {pyqemu_config.VERSION}")
    res = run(
        [str(fresh_venv / "pyqemu-system-x86_64"), "-M", "help"],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert "pc" in res.stdout


def test_wheel_boots_the_pl011_through_qtest(fresh_venv: Path, tmp_path: Path) -> None:
    out = tmp_path / "serial.txt"
    with QTestState(
        ["-M", "virt", "-serial", f"file:{out}"],
        binary=fresh_venv / "pyqemu-system-aarch64",
        env=clean_env(),
    ) as qts:
        # PeriphID0-3 of an ARM PL011 (QEMU's pl011_id_arm)
        assert [qts.readb(UART0 + 0xFE0 + 4 * i) for i in range(4)] == [
            0x11, 0x10, 0x14, 0x00,
        ]  # fmt: skip
        for ch in b"ok\n":
            qts.writel(UART0, ch)
    assert out.read_bytes() == b"ok\n"


def test_example_device_package(fresh_venv: Path, dist: Path, tmp_path: Path) -> None:
    example = SRCROOT / "tests" / "oot" / "example-device"
    wheel = build_wheel(example, dist, Path(sys.executable).parent, "oot-wheel-build")
    run([sys.executable, "-m", "pip", "--python", str(fresh_venv / "python"),
         "install", "--quiet", "--disable-pip-version-check", "--no-index",
         "--find-links", str(dist), str(wheel)])  # fmt: skip
    launcher = str(fresh_venv / "pyqemu-system-aarch64")
    res = run([launcher, "-device", "help"], env=clean_env(), cwd=tmp_path)
    assert (
        'name "example-counter", bus System, desc "example event counter '
        '(out-of-tree device package)"'
    ) in res.stdout.splitlines()
    res = run(
        [launcher, "-device", "example-counter,help"], env=clean_env(), cwd=tmp_path
    )
    assert re.search(r"start=<uint32> +- the counter's value at reset", res.stdout)

    with QTestState(
        ["-M", "virt", "-nodefaults", "-device", "example-counter,id=ctr,start=5"],
        binary=fresh_venv / "pyqemu-system-aarch64",
        env=clean_env(),
        qmp=True,
    ) as qts:
        # on virt's platform bus: the first window and the first line
        assert qts.readl(PBUS) == 0x4558_4301
        assert qts.readl(PBUS + 0x04) == 5
        qts.irq_intercept_in("/machine/gic")
        qts.writel(PBUS + 0x14, 1)  # IRQEN
        qts.writel(PBUS + 0x0C, 7)  # LIMIT
        qts.writel(PBUS + 0x08, 2)  # ADD: 5 + 2 reaches LIMIT
        assert qts.readl(PBUS + 0x10) == 1
        assert qts.get_irq(PBUS_SPI)
        qts.writel(PBUS + 0x04, 0)
        qts.writel(PBUS + 0x10, 1)  # clear MATCH
        assert not qts.get_irq(PBUS_SPI)
        path = qts.qmp("qom-get", path="/machine/peripheral/ctr", property="start")
        assert path == 5
        types = qts.qmp("qom-list-types", implements="dynamic-sysbus-device")
        assert isinstance(types, list)
        assert [t["name"] for t in types] == ["example-counter"]


def test_example_gates_from_its_meson_build(srcroot: Path, buildroot: Path) -> None:
    """The example's own meson.build runs pyqemu's gates and its tests."""
    example = srcroot / "tests" / "oot" / "example-device"
    build = buildroot / "oot-example-device"
    venv_bin = Path(sys.executable).parent
    env = build_env(venv_bin)
    # the tree's pyqemu (qemu_api, pyqemu.gate) and the example's own package
    env["PYTHONPATH"] = os.pathsep.join(
        [str(example), str(srcroot), str(buildroot), env.get("PYTHONPATH", "")]
    )
    meson = str(venv_bin / "meson")
    setup = [meson, "setup", str(build), str(example)]
    if (build / "meson-private" / "coredata.dat").is_file():
        setup.insert(2, "--reconfigure")
    run(setup, env=env)
    res = run([meson, "test", "-C", str(build), "--print-errorlogs"], env=env)
    for name in ("clippy", "pyfmt", "mypy", "doctest", "unit"):
        assert re.search(rf"\b{name}\s+OK", res.stdout), res.stdout
