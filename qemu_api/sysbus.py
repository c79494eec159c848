"""System bus devices: MMIO regions and IRQ lines mapped by the board.

This module mirrors QEMU's ``include/hw/sysbus.h`` (``hw/core/sysbus.c``),
shaped like QEMU Rust's ``sysbus.rs`` (``SysBusDeviceMethods``). A
:class:`SysBusDevice` exports memory regions (:meth:`~SysBusDevice.init_mmio`)
and interrupt outputs (:meth:`~SysBusDevice.init_irq`) in ``instance_init``;
the board realizes it with :func:`sysbus_realize` (which plugs it into the main
system bus), maps region ``n`` at a guest-physical address with
:meth:`~SysBusDevice.mmio_map` and connects IRQ ``n`` with
:meth:`~SysBusDevice.connect_irq`. Every method checks that the caller holds
the BQL.

>>> from qemu_api.irq import InterruptSource, qemu_allocate_irq
>>> from qemu_api.memory import MemoryRegion
>>> class Blob(SysBusDevice, type_name="doc-blob"):
...     @override
...     def instance_init(self) -> None:
...         self.iomem = MemoryRegion.container(self, "blob", 0x100)
...         self.irq = InterruptSource()
...         self.init_mmio(self.iomem)
...         self.init_irq(self.irq)
>>> dev = Blob()
>>> sysbus_realize(dev)
>>> dev.mmio_addr(0) is None
True
>>> dev.mmio_map(0, 0x1000_0000)
>>> hex(dev.mmio_addr(0))
'0x10000000'
>>> levels = []
>>> dev.connect_irq(0, qemu_allocate_irq(lambda n, level: levels.append(level), 0))
>>> dev.irq.raise_()
>>> levels
[1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, final

from qemu_api.bql import bql_assert_locked
from qemu_api.error import Error
from qemu_api.irq import InterruptSource, IRQState
from qemu_api.memory import MemoryRegion, get_system_memory
from qemu_api.qdev import (
    BusState,
    DeviceState,
    qbus_new,
    qdev_get_machine,
    qdev_new,
    qdev_realize,
)
from qemu_api.qom import (
    container_get,
    object_resolve_path_component,
    override,
    type_get_parent,
)

__all__ = [
    "QDEV_MAX_IRQ",
    "QDEV_MAX_MMIO",
    "SYSBUS_DEVICE_GPIO_IRQ",
    "TYPE_DYNAMIC_SYS_BUS_DEVICE",
    "TYPE_SYSTEM_BUS",
    "TYPE_SYS_BUS_DEVICE",
    "DynamicSysBusDevice",
    "SysBusDevice",
    "SystemBus",
    "sysbus_create_simple",
    "sysbus_create_varargs",
    "sysbus_get_default",
    "sysbus_new",
    "sysbus_realize",
    "sysbus_realize_and_unref",
]

TYPE_SYSTEM_BUS: Final = "System"
"""QOM type name of the system bus (QEMU's ``TYPE_SYSTEM_BUS``)."""
TYPE_SYS_BUS_DEVICE: Final = "sys-bus-device"
"""QOM type name of :class:`SysBusDevice`."""
TYPE_DYNAMIC_SYS_BUS_DEVICE: Final = "dynamic-sysbus-device"
"""QOM type name of :class:`DynamicSysBusDevice` (QEMU 10's name)."""
SYSBUS_DEVICE_GPIO_IRQ: Final = "sysbus-irq"
"""Name of the GPIO output list that holds a sysbus device's IRQs."""
QDEV_MAX_MMIO: Final = 32
"""Most MMIO regions a sysbus device can export."""
QDEV_MAX_IRQ: Final = 512
"""Most IRQ lines a sysbus device can export."""


@final
class SystemBus(BusState, type_name=TYPE_SYSTEM_BUS):
    """The main system bus, which all sysbus devices plug into."""


def sysbus_get_default() -> SystemBus:
    """The main system bus, ``/machine/unattached/sysbus`` (``sysbus_get_default``).

    It is created on first use.
    """
    unattached = container_get(qdev_get_machine(), "unattached")
    found = object_resolve_path_component(unattached, "sysbus")
    bus = found.dynamic_cast(SystemBus) if found is not None else None
    if bus is None:
        bus = qbus_new(SystemBus, None, "main-system-bus")
        unattached.property_add_child("sysbus", bus)
    return bus


@final
@dataclass
class _MMIO:
    memory: MemoryRegion
    addr: int | None = None


class SysBusDevice(DeviceState, type_name=TYPE_SYS_BUS_DEVICE, abstract=True):
    """Base of devices on the system bus (QEMU's ``SysBusDevice``)."""

    bus_type = TYPE_SYSTEM_BUS
    # As in QEMU, sysbus devices are wired by boards, not created with -device.
    user_creatable = False

    @override
    def _qom_instance_init(self) -> None:
        """Start with no MMIO regions and no IRQs."""
        self._mmio: list[_MMIO] = []
        self._irqs: list[InterruptSource] = []

    def init_mmio(self, mr: MemoryRegion) -> None:
        """Export ``mr`` as the next MMIO region (``sysbus_init_mmio``).

        Raises:
            Error: more than :data:`QDEV_MAX_MMIO` regions.
        """
        bql_assert_locked("SysBusDevice.init_mmio")
        if len(self._mmio) >= QDEV_MAX_MMIO:
            raise Error(
                f"device '{self.typename()}' exports too many MMIO regions "
                f"(at most {QDEV_MAX_MMIO})"
            )
        self._mmio.append(_MMIO(mr))

    def init_irq(self, source: InterruptSource) -> None:
        """Export ``source`` as the next IRQ line (``sysbus_init_irq``).

        It becomes the GPIO output ``sysbus-irq[N]``.
        """
        bql_assert_locked("SysBusDevice.init_irq")
        if len(self._irqs) >= QDEV_MAX_IRQ:
            raise Error(
                f"device '{self.typename()}' exports too many IRQs "
                f"(at most {QDEV_MAX_IRQ})"
            )
        self.init_gpio_out_named([source], SYSBUS_DEVICE_GPIO_IRQ)
        self._irqs.append(source)

    @property
    def num_mmio(self) -> int:
        """How many MMIO regions the device exports."""
        return len(self._mmio)

    @property
    def num_irq(self) -> int:
        """How many IRQ lines the device exports."""
        return len(self._irqs)

    def _mmio_entry(self, n: int) -> _MMIO:
        if not 0 <= n < len(self._mmio):
            raise Error(
                f"device '{self.typename()}' has no MMIO region {n} "
                f"(it has {len(self._mmio)})"
            )
        return self._mmio[n]

    def mmio_get_region(self, n: int) -> MemoryRegion:
        """MMIO region ``n`` (``sysbus_mmio_get_region``)."""
        bql_assert_locked("SysBusDevice.mmio_get_region")
        return self._mmio_entry(n).memory

    def mmio_addr(self, n: int) -> int | None:
        """Where region ``n`` is mapped, or None if unmapped or nonexistent."""
        bql_assert_locked("SysBusDevice.mmio_addr")
        if not 0 <= n < len(self._mmio):
            return None
        return self._mmio[n].addr

    def _mmio_map(self, n: int, addr: int, priority: int | None) -> None:
        entry = self._mmio_entry(n)
        if entry.addr == addr:
            return
        sysmem = get_system_memory()
        if entry.addr is not None:
            sysmem.del_subregion(entry.memory)
        entry.addr = addr
        if priority is None:
            sysmem.add_subregion(addr, entry.memory)
        else:
            sysmem.add_subregion_overlap(addr, entry.memory, priority)

    def mmio_map(self, n: int, addr: int) -> None:
        """Map region ``n`` at ``addr`` in system memory (``sysbus_mmio_map``).

        A region already mapped elsewhere is moved.

        Raises:
            Error: no region ``n``.
        """
        bql_assert_locked("SysBusDevice.mmio_map")
        self._mmio_map(n, addr, None)

    def mmio_map_overlap(self, n: int, addr: int, priority: int) -> None:
        """Map region ``n`` at ``addr`` with a priority.

        QEMU's ``sysbus_mmio_map_overlap``: the region may overlap others;
        the highest ``priority`` wins.
        """
        bql_assert_locked("SysBusDevice.mmio_map_overlap")
        self._mmio_map(n, addr, priority)

    def mmio_unmap(self, n: int) -> None:
        """Remove region ``n`` from system memory (``sysbus_mmio_unmap``)."""
        bql_assert_locked("SysBusDevice.mmio_unmap")
        entry = self._mmio_entry(n)
        if entry.addr is not None:
            get_system_memory().del_subregion(entry.memory)
            entry.addr = None

    def connect_irq(self, n: int, irq: IRQState | None) -> None:
        """Connect IRQ line ``n`` to ``irq`` (``sysbus_connect_irq``).

        Raises:
            Error: no IRQ line ``n``.
        """
        bql_assert_locked("SysBusDevice.connect_irq")
        self._check_irq(n)
        self.connect_gpio_out_named(SYSBUS_DEVICE_GPIO_IRQ, n, irq)

    def get_connected_irq(self, n: int) -> IRQState | None:
        """What IRQ line ``n`` is connected to (``sysbus_get_connected_irq``)."""
        bql_assert_locked("SysBusDevice.get_connected_irq")
        self._check_irq(n)
        return self.get_gpio_out_connector(SYSBUS_DEVICE_GPIO_IRQ, n)

    def is_irq_connected(self, n: int) -> bool:
        """Whether IRQ line ``n`` is connected (``sysbus_is_irq_connected``)."""
        return self.get_connected_irq(n) is not None

    def _check_irq(self, n: int) -> None:
        if not 0 <= n < len(self._irqs):
            raise Error(
                f"device '{self.typename()}' has no IRQ {n} (it has {len(self._irqs)})"
            )

    def sysbus_realize(self) -> None:
        """Plug into the main system bus and realize (``sysbus_realize``)."""
        bql_assert_locked("SysBusDevice.sysbus_realize")
        qdev_realize(self, sysbus_get_default())


class DynamicSysBusDevice(
    SysBusDevice, type_name=TYPE_DYNAMIC_SYS_BUS_DEVICE, abstract=True
):
    """A sysbus device the user may plug on a board's platform bus.

    QEMU 10's ``TYPE_DYNAMIC_SYS_BUS_DEVICE``: derive from it (instead of
    :class:`SysBusDevice`) to make a device ``-device``-creatable on every
    board that accepts dynamic sysbus devices (virt, with its platform bus);
    the board maps its regions and connects its IRQs. On virt the device
    also describes itself in the device tree with an ``add_fdt_node``
    method (:mod:`hw.core.sysbus_fdt`). This is how a device package
    installed with pip reaches a board without a change to the board.
    """

    user_creatable = True


def sysbus_new(typename: str) -> SysBusDevice:
    """Create a system bus device of type ``typename``, not yet realized.

    The typed counterpart of ``qdev_new`` for boards that set properties before
    ``sysbus_realize`` and then map and wire the device.

    Raises:
        Error: ``typename`` is not a sysbus device type.

    >>> sysbus_new("or-irq")
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: 'or-irq' is not a sysbus device type (its parent is 'device')
    """
    dev = qdev_new(typename)
    if not isinstance(dev, SysBusDevice):
        parent = type_get_parent(typename)
        dev.unparent()
        raise Error(
            f"'{typename}' is not a sysbus device type (its parent is '{parent}')"
        )
    return dev


def sysbus_realize(dev: SysBusDevice) -> None:
    """Plug ``dev`` into the main system bus and realize it (``sysbus_realize``).

    Raises:
        Error: the device refused its configuration; it stays unrealized.
    """
    dev.sysbus_realize()


def sysbus_realize_and_unref(dev: SysBusDevice) -> None:
    """:func:`sysbus_realize` under QEMU's name for board code ported from C."""
    dev.sysbus_realize()


def sysbus_create_varargs(
    typename: str, addr: int | None, *irqs: IRQState | None
) -> SysBusDevice:
    """Create, realize and wire a sysbus device (``sysbus_create_varargs``).

    Region 0 is mapped at ``addr`` (unless None) and IRQ ``i`` is connected
    to ``irqs[i]``, up to the first None, as in QEMU.

    Raises:
        Error: ``typename`` is not a sysbus device type, or realize failed.
    """
    dev = qdev_new(typename)
    sbd = dev.dynamic_cast(SysBusDevice)
    if sbd is None:
        raise Error(f"'{typename}' is not a sysbus device type")
    sbd.sysbus_realize()
    if addr is not None:
        sbd.mmio_map(0, addr)
    for i, irq in enumerate(irqs):
        if irq is None:
            break
        sbd.connect_irq(i, irq)
    return sbd


def sysbus_create_simple(
    typename: str, addr: int | None, irq: IRQState | None
) -> SysBusDevice:
    """Create a sysbus device with one region and one IRQ (``sysbus_create_simple``)."""
    return sysbus_create_varargs(typename, addr, irq)
