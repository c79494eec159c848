"""Fixtures of the GIC unit tests: a realized, reset GIC with its outputs recorded.

Every test holds the BQL and starts from an empty runtime
(tests/runtime.py, autouse).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from hw.intc.arm_gic.device import GICState
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.qdev import device_cold_reset
from qemu_api.sysbus import sysbus_realize
from tests.runtime import qemu_runtime

# The fresh runtime of tests/runtime.py (autouse), re-exported for pytest.
__all__ = ["qemu_runtime"]

DIST = 0x0800_0000
CPU = 0x0801_0000
CPU_N = 0x0802_0000
"""Where the per-CPU interface of CPU *n* is mapped: ``CPU_N + n * 0x1000``."""


@dataclass
class Gic:
    """A GIC mapped at :data:`DIST`/:data:`CPU`, its IRQ and FIQ lines recorded."""

    dev: GICState
    mem: AddressSpace
    levels: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)

    def dread(self, offset: int, size: int = 4) -> int:
        return self.mem.read(DIST + offset, size)

    def dwrite(self, offset: int, value: int, size: int = 4) -> None:
        self.mem.write(DIST + offset, value, size)

    def cread(self, offset: int, size: int = 4, cpu: int | None = None) -> int:
        base = CPU if cpu is None else CPU_N + cpu * 0x1000
        return self.mem.read(base + offset, size)

    def cwrite(
        self, offset: int, value: int, size: int = 4, cpu: int | None = None
    ) -> None:
        base = CPU if cpu is None else CPU_N + cpu * 0x1000
        self.mem.write(base + offset, value, size)

    def line(self, n: int, level: int) -> None:
        self.dev.get_gpio_in(n).set(level)

    def irq(self, cpu: int = 0) -> int:
        return self.levels.get(f"irq{cpu}", 0)

    def fiq(self, cpu: int = 0) -> int:
        return self.levels.get(f"fiq{cpu}", 0)

    def record(self, name: str, level: int) -> None:
        self.levels[name] = level
        self.calls.append((name, level))

    def recorder(self, name: str) -> Callable[[int, int], None]:
        """An IRQ handler that records line ``name``."""

        def handler(n: int, level: int) -> None:
            self.record(name, level)

        return handler

    def enable_all(self, cpu: int | None = None) -> None:
        """Forward both groups, enable every interrupt, open the CPU interface."""
        self.dwrite(0x000, 3)
        for word in range(self.dev.num_irq // 32):
            self.dwrite(0x100 + 4 * word, 0xFFFF_FFFF)
        self.cwrite(0x00, 3, cpu=cpu)
        self.cwrite(0x04, 0xFF, cpu=cpu)


def make_gic(
    num_irq: int = 96, revision: int = 2, num_cpu: int = 1, **props: int
) -> Gic:
    dev = GICState()
    dev.num_irq = num_irq
    dev.revision = revision
    dev.num_cpu = num_cpu
    for name, value in props.items():
        dev.property_set(name, value)
    sysbus_realize(dev)
    dev.mmio_map(0, DIST)
    dev.mmio_map(1, CPU)
    for cpu in range(num_cpu):
        dev.mmio_map(2 + cpu, CPU_N + cpu * 0x1000)
    gic = Gic(dev, get_address_space_memory())
    for cpu in range(num_cpu):
        dev.connect_irq(cpu, qemu_allocate_irq(gic.recorder(f"irq{cpu}"), cpu))
        dev.connect_irq(
            num_cpu + cpu, qemu_allocate_irq(gic.recorder(f"fiq{cpu}"), cpu)
        )
    device_cold_reset(dev)
    return gic


@pytest.fixture
def gic() -> Gic:
    """A uniprocessor GICv2 with 96 interrupts (64 SPIs)."""
    return make_gic()
