"""Device tree nodes for dynamic sysbus devices (QEMU's ``hw/arm/sysbus-fdt.c``).

A board with a platform bus describes the devices that ``-device`` put there
under one ``/platform-bus@BASE`` node (``compatible = "qemu,platform",
"simple-bus"``, one address and one size cell, ``ranges`` mapping the window).
QEMU keeps a table of node makers per device type in ``sysbus-fdt.c``; here
each device class provides its own, so a new device package (in this tree or
outside it) describes itself: a class that implements
:class:`SysBusFdtNode` (one method, ``add_fdt_node``) can be allowed on a
board's platform bus. The method gets a :class:`PlatformBusFDTData` with the
tree, the bus node's path and helpers for the device's window offset,
interrupt specifiers and the board's APB clock::

    class MyDev(SysBusDevice, type_name="my-dev"):
        def add_fdt_node(self, data: PlatformBusFDTData) -> None:
            node = data.node_path(self, "my-dev")
            data.fdt.add_subnode(node)
            data.fdt.setprop_string(node, "compatible", "vendor,my-dev")
            data.fdt.setprop_cells(node, "reg", *data.reg(self, 0))
            data.fdt.setprop_cells(node, "interrupts", *data.interrupts(self, 0))

A device without the method cannot be put on the platform bus: QEMU's
"Device TYPE can not be dynamically instantiated".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, final, runtime_checkable

from hw.core.platform_bus import PlatformBusDevice
from qemu_api.error import Error
from qemu_api.qdev import qdev_get_peripheral, qdev_get_peripheral_anon
from qemu_api.qom import Object
from qemu_api.sysbus import SysBusDevice
from system.device_tree import Fdt

__all__ = [
    "IRQ_TYPE_EDGE_RISING",
    "IRQ_TYPE_LEVEL_HIGH",
    "InterruptCells",
    "PlatformBusFDTData",
    "SysBusFdtNode",
    "dynamic_sysbus_devices",
    "platform_bus_add_all_fdt_nodes",
]

IRQ_TYPE_EDGE_RISING: Final = 1
"""Linux's ``IRQ_TYPE_EDGE_RISING`` (``dt-bindings/interrupt-controller/irq.h``)."""
IRQ_TYPE_LEVEL_HIGH: Final = 4
"""Linux's ``IRQ_TYPE_LEVEL_HIGH``: the trigger of most device interrupts."""

InterruptCells = Callable[[int, int], tuple[int, ...]]
"""The board's interrupt specifier: ``(interrupt number, IRQ_TYPE_*)`` to cells."""


@final
@dataclass(frozen=True)
class PlatformBusFDTData:
    """What a device's :meth:`SysBusFdtNode.add_fdt_node` gets (``PlatformBusFDTData``).

    Attributes:
        fdt: the board's device tree.
        pbus_name: the bus node's path (``/platform-bus@c000000``).
        irq_start: the interrupt number of bus line 0 (virt: SPI 112).
        pbus: the platform bus.
        interrupt_cells: the board's interrupt specifier format.
        clock_phandle: the phandle of the board's APB clock, if it has one.
    """

    fdt: Fdt
    pbus_name: str
    irq_start: int
    pbus: PlatformBusDevice
    interrupt_cells: InterruptCells
    clock_phandle: int | None = None

    def mmio_addr(self, dev: SysBusDevice, n: int) -> int:
        """The offset of region *n* of *dev* in the bus window.

        Raises:
            Error: the region is not on this bus.
        """
        addr = self.pbus.get_mmio_addr(dev, n)
        if addr is None:
            raise Error(
                f"platform bus: region {n} of '{dev.typename()}' is not on the bus"
            )
        return addr

    def reg(self, dev: SysBusDevice, n: int) -> tuple[int, int]:
        """The ``reg`` cells of region *n*: its offset and size (one cell each)."""
        return self.mmio_addr(dev, n), dev.mmio_get_region(n).size

    def irq_number(self, dev: SysBusDevice, n: int) -> int:
        """The interrupt number of IRQ *n* of *dev* (bus line + :attr:`irq_start`).

        Raises:
            Error: the IRQ is not on this bus.
        """
        irqn = self.pbus.get_irqn(dev, n)
        if irqn is None:
            raise Error(
                f"platform bus: IRQ {n} of '{dev.typename()}' is not on the bus"
            )
        return self.irq_start + irqn

    def interrupts(
        self, dev: SysBusDevice, n: int, irq_type: int = IRQ_TYPE_LEVEL_HIGH
    ) -> tuple[int, ...]:
        """The interrupt specifier of IRQ *n* of *dev* (virt: SPI, number, type)."""
        return self.interrupt_cells(self.irq_number(dev, n), irq_type)

    def node_path(self, dev: SysBusDevice, name: str, n: int = 0) -> str:
        """The path ``PBUS/NAME@OFFSET`` for *dev*, named after region *n*."""
        return f"{self.pbus_name}/{name}@{self.mmio_addr(dev, n):x}"


