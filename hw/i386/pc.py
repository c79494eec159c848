"""The ``pc`` board for x86_64 (QEMU's ``hw/i386/pc_piix.c``), without a CPU yet.

RAM from address 0 (``-m``, 128 MiB by default, QEMU's block name ``pc.ram``), an
I/O APIC-shaped interrupt controller (``ioapic``, 24 pins) whose inputs qtest can
intercept, and, unless ``-M pc,hpet=off``, the HPET at 0xfed00000 wired as QEMU's
``pc_basic_device_init`` wires it: ``hpet-intcap`` 0x4 (PIIX: IRQ2 only) unless
``-global hpet.hpet-intcap`` set one, its outputs 0-23 on the I/O APIC's inputs
(output 0, the legacy route of timer 0 and the PIT's line, reaches pin 2; output
8 is the RTC's line).  pyqemu's pc has no PIT or RTC yet: the HPET's inputs for
their interrupts and its ``pit_enabled`` output stay unconnected.
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
PIIX_HPET_INTCAP: Final = 0x4
"""The ``hpet-intcap`` of the PIIX pc: timers may route to IRQ2 only."""


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
    def instance_init(self) -> None:
        self.hpet_enabled = True
        self.property_add_bool(
            "hpet",
            lambda: self.hpet_enabled,
            self._set_hpet,
            "Enable/disable high precision event timer emulation",
        )

    def _set_hpet(self, value: bool) -> None:
        self.hpet_enabled = value

    @override
    def machine_init(self) -> None:
        super().machine_init()
        ioapic = Ioapic()
        object_property_add_child(self, "ioapic", ioapic)
        sysbus_realize(ioapic)
        self.ioapic = ioapic
        if self.hpet_enabled and object_class_by_name("hpet") is not None:
            # In /machine/unattached, as QEMU's: "hpet" is the machine's option.
            sbd = sysbus_new("hpet")
            # As QEMU: the board's mask unless the user gave one (-global).
            if not sbd.property_get("hpet-intcap"):
                sbd.property_set("hpet-intcap", PIIX_HPET_INTCAP)
            sysbus_realize(sbd)
            sbd.mmio_map(0, HPET_BASE)
            # QEMU: timer IRQs go to the GSIs; pin 2 (timer 0 in legacy mode)
            # and pin 8 (RTC) are the legacy routes.
            for i in range(IOAPIC_NUM_PINS):
                if i < sbd.num_irq:
                    sbd.connect_irq(i, qdev_get_gpio_in(ioapic, i))
