"""The migration stream of a whole machine, in QEMU's format.

This module mirrors QEMU's ``migration/savevm.c`` (``qemu_savevm_state*``,
``qemu_loadvm_state``, the ``configuration`` section, ``-dump-vmstate``) and
``migration/global_state.c``, producing and reading the byte layout of QEMU 7.2:

.. code-block:: text

    be32 0x5145564d ("QEVM")  be32 3
    0x07 configuration: be32 len, machine name, [subsection target-page-bits]
    0x01 START  be32 id, counted "ram", be32 instance 0, be32 version 4
         block list ... be64 EOS   0x7e be32 id
    0x02 PART   be32 id  pages ... be64 EOS                  0x7e be32 id
    0x03 END    be32 id  be64 EOS                            0x7e be32 id
    0x04 FULL   be32 id, counted idstr, be32 instance, be32 version
         fields, subsections (0x05 counted name, be32 version, ...)
                                                             0x7e be32 id
    ... one FULL section per registered state: "timer" (the virtual clock),
        each realized device with a vmsd, "globalstate" (the run state)
    0x00 EOF
    0x06 be32 length, JSON VM description

Saving writes the sections of every registered state
(:func:`~qemu_api.migration.vmstate.savevm_entries`, in registration order)
between the clock and the run state.

Loading (:func:`qemu_loadvm_state`) reads and checks the *whole* stream
before it changes anything: magic, version, configuration (the board, in any
of its versions: ``virt-7.2`` or ``virt-8.0`` load into ``virt``), every
section header and footer, every device's fields, the RAM pages, the end of
the stream.  Sections of devices the machine lacks are an error listing them,
or, with ``skip_unknown``, are skipped with a warning (using the stream's
JSON description to find their ends).  Only then are the values stored; if a
device's ``post_load`` rejects its state, every device is put back as it was.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any, Final, Never, Protocol, final, runtime_checkable

from qemu_api.bits import UInt32
from qemu_api.error import Error, warn_report
from qemu_api.memory import MemoryRegion
from qemu_api.migration.qemu_file import (
    QEMUFileError,
    QEMUFileReader,
    QEMUFileWriter,
    stream_text,
)
from qemu_api.migration.ram import (
    RAM_SECTION_VERSION,
    TARGET_PAGE_SIZE,
    RamLoad,
    RamStats,
    ram_blocks,
    ram_save_complete,
    ram_save_pages,
    ram_save_setup,
)
from qemu_api.migration.vmdesc import vmdesc_find, vmdesc_skip
from qemu_api.migration.vmstate import (
    QEMU_VM_SUBSECTION,
    JSONObject,
    LoadedState,
    SaveStateEntry,
    VMStateDescription,
    VMStateField,
    savevm_entries,
    vmstate_apply_state,
    vmstate_buffer,
    vmstate_capture_state,
    vmstate_int64,
    vmstate_parse_state,
    vmstate_restore_state,
    vmstate_save_state,
    vmstate_uint32,
    vmstate_unused,
)
from qemu_api.qom import object_class_get_list, object_resolve_path, override
from qemu_api.timer import CLOCK_VIRTUAL, qemu_clock_get_ns, virtual_clock_reset

__all__ = [
    "QEMU_VM_CONFIGURATION",
    "QEMU_VM_EOF",
    "QEMU_VM_FILE_MAGIC",
    "QEMU_VM_FILE_VERSION",
    "QEMU_VM_SECTION_END",
    "QEMU_VM_SECTION_FOOTER",
    "QEMU_VM_SECTION_FULL",
    "QEMU_VM_SECTION_PART",
    "QEMU_VM_SECTION_START",
    "QEMU_VM_VMDESCRIPTION",
    "LoadResult",
    "MachineLike",
    "SaveStats",
    "dump_vmstate_json",
    "dump_vmstate_json_to_file",
    "machine_accepts",
    "migration_machine_name",
    "qemu_loadvm_check_start",
    "qemu_loadvm_max_size",
    "qemu_loadvm_state",
    "qemu_savevm_state",
]

QEMU_VM_FILE_MAGIC: Final = 0x5145564D
"""``"QEVM"``, the first four bytes of a stream."""
QEMU_VM_FILE_VERSION_COMPAT: Final = 0x00000002
QEMU_VM_FILE_VERSION: Final = 0x00000003
"""The stream format version."""
QEMU_VM_EOF: Final = 0x00
"""The end of the sections."""
QEMU_VM_SECTION_START: Final = 0x01
"""The first part of an iterative section (RAM), with the header."""
QEMU_VM_SECTION_PART: Final = 0x02
"""A further part of an iterative section."""
QEMU_VM_SECTION_END: Final = 0x03
"""The last part of an iterative section."""
QEMU_VM_SECTION_FULL: Final = 0x04
"""A whole device state."""
QEMU_VM_VMDESCRIPTION: Final = 0x06
"""The JSON description that follows the end of the sections."""
QEMU_VM_CONFIGURATION: Final = 0x07
"""The configuration section (machine type, page size)."""
QEMU_VM_COMMAND: Final = 0x08
QEMU_VM_SECTION_FOOTER: Final = 0x7E
"""The byte that closes each section, followed by its id."""

_PAGE_BITS: Final = {"aarch64": (12, 10), "x86_64": (12, 12)}
"""(TARGET_PAGE_BITS, TARGET_PAGE_BITS_MIN) of each target."""
_VERSIONED: Final = re.compile(r"^(?P<base>.+)-(?P<version>\d+(\.\d+)+)$")


@runtime_checkable
class MachineLike(Protocol):
    """What migration needs from a board (``hw.core.machine.MachineState``)."""

    @property
    def machine_name(self) -> str:
        """The ``-M`` name (``virt``)."""
        ...

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names, QEMU's versioned one among them (``virt-7.2``)."""
        ...

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets that have the board (``aarch64``)."""
        ...

    @property
    def ram(self) -> MemoryRegion | None:
        """The main RAM region, if any."""
        ...


def _as_machine(obj: object) -> MachineLike:
    if isinstance(obj, MachineLike):
        return obj
    raise Error(
        "migration needs a machine: create the board (it becomes /machine) "
        "before saving or loading its state"
    )


def _current_machine(machine: MachineLike | None) -> MachineLike:
    if machine is not None:
        return machine
    return _as_machine(object_resolve_path("/machine"))


def migration_machine_name(machine: MachineLike) -> str:
    """Return the name the configuration section carries for ``machine``.

    QEMU writes the machine class's name, which is the versioned one
    (``-M virt`` runs ``virt-7.2``): the first alias that ends in a version,
    else the board's name.

    >>> class Virt:
    ...     machine_name = "virt"
    ...     aliases = ("virt-7.2",)
    ...     targets = ("aarch64",)
    ...     ram = None
    >>> migration_machine_name(Virt())
    'virt-7.2'
    """
    for alias in machine.aliases:
        if _VERSIONED.match(alias):
            return alias
    return machine.machine_name


def machine_accepts(machine: MachineLike, name: str) -> bool:
    """Return True if a stream for machine type ``name`` loads into ``machine``.

    The board's own names are accepted, and any version of a versioned name:
    ``virt``, ``virt-7.2`` and ``virt-9.2`` for virt; ``pc``,
    ``pc-i440fx-7.2`` and ``pc-i440fx-2.12`` for pc.

    >>> class Virt:
    ...     machine_name = "virt"
    ...     aliases = ("virt-7.2",)
    ...     targets = ("aarch64",)
    ...     ram = None
    >>> [machine_accepts(Virt(), n) for n in ("virt-9.2", "virt", "sbsa-ref")]
    [True, True, False]
    """
    names = (machine.machine_name, *machine.aliases)
    if name in names:
        return True
    wanted = _VERSIONED.match(name)
    if wanted is None:
        return False
    for known in names:
        m = _VERSIONED.match(known)
        if m is not None and m.group("base") == wanted.group("base"):
            return True
    return False


def _page_bits(machine: MachineLike) -> tuple[int, int]:
    for target in machine.targets:
        if target in _PAGE_BITS:
            return _PAGE_BITS[target]
    return (12, 12)


# -- the built-in sections: the virtual clock and the run state --------------------


@final
@dataclasses.dataclass
class _TimersState:
    """QEMU's ``TimersState`` as migrated (``softmmu/cpu-timers.c``).

    With the machine stopped, QEMU's ``cpu_clock_offset`` holds the virtual
    clock; pyqemu writes the virtual time in both offsets.
    """

    cpu_ticks_offset: int = 0
    cpu_clock_offset: int = 0
    icount_bias: int = 0
    icount: int = 0


def _timers_pre_save(s: _TimersState) -> None:
    now = qemu_clock_get_ns(CLOCK_VIRTUAL)
    s.cpu_ticks_offset = now
    s.cpu_clock_offset = now


_VMSTATE_ICOUNT: Final = VMStateDescription[_TimersState](
    "timer/icount",
    version_id=1,
    minimum_version_id=1,
    needed=lambda s: False,
    fields=[
        vmstate_int64(lambda s: s.icount_bias, name="qemu_icount_bias"),
        vmstate_int64(lambda s: s.icount, name="qemu_icount"),
    ],
)

_VMSTATE_TIMERS: Final = VMStateDescription[_TimersState](
    "timer",
    version_id=2,
    minimum_version_id=1,
    pre_save=_timers_pre_save,
    fields=[
        vmstate_int64(lambda s: s.cpu_ticks_offset),
        vmstate_unused(8),
        vmstate_int64(lambda s: s.cpu_clock_offset, version_id=2),
    ],
    subsections=[_VMSTATE_ICOUNT],
    state=_TimersState,
)

_RUNSTATE_SIZE: Final = 100


@final
@dataclasses.dataclass
class _GlobalState:
    """QEMU's ``GlobalState`` (``migration/global_state.c``)."""

    size: UInt32 = dataclasses.field(default_factory=UInt32)
    runstate: bytearray = dataclasses.field(
        default_factory=lambda: bytearray(_RUNSTATE_SIZE)
    )

    def name(self) -> str:
        end = self.runstate.find(0)
        raw = self.runstate if end < 0 else self.runstate[:end]
        return stream_text(bytes(raw))


