"""The ``virt`` board for aarch64 (QEMU's ``hw/arm/virt.c``).

It follows QEMU's memory map for what it models: RAM at 0x40000000 (``-m``,
128 MiB by default) named ``mach-virt.ram`` as QEMU names it; the GICv2
(``arm_gic``, QEMU's ``create_gic()``: 256 SPIs, revision 2, no security or
virtualization extensions) with its distributor at 0x08000000 and its CPU
interface at 0x08010000; the PL011 UART0 at 0x09000000 (0x1000 bytes) on shared
peripheral interrupt 1 (GIC input 1, interrupt ID 33), and the first serial
port as its chardev.

With an accelerator that runs CPUs (``-accel tcg``, the default) the board
creates its CPU (``-cpu``, ``cortex-a57`` by default) and wires it as QEMU
7.2's ``create_gic()`` does: the CPU's generic-timer output *i* goes to the
interrupt controller's input ``ppibase + timer_irq[i]`` (the physical timer on
PPI 14, INTID 30; the virtual timer on PPI 11, INTID 27) and the controller's
sysbus IRQ outputs go to the CPU's IRQ, FIQ, VIRQ and VFIQ inputs. PSCI calls
arrive over HVC, as on QEMU's ``virt`` without EL2 and EL3.
"""

from __future__ import annotations

from typing import Final

from accel import current_accel
from hw.core.machine import MachineState
from hw.intc.arm_gic import GICState
from qemu_api.error import Error
from qemu_api.qdev import (
    DeviceState,
    qdev_get_gpio_in,
    qdev_new,
    qdev_realize,
)
from qemu_api.qom import object_class_by_name, object_property_add_child, override
from qemu_api.sysbus import sysbus_new, sysbus_realize
from target.arm.cpu import arm_cpu_type_name

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
GIC_INTERNAL: Final = 32
GIC_NR_SGIS: Final = 16

ARCH_TIMER_VIRT_IRQ: Final = 11
ARCH_TIMER_S_EL1_IRQ: Final = 13
ARCH_TIMER_NS_EL1_IRQ: Final = 14
ARCH_TIMER_NS_EL2_IRQ: Final = 10
VIRTUAL_PMU_IRQ: Final = 7

TIMER_IRQ: Final = (
    ARCH_TIMER_NS_EL1_IRQ,  # GTIMER_PHYS
    ARCH_TIMER_VIRT_IRQ,  # GTIMER_VIRT
    ARCH_TIMER_NS_EL2_IRQ,  # GTIMER_HYP
    ARCH_TIMER_S_EL1_IRQ,  # GTIMER_SEC
)
"""PPI of each generic-timer output, in QEMU's ``GTIMER_*`` order (GICv2)."""

QEMU_PSCI_CONDUIT_HVC: Final = 2

ARM_CPU_IRQ: Final = 0
ARM_CPU_FIQ: Final = 1
ARM_CPU_VIRQ: Final = 2
ARM_CPU_VFIQ: Final = 3


class VirtMachine(MachineState, type_name="virt-machine"):
    """QEMU's ARM virtual machine."""

    machine_name = "virt"
    desc = "QEMU 7.2 ARM Virtual Machine"
    aliases = ("virt-7.2",)
    targets = ("aarch64",)
    ram_name = "mach-virt.ram"
    ram_base = VIRT_MEMMAP["mem"][0]
    default_cpu_model = "cortex-a57"

    @override
    def machine_init(self) -> None:
        super().machine_init()
        self.cpus: list[DeviceState] = []
        accel = current_accel()
        if accel is not None and accel.has_cpus:
            self._create_cpus()
        gic = self.gic = self._create_gic()
        if object_class_by_name("pl011") is not None:
            self._create_uart(gic)

    def _create_cpus(self) -> None:
        model = self.cpu_model or self.default_cpu_model
        typename = arm_cpu_type_name(model)
        if object_class_by_name(typename) is None:
            raise Error(
                f"unable to find CPU model '{model}'",
                hint="Use -cpu help to list the CPU models.\n",
            )
        for n in range(self.smp_cpus):
            cpu = qdev_new(typename)
            cpu.property_set("psci-conduit", QEMU_PSCI_CONDUIT_HVC)
            # virt_cpu_mp_affinity: 8 CPUs per cluster with GICv2.
            cpu.property_set("mp-affinity", (n // 8) << 8 | n % 8)
            if n > 0:
                cpu.property_set("start-powered-off", True)
            qdev_realize(cpu)
            self.cpus.append(cpu)

    def _create_gic(self) -> GICState:
        """QEMU 7.2's ``create_gic()`` for a GICv2.

        Sysbus IRQ *i* is CPU *i*'s IRQ, *i* + n its FIQ, *i* + 2n its VIRQ and
        *i* + 3n its VFIQ; GPIO input *k* is SPI *k*, and input
        ``256 + 32 * i + id`` CPU *i*'s private interrupt ``id``. Each CPU's
        generic-timer output goes to its PPI (``ppibase + timer_irq[...]``).
        """
        gic = GICState()
        gic.revision = 2
        gic.num_cpu = max(1, len(self.cpus))
        gic.num_irq = NUM_IRQS + GIC_INTERNAL
        object_property_add_child(self, "gic", gic)
        sysbus_realize(gic)
        gic.mmio_map(0, VIRT_MEMMAP["gic-dist"][0])
        gic.mmio_map(1, VIRT_MEMMAP["gic-cpu"][0])
        smp = len(self.cpus)
        for i, cpu in enumerate(self.cpus):
            ppibase = NUM_IRQS + i * GIC_INTERNAL + GIC_NR_SGIS
            for irq, ppi in enumerate(TIMER_IRQ):
                cpu.connect_gpio_out(irq, qdev_get_gpio_in(gic, ppibase + ppi))
            cpu.connect_gpio_out_named(
                "pmu-interrupt", 0, qdev_get_gpio_in(gic, ppibase + VIRTUAL_PMU_IRQ)
            )
            gic.connect_irq(i, qdev_get_gpio_in(cpu, ARM_CPU_IRQ))
            gic.connect_irq(i + smp, qdev_get_gpio_in(cpu, ARM_CPU_FIQ))
            gic.connect_irq(i + 2 * smp, qdev_get_gpio_in(cpu, ARM_CPU_VIRQ))
            gic.connect_irq(i + 3 * smp, qdev_get_gpio_in(cpu, ARM_CPU_VFIQ))
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
