"""Device modules through the launcher: first-use import, listings, module_load.

The launcher runs in ``--enable-modules`` mode from an overlay of this build
(tests/qtest/modules_launcher.py); a small driver reports which device
packages a run imported. The registry itself is tested in
tests/unit/test_module.py; the option's configure-time rules below.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import pyqemu_config
from tests.qtest.libqtest import QTestState
from tests.qtest.modules_launcher import BUILDROOT, SRCROOT, modules_launcher

pytestmark = pytest.mark.skipif(
    "pl011" not in pyqemu_config.DEVICES, reason="pl011 is not built"
)
UART0 = 0x0900_0000


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return modules_launcher(tmp_path_factory.mktemp("modules"))


def imported_by(
    launcher: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Run the launcher's code in a driver; whether it imported hw.char.pl011."""
    driver = (
        "import runpy, sys\n"
        "try:\n"
        f"    runpy.run_path({str(launcher)!r}, run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write(f\"\\nPL011 {'hw.char.pl011' in sys.modules}\\n\")\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", driver, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return res, res.stderr.rstrip().endswith("PL011 True")


def test_help_lists_without_importing(launcher: Path) -> None:
    res, imported = imported_by(launcher, "-device", "pl011,help")
    assert res.stdout.startswith("pl011 options:\n")
    assert "  chardev=<str>" in res.stdout
    assert not imported
    res, imported = imported_by(launcher, "-device", "help")
    assert not res.stdout.startswith("\n")  # the first group has no blank line
    assert 'name "pl011", bus System' in res.stdout
    assert not imported
    # the build without modules imports its devices at start
    res, imported = imported_by(BUILDROOT / "pyqemu-system-aarch64", "-device", "help")
    assert imported


def test_first_use_imports(launcher: Path, tmp_path: Path) -> None:
    # virt creates its UART: the lookup of "pl011" imports the package
    dtb = tmp_path / "virt.dtb"
    res, imported = imported_by(launcher, "-M", f"virt,dumpdtb={dtb}", "-nodefaults")
    assert res.returncode == 0, res.stderr
    assert imported
    # -dump-vmstate describes every device: it loads every module, as QEMU
    dump = tmp_path / "vmstate.json"
    res, imported = imported_by(launcher, "-M", "none", "-dump-vmstate", str(dump))
    assert res.returncode == 0, res.stderr
    assert imported
    assert '"pl011"' in dump.read_text()
    with QTestState(["-M", "virt", "-nodefaults"], binary=launcher) as qts:
        assert [qts.readb(UART0 + 0xFE0 + 4 * i) for i in range(4)] == [
            0x11, 0x10, 0x14, 0x00,
        ]  # fmt: skip


def test_module_load(launcher: Path) -> None:
    with QTestState(["-M", "none"], binary=launcher, qmp=True) as qts:
        types = qts.qmp("qom-list-types", implements="sys-bus-device")
        assert isinstance(types, list)
        assert {"name": "pl011", "parent": "sys-bus-device"} in types
        assert qts.raw("module_load hw- char-pl011") == "OK"
        assert qts.raw("module_load hw- char-pl011") == "OK"
        assert qts.raw("module_load hw- nosuch") == "FAIL"
    # a build without modules has none to load, as QEMU without CONFIG_MODULES
    with QTestState(["-M", "none"]) as qts:
        assert qts.raw("module_load hw- char-pl011") == "FAIL"


def test_registry_records_boards(launcher: Path) -> None:
    # scripts/modinfo.py writes, per package, the boards that select it
    # (hw/<arch>/meson.build's board_selects)
    ns: dict[str, object] = {}
    exec((launcher.parent / "pyqemu_modinfo.py").read_text(), ns)
    modinfo = ns["MODINFO"]
    assert isinstance(modinfo, list)
    boards = {m["import_name"]: m["boards"] for m in modinfo}
    for board, packages in pyqemu_config.BOARD_DEVICES.items():
        for package in packages:
            names = [n for n in boards if n.endswith("." + package.replace("-", "_"))]
            assert all(board in boards[n] for n in names), (board, package, boards)
    assert boards["hw.char.pl011"] == ["virt"]


@pytest.mark.skipif(
    "hpet" not in pyqemu_config.DEVICES or "virt" not in pyqemu_config.BOARDS,
    reason="needs the hpet and the virt board",
)
@pytest.mark.parametrize("modules", [False, True], ids=["built-in", "modules"])
def test_devices_of_another_targets_boards(modules: bool, launcher: Path) -> None:
    # QEMU's aarch64 binary has no HPET (only PC boards select it): 'hpet'
    # is no device model there; the registry says so without an import
    binary = launcher if modules else BUILDROOT / "pyqemu-system-aarch64"
    res, _ = imported_by(binary, "-M", "virt", "-nodefaults", "-device", "hpet")
    assert res.stderr.startswith(
        "pyqemu-system-aarch64: -device hpet: 'hpet' is not a valid device model "
        "name\n'hpet' is built for the boards pc, which pyqemu-system-aarch64 "
        "does not have\n"
    ), res.stderr
    x86 = BUILDROOT / "pyqemu-system-x86_64"
    res = subprocess.run(
        [str(x86), "-M", "none", "-nodefaults", "-device", "pl011"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 1
    assert "'pl011' is not a valid device model name" in res.stderr


def test_modules_need_python(tmp_path: Path) -> None:
    meson = Path(sys.executable).parent / "meson"
    res = subprocess.run(
        [str(meson), "setup", str(tmp_path / "b"), str(SRCROOT),
         "-Dpython=disabled", "-Dmodules=enabled", "-Ddocs=disabled"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode != 0
    assert (
        "modules=enabled makes the Python device packages loadable modules, which "
        "needs Python device support: drop --disable-python or --enable-modules"
    ) in res.stdout
