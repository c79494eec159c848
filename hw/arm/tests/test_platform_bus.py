"""virt's platform bus in this process: the allow list, slots, lines and nodes."""

from __future__ import annotations

import pytest

from hw.arm.tests.conftest import build_virt
from hw.arm.virt import VirtMachine
from hw.char.pl011.device import PL011Luminary, PL011State
from hw.core.platform_bus import PlatformBusDevice
from hw.core.sysbus_fdt import PlatformBusFDTData
from hw.intc.arm_gic import GICState
from qemu_api.error import Error
from qemu_api.irq import InterruptSource
from qemu_api.memory import MemoryRegion
from qemu_api.qom import override
from qemu_api.sysbus import SysBusDevice
from system.vl import _device_add


class Plain(SysBusDevice, type_name="test-pbus-plain"):
    """A sysbus device that is user-creatable but says nothing about its node."""

    user_creatable = True

    @override
    def instance_init(self) -> None:
        self.init_mmio(MemoryRegion.container(self, "regs", 0x1800))
        self.init_irq(InterruptSource())


class Described(Plain, type_name="test-pbus-described"):
    """The same with a node maker."""

    def add_fdt_node(self, data: PlatformBusFDTData) -> None:
        node = data.node_path(self, "described")
        data.fdt.add_subnode(node)
        data.fdt.setprop_cells(node, "reg", *data.reg(self, 0))
        data.fdt.setprop_cells(node, "interrupts", *data.interrupts(self, 0))


class PbusVirt(VirtMachine, type_name="test-pbus-virt-machine"):
    """virt with the test types allowed (no -M name: not listed)."""

    machine_name = ""
    allowed_dynamic_sysbus_devices = ("pl011", "test-pbus-described", "test-pbus-plain")


def test_a_sysbus_type_must_be_allowed_by_the_machine() -> None:
    virt = build_virt(done=False)
    with pytest.raises(Error) as err:
        _device_add("test-pbus-plain", virt.machine)
    # QEMU 7.2's message for a user-creatable sysbus type the board does not allow.
    assert err.value.msg == (
        "Parameter 'driver' expects a dynamic sysbus device type for the machine"
    )
    with pytest.raises(Error, match="expects a pluggable device type"):
        _device_add("arm_gic", virt.machine)


def test_subtypes_of_an_allowed_type_are_allowed() -> None:
    virt = build_virt(done=False)
    # QEMU's object_class_dynamic_cast: pl011_luminary is a pl011.
    assert virt.machine.device_is_dynamic_sysbus(PL011Luminary)
    assert virt.machine.device_is_dynamic_sysbus(PL011State)
    assert not virt.machine.device_is_dynamic_sysbus(GICState)
    assert not virt.machine.device_is_dynamic_sysbus(Plain)


def build_test_virt() -> PbusVirt:
    machine = PbusVirt()
    machine.dtb_randomness = False
    machine.attach()
    machine.machine_init()
    return machine


def test_naturally_aligned_slots_and_first_free_lines() -> None:
    machine = build_test_virt()
    _device_add("pl011", machine)
    _device_add("test-pbus-described,id=d", machine)
    _device_add("pl011", machine)
    machine.machine_done()
    pbus = machine.platform_bus
    assert isinstance(pbus, PlatformBusDevice)
    fdt = machine.fdt
    assert fdt is not None
    # pl011 (4 KiB) at 0, the 6 KiB device on the next 8 KiB boundary, the
    # second pl011 in the 4 KiB hole after the first; lines in order.
    assert fdt.getprop("/platform-bus@c000000/described@2000", "reg") == bytes.fromhex(
        "00002000 00001800"
    )
    assert fdt.getprop(
        "/platform-bus@c000000/described@2000", "interrupts"
    ) == bytes.fromhex("00000000 00000076 00000004")
    assert fdt.has_node("/platform-bus@c000000/pl011@1000")
    assert fdt.getprop(
        "/platform-bus@c000000/pl011@1000", "interrupts"
    ) == bytes.fromhex("00000000 00000077 00000004")


def test_a_device_without_a_node_maker_cannot_be_described() -> None:
    machine = build_test_virt()
    _device_add("test-pbus-plain", machine)
    with pytest.raises(Error) as err:
        machine.machine_done()
    assert err.value.msg == "Device test-pbus-plain can not be dynamically instantiated"
    assert "add_fdt_node()" in (err.value.hint or "")


def test_a_full_window_is_an_error() -> None:
    pbus = PlatformBusDevice()
    pbus.num_irqs, pbus.mmio_size = 8, 0x4000
    pbus.sysbus_realize()
    devs = []
    for _ in range(3):
        dev = Described()
        dev.sysbus_realize()
        devs.append(dev)
    pbus.link_device(devs[0])
    pbus.link_device(devs[1])
    with pytest.raises(
        Error, match="Platform Bus: Can not fit MMIO region of size 1800"
    ):
        pbus.link_device(devs[2])
    assert pbus.get_mmio_addr(devs[1], 0) == 0x2000
    assert pbus.get_mmio_addr(devs[2], 0) is None
    # Unconnected bus lines: the device's IRQ stays unconnected, not on the bus.
    assert pbus.get_irqn(devs[0], 0) is None
