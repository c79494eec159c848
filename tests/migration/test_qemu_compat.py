"""Compatibility with real QEMU 7.2 streams, generated at test time.

QEMU (Debian's ``qemu-system-aarch64`` 7.2) runs ``-M virt`` under qtest; the
test writes guest RAM and PL011 registers through qtest, migrates to
``exec:cat > FILE`` with QMP, then reads the stream with
``scripts/analyze-migration.py`` and loads it into pyqemu's virt board.  The
other direction, pyqemu's stream into QEMU, checks the bytes QEMU reads back.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import hw.char.pl011
from hw.i386.pc import PcMachine
from qemu_api.bits import u32
from qemu_api.bql import BqlRefCell
from qemu_api.clock import Clock
from qemu_api.error import Error
from qemu_api.memory import get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileWriter
from qemu_api.migration.savevm import (
    dump_vmstate_json,
    qemu_loadvm_state,
    qemu_savevm_state,
)
from qemu_api.migration.vmstate import (
    VMStateDescription,
    VMStateField,
    vmstate_array,
    vmstate_clock,
    vmstate_info_uint32,
    vmstate_int32,
    vmstate_uint32,
)
from qemu_api.sysbus import SysBusDevice
from tests.migration.machine import make_virt, write_pattern
from tests.oracle import qemu72

ROOT = Path(__file__).resolve().parents[2]
PATTERN = bytes((i * 7 + 3) & 0xFF for i in range(4096))
UART = 0x0900_0000


def connect(path: Path) -> socket.socket:
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(path))
        except OSError:
            s.close()
            time.sleep(0.05)
            continue
        return s
    raise AssertionError(f"QEMU never listened on {path}")


class Qmp:
    def __init__(self, path: Path) -> None:
        self.sock = connect(path)
        self.file = self.sock.makefile("rw")
        json.loads(self.file.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name: str, **args: object) -> Any:
        self.file.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "event" not in reply:
                return reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class QTest:
    def __init__(self, path: Path) -> None:
        self.sock = connect(path)
        self.file = self.sock.makefile("rw")

    def cmd(self, line: str) -> str:
        self.file.write(line + "\n")
        self.file.flush()
        while True:
            reply = self.file.readline().strip()
            if not reply.startswith("IRQ"):
                assert reply.startswith("OK"), f"qtest '{line}': {reply}"
                return reply

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@dataclass
class QemuRun:
    proc: subprocess.Popen[bytes]
    qmp: Qmp
    qtest: QTest


def start_qemu(
    tmp: Path, *extra: str, target: str = "aarch64", machine: str = "virt"
) -> QemuRun:
    qmp_path = tmp / "qmp.sock"
    qtest_path = tmp / "qtest.sock"
    proc = subprocess.Popen(
        [
            str(qemu72(target)),
            "-M",
            machine,
            "-display",
            "none",
            "-nodefaults",
            "-serial",
            "null",
            "-S",
            "-qtest",
            f"unix:{qtest_path},server=on,wait=off",
            "-qtest-log",
            "/dev/null",
            "-qmp",
            f"unix:{qmp_path},server=on,wait=off",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return QemuRun(proc, Qmp(qmp_path), QTest(qtest_path))


def stop_qemu(run: QemuRun) -> None:
    run.qmp.cmd("quit")
    run.qmp.close()
    run.qtest.close()
    run.proc.wait(timeout=30)


def wait_migration(qmp: Qmp) -> dict[str, Any]:
    for _ in range(600):
        info = qmp.cmd("query-migrate")["return"]
        if info.get("status") in ("completed", "failed"):
            assert isinstance(info, dict)
            return info
        time.sleep(0.05)
    raise AssertionError("the migration never completed")


@pytest.fixture(scope="module")
def qemu_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stream QEMU 7.2 writes for virt after qtest wrote RAM and the PL011."""
    tmp = tmp_path_factory.mktemp("qemu")
    run = start_qemu(tmp)
    try:
        run.qtest.cmd(f"write 0x40000000 0x1000 0x{PATTERN.hex()}")
        run.qtest.cmd(f"write 0x40100000 0x8 0x{b'pyqemu!!'.hex()}")
        for offset, value in ((0x24, 0x1234), (0x28, 0x7F), (0x2C, 0x70), (0x38, 0x50)):
            run.qtest.cmd(f"writel {UART + offset:#x} {value:#x}")
        path = tmp / "qemu.mig"
        assert run.qmp.cmd("migrate", uri=f"exec:cat > {path}") == {"return": {}}
        info = wait_migration(run.qmp)
        assert info["status"] == "completed", info
        assert run.qmp.cmd("query-status")["return"]["status"] == "postmigrate"
    finally:
        stop_qemu(run)
    return path


