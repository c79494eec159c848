r"""Register maps: a device's registers declared once, decoded, logged and reset.

This module models QEMU's register API: the ``REG32``/``FIELD`` declarations
of ``include/hw/registerfields.h`` and the ``RegisterAccessInfo`` of
``include/hw/register.h`` with the access semantics of ``hw/core/register.c``
(``register_read``, ``register_write``, ``register_reset``, the
``register_read_memory``/``register_write_memory`` MMIO callbacks) -- the
table-driven alternative to a device's hand-written ``switch (offset)``.

A device lists its registers in a :class:`RegisterMap`: per register its name,
offset, width (8, 16, 32 or 64 bits), :class:`Access` kind, the state it
reads and writes (a typed reference into a :class:`~qemu_api.bql.BqlStruct`,
``field=lambda s: s.regs.ibrd``, or ``read=``/``write=`` callbacks for
registers with side effects), its reset value, write mask, reserved and
unimplemented bits, its bit fields (a :class:`~qemu_api.bits.Bitfield`) and
hooks (``pre_write``, ``post_write``, ``post_read``).  Repeated registers
(a GIC's ``ISENABLER<n>``, byte-wide priority registers, a PrimeCell's ID
block, an HPET's per-timer registers) are a :class:`RegisterArray`.  From that
one declaration the map provides:

- the MMIO callbacks :attr:`RegisterMap.read` and :attr:`RegisterMap.write`
  for a :class:`~qemu_api.memory.MemoryRegionOps`: a decode table built once
  when the map is bound to the device class, so an access costs an index
  into a tuple and the register's own work, and allocates nothing;
- accesses narrower or wider than a register (:attr:`Decode.BYTES`: a 32-bit
  half of a 64-bit register, several byte registers at once), or QEMU's
  PrimeCell decode where any access inside a register is the whole register
  (:attr:`Decode.WHOLE`, the C devices' ``switch (offset >> 2)``), or the
  decode of a ``switch (offset)`` that matches registers at their offset only
  (:attr:`Decode.EXACT`);
- the guest-error and unimplemented log lines in ``hw/core/register.c``'s
  wording, or in the device's own QEMU wording (:class:`RegisterLog`);
- the register names the device's trace events print
  (:meth:`RegisterMap.regname`), passed to its read and write trace points;
- :meth:`RegisterMap.reset`, which stores every register's reset value.

The access kinds are flags, combined with ``|``: :data:`R` (readable),
:data:`W` (writable), :data:`W1C`/:data:`W1S` (writing 1 clears/sets a bit),
:data:`RC` (reading clears), :data:`WI` (writes ignored without a log line),
:data:`RAZ` (reads as zero without a log line); :data:`RO`, :data:`WO` and
:data:`RW` name the usual ones.  A register that cannot be read logs a guest
error when read and returns 0; one that cannot be written logs one when
written.

A small timer device:

>>> from qemu_api.bql import BqlStruct
>>> from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log
>>> class TimerRegs(BqlStruct):
...     load: int
...     control: int
...     status: int
...
...     def __init__(self) -> None:
...         self.load = self.control = self.status = 0
>>> class Tmr:
...     regs: TimerRegs
...
...     def __init__(self) -> None:
...         self.regs = TimerRegs()
...
...     def current(self) -> int:
...         return self.regs.load // 2
...
...     registers = RegisterMap["Tmr"](
...         "tmr",
...         0x100,
...         [
...             Register("LOAD", 0x00, RW, field=lambda s: s.regs.load),
...             Register("VALUE", 0x04, RO, read=current),
...             Register(
...                 "CTRL",
...                 0x08,
...                 RW,
...                 field=lambda s: s.regs.control,
...                 write_mask=0xFF,
...                 reset=0x20,
...             ),
...             Register("INTCLR", 0x0C, W1C, field=lambda s: s.regs.status),
...             Register("RIS", 0x10, RO, field=lambda s: s.regs.status),
...         ],
...     )
>>> t = Tmr()
>>> Tmr.registers.reset(t)
>>> Tmr.registers.read(t, 0x08, 4)
32
>>> Tmr.registers.write(t, 0x00, 1000, 4)
>>> Tmr.registers.read(t, 0x04, 4), Tmr.registers.regname(0x04)
(500, 'VALUE')
>>> t.regs.status = 0b111
>>> Tmr.registers.write(t, 0x0C, 0b101, 4)  # write one to clear
>>> Tmr.registers.read(t, 0x10, 4)
2
>>> import sys
>>> sys.stderr = sys.stdout  # the log goes to stderr; doctests show stdout
>>> qemu_set_log(LOG_GUEST_ERROR)
>>> Tmr.registers.write(t, 0x04, 1, 4)
tmr: write to read-only register VALUE at address: 0x4
>>> Tmr.registers.read(t, 0x40, 4)
tmr:  read to unimplemented register at address: 0x40
0
>>> qemu_set_log(0)
>>> sys.stderr = sys.__stderr__
"""

from __future__ import annotations

import enum
import keyword
import operator
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, NamedTuple, TypeVar, final

from qemu_api._compat import override
from qemu_api._fieldref import (
    INDEX,
    FieldRefError,
    Step,
    caller_namespaces,
    describe_path,
    field_path,
    resolve_annotation,
    type_name,
)
from qemu_api.bits import Bitfield, FixedUInt
from qemu_api.bql import BqlCell, BqlRefCell, BqlStruct, _held
from qemu_api.error import Error
from qemu_api.log import LOG_GUEST_ERROR, LOG_UNIMP, qemu_log_mask, qemu_loglevel_mask
from qemu_api.trace import TraceEvent, trace_event_of

__all__ = [
    "RAZ",
    "RC",
    "RO",
    "RW",
    "W1C",
    "W1S",
    "WI",
    "WO",
    "Access",
    "Decode",
    "R",
    "Register",
    "RegisterArray",
    "RegisterLog",
    "RegisterMap",
    "W",
]

D_contra = TypeVar("D_contra", contravariant=True)


# -- access kinds ----------------------------------------------------------------


@final
class Access(enum.Flag):
    """How a register reads and writes; combine the flags with ``|``.

    A register has at most one read behaviour (:attr:`R` or :attr:`RAZ`) and
    at most one write behaviour (:attr:`W`, :attr:`W1C`, :attr:`W1S` or
    :attr:`WI`); :attr:`RC` adds a side effect to :attr:`R`.  Without a read
    behaviour a read is a guest error (logged, 0 returned), without a write
    behaviour a write is one (logged, ignored).

    >>> R | W1C
    <Access.R|W1C: 5>
    """

    R = enum.auto()
    """Readable: the field's value, or the ``read`` callback's."""
    W = enum.auto()
    """Writable: the bits of the write mask take the written value."""
    W1C = enum.auto()
    """Write one to clear: each 1 written clears that bit (register.c ``w1c``)."""
    W1S = enum.auto()
    """Write one to set: each 1 written sets that bit (a GIC's ``ISENABLER``)."""
    RC = enum.auto()
    """Clear on read: a read returns the value, then clears it (register.c ``cor``)."""
    WI = enum.auto()
    """Writes ignored, without a log line (ARM's "WI")."""
    RAZ = enum.auto()
    """Reads as zero, without a log line (ARM's "RAZ")."""


R: Final = Access.R
"""Readable (:attr:`Access.R`)."""
W: Final = Access.W
"""Writable (:attr:`Access.W`)."""
W1C: Final = Access.W1C
"""Write one to clear (:attr:`Access.W1C`); ``R | W1C`` to read it too."""
W1S: Final = Access.W1S
"""Write one to set (:attr:`Access.W1S`); ``R | W1S`` to read it too."""
RC: Final = Access.RC
"""Clear on read (:attr:`Access.RC`), with :data:`R`."""
WI: Final = Access.WI
"""Writes ignored silently (:attr:`Access.WI`)."""
RAZ: Final = Access.RAZ
"""Reads as zero silently (:attr:`Access.RAZ`)."""
RO: Final = Access.R
"""Read-only: readable, a write is a guest error."""
WO: Final = Access.W
"""Write-only: writable, a read is a guest error."""
RW: Final = Access.R | Access.W
"""Read-write."""

_WRITES: Final = (Access.W, Access.W1C, Access.W1S, Access.WI)
_R_BIT: Final = Access.R.value
_W_BIT: Final = Access.W.value
_W1C_BIT: Final = Access.W1C.value
_W1S_BIT: Final = Access.W1S.value
_RC_BIT: Final = Access.RC.value
_RAZ_BIT: Final = Access.RAZ.value
_WI_BIT: Final = Access.WI.value
_WRITES_BITS: Final = (Access.W | Access.W1C | Access.W1S | Access.WI).value

_SPAN_CACHE_MAX: Final = 4096
"""The most (offset, size) decompositions a map remembers."""

_BYTE_TABLE_MAX: Final = 0x10000
"""Register blocks up to this size decode through a table with one entry per byte."""


@final
class Decode(enum.Enum):
    """How an access maps onto the registers of a :class:`RegisterMap`."""

    BYTES = "bytes"
    """An access reads and writes the bytes it covers, little-endian: a
    narrower access is part of a register (a 64-bit register read as two
    32-bit halves), a wider one covers several registers; bytes outside any
    register are unimplemented.  The model of ``hw/core/register.c`` and of
    QEMU's HPET and GIC."""
    WHOLE = "whole"
    """Any access that lands inside a register reads or writes the whole
    register, whatever its size and alignment: QEMU's PrimeCell devices
    (``switch (offset >> 2)``) with ``impl.min_access_size = 4``."""
    EXACT = "exact"
    """An access at a register's offset reads or writes that whole register,
    whatever its size; an access at any other offset (inside a register or not)
    is a bad one: QEMU's ``switch (offset)`` devices without ``impl`` sizes,
    such as the GIC's CPU interface (``gic_cpu_read``), the PL031 and the
    PL061, where a byte access at ``DR + 1`` is a bad offset. A ``case`` range
    that decodes every byte (``case 0xfe0 ... 0xfff``) is a
    :class:`RegisterArray` of byte-wide elements."""


# -- log lines -------------------------------------------------------------------

_SAMPLE: Final = {
    "prefix": "dev",
    "name": "REG",
    "addr": 0x40,
    "value": 0x1,
    "bits": 0x1,
    "unimp": 0x1,
    "size": 4,
}


