"""Machines: the boards that create and wire devices (QEMU's ``hw/core/machine.c``).

A board is a :class:`MachineState` subclass with a name, a description, the target
it runs on and an :meth:`MachineState.machine_init` that creates its RAM and
devices. The board's QOM object is ``/machine``.

>>> sorted(m.machine_name for m in machine_types("aarch64") if m.machine_name == "none")
['none']
"""

from __future__ import annotations

from typing import ClassVar

from qemu_api.chardev import Chardev
from qemu_api.error import Error
from qemu_api.memory import MemoryRegion, get_system_memory
from qemu_api.qdev import ResetType, resettable_reset
from qemu_api.qom import (
    Object,
    object_get_root,
    object_property_add_child,
    object_resolve_path,
    override,
)
from qemu_api.sysbus import sysbus_get_default

__all__ = ["TYPE_MACHINE", "MachineState", "find_machine", "machine_types"]

TYPE_MACHINE = "machine"


class MachineState(Object, type_name=TYPE_MACHINE, abstract=True):
    """Base of every board.

    Class attributes a board sets:

    - ``machine_name``: the ``-M`` name (the QOM type is ``NAME-machine``);
    - ``desc``: the one-line description shown by ``-M help``;
    - ``aliases``: other ``-M`` names (QEMU's versioned names, e.g. ``virt-7.2``);
    - ``targets``: the targets (``aarch64``, ``x86_64``) that have it;
    - ``default_for``: the targets where it is the default machine;
    - ``default_ram_size``: RAM when ``-m`` is not given (bytes);
    - ``ram_name``/``ram_base``: QEMU's name and address of the main RAM block.
    """

    machine_name: ClassVar[str] = ""
    desc: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    targets: ClassVar[tuple[str, ...]] = ()
    default_for: ClassVar[tuple[str, ...]] = ()
    default_ram_size: ClassVar[int] = 128 * 1024 * 1024
    ram_name: ClassVar[str | None] = None
    ram_base: ClassVar[int] = 0

    @override
    def instance_init(self) -> None:
        """Start with the default RAM size and no serial ports."""
        self.ram_size = self.default_ram_size
        self.ram: MemoryRegion | None = None
        self.serial_hds: list[Chardev | None] = []
        """The chardevs of ``-serial`` (QEMU's ``serial_hd(i)``), set before init."""
        self.cpu_model: str | None = None
        """The ``-cpu`` model, or None for the board's default."""
        self.smp_cpus = 1
        """The number of CPUs (``-smp``)."""

    def serial_hd(self, i: int) -> Chardev | None:
        """Return the chardev of serial port *i*, or None."""
        return self.serial_hds[i] if i < len(self.serial_hds) else None

    def machine_init(self) -> None:
        """Create the board: RAM, devices and their wiring.

        The base creates the main RAM block (when ``ram_name`` is set) and maps
        it at ``ram_base``; boards extend this.
        """
        if self.ram_name is not None and self.ram_size:
            self.ram = MemoryRegion.ram(self, self.ram_name, self.ram_size)
            get_system_memory().add_subregion(self.ram_base, self.ram)

    def reset(self) -> None:
        """Cold-reset every device of the board (``qemu_devices_reset``)."""
        resettable_reset(sysbus_get_default(), ResetType.COLD)

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
    targets = ("aarch64", "x86_64")
    default_ram_size = 0
    ram_name = "ram"
