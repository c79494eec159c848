"""The HPET's VMState: QEMU's wire layout, round trips, the timer count check."""

from __future__ import annotations

import struct

import pytest

from hw.timer.hpet.device import HPETState
from hw.timer.hpet.tests.conftest import (
    CFG,
    CNT,
    ENABLE,
    Hpet,
    make_hpet,
    tn_cfg,
    tn_cmp,
)
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state
from qemu_api.timer import clock_step

VMSD = HPETState.vmsd


def save(dev: HPETState) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, VMSD, dev)
    return f.getvalue()


def test_layout_of_a_halted_hpet(hpet: Hpet) -> None:
    data = save(hpet.dev)
    assert len(data) == 25 + 3 * 42  # no subsection while halted
    config, isr, counter, n = struct.unpack(">QQQB", data[:25])
    assert (config, isr, counter, n) == (0, 0, 0, 3)
    tn, tcfg, cmp, fsb, period, wrap, expiry = struct.unpack(
        ">BQQQQBq", data[25 : 25 + 42]
    )
    assert (tn, tcfg, cmp, fsb, period, wrap, expiry) == (
        0,
        0x00FF_0104_0000_0030,
        0xFFFF_FFFF_FFFF_FFFF,
        0,
        0,
        0,
        -1,
    )


def test_running_hpet_sends_counter_and_offset(hpet: Hpet) -> None:
    clock_step(5000)
    hpet.write(CNT, 1000)
    hpet.write(tn_cmp(0), 1100, 8)
    hpet.write(tn_cfg(0), 0x4 | (2 << 9))
    hpet.write(CFG, ENABLE)
    clock_step(200)
    data = save(hpet.dev)
    assert len(data) == 25 + 3 * 42 + 1 + 1 + 11 + 4 + 8
    assert struct.unpack(">Q", data[16:24])[0] == 1020  # the running counter
    assert data[25 + 3 * 42 :][:13] == b"\x05\x0bhpet/offset"
    offset = struct.unpack(">Q", data[-8:])[0]
    assert offset == (1000 * 10 - 5000) & 0xFFFF_FFFF_FFFF_FFFF
    expiry = struct.unpack(">q", data[25 + 34 : 25 + 42])[0]
    assert expiry == 1100 * 10 - offset  # timer 0's match


def test_round_trip_keeps_the_next_interrupt(hpet: Hpet) -> None:
    hpet.write(tn_cfg(0), 0x4 | 0x8 | 0x40 | (2 << 9))
    hpet.write(tn_cmp(0), 300, 8)
    hpet.write(CFG, ENABLE)
    clock_step(4500)
    data = save(hpet.dev)
    other = make_hpet()
    clock_step(0)
    vmstate_load_state(QEMUFileReader(data), VMSD, other.dev, 2)
    assert other.read(CNT, 8) == hpet.read(CNT, 8) == 450
    assert other.dev.timers[0].qemu_timer.expire_time() == (
        hpet.dev.timers[0].qemu_timer.expire_time()
    )


def test_timer_count_must_match() -> None:
    data = save(make_hpet(num_timers=4).dev)
    other = make_hpet()
    with pytest.raises(Error, match="num_timers must match"):
        vmstate_load_state(QEMUFileReader(data), VMSD, other.dev, 2)