def analyze(path: Path) -> Any:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "analyze-migration.py"),
            "-f",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_analyze_migration_reads_qemu_stream(qemu_stream: Path) -> None:
    state = analyze(qemu_stream)
    keys = list(state)
    assert keys[0] == "ram (2)"
    assert "timer (0)" in keys
    sizes = state["ram (2)"]["section sizes"]
    assert sizes["mach-virt.ram"] == "0x0000000008000000"
    uart = next(v for k, v in state.items() if k.startswith("pl011 "))
    assert uart["ibrd"] == "0x00001234"
    assert uart["fbrd"] == "0x0000007f"
    assert uart["lcr"] == "0x00000070"
    assert uart["int_enabled"] == "0x00000050"
    assert uart["read_fifo"] == ["0x00000000"] * 16
    assert uart["read_trigger"] == "0x00000001"
    assert uart["pl011/clock"] == {"clk": {"period": "0x0000000000000000"}}
    gs = next(v for k, v in state.items() if k.startswith("globalstate "))
    assert gs["size"] == "0x0000000a"  # "prelaunch" and its NUL
    desc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "analyze-migration.py"),
            "-f",
            str(qemu_stream),
            "-d",
            "desc",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(desc.stdout)["page_size"] == 4096


def test_qemu_stream_loads_into_pyqemu_virt(qemu_stream: Path) -> None:
    data = qemu_stream.read_bytes()
    machine, _ = make_virt(with_dev=False)
    assert machine.ram is not None
    with pytest.raises(Error) as info:
        qemu_loadvm_state(data, machine)
    message = str(info.value)
    assert "sections for devices this machine does not have" in message
    assert "'cpu' (instance 0)" in message
    assert "'arm_gic'" not in message  # pyqemu's virt has QEMU's GIC
    assert "RAM block 'virt.flash0'" in message
    assert bytes(machine.ram.get_ram_ptr()[:4096]) == bytes(4096)
    result = qemu_loadvm_state(data, machine, skip_unknown=True)
    assert result.machine_type == "virt-7.2"
    assert result.runstate == "prelaunch"
    assert bytes(machine.ram.get_ram_ptr()[:4096]) == PATTERN
    assert bytes(machine.ram.get_ram_ptr()[0x100000:0x100008]) == b"pyqemu!!"
    assert "arm_gic (0)" in result.loaded
    pl011_class = hw.char.pl011.PL011State
    if isinstance(getattr(pl011_class, "vmsd", None), VMStateDescription):
        # pyqemu's PL011 loads QEMU's section: the guest reads the same registers.
        assert "pl011 (0)" in result.loaded
        space = get_address_space_memory()
        assert space.read(UART + 0x24, 4) == 0x1234  # IBRD
        assert space.read(UART + 0x2C, 4) == 0x70  # LCR_H
        assert space.read(UART + 0x38, 4) == 0x50  # IMSC
    else:
        assert "'pl011' (instance 0)" in result.skipped


def test_pyqemu_stream_loads_into_qemu(tmp_path: Path) -> None:
    machine, _ = make_virt(with_dev=False)
    write_pattern(0, PATTERN)
    write_pattern(0x7FF_0000, b"from pyqemu")
    path = tmp_path / "pyqemu.mig"
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine, runstate="paused")
    path.write_bytes(f.getvalue())
    run = start_qemu(tmp_path, "-incoming", f"exec:cat {path}")
    try:
        info = wait_migration(run.qmp)
        assert info["status"] == "completed", run.proc.stderr
        assert run.qmp.cmd("query-status")["return"]["status"] == "paused"
        assert run.qtest.cmd("read 0x40000000 0x1000") == f"OK 0x{PATTERN.hex()}"
        expected = b"from pyqemu".hex()
        assert run.qtest.cmd("read 0x47ff0000 0xb") == f"OK 0x{expected}"
    finally:
        stop_qemu(run)


