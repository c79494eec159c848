"""example-counter in this process: the registers, the interrupt, migration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyqemu_example_device.counter import EXAMPLE_COUNTER_ID, ExampleCounter
from qemu_api.irq import qemu_allocate_irq
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state
from qemu_api.sysbus import sysbus_realize
from qemu_api.testing import fresh_runtime

COUNT, ADD, LIMIT, STATUS, IRQEN = 0x04, 0x08, 0x0C, 0x10, 0x14


@pytest.fixture(autouse=True)
def runtime() -> Iterator[None]:
    with fresh_runtime():
        yield


def make(start: int = 0) -> tuple[ExampleCounter, list[int]]:
    dev = ExampleCounter()
    dev.property_set("start", start)
    sysbus_realize(dev)
    levels: list[int] = []
    dev.connect_irq(0, qemu_allocate_irq(lambda _n, lvl: levels.append(lvl), 0))
    dev.cold_reset()
    return dev, levels


def test_reset_values() -> None:
    dev, _ = make(start=9)
    assert dev.registers.read(dev, 0x00, 4) == EXAMPLE_COUNTER_ID
    assert dev.registers.read(dev, COUNT, 4) == 9
    assert dev.registers.read(dev, STATUS, 4) == 0


def test_add_wraps_at_32_bits() -> None:
    dev, _ = make(start=0xFFFF_FFFE)
    dev.registers.write(dev, ADD, 3, 4)
    assert dev.registers.read(dev, COUNT, 4) == 1


def test_match_raises_the_irq_until_cleared() -> None:
    dev, levels = make()
    dev.registers.write(dev, IRQEN, 1, 4)
    dev.registers.write(dev, LIMIT, 4, 4)
    dev.registers.write(dev, ADD, 4, 4)
    assert dev.registers.read(dev, STATUS, 4) == 1
    assert levels[-1] == 1
    dev.registers.write(dev, COUNT, 0, 4)
    dev.registers.write(dev, STATUS, 1, 4)  # write one to clear
    assert dev.registers.read(dev, STATUS, 4) == 0
    assert levels[-1] == 0


def test_migration_round_trip() -> None:
    dev, _ = make()
    dev.registers.write(dev, LIMIT, 0x1234, 4)
    dev.registers.write(dev, COUNT, 0x55, 4)
    f = QEMUFileWriter()
    vmstate_save_state(f, ExampleCounter.vmsd, dev)
    blob = f.getvalue()
    # count, limit, status, irqen: big-endian 32-bit words, as QEMU's VMSTATE_UINT32
    assert blob == bytes.fromhex("00000055 00001234 00000000 00000000")
    other, _ = make()
    vmstate_load_state(QEMUFileReader(blob), ExampleCounter.vmsd, other, 1)
    assert other.registers.read(other, COUNT, 4) == 0x55
    assert other.registers.read(other, LIMIT, 4) == 0x1234