def _global_state_post_load(s: _GlobalState, version_id: int) -> None:
    if s.size > _RUNSTATE_SIZE:
        raise Error(f"the run state name is {int(s.size)} bytes long (at most 100)")
    if not re.fullmatch(r"[a-z-]*", s.name()):
        raise Error(f"'{s.name()}' is not a run state name")


_VMSTATE_GLOBALSTATE: Final = VMStateDescription[_GlobalState](
    "globalstate",
    version_id=1,
    minimum_version_id=1,
    post_load=_global_state_post_load,
    fields=[
        vmstate_uint32(lambda s: s.size),
        vmstate_buffer(lambda s: s.runstate, _RUNSTATE_SIZE),
    ],
    state=_GlobalState,
)

# -- statistics and results -------------------------------------------------------


@final
class SaveStats:
    """What :func:`qemu_savevm_state` wrote.

    Attributes:
        ram: the RAM counters.
        sections: the idstrs of the device sections, in stream order.
        total_bytes: the length of the stream.
    """

    __slots__ = ("ram", "sections", "total_bytes")

    def __init__(self) -> None:
        self.ram = RamStats()
        self.sections: list[str] = []
        self.total_bytes = 0


@final
class LoadResult:
    """What :func:`qemu_loadvm_state` loaded.

    Attributes:
        machine_type: the machine type the stream was made for (``virt-7.2``).
        runstate: the source's run state from the ``globalstate`` section
            (``"running"``, ``"paused"``, ...), or None if absent.
        loaded: ``"idstr (instance)"`` of each device section loaded.
        skipped: the sections and RAM blocks skipped (``skip_unknown``).
        virtual_clock_ns: the virtual time the stream carried, or None.
        ram_pages: the number of RAM pages stored.
    """

    __slots__ = (
        "loaded",
        "machine_type",
        "ram_pages",
        "runstate",
        "skipped",
        "virtual_clock_ns",
    )

    def __init__(self) -> None:
        self.machine_type = ""
        self.runstate: str | None = None
        self.loaded: list[str] = []
        self.skipped: list[str] = []
        self.virtual_clock_ns: int | None = None
        self.ram_pages = 0

    @override
    def __repr__(self) -> str:
        return (
            f"LoadResult(machine_type={self.machine_type!r}, "
            f"runstate={self.runstate!r}, loaded={self.loaded!r}, "
            f"skipped={self.skipped!r})"
        )