@dataclass
class Pl011Regs72:
    """QEMU 7.2's PL011State fields, as its C struct names them."""

    readbuff: u32 = field(default_factory=u32)
    flags: u32 = field(default_factory=u32)
    lcr: u32 = field(default_factory=u32)
    rsr: u32 = field(default_factory=u32)
    cr: u32 = field(default_factory=u32)
    dmacr: u32 = field(default_factory=u32)
    int_enabled: u32 = field(default_factory=u32)
    int_level: u32 = field(default_factory=u32)
    read_fifo: list[u32] = field(default_factory=lambda: [u32(0)] * 16)
    ilpr: u32 = field(default_factory=u32)
    ibrd: u32 = field(default_factory=u32)
    fbrd: u32 = field(default_factory=u32)
    ifl: u32 = field(default_factory=u32)
    read_pos: int = 0
    read_count: int = 0
    read_trigger: int = 0


def pl011_72_fields() -> list[VMStateField[Pl011As72]]:
    return [
        vmstate_uint32(lambda s: s.regs.get().readbuff),
        vmstate_uint32(lambda s: s.regs.get().flags),
        vmstate_uint32(lambda s: s.regs.get().lcr),
        vmstate_uint32(lambda s: s.regs.get().rsr),
        vmstate_uint32(lambda s: s.regs.get().cr),
        vmstate_uint32(lambda s: s.regs.get().dmacr),
        vmstate_uint32(lambda s: s.regs.get().int_enabled),
        vmstate_uint32(lambda s: s.regs.get().int_level),
        vmstate_array(lambda s: s.regs.get().read_fifo, vmstate_info_uint32, 16),
        vmstate_uint32(lambda s: s.regs.get().ilpr),
        vmstate_uint32(lambda s: s.regs.get().ibrd),
        vmstate_uint32(lambda s: s.regs.get().fbrd),
        vmstate_uint32(lambda s: s.regs.get().ifl),
        vmstate_int32(lambda s: s.regs.get().read_pos),
        vmstate_int32(lambda s: s.regs.get().read_count),
        vmstate_int32(lambda s: s.regs.get().read_trigger),
    ]


class Pl011As72(SysBusDevice, type_name="mig-pl011-as-7.2"):
    """A device described exactly as QEMU 7.2 describes its PL011."""

    regs: BqlRefCell[Pl011Regs72]
    clk: Clock

    vmsd = VMStateDescription["Pl011As72"](
        "pl011",
        version_id=2,
        minimum_version_id=2,
        fields=pl011_72_fields(),
        subsections=[
            VMStateDescription(
                "pl011/clock",
                version_id=1,
                minimum_version_id=1,
                fields=[vmstate_clock(lambda s: s.clk)],
            )
        ],
    )


def test_dump_vmstate_matches_qemu(tmp_path: Path) -> None:
    out = tmp_path / "qemu-dump.json"
    subprocess.run(
        [
            str(qemu72()),
            "-M",
            "virt",
            "-nodefaults",
            "-display",
            "none",
            "-dump-vmstate",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    qemu_dump = json.loads(out.read_text())
    ours = json.loads(dump_vmstate_json("virt-7.2"))
    assert ours["vmschkmachine"] == qemu_dump["vmschkmachine"]
    mine = ours["mig-pl011-as-7.2"]
    theirs = qemu_dump["pl011"]
    assert mine["Description"] == theirs["Description"]
    assert (mine["version_id"], mine["minimum_version_id"]) == (
        theirs["version_id"],
        theirs["minimum_version_id"],
    )


def test_qemu_pc_stream_loads_into_pyqemu_pc(tmp_path: Path) -> None:
    run = start_qemu(tmp_path, target="x86_64", machine="pc")
    path = tmp_path / "pc.mig"
    try:
        run.qtest.cmd(f"write 0x100000 0x1000 0x{PATTERN.hex()}")
        assert run.qmp.cmd("migrate", uri=f"exec:cat > {path}") == {"return": {}}
        assert wait_migration(run.qmp)["status"] == "completed"
    finally:
        stop_qemu(run)
    data = path.read_bytes()
    config = b"\x07\x00\x00\x00\x0dpc-i440fx-7.2"
    assert data[8:27] == config + b"\x01"  # no target-page-bits subsection
    machine = PcMachine()
    machine.attach()
    machine.machine_init()
    assert machine.ram is not None
    result = qemu_loadvm_state(data, machine, skip_unknown=True)
    assert result.machine_type == "pc-i440fx-7.2"
    assert "RAM block 'pc.bios'" in result.skipped
    assert bytes(machine.ram.get_ram_ptr()[0x100000:0x101000]) == PATTERN
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine)
    assert f.getvalue()[8:27] == config + b"\x01"
