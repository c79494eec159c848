"""Fixtures of the PL061 unit tests: a GPIO on a fresh runtime, its lines recorded.

Every test holds the BQL and starts from an empty runtime (tests/runtime.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hw.gpio.pl061.device import (
    N_GPIOS,
    TYPE_PL061_LUMINARY,
    PL061Luminary,
    PL061State,
)
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.qdev import device_cold_reset
from qemu_api.qom import object_get_root, object_property_add_child
from qemu_api.sysbus import sysbus_realize
from tests.runtime import qemu_runtime

# The fresh runtime of tests/runtime.py (autouse), re-exported for pytest.
__all__ = ["qemu_runtime"]

BASE = 0x0903_0000
DIR, IS, IBE, IEV, IE, RIS, MIS, IC, AFSEL = (
    0x400,
    0x404,
    0x408,
    0x40C,
    0x410,
    0x414,
    0x418,
    0x41C,
    0x420,
)
ALL = 0x3FC
"""The GPIODATA window that reaches every line."""


def window(lines: int) -> int:
    """The GPIODATA offset whose address bits select ``lines``."""
    return lines << 2


@dataclass
class Gpio:
    """A realized, reset PL061 at ``base``: GPIOINTR and the outputs recorded."""

    dev: PL061State
    mem: AddressSpace
    base: int = BASE
    intr: list[int] = field(default_factory=list)
    outputs: list[tuple[int, int]] = field(default_factory=list)

    @property
    def level(self) -> int:
        return self.intr[-1] if self.intr else 0

    def out_level(self, line: int) -> int | None:
        """The last level output ``line`` was driven to, or None."""
        for n, level in reversed(self.outputs):
            if n == line:
                return level
        return None

    def read(self, offset: int, size: int = 4) -> int:
        return self.mem.read(self.base + offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.mem.write(self.base + offset, value, size)

    def set_input(self, line: int, level: int) -> None:
        self.dev.get_gpio_in(line).set(level)

    def _intr(self, n: int, level: int) -> None:
        self.intr.append(level)

    def _out(self, n: int, level: int) -> None:
        self.outputs.append((n, level))


def make_gpio(
    typename: str = "pl061",
    pullups: int | None = None,
    pulldowns: int | None = None,
    name: str = "gpio",
) -> Gpio:
    dev = PL061Luminary() if typename == TYPE_PL061_LUMINARY else PL061State()
    object_property_add_child(object_get_root(), name, dev)
    if pullups is not None:
        dev.pullups = pullups
    if pulldowns is not None:
        dev.pulldowns = pulldowns
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    g = Gpio(dev, get_address_space_memory())
    dev.connect_irq(0, qemu_allocate_irq(g._intr, 0))
    for i in range(N_GPIOS):
        dev.connect_gpio_out(i, qemu_allocate_irq(g._out, i))
    device_cold_reset(dev)
    return g


@pytest.fixture
def gpio() -> Gpio:
    """A PL061 as QEMU's defaults make it (every line pulled up)."""
    return make_gpio()


@pytest.fixture
def virt_gpio() -> Gpio:
    """A PL061 as virt makes it: pullups 0, pulldowns 0xff."""
    return make_gpio(pullups=0, pulldowns=0xFF)