# -- saving --------------------------------------------------------------------------


def _section_header(
    f: QEMUFileWriter,
    kind: int,
    section_id: int,
    idstr: str = "",
    instance_id: int = 0,
    version_id: int = 0,
) -> None:
    f.put_byte(kind)
    f.put_be32(section_id)
    if kind in (QEMU_VM_SECTION_START, QEMU_VM_SECTION_FULL):
        f.put_counted_string(idstr)
        f.put_be32(instance_id)
        f.put_be32(version_id)


def _section_footer(f: QEMUFileWriter, section_id: int) -> None:
    f.put_byte(QEMU_VM_SECTION_FOOTER)
    f.put_be32(section_id)


def _save_configuration(f: QEMUFileWriter, machine: MachineLike) -> None:
    name = migration_machine_name(machine).encode()
    f.put_byte(QEMU_VM_CONFIGURATION)
    f.put_be32(len(name))
    f.put_buffer(name)
    bits, bits_min = _page_bits(machine)
    if bits > bits_min:
        f.put_byte(QEMU_VM_SUBSECTION)
        f.put_counted_string("configuration/target-page-bits")
        f.put_be32(1)
        f.put_be32(bits)


def qemu_savevm_state(
    f: QEMUFileWriter,
    machine: MachineLike | None = None,
    *,
    runstate: str = "running",
    entries: Sequence[SaveStateEntry] | None = None,
) -> SaveStats:
    """Write the whole state of ``machine`` as QEMU's migration stream.

    The machine should be stopped (QEMU's ``finish-migrate``): the stream is
    a consistent snapshot of RAM, the virtual clock and every registered
    device.

    Args:
        f: the stream.
        machine: the board; ``/machine`` by default.
        runstate: the run state the destination should enter after loading
            (QEMU's ``globalstate``): ``"running"`` for a live migration of a
            running machine.
        entries: the device states to save; every registered one by default.

    Returns:
        What was written.

    Raises:
        Error: there is no machine, a device's value does not fit its field
            or a ``pre_save`` hook failed (naming the device and field), or
            the stream could not be written.
    """
    m = _current_machine(machine)
    stats = SaveStats()
    extra = [m.ram] if m.ram is not None else []
    blocks = ram_blocks(extra=extra)
    if len(runstate) >= _RUNSTATE_SIZE:
        raise Error(f"run state '{runstate[:20]}...' is too long")
    start = f.transferred()
    f.put_be32(QEMU_VM_FILE_MAGIC)
    f.put_be32(QEMU_VM_FILE_VERSION)
    _save_configuration(f, m)

    section_id = 0
    timers_id = section_id
    ram_id = section_id + 1
    _section_header(f, QEMU_VM_SECTION_START, ram_id, "ram", 0, RAM_SECTION_VERSION)
    ram_save_setup(f, blocks)
    _section_footer(f, ram_id)
    _section_header(f, QEMU_VM_SECTION_PART, ram_id)
    ram_save_pages(f, blocks, stats.ram)
    _section_footer(f, ram_id)
    _section_header(f, QEMU_VM_SECTION_END, ram_id)
    ram_save_complete(f, stats.ram)
    _section_footer(f, ram_id)

    devices: list[object] = []
    vmdesc: JSONObject = {"page_size": TARGET_PAGE_SIZE, "devices": devices}
    timers = _TimersState()
    _save_full(f, timers_id, "timer", 0, _VMSTATE_TIMERS, timers, devices)
    next_id = ram_id + 1
    for entry in savevm_entries() if entries is None else entries:
        if _save_full(
            f,
            next_id,
            entry.idstr,
            entry.instance_id,
            entry.vmsd,
            entry.opaque,
            devices,
        ):
            stats.sections.append(entry.idstr)
        next_id += 1
    gs = _GlobalState()
    raw = runstate.encode("ascii")
    gs.runstate[: len(raw)] = raw
    gs.size = UInt32(len(raw) + 1)
    _save_full(f, next_id, "globalstate", 0, _VMSTATE_GLOBALSTATE, gs, devices)

    f.put_byte(QEMU_VM_EOF)
    import json  # a migration only, not at start

    text = json.dumps(vmdesc).encode()
    f.put_byte(QEMU_VM_VMDESCRIPTION)
    f.put_be32(len(text))
    f.put_buffer(text)
    f.flush()
    stats.total_bytes = f.transferred() - start
    return stats


