"""Machines: the boards that create and wire devices (QEMU's ``hw/core/machine.c``).

A board is a :class:`MachineState` subclass with a name, a description, the target
it runs on and an :meth:`MachineState.machine_init` that creates its RAM and
devices. The board's QOM object is ``/machine``.

>>> sorted(m.machine_name for m in machine_types("aarch64") if m.machine_name == "none")
['none']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from hw.core.loader import RomLoader
from qemu_api.chardev import Chardev
from qemu_api.error import Error
from qemu_api.memory import MemoryRegion, get_system_memory
from qemu_api.qdev import DeviceState, ResetType, resettable_reset
from qemu_api.qom import (
    Object,
    object_class_dynamic_cast,
    object_get_root,
    object_property_add_child,
    object_resolve_path,
    override,
)
from qemu_api.sysbus import (
    TYPE_DYNAMIC_SYS_BUS_DEVICE,
    SysBusDevice,
    sysbus_get_default,
)
from system.runstate import RunState, runstate_check

__all__ = [
    "TYPE_MACHINE",
    "CpuTopology",
    "MachineState",
    "find_machine",
    "machine_types",
]

TYPE_MACHINE = "machine"


@final
@dataclass
class CpuTopology:
    """The machine's CPUs (QEMU's ``CpuTopology``, set by ``-smp``).

    ``cpus`` CPUs, numbered socket by socket, cluster by cluster, core by
    core, thread by thread.
    """

    cpus: int = 1
    sockets: int = 1
    clusters: int = 1
    cores: int = 1
    threads: int = 1


class MachineState(Object, type_name=TYPE_MACHINE, abstract=True):
    """Base of every board.

    Class attributes a board sets:

    - ``machine_name``: the ``-M`` name (the QOM type is ``NAME-machine``);
    - ``desc``: the one-line description shown by ``-M help``;
    - ``aliases``: other ``-M`` names (QEMU's versioned names, e.g. ``virt-7.2``);
    - ``targets``: the targets (``aarch64``, ``x86_64``) that have it;
    - ``default_for``: the targets where it is the default machine;
    - ``default_ram_size``: RAM when ``-m`` is not given (bytes);
    - ``ram_name``/``ram_base``: QEMU's name and address of the main RAM block;
    - ``loads_guests``: whether the board loads ``-kernel``, ``-initrd``,
      ``-dtb`` and ``-bios`` images (boards that do not refuse them);
    - ``allowed_dynamic_sysbus_devices``: the sysbus types (and their
      subtypes) that ``-device`` may add to this board (QEMU's
      ``machine_class_allow_dynamic_sysbus_dev``).

    The images come from the machine's QOM properties, as in QEMU: ``kernel``
    (``-kernel``), ``initrd`` (``-initrd``), ``append`` (``-append``), ``dtb``
    (``-dtb``), ``firmware`` (``-bios``), ``dumpdtb`` and ``phandle-start``.
    """

    machine_name: ClassVar[str] = ""
    desc: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    targets: ClassVar[tuple[str, ...]] = ()
    default_for: ClassVar[tuple[str, ...]] = ()
    default_ram_size: ClassVar[int] = 128 * 1024 * 1024
    ram_name: ClassVar[str | None] = None
    ram_base: ClassVar[int] = 0
    loads_guests: ClassVar[bool] = False
    allowed_dynamic_sysbus_devices: ClassVar[tuple[str, ...]] = ()
    test_devices: ClassVar[tuple[str, ...]] = ()
    """Non-pluggable types ``-device`` may still add here (a pyqemu test aid)."""

    @override
    def instance_init(self) -> None:
        """Start with the default RAM size, no serial ports and no images."""
        self.ram_size = self.default_ram_size
        self.ram: MemoryRegion | None = None
        self.serial_hds: list[Chardev | None] = []
        """The chardevs of ``-serial`` (QEMU's ``serial_hd(i)``), set before init."""
        self.kernel_filename: str | None = None
        self.initrd_filename: str | None = None
        self.kernel_cmdline = ""
        self.dtb: str | None = None
        self.dumpdtb: str | None = None
        self.firmware: str | None = None
        self.phandle_start = 0
        self.smp = CpuTopology()
        """The CPU topology (``-smp``)."""
        self.roms = RomLoader()
        """The images to copy into guest memory at each reset."""
        self.cpu_model: str | None = None
        """The ``-cpu`` model, or None for the board's default."""
        for name, attr, doc in (
            ("kernel", "kernel_filename", "Linux kernel image file"),
            ("initrd", "initrd_filename", "Linux initial ramdisk file"),
            ("dtb", "dtb", "Linux kernel device tree file"),
            ("dumpdtb", "dumpdtb", "Dump current dtb to a file and quit"),
            ("firmware", "firmware", "Firmware image"),
        ):
            self._add_file_property(name, attr, doc)
        self.property_add_str(
            "append",
            lambda: self.kernel_cmdline,
            self._set_append,
            "Linux kernel command line",
        )
        self.property_add_uint(
            "phandle-start",
            32,
            lambda: self.phandle_start,
            self._set_phandle_start,
            "The first phandle ID we may generate dynamically",
        )

    def _add_file_property(self, name: str, attr: str, doc: str) -> None:
        def get() -> str:
            value = getattr(self, attr)
            return value if isinstance(value, str) else ""

        def set_(value: str) -> None:
            setattr(self, attr, value or None)

        self.property_add_str(name, get, set_, doc)

    def _set_append(self, value: str) -> None:
        self.kernel_cmdline = value

    def _set_phandle_start(self, value: int) -> None:
        self.phandle_start = value

    def device_is_dynamic_sysbus(self, cls: type[DeviceState]) -> bool:
        """Return whether ``-device`` may add *cls* to this board.

        QEMU's ``device_is_dynamic_sysbus``: *cls* is a sysbus type that is,
        or derives from, one of :attr:`allowed_dynamic_sysbus_devices`. A
        board that accepts dynamic sysbus devices (its list is not empty)
        also accepts every :class:`~qemu_api.sysbus.DynamicSysBusDevice`,
        such as those of device packages installed with pip.
        """
        allowed = self.allowed_dynamic_sysbus_devices
        if allowed:
            allowed = (*allowed, TYPE_DYNAMIC_SYS_BUS_DEVICE)
        return issubclass(cls, SysBusDevice) and any(
            object_class_dynamic_cast(cls, name) is not None for name in allowed
        )

    def device_plug_cb(self, dev: DeviceState) -> None:
        """A ``-device`` device was realized (the machine's hotplug handler).

        Boards with a platform bus give dynamic sysbus devices their MMIO
        window and interrupts here. The base does nothing.
        """

    def serial_hd(self, i: int) -> Chardev | None:
        """Return the chardev of serial port *i*, or None."""
        return self.serial_hds[i] if i < len(self.serial_hds) else None

    def machine_init(self) -> None:
        """Create the board: RAM, devices and their wiring.

        The base creates the main RAM block (when ``ram_name`` is set) and maps
        it at ``ram_base``; boards extend this.

        Raises:
            Error: images were given to a board that does not load them.
        """
        if not self.loads_guests:
            given = [
                opt
                for opt, value in (
                    ("-kernel", self.kernel_filename),
                    ("-initrd", self.initrd_filename),
                    ("-dtb", self.dtb),
                    ("-bios", self.firmware),
                    ("-machine dumpdtb", self.dumpdtb),
                )
                if value is not None
            ]
            if given:
                raise Error(
                    f"the '{self.machine_name}' machine does not load guest images "
                    f"({', '.join(given)})",
                    hint="The virt machine (-M virt) loads kernels, initrds, "
                    "device trees and firmware.\n",
                )
        if self.ram_name is not None and self.ram_size:
            self.ram = MemoryRegion.ram(self, self.ram_name, self.ram_size)
            get_system_memory().add_subregion(self.ram_base, self.ram)

    def machine_done(self) -> None:
        """Finish the board once the ``-device`` devices exist.

        QEMU's machine-init-done notifiers, then ``rom_check_and_register_reset``:
        boards extend this (virt adds its dynamic devices to the device tree
        and loads it); the base checks the ROM blobs.

        Raises:
            Error: the images overlap or do not fit in memory.
        """
        self.roms.check_and_register_reset()

    def reset(self) -> None:
        """Reset the board (``qemu_devices_reset``, then ``rom_reset``).

        Every device gets a cold reset, then the images are copied into
        guest memory again (unless an incoming migration will fill it).
        """
        resettable_reset(sysbus_get_default(), ResetType.COLD)
        self.roms.reset(incoming=runstate_check(RunState.INMIGRATE))

    def attach(self) -> None:
        """Make this object ``/machine``; call it before creating any device.

        Raises:
            Error: ``/machine`` already holds objects of another machine.
        """
        root = object_get_root()
        old = object_resolve_path("/machine")
        if old is not None:
            if any(True for _ in old.children()):
                raise Error(
                    "a machine must be created before its devices",
                    hint="Reset the object tree (object_tree_reset) first.\n",
                )
            old.unparent()
        object_property_add_child(root, "machine", self)


def machine_types(target: str) -> list[type[MachineState]]:
    """Return the boards available on *target*, in definition order."""
    return [
        cls
        for cls in _all_subclasses(MachineState)
        if cls.machine_name and target in cls.targets
    ]


def _all_subclasses(cls: type[MachineState]) -> list[type[MachineState]]:
    out: list[type[MachineState]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def find_machine(name: str, target: str) -> type[MachineState]:
    """Return the board called *name* (or one of its aliases) on *target*.

    Raises:
        Error: no such board, with the list of boards as a hint.
    """
    for cls in machine_types(target):
        if name == cls.machine_name or name in cls.aliases:
            return cls
    raise Error(
        f'unsupported machine type "{name}"',
        hint="Use -machine help to list supported machines\n",
    )


class NullMachine(MachineState, type_name="none-machine"):
    """The empty board (``-M none``): no RAM unless ``-m`` asks, no devices."""

    machine_name = "none"
    desc = "empty machine"
    # pyqemu only: qtests of the IRQ commands wire these on the empty board.
    test_devices = ("or-irq", "split-irq")
    targets = ("aarch64", "x86_64")
    default_ram_size = 0
    ram_name = "ram"