@final
@dataclass(frozen=True)
class RegisterLog:
    r"""The log lines of bad register accesses, as ``str.format`` templates.

    The templates may use ``{prefix}`` (the map's log prefix, by default its
    name), ``{name}`` (the register), ``{addr}`` (the offset of the access),
    ``{value}`` (the value written), ``{bits}`` (the reserved bits a write
    changes), ``{unimp}`` (the register's unimplemented bits) and ``{size}``.
    The defaults are ``hw/core/register.c``'s lines in QEMU 7.2, and the same
    style for read-only and write-only registers, which register.c does not
    have.  A device whose QEMU model words its own lines gives them here;
    :meth:`bad_offset` makes the common "Bad offset" set.

    Attributes:
        bad_read: a read where no register is (``LOG_GUEST_ERROR``).
        bad_write: a write where no register is (``LOG_GUEST_ERROR``).
        wo_read: a read of a register that cannot be read (``LOG_GUEST_ERROR``).
        ro_write: a write to a register that cannot be written
            (``LOG_GUEST_ERROR``).
        rsvd: a write that changes reserved bits (``LOG_GUEST_ERROR``).
        unimp: a write that sets unimplemented bits (``LOG_UNIMP``).

    Raises:
        Error: a template uses an unknown ``{placeholder}``.

    >>> RegisterLog().bad_write.format(prefix="xlnx.zynqmp-crf", addr=0x200)
    'xlnx.zynqmp-crf: write to unimplemented register at address: 0x200\n'
    """

    bad_read: str = "{prefix}:  read to unimplemented register at address: 0x{addr:x}\n"
    bad_write: str = (
        "{prefix}: write to unimplemented register at address: 0x{addr:x}\n"
    )
    wo_read: str = (
        "{prefix}: read from write-only register {name} at address: 0x{addr:x}\n"
    )
    ro_write: str = (
        "{prefix}: write to read-only register {name} at address: 0x{addr:x}\n"
    )
    rsvd: str = "{prefix}: change of value in reserved bitfields: 0x{bits:x})\n"
    unimp: str = (
        "{prefix}:{name} writing 0x{value:x} to unimplemented bits: 0x{unimp:x}\n"
    )

    def __post_init__(self) -> None:
        for attr in ("bad_read", "bad_write", "wo_read", "ro_write", "rsvd", "unimp"):
            template = getattr(self, attr)
            try:
                template.format(**_SAMPLE)
            except (KeyError, IndexError, ValueError) as exc:
                known = ", ".join("{" + k + "}" for k in _SAMPLE)
                raise Error(
                    f"RegisterLog: the {attr} template {template!r} does not "
                    f"format ({type(exc).__name__}: {exc}); it may use {known}"
                ) from None

    @classmethod
    def bad_offset(
        cls, read: str, write: str, *, unimp: str | None = None
    ) -> RegisterLog:
        r"""One line for every bad read and one for every bad write.

        QEMU's PrimeCell models log "Bad offset" for reserved offsets,
        write-only registers read and read-only registers written alike.

        Args:
            read: the line of any bad read.
            write: the line of any bad write.
            unimp: the line of a write to unimplemented bits, if the device
                words it too.

        >>> log = RegisterLog.bad_offset(
        ...     "pl011_read: Bad offset 0x{addr:x}\n",
        ...     "pl011_write: Bad offset 0x{addr:x}\n",
        ... )
        >>> log.wo_read.format(addr=0x44)
        'pl011_read: Bad offset 0x44\n'
        """
        default = cls()
        return cls(
            bad_read=read,
            bad_write=write,
            wo_read=read,
            ro_write=write,
            rsvd=default.rsvd,
            unimp=default.unimp if unimp is None else unimp,
        )


# -- declarations ------------------------------------------------------------------

FieldRef = Callable[[D_contra], int | Bitfield]
"""A register's state: ``lambda s: s.regs.ibrd`` (an ``int``, a fixed-width
integer or a :class:`~qemu_api.bits.Bitfield` field of a BqlStruct)."""


def _mask(bits: int) -> int:
    return (1 << bits) - 1


@final
class Register(Generic[D_contra]):
    """One register of a :class:`RegisterMap` (QEMU's ``RegisterAccessInfo``).

    The type parameter is the device (the map's owner): every reference and
    hook takes it first.

    Args:
        name: the register's name, for log lines, trace events and
            ``map[name]``.
        offset: the byte offset in the map, aligned to the width.
        access: the :class:`Access` flags; :data:`RW` by default.
        width: 8, 16, 32 or 64 bits.
        field: the state the register reads and writes,
            ``lambda s: s.regs.ctrl``: an ``int``, fixed-width integer or
            Bitfield field of a :class:`~qemu_api.bql.BqlStruct` (or the
            content of a ``BqlCell``/``BqlRefCell``).
        read: instead of reading ``field``, ``read(dev) -> value`` (a data
            register that pops a FIFO, a value computed from others).
        write: instead of storing into ``field``, ``write(dev, value)``, with
            the value after the write mask and ``pre_write`` (a register
            whose write has side effects beyond storing it).
        write_masked: instead of storing into ``field``,
            ``write_masked(dev, value, mask)``: ``mask`` has the bits the
            access writes (every bit for a whole-register access, 32 of them
            for a 32-bit half of a 64-bit register) and ``value`` the written
            bits in place, the others 0.  For a register whose partial write
            is not a merge into one stored value (QEMU's HPET deposits a
            comparator write into the comparator, the period or neither,
            ``deposit64(old, shift, len, value)``).  Needs :data:`W`, and no
            ``write`` or ``pre_write``.
        reset: the value :meth:`RegisterMap.reset` stores, 0 by default for a
            register with a ``field``; None to leave the field alone.
        write_mask: the bits a write changes (all by default); the others
            keep their value.
        rsvd: reserved bits: a write that changes them is logged (they are
            not written either).
        unimp: unimplemented bits: a write that sets one is logged under
            ``LOG_UNIMP`` (the bits are stored as the write mask says).
        pre_write: ``pre_write(dev, value) -> value`` turns the value about
            to be stored into the one stored.
        post_write: ``post_write(dev)`` runs after every write, when the new
            value is in place (to update IRQ lines, timers, the chardev).
        post_read: ``post_read(dev, value) -> value`` turns the value read
            into the one returned.
        fields: the register's bit fields, when ``field`` is not already a
            Bitfield (documentation and :attr:`fields` only).
        trace_name: the name trace events print, when it is not ``name``
            (QEMU's PL011 calls UARTLCR_H "LCRH").
        present: ``present(dev) -> bool``: whether this device instance has
            the register (its configuration decides: a GIC's
            ``num-irq``, a revision); where it returns False the offset is
            a hole (the bad-access log lines, reads 0).  Always present by
            default.
        doc: one line about the register.

    Raises:
        Error: the declaration is inconsistent (an unaligned offset, masks
            wider than the register, a readable register with nothing to
            read, ...); the message names the register.
    """

    __slots__ = (
        "_post_read",
        "_post_write",
        "_pre_write",
        "_present",
        "_read",
        "_steps",
        "_whole_hooks",
        "_write",
        "_write_masked",
        "access",
        "array",
        "doc",
        "field",
        "fields",
        "index",
        "name",
        "offset",
        "reset",
        "rsvd",
        "trace_name",
        "unimp",
        "width",
        "write_mask",
    )

    def __init__(
        self,
        name: str,
        offset: int,
        access: Access = RW,
        *,
        width: int = 32,
        field: FieldRef[D_contra] | None = None,
        read: Callable[[D_contra], int] | None = None,
        write: Callable[[D_contra, int], None] | None = None,
        write_masked: Callable[[D_contra, int, int], None] | None = None,
        reset: int | None = 0,
        write_mask: int | None = None,
        rsvd: int = 0,
        unimp: int = 0,
        pre_write: Callable[[D_contra, int], int] | None = None,
        post_write: Callable[[D_contra], None] | None = None,
        post_read: Callable[[D_contra, int], int] | None = None,
        fields: type[Bitfield] | None = None,
        trace_name: str | None = None,
        present: Callable[[D_contra], bool] | None = None,
        doc: str = "",
    ) -> None:
        self.name = name
        self.offset = offset
        self.access = access
        self.width = width
        self.field = field
        self._present: Callable[[Any], bool] | None = present
        self.doc = doc
        self.fields = fields
        self.trace_name = name if trace_name is None else trace_name
        self.index: int | None = None
        self.array: RegisterArray[D_contra] | None = None
        self._read: Callable[[Any], int] | None = read
        self._write: Callable[[Any, int], None] | None = write
        self._write_masked: Callable[[Any, int, int], None] | None = write_masked
        self._pre_write: Callable[[Any, int], int] | None = pre_write
        self._post_write: Callable[[Any], None] | None = post_write
        self._post_read: Callable[[Any, int], int] | None = post_read
        self._steps: tuple[Step, ...] | None = None
        self._whole_hooks: _ArrayHooks | None = None
        if field is not None:
            self._steps = self._path(field, indexed=False)
        self.reset = reset if self._steps is not None else None
        self.write_mask = _mask(width) if write_mask is None else write_mask
        self.rsvd = rsvd
        self.unimp = unimp
        self._check(reset)

    @classmethod
    def _element(
        cls,
        array: RegisterArray[Any],
        index: int,
        steps: tuple[Step, ...] | None,
        hooks: dict[str, Any],
    ) -> Register[Any]:
        """An element of ``array``: its declaration with the index filled in."""
        reg = cls.__new__(cls)
        reg.name = f"{array.name}{index}"
        reg.offset = array.offset + index * array.stride
        reg.access = array.access
        reg.width = array.width
        reg.field = None
        reg.doc = array.doc
        reg.fields = array.fields
        reg.trace_name = array.trace_name if array.trace_name else reg.name
        reg.index = index
        reg.array = array
        reg._read = hooks.get("read")
        reg._write = hooks.get("write")
        reg._write_masked = hooks.get("write_masked")
        reg._pre_write = hooks.get("pre_write")
        reg._post_write = hooks.get("post_write")
        reg._post_read = hooks.get("post_read")
        reg._present = hooks.get("present")
        reg._whole_hooks = hooks.get("array")
        reg._steps = steps
        reset = array.reset_of(index)
        reg.reset = reset if steps is not None else None
        reg.write_mask = array.write_mask
        reg.rsvd = array.rsvd
        reg.unimp = array.unimp
        return reg

    def _error(self, msg: str) -> Error:
        return Error(f"register {self.name} (offset 0x{self.offset:x}): {msg}")

    def _path(self, ref: Callable[..., object], *, indexed: bool) -> tuple[Step, ...]:
        try:
            return field_path(ref, indexed=indexed)
        except FieldRefError as exc:
            raise self._error(f"field: {exc}") from None

    def _check(self, reset: int | None, *, access: bool = True) -> None:
        if not self.name:
            raise Error(f"register at offset 0x{self.offset:x}: the name is empty")
        if self.width not in (8, 16, 32, 64):
            raise self._error(f"width={self.width}; expected 8, 16, 32 or 64 bits")
        nbytes = self.width // 8
        if self.offset < 0 or self.offset % nbytes:
            raise self._error(
                f"a {self.width}-bit register must sit at a multiple of {nbytes} "
                "bytes; fix the offset or the width"
            )
        full = _mask(self.width)
        for what, mask in (
            ("write_mask", self.write_mask),
            ("rsvd", self.rsvd),
            ("unimp", self.unimp),
        ):
            if mask < 0 or mask & ~full:
                raise self._error(
                    f"{what}=0x{mask:x} has bits outside the {self.width}-bit register"
                )
        if self.reset is not None and not 0 <= self.reset <= full:
            raise self._error(
                f"reset=0x{self.reset:x} does not fit the {self.width}-bit register"
            )
        if reset and self._steps is None and self.index is None:
            raise self._error(
                "a reset value needs a field to store it in; add field=... or "
                "drop reset="
            )
        if access:
            self._check_access()

    def _check_access(self) -> None:
        access = self.access
        if not isinstance(access, Access):
            raise self._error(f"access={access!r}; expected Access flags like RW")
        # Plain ints: a Flag operation costs microseconds, and a GIC's map
        # checks thousands of registers at import.
        a = access.value
        has_field = self._steps is not None
        if a & _R_BIT and a & _RAZ_BIT:
            raise self._error("R and RAZ both say how the register reads; keep one")
        writes = a & _WRITES_BITS
        if writes & (writes - 1):
            names = " and ".join(str(flag.name) for flag in _WRITES if access & flag)
            raise self._error(f"{names} both say how the register writes; keep one")
        if not a & (_R_BIT | _RAZ_BIT) and not writes:
            raise self._error(
                "the register can be neither read nor written; give it R, W, ..."
            )
        if a & _RC_BIT and not a & _R_BIT:
            raise self._error("RC (clear on read) needs R")
        if a & _R_BIT and not has_field and self._read is None:
            raise self._error(
                "a readable register needs field= or read= (or RAZ to read as zero)"
            )
        if a & _RAZ_BIT and (self._read is not None or self._post_read is not None):
            raise self._error("a RAZ register reads as zero: drop read= and post_read=")
        if (
            a & _W_BIT
            and not has_field
            and self._write is None
            and self._write_masked is None
        ):
            raise self._error(
                "a writable register needs field= or write= (or write_masked=, or "
                "WI to ignore writes)"
            )
        if self._write_masked is not None and (
            self._write is not None or self._pre_write is not None
        ):
            raise self._error(
                "write_masked= replaces write= and pre_write=; keep only write_masked="
            )
        if self._write_masked is not None and a & (_W1C_BIT | _W1S_BIT):
            raise self._error(
                "write_masked= receives the written bits as they are: use W, not "
                "W1C or W1S"
            )
        if a & (_W1C_BIT | _W1S_BIT | _RC_BIT) and not has_field:
            raise self._error(
                "W1C, W1S and RC change the stored value: the register needs field="
            )
        if not a & (_W_BIT | _W1C_BIT | _W1S_BIT) and (
            self._write is not None
            or self._write_masked is not None
            or self._pre_write is not None
            or self._post_write is not None
        ):
            raise self._error(
                "write=, write_masked=, pre_write= and post_write= need a writable "
                "register (W, W1C or W1S)"
            )
        if not a & _R_BIT and (self._read is not None or self._post_read is not None):
            raise self._error("read= and post_read= need a readable register (R)")

    @property
    def size(self) -> int:
        """The register's size in bytes."""
        return self.width // 8

    @override
    def __repr__(self) -> str:
        return f"Register('{self.name}', 0x{self.offset:03x}, {self.access!r})"