def _save_full(
    f: QEMUFileWriter,
    section_id: int,
    idstr: str,
    instance_id: int,
    vmsd: VMStateDescription[Any],
    opaque: object,
    devices: list[object],
) -> bool:
    if vmsd.needed is not None and not vmsd.needed(opaque):
        return False
    desc: JSONObject = {"name": idstr, "instance_id": instance_id}
    _section_header(
        f, QEMU_VM_SECTION_FULL, section_id, idstr, instance_id, vmsd.version_id
    )
    try:
        vmstate_save_state(f, vmsd, opaque, desc)
    except Error as exc:
        raise exc.prepend(f"section '{idstr}' (instance {instance_id}): ") from None
    _section_footer(f, section_id)
    devices.append(desc)
    return True


# -- skipping sections ---------------------------------------------------------------


def _skip_by_footer(f: QEMUFileReader, section_id: int) -> bool:
    """Move past a section's payload by finding its footer (no description)."""
    needle = bytes([QEMU_VM_SECTION_FOOTER]) + section_id.to_bytes(4, "big")
    start = 0
    while True:
        at = f.find(needle, start)
        if at < 0:
            return False
        nxt = f.peek_byte(at + 5)
        if nxt in (
            QEMU_VM_EOF,
            QEMU_VM_SECTION_START,
            QEMU_VM_SECTION_PART,
            QEMU_VM_SECTION_END,
            QEMU_VM_SECTION_FULL,
        ):
            f.skip(at)
            return True
        start = at + 1


