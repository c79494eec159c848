"""A key press on a GPIO line: QEMU's ``hw/gpio/gpio_key.c``.

Boards use it to turn a request into a key press the guest sees: QEMU's
``virt`` wires its input to ``system_powerdown`` and its output to GPIO 3 of
the PL061, where the device tree's ``gpio-keys`` node describes a power key.
Each level on the input raises the output and (re)arms a 100 ms timer on the
virtual clock that lowers it again: a human key press.

>>> from qemu_api.irq import qemu_allocate_irq
>>> from qemu_api.sysbus import sysbus_realize
>>> from qemu_api.timer import clock_step
>>> levels = []
>>> key = GPIOKeyState()
>>> sysbus_realize(key)
>>> key.connect_irq(0, qemu_allocate_irq(lambda n, level: levels.append(level), 0))
>>> key.get_gpio_in(0).set(1)
>>> _ = clock_step(99_000_000)
>>> levels
[1]
>>> _ = clock_step(1_000_000)
>>> levels
[1, 0]
"""

from __future__ import annotations

from typing import Final

from qemu_api.irq import InterruptSource
from qemu_api.migration.vmstate import VMStateDescription, vmstate_timer_ptr
from qemu_api.qdev import ResetType
from qemu_api.qom import override
from qemu_api.sysbus import SysBusDevice
from qemu_api.timer import CLOCK_VIRTUAL, Timer, qemu_clock_get_ms, timer_new_ms

__all__ = ["GPIO_KEY_LATENCY", "TYPE_GPIOKEY", "GPIOKeyState"]

TYPE_GPIOKEY: Final = "gpio-key"
"""QOM type name of the key (:class:`GPIOKeyState`)."""

GPIO_KEY_LATENCY: Final = 100
"""How long a press holds the output high, in ms."""


class GPIOKeyState(SysBusDevice, type_name=TYPE_GPIOKEY):
    """QEMU's ``TYPE_GPIOKEY``: GPIO input 0 presses, sysbus IRQ 0 is the key.

    Attributes:
        irq: the key's line (sysbus IRQ 0).
        timer: releases the key (created at realize, as in QEMU).
    """

    user_creatable = False

    timer: Timer

    @override
    def instance_init(self) -> None:
        self.irq = InterruptSource()
        self.init_irq(self.irq)
        self.init_gpio_in(self.set_irq, 1)

    @override
    def realize(self) -> None:
        super().realize()
        self.timer = timer_new_ms(CLOCK_VIRTUAL, self.timer_expired)

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """A reset forgets a press in progress (the line stays as it is)."""
        super().reset_hold(reset_type)
        self.timer.delete()

    def timer_expired(self) -> None:
        """Release the key (``gpio_key_timer_expired``)."""
        self.irq.set(0)
        self.timer.delete()

    def set_irq(self, line: int, level: int) -> None:
        """Press the key, whatever the level (``gpio_key_set_irq``)."""
        self.irq.set(1)
        self.timer.mod(qemu_clock_get_ms(CLOCK_VIRTUAL) + GPIO_KEY_LATENCY)

    vmsd = VMStateDescription["GPIOKeyState"](
        "gpio-key",
        version_id=1,
        minimum_version_id=1,
        fields=[vmstate_timer_ptr(lambda s: s.timer)],
    )
    """QEMU's ``vmstate_gpio_key``: the section ``gpio-key``, version 1."""
