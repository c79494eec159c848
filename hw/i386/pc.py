"""The ``pc`` board for x86_64 (QEMU's ``hw/i386/pc_piix.c``), without a CPU yet.

RAM from address 0 (``-m``, 128 MiB by default, QEMU's block name ``pc.ram``), an
I/O APIC-shaped interrupt controller (``ioapic``, 24 pins) whose inputs qtest can
intercept, and the HPET's place at 0xfed00000 with its timer interrupts routed as
QEMU routes them (timer 0 to pin 2 in legacy mode, pin 8 for the RTC line).
"""

from __future__ import annotations

from typing import Final

from hw.core.machine import MachineState
from hw.intc.latch import Ioapic
from qemu_api.qdev import qdev_get_gpio_in
from qemu_api.qom import object_class_by_name, object_property_add_child, override
from qemu_api.sysbus import sysbus_new, sysbus_realize

__all__ = ["HPET_BASE", "IOAPIC_NUM_PINS", "PcMachine"]

HPET_BASE: Final = 0xFED00000
"""QEMU's ``HPET_BASE``."""

IOAPIC_NUM_PINS: Final = 24


class PcMachine(MachineState, type_name="pc-i440fx-7.2-machine"):
    """QEMU's standard PC, as far as the devices pyqemu models."""

    machine_name = "pc"
    desc = "Standard PC (i440FX + PIIX, 1996)"
    aliases = ("pc-i440fx-7.2",)
    targets = ("x86_64",)
    default_for = ("x86_64",)
    ram_name = "pc.ram"
    ram_base = 0

    @override
    def machine_init(self) -> None:
        super().machine_init()
        ioapic = Ioapic()
        object_property_add_child(self, "ioapic", ioapic)
        sysbus_realize(ioapic)
        self.ioapic = ioapic
        if object_class_by_name("hpet") is not None:
            sbd = sysbus_new("hpet")
            object_property_add_child(self, "hpet", sbd)
            sysbus_realize(sbd)
            sbd.mmio_map(0, HPET_BASE)
            # QEMU: timer IRQs go to the GSIs; pin 2 (timer 0 in legacy mode)
            # and pin 8 (RTC) are the legacy routes.
            for i in range(IOAPIC_NUM_PINS):
                if i < sbd.num_irq:
                    sbd.connect_irq(i, qdev_get_gpio_in(ioapic, i))
