"""The platform bus: room for ``-device`` sysbus devices (``hw/core/platform-bus.c``).

Sysbus devices have no address or interrupt of their own: a board wires
them. For the few types a board allows on its command line (QEMU's dynamic
sysbus devices), a :class:`PlatformBusDevice` provides the wiring: an MMIO
window (a container region the board maps, virt's 32 MiB at 0x0c000000) and
a set of interrupt lines (virt's 64, SPIs 112 to 175).
:meth:`PlatformBusDevice.link_device` gives a new device the first free lines
and, for each of its regions, the first free naturally aligned slot of the
window, as QEMU does. The device tree then describes it under the bus node
(:mod:`hw.core.sysbus_fdt`).

>>> from qemu_api.memory import MemoryRegion
>>> from qemu_api.irq import qemu_allocate_irqs
>>> from qemu_api.sysbus import SysBusDevice, sysbus_realize
>>> from qemu_api.irq import InterruptSource
>>> pbus = PlatformBusDevice()
>>> pbus.num_irqs, pbus.mmio_size = 4, 0x10000
>>> sysbus_realize(pbus)
>>> spis = qemu_allocate_irqs(lambda n, level: None, 4)
>>> for i in range(4):
...     pbus.connect_irq(i, spis[i])
>>> class Dev(SysBusDevice, type_name="doc-pbus-dev"):
...     @override
...     def instance_init(self) -> None:
...         self.init_mmio(MemoryRegion.container(self, "regs", 0x1000))
...         self.init_irq(InterruptSource())
>>> a, b = Dev(), Dev()
>>> for dev in (a, b):
...     sysbus_realize(dev)
...     pbus.link_device(dev)
>>> (
...     [hex(pbus.get_mmio_addr(d, 0)) for d in (a, b)],
...     [pbus.get_irqn(d, 0) for d in (a, b)],
... )
(['0x0', '0x1000'], [0, 1])
"""

from __future__ import annotations

from typing import Final

from qemu_api.bql import BqlRefCell
from qemu_api.error import Error
from qemu_api.irq import InterruptSource
from qemu_api.memory import MemoryRegion
from qemu_api.qdev import prop_u32
from qemu_api.qom import override
from qemu_api.sysbus import SysBusDevice

__all__ = ["TYPE_PLATFORM_BUS_DEVICE", "PlatformBusDevice"]

TYPE_PLATFORM_BUS_DEVICE: Final = "platform-bus-device"
"""QEMU's ``TYPE_PLATFORM_BUS_DEVICE``."""


class PlatformBusDevice(SysBusDevice, type_name=TYPE_PLATFORM_BUS_DEVICE):
    """QEMU's ``PlatformBusDevice``: an MMIO window and IRQ lines to hand out.

    Region 0 is the window (a container named ``platform bus``, which the
    board maps); IRQ ``n`` is line ``n``, which the board connects to its
    interrupt controller before any device is linked.
    """

    num_irqs = prop_u32("num_irqs", doc="interrupt lines to hand out")
    mmio_size = prop_u32("mmio_size", doc="size of the MMIO window")

    @override
    def instance_init(self) -> None:
        self._used_irqs: BqlRefCell[list[bool]] = BqlRefCell([])
        self.mmio: MemoryRegion | None = None

    @override
    def realize(self) -> None:
        super().realize()
        self.mmio = MemoryRegion.container(None, "platform bus", self.mmio_size)
        self.init_mmio(self.mmio)
        self._used_irqs.replace([False] * self.num_irqs)
        for _ in range(self.num_irqs):
            self.init_irq(InterruptSource())

    def _window(self) -> MemoryRegion:
        if self.mmio is None:
            raise Error("platform bus: link devices after realizing the bus")
        return self.mmio

    def link_device(self, sbdev: SysBusDevice) -> None:
        """Give *sbdev* its IRQ lines and MMIO slots (``platform_bus_link_device``).

        IRQs already connected and regions already mapped are left alone.

        Raises:
            Error: no free IRQ line, or no free slot big enough.
        """
        for n in range(sbdev.num_irq):
            self._map_irq(sbdev, n)
        for n in range(sbdev.num_mmio):
            self._map_mmio(sbdev, n)

    def _map_irq(self, sbdev: SysBusDevice, n: int) -> None:
        if sbdev.is_irq_connected(n):
            return
        with self._used_irqs.borrow_mut() as used:
            try:
                irqn = used.index(False)
            except ValueError:
                raise Error(
                    "Platform Bus: Can not fit IRQ line",
                    hint=f"The platform bus has {len(used)} interrupt lines and "
                    "all are in use; add fewer -device devices.\n",
                ) from None
            used[irqn] = True
        sbdev.connect_irq(n, self.get_connected_irq(irqn))

    def _map_mmio(self, sbdev: SysBusDevice, n: int) -> None:
        window = self._window()
        mr = sbdev.mmio_get_region(n)
        if mr.is_mapped():
            return
        size = mr.size
        # Naturally aligned: the smallest power of two that holds the region.
        alignment = 1 << max(size - 1, 0).bit_length() if size > 1 else 1
        taken = [(sub.addr, sub.addr + sub.size) for sub in window.subregions]
        for off in range(0, window.size, alignment):
            if off + size > window.size:
                break
            if all(off + size <= start or off >= end for start, end in taken):
                window.add_subregion(off, mr)
                return
        raise Error(
            f"Platform Bus: Can not fit MMIO region of size {size:x}",
            hint=f"The platform bus window is 0x{window.size:x} bytes; add fewer "
            "-device devices.\n",
        )

    def get_mmio_addr(self, sbdev: SysBusDevice, n: int) -> int | None:
        """Where region *n* of *sbdev* is on the bus (``platform_bus_get_mmio_addr``).

        Returns:
            The offset from the start of the bus, or None when the region is
            not mapped on this bus.
        """
        mr = sbdev.mmio_get_region(n)
        if mr.parent_container is not self.mmio or self.mmio is None:
            return None
        return mr.addr

    def get_irqn(self, sbdev: SysBusDevice, n: int) -> int | None:
        """Which bus line IRQ *n* of *sbdev* uses (``platform_bus_get_irqn``).

        Returns:
            The line number, or None when the IRQ is not on this bus.
        """
        irq = sbdev.get_connected_irq(n)
        if irq is None:
            return None
        for i in range(self.num_irq):
            if self.get_connected_irq(i) is irq:
                return i
        return None