class _ArrayElementHooks(NamedTuple):
    """A :class:`RegisterArray`'s hooks, which take the element's index."""

    read: Callable[[Any, int], int] | None
    write: Callable[[Any, int, int], None] | None
    write_masked: Callable[[Any, int, int, int], None] | None
    pre_write: Callable[[Any, int, int], int] | None
    post_write: Callable[[Any, int], None] | None
    post_read: Callable[[Any, int, int], int] | None
    present: Callable[[Any, int], bool] | None


@final
class RegisterArray(Generic[D_contra]):
    """``count`` registers of one kind, ``stride`` bytes apart.

    The references and hooks take the element's index after the device
    (``field=lambda s, n: s.regs.priority[n]``); everything else is as for
    :class:`Register`.  Element *n* is called ``f"{name}{n}"`` in log lines
    and ``map[...]``; trace events print ``trace_name`` for every element
    when it is given.  Arrays interleave: an HPET's per-timer ``CONFIG``,
    ``CMP`` and ``FSB`` registers are three arrays with the same stride.

    Args:
        name: the array's name; element *n* is ``f"{name}{n}"``.
        offset: the offset of element 0.
        count: the number of elements.
        access: the :class:`Access` flags of every element.
        width: 8, 16, 32 or 64 bits.
        stride: the distance between elements in bytes; the width by default.
        field: ``lambda s, n: ...``, the state of element *n*.
        read: ``read(dev, n) -> value``.
        write: ``write(dev, n, value)``.
        write_masked: ``write_masked(dev, n, value, mask)``.
        reset: one reset value for every element, a sequence of ``count``
            values, or None; 0 by default for an array with a ``field``.
        write_mask: as for :class:`Register`.
        rsvd: as for :class:`Register`.
        unimp: as for :class:`Register`.
        pre_write: ``pre_write(dev, n, value) -> value``.
        post_write: ``post_write(dev, n)``.
        post_read: ``post_read(dev, n, value) -> value``.
        fields: as for :class:`Register`.
        trace_name: the name trace events print for every element.
        present: ``present(dev, n) -> bool``: whether this device instance
            has element *n* (a GIC's per-interrupt registers end at its
            ``num-irq``); see :class:`Register`.
        doc: one line about the registers.

    Raises:
        Error: the declaration is inconsistent; the message names the element.

    >>> ids = RegisterArray("ID", 0xFE0, 8, RO, read=lambda s, n: (0x11, 0x10)[n % 2])
    >>> [reg.name for reg in ids.elements][:3], hex(ids.elements[7].offset)
    (['ID0', 'ID1', 'ID2'], '0xffc')
    """

    __slots__ = (
        "_elements",
        "_hooks",
        "_resets",
        "_steps",
        "access",
        "count",
        "doc",
        "fields",
        "name",
        "offset",
        "rsvd",
        "stride",
        "trace_name",
        "unimp",
        "width",
        "write_mask",
    )

    def __init__(
        self,
        name: str,
        offset: int,
        count: int,
        access: Access = RW,
        *,
        width: int = 32,
        stride: int | None = None,
        field: Callable[[D_contra, int], int | Bitfield] | None = None,
        read: Callable[[D_contra, int], int] | None = None,
        write: Callable[[D_contra, int, int], None] | None = None,
        write_masked: Callable[[D_contra, int, int, int], None] | None = None,
        reset: int | Sequence[int] | None = 0,
        write_mask: int | None = None,
        rsvd: int = 0,
        unimp: int = 0,
        pre_write: Callable[[D_contra, int, int], int] | None = None,
        post_write: Callable[[D_contra, int], None] | None = None,
        post_read: Callable[[D_contra, int, int], int] | None = None,
        fields: type[Bitfield] | None = None,
        trace_name: str | None = None,
        present: Callable[[D_contra, int], bool] | None = None,
        doc: str = "",
    ) -> None:
        self.name = name
        self.offset = offset
        self.count = count
        self.access = access
        self.width = width
        self.stride = width // 8 if stride is None else stride
        self.write_mask = _mask(width) if write_mask is None else write_mask
        self.rsvd = rsvd
        self.unimp = unimp
        self.fields = fields
        self.trace_name = trace_name
        self.doc = doc
        if count <= 0:
            raise Error(f"register array {name}: count={count}; expected 1 or more")
        if self.stride < width // 8:
            raise Error(
                f"register array {name}: stride={self.stride} is less than the "
                f"{width // 8} bytes of one element; the elements would overlap"
            )
        if reset is None or isinstance(reset, int):
            self._resets: tuple[int | None, ...] = (reset,) * count
        else:
            self._resets = tuple(reset)
            if len(self._resets) != count:
                raise Error(
                    f"register array {name}: {len(self._resets)} reset values for "
                    f"{count} elements; give one per element or a single value"
                )
        steps: tuple[Step, ...] | None = None
        if field is not None:
            try:
                steps = field_path(field, indexed=True)
            except FieldRefError as exc:
                raise Error(f"register array {name}: field: {exc}") from None
        elif any(self._resets):
            raise Error(
                f"register array {name}: a reset value needs a field to store it "
                "in; add field=... or drop reset="
            )
        self._steps = steps
        self._hooks = _ArrayElementHooks(
            read, write, write_masked, pre_write, post_write, post_read, present
        )
        self._elements: tuple[Register[D_contra], ...] | None = None
        # The access flags and which hooks exist are the same for every
        # element: the first one checks them for all.  The others differ only
        # in their offset and reset value: they are made on first use (a
        # GIC's thousands of byte registers), so check those two here.
        self._element(0)._check(self._resets[0])
        nbytes = width // 8
        full = _mask(width)
        for i, reset_value in enumerate(self._resets):
            if (offset + i * self.stride) % nbytes or (
                reset_value is not None and not 0 <= reset_value <= full
            ):
                self._element(i)._check(reset_value, access=False)

    def _element(self, i: int) -> Register[D_contra]:
        """Element ``i``: the declaration with the index filled in."""
        steps = self._steps
        h = self._hooks
        hooks = _bind_index(
            i,
            h.read,
            h.write,
            h.write_masked,
            h.pre_write,
            h.post_write,
            h.post_read,
            h.present,
        )
        elem_steps = (
            None if steps is None else tuple(i if s is INDEX else s for s in steps)
        )
        return Register._element(self, i, elem_steps, hooks)

    @property
    def elements(self) -> tuple[Register[D_contra], ...]:
        """The registers, element 0 first (made on first use)."""
        if self._elements is None:
            self._elements = tuple(self._element(i) for i in range(self.count))
        return self._elements

    def reset_of(self, index: int) -> int | None:
        """The reset value of element ``index``."""
        return self._resets[index]

    @override
    def __repr__(self) -> str:
        return (
            f"RegisterArray('{self.name}', 0x{self.offset:03x}, {self.count}, "
            f"{self.access!r})"
        )


