"""Fixtures of the HPET unit tests: an HPET on a fresh runtime with recorded IRQs.

Every test holds the BQL and starts from an empty runtime (tests/runtime.py):
the virtual clock at 0, no timers armed, no objects, no global properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hw.timer.hpet.device import HPETState
from hw.timer.hpet.registers import HPET_BASE
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import (
    AddressSpace,
    MemoryRegion,
    get_address_space_memory,
    get_system_memory,
)
from qemu_api.qdev import device_cold_reset
from qemu_api.sysbus import sysbus_realize
from tests.runtime import qemu_runtime

__all__ = ["qemu_runtime"]

CAP, CFG, ISR, CNT = 0x000, 0x010, 0x020, 0x0F0
ENABLE, LEGACY = 0x1, 0x2
LEVEL, TN_ENABLE, PERIODIC, SETVAL, MODE32, FSB_EN = (
    0x2,
    0x4,
    0x8,
    0x40,
    0x100,
    0x4000,
)


def tn_cfg(n: int) -> int:
    return 0x100 + 0x20 * n


def tn_cmp(n: int) -> int:
    return 0x108 + 0x20 * n


def tn_fsb(n: int) -> int:
    return 0x110 + 0x20 * n


def route(n: int) -> int:
    """Tn_INT_ROUTE_CNF for IRQ output ``n``."""
    return n << 9


@dataclass
class Hpet:
    """A realized, reset HPET at 0xfed00000 with its 32 outputs recorded."""

    dev: HPETState
    mem: AddressSpace
    levels: list[int] = field(default_factory=lambda: [0] * 32)
    events: list[tuple[int, int]] = field(default_factory=list)
    pit: list[int] = field(default_factory=list)

    def read(self, offset: int, size: int = 4) -> int:
        return self.mem.read(HPET_BASE + offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.mem.write(HPET_BASE + offset, value, size)

    def irq(self, n: int, level: int) -> None:
        # Level changes only, as qtest's irq_intercept reports them.
        if self.levels[n] != level:
            self.levels[n] = level
            self.events.append((n, level))

    def pit_level(self, n: int, level: int) -> None:
        self.pit.append(level)


def make_hpet(
    intcap: int = 0x00FF_0104, num_timers: int = 3, msi: bool = False
) -> Hpet:
    dev = HPETState()
    dev.intcap = intcap
    dev.num_timers = num_timers
    dev.msi = msi
    sysbus_realize(dev)
    dev.mmio_map(0, HPET_BASE)
    h = Hpet(dev, get_address_space_memory())
    for i in range(32):
        dev.connect_irq(i, qemu_allocate_irq(h.irq, i))
    dev.connect_gpio_out(0, qemu_allocate_irq(h.pit_level, 0))
    device_cold_reset(dev)
    h.events.clear()
    return h


@pytest.fixture
def hpet() -> Hpet:
    """An HPET with Q35's intcap (IRQ2, IRQ8, IRQ16-23) and 3 timers."""
    return make_hpet()


@pytest.fixture
def ram() -> MemoryRegion:
    """128 KiB of RAM at 0 for FSB messages."""
    mr = MemoryRegion.ram(None, "fsb-ram", 0x20000)
    get_system_memory().add_subregion(0, mr)
    return mr
