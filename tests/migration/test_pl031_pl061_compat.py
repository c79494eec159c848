"""PL031, PL061 and gpio-key sections between QEMU 7.2's virt and pyqemu's, both ways.

QEMU (Debian's ``qemu-system-aarch64`` 7.2) runs ``-M virt`` stopped under
qtest, with the RTC on the virtual clock from a fixed date; qtest programs
the RTC (LR, MR, IMSC, an alarm already raised), the GPIO (directions, data,
interrupt sense, an input line driven with ``set_irq_in``) and QMP
``system_powerdown`` presses the power key (its release timer pending).  The
test reads every register back from QEMU, migrates to a file, loads the
stream into pyqemu's virt and compares the same reads there; the key's
release then comes after 100 ms of virtual time.  The other direction
programs pyqemu's devices, saves the whole machine, lets QEMU load it with
``-incoming`` and compares QEMU's reads with pyqemu's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import hw.gpio.gpio_key
import hw.gpio.pl061
import hw.rtc.pl031
from qemu_api.memory import get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileWriter
from qemu_api.migration.savevm import (
    dump_vmstate_json,
    qemu_loadvm_state,
    qemu_savevm_state,
)
from qemu_api.option import qemu_opts_parse
from qemu_api.qom import object_resolve_path
from qemu_api.rtc import configure_rtc
from qemu_api.timer import clock_step
from system.runstate import qemu_system_powerdown_request
from tests.migration.machine import make_virt
from tests.migration.test_qemu_compat import (
    QemuRun,
    start_qemu,
    stop_qemu,
    wait_migration,
)
from tests.oracle import qemu72

RTC = 0x0901_0000
GPIO = 0x0903_0000
RTC_OPTS = "base=2020-01-01T00:00:00,clock=vm"
RTC_REGS = (0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18)
GPIO_REGS = (0x3FC, 0x400, 0x404, 0x408, 0x40C, 0x410, 0x414, 0x418, 0x420)
MS = 1_000_000

assert hw.rtc.pl031.TYPE_PL031 == "pl031"
assert hw.gpio.pl061.TYPE_PL061 == "pl061"
assert hw.gpio.gpio_key.TYPE_GPIOKEY == "gpio-key"

# What the guest programs, on either side: (address, value).
PROGRAM = (
    (RTC + 0x08, 0x1234_5678),  # LR
    (RTC + 0x04, 0x1234_5678),  # MR == the counter: RIS at once
    (RTC + 0x04, 0x1234_5778),  # MR 256 s ahead: the alarm timer armed
    (RTC + 0x10, 1),  # IMSC
    (GPIO + 0x400, 0x07),  # DIR: lines 0-2 out
    (GPIO + 0x3FC, 0x05),
    (GPIO + 0x40C, 0x20),  # IEV: line 5 rising
    (GPIO + 0x408, 0x08),  # IBE: line 3 both edges
    (GPIO + 0x410, 0x28),  # IE
    (GPIO + 0x404, 0x40),  # IS: line 6 low level, latches at once
)


def qemu_reads(run: QemuRun) -> list[int]:
    out = []
    for base, regs in ((RTC, RTC_REGS), (GPIO, GPIO_REGS)):
        for offset in regs:
            reply = run.qtest.cmd(f"readl {base + offset:#x}")
            out.append(int(reply.split()[1], 16))
    return out


def pyqemu_reads() -> list[int]:
    mem = get_address_space_memory()
    return [
        mem.read(base + offset, 4)
        for base, regs in ((RTC, RTC_REGS), (GPIO, GPIO_REGS))
        for offset in regs
    ]


def qemu_pl061_path(run: QemuRun) -> str:
    children = run.qmp.cmd("qom-list", path="/machine/unattached")["return"]
    found = [c["name"] for c in children if c["type"] == "child<pl061>"]
    assert len(found) == 1, children
    return f"/machine/unattached/{found[0]}"


@pytest.fixture(autouse=True)
def vm_rtc() -> None:
    configure_rtc(qemu_opts_parse(RTC_OPTS))


def test_qemu_sections_load_into_pyqemu(tmp_path: Path) -> None:
    run = start_qemu(tmp_path, "-rtc", RTC_OPTS)
    path = tmp_path / "qemu.mig"
    try:
        for addr, value in PROGRAM:
            run.qtest.cmd(f"writel {addr:#x} {value:#x}")
        run.qtest.cmd(f"set_irq_in {qemu_pl061_path(run)} unnamed-gpio-in 5 1")
        assert "return" in run.qmp.cmd("system_powerdown")
        expected = qemu_reads(run)
        assert run.qmp.cmd("migrate", uri=f"exec:cat > {path}") == {"return": {}}
        assert wait_migration(run.qmp)["status"] == "completed"
    finally:
        stop_qemu(run)
    # The reads QEMU gave: the RTC's alarm raised and masked in, the GPIO's
    # outputs, input line 5 and the key on line 3, three interrupts latched.
    assert expected[:7] == [0x1234_5678, 0x1234_5778, 0x1234_5678, 1, 1, 1, 1]
    assert expected[7:] == [0x2D, 0x07, 0x40, 0x08, 0x20, 0x28, 0x68, 0x28, 0]

    machine, _ = make_virt(with_dev=False)
    result = qemu_loadvm_state(path.read_bytes(), machine, skip_unknown=True)
    for section in ("pl031 (0)", "pl061 (0)", "gpio-key (0)"):
        assert section in result.loaded
    assert pyqemu_reads() == expected
    # The key's release timer came along: 100 ms after the press.
    clock_step(100 * MS)
    assert get_address_space_memory().read(GPIO + 0x3FC, 4) == 0x25
    # And the RTC's alarm: 256 s after the counter's value.
    mem = get_address_space_memory()
    mem.write(RTC + 0x1C, 1, 4)
    assert mem.read(RTC + 0x14, 4) == 0
    clock_step(256_000 * MS)
    assert mem.read(RTC + 0x14, 4) == 1


def test_pyqemu_sections_load_into_qemu(tmp_path: Path) -> None:
    machine, _ = make_virt(with_dev=False)
    mem = get_address_space_memory()
    for addr, value in PROGRAM:
        mem.write(addr, value, 4)
    gpio = object_resolve_path("/machine/pl061")
    assert isinstance(gpio, hw.gpio.pl061.PL061State)
    gpio.get_gpio_in(5).set(1)
    qemu_system_powerdown_request()
    expected = pyqemu_reads()
    path = tmp_path / "pyqemu.mig"
    f = QEMUFileWriter()
    qemu_savevm_state(f, machine, runstate="paused")
    path.write_bytes(f.getvalue())
    run = start_qemu(tmp_path, "-rtc", RTC_OPTS, "-incoming", f"exec:cat {path}")
    try:
        info = wait_migration(run.qmp)
        assert info["status"] == "completed", run.proc.stderr
        assert qemu_reads(run) == expected
    finally:
        stop_qemu(run)
    assert expected[:7] == [0x1234_5678, 0x1234_5778, 0x1234_5678, 1, 1, 1, 1]
    assert expected[7:] == [0x2D, 0x07, 0x40, 0x08, 0x20, 0x28, 0x68, 0x28, 0]


def test_vmstate_descriptions_match_qemus(tmp_path: Path) -> None:
    out = tmp_path / "qemu-dump.json"
    cmd = [str(qemu72()), "-M", "virt", "-nodefaults", "-display", "none"]
    subprocess.run(
        [*cmd, "-dump-vmstate", str(out)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = json.loads(out.read_text())
    ours = json.loads(dump_vmstate_json("virt-7.2"))
    for name in ("pl031", "pl061", "gpio-key"):
        assert ours[name] == theirs[name], name