def _bind_index(
    i: int,
    read: Callable[[Any, int], int] | None,
    write: Callable[[Any, int, int], None] | None,
    write_masked: Callable[[Any, int, int, int], None] | None,
    pre_write: Callable[[Any, int, int], int] | None,
    post_write: Callable[[Any, int], None] | None,
    post_read: Callable[[Any, int, int], int] | None,
    present: Callable[[Any, int], bool] | None,
) -> dict[str, Any]:
    """The hooks of element ``i``, with the index filled in."""
    hooks: dict[str, Any] = {"array": (read, write, present)}
    if present is not None:
        hooks["present"] = lambda dev: present(dev, i)
    if read is not None:
        hooks["read"] = lambda dev: read(dev, i)
    if write is not None:
        hooks["write"] = lambda dev, value: write(dev, i, value)
    if write_masked is not None:
        hooks["write_masked"] = lambda dev, value, mask: write_masked(
            dev, i, value, mask
        )
    if pre_write is not None:
        hooks["pre_write"] = lambda dev, value: pre_write(dev, i, value)
    if post_write is not None:
        hooks["post_write"] = lambda dev: post_write(dev, i)
    if post_read is not None:
        hooks["post_read"] = lambda dev, value: post_read(dev, i, value)
    return hooks


# -- binding a field reference to the state ---------------------------------------


@final
class _FieldAccess:
    """How one register reads and stores its field, compiled for its device class."""

    __slots__ = ("from_int", "get", "key", "mask", "parent", "set", "to_int")

    def __init__(
        self,
        get: Callable[[Any], Any],
        set_: Callable[[Any, Any], None],
        to_int: Callable[[Any], int] | None,
        from_int: Callable[[int], Any] | None,
        mask: int,
        key: tuple[object, ...],
        parent: Callable[[Any], Any] | None,
    ) -> None:
        self.get = get
        self.set = set_
        self.to_int = to_int
        self.from_int = from_int
        # The bits the field can hold (the register's, narrowed by its type).
        self.mask = mask
        # Identifies the field among the registers (aliases share it).
        self.key = key
        # For a struct field: a getter of the struct; then ``key[-1]`` is
        # the field's name and stores are one setattr (the fast path).
        self.parent = parent


def _walk(steps: tuple[Step, ...]) -> Callable[[Any], Any]:
    if not steps:
        return lambda obj: obj
    if all(isinstance(s, str) for s in steps):
        return operator.attrgetter(".".join(str(s) for s in steps))

    def walk(obj: Any) -> Any:
        for step in steps:
            obj = getattr(obj, step) if isinstance(step, str) else obj[step]
        return obj

    return walk


def _store(steps: tuple[Step, ...]) -> Callable[[Any, Any], None]:
    """Store into the last step of ``steps`` from the object they start at."""
    parent = _walk(steps[:-1])
    last = steps[-1]
    if isinstance(last, str):
        name = last

        def store_attr(obj: Any, value: Any) -> None:
            setattr(parent(obj), name, value)

        return store_attr

    def store_item(obj: Any, value: Any) -> None:
        parent(obj)[last] = value

    return store_item


def _strip_annotated(ann: object) -> object:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return ann


def _is_struct(ann: object) -> bool:
    return isinstance(ann, type) and issubclass(ann, BqlStruct)


def _cell_kind(ann: object) -> type | None:
    origin = typing.get_origin(ann) or ann
    if origin is BqlCell or origin is BqlRefCell:
        assert isinstance(origin, type)
        return origin
    return None


def _element_type(ann: object) -> object | None:
    origin = typing.get_origin(ann)
    if ann in (bytes, bytearray):
        return int
    if origin in (list, tuple, Sequence, typing.Sequence):
        args = typing.get_args(ann)
        return args[0] if args else None
    return None


# -- the map -----------------------------------------------------------------------


@final
class _Slot:
    """One entry of the decode table: the register at these offsets, compiled."""

    __slots__ = ("base", "name", "read", "reg", "size", "write")

    def __init__(
        self,
        reg: Register[Any] | None,
        name: str,
        base: int,
        size: int,
        read: Callable[[Any, int, int], int],
        write: Callable[[Any, int, int, int], None],
    ) -> None:
        self.reg = reg
        self.name = name
        self.base = base
        self.size = size
        # Whole-register accesses: read(dev, offset, size) and write(dev, offset,
        # value), offset being the access's (for log lines).
        self.read = read
        self.write = write


_Span = tuple[tuple["_Slot", int, int, int], ...]
"""Pieces of an access: (register slot, its offset, bit shift, value mask)."""


@final
class _Compiled:
    """A register with its field access and its partial-access methods."""

    __slots__ = ("access", "fa", "full", "map", "reg")

    def __init__(
        self, regmap: RegisterMap[Any], reg: Register[Any], fa: _FieldAccess | None
    ) -> None:
        self.map = regmap
        self.reg = reg
        self.fa = fa
        # The flags as a plain int: Flag operations cost microseconds.
        self.access: int = reg.access.value
        self.full = _mask(reg.width)

    def _value(self, dev: Any) -> int:
        """The stored value, without read side effects (0 without a field)."""
        fa = self.fa
        if fa is None:
            return 0
        value = fa.get(dev)
        return int(value) if fa.to_int is None else fa.to_int(value)

    def _store(self, dev: Any, value: int) -> None:
        fa = self.fa
        assert fa is not None
        value &= fa.mask
        fa.set(dev, value if fa.from_int is None else fa.from_int(value))

    def read_bits(self, dev: Any, offset: int, re: int) -> int:
        """Read the bits ``re`` (register.c's ``register_read``)."""
        reg = self.reg
        access = self.access
        if access & _RAZ_BIT:
            return 0
        if not access & _R_BIT:
            self.map._log(LOG_GUEST_ERROR, self.map.log.wo_read, reg, offset)
            return 0
        hook = reg._read
        value = self._value(dev) if hook is None else hook(dev)
        if access & _RC_BIT:
            self._store(dev, value & ~re)
        post = reg._post_read
        if post is not None:
            value = post(dev, value)
        return value & re

    def write_bits(self, dev: Any, offset: int, value: int, we: int) -> None:
        """Write the bits ``we`` of ``value`` (register.c's ``register_write``)."""
        reg = self.reg
        access = self.access
        regmap = self.map
        if access & _WI_BIT:
            return
        if not access & (_W_BIT | _W1C_BIT | _W1S_BIT):
            regmap._log(LOG_GUEST_ERROR, regmap.log.ro_write, reg, offset, value)
            return
        old = self._value(dev)
        if reg.rsvd:
            changed = (old ^ value) & reg.rsvd & we
            if changed:
                regmap._log(
                    LOG_GUEST_ERROR, regmap.log.rsvd, reg, offset, value, changed
                )
        if reg.unimp and value & reg.unimp & we:
            regmap._log(LOG_UNIMP, regmap.log.unimp, reg, offset, value)
        m = we & reg.write_mask & ~reg.rsvd
        masked = reg._write_masked
        if masked is not None:
            masked(dev, value & m, m)
            post = reg._post_write
            if post is not None:
                post(dev)
            return
        if access & _W_BIT:
            new = (value & m) | (old & ~m)
        elif access & _W1C_BIT:
            new = old & ~(value & m)
        else:
            new = old | (value & m)
        pre = reg._pre_write
        if pre is not None:
            new = pre(dev, new) & self.full
        hook = reg._write
        if hook is None:
            self._store(dev, new)
        else:
            hook(dev, new)
        post = reg._post_write
        if post is not None:
            post(dev)

    def fast_read(self) -> Callable[[Any, int, int], int]:
        """``read(dev, offset, size)`` of the whole register, specialised."""
        reg = self.reg
        fa = self.fa
        access = self.access
        if access & _RAZ_BIT:
            return _read_zero
        if not access & _R_BIT:
            return self.map._logger_read(self.map.log.wo_read, reg)
        plain = not access & _RC_BIT and reg._post_read is None
        hook = reg._read
        if plain and hook is None and fa is not None and fa.parent is not None:
            return _struct_read(fa.parent, fa.key[:-1], _attr_of(fa), fa.to_int)
        if plain and hook is None and fa is not None:
            get = fa.get
            to_int = fa.to_int
            if to_int is None:

                def read_int(dev: Any, offset: int, size: int) -> int:
                    value: int = get(dev)
                    return value

                return read_int

            def read_conv(dev: Any, offset: int, size: int) -> int:
                return to_int(get(dev))

            return read_conv
        whole = reg._whole_hooks
        if plain and whole is not None and whole[0] is not None:
            # An array element: the array's read with the index, one call.
            array_read = whole[0]
            index = reg.index
            assert index is not None

            def read_element(dev: Any, offset: int, size: int) -> int:
                return array_read(dev, index)

            return read_element
        if plain and hook is not None:
            read_hook = hook

            def read_with_hook(dev: Any, offset: int, size: int) -> int:
                return read_hook(dev)

            return read_with_hook
        full = self.full
        read_bits = self.read_bits

        def read_general(dev: Any, offset: int, size: int) -> int:
            return read_bits(dev, offset, full)

        return read_general

    def fast_write(self) -> Callable[[Any, int, int, int], None]:
        """``write(dev, offset, value, size)`` of the whole register, specialised."""
        reg = self.reg
        fa = self.fa
        access = self.access
        full = self.full
        post = reg._post_write
        if access & _WI_BIT:
            return _write_ignored
        if not access & (_W_BIT | _W1C_BIT | _W1S_BIT):
            return self.map._logger_write(self.map.log.ro_write, reg)
        plain = (
            not reg.rsvd
            and not reg.unimp
            and reg._pre_write is None
            and reg._write_masked is None
        )
        hook = reg._write
        if plain and hook is None and fa is not None and fa.parent is not None:
            wmask = reg.write_mask & fa.mask
            if access & _W_BIT and wmask == full:
                return _struct_write(fa.parent, _attr_of(fa), fa.from_int, full, post)
            if access & _W_BIT:
                kind = _Merge.KEEP
            elif access & _W1S_BIT:
                kind = _Merge.SET
            else:
                kind = _Merge.CLEAR
            return _struct_merge(fa, kind, wmask, post)
        if plain and hook is not None and access & _W_BIT:
            # Without a field the other bits are 0, so the mask applies as is;
            # with one they keep the field's value, which the general path does.
            mask = reg.write_mask
            whole = reg._whole_hooks
            if (
                fa is None
                and mask == full
                and post is None
                and whole is not None
                and whole[1] is not None
            ):
                # An array element: the array's write with the index.
                array_write = whole[1]
                index = reg.index
                assert index is not None

                def write_element(dev: Any, offset: int, value: int, size: int) -> None:
                    array_write(
                        dev, index, value if 0 <= value <= full else value & full
                    )

                return write_element
            if fa is None or mask == full:
                write_hook = hook
                low_bits = mask & (mask + 1) == 0  # 0xFF, 0xFFFFFFFF, ...

                def write_with_hook(
                    dev: Any, offset: int, value: int, size: int
                ) -> None:
                    write_hook(
                        dev, value if low_bits and 0 <= value <= mask else value & mask
                    )
                    if post is not None:
                        post(dev)

                return write_with_hook
        write_bits = self.write_bits

        def write_general(dev: Any, offset: int, value: int, size: int) -> None:
            write_bits(dev, offset, value if 0 <= value <= full else value & full, full)

        return write_general