# -- loading -------------------------------------------------------------------------


def _check_footer(f: QEMUFileReader, section_id: int, idstr: str) -> None:
    at = f.pos
    byte = f.peek_byte()
    if byte != QEMU_VM_SECTION_FOOTER:
        raise Error(
            f"section '{idstr}': missing section footer at offset {at:#x} (found "
            f"{'the end of the stream' if byte < 0 else f'byte {byte:#04x}'}); the "
            "section's content does not match this machine's description of it"
        )
    f.skip(1)
    read_id = f.get_be32()
    if read_id != section_id:
        raise Error(
            f"section '{idstr}': mismatched section id in footer: read {read_id:#x}, "
            f"expected {section_id:#x}"
        )


def _load_configuration(
    f: QEMUFileReader, machine: MachineLike, result: LoadResult
) -> None:
    at = f.pos
    kind = f.get_byte()
    if kind != QEMU_VM_CONFIGURATION:
        raise Error(
            f"configuration section missing at offset {at:#x} (found byte "
            f"{kind:#04x}): the stream was not written by QEMU 2.9 or later"
        )
    length = f.get_be32()
    if length > 255:
        raise Error(f"configuration: machine type name of {length} bytes")
    name = stream_text(bytes(f.get_buffer(length)))
    bits_min = _page_bits(machine)[1]
    bits = bits_min
    while f.peek_byte() == QEMU_VM_SUBSECTION:
        f.skip(1)
        sub = f.get_counted_string()
        version = f.get_be32()
        if sub != "configuration/target-page-bits":
            raise Error(f"configuration: unknown subsection '{sub}'")
        if version != 1:
            raise Error(f"configuration: '{sub}' version {version} is not supported")
        bits = f.get_be32()
    result.machine_type = name
    if not machine_accepts(machine, name):
        raise Error(
            f"configuration: machine type received is '{name}' and local is "
            f"'{migration_machine_name(machine)}'; start the destination with the "
            "board the stream was saved from"
        )
    local_bits = _page_bits(machine)[0]
    if bits != local_bits:
        raise Error(
            f"configuration: received TARGET_PAGE_BITS is {bits} but local is "
            f"{local_bits}"
        )


@final
class _Pending:
    """A device section read from the stream, waiting to be stored."""

    __slots__ = ("entry", "loaded")

    def __init__(self, entry: SaveStateEntry, loaded: LoadedState) -> None:
        self.entry = entry
        self.loaded = loaded


def _label(idstr: str, instance_id: int) -> str:
    return f"'{idstr}' (instance {instance_id})"


def qemu_loadvm_state(
    data: bytes | bytearray | memoryview,
    machine: MachineLike | None = None,
    *,
    skip_unknown: bool = False,
    entries: Sequence[SaveStateEntry] | None = None,
) -> LoadResult:
    """Load a whole migration stream into ``machine``, all or nothing.

    Everything is read and checked first; then the virtual clock is set, the
    device states are stored (running their ``pre_load``/``post_load``
    hooks) and the RAM pages are written.  If a hook rejects a state, every
    device state and the clock are put back before the error propagates.

    Args:
        data: the complete stream.
        machine: the board; ``/machine`` by default.
        skip_unknown: skip, with a warning, the sections of devices and the
            RAM blocks the machine lacks, instead of failing.
        entries: the device states that may be loaded; every registered
            one by default.

    Returns:
        What was loaded, including the source's run state.

    Raises:
        Error: the stream is bad (wrong magic or version, another board, a
            section of an unknown device, a version older than a device's
            ``minimum_version_id``, truncated, trailing bytes) or a device
            rejected its state.  The message names the section and field;
            the machine is unchanged.
    """
    m = _current_machine(machine)
    result = LoadResult()
    f = QEMUFileReader(data)
    try:
        pending, ram, clock, gstate = _parse_stream(
            data,
            f,
            m,
            skip_unknown,
            savevm_entries() if entries is None else entries,
            result,
        )
    except Error as exc:
        raise exc.prepend("migration: ") from None
    result.ram_pages = ram.pages()
    _apply_stream(pending, clock, result)
    ram.apply()
    if gstate is not None:
        result.runstate = gstate.name()
    result.virtual_clock_ns = clock
    return result