@runtime_checkable
class SysBusFdtNode(Protocol):
    """A sysbus device that can describe itself on a platform bus."""

    def add_fdt_node(self, data: PlatformBusFDTData) -> None:
        """Add the device's node under ``data.pbus_name`` in ``data.fdt``."""


def dynamic_sysbus_devices(pbus: PlatformBusDevice) -> list[SysBusDevice]:
    """The ``-device`` sysbus devices on *pbus*, in QEMU's order.

    QEMU's ``foreach_dynamic_sysbus_device``: the devices with an id
    (``/machine/peripheral``) first, then the others, each in creation order.
    """
    out: list[SysBusDevice] = []
    for container in (qdev_get_peripheral(), qdev_get_peripheral_anon()):
        out.extend(_sysbus_below(container, pbus))
    return out


def _sysbus_below(obj: Object, pbus: PlatformBusDevice) -> list[SysBusDevice]:
    out: list[SysBusDevice] = []
    for child in obj.children():
        sbd = child.dynamic_cast(SysBusDevice)
        if sbd is not None and _on_bus(sbd, pbus):
            out.append(sbd)
        out.extend(_sysbus_below(child, pbus))
    return out


def _on_bus(sbd: SysBusDevice, pbus: PlatformBusDevice) -> bool:
    return any(
        pbus.get_mmio_addr(sbd, n) is not None for n in range(sbd.num_mmio)
    ) or any(pbus.get_irqn(sbd, n) is not None for n in range(sbd.num_irq))


def platform_bus_add_all_fdt_nodes(
    fdt: Fdt,
    intc: str,
    addr: int,
    bus_size: int,
    irq_start: int,
    pbus: PlatformBusDevice,
    interrupt_cells: InterruptCells,
    clock_phandle: int | None = None,
) -> None:
    """Add the bus node and its devices (``platform_bus_add_all_fdt_nodes``).

    Args:
        fdt: the board's tree.
        intc: the interrupt controller's node (``/intc`` finds ``/intc@...``).
        addr: the bus window's guest address.
        bus_size: its size.
        irq_start: the interrupt number of bus line 0.
        pbus: the bus.
        interrupt_cells: the board's interrupt specifier format.
        clock_phandle: the board's APB clock, for devices that need one.

    Raises:
        Error: a device on the bus cannot describe itself.
    """
    node = f"/platform-bus@{addr:x}"
    fdt.add_subnode(node)
    fdt.setprop_string_array(node, "compatible", ["qemu,platform", "simple-bus"])
    # The window is below 4 GiB: one cell is enough for addresses and sizes.
    fdt.setprop_cells(node, "#size-cells", 1)
    fdt.setprop_cells(node, "#address-cells", 1)
    fdt.setprop_cells(node, "ranges", 0, addr >> 32, addr & 0xFFFF_FFFF, bus_size)
    fdt.setprop_phandle(node, "interrupt-parent", intc)
    data = PlatformBusFDTData(
        fdt, node, irq_start, pbus, interrupt_cells, clock_phandle
    )
    for dev in dynamic_sysbus_devices(pbus):
        if not isinstance(dev, SysBusFdtNode):
            raise Error(
                f"Device {dev.typename()} can not be dynamically instantiated",
                hint="Its class has no add_fdt_node() to describe it in the device "
                "tree.\n",
            )
        dev.add_fdt_node(data)