_ArrayHooks = tuple[
    Callable[[Any, int], int] | None,
    Callable[[Any, int, int], None] | None,
    Callable[[Any, int], bool] | None,
]
"""An array element's ``read``, ``write`` and ``present`` as the array got them
(taking the index), so that its accesses call them without a wrapper."""


def _read_zero(dev: object, offset: int, size: int) -> int:
    return 0


def _is_present(slot: _Slot, dev: object) -> bool:
    reg = slot.reg
    return reg is None or reg._present is None or reg._present(dev)


def _present_guard(
    present: Callable[[Any], bool],
    read: Callable[[Any, int, int], int],
    write: Callable[[Any, int, int, int], None],
    absent_read: Callable[[Any, int, int], int],
    absent_write: Callable[[Any, int, int, int], None],
) -> tuple[Callable[[Any, int, int], int], Callable[[Any, int, int, int], None]]:
    """The accesses of a register that a device instance may not have."""

    def read_present(dev: Any, offset: int, size: int) -> int:
        if present(dev):
            return read(dev, offset, size)
        return absent_read(dev, offset, size)

    def write_present(dev: Any, offset: int, value: int, size: int) -> None:
        if present(dev):
            write(dev, offset, value, size)
        else:
            absent_write(dev, offset, value, size)

    return read_present, write_present


def _element_present_guard(
    present: Callable[[Any, int], bool],
    index: int,
    read: Callable[[Any, int, int], int],
    write: Callable[[Any, int, int, int], None],
    absent_read: Callable[[Any, int, int], int],
    absent_write: Callable[[Any, int, int, int], None],
) -> tuple[Callable[[Any, int, int], int], Callable[[Any, int, int, int], None]]:
    """:func:`_present_guard` for an array element, asking the array."""

    def read_present(dev: Any, offset: int, size: int) -> int:
        if present(dev, index):
            return read(dev, offset, size)
        return absent_read(dev, offset, size)

    def write_present(dev: Any, offset: int, value: int, size: int) -> None:
        if present(dev, index):
            write(dev, offset, value, size)
        else:
            absent_write(dev, offset, value, size)

    return read_present, write_present


def _write_ignored(dev: object, offset: int, value: int, size: int) -> None:
    return None


# The fast paths below read and write a BqlStruct field through the struct's
# raw view after doing the checks of its checked attribute inline (the BQL
# flag, the borrow count): one Python call per access instead of two.  When a
# check fails they go through the checked attribute, which raises the error.
# They mask a value only when it does not fit already: "v & 0xFFFFFFFF"
# makes a temporary int object (the mask is not a one-digit int), and the
# MMIO path allocates nothing.


def _attr_of(fa: _FieldAccess) -> str:
    attr = fa.key[-1]
    assert isinstance(attr, str)
    return attr


_BITFIELD_VALUE: Final = operator.attrgetter("_value")
"""A Bitfield's value as an int (the ``to_int`` of Bitfield fields)."""


def _struct_read(
    struct_of: Callable[[Any], Any],
    prefix: tuple[object, ...],
    attr: str,
    to_int: Callable[[Any], int] | None,
) -> Callable[[Any, int, int], int]:
    """Read a BqlStruct field (a short shared borrow)."""
    held = _held
    raw_get = operator.attrgetter(attr)
    if to_int is None:

        def read_int(dev: Any, offset: int, size: int) -> int:
            st = struct_of(dev)
            value: int = (
                raw_get(st._value)
                if held.held and st._borrows >= 0
                else getattr(st, attr)
            )
            return value

        return _inline_struct_read(prefix, attr, to_int, read_int)
    conv = to_int

    def read_conv(dev: Any, offset: int, size: int) -> int:
        st = struct_of(dev)
        if held.held and st._borrows >= 0:
            return conv(raw_get(st._value))
        return conv(getattr(st, attr))

    return _inline_struct_read(prefix, attr, to_int, read_conv)


def _is_name(step: object) -> bool:
    return isinstance(step, str) and step.isidentifier() and not keyword.iskeyword(step)


def _inline_struct_read(
    prefix: tuple[object, ...],
    attr: str,
    to_int: Callable[[Any], int] | None,
    checked: Callable[[Any, int, int], int],
) -> Callable[[Any, int, int], int]:
    """``checked`` with the attribute accesses written out in its code.

    CPython 3.11 calls an ``operator.attrgetter`` without its fast calling
    convention: each one costs as much as a Python call, and a register read
    took three (the struct, the field, a Bitfield's value).  Written out as
    ``dev.regs`` and ``st._value.flags._value`` they are plain attribute loads.
    The code is made from the field reference's names, which are checked to
    be identifiers; anything else keeps ``checked``, which the generated read
    also calls when a check fails (to raise the checked attribute's error).
    """
    if not all(_is_name(step) for step in (*prefix, attr)):
        return checked
    value = f"st._value.{attr}"
    if to_int is int:
        value = f"int({value})"
    elif to_int is _BITFIELD_VALUE:
        value += "._value"
    elif to_int is not None:
        return checked
    path = "".join(f".{step}" for step in prefix)
    source = (
        "def read(dev, offset, size):\n"
        f"    st = dev{path}\n"
        "    if held.held and st._borrows >= 0:\n"
        f"        return {value}\n"
        "    return checked(dev, offset, size)\n"
    )
    namespace: dict[str, Any] = {"held": _held, "checked": checked}
    exec(compile(source, f"<register read {attr}>", "exec"), namespace)
    read: Callable[[Any, int, int], int] = namespace["read"]
    return read


def _struct_write(
    struct_of: Callable[[Any], Any],
    attr: str,
    from_int: Callable[[int], Any] | None,
    full: int,
    post: Callable[[Any], None] | None,
) -> Callable[[Any, int, int, int], None]:
    """Store a whole value into a BqlStruct field (a short mutable borrow)."""
    held = _held
    if from_int is None and post is None:

        def write_int(dev: Any, offset: int, value: int, size: int) -> None:
            st = struct_of(dev)
            setattr(
                st._value if held.held and not st._borrows else st,
                attr,
                value if 0 <= value <= full else value & full,
            )

        return write_int
    if from_int is None:
        assert post is not None
        post_write = post

        def write_int_post(dev: Any, offset: int, value: int, size: int) -> None:
            st = struct_of(dev)
            setattr(
                st._value if held.held and not st._borrows else st,
                attr,
                value if 0 <= value <= full else value & full,
            )
            post_write(dev)

        return write_int_post
    conv = from_int

    def write_conv(dev: Any, offset: int, value: int, size: int) -> None:
        st = struct_of(dev)
        setattr(
            st._value if held.held and not st._borrows else st,
            attr,
            conv(value if 0 <= value <= full else value & full),
        )
        if post is not None:
            post(dev)

    return write_conv


@final
class _Merge(enum.Enum):
    """How a write combines with the stored value."""

    KEEP = "keep"  # W with a write mask: the other bits keep their value
    SET = "set"  # W1S
    CLEAR = "clear"  # W1C


def _struct_merge(
    fa: _FieldAccess,
    kind: _Merge,
    wmask: int,
    post: Callable[[Any], None] | None,
) -> Callable[[Any, int, int, int], None]:
    """A read-modify-write of a BqlStruct field (one mutable borrow)."""
    assert fa.parent is not None
    struct_of = fa.parent
    attr = _attr_of(fa)
    to_int = fa.to_int
    from_int = fa.from_int
    keep = fa.mask & ~wmask
    held = _held
    # With every bit writable, an in-range value needs no masking.
    whole = wmask == fa.mask

    if kind is _Merge.CLEAR:

        def write_clear(dev: Any, offset: int, value: int, size: int) -> None:
            st = struct_of(dev)
            target = st._value if held.held and not st._borrows else st
            old = getattr(target, attr)
            old = old if to_int is None else to_int(old)
            bits = value if whole and 0 <= value <= wmask else value & wmask
            new = old & ~bits
            setattr(target, attr, new if from_int is None else from_int(new))
            if post is not None:
                post(dev)

        return write_clear
    if kind is _Merge.SET:

        def write_set(dev: Any, offset: int, value: int, size: int) -> None:
            st = struct_of(dev)
            target = st._value if held.held and not st._borrows else st
            old = getattr(target, attr)
            old = old if to_int is None else to_int(old)
            bits = value if whole and 0 <= value <= wmask else value & wmask
            new = old | bits
            setattr(target, attr, new if from_int is None else from_int(new))
            if post is not None:
                post(dev)

        return write_set

    def write_keep(dev: Any, offset: int, value: int, size: int) -> None:
        st = struct_of(dev)
        target = st._value if held.held and not st._borrows else st
        old = getattr(target, attr)
        old = old if to_int is None else to_int(old)
        new = (value & wmask) | (old & keep)
        setattr(target, attr, new if from_int is None else from_int(new))
        if post is not None:
            post(dev)

    return write_keep