def _parse_header(f: QEMUFileReader, m: MachineLike, result: LoadResult) -> None:
    """Magic, version and configuration: the start of every stream."""
    magic = f.get_be32()
    if magic != QEMU_VM_FILE_MAGIC:
        raise Error(
            f"not a migration stream: bad magic {magic:#010x} (expected "
            f"{QEMU_VM_FILE_MAGIC:#010x}, 'QEVM')"
        )
    version = f.get_be32()
    if version == QEMU_VM_FILE_VERSION_COMPAT:
        raise Error("stream version 2 (SaveVM v2) is obsolete and not supported")
    if version != QEMU_VM_FILE_VERSION:
        raise Error(
            f"unsupported migration stream version {version} (expected "
            f"{QEMU_VM_FILE_VERSION})"
        )
    _load_configuration(f, m, result)


def qemu_loadvm_check_start(
    data: bytes | bytearray | memoryview, machine: MachineLike | None = None
) -> bool:
    """Check the start of a stream that is still arriving.

    A transport calls this as the bytes come in, so that a stream that is
    not for this machine (or not a stream at all: zeros, text) is refused
    after a few bytes instead of being collected whole first.

    Returns:
        True once the magic, version and configuration section (the
        machine type and page size) have all arrived and are right; False
        while more bytes are needed to tell.

    Raises:
        Error: what has arrived is wrong, with :func:`qemu_loadvm_state`'s
            message.

    >>> class Virt:
    ...     machine_name = "virt"
    ...     aliases = ("virt-7.2",)
    ...     targets = ("aarch64",)
    ...     ram = None
    >>> qemu_loadvm_check_start(b"QEV", Virt())
    False
    >>> qemu_loadvm_check_start(bytes(8), Virt())
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: migration: not a migration stream: bad magic 0x00000000 \
(expected 0x5145564d, 'QEVM')
    """
    m = _current_machine(machine)
    f = QEMUFileReader(data)
    try:
        _parse_header(f, m, LoadResult())
    except QEMUFileError:
        return False  # the stream ended: the rest has not arrived yet
    except Error as exc:
        if not f.remaining():
            return False  # decided at the end of what arrived: wait for more
        raise exc.prepend("migration: ") from None
    # A configuration subsection may still be on its way.
    return f.remaining() > 0


def qemu_loadvm_max_size(machine: MachineLike | None = None) -> int:
    """Return the longest stream pyqemu collects for ``machine`` before loading.

    A stream holds each RAM page at most a few times and the device states;
    twice the machine's RAM and ROM plus 256 MiB is more than any stream
    written for it.  Transports refuse longer ones instead of buffering
    them without end (``-incoming file:/dev/zero``).
    """
    m = _current_machine(machine)
    extra = [m.ram] if m.ram is not None else []
    return 2 * sum(b.used_length for b in ram_blocks(extra=extra)) + (256 << 20)


