"""The generic timer of an ARMv8 CPU (QEMU's ``gt_*`` functions in ``helper.c``).

The counter runs at QEMU 7.2's ``virt`` frequency, 62.5 MHz (one tick every
``GTIMER_SCALE`` = 16 ns of virtual time), derived from the virtual clock, so it
stops with the machine and follows instructions under ``-icount``. The EL1
physical and virtual timers are modelled register for register:

- ``CNTx_CTL``: ENABLE (bit 0), IMASK (bit 1), ISTATUS (bit 2, read-only: the
  timer condition is met);
- ``CNTx_CVAL``: the compare value; the condition is ``count - offset >= CVAL``
  (unsigned), with the offset ``CNTVOFF`` for the virtual timer and 0 for the
  physical one;
- ``CNTx_TVAL``: reads ``CVAL - (count - offset)`` as a signed 32-bit value,
  writes ``CVAL = count - offset + sign_extend(value)``.

A timer's output line is high while it is enabled, its condition is met and it
is not masked; a virtual-clock timer wakes the model when the condition starts
to hold.

>>> t = GenericTimer(lambda: 1600, lambda level: None)  # 1600 ns = 100 ticks
>>> t.count()
100
>>> t.write_tval(50)
>>> t.cval, t.read_tval()
(150, 50)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

from qemu_api.timer import CLOCK_VIRTUAL, Timer

__all__ = [
    "CTL_ENABLE",
    "CTL_IMASK",
    "CTL_ISTATUS",
    "GTIMER_HYP",
    "GTIMER_HYPVIRT",
    "GTIMER_PHYS",
    "GTIMER_SCALE",
    "GTIMER_SEC",
    "GTIMER_VIRT",
    "GT_CNTFRQ",
    "GenericTimer",
]

GTIMER_PHYS: Final = 0
GTIMER_VIRT: Final = 1
GTIMER_HYP: Final = 2
GTIMER_SEC: Final = 3
GTIMER_HYPVIRT: Final = 4
NUM_GTIMERS: Final = 5

GTIMER_SCALE: Final = 16
"""Nanoseconds per counter tick (QEMU 7.2's ``GTIMER_SCALE``)."""
GT_CNTFRQ: Final = 1_000_000_000 // GTIMER_SCALE
"""The counter frequency, 62.5 MHz, as ``CNTFRQ_EL0`` reads it."""

CTL_ENABLE: Final = 1 << 0
CTL_IMASK: Final = 1 << 1
CTL_ISTATUS: Final = 1 << 2

_U64: Final = (1 << 64) - 1


@final
class GenericTimer:
    """One EL1 timer: its registers, its condition and its output line.

    Args:
        clock_ns: the virtual time now, in ns (the CPU's clock source).
        set_irq: drives the timer's output line.
        offset: a callable returning the counter offset (CNTVOFF for the
            virtual timer); None for the physical timer.
    """

    def __init__(
        self,
        clock_ns: Callable[[], int],
        set_irq: Callable[[int], None],
        offset: Callable[[], int] | None = None,
    ) -> None:
        self.clock_ns = clock_ns
        self._set_irq = set_irq
        self._offset = offset
        self.ctl = 0
        """ENABLE and IMASK as written (ISTATUS is computed)."""
        self.cval = 0
        self.level = 0
        self.timer = Timer(CLOCK_VIRTUAL, 1, self.recalc)

    def count(self) -> int:
        """Return the physical count (``CNTPCT``): virtual ns / 16."""
        return self.clock_ns() // GTIMER_SCALE

    def offset(self) -> int:
        """Return this timer's counter offset."""
        return self._offset() if self._offset is not None else 0

    def istatus(self) -> bool:
        """Return whether the timer condition is met."""
        return (
            bool(self.ctl & CTL_ENABLE)
            and ((self.count() - self.offset()) & _U64) >= self.cval
        )

    def read_ctl(self) -> int:
        """Return ``CNTx_CTL`` with ISTATUS."""
        return self.ctl | (CTL_ISTATUS if self.istatus() else 0)

    def write_ctl(self, value: int) -> None:
        """Write ``CNTx_CTL`` (ENABLE and IMASK)."""
        self.ctl = value & (CTL_ENABLE | CTL_IMASK)
        self.recalc()

    def write_cval(self, value: int) -> None:
        """Write ``CNTx_CVAL``."""
        self.cval = value & _U64
        self.recalc()

    def read_tval(self) -> int:
        """Return ``CNTx_TVAL``: CVAL minus the count, as signed 32 bits."""
        return (self.cval - (self.count() - self.offset())) & 0xFFFFFFFF

    def write_tval(self, value: int) -> None:
        """Write ``CNTx_TVAL``: CVAL becomes the count plus the signed value."""
        tval = value & 0xFFFFFFFF
        if tval & 0x80000000:
            tval -= 1 << 32
        self.cval = (self.count() - self.offset() + tval) & _U64
        self.recalc()

    def recalc(self) -> None:
        """Update the output line and arm the wake-up (QEMU's ``gt_recalc_timer``)."""
        if self.ctl & CTL_ENABLE:
            istatus = self.istatus()
            level = int(istatus and not self.ctl & CTL_IMASK)
            if istatus:
                self.timer.delete()
            else:
                # The tick at which the condition starts to hold, in ns.
                nexttick = self.cval + self.offset()
                if nexttick > (1 << 63) // GTIMER_SCALE:
                    self.timer.delete()
                else:
                    self.timer.mod_ns(nexttick * GTIMER_SCALE)
        else:
            level = 0
            self.timer.delete()
        if level != self.level:
            self.level = level
            self._set_irq(level)

    def reset(self) -> None:
        """Disable the timer and lower its line."""
        self.ctl = 0
        self.cval = 0
        self.timer.delete()
        if self.level:
            self.level = 0
            self._set_irq(0)
