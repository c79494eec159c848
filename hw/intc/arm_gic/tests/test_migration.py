"""The GIC's VMState: QEMU's wire layout, round trips, refused values."""

from __future__ import annotations

import re

import pytest

from hw.intc.arm_gic.device import GICState
from hw.intc.arm_gic.tests.conftest import Gic, make_gic
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state

VMSD = GICState.vmsd
# QEMU's vmstate_gic, field by field: ctlr, cpu_ctlr[8], irq_state[1020] (7 bytes),
# irq_target[1020], priority1[32][8], priority2[988], sgi_pending[16][8],
# priority_mask[8], running_priority[8], current_pending[8] (uint16), bpr[8],
# abpr[8], apr[4][8], nsapr[4][8] (uint32).
IRQ_STATE = 4 + 32
IRQ_TARGET = IRQ_STATE + 1020 * 7
PRIORITY1 = IRQ_TARGET + 1020
PRIORITY2 = PRIORITY1 + 256
SGI_PENDING = PRIORITY2 + 988
PRIORITY_MASK = SGI_PENDING + 128
RUNNING = PRIORITY_MASK + 16
CURRENT = RUNNING + 16
BPR = CURRENT + 16
ABPR = BPR + 8
APR = ABPR + 8
NSAPR = APR + 128
SIZE = NSAPR + 128


def save(dev: GICState) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, VMSD, dev)
    return f.getvalue()


def load(dev: GICState, data: bytes) -> None:
    vmstate_load_state(QEMUFileReader(data), VMSD, dev, 12)


def programmed() -> Gic:
    gic = make_gic()
    gic.enable_all()
    gic.cwrite(0x00, 0x207)
    gic.dwrite(0x420, 0x3020_1000)
    gic.dwrite(0x084, 0x2)
    gic.line(1, 1)
    gic.dwrite(0xF00, 0x0200_0003)
    assert gic.cread(0x0C) == 3
    return gic


def test_reset_state_in_qemu_layout(gic: Gic) -> None:
    data = save(gic.dev)
    assert len(data) == SIZE
    assert data[IRQ_STATE : IRQ_STATE + 7] == bytes((0xFF, 0, 0, 0, 0, 1, 0))  # SGI 0
    assert data[IRQ_STATE + 16 * 7 : IRQ_STATE + 17 * 7] == bytes(7)  # PPI 16
    assert data[IRQ_TARGET : IRQ_TARGET + 3] == b"\x01\x01\x01"
    assert data[CURRENT : CURRENT + 4] == bytes((0x03, 0xFF, 0, 0))  # 1023, CPU 1: 0
    assert data[RUNNING : RUNNING + 2] == b"\x01\x00"  # 0x100
    assert data[ABPR : ABPR + 2] == b"\x01\x00"


def test_programmed_state_in_qemu_layout() -> None:
    gic = programmed()
    data = save(gic.dev)
    spi1 = IRQ_STATE + 33 * 7
    # enabled on every CPU slot, no latch (level-triggered), level on all, Group 1
    assert data[spi1 : spi1 + 7] == bytes((0xFF, 0x00, 0x00, 0xFF, 0, 0, 0xFF))
    sgi3 = IRQ_STATE + 3 * 7
    assert data[sgi3 : sgi3 + 7] == bytes((0xFF, 0x00, 0x01, 0x00, 0, 1, 0x00))
    assert data[PRIORITY2 : PRIORITY2 + 4] == bytes((0x00, 0x10, 0x20, 0x30))
    assert data[0:4] == b"\x00\x00\x00\x03"
    assert data[4:8] == b"\x00\x00\x02\x07"
    assert data[APR : APR + 4] == b"\x00\x00\x00\x01"  # priority 0: level 0


def test_round_trip_keeps_every_register() -> None:
    source = programmed()
    data = save(source.dev)
    reads = [source.dread(o) for o in range(0, 0x1000, 4)]
    cpu = [source.cread(o) for o in (0x00, 0x04, 0x08, 0x14, 0x18, 0x1C, 0xD0, 0xE0)]
    target = make_gic(num_irq=96)
    load(target.dev, data)
    assert [target.dread(o) for o in range(0, 0x1000, 4)] == reads
    assert [
        target.cread(o) for o in (0x00, 0x04, 0x08, 0x14, 0x18, 0x1C, 0xD0, 0xE0)
    ] == cpu
    assert save(target.dev) == data
    # The loaded state runs: interrupt 33 (level high, priority 0x10) is next.
    target.cwrite(0x10, 3)
    assert target.cread(0x0C) == 33


def test_load_does_not_drive_the_outputs() -> None:
    data = save(programmed().dev)
    target = make_gic()
    target.calls.clear()
    load(target.dev, data)
    assert target.calls == []


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (ABPR, b"\x09", "abpr[0] is 9 in the stream; expected 0 to 7"),
        (BPR, b"\x08", "bpr[0] is 8 in the stream; expected 0 to 7"),
        (RUNNING, b"\x01\x01", "running_priority[0] is 257"),
        (PRIORITY_MASK, b"\x01\x00", "priority_mask[0] is 256"),
        (CURRENT, b"\x00\x60", "current_pending[0] is 96 in the stream"),
    ],
)
def test_impossible_values_are_refused(offset: int, value: bytes, message: str) -> None:
    gic = programmed()
    data = bytearray(save(gic.dev))
    data[offset : offset + len(value)] = value
    target = make_gic()
    before = save(target.dev)
    with pytest.raises(Error, match=re.escape(message)):
        load(target.dev, bytes(data))
    assert save(target.dev) == before  # nothing changed


def test_truncated_stream_is_refused(gic: Gic) -> None:
    data = save(gic.dev)
    with pytest.raises(Error):
        load(make_gic().dev, data[:-5])