def _parse_stream(
    data: bytes | bytearray | memoryview,
    f: QEMUFileReader,
    m: MachineLike,
    skip_unknown: bool,
    entries: Sequence[SaveStateEntry],
    result: LoadResult,
) -> tuple[list[_Pending], RamLoad, int | None, _GlobalState | None]:
    if f.size() < 8:
        raise Error(
            f"the stream is {f.size()} bytes long, too short for a migration stream"
        )
    _parse_header(f, m, result)

    vmdesc = _VMDescIndex(data)
    extra = [m.ram] if m.ram is not None else []
    ram = RamLoad(ram_blocks(extra=extra))
    by_key = {(e.idstr, e.instance_id): e for e in entries}
    sections: dict[int, str] = {}
    pending: list[_Pending] = []
    unknown: list[str] = []
    clock: int | None = None
    gstate: _GlobalState | None = None

    while True:
        at = f.pos
        kind = f.get_byte()
        if kind == QEMU_VM_EOF:
            break
        if kind in (QEMU_VM_SECTION_START, QEMU_VM_SECTION_FULL):
            section_id = f.get_be32()
            idstr = f.get_counted_string()
            instance_id = f.get_be32()
            version_id = f.get_be32()
            label = _label(idstr, instance_id)
            sections[section_id] = idstr
            try:
                if idstr == "ram" and instance_id == 0:
                    ram.parse(f, version_id)
                elif idstr == "timer" and instance_id == 0:
                    ts = _TimersState()
                    loaded = vmstate_parse_state(f, _VMSTATE_TIMERS, ts, version_id)
                    value = loaded.field_value("cpu_clock_offset")
                    clock = value if isinstance(value, int) else 0
                elif idstr == "globalstate" and instance_id == 0:
                    gstate = _GlobalState()
                    loaded = vmstate_parse_state(
                        f, _VMSTATE_GLOBALSTATE, gstate, version_id
                    )
                    vmstate_apply_state(_VMSTATE_GLOBALSTATE, gstate, loaded)
                elif (idstr, instance_id) in by_key:
                    entry = by_key[(idstr, instance_id)]
                    loaded = vmstate_parse_state(
                        f, entry.vmsd, entry.opaque, version_id
                    )
                    pending.append(_Pending(entry, loaded))
                    result.loaded.append(f"{idstr} ({instance_id})")
                else:
                    unknown.append(label)
                    _skip_section(f, kind, section_id, idstr, instance_id, vmdesc)
            except Error as exc:
                raise exc.prepend(f"section {label} at offset {at:#x}: ") from None
            _check_footer(f, section_id, idstr)
        elif kind in (QEMU_VM_SECTION_PART, QEMU_VM_SECTION_END):
            section_id = f.get_be32()
            idstr = sections.get(section_id, "")
            if idstr != "ram":
                what = f"'{idstr}'" if idstr else "unknown"
                raise Error(
                    f"section id {section_id:#x} at offset {at:#x} continues an "
                    f"iterative section ({what}) that pyqemu cannot read; only "
                    "'ram' is iterative here"
                )
            try:
                ram.parse(f, RAM_SECTION_VERSION)
            except Error as exc:
                raise exc.prepend(f"section 'ram' at offset {at:#x}: ") from None
            _check_footer(f, section_id, idstr)
        elif kind == QEMU_VM_COMMAND:
            cmd = f.get_be16()
            raise Error(
                f"command {cmd:#x} at offset {at:#x}: migration commands "
                "(postcopy, return path) are not supported"
            )
        else:
            raise Error(f"unknown savevm section type {kind:#04x} at offset {at:#x}")

    # The JSON description, if any, closes the stream; as QEMU, read past it
    # by its length without parsing it.
    if f.peek_byte() == QEMU_VM_VMDESCRIPTION and f.remaining() >= 5:
        length = int.from_bytes(f.peek_buffer(4, 1), "big")
        if length <= f.remaining() - 5:
            f.skip(5 + length)
    if f.remaining():
        raise Error(
            f"{f.remaining()} bytes of trailing garbage after the end of the "
            f"stream at offset {f.pos:#x}"
        )
    blocks = [f"RAM block '{name}'" for name in ram.skipped]
    if (unknown or blocks) and not skip_unknown:
        parts = []
        if unknown:
            parts.append(
                "sections for devices this machine does not have: " + ", ".join(unknown)
            )
        if blocks:
            parts.append("RAM blocks it does not have: " + ", ".join(blocks))
        raise Error(
            "the stream has " + "; ".join(parts),
            hint="Add skip-unknown=on to the incoming URI to load the rest and "
            "skip these.\n",
        )
    for label in unknown:
        warn_report(f"migration: skipping section {label}: no such device here")
    for label in blocks:
        warn_report(f"migration: skipping {label}: no such RAM block here")
    result.skipped = unknown + blocks
    return pending, ram, clock, gstate


@final
class _VMDescIndex:
    """The stream's JSON description, parsed when first needed, by section."""

    __slots__ = ("_data", "_devices")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = data
        self._devices: dict[tuple[str, int], JSONObject] | None = None

    def device(self, idstr: str, instance_id: int) -> JSONObject | None:
        """The description of section ``idstr`` ``instance_id``, if any."""
        if self._devices is None:
            self._devices = {}
            found = vmdesc_find(self._data)
            devices = found[1].get("devices") if found is not None else None
            for dev in devices if isinstance(devices, list) else []:
                if not isinstance(dev, dict):
                    continue
                name, instance = dev.get("name"), dev.get("instance_id")
                if isinstance(name, str) and isinstance(instance, int):
                    self._devices.setdefault((name, instance), dev)
        return self._devices.get((idstr, instance_id))


def _skip_section(
    f: QEMUFileReader,
    kind: int,
    section_id: int,
    idstr: str,
    instance_id: int,
    vmdesc: _VMDescIndex,
) -> None:
    if kind == QEMU_VM_SECTION_START:
        raise Error(
            "an iterative section of a device this machine does not have cannot "
            "be skipped"
        )
    entry = vmdesc.device(idstr, instance_id)
    if entry is not None:
        vmdesc_skip(f, entry)
        return
    if not _skip_by_footer(f, section_id):
        raise Error(
            "the stream has no VM description of this device and its end "
            "could not be found"
        )


