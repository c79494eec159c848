"""The GIC's migration section against QEMU 7.2's, in both directions.

QEMU (Debian's ``qemu-system-aarch64`` 7.2) runs ``-M virt -S`` under qtest;
the test programs its GIC the way a guest would (qtest ``writel``/``writeb``
and input line changes), migrates to ``exec:cat > FILE``, and loads the
stream into pyqemu's virt board (skipping the sections of devices pyqemu
does not have, such as the CPU). Every distributor word and CPU interface
register must then read back as QEMU read it. The other way, pyqemu's virt is
programmed the same way, saved, and the stream loaded into QEMU with
``-incoming``; QEMU must read what pyqemu read. ``-dump-vmstate`` must
describe the same fields.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hw.arm.virt import VirtMachine
from qemu_api.memory import get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileWriter
from qemu_api.migration.savevm import (
    dump_vmstate_json,
    qemu_loadvm_state,
    qemu_savevm_state,
)
from qemu_api.qdev import DeviceState
from qemu_api.qom import object_resolve_path
from tests.oracle import qemu72
from tests.runtime import qemu_runtime

__all__ = ["qemu_runtime"]

DIST = 0x0800_0000
CPU = 0x0801_0000
CPU_REGS = (0x00, 0x04, 0x08, 0x14, 0x18, 0x1C, 0xD0, 0xD4, 0xD8, 0xDC, 0xE0, 0xFC)

# A guest's programming: forwarding, enables, priorities, groups, configuration,
# pending state from inputs, SGIs, and interrupts acknowledged (one left
# active, one active under EOImode), with CPU interface settings.
PROGRAM: tuple[str, ...] = (
    f"writel {DIST:#x} 0x3",
    f"writel {DIST + 0x104:#x} 0x8000000f",
    f"writel {DIST + 0x108:#x} 0x00010001",
    f"writel {DIST + 0x100:#x} 0x08000000",
    f"writel {DIST + 0x420:#x} 0x40302010",
    f"writeb {DIST + 0x424:#x} 0x80",
    f"writeb {DIST + 0x45F:#x} 0x90",
    f"writeb {DIST + 0x41B:#x} 0xa0",
    f"writel {DIST + 0x084:#x} 0x00000008",
    f"writel {DIST + 0xC08:#x} 0x00000020",
    f"writel {CPU:#x} 0x20f",
    f"writel {CPU + 0x04:#x} 0xf0",
    f"writel {CPU + 0x08:#x} 0x2",
    f"writel {CPU + 0x1C:#x} 0x4",
    "set_irq_in @GIC unnamed-gpio-in 0 1",
    "set_irq_in @GIC unnamed-gpio-in 1 1",
    "set_irq_in @GIC unnamed-gpio-in 2 1",
    "set_irq_in @GIC unnamed-gpio-in 2 0",
    "set_irq_in @GIC unnamed-gpio-in 283 1",
    f"writel {DIST + 0xF00:#x} 0x02000007",
    f"writeb {DIST + 0xF23:#x} 0x1",
    f"readl {CPU + 0x0C:#x}",
    f"readl {CPU + 0x0C:#x}",
    f"writel {CPU + 0x10:#x} 0x20",
    f"writel {DIST + 0x304:#x} 0x00000010",
)


def connect(path: Path) -> socket.socket:
    for _ in range(400):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
        except OSError:
            s.close()
            time.sleep(0.025)
            continue
        return s
    raise AssertionError(f"QEMU never listened on {path}")


class Qemu:
    """QEMU 7.2's virt under qtest, with QMP."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        qmp_path = tmp / "qmp.sock"
        qtest_path = tmp / "qtest.sock"
        self.proc = subprocess.Popen(
            [
                str(qemu72()),
                *("-M", "virt", "-display", "none", "-nodefaults", "-S"),
                *("-qtest", f"unix:{qtest_path},server=on,wait=off"),
                *("-qtest-log", "/dev/null"),
                *("-qmp", f"unix:{qmp_path},server=on,wait=off"),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.qmp_file = connect(qmp_path).makefile("rw")
        json.loads(self.qmp_file.readline())
        self.qmp("qmp_capabilities")
        self.qtest_file = connect(qtest_path).makefile("rw")
        children = self.qmp("qom-list", path="/machine/unattached")["return"]
        gics = [c["name"] for c in children if c["type"] == "child<arm_gic>"]
        self.gic = f"/machine/unattached/{gics[0]}"

    def qmp(self, name: str, **args: object) -> Any:
        self.qmp_file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.qmp_file.flush()
        while True:
            reply = json.loads(self.qmp_file.readline())
            if "event" not in reply:
                return reply

    def qtest(self, line: str) -> str:
        self.qtest_file.write(line.replace("@GIC", self.gic) + "\n")
        self.qtest_file.flush()
        while True:
            reply = self.qtest_file.readline().strip()
            if not reply.startswith("IRQ"):
                assert reply.startswith("OK"), f"{line}: {reply}"
                return reply

    def read(self, addr: int) -> int:
        return int(self.qtest(f"readl {addr:#x}").split()[1], 16)

    def wait_migration(self) -> str:
        for _ in range(1200):
            status = str(self.qmp("query-migrate")["return"].get("status"))
            if status in ("completed", "failed"):
                return status
            time.sleep(0.025)
        raise AssertionError("the migration never ended")

    def close(self) -> None:
        self.qmp("quit")
        self.proc.wait(timeout=30)
        self.qmp_file.close()
        self.qtest_file.close()


@pytest.fixture
def qemu_factory(tmp_path: Path) -> Iterator[list[Qemu]]:
    started: list[Qemu] = []
    yield started
    for run in started:
        run.close()


def register_addresses() -> list[int]:
    """Every distributor word and the CPU interface registers without side effects."""
    return [DIST + o for o in range(0, 0x1000, 4)] + [CPU + o for o in CPU_REGS]


def pyqemu_virt() -> VirtMachine:
    machine = VirtMachine()
    machine.attach()
    machine.machine_init()
    machine.reset()
    return machine


def pyqemu_run(machine: VirtMachine, line: str) -> None:
    """Run one PROGRAM line on pyqemu's virt, in process."""
    mem = get_address_space_memory()
    words = line.split()
    if words[0] == "set_irq_in":
        machine.gic.get_gpio_in(int(words[3])).set(int(words[4]))
    elif words[0].startswith("read"):
        mem.read(int(words[1], 16), 4)
    else:
        size = {"writeb": 1, "writel": 4}[words[0]]
        mem.write(int(words[1], 16), int(words[2], 16), size)


def pyqemu_reads() -> list[int]:
    mem = get_address_space_memory()
    return [mem.read(addr, 4) for addr in register_addresses()]


def test_qemu72_stream_loads_into_pyqemu(
    tmp_path: Path, qemu_factory: list[Qemu]
) -> None:
    qemu = Qemu(tmp_path)
    qemu_factory.append(qemu)
    for line in PROGRAM:
        qemu.qtest(line)
    path = tmp_path / "qemu.mig"
    assert qemu.qmp("migrate", uri=f"exec:cat > {path}") == {"return": {}}
    assert qemu.wait_migration() == "completed"
    expected = [qemu.read(addr) for addr in register_addresses()]
    expected_iar = qemu.read(CPU + 0x0C)
    assert expected[0x204 // 4] != 0  # the program left interrupts pending

    machine = pyqemu_virt()
    result = qemu_loadvm_state(path.read_bytes(), machine, skip_unknown=True)
    assert "arm_gic (0)" in result.loaded
    assert pyqemu_reads() == expected
    assert get_address_space_memory().read(CPU + 0x0C, 4) == expected_iar


def test_pyqemu_stream_loads_into_qemu72(
    tmp_path: Path, qemu_factory: list[Qemu]
) -> None:
    machine = pyqemu_virt()
    for line in PROGRAM:
        pyqemu_run(machine, line)
    expected = pyqemu_reads()
    expected_iar = get_address_space_memory().read(CPU + 0x0C, 4)
    # The read above acknowledged an interrupt: save the state from before it.
    machine = pyqemu_virt_again()
    path = tmp_path / "pyqemu.mig"
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine, runstate="paused")
    path.write_bytes(f.getvalue())

    qemu = Qemu(tmp_path, "-incoming", f"exec:cat {path}")
    qemu_factory.append(qemu)
    assert qemu.wait_migration() == "completed"
    assert [qemu.read(addr) for addr in register_addresses()] == expected
    assert qemu.read(CPU + 0x0C) == expected_iar


def pyqemu_virt_again() -> VirtMachine:
    """A fresh virt board programmed with PROGRAM (the runtime reset first)."""
    from tests.runtime import reset_runtime

    reset_runtime()
    machine = pyqemu_virt()
    for line in PROGRAM:
        pyqemu_run(machine, line)
    return machine


def test_a_stream_with_the_virtualization_state_is_refused(
    tmp_path: Path, qemu_factory: list[Qemu]
) -> None:
    qemu = Qemu(tmp_path, "-M", "virtualization=on")
    qemu_factory.append(qemu)
    path = tmp_path / "virt.mig"
    assert qemu.qmp("migrate", uri=f"exec:cat > {path}") == {"return": {}}
    assert qemu.wait_migration() == "completed"
    machine = pyqemu_virt()
    with pytest.raises(Exception, match="arm_gic_virt_state"):
        qemu_loadvm_state(path.read_bytes(), machine, skip_unknown=True)


def test_dump_vmstate_matches_qemu72(tmp_path: Path) -> None:
    out = tmp_path / "qemu-dump.json"
    subprocess.run(
        [
            *(str(qemu72()), "-M", "virt", "-nodefaults", "-display", "none"),
            *("-dump-vmstate", str(out)),
        ],
        check=True,
        capture_output=True,
    )
    theirs = json.loads(out.read_text())["arm_gic"]
    ours = json.loads(dump_vmstate_json("virt-7.2"))["arm_gic"]
    subsections = theirs["Description"].pop("Subsections")
    assert [s["name"] for s in subsections] == ["arm_gic_virt_state"]
    assert ours == theirs


def test_gic_is_a_device_of_the_board() -> None:
    machine = pyqemu_virt()
    assert isinstance(object_resolve_path("/machine/gic"), DeviceState)
    assert machine.gic.typename() == "arm_gic"
