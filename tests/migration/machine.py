"""Boards for the migration tests: virt with the test device, and their state."""

from __future__ import annotations

import hashlib

import hw.char.pl011  # the board's UART, created when its model is loaded
from hw.arm.virt import VirtMachine
from hw.core.machine import MachineState
from qemu_api.memory import get_address_space_memory
from qemu_api.qom import object_property_add_child
from qemu_api.sysbus import sysbus_realize
from qemu_api.timer import CLOCK_VIRTUAL, qemu_clock_get_ns
from tests.migration.migdev import MigTestDev, snapshot

MIGDEV_BASE = 0x0A00_0000
RAM_BASE = 0x4000_0000


def make_virt(
    with_dev: bool = True, ram_size: int | None = None
) -> tuple[VirtMachine, MigTestDev | None]:
    """Build a virt board (as ``-M virt``), with the test device at MIGDEV_BASE.

    The board has pyqemu's PL011 (``pl011``, instance 0), realized before the
    test device.
    """
    assert hw.char.pl011.TYPE_PL011 == "pl011"
    machine = VirtMachine()
    if ram_size is not None:
        machine.ram_size = ram_size
    machine.attach()
    machine.machine_init()
    dev = None
    if with_dev:
        dev = MigTestDev()
        object_property_add_child(machine, "migdev", dev)
        sysbus_realize(dev)
        dev.mmio_map(0, MIGDEV_BASE)
    return machine, dev


def ram_digest(machine: MachineState) -> str:
    assert machine.ram is not None
    return hashlib.sha256(machine.ram.get_ram_ptr()).hexdigest()


def write_pattern(offset: int, data: bytes) -> None:
    """Write guest RAM through the address space, as a guest or qtest would."""
    get_address_space_memory().write_buf(RAM_BASE + offset, data)


def machine_state(machine: MachineState, dev: MigTestDev | None) -> object:
    """Everything a load may change: device state, RAM and virtual time."""
    return (
        snapshot(dev) if dev is not None else None,
        ram_digest(machine),
        qemu_clock_get_ns(CLOCK_VIRTUAL),
    )
