"""What a plain ``-M virt -accel qtest`` start imports, and what it must not.

The launcher's start-up time is mostly imports (tests/bench/bench_startup.py
measures it against QEMU 7.2's).  Modules that only some command lines need
are imported where they are used: the test support, ``exec:`` migrations
(:mod:`subprocess`), help output and the QMP wire format (:mod:`json`),
files given by name (:mod:`pathlib`, which brings :mod:`urllib.parse` and
:mod:`ipaddress`), entry points of installed device packages
(:mod:`configparser`), error paths (:mod:`traceback`, :mod:`difflib`), the
QMP and human monitors and the whole QMP schema (:mod:`qapi.qmp_schema`: the
run states come from :mod:`qapi.qapi_types`), and under ``-accel qtest`` the
tcg vCPU threads and the engine's memory (:mod:`ctypes`).

A driver runs the launcher's code and, on SIGUSR1, writes the names in
``sys.modules`` to standard error; the test sends the signal once the launcher
has answered its first qtest command.  No timing is asserted here.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import pyqemu_config
from tests.qtest.libqtest import QTestState, qemu_binary
from tests.qtest.modules_launcher import modules_launcher

# Not imported by a plain start, with or without modules.
NOT_AT_START: tuple[str, ...] = (
    "qemu_api.testing",
    "subprocess",
    "json",
    "pathlib",
    "urllib.parse",
    "ipaddress",
    "configparser",
    "traceback",
    "difflib",
    "importlib.metadata",
    "qapi.qmp_schema",
    "system.monitor",
    "system.monitor.hmp_monitor",
    "accel.tcg.cpus",
    "accel.tcg.memory",
    "ctypes",
)
MARK = "sys.modules:"

DRIVER = """#!{python}
import os, runpy, signal, sys


def report(signum, frame):
    os.write(2, ("\\n{mark} " + " ".join(sorted(sys.modules)) + "\\n").encode())


signal.signal(signal.SIGUSR1, report)
sys.argv[0] = {launcher!r}
runpy.run_path({launcher!r}, run_name="__main__")
"""

pytestmark = pytest.mark.skipif(
    "virt" not in pyqemu_config.BOARDS, reason="virt is not built"
)


def started_modules(
    scratch: Path,
    args: list[str],
    launcher: Path,
    then: Callable[[QTestState], None] | None = None,
) -> set[str]:
    """The modules a launcher has imported once it answers qtest.

    With *then*, the modules imported once *then* has driven the launcher
    (it gets a QMP connection too).
    """
    driver = scratch / f"driver-{launcher.parent.name}-{launcher.name}"
    driver.write_text(
        DRIVER.format(python=sys.executable, mark=MARK, launcher=str(launcher))
    )
    driver.chmod(0o755)
    with QTestState(args, binary=driver, qmp=then is not None) as qts:
        assert qts.command_ok("clock_step 0") == "0"
        if then is not None:
            then(qts)
        os.kill(qts.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while MARK not in qts.stderr():
            assert time.monotonic() < deadline, qts.stderr()
            time.sleep(0.05)
        assert qts.command_ok("clock_step 0") == "0"  # still serving
        text = qts.stderr()
    line = next(ln for ln in text.splitlines() if ln.startswith(MARK))
    return set(line.split()[1:])


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("startup")


@pytest.fixture(scope="module")
def modules_binary(scratch: Path) -> Path:
    return modules_launcher(scratch / "modules")


@pytest.mark.parametrize("modules", [False, True], ids=["built-in", "modules"])
def test_plain_start_imports(
    modules: bool, scratch: Path, request: pytest.FixtureRequest
) -> None:
    launcher = request.getfixturevalue("modules_binary") if modules else qemu_binary()
    names = started_modules(scratch, ["-M", "virt", "-nodefaults"], launcher)
    # The list is real: the runtime and the board are in it.
    assert {"system.vl", "system.qtest", "hw.arm.virt", "hw.intc.arm_gic"} <= names
    # Modules mode imports a device package on first use: virt's own devices
    # (the GIC, and the PL011 it creates even with -nodefaults, as QEMU's
    # does) are used, the HPET (a PC device) is not.
    assert "hw.char.pl011" in names
    if "hpet" in pyqemu_config.DEVICES:
        assert ("hw.timer.hpet" in names) is not modules
    unwanted = [name for name in NOT_AT_START if name in names]
    assert not unwanted, f"imported at start: {unwanted}"


def test_deferred_imports_still_load(scratch: Path) -> None:
    """A command that needs a deferred module gets it: an exec: migration over QMP."""
    args = ["-M", "virt", "-nodefaults"]

    def migrate(qts: QTestState) -> None:
        qts.qmp("migrate", uri="exec:cat > /dev/null")
        deadline = time.monotonic() + 60
        while True:
            info = qts.qmp("query-migrate")
            assert isinstance(info, dict)
            if info.get("status") in ("completed", "failed"):
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.05)
        assert info["status"] == "completed", info

    assert "subprocess" not in started_modules(scratch, args, qemu_binary())
    later = started_modules(scratch, args, qemu_binary(), migrate)
    assert {"subprocess", "system.monitor", "qapi.qmp_schema"} <= later
