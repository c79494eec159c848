"""Fixtures of the PL031 unit tests: an RTC on a fresh runtime, its IRQ, its events.

Every test holds the BQL and starts from an empty runtime (tests/runtime.py):
the rtc clock is the virtual clock from a fixed date, so the counter moves only
with ``clock_step`` and every value below is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from hw.rtc.pl031.device import PL031State
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.option import qemu_opts_parse
from qemu_api.qmp_event import qapi_event_add_listener, qapi_event_remove_listener
from qemu_api.qom import JSONValue, object_get_root, object_property_add_child
from qemu_api.rtc import configure_rtc
from qemu_api.sysbus import sysbus_realize
from tests.runtime import qemu_runtime

# The fresh runtime of tests/runtime.py (autouse), re-exported for pytest.
__all__ = ["qemu_runtime"]

BASE = 0x0901_0000
START = 1_577_836_800
"""2020-01-01T00:00:00 UTC, the ``-rtc base=`` of the tests, in seconds."""

DR, MR, LR, CR, IMSC, RIS, MIS, ICR = range(0, 0x20, 4)


@dataclass
class Rtc:
    """A realized PL031 mapped at ``base``, its IRQ line and RTC_CHANGE events."""

    dev: PL031State
    mem: AddressSpace
    base: int = BASE
    levels: list[int] = field(default_factory=list)
    events: list[dict[str, JSONValue]] = field(default_factory=list)

    @property
    def level(self) -> int:
        return self.levels[-1] if self.levels else 0

    def read(self, offset: int, size: int = 4) -> int:
        return self.mem.read(self.base + offset, size)

    def write(self, offset: int, value: int, size: int = 4) -> None:
        self.mem.write(self.base + offset, value, size)

    def irq(self, n: int, level: int) -> None:
        self.levels.append(level)

    def event(self, name: str, data: dict[str, JSONValue]) -> None:
        if name == "RTC_CHANGE":
            self.events.append(data)


def make_rtc(
    rtc_opts: str = "base=2020-01-01T00:00:00,clock=vm",
    name: str = "rtc",
    migrate_tick_offset: bool = True,
) -> Rtc:
    configure_rtc(qemu_opts_parse(rtc_opts))
    dev = PL031State()
    dev.migrate_tick_offset = migrate_tick_offset
    object_property_add_child(object_get_root(), name, dev)
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    rtc = Rtc(dev, get_address_space_memory())
    dev.connect_irq(0, qemu_allocate_irq(rtc.irq, 0))
    return rtc


@pytest.fixture
def rtc() -> Iterator[Rtc]:
    """A PL031 on the virtual clock from 2020-01-01, IRQ and events recorded."""
    r = make_rtc()
    qapi_event_add_listener(r.event)
    yield r
    qapi_event_remove_listener(r.event)
    configure_rtc()