def _apply_stream(
    pending: list[_Pending], clock: int | None, result: LoadResult
) -> None:
    backups = [
        (p.entry, vmstate_capture_state(p.entry.vmsd, p.entry.opaque)) for p in pending
    ]
    old_clock = qemu_clock_get_ns(CLOCK_VIRTUAL)
    moved = clock is not None and clock != old_clock
    if moved and clock is not None:
        virtual_clock_reset(max(clock, 0))
    current = ""
    try:
        for p in pending:
            current = _label(p.entry.idstr, p.entry.instance_id)
            vmstate_apply_state(p.entry.vmsd, p.entry.opaque, p.loaded)
    except Error as exc:
        if moved:
            virtual_clock_reset(old_clock)
        for entry, backup in backups:
            vmstate_restore_state(entry.vmsd, entry.opaque, backup)
        raise exc.prepend(
            f"migration: section {current}: the state was rejected, nothing was "
            "loaded: "
        ) from None


# -- -dump-vmstate --------------------------------------------------------------------


def _dump_field(out: list[str], field: VMStateField[Never], indent: int) -> None:
    pad = " " * indent
    out.append(f"{pad}{{\n")
    inner = " " * (indent + 2)
    out.append(f'{inner}"field": "{field.name}",\n')
    out.append(f'{inner}"version_id": {field.version_id},\n')
    out.append(f'{inner}"field_exists": false,\n')
    size = field.dump_size()
    if field.vmsd is not None and size < 0:
        size = field.vmsd.static_size()
    out.append(f'{inner}"size": {size}')
    if field.vmsd is not None:
        out.append(",\n")
        _dump_vmsd(out, field.vmsd, indent + 2, is_subsection=False)
    out.append(f"\n{pad}}}")


def _dump_vmsd(
    out: list[str], vmsd: VMStateDescription[Never], indent: int, is_subsection: bool
) -> None:
    pad = " " * indent
    if is_subsection:
        out.append(f"{pad}{{\n")
    else:
        out.append(f'{pad}"Description": {{\n')
    inner = " " * (indent + 2)
    out.append(f'{inner}"name": "{vmsd.name}",\n')
    out.append(f'{inner}"version_id": {vmsd.version_id},\n')
    out.append(f'{inner}"minimum_version_id": {vmsd.minimum_version_id}')
    out.append(f',\n{inner}"Fields": [\n')
    first = True
    for field in vmsd.fields:
        if field.test is not None and field.num == 0:
            continue  # VMSTATE_VALIDATE: nothing migrates
        if not first:
            out.append(",\n")
        _dump_field(out, field, indent + 4)
        first = False
    out.append(f"\n{inner}]")
    if vmsd.subsections:
        out.append(f',\n{inner}"Subsections": [\n')
        for i, sub in enumerate(vmsd.subsections):
            if i:
                out.append(",\n")
            _dump_vmsd(out, sub, indent + 4, is_subsection=True)
        out.append(f"\n{inner}]")
    out.append(f"\n{pad}}}")


def dump_vmstate_json(machine_type: str) -> str:
    """Return QEMU's ``-dump-vmstate`` JSON for every device type with a ``vmsd``.

    The text is what ``qemu-system-* -M <board> -dump-vmstate FILE`` writes
    (``dump_vmstate_json_to_file``), byte for byte in layout, so that QEMU's
    ``scripts/vmstate-static-checker.py`` can compare it with QEMU's.

    Args:
        machine_type: the ``vmschkmachine`` name, e.g. ``"virt-7.2"`` (see
            :func:`migration_machine_name`).
    """
    out = ["{\n", '  "vmschkmachine": {\n', f'    "Name": "{machine_type}"\n', "  },\n"]
    first = True
    for cls in object_class_get_list("device"):
        vmsd = getattr(cls, "vmsd", None)
        if not isinstance(vmsd, VMStateDescription):
            continue
        if not first:
            out.append(",\n")
        name = cls.TYPE_NAME
        out.append(f'  "{name}": {{\n')
        out.append(f'    "Name": "{name}",\n')
        out.append(f'    "version_id": {vmsd.version_id},\n')
        out.append(f'    "minimum_version_id": {vmsd.minimum_version_id},\n')
        _dump_vmsd(out, vmsd, 4, is_subsection=False)
        out.append("\n  }")
        first = False
    out.append("\n}\n")
    return "".join(out)


def dump_vmstate_json_to_file(path: str, machine: MachineLike | None = None) -> None:
    """Write :func:`dump_vmstate_json` of ``machine``'s type to ``path``.

    The ``-dump-vmstate FILE`` command-line option.

    Raises:
        Error: the file cannot be written.
    """
    text = dump_vmstate_json(migration_machine_name(_current_machine(machine)))
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise Error.from_os_error(f"open {path}", exc) from exc
