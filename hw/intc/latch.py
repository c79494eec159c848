"""Minimal interrupt controllers that latch their input lines.

Until a CPU exists on the pc board, nothing consumes its interrupts: its
controller only records each input line's level, which tests read back (or
intercept with qtest's ``irq_intercept_in``, as with QEMU's controllers). It
keeps QEMU's type name and input numbering: ``ioapic`` has QEMU's 24 pins.
(The virt board's GIC is a real model: :mod:`hw.intc.arm_gic`.)

>>> from qemu_api.sysbus import sysbus_realize
>>> ioapic = Ioapic()
>>> sysbus_realize(ioapic)
>>> ioapic.get_gpio_in(1).raise_()
>>> ioapic.level(1), ioapic.level(2)
(1, 0)
"""

from __future__ import annotations

from typing import ClassVar

from qemu_api.bql import BqlRefCell
from qemu_api.error import Error
from qemu_api.qdev import ResetType
from qemu_api.qom import override
from qemu_api.sysbus import SysBusDevice

__all__ = ["IntcLatch", "Ioapic"]


class IntcLatch(SysBusDevice, type_name="intc-latch", abstract=True):
    """An interrupt controller that records the level of each input line."""

    num_inputs: ClassVar[int] = 0

    @override
    def instance_init(self) -> None:
        self._levels: BqlRefCell[list[int]] = BqlRefCell([])

    def inputs(self) -> int:
        """Return the number of input lines."""
        return self.num_inputs

    @override
    def realize(self) -> None:
        super().realize()
        n = self.inputs()
        if n <= 0:
            raise Error(f"'{self.typename()}' needs at least one input line")
        self._levels.replace([0] * n)
        self.init_gpio_in(self._set_irq, n)

    def _set_irq(self, line: int, level: int) -> None:
        with self._levels.borrow_mut() as levels:
            levels[line] = level

    def level(self, line: int) -> int:
        """Return the latched level of input *line* (0 or the last level set)."""
        with self._levels.borrow() as levels:
            return levels[line]

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        super().reset_hold(reset_type)
        with self._levels.borrow_mut() as levels:
            levels[:] = [0] * len(levels)


class Ioapic(IntcLatch, type_name="ioapic"):
    """The pc board's I/O APIC: 24 input pins.

    As QEMU's ``ioapic_set_irq``, input 0 (ISA IRQ 0: the PIT, or HPET timer 0
    in legacy mode) drives pin 2; qtest's ``irq_intercept_in ioapic`` sees the
    input number, 0, as with QEMU.

    >>> from qemu_api.sysbus import sysbus_realize
    >>> ioapic = Ioapic()
    >>> sysbus_realize(ioapic)
    >>> ioapic.get_gpio_in(0).raise_()
    >>> ioapic.level(0), ioapic.level(2)
    (0, 1)
    """

    num_inputs = 24

    @override
    def _set_irq(self, line: int, level: int) -> None:
        # "ISA IRQs map to GSI 1-1 except for IRQ0 which maps to GSI 2."
        super()._set_irq(2 if line == 0 else line, level)
