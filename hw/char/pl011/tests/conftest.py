"""Fixtures of the PL011 unit tests: a UART on a fresh runtime, its chardev, its IRQs.

Every test holds the BQL and starts from an empty runtime, as the API's unit
tests do (tests/unit/conftest.py): no chardevs, objects, global properties,
log flags, trace patterns or armed timers survive a test.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import pytest

from hw.char.pl011.device import (
    TYPE_PL011,
    TYPE_PL011_LUMINARY,
    PL011Luminary,
    PL011State,
)
from qemu_api.chardev import Chardev, ChrEvent
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.qdev import device_cold_reset
from qemu_api.qom import override
from qemu_api.sysbus import sysbus_realize
from tests.runtime import qemu_runtime

# The fresh runtime of tests/runtime.py (autouse), re-exported for pytest.
__all__ = ["qemu_runtime"]

BASE = 0x0900_0000


class R(enum.IntEnum):
    """The register offsets of the PL011 TRM (ARM DDI 0183), as the tests use them."""

    DR = 0x000
    RSR = 0x004
    FR = 0x018
    ILPR = 0x020
    IBRD = 0x024
    FBRD = 0x028
    LCR_H = 0x02C
    CR = 0x030
    IFLS = 0x034
    IMSC = 0x038
    RIS = 0x03C
    MIS = 0x040
    ICR = 0x044
    DMACR = 0x048


class RecordingChardev(Chardev):
    """A chardev that records output, breaks and flow-control calls.

    ``stall`` makes the next writes accept nothing (backpressure);
    ``pending`` holds input that :meth:`accept_input` offers again, as a real
    backend keeps what the frontend could not take.
    """

    BACKEND = "pl011-test"

    def __init__(self, label: str = "pl011-test") -> None:
        super().__init__(label)
        self.output = bytearray()
        self.breaks: list[bool] = []
        self.stall = 0
        self.waits = 0
        self.accepts = 0
        self.pending = b""

    @override
    def write(self, data: bytes) -> int:
        if self.stall:
            self.stall -= 1
            return 0
        self.output += data[:1]
        return 1

    @override
    def wait_writable(self) -> None:
        self.waits += 1

    @override
    def set_break(self, enable: bool) -> bool:
        self.breaks.append(enable)
        return True

    @override
    def accept_input(self) -> None:
        self.accepts += 1
        if self.pending:
            n = self.be_write(self.pending)
            self.pending = self.pending[n:]

    def send(self, data: bytes) -> int:
        """Offer input; what the device cannot take now stays pending."""
        n = self.be_write(self.pending + data)
        self.pending = (self.pending + data)[n:]
        return n

    def send_break(self) -> None:
        self.be_event(ChrEvent.BREAK)


@dataclass
class Uart:
    """A realized, reset PL011 mapped at ``base``, with its IRQ lines recorded."""

    dev: PL011State
    backend: RecordingChardev | None
    mem: AddressSpace
    base: int = BASE
    levels: list[int] = field(default_factory=lambda: [0] * 6)
    calls: list[tuple[int, int]] = field(default_factory=list)

    def read(self, offset: int, size: int = 4) -> int:
        return self.mem.read(self.base + offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.mem.write(self.base + offset, value, size)

    def irq(self, n: int, level: int) -> None:
        self.levels[n] = level
        self.calls.append((n, level))


def make_uart(
    typename: str = TYPE_PL011, with_chardev: bool = True, base: int = BASE
) -> Uart:
    dev = PL011Luminary() if typename == TYPE_PL011_LUMINARY else PL011State()
    chr_ = RecordingChardev() if with_chardev else None
    if chr_ is not None:
        dev.chardev = chr_
    sysbus_realize(dev)
    dev.mmio_map(0, base)
    uart = Uart(dev, chr_, get_address_space_memory(), base)
    for i in range(6):
        dev.connect_irq(i, qemu_allocate_irq(uart.irq, i))
    device_cold_reset(dev)
    return uart


@pytest.fixture
def uart() -> Uart:
    """A PL011 with a :class:`RecordingChardev` and recorded IRQ lines."""
    return make_uart()