@final
class _TraceGate:
    """Stands for a trace event where the tracer is not a generated tracepoint."""

    __slots__ = ("state",)

    def __init__(self, state: bool) -> None:
        self.state = state


def _trace_gate(
    tracer: Callable[[int, int, str], None] | None,
) -> TraceEvent | _TraceGate:
    """What the dispatch tests before calling ``tracer``: its event's state.

    A generated tracepoint costs nothing while its event is off; any other
    tracer is called every time, none never.
    """
    if tracer is None:
        return _TraceGate(False)
    ev = trace_event_of(tracer)
    return _TraceGate(True) if ev is None else ev


def _no_trace(offset: int, value: int, regname: str) -> None:
    return None


@final
class RegisterMap(Generic[D_contra]):
    r"""A device's register block: decode, logs, trace names and reset.

    Declare it as a class attribute of the device, after the methods its
    registers use (``registers = RegisterMap["PL011State"](...)``): the class
    binds it, which resolves every field reference against the class's
    annotations and builds the decode table once.  A map held elsewhere is
    bound on first use, or by :meth:`bind`.  The MMIO callbacks are
    :attr:`read` and :attr:`write`::

        PL011_OPS = MemoryRegionOps[PL011State](
            read=PL011State.registers.read,
            write=PL011State.registers.write,
            impl=OpsImpl(min_access_size=4, max_access_size=4),
        )

    Args:
        name: the register block's name (the region's, usually); the default
            ``{prefix}`` of the log lines.
        size: the size of the block in bytes.
        registers: the registers and register arrays, in any order; they may
            not overlap.
        decode: how accesses map onto registers (:class:`Decode`).
        log: the log lines of bad accesses (:class:`RegisterLog`).
        prefix: the ``{prefix}`` of the log lines, when not ``name`` (QEMU's
            register.c prints the device's type name).
        trace_read: called as ``trace_read(offset, value, regname)`` after
            every read, bad ones included: the device's read trace event.
        trace_write: called as ``trace_write(offset, value, regname)`` before
            every write.
        unknown_name: the name :meth:`regname` gives where no register is.
        log_each_byte: a bad access logs one line per byte where no register
            is, as QEMU's devices that decode byte by byte do (the GIC
            distributor's ``gic_dist_readb``), instead of one line for each
            run of unassigned bytes (``hw/core/register.c``).
        bind_on_first_use: the class that assigns the map binds it on its
            first access or reset instead of when the class is created: a
            large map (a GIC's thousands of byte registers) then costs
            nothing to a start that never touches it.  The device must look
            up :attr:`read` and :attr:`write` at access time
            (``self.registers.read(self, offset, size)``): a callback taken
            before the bind keeps an extra call.  The array elements are
            then made on first use too, and what the declaration gets wrong
            across registers (overlaps, shared names, a field reference that
            does not fit the class) is reported then: on the first access,
            reset or lookup.

    Raises:
        Error: registers overlap, fall outside the block or share a name;
            when bound, a field reference does not fit the device class.
    """

    __slots__ = (
        "_by_name",
        "_compiled",
        "_each_byte",
        "_entries",
        "_hole",
        "_lazy",
        "_namespaces",
        "_owner",
        "_pending",
        "_read_gate",
        "_registers",
        "_resets",
        "_shift",
        "_slots",
        "_spans",
        "_write_gate",
        "decode",
        "log",
        "name",
        "prefix",
        "read",
        "size",
        "trace_read",
        "trace_write",
        "unknown_name",
        "write",
    )

    def __init__(
        self,
        name: str,
        size: int,
        registers: Sequence[Register[D_contra] | RegisterArray[D_contra]],
        *,
        decode: Decode = Decode.BYTES,
        log: RegisterLog | None = None,
        prefix: str | None = None,
        trace_read: Callable[[int, int, str], None] | None = None,
        trace_write: Callable[[int, int, str], None] | None = None,
        unknown_name: str = "UNKN",
        log_each_byte: bool = False,
        bind_on_first_use: bool = False,
    ) -> None:
        self.name = name
        self.size = size
        self._each_byte = log_each_byte
        self._hole: _Slot | None = None
        self.decode = decode
        self.log = RegisterLog() if log is None else log
        self.prefix = name if prefix is None else prefix
        self.trace_read = trace_read
        self.trace_write = trace_write
        self._read_gate = _trace_gate(trace_read)
        self._write_gate = _trace_gate(trace_write)
        self.unknown_name = unknown_name
        self._namespaces = caller_namespaces(1)
        self._owner: type | None = None
        # With bind_on_first_use: the class to bind to on first use.
        self._pending: type | None = None
        self._lazy = bind_on_first_use
        self._slots: tuple[_Slot, ...] = ()
        self._shift = 0
        self._resets: tuple[tuple[_FieldAccess, int], ...] = ()
        self._compiled: dict[int, _Compiled] = {}
        self._spans: dict[int, _Span | None] = {}
        if size <= 0:
            raise Error(f"RegisterMap '{name}': size={size}; expected 1 or more")
        self._entries = registers
        self._registers: tuple[Register[D_contra], ...] | None = None
        self._by_name: dict[str, Register[D_contra]] = {}
        if not bind_on_first_use:
            self._expand()
        self.read: Callable[[D_contra, int, int], int] = self._read_unbound
        """The MMIO read callback: ``read(dev, offset, size) -> value``."""
        self.write: Callable[[D_contra, int, int, int], None] = self._write_unbound
        """The MMIO write callback: ``write(dev, offset, value, size)``."""

    def _expand(self) -> tuple[Register[D_contra], ...]:
        """The registers by offset, array elements one by one; checks overlaps."""
        if self._registers is not None:
            return self._registers
        name = self.name
        size = self.size
        elements: list[Register[D_contra]] = []
        for entry in self._entries:
            if isinstance(entry, RegisterArray):
                elements.extend(entry.elements)
            elif isinstance(entry, Register):
                elements.append(entry)
            else:
                raise Error(
                    f"RegisterMap '{name}': {entry!r} is not a Register or a "
                    "RegisterArray"
                )
        elements.sort(key=lambda r: r.offset)
        by_name: dict[str, Register[D_contra]] = {}
        end = 0
        previous: Register[D_contra] | None = None
        for reg in elements:
            if reg.name in by_name:
                raise Error(
                    f"RegisterMap '{name}': two registers are called {reg.name}; "
                    "give each a distinct name"
                )
            by_name[reg.name] = reg
            if previous is not None and reg.offset < end:
                raise Error(
                    f"RegisterMap '{name}': {reg.name} at 0x{reg.offset:x} overlaps "
                    f"{previous.name} (0x{previous.offset:x}..0x{end - 1:x})"
                )
            if reg.offset + reg.size > size:
                raise Error(
                    f"RegisterMap '{name}': {reg.name} at 0x{reg.offset:x} ends past "
                    f"the {size:#x}-byte block"
                )
            previous = reg
            end = reg.offset + reg.size
        self._by_name = by_name
        self._registers = tuple(elements)
        return self._registers

    @property
    def registers(self) -> tuple[Register[D_contra], ...]:
        """The registers by offset, array elements one by one."""
        return self._expand()

    # -- lookup ----------------------------------------------------------------

    def __getitem__(self, name: str) -> Register[D_contra]:
        """The register called ``name`` (``map["CR"]``, ``map["ID3"]``).

        Raises:
            KeyError: no register has that name; the message suggests one.
        """
        self._expand()
        reg = self._by_name.get(name)
        if reg is None:
            import difflib  # only for an error's suggestion

            close = difflib.get_close_matches(name, list(self._by_name), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise KeyError(f"RegisterMap '{self.name}' has no register '{name}'{hint}")
        return reg

    def __iter__(self) -> Iterator[Register[D_contra]]:
        """The registers (array elements one by one) by offset."""
        return iter(self.registers)

    def __len__(self) -> int:
        return len(self.registers)

    def decode_offset(self, offset: int) -> Register[D_contra] | None:
        """The register that contains byte ``offset``, or None.

        With :attr:`Decode.EXACT`, the register that starts at ``offset``.

        >>> m = RegisterMap[object]("m", 0x10, [Register("A", 4, RAZ | WI)])
        >>> m.decode_offset(6), m.decode_offset(8)
        (Register('A', 0x004, <Access.WI|RAZ: 96>), None)
        """
        exact = self.decode is Decode.EXACT
        for reg in self.registers:
            if reg.offset == offset or (
                not exact and reg.offset <= offset < reg.offset + reg.size
            ):
                return reg
        return None

    def regname(self, offset: int) -> str:
        """The name trace events print for ``offset`` (QEMU's ``pl011_regname``).

        The register's ``trace_name``, or ``unknown_name`` where there is none.
        """
        reg = self.decode_offset(offset)
        return self.unknown_name if reg is None else reg.trace_name

    # -- binding ---------------------------------------------------------------

    def __set_name__(self, owner: type, attr: str) -> None:
        """Bind the map to the class whose body assigns it."""
        self._namespaces = caller_namespaces(1) + self._namespaces
        if self._lazy and self._owner is None:
            self._pending = owner
            return
        self.bind(owner)

    def bind(self, owner: type) -> None:
        """Resolve the field references against ``owner`` and build the decode table.

        A map binds once, to one class and its subclasses.

        Raises:
            Error: a reference does not fit ``owner``'s annotations, or the
                map is already bound to an unrelated class.
        """
        if self._owner is not None:
            if issubclass(owner, self._owner):
                return
            raise Error(
                f"RegisterMap '{self.name}' is bound to {self._owner.__name__}, not "
                f"to {owner.__name__}; declare one map per device class"
            )
        compiled = [
            _Compiled(self, reg, self._field_access(reg, owner)) for reg in self
        ]
        self._check_resets(compiled)
        # One table entry per byte while the block is small: the offset is
        # then the index, and no int is computed per access (a shifted index
        # above 256 is a new int object).  Larger blocks index by granule.
        granule = min((reg.size for reg in self.registers), default=self.size)
        if self.size <= _BYTE_TABLE_MAX:
            granule = 1
        shift = granule.bit_length() - 1
        hole = _Slot(
            None,
            self.unknown_name,
            0,
            0,
            self._logger_read(self.log.bad_read, None),
            self._logger_write(self.log.bad_write, None),
        )
        table: list[_Slot] = [hole] * ((self.size + granule - 1) >> shift)
        for c in compiled:
            reg = c.reg
            read, write = c.fast_read(), c.fast_write()
            whole = reg._whole_hooks
            if whole is not None and whole[2] is not None:
                assert reg.index is not None
                read, write = _element_present_guard(
                    whole[2], reg.index, read, write, hole.read, hole.write
                )
            elif reg._present is not None:
                read, write = _present_guard(
                    reg._present, read, write, hole.read, hole.write
                )
            slot = _Slot(reg, reg.trace_name, reg.offset, reg.size, read, write)
            lo, hi = reg.offset >> shift, (reg.offset + reg.size) >> shift
            table[lo:hi] = (slot,) * (hi - lo)
        self._slots = tuple(table)
        self._hole = hole
        self._shift = shift
        self._compiled = {id(c.reg): c for c in compiled}
        self.read, self.write = self._dispatchers(hole)
        self._owner = owner
        self._pending = None

    def _field_access(self, reg: Register[Any], owner: type) -> _FieldAccess | None:
        steps = reg._steps
        if steps is None:
            return None

        def error(msg: str) -> Error:
            return reg._error(f"field {describe_path(steps)}: {msg}")

        # Walk the annotations: the type after each step, and where the
        # BQL holders (BqlStruct, BqlCell, BqlRefCell) are.
        current: object = owner
        holder_at = 0 if _is_struct(owner) else -1
        holder: object = owner if holder_at == 0 else None
        cells_before = 0
        for i, step in enumerate(steps):
            if isinstance(step, str):
                if not isinstance(current, type):
                    raise error(
                        f"'{step}' is read from a {type_name(current)}, which is "
                        "not a class with annotations"
                    )
                ann, _ = resolve_annotation(current, step, self._namespaces, error)
                ann = _strip_annotated(ann)
                cell = _cell_kind(ann)
                if cell is not None:
                    cells_before += holder_at >= 0 and _cell_kind(holder) is not None
                    holder_at, holder = i + 1, cell
                    args = typing.get_args(ann)
                    ann = _strip_annotated(args[0]) if args else object
                elif _is_struct(ann):
                    cells_before += holder_at >= 0 and _cell_kind(holder) is not None
                    holder_at, holder = i + 1, ann
                current = ann
            else:
                elem = _element_type(current)
                if elem is None:
                    raise error(
                        f"[{step if isinstance(step, int) else 'n'}] indexes a "
                        f"{type_name(current)}; index a list, tuple or bytearray"
                    )
                current = _strip_annotated(elem)
        if holder_at < 0:
            raise error(
                "the field is not BQL-protected state; keep device state in a "
                "BqlStruct (or a BqlCell/BqlRefCell) and reach it through that"
            )
        if cells_before:
            raise error(
                "the path goes through a BqlCell or BqlRefCell to another BQL "
                "holder; keep nested state in BqlStruct fields"
            )
        if holder_at == len(steps) and _is_struct(holder):
            raise error(
                f"the reference names the struct {type_name(holder)} itself; name "
                "one of its fields"
            )
        to_int, from_int, mask = self._codec(reg, current, error)
        prefix, suffix = steps[:holder_at], steps[holder_at:]
        parent: Callable[[Any], Any] | None = None
        if _is_struct(holder):
            assert isinstance(holder, type)
            assert issubclass(holder, BqlStruct)
            first = suffix[0]
            if first not in holder.struct_fields:
                raise error(
                    f"'{first}' is not a field of the BqlStruct {holder.__name__} "
                    f"(its fields: {', '.join(holder.struct_fields)})"
                )
            if len(suffix) == 1:
                # Through the struct's checked field: the BQL and borrow checks.
                get = _walk(steps)
                set_ = _store(steps)
                parent = _walk(prefix)
            else:
                get = _walk(steps)
                set_ = _borrowed_store(_walk(prefix), suffix)
        elif holder is BqlCell:
            if suffix:
                raise error(
                    "a BqlCell holds a value replaced whole; keep a struct in a "
                    "BqlStruct or BqlRefCell to reach into it"
                )
            get, set_ = _cell_access(_walk(prefix))
        else:
            get, set_ = _refcell_access(_walk(prefix), suffix)
        return _FieldAccess(get, set_, to_int, from_int, mask, tuple(steps), parent)

    def _codec(
        self, reg: Register[Any], ann: object, error: Callable[[str], Error]
    ) -> tuple[Callable[[Any], int] | None, Callable[[int], Any] | None, int]:
        full = _mask(reg.width)
        if ann is int:
            return None, None, full
        if ann is bool:
            kind_mask = 1
            to_int: Callable[[Any], int] | None = int
            from_int: Callable[[int], Any] | None = bool
        elif isinstance(ann, type) and issubclass(ann, FixedUInt):
            kind_mask = ann.MASK
            to_int, from_int = int, ann
        elif isinstance(ann, type) and issubclass(ann, Bitfield):
            kind_mask = ann.MASK
            to_int, from_int = _BITFIELD_VALUE, ann
            if reg.width < ann.WIDTH:
                raise error(
                    f"the field is a {ann.WIDTH}-bit {ann.__name__}, wider than the "
                    f"{reg.width}-bit register"
                )
        else:
            raise error(
                f"the field is annotated {type_name(ann)}; a register's field is "
                "an int, a fixed-width integer (u8 ... u64), a bool or a Bitfield"
            )
        stored = reg.write_mask | (reg.reset or 0)
        if stored & ~kind_mask & full:
            raise error(
                f"the field ({type_name(ann)}) holds the bits 0x{kind_mask:x}, but "
                f"the write mask and reset value reach 0x{stored:x}; narrow "
                "write_mask= to the field"
            )
        return to_int, from_int, kind_mask & full

    def _check_resets(self, compiled: list[_Compiled]) -> None:
        seen: dict[tuple[object, ...], tuple[Register[Any], int]] = {}
        resets: list[tuple[_FieldAccess, int]] = []
        for c in compiled:
            reg = c.reg
            if c.fa is None or reg.reset is None:
                continue
            other = seen.get(c.fa.key)
            if other is not None:
                if other[1] != reg.reset:
                    raise reg._error(
                        f"reset=0x{reg.reset:x}, but {other[0].name} resets the same "
                        f"field to 0x{other[1]:x}; make them agree"
                    )
                continue
            seen[c.fa.key] = (reg, reg.reset)
            resets.append((c.fa, reg.reset))
        self._resets = tuple(resets)

    # -- the MMIO callbacks ----------------------------------------------------

    def _bind_on_first_use(self, dev: object) -> None:
        self.bind(type(dev) if self._pending is None else self._pending)

    def _read_unbound(self, dev: D_contra, offset: int, size: int) -> int:
        self._bind_on_first_use(dev)
        return self.read(dev, offset, size)

    def _write_unbound(self, dev: D_contra, offset: int, value: int, size: int) -> None:
        self._bind_on_first_use(dev)
        self.write(dev, offset, value, size)

    def resolve_read(
        self, dev: D_contra, offset: int, size: int
    ) -> Callable[[int, int], int] | None:
        """The read of one offset and size, bound to ``dev``, or None.

        For :attr:`MemoryRegionOps.resolve_read
        <qemu_api.memory.MemoryRegionOps.resolve_read>`: where an access is a
        whole register (as :class:`Decode` says) and the read trace event is
        off, this is the register's own read, ``fn(offset, size)``, which does
        what :attr:`read` does there without the decode (one call fewer per
        access).  None for accesses that :attr:`read` must decode, log or
        trace.  Binds the map to ``type(dev)`` if needed.

        >>> class Regs(BqlStruct):
        ...     ctrl: int
        ...
        ...     def __init__(self) -> None:
        ...         self.ctrl = 5
        >>> class Dev:
        ...     regs: Regs
        ...
        ...     def __init__(self) -> None:
        ...         self.regs = Regs()
        ...
        ...     registers = RegisterMap["Dev"](
        ...         "dev", 0x10, [Register("CTRL", 4, RW, field=lambda s: s.regs.ctrl)]
        ...     )
        >>> read = Dev.registers.resolve_read(Dev(), 4, 4)
        >>> read(4, 4) if read is not None else None
        5
        >>> Dev.registers.resolve_read(Dev(), 8, 4) is None  # no register: logged
        True
        """
        if self._owner is None:
            self._bind_on_first_use(dev)
        if self._read_gate.state:
            return None
        slot = self._direct_slot(offset, size)
        return None if slot is None else types.MethodType(slot.read, dev)

    def resolve_write(
        self, dev: D_contra, offset: int, size: int
    ) -> Callable[[int, int, int], None] | None:
        """The write of one offset and size, bound to ``dev``, or None.

        :meth:`resolve_read` for writes: ``fn(offset, value, size)``, while
        the write trace event is off.
        """
        if self._owner is None:
            self._bind_on_first_use(dev)
        if self._write_gate.state:
            return None
        slot = self._direct_slot(offset, size)
        return None if slot is None else types.MethodType(slot.write, dev)

    def _direct_slot(self, offset: int, size: int) -> _Slot | None:
        """The register an access reaches whole, as the dispatchers decode it."""
        i = offset >> self._shift
        if not 0 <= i < len(self._slots):
            return None
        slot = self._slots[i]
        if slot.reg is None:
            return None
        if self.decode is Decode.WHOLE:
            return slot
        if offset != slot.base:
            return None
        if self.decode is Decode.EXACT or size == slot.size:
            return slot
        return None

    def _dispatchers(
        self, hole: _Slot
    ) -> tuple[Callable[[Any, int, int], int], Callable[[Any, int, int, int], None]]:
        slots = self._slots
        shift = self._shift
        n = len(slots)
        # The trace events are tested here, so that a disabled one costs no call.
        trace_read = self.trace_read or _no_trace
        trace_write = self.trace_write or _no_trace
        read_gate = self._read_gate
        write_gate = self._write_gate
        read_span = self._read_span
        write_span = self._write_span
        span_of = self._span_of
        bytewise = shift == 0  # "offset >> 0" would still make a new int

        if self.decode is Decode.EXACT:

            def read_exact(dev: Any, offset: int, size: int) -> int:
                i = offset if bytewise else offset >> shift
                slot = slots[i] if 0 <= i < n else hole
                if offset != slot.base:
                    slot = hole
                value = slot.read(dev, offset, size)
                if read_gate.state:
                    trace_read(offset, value, slot.name)
                return value

            def write_exact(dev: Any, offset: int, value: int, size: int) -> None:
                i = offset if bytewise else offset >> shift
                slot = slots[i] if 0 <= i < n else hole
                if offset != slot.base:
                    slot = hole
                if write_gate.state:
                    trace_write(offset, value, slot.name)
                slot.write(dev, offset, value, size)

            return read_exact, write_exact

        if self.decode is Decode.WHOLE:

            def read_whole(dev: Any, offset: int, size: int) -> int:
                i = offset if bytewise else offset >> shift
                slot = slots[i] if 0 <= i < n else hole
                value = slot.read(dev, offset, size)
                if read_gate.state:
                    trace_read(offset, value, slot.name)
                return value

            def write_whole(dev: Any, offset: int, value: int, size: int) -> None:
                i = offset if bytewise else offset >> shift
                slot = slots[i] if 0 <= i < n else hole
                if write_gate.state:
                    trace_write(offset, value, slot.name)
                slot.write(dev, offset, value, size)

            return read_whole, write_whole

        def read_bytes(dev: Any, offset: int, size: int) -> int:
            i = offset if bytewise else offset >> shift
            slot = slots[i] if 0 <= i < n else hole
            if offset == slot.base and size == slot.size:
                value = slot.read(dev, offset, size)
            else:
                span = span_of(offset, size)
                if span is None:
                    value = read_span(dev, offset, size)
                else:
                    # Whole registers side by side (four byte registers
                    # read as a word): each one's own fast read.
                    value = 0
                    for piece, pos, bits, mask in span:
                        value |= (piece.read(dev, pos, piece.size) & mask) << bits
            if read_gate.state:
                trace_read(offset, value, slot.name)
            return value

        def write_bytes(dev: Any, offset: int, value: int, size: int) -> None:
            i = offset if bytewise else offset >> shift
            slot = slots[i] if 0 <= i < n else hole
            if write_gate.state:
                trace_write(offset, value, slot.name)
            if offset == slot.base and size == slot.size:
                slot.write(dev, offset, value, size)
            else:
                span = span_of(offset, size)
                if span is None:
                    write_span(dev, offset, value, size)
                else:
                    for piece, pos, bits, mask in span:
                        piece.write(dev, pos, (value >> bits) & mask, piece.size)

        return read_bytes, write_bytes

    def _span_of(self, offset: int, size: int) -> _Span | None:
        """The whole registers an access covers, or None if it is not that.

        Computed once per offset and size: an access that covers several
        registers entirely (a 32-bit access to four byte registers) then
        costs one fast access per register.  Accesses that cover part of a
        register, or a byte where none is, take the general path.
        """
        key = (offset << 4) | size
        try:
            return self._spans[key]
        except KeyError:
            pass
        span: _Span | None = None
        if 1 <= size <= 8 and 0 <= offset <= self.size - size:
            hole = self._hole
            pieces = [
                (hole if slot is None and self._each_byte else slot, pos, length)
                for pos, length, slot in self._pieces(offset, size)
            ]
            if all(
                slot is not None
                and (slot is hole or (pos == slot.base and length == slot.size))
                for slot, pos, length in pieces
            ):
                span = tuple(
                    (slot, pos, (pos - offset) * 8, _mask(length * 8))
                    for slot, pos, length in pieces
                    if slot is not None
                )
        if len(self._spans) < _SPAN_CACHE_MAX:
            self._spans[key] = span
        return span

    def _slot_at(self, offset: int) -> _Slot | None:
        i = offset >> self._shift
        if 0 <= i < len(self._slots):
            slot = self._slots[i]
            return slot if slot.reg is not None else None
        return None

    def _pieces(
        self, offset: int, size: int
    ) -> Iterator[tuple[int, int, _Slot | None]]:
        """Split ``[offset, offset + size)`` at register boundaries."""
        pos = offset
        end = offset + size
        granule = 1 << self._shift
        while pos < end:
            slot = self._slot_at(pos)
            if slot is None and self._each_byte:
                stop = pos + 1
            elif slot is None:
                stop = min(end, (pos // granule + 1) * granule)
                # Merge the unassigned granules of one access into one piece.
                while stop < end and self._slot_at(stop) is None:
                    stop = min(end, stop + granule)
            else:
                stop = min(end, slot.base + slot.size)
            yield pos, stop - pos, slot
            pos = stop

    def _read_span(self, dev: Any, offset: int, size: int) -> int:
        if not 1 <= size <= 8 or offset < 0:
            self._log(LOG_GUEST_ERROR, self.log.bad_read, None, offset, size=size)
            return 0
        value = 0
        for pos, length, slot in self._pieces(offset, size):
            if slot is None or not _is_present(slot, dev):
                self._log(LOG_GUEST_ERROR, self.log.bad_read, None, pos, size=length)
                continue
            assert slot.reg is not None
            c = self._compiled[id(slot.reg)]
            shift = (pos - slot.base) * 8
            part = c.read_bits(dev, pos, _mask(length * 8) << shift) >> shift
            value |= part << ((pos - offset) * 8)
        return value

    def _write_span(self, dev: Any, offset: int, value: int, size: int) -> None:
        if not 1 <= size <= 8 or offset < 0:
            self._log(
                LOG_GUEST_ERROR, self.log.bad_write, None, offset, value, size=size
            )
            return
        value &= _mask(size * 8)
        for pos, length, slot in self._pieces(offset, size):
            part = (value >> ((pos - offset) * 8)) & _mask(length * 8)
            if slot is None or not _is_present(slot, dev):
                self._log(
                    LOG_GUEST_ERROR, self.log.bad_write, None, pos, part, size=length
                )
                continue
            assert slot.reg is not None
            c = self._compiled[id(slot.reg)]
            shift = (pos - slot.base) * 8
            c.write_bits(dev, pos, part << shift, _mask(length * 8) << shift)

    def _logger_read(
        self, template: str, reg: Register[Any] | None
    ) -> Callable[[Any, int, int], int]:
        """A read that logs a guest error with ``template`` and returns 0."""
        log = self._log

        def bad_read(dev: object, offset: int, size: int) -> int:
            if qemu_loglevel_mask(LOG_GUEST_ERROR):
                log(LOG_GUEST_ERROR, template, reg, offset)
            return 0

        return bad_read

    def _logger_write(
        self, template: str, reg: Register[Any] | None
    ) -> Callable[[Any, int, int, int], None]:
        """A write that logs a guest error with ``template`` and does nothing."""
        log = self._log

        def bad_write(dev: object, offset: int, value: int, size: int) -> None:
            if qemu_loglevel_mask(LOG_GUEST_ERROR):
                log(LOG_GUEST_ERROR, template, reg, offset, value)

        return bad_write

    def _log(
        self,
        mask: int,
        template: str,
        reg: Register[Any] | None,
        addr: int,
        value: int = 0,
        bits: int = 0,
        *,
        size: int = 0,
    ) -> None:
        if not qemu_loglevel_mask(mask):
            return
        qemu_log_mask(
            mask,
            template.format(
                prefix=self.prefix,
                name="" if reg is None else reg.name,
                addr=addr,
                value=value,
                bits=bits,
                unimp=0 if reg is None else reg.unimp,
                size=size,
            ),
        )

    # -- reset -----------------------------------------------------------------

    def reset(self, dev: D_contra) -> None:
        """Store every register's reset value in its field (``register_reset``).

        Registers without a field, or with ``reset=None``, are left alone; no
        hook runs.  Binds the map to ``type(dev)`` if needed.
        """
        if self._owner is None:
            self._bind_on_first_use(dev)
        for fa, reset in self._resets:
            value = reset & fa.mask
            fa.set(dev, value if fa.from_int is None else fa.from_int(value))

    @override
    def __repr__(self) -> str:
        return f"RegisterMap('{self.name}', {self.size:#x}, {len(self)} registers)"


def _borrowed_store(
    struct_of: Callable[[Any], Any], suffix: tuple[Step, ...]
) -> Callable[[Any, Any], None]:
    """Store into a list (or nested object) held by a BqlStruct field.

    The change is in place, so it takes the struct's mutable borrow.
    """
    store = _store(suffix)

    def set_(dev: Any, value: Any) -> None:
        with struct_of(dev).borrow_mut() as raw:
            store(raw, value)

    return set_


def _cell_access(
    cell_of: Callable[[Any], Any],
) -> tuple[Callable[[Any], Any], Callable[[Any, Any], None]]:
    def get(dev: Any) -> Any:
        return cell_of(dev).get()

    def set_(dev: Any, value: Any) -> None:
        cell_of(dev).set(value)

    return get, set_


def _refcell_access(
    cell_of: Callable[[Any], Any], suffix: tuple[Step, ...]
) -> tuple[Callable[[Any], Any], Callable[[Any, Any], None]]:
    if not suffix:
        return _cell_access(cell_of)
    walk = _walk(suffix)
    store = _store(suffix)

    def get(dev: Any) -> Any:
        with cell_of(dev).borrow() as inner:
            return walk(inner)

    def set_(dev: Any, value: Any) -> None:
        with cell_of(dev).borrow_mut() as inner:
            store(inner, value)

    return get, set_
