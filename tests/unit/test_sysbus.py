"""Tests of qemu_api.sysbus: MMIO regions, IRQs, the main system bus."""

import re
from collections.abc import Iterator

import pytest

from qemu_api import bql
from qemu_api.error import Error
from qemu_api.irq import InterruptSource, IRQState, qemu_allocate_irq
from qemu_api.memory import MemoryRegion, get_system_memory, reset_system_memory
from qemu_api.qdev import ResetType, resettable_reset
from qemu_api.qom import object_resolve_path, object_tree_reset, override
from qemu_api.sysbus import (
    SYSBUS_DEVICE_GPIO_IRQ,
    SysBusDevice,
    SystemBus,
    sysbus_create_simple,
    sysbus_create_varargs,
    sysbus_get_default,
    sysbus_realize,
    sysbus_realize_and_unref,
)


@pytest.fixture(autouse=True)
def _fresh_tree() -> Iterator[None]:
    object_tree_reset()
    reset_system_memory()
    yield
    object_tree_reset()
    reset_system_memory()


class Uart(SysBusDevice, type_name="test-sysbus-uart"):
    @override
    def instance_init(self) -> None:
        self.iomem = MemoryRegion.container(self, "test-uart", 0x1000)
        self.extra = MemoryRegion.container(self, "test-uart-extra", 0x100)
        self.irqs = [InterruptSource(), InterruptSource()]
        self.init_mmio(self.iomem)
        self.init_mmio(self.extra)
        for irq in self.irqs:
            self.init_irq(irq)
        self.resets = 0

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        self.resets += 1


def is_realized(dev: SysBusDevice) -> bool:
    return dev.realized


def test_realize_plugs_into_main_system_bus() -> None:
    dev = Uart()
    sysbus_realize(dev)
    bus = sysbus_get_default()
    assert isinstance(bus, SystemBus)
    assert bus.typename() == "System"
    assert bus.bus_name == "main-system-bus"
    assert bus.canonical_path() == "/machine/unattached/sysbus"
    assert object_resolve_path("/machine/unattached/sysbus") is bus
    assert sysbus_get_default() is bus
    assert dev.parent_bus is bus
    assert bus.devices() == [dev]
    assert is_realized(dev)
    other = Uart()
    sysbus_realize_and_unref(other)
    assert bus.devices() == [other, dev]


def test_bus_reset_reaches_devices() -> None:
    dev = Uart()
    sysbus_realize(dev)
    resettable_reset(sysbus_get_default(), ResetType.COLD)
    assert dev.resets == 1


def test_mmio_map_and_remap() -> None:
    dev = Uart()
    sysbus_realize(dev)
    assert dev.num_mmio == 2
    assert dev.mmio_get_region(0) is dev.iomem
    assert dev.mmio_addr(0) is None
    assert dev.mmio_addr(7) is None
    dev.mmio_map(0, 0x0900_0000)
    assert dev.mmio_addr(0) == 0x0900_0000
    assert dev.iomem.addr == 0x0900_0000
    dev.mmio_map(0, 0x0900_0000)  # same place: nothing to do
    dev.mmio_map(0, 0x0A00_0000)  # moved
    assert dev.iomem.addr == 0x0A00_0000
    assert dev.iomem.parent_container is get_system_memory()
    dev.mmio_map_overlap(1, 0x0A00_0000, 5)
    assert dev.mmio_addr(1) == 0x0A00_0000
    assert dev.extra.priority == 5
    dev.mmio_unmap(1)
    assert dev.mmio_addr(1) is None
    assert dev.extra.parent_container is None


def test_mmio_errors() -> None:
    dev = Uart()
    with pytest.raises(
        Error,
        match=re.escape("device 'test-sysbus-uart' has no MMIO region 2 (it has 2)"),
    ):
        dev.mmio_map(2, 0)
    with pytest.raises(Error, match="has no MMIO region -1"):
        dev.mmio_get_region(-1)


def test_irq_connect_and_query() -> None:
    dev = Uart()
    sysbus_realize(dev)
    assert dev.num_irq == 2
    levels: list[tuple[int, int]] = []
    line = qemu_allocate_irq(lambda n, level: levels.append((n, level)), 33)
    assert not dev.is_irq_connected(1)
    dev.connect_irq(1, line)
    assert dev.get_connected_irq(1) is line
    assert dev.is_irq_connected(1)
    assert dev.get_connected_irq(0) is None
    dev.irqs[1].raise_()
    dev.irqs[0].raise_()  # not connected
    assert levels == [(33, 1)]
    assert dev.property_get_type(f"{SYSBUS_DEVICE_GPIO_IRQ}[1]") == "link<irq>"
    dev.connect_irq(1, None)
    assert dev.get_connected_irq(1) is None


def test_irq_errors() -> None:
    dev = Uart()
    with pytest.raises(
        Error, match=re.escape("device 'test-sysbus-uart' has no IRQ 2 (it has 2)")
    ):
        dev.connect_irq(2, IRQState())
    with pytest.raises(Error, match="has no IRQ 5"):
        dev.get_connected_irq(5)


def test_create_helpers() -> None:
    levels: list[int] = []
    line = qemu_allocate_irq(lambda n, level: levels.append(level), 0)
    dev = sysbus_create_simple("test-sysbus-uart", 0x1000_0000, line)
    assert isinstance(dev, Uart)
    assert is_realized(dev)
    assert dev.mmio_addr(0) == 0x1000_0000
    assert dev.get_connected_irq(0) is line
    dev2 = sysbus_create_varargs("test-sysbus-uart", None, line, None, line)
    assert dev2.mmio_addr(0) is None
    assert dev2.get_connected_irq(0) is line
    assert dev2.get_connected_irq(1) is None  # stops at the first None
    with pytest.raises(Error, match="'split-irq' is not a sysbus device type"):
        sysbus_create_simple("split-irq", None, None)


def test_methods_check_the_bql() -> None:
    dev = Uart()
    bql.bql_unlock()
    try:
        with pytest.raises(
            bql.BqlNotHeldError, match=re.escape("SysBusDevice.mmio_map")
        ):
            dev.mmio_map(0, 0)
        with pytest.raises(
            bql.BqlNotHeldError, match=re.escape("SysBusDevice.connect_irq")
        ):
            dev.connect_irq(0, None)
        with pytest.raises(
            bql.BqlNotHeldError, match=re.escape("SysBusDevice.init_mmio")
        ):
            dev.init_mmio(dev.iomem)
        with pytest.raises(
            bql.BqlNotHeldError, match=re.escape("SysBusDevice.mmio_addr")
        ):
            dev.mmio_addr(0)
    finally:
        bql.bql_lock()
