"""The ``virt`` board for aarch64 (QEMU's ``hw/arm/virt.c``), without a CPU yet.

It follows QEMU's memory map for what it models: RAM at 0x40000000 (``-m``,
128 MiB by default) named ``mach-virt.ram`` as QEMU names it; the GICv2
(``arm_gic``, QEMU's ``create_gic()`` for one CPU: 256 SPIs, revision 2, no
security or virtualization extensions) with its distributor at 0x08000000 and
its CPU interface at 0x08010000; the PL011 UART0 at 0x09000000 (0x1000 bytes)
on shared peripheral interrupt 1 (GIC input 1, interrupt ID 33), and the first
serial port as its chardev.
"""

from __future__ import annotations

from typing import Final

from hw.core.machine import MachineState
from hw.intc.arm_gic import GICState
from qemu_api.qdev import qdev_get_gpio_in
from qemu_api.qom import object_class_by_name, object_property_add_child, override
from qemu_api.sysbus import sysbus_new, sysbus_realize

__all__ = ["VIRT_MEMMAP", "VirtMachine"]

VIRT_MEMMAP: Final = {
    "gic-dist": (0x08000000, 0x00010000),
    "gic-cpu": (0x08010000, 0x00010000),
    "uart": (0x09000000, 0x00001000),
    "mem": (0x40000000, 0),
}
"""QEMU's virt addresses (``base_memmap``) for the parts the board models."""

UART_SPI: Final = 1
"""QEMU's ``VIRT_UART`` interrupt: SPI 1."""

NUM_IRQS: Final = 256
"""QEMU's ``NUM_IRQS``: the SPIs of the GIC (``num-irq`` adds the 32 private ones)."""


class VirtMachine(MachineState, type_name="virt-machine"):
    """QEMU's ARM virtual machine."""

    machine_name = "virt"
    desc = "QEMU 7.2 ARM Virtual Machine"
    aliases = ("virt-7.2",)
    targets = ("aarch64",)
    ram_name = "mach-virt.ram"
    ram_base = VIRT_MEMMAP["mem"][0]

    @override
    def machine_init(self) -> None:
        super().machine_init()
        gic = self.gic = self._create_gic()
        if object_class_by_name("pl011") is not None:
            self._create_uart(gic)

    def _create_gic(self) -> GICState:
        """QEMU's ``create_gic()`` for a GICv2 and one CPU.

        Sysbus IRQ 0 is the CPU's IRQ, 1 its FIQ, 2 its VIRQ and 3 its VFIQ;
        GPIO input *n* is SPI *n* and input ``256 + id`` the CPU's PPI ``id``.
        """
        gic = GICState()
        gic.revision = 2
        gic.num_cpu = 1
        gic.num_irq = NUM_IRQS + 32
        object_property_add_child(self, "gic", gic)
        sysbus_realize(gic)
        gic.mmio_map(0, VIRT_MEMMAP["gic-dist"][0])
        gic.mmio_map(1, VIRT_MEMMAP["gic-cpu"][0])
        return gic

    def _create_uart(self, gic: GICState) -> None:
        uart = sysbus_new("pl011")
        object_property_add_child(self, "pl011", uart)
        serial = self.serial_hd(0)
        if serial is not None:
            uart.property_set("chardev", serial.label)
        sysbus_realize(uart)
        uart.mmio_map(0, VIRT_MEMMAP["uart"][0])
        uart.connect_irq(0, qdev_get_gpio_in(gic, UART_SPI))
