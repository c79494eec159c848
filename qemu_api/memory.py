"""Memory regions, address spaces and guest memory: QEMU's memory API.

This module models ``include/system/memory.h`` (``include/exec/memory.h`` in
older trees) with the behaviour of ``system/memory.c`` and
``system/physmem.c``, plus the ``memory.rs`` bindings of QEMU's Rust tree:

- :class:`MemoryRegion`: RAM, ROM, I/O (MMIO), alias and container regions,
  arranged in a tree with :meth:`~MemoryRegion.add_subregion` and
  :meth:`~MemoryRegion.add_subregion_overlap`;
- :class:`MemoryRegionOps`: a device's read/write callbacks and the access
  sizes it accepts (``valid``) and implements (``impl``);
- :class:`AddressSpace`: a tree rendered into a flat view (QEMU's
  ``FlatView``) and the dispatch of guest accesses to it, with QEMU's access
  splitting, widening and byte swapping;
- :func:`get_system_memory` and :func:`get_address_space_memory`: the machine's
  ``system`` container and its ``memory`` address space;
- :class:`GuestMemory` and :class:`GuestAddress`: bounds-checked guest memory
  for DMA, returning :class:`MemTxResult` values instead of raising.

A device builds its MMIO region from a static ops table and the board maps it::

    OPS = MemoryRegionOps[UART](
        read=UART.read,
        write=UART.write,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
    )
    iomem = MemoryRegion.io(uart, "uart", 0x1000, OPS, uart)
    get_system_memory().add_subregion(0x9000000, iomem)

Guest accesses go through an address space:

>>> class Counter:
...     def __init__(self) -> None:
...         self.value = 0x11223344
...
...     def read(self, offset: int, size: int) -> int:
...         return self.value
...
...     def write(self, offset: int, value: int, size: int) -> None:
...         self.value = value
>>> ops = MemoryRegionOps[Counter](
...     read=Counter.read,
...     write=Counter.write,
...     endianness=DEVICE_LITTLE_ENDIAN,
...     impl=OpsImpl(min_access_size=4, max_access_size=4),
... )
>>> dev = Counter()
>>> root = MemoryRegion.container(None, "root", 0x10000)
>>> root.add_subregion(0x1000, MemoryRegion.io(None, "counter", 0x100, ops, dev))
>>> space = AddressSpace(root, "example")
>>> hex(space.read(0x1000, 4))
'0x11223344'
>>> hex(space.ldub(0x1001))  # widened: read(1, 4), low byte kept
'0x44'
>>> space.write(0x1000, 0xCAFE, 4)
<MemTxResult.MEMTX_OK: 0>
>>> hex(dev.value)
'0xcafe'

The target's byte order (``DEVICE_NATIVE_ENDIAN``) is a property of the
machine: :func:`reset_system_memory` sets it, little-endian by default.

Differences from QEMU, all deliberate: no IOMMU regions, ROM devices, RAM
device regions, ioeventfds, coalesced MMIO, memory listeners or dirty logging
yet; the device re-entrancy guard is not modelled; accesses are not split at
target page boundaries (QEMU's sub-page sections).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import mmap
import types
import weakref
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Generic, Literal, NamedTuple, TypeVar, final

from qemu_api._compat import override
from qemu_api.bql import bql_assert_locked
from qemu_api.error import Error
from qemu_api.log import (
    LOG_GUEST_ERROR,
    LOG_INVALID_MEM,
    qemu_log_mask,
    qemu_loglevel_mask,
)
from qemu_api.qom import JSONValue, Object, ObjectProperty
from qemu_api.trace import add_state_listener, trace_event_name
from qemu_trace.qemu_api import (
    trace_memory_region_ops_read,
    trace_memory_region_ops_write,
)

__all__ = [
    "DEVICE_BIG_ENDIAN",
    "DEVICE_LITTLE_ENDIAN",
    "DEVICE_NATIVE_ENDIAN",
    "MEMTXATTRS_UNSPECIFIED",
    "MEMTX_ACCESS_ERROR",
    "MEMTX_DECODE_ERROR",
    "MEMTX_ERROR",
    "MEMTX_OK",
    "TYPE_MEMORY_REGION",
    "UINT64_MAX",
    "AddressSpace",
    "Endianness",
    "FlatRange",
    "GuestAddress",
    "GuestMemory",
    "MemTxAttrs",
    "MemTxBytes",
    "MemTxResult",
    "MemTxResultSlot",
    "MemTxValue",
    "MemoryRegion",
    "MemoryRegionOps",
    "OpsImpl",
    "OpsValid",
    "get_address_space_memory",
    "get_system_memory",
    "memory_region_transaction",
    "memory_region_transaction_begin",
    "memory_region_transaction_commit",
    "mtree_info",
    "reset_system_memory",
    "target_big_endian",
]

T = TypeVar("T")

TYPE_MEMORY_REGION: Final = "memory-region"
"""QOM type name of :class:`MemoryRegion`."""

UINT64_MAX: Final = (1 << 64) - 1
"""The largest ``hwaddr``; as a region size it means 2**64, as in QEMU."""

_HWADDR_MASK: Final = UINT64_MAX
_SIZE_2_64: Final = 1 << 64
# _LIMITS[size] is the largest value of a ``size``-byte access.
_LIMITS: Final = (0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF, 0, 0, 0, UINT64_MAX)
_ACCESS_SIZES: Final = (1, 2, 4, 8)


# ---------------------------------------------------------------------------
# Transaction results and attributes


class MemTxResult(enum.IntFlag):
    """The result of a memory transaction (QEMU's ``MemTxResult``).

    Results of the pieces of one access are or-ed together, as in C.

    >>> MEMTX_DECODE_ERROR | MEMTX_OK
    <MemTxResult.MEMTX_DECODE_ERROR: 2>
    >>> bool(MEMTX_OK)
    False
    """

    MEMTX_OK = 0
    """The transaction succeeded."""
    MEMTX_ERROR = 1 << 0
    """The device returned an error (a bus error)."""
    MEMTX_DECODE_ERROR = 1 << 1
    """Nothing is at that address, or the region rejected the access."""
    MEMTX_ACCESS_ERROR = 1 << 2
    """The access was not permitted (for example MMIO for a memory-only request)."""


MEMTX_OK: Final = MemTxResult.MEMTX_OK
"""The transaction succeeded."""
MEMTX_ERROR: Final = MemTxResult.MEMTX_ERROR
"""The device returned an error."""
MEMTX_DECODE_ERROR: Final = MemTxResult.MEMTX_DECODE_ERROR
"""Nothing is at that address, or the region rejected the access."""
MEMTX_ACCESS_ERROR: Final = MemTxResult.MEMTX_ACCESS_ERROR
"""The access was not permitted."""


@final
@dataclass(frozen=True, kw_only=True)
class MemTxAttrs:
    """Attributes of a memory transaction (QEMU's ``MemTxAttrs``).

    Attributes:
        unspecified: the bus master did not say anything (QEMU's
            ``MEMTXATTRS_UNSPECIFIED``); devices treat it as the defaults.
        secure: an Arm TrustZone secure access.
        user: an unprivileged access.
        memory: the requester wants memory only: an access that reaches a
            device (MMIO) fails with :data:`MEMTX_ACCESS_ERROR`.
        debug: a debugger access (``gdbstub``, ``x`` monitor command): writes
            reach ROM directly.
        requester_id: the PCI requester ID of the bus master, 16 bits.

    >>> MemTxAttrs(secure=True).secure
    True
    >>> MEMTXATTRS_UNSPECIFIED.unspecified
    True
    """

    unspecified: bool = False
    secure: bool = False
    user: bool = False
    memory: bool = False
    debug: bool = False
    requester_id: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.requester_id <= 0xFFFF:
            raise Error(
                f"MemTxAttrs: requester_id {self.requester_id:#x} does not fit in "
                "16 bits; expected a PCI requester ID (bus << 8 | devfn)"
            )


MEMTXATTRS_UNSPECIFIED: Final = MemTxAttrs(unspecified=True)
"""The attributes of an access whose bus master said nothing about them."""


@final
class MemTxResultSlot:
    """A preallocated place that collects the results of loads.

    :meth:`AddressSpace.read` and the ``ld*`` loads return the value; given a
    slot, they or the :class:`MemTxResult` into it, as QEMU code does with
    ``result |= ...`` over a sequence of accesses.  A successful access
    leaves the slot unchanged, so the fast path never touches it: check
    :attr:`value` after one access or a batch, and :meth:`clear` the slot to
    reuse it.  Nothing is allocated per access.

    >>> slot = MemTxResultSlot()
    >>> slot.value
    <MemTxResult.MEMTX_OK: 0>
    >>> slot.value |= MEMTX_DECODE_ERROR
    >>> bool(slot.value)
    True
    >>> slot.clear()
    >>> slot.value
    <MemTxResult.MEMTX_OK: 0>
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: MemTxResult = MEMTX_OK

    def clear(self) -> None:
        """Reset the slot to :data:`MEMTX_OK`."""
        self.value = MEMTX_OK

    @override
    def __repr__(self) -> str:
        return f"MemTxResultSlot({self.value!r})"


@final
class MemTxValue(NamedTuple):
    """A transaction result and the value read.

    >>> res, value = MemTxValue(MEMTX_OK, 7)
    >>> value
    7
    """

    result: MemTxResult
    """The result of the transaction."""
    value: int
    """The value read (0 where the access failed)."""


@final
class MemTxBytes(NamedTuple):
    """A transaction result and the bytes read.

    >>> MemTxBytes(MEMTX_OK, b"ab").data
    b'ab'
    """

    result: MemTxResult
    """The result of the transaction."""
    data: bytes
    """The bytes read (zeros where the access failed)."""


# ---------------------------------------------------------------------------
# Ops


@final
class Endianness(enum.Enum):
    """The byte order of a device's registers (QEMU's ``enum device_endian``)."""

    DEVICE_NATIVE_ENDIAN = 0
    """The target's byte order (see :func:`target_big_endian`)."""
    DEVICE_BIG_ENDIAN = 1
    """Big-endian registers."""
    DEVICE_LITTLE_ENDIAN = 2
    """Little-endian registers."""


DEVICE_NATIVE_ENDIAN: Final = Endianness.DEVICE_NATIVE_ENDIAN
"""The target's byte order."""
DEVICE_BIG_ENDIAN: Final = Endianness.DEVICE_BIG_ENDIAN
"""Big-endian registers."""
DEVICE_LITTLE_ENDIAN: Final = Endianness.DEVICE_LITTLE_ENDIAN
"""Little-endian registers."""


def _check_sizes(where: str, min_size: int, max_size: int) -> None:
    for label, value in (("min_access_size", min_size), ("max_access_size", max_size)):
        if value not in (0, 1, 2, 4, 8):
            raise Error(
                f"{where}: {label} is {value!r}; expected 1, 2, 4 or 8 bytes, "
                "or 0 for QEMU's default"
            )


@final
@dataclass(frozen=True, kw_only=True)
class OpsValid:
    """The accesses a region accepts (the ``valid`` part of QEMU's ops).

    An access outside these limits is not passed to the device: it fails
    with :data:`MEMTX_DECODE_ERROR` and an ``invalid_mem`` log line.

    Attributes:
        min_access_size: the smallest accepted access, in bytes (0: no limit).
        max_access_size: the largest accepted access, in bytes; 0 means that
            every size is accepted (QEMU's compatibility default).
        unaligned: whether accesses not aligned to their size are accepted.

    Raises:
        Error: a size is not 0, 1, 2, 4 or 8, or min is larger than max.

    >>> OpsValid(min_access_size=4, max_access_size=4)
    OpsValid(min_access_size=4, max_access_size=4, unaligned=False)
    """

    min_access_size: int = 0
    max_access_size: int = 0
    unaligned: bool = False

    def __post_init__(self) -> None:
        _check_sizes("OpsValid", self.min_access_size, self.max_access_size)
        if self.max_access_size == 0 and self.min_access_size != 0:
            raise Error(
                f"OpsValid: min_access_size is {self.min_access_size} but "
                "max_access_size is 0, which QEMU reads as 'every size is valid' "
                "and ignores min; set max_access_size too, e.g. "
                f"OpsValid(min_access_size={self.min_access_size}, max_access_size=8)"
            )
        if self.max_access_size and self.min_access_size > self.max_access_size:
            raise Error(
                f"OpsValid: min_access_size ({self.min_access_size}) is larger "
                f"than max_access_size ({self.max_access_size}); expected "
                "min <= max"
            )


@final
@dataclass(frozen=True, kw_only=True)
class OpsImpl:
    """The accesses a device's callbacks implement (``impl`` in QEMU's ops).

    Other valid accesses are split into several callback calls or widened to
    one larger call, as QEMU's ``access_with_adjusted_size`` does.

    Attributes:
        min_access_size: the smallest size the callbacks handle (0: 1 byte).
        max_access_size: the largest size the callbacks handle (0: 4 bytes).
        unaligned: whether the callbacks handle unaligned accesses; only
            allowed when :attr:`OpsValid.unaligned` is set too.

    Raises:
        Error: a size is not 0, 1, 2, 4 or 8, or min is larger than max.

    >>> OpsImpl(min_access_size=4, max_access_size=4).max_access_size
    4
    """

    min_access_size: int = 0
    max_access_size: int = 0
    unaligned: bool = False

    def __post_init__(self) -> None:
        _check_sizes("OpsImpl", self.min_access_size, self.max_access_size)
        lo = self.min_access_size or 1
        hi = self.max_access_size or 4
        if lo > hi:
            raise Error(
                f"OpsImpl: min_access_size ({lo}) is larger than max_access_size "
                f"({hi}{' by default' if not self.max_access_size else ''}); "
                "expected min <= max"
            )


@final
@dataclass(frozen=True, kw_only=True)
class MemoryRegionOps(Generic[T]):
    """A device's MMIO callbacks and access rules (QEMU's ``MemoryRegionOps``).

    ``T`` is the type of the opaque object passed to the callbacks, usually
    the device.  Device classes keep one ops object as a class constant, like
    QEMU's ``static const MemoryRegionOps`` or the Rust
    ``MemoryRegionOpsBuilder``.

    Attributes:
        read: ``read(opaque, offset, size) -> value``; ``offset`` is relative
            to the region and ``size`` is 1, 2, 4 or 8.
        write: ``write(opaque, offset, value, size)``.
        read_with_attrs: instead of ``read``: ``read_with_attrs(opaque, offset,
            size, attrs) -> (result, value)``, for devices that look at the
            transaction attributes or report bus errors.
        write_with_attrs: instead of ``write``: ``write_with_attrs(opaque,
            offset, value, size, attrs) -> result``.
        accepts: QEMU's ``valid.accepts``: ``accepts(opaque, offset, size,
            is_write, attrs) -> bool``; False rejects the access with
            :data:`MEMTX_DECODE_ERROR`.
        resolve_read: with ``read``, an optional shortcut (not in QEMU):
            ``resolve_read(opaque, offset, size)`` returns a callable
            ``fn(offset, size) -> value`` that does exactly what ``read``
            does for that offset and size, or None.  An address space asks
            once per address and size it caches and then calls ``fn``
            instead of ``read``: a register map returns the register's own
            read bound to the device (:meth:`RegisterMap.resolve_read
            <qemu_api.register.RegisterMap.resolve_read>`), a call fewer per
            access.  The answers are asked again after the flat view is
            rendered, after any change of trace event states and after
            :meth:`MemoryRegion.invalidate_resolved`.
        resolve_write: the same for ``write``: ``fn(offset, value, size)``.
        endianness: the byte order of the registers.
        valid: the accesses the region accepts.
        impl: the accesses the callbacks implement.

    Raises:
        Error: a read or write callback is missing or given twice, or
            ``impl.unaligned`` is set without ``valid.unaligned``.

    >>> class Dev:
    ...     def read(self, offset: int, size: int) -> int:
    ...         return 0
    ...
    ...     def write(self, offset: int, value: int, size: int) -> None:
    ...         pass
    >>> ops = MemoryRegionOps[Dev](read=Dev.read, write=Dev.write)
    >>> ops.valid
    OpsValid(min_access_size=0, max_access_size=0, unaligned=False)
    >>> ops.endianness
    <Endianness.DEVICE_NATIVE_ENDIAN: 0>
    >>> MemoryRegionOps[Dev](read=Dev.read)
    Traceback (most recent call last):
        ...
    qemu_api.error.Error: MemoryRegionOps: no write callback; ...
    """

    read: Callable[[T, int, int], int] | None = None
    write: Callable[[T, int, int, int], None] | None = None
    read_with_attrs: (
        Callable[[T, int, int, MemTxAttrs], tuple[MemTxResult, int]] | None
    ) = None
    write_with_attrs: Callable[[T, int, int, int, MemTxAttrs], MemTxResult] | None = (
        None
    )
    accepts: Callable[[T, int, int, bool, MemTxAttrs], bool] | None = None
    resolve_read: Callable[[T, int, int], Callable[[int, int], int] | None] | None = (
        None
    )
    resolve_write: (
        Callable[[T, int, int], Callable[[int, int, int], None] | None] | None
    ) = None
    endianness: Endianness = DEVICE_NATIVE_ENDIAN
    valid: OpsValid = OpsValid()
    impl: OpsImpl = OpsImpl()

    def __post_init__(self) -> None:
        for kind, plain, attrs in (
            ("read", self.read, self.read_with_attrs),
            ("write", self.write, self.write_with_attrs),
        ):
            if plain is None and attrs is None:
                hint = (
                    "a read-only register block still needs a write callback "
                    "that logs the write with qemu_log_mask(LOG_GUEST_ERROR, ...)"
                    if kind == "write"
                    else "return 0 and log with qemu_log_mask(LOG_UNIMP, ...) "
                    "for registers you do not model"
                )
                raise Error(
                    f"MemoryRegionOps: no {kind} callback; expected {kind}= or "
                    f"{kind}_with_attrs=",
                    hint=hint,
                )
            if plain is not None and attrs is not None:
                raise Error(
                    f"MemoryRegionOps: both {kind}= and {kind}_with_attrs= are "
                    f"set; expected one of them (QEMU calls {kind} when both "
                    "exist, so the other would never run)"
                )
        for kind, plain, resolve in (
            ("read", self.read, self.resolve_read),
            ("write", self.write, self.resolve_write),
        ):
            if resolve is not None and plain is None:
                raise Error(
                    f"MemoryRegionOps: resolve_{kind}= is set without {kind}=; "
                    f"a resolved access stands for a {kind} callback, so give "
                    f"{kind}= too"
                )
        if self.impl.unaligned and not self.valid.unaligned:
            raise Error(
                "MemoryRegionOps: impl.unaligned is set but valid.unaligned is "
                "not; a region cannot implement accesses it rejects, set "
                "OpsValid(unaligned=True) too"
            )


@final
class _BoundOps:
    """A region's ops with the opaque bound in (the type parameter erased)."""

    __slots__ = (
        "accepts",
        "big",
        "endianness",
        "impl_max",
        "impl_min",
        "impl_unaligned",
        "ops",
        "raw",
        "read",
        "read_attrs",
        "resolve_read",
        "resolve_write",
        "valid",
        "write",
        "write_attrs",
    )

    def __init__(
        self,
        ops: object,
        endianness: Endianness,
        valid: OpsValid,
        impl: OpsImpl,
        read: Callable[[int, int], int] | None,
        write: Callable[[int, int, int], None] | None,
        read_attrs: Callable[[int, int, MemTxAttrs], tuple[MemTxResult, int]] | None,
        write_attrs: Callable[[int, int, int, MemTxAttrs], MemTxResult] | None,
        accepts: Callable[[int, int, bool, MemTxAttrs], bool] | None,
        resolve_read: Callable[[int, int], Callable[[int, int], int] | None]
        | None = None,
        resolve_write: Callable[[int, int], Callable[[int, int, int], None] | None]
        | None = None,
    ) -> None:
        self.ops = ops
        self.endianness = endianness
        # Resolved when the flat view is built: DEVICE_NATIVE_ENDIAN depends
        # on the machine (see _dev_big).
        self.big = endianness is DEVICE_BIG_ENDIAN
        self.valid = valid
        self.impl_min = impl.min_access_size or 1
        self.impl_max = impl.max_access_size or 4
        self.impl_unaligned = impl.unaligned
        self.read = read
        self.write = write
        self.read_attrs = read_attrs
        self.write_attrs = write_attrs
        self.accepts = accepts
        self.resolve_read = resolve_read
        self.resolve_write = resolve_write
        self.raw = (read, write, read_attrs, write_attrs)

    def set_tracing(self, mr: MemoryRegion, on: bool) -> None:
        """Route the callbacks through the ``memory_region_ops_*`` tracepoints.

        The fast path keeps calling ``read``/``write``; while the events are
        off these are the device's own bound methods, so a disabled event
        costs the MMIO path nothing.
        """
        read, write, read_attrs, write_attrs = self.raw
        if not on:
            self.read, self.write = read, write
            self.read_attrs, self.write_attrs = read_attrs, write_attrs
            return
        self.read = None if read is None else _traced_read(mr, read)
        self.write = None if write is None else _traced_write(mr, write)
        self.read_attrs = (
            None if read_attrs is None else _traced_read_attrs(mr, read_attrs)
        )
        self.write_attrs = (
            None if write_attrs is None else _traced_write_attrs(mr, write_attrs)
        )


# Rejected and unassigned accesses: QEMU 7.2 logs them under -d guest_errors,
# QEMU 9.1 and later under -d invalid_mem; either item shows them.
_LOG_BAD_ACCESS: Final = LOG_GUEST_ERROR | LOG_INVALID_MEM

# Zeros for reads of unassigned spans.
_ZEROS: Final = bytes(1 << 20)

# QEMU's get_cpu_index(): -1 when no CPU makes the access (qtest, DMA).
_NO_CPU: Final = -1


def _traced_read(
    mr: MemoryRegion, read: Callable[[int, int], int]
) -> Callable[[int, int], int]:
    def traced(addr: int, size: int) -> int:
        value = read(addr, size)
        trace_memory_region_ops_read(
            _NO_CPU, mr, _absolute_addr(mr, addr), value, size, mr.name
        )
        return value

    return traced


def _traced_write(
    mr: MemoryRegion, write: Callable[[int, int, int], None]
) -> Callable[[int, int, int], None]:
    def traced(addr: int, value: int, size: int) -> None:
        trace_memory_region_ops_write(
            _NO_CPU, mr, _absolute_addr(mr, addr), value, size, mr.name
        )
        write(addr, value, size)

    return traced


def _traced_read_attrs(
    mr: MemoryRegion,
    read: Callable[[int, int, MemTxAttrs], tuple[MemTxResult, int]],
) -> Callable[[int, int, MemTxAttrs], tuple[MemTxResult, int]]:
    def traced(addr: int, size: int, attrs: MemTxAttrs) -> tuple[MemTxResult, int]:
        result, value = read(addr, size, attrs)
        trace_memory_region_ops_read(
            _NO_CPU, mr, _absolute_addr(mr, addr), value, size, mr.name
        )
        return result, value

    return traced


def _traced_write_attrs(
    mr: MemoryRegion,
    write: Callable[[int, int, int, MemTxAttrs], MemTxResult],
) -> Callable[[int, int, int, MemTxAttrs], MemTxResult]:
    def traced(addr: int, value: int, size: int, attrs: MemTxAttrs) -> MemTxResult:
        trace_memory_region_ops_write(
            _NO_CPU, mr, _absolute_addr(mr, addr), value, size, mr.name
        )
        return write(addr, value, size, attrs)

    return traced


def _absolute_addr(mr: MemoryRegion, offset: int) -> int:
    """The address of *offset* in the root of *mr*'s tree.

    QEMU's ``memory_region_to_absolute_addr``, which the MMIO tracepoints print.
    """
    addr = offset
    region: MemoryRegion | None = mr
    while region is not None:
        addr += region.addr
        region = region.parent_container
    return addr & _HWADDR_MASK


# I/O regions, so that switching the MMIO tracepoints reaches every one.
_io_regions: weakref.WeakSet[MemoryRegion] = weakref.WeakSet()
_mmio_tracing = False


def _mmio_trace_changed() -> None:
    """Switch every I/O region to the traced callbacks or back, then re-render.

    Any change of event states also drops the cached accesses: a resolved
    access (``MemoryRegionOps.resolve_read``) may leave out a device's trace
    point while it is off.
    """
    global _mmio_tracing
    read_ev = trace_event_name("memory_region_ops_read")
    write_ev = trace_event_name("memory_region_ops_write")
    on = bool((read_ev and read_ev.state) or (write_ev and write_ev.state))
    if on == _mmio_tracing:
        for space in _live_address_spaces():
            space._flush_caches()
        return
    _mmio_tracing = on
    for mr in list(_io_regions):
        mr._ops.set_tracing(mr, on)
    for space in _live_address_spaces():
        space._update_topology()


def _bind(fn: Callable[..., object], opaque: object) -> types.MethodType:
    """Bind ``opaque`` as the first argument (a method call costs no more)."""
    if opaque is None:
        # MethodType refuses None as self; wrap in a function that takes it.
        return types.MethodType(functools.partial(_call_with_none, fn), 0)
    return types.MethodType(fn, opaque)


def _call_with_none(fn: Callable[..., object], _self: int, *args: object) -> object:
    return fn(None, *args)


def _bind_ops(ops: MemoryRegionOps[T], opaque: T) -> _BoundOps:
    return _BoundOps(
        ops,
        ops.endianness,
        ops.valid,
        ops.impl,
        None if ops.read is None else _bind(ops.read, opaque),
        None if ops.write is None else _bind(ops.write, opaque),
        None if ops.read_with_attrs is None else _bind(ops.read_with_attrs, opaque),
        None if ops.write_with_attrs is None else _bind(ops.write_with_attrs, opaque),
        None if ops.accepts is None else _bind(ops.accepts, opaque),
        None if ops.resolve_read is None else _bind(ops.resolve_read, opaque),
        None if ops.resolve_write is None else _bind(ops.resolve_write, opaque),
    )


def _unassigned_read(addr: int, size: int) -> int:
    return 0


def _unassigned_write(addr: int, value: int, size: int) -> None:
    return None


def _unassigned_accepts(
    addr: int, size: int, is_write: bool, attrs: MemTxAttrs
) -> bool:
    return False


# QEMU's unassigned_mem_ops: the ops of RAM, ROM and containers, and of the
# whole address space where nothing is mapped.  Everything is rejected.
_UNASSIGNED_OPS: Final = _BoundOps(
    None,
    DEVICE_NATIVE_ENDIAN,
    OpsValid(),
    OpsImpl(),
    _unassigned_read,
    _unassigned_write,
    None,
    None,
    _unassigned_accepts,
)


# ---------------------------------------------------------------------------
# Global state: the machine's byte order and pending transactions

_target_big = False
_transaction_depth = 0
_update_pending = False
_address_spaces: list[weakref.ref[AddressSpace]] = []


def target_big_endian() -> bool:
    """Return True if the machine's target is big-endian (``target_big_endian``).

    This is the byte order of ``DEVICE_NATIVE_ENDIAN`` regions and of
    :meth:`AddressSpace.read`/:meth:`AddressSpace.write`.  Set it with
    :func:`reset_system_memory`.
    """
    return _target_big


def _dev_big(ops: _BoundOps) -> bool:
    if ops.endianness is DEVICE_NATIVE_ENDIAN:
        return _target_big
    return ops.big


def memory_region_transaction_begin() -> None:
    """Start batching memory topology changes (QEMU's function of that name).

    Address spaces keep their current view until the matching
    :func:`memory_region_transaction_commit`; then each one is rendered once.
    Calls nest.  Prefer the :func:`memory_region_transaction` context manager.

    Raises:
        qemu_api.bql.BqlNotHeldError: the current thread does not hold the
            BQL (memory topology changes need it, as in QEMU).
    """
    global _transaction_depth
    bql_assert_locked("changing the memory topology")
    _transaction_depth += 1


def memory_region_transaction_commit() -> None:
    """End a batch started by :func:`memory_region_transaction_begin`.

    The outermost commit renders every address space again if anything
    changed.

    Raises:
        Error: there is no matching begin.
        qemu_api.bql.BqlNotHeldError: the current thread does not hold the
            BQL (memory topology changes need it, as in QEMU).
    """
    global _transaction_depth, _update_pending
    if _transaction_depth == 0:
        raise Error(
            "memory_region_transaction_commit() without a matching "
            "memory_region_transaction_begin(); use 'with "
            "memory_region_transaction():' to keep them paired"
        )
    _transaction_depth -= 1
    # Checked after the decrement: begin and commit stay paired, and the
    # pending changes are rendered by the next commit that holds the lock.
    bql_assert_locked("changing the memory topology")
    if _transaction_depth == 0 and _update_pending:
        _update_pending = False
        for space in _live_address_spaces():
            space._update_topology()


@contextlib.contextmanager
def memory_region_transaction() -> Iterator[None]:
    """Batch the topology changes made in the ``with`` block.

    >>> root = MemoryRegion.container(None, "root", 0x10000)
    >>> space = AddressSpace(root, "batched")
    >>> ram = MemoryRegion.ram(None, "ram", 0x100)
    >>> with memory_region_transaction():
    ...     root.add_subregion(0, ram)
    ...     space.ldub(0)  # not rendered yet: still unassigned
    0
    >>> space.stb(0, 7), space.ldub(0)
    (<MemTxResult.MEMTX_OK: 0>, 7)
    """
    memory_region_transaction_begin()
    try:
        yield
    finally:
        memory_region_transaction_commit()


def _mark_pending(pending: bool) -> None:
    global _update_pending
    _update_pending |= pending


def _live_address_spaces() -> list[AddressSpace]:
    live: list[AddressSpace] = []
    alive: list[weakref.ref[AddressSpace]] = []
    for ref in _address_spaces:
        space = ref()
        if space is not None:
            live.append(space)
            alive.append(ref)
    _address_spaces[:] = alive
    return live


# ---------------------------------------------------------------------------
# Memory regions


def _check_size(where: str, size: int) -> int:
    if not 0 <= size <= _SIZE_2_64:
        raise Error(
            f"{where}: size {size!r} is out of range; expected 0 to 2**64 bytes "
            "(UINT64_MAX also means 2**64, as in QEMU)"
        )
    return _SIZE_2_64 if size == UINT64_MAX else size


def _check_hwaddr(where: str, addr: int) -> int:
    if not 0 <= addr <= UINT64_MAX:
        raise Error(
            f"{where}: address {addr!r} is out of range; expected a 64-bit "
            "guest physical address (0 to 0xffffffffffffffff)"
        )
    return addr


def _no_set_container(mr: MemoryRegion | None) -> None:
    """The ``container`` link is read-only; map with add_subregion()."""


def _escape_name(name: str) -> str:
    """QEMU's ``memory_region_escape_name``: a name usable as a QOM path part."""
    return "".join(f"\\x{ord(c):02x}" if c in "/[\\]" else c for c in name)


@final
class MemoryRegion(Object, type_name=TYPE_MEMORY_REGION):
    """A region of guest physical memory (QEMU's ``MemoryRegion``).

    Regions are made with the classmethods :meth:`io`, :meth:`ram`,
    :meth:`rom`, :meth:`alias` and :meth:`container` (QEMU's
    ``memory_region_init_*``) and arranged in a tree with
    :meth:`add_subregion`.  An :class:`AddressSpace` renders the tree whose
    root it is.  Changing the tree (mapping, unmapping, moving, resizing,
    enabling) needs the BQL.

    The region's parent in the tree is :attr:`parent_container` (QEMU's
    ``mr->container``) and an alias's target is :attr:`alias_target`: the
    names ``container`` and ``alias`` are the constructors.

    A region is a QOM object (``TYPE_MEMORY_REGION``), so a device can link
    to one (``prop_link("memory", MemoryRegion)``, QEMU's
    ``link<memory-region>``).  A region with an owner is the owner's QOM
    child ``NAME[N]``, as in QEMU (``qom-list`` shows ``pl011[0]`` under a
    PL011), with QEMU's read-only properties ``container``, ``addr``,
    ``priority`` and ``size``; it dies with its owner: when the owner is
    finalized the region is unmapped from its container, its own subregions
    are unmapped, and an I/O region stops calling its ops, so the addresses
    where it was become unassigned.  A region without an owner stays out of
    the QOM tree (QEMU puts those under ``/machine/unattached``).

    >>> system = MemoryRegion.container(None, "sys", 0x100000)
    >>> ram = MemoryRegion.ram(None, "ram", 0x1000)
    >>> system.add_subregion(0x8000, ram)
    >>> ram.addr, ram.size, ram.parent_container is system
    (32768, 4096, True)
    >>> from qemu_api.qom import Container
    >>> board = Container()
    >>> sram = MemoryRegion.ram(board, "sram", 0x100)
    >>> sram.canonical_path() is None, sram.name_in_parent, sram.property_get("size")
    (True, 'sram[0]', 256)
    """

    __slots__ = (
        "_addr",
        "_alias",
        "_alias_offset",
        "_container",
        "_enabled",
        "_mapped_via_alias",
        "_mr_name",
        "_opaque",
        "_ops",
        "_owner",
        "_priority",
        "_ram",
        "_readonly",
        "_size",
        "_subregions",
        "_terminates",
    )

    @override
    def _qom_instance_init(self) -> None:
        """An empty, nameless container of size 0 (``memory_region_initfn``)."""
        self._owner: Object | None = None
        self._mr_name = ""
        self._size = 0
        self._addr = 0
        self._priority = 0
        self._container: MemoryRegion | None = None
        self._subregions: list[MemoryRegion] = []
        self._enabled = True
        self._readonly = False
        self._terminates = False
        self._alias: MemoryRegion | None = None
        self._alias_offset = 0
        self._mapped_via_alias = 0
        self._ops: _BoundOps = _UNASSIGNED_OPS
        self._opaque: object = None
        self._ram: RamBuffer | None = None
        self.property_add_link(
            "container",
            MemoryRegion,
            lambda: self._container,
            _no_set_container,
            None,
        )
        self.property_add_uint("addr", 64, lambda: self._addr)
        self.property_add(
            ObjectProperty("priority", "uint32", getter=self._priority_json)
        )
        self.property_add_uint("size", 64, lambda: min(self._size, UINT64_MAX))

    def _priority_json(self) -> JSONValue:
        # QEMU declares "uint32" but visits the int32 priority.
        return self._priority

    @override
    def instance_finalize(self) -> None:
        """Leave the memory map: unmapped, empty, and calling no ops any more.

        QEMU's ``memory_region_finalize`` (which requires that the region was
        unmapped first; here finalizing an owner unmaps its regions).
        """
        with memory_region_transaction():
            container = self._container
            if container is not None:
                container.del_subregion(self)
            for sub in list(self._subregions):
                self.del_subregion(sub)
            if self._ops is not _UNASSIGNED_OPS:
                self._ops = _UNASSIGNED_OPS
                self._opaque = None
                _io_regions.discard(self)
            self._enabled = False
            # Views that reach the region through an alias re-render without it.
            _mark_pending(self._mapped_via_alias > 0)

    @classmethod
    def _make(cls, owner: Object | None, name: str, size: int) -> MemoryRegion:
        if owner is not None and not isinstance(owner, Object):
            raise Error(
                f"memory region '{name}': owner is a {type(owner).__name__}; "
                "expected the QOM object that owns the region (usually the "
                "device), or None"
            )
        mr = cls()
        mr._owner = owner
        mr._mr_name = name
        mr._size = _check_size(f"memory region '{name}'", size)
        return mr

    def _attach(self) -> MemoryRegion:
        """Become the owner's child ``NAME[N]`` (``memory_region_do_init``)."""
        if self._owner is not None:
            self._owner.property_add_child(f"{_escape_name(self._mr_name)}[*]", self)
        return self

    # -- constructors -------------------------------------------------------

    @classmethod
    def container(cls, owner: Object | None, name: str, size: int) -> MemoryRegion:
        """Make a container: a region that only holds subregions.

        QEMU's ``memory_region_init``.  Accesses that hit no subregion are
        unassigned.

        Args:
            owner: the QOM object (usually the device) that owns the region;
                the region becomes its child ``NAME[N]`` and dies with it.
            name: the region's name, shown by ``info mtree`` and in logs.
            size: the size in bytes; ``UINT64_MAX`` means 2**64.

        Returns:
            The new region.

        Raises:
            Error: the size is negative or larger than 2**64.

        >>> MemoryRegion.container(None, "system", UINT64_MAX).size == 2**64
        True
        """
        return cls._make(owner, name, size)._attach()

    @classmethod
    def io(
        cls,
        owner: Object | None,
        name: str,
        size: int,
        ops: MemoryRegionOps[T],
        opaque: T,
    ) -> MemoryRegion:
        """Make an I/O region whose accesses call ``ops`` (``memory_region_init_io``).

        Args:
            owner: the QOM object (usually the device) that owns the region;
                the region becomes its child ``NAME[N]`` and dies with it.
            name: the region's name.
            size: the size in bytes.
            ops: the callbacks and access rules.
            opaque: the first argument of every callback, usually the device.

        Returns:
            The new region.

        Raises:
            Error: the size is out of range or ``ops`` is not a
                :class:`MemoryRegionOps`.
        """
        if not isinstance(ops, MemoryRegionOps):
            raise Error(
                f"memory region '{name}': ops is a {type(ops).__name__}; expected "
                "a MemoryRegionOps(read=..., write=...)"
            )
        mr = cls._make(owner, name, size)
        mr._ops = _bind_ops(ops, opaque)
        mr._opaque = opaque
        mr._terminates = True
        _io_regions.add(mr)
        if _mmio_tracing:
            mr._ops.set_tracing(mr, True)
        return mr._attach()

    @classmethod
    def ram(cls, owner: Object | None, name: str, size: int) -> MemoryRegion:
        """Make a RAM region, zero-filled (``memory_region_init_ram``).

        Its contents are an anonymous memory mapping (a ``bytearray`` when
        empty): the host provides zeroed pages on first touch, so a large
        guest costs nothing until it is used. :meth:`get_ram_ptr` reaches
        them without copying.

        Args:
            owner: the QOM object that owns the region (see :meth:`container`).
            name: the region's name; it also names the RAM block.
            size: the size in bytes.

        Returns:
            The new region.

        Raises:
            Error: the size is out of range, or the host cannot map that
                much memory (QEMU's message).
        """
        mr = cls._make(owner, name, size)
        mr._ram = _alloc_ram(name, mr._size)
        mr._terminates = True
        return mr._attach()

    @classmethod
    def rom(cls, owner: Object | None, name: str, size: int) -> MemoryRegion:
        """Make a ROM region (``memory_region_init_rom``).

        Guest reads see the contents; guest writes are rejected with
        :data:`MEMTX_DECODE_ERROR` and an ``invalid_mem`` log line, and change
        nothing.  Fill it through :meth:`get_ram_ptr` or
        :meth:`AddressSpace.write_rom`.

        Args:
            owner: the QOM object that owns the region (see :meth:`container`).
            name: the region's name.
            size: the size in bytes.

        Returns:
            The new region.

        Raises:
            Error: the size is out of range.
        """
        mr = cls.ram(owner, name, size)
        mr._readonly = True
        return mr

    @classmethod
    def alias(
        cls,
        owner: Object | None,
        name: str,
        orig: MemoryRegion,
        offset: int,
        size: int,
    ) -> MemoryRegion:
        """Make an alias: a window of ``size`` bytes into ``orig`` at ``offset``.

        QEMU's ``memory_region_init_alias``.  Mapping the alias somewhere
        makes that part of ``orig`` visible there too.

        Args:
            owner: the QOM object that owns the region (see :meth:`container`).
            name: the region's name.
            orig: the region to look into.
            offset: where the window starts in ``orig``.
            size: the size of the window.

        Returns:
            The new region.

        Raises:
            Error: the size or offset is out of range.
        """
        mr = cls._make(owner, name, size)
        mr._alias = orig
        mr._alias_offset = _check_hwaddr(f"alias '{name}'", offset)
        return mr._attach()

    # -- attributes -----------------------------------------------------------

    @property
    def name(self) -> str:
        """The region's name (``memory_region_name``)."""
        return self._mr_name

    @property
    def owner(self) -> Object | None:
        """The object that owns the region (``memory_region_owner``)."""
        return self._owner

    @property
    def size(self) -> int:
        """The size in bytes; 2**64 for a region of the whole address space."""
        return self._size

    @property
    def addr(self) -> int:
        """The offset in :attr:`parent_container` (``mr->addr``)."""
        return self._addr

    @property
    def priority(self) -> int:
        """The priority among overlapping siblings; higher wins."""
        return self._priority

    @property
    def enabled(self) -> bool:
        """Whether the region takes part in rendering (see :meth:`set_enabled`)."""
        return self._enabled

    @property
    def readonly(self) -> bool:
        """Whether guest writes are rejected (ROM, or :meth:`set_readonly`)."""
        return self._readonly

    @property
    def parent_container(self) -> MemoryRegion | None:
        """The container this region is mapped in (QEMU's ``mr->container``)."""
        return self._container

    @property
    def alias_target(self) -> MemoryRegion | None:
        """The region an alias looks into (QEMU's ``mr->alias``), else None."""
        return self._alias

    @property
    def alias_offset(self) -> int:
        """Where an alias's window starts in :attr:`alias_target`."""
        return self._alias_offset

    @property
    def opaque(self) -> object:
        """The first argument of an I/O region's callbacks, else None."""
        return self._opaque

    @property
    def subregions(self) -> tuple[MemoryRegion, ...]:
        """The subregions, in QEMU's order: by priority, later-added first.

        This is the order in which they obscure each other: an earlier one
        hides the later ones where they overlap.
        """
        return tuple(self._subregions)

    def is_ram(self) -> bool:
        """Return True for RAM and ROM regions (``memory_region_is_ram``)."""
        return self._ram is not None

    def is_rom(self) -> bool:
        """Return True for ROM regions: RAM that is read-only."""
        return self._ram is not None and self._readonly

    def is_mapped(self) -> bool:
        """Return True if mapped in a container or through an alias.

        >>> MemoryRegion.ram(None, "r", 16).is_mapped()
        False
        """
        return self._container is not None or self._mapped_via_alias > 0

    def get_ram_ptr(self) -> memoryview:
        r"""Return the RAM contents as a writable view, without copying.

        QEMU's ``memory_region_get_ram_ptr``: for an alias, the view starts at
        the alias offset in the RAM it looks into.  Migration and loaders use
        it; guest accesses go through an :class:`AddressSpace`.

        Returns:
            A ``memoryview`` of the RAM block from the region's start.

        Raises:
            Error: the region is not RAM or ROM (nor an alias of one).

        >>> rom = MemoryRegion.rom(None, "bios", 4)
        >>> rom.get_ram_ptr()[:2] = b"\x55\xaa"
        >>> bytes(rom.get_ram_ptr())
        b'U\xaa\x00\x00'
        """
        mr = self
        offset = 0
        while mr._alias is not None:
            offset += mr._alias_offset
            mr = mr._alias
        if mr._ram is None:
            raise Error(
                f"memory region '{self._mr_name}' is not RAM; get_ram_ptr() needs a "
                "region made by MemoryRegion.ram() or .rom() (or an alias of one)"
            )
        return memoryview(mr._ram)[offset:]

    # -- topology changes -----------------------------------------------------

    def add_subregion(self, offset: int, subregion: MemoryRegion) -> None:
        """Map ``subregion`` at ``offset`` with priority 0.

        QEMU's ``memory_region_add_subregion``.  Use
        :meth:`add_subregion_overlap` for regions that overlap on purpose.

        Args:
            offset: where the subregion starts in this region.
            subregion: the region to map; it must not be mapped elsewhere.

        Raises:
            Error: ``subregion`` already has a container, or mapping it would
                make a cycle.
            qemu_api.bql.BqlNotHeldError: the BQL is not held.
        """
        self._add_subregion_common(offset, subregion, 0)

    def add_subregion_overlap(
        self, offset: int, subregion: MemoryRegion, priority: int
    ) -> None:
        """Map ``subregion`` at ``offset`` with a priority.

        QEMU's ``memory_region_add_subregion_overlap``.  Where siblings
        overlap, the higher priority wins; among equal priorities the one
        added last wins.  Priorities only compare siblings: a container's
        priority decides for all of its contents.

        Args:
            offset: where the subregion starts in this region.
            subregion: the region to map; it must not be mapped elsewhere.
            priority: the priority; may be negative (background regions).

        Raises:
            Error: ``subregion`` already has a container, or mapping it would
                make a cycle.
            qemu_api.bql.BqlNotHeldError: the BQL is not held.

        >>> c = MemoryRegion.container(None, "c", 0x100)
        >>> low = MemoryRegion.ram(None, "low", 0x100)
        >>> high = MemoryRegion.ram(None, "high", 0x10)
        >>> c.add_subregion_overlap(0, low, -1)
        >>> c.add_subregion_overlap(0, high, 1)
        >>> [r.name for r in c.subregions]
        ['high', 'low']
        """
        self._add_subregion_common(offset, subregion, priority)

    def _add_subregion_common(
        self, offset: int, subregion: MemoryRegion, priority: int
    ) -> None:
        if not isinstance(subregion, MemoryRegion):
            raise Error(
                "add_subregion: expected a MemoryRegion, got "
                f"{type(subregion).__name__}"
            )
        offset = _check_hwaddr(f"mapping '{subregion._mr_name}'", offset)
        bql_assert_locked("changing the memory topology")
        if subregion._container is not None:
            raise Error(
                f"memory region '{subregion._mr_name}' is already mapped in "
                f"'{subregion._container._mr_name}'; a region can be in only one "
                "container",
                hint=f"Unmap it first with "
                f"{subregion._container._mr_name}.del_subregion(region), or map an "
                "alias of it (MemoryRegion.alias) to show it at a second place.\n",
            )
        node: MemoryRegion | None = self
        while node is not None:
            if node is subregion:
                raise Error(
                    f"mapping '{subregion._mr_name}' in '{self._mr_name}' would make a "
                    "cycle: a region cannot contain itself or its own container"
                )
            node = node._container
        subregion._container = self
        alias = subregion._alias
        while alias is not None:
            alias._mapped_via_alias += 1
            alias = alias._alias
        subregion._addr = offset
        subregion._priority = priority
        self._update_container_subregions(subregion)

    def _update_container_subregions(self, subregion: MemoryRegion) -> None:
        # memory_region_update_container_subregions: insert before the first
        # sibling whose priority is lower or equal, so among equal priorities
        # the region added last comes first and wins.
        memory_region_transaction_begin()
        try:
            subs = self._subregions
            for i, other in enumerate(subs):
                if subregion._priority >= other._priority:
                    subs.insert(i, subregion)
                    break
            else:
                subs.append(subregion)
            _mark_pending(self._enabled and subregion._enabled)
        finally:
            memory_region_transaction_commit()

    def del_subregion(self, subregion: MemoryRegion) -> None:
        """Unmap ``subregion`` from this region (``memory_region_del_subregion``).

        Args:
            subregion: a region mapped in this one.

        Raises:
            Error: ``subregion`` is not mapped in this region.
            qemu_api.bql.BqlNotHeldError: the BQL is not held.
        """
        if subregion._container is not self:
            where = (
                "is not mapped anywhere"
                if subregion._container is None
                else f"is mapped in '{subregion._container._mr_name}'"
            )
            raise Error(
                f"del_subregion: memory region '{subregion._mr_name}' {where}, not in "
                f"'{self._mr_name}'; call del_subregion on its parent_container"
            )
        memory_region_transaction_begin()
        try:
            subregion._container = None
            alias = subregion._alias
            while alias is not None:
                alias._mapped_via_alias -= 1
                alias = alias._alias
            self._subregions.remove(subregion)
            _mark_pending(self._enabled and subregion._enabled)
        finally:
            memory_region_transaction_commit()

    def set_enabled(self, enabled: bool) -> None:
        """Show or hide the region (``memory_region_set_enabled``).

        A disabled region and its subregions are skipped when rendering, so
        what is below it shows through.

        Args:
            enabled: False to hide the region.
        """
        if enabled == self._enabled:
            return
        memory_region_transaction_begin()
        try:
            self._enabled = enabled
            _mark_pending(True)
        finally:
            memory_region_transaction_commit()

    def set_readonly(self, readonly: bool) -> None:
        """Make RAM read-only or writable again (``memory_region_set_readonly``).

        Args:
            readonly: True to reject guest writes.
        """
        if readonly == self._readonly:
            return
        memory_region_transaction_begin()
        try:
            self._readonly = readonly
            _mark_pending(self._enabled)
        finally:
            memory_region_transaction_commit()

    def set_size(self, size: int) -> None:
        """Change the region's size (``memory_region_set_size``).

        Args:
            size: the new size in bytes; ``UINT64_MAX`` means 2**64.  RAM
                keeps its contents: only the part inside the new size is
                visible.

        Raises:
            Error: the size is out of range.
        """
        size = _check_size(f"memory region '{self._mr_name}'", size)
        if size == self._size:
            return
        if self._ram is not None and size > len(self._ram):
            raise Error(
                f"set_size: RAM region '{self._mr_name}' has {len(self._ram):#x} bytes "
                f"of storage and cannot grow to {size:#x}; make a new region with "
                "MemoryRegion.ram() instead"
            )
        memory_region_transaction_begin()
        try:
            self._size = size
            _mark_pending(True)
        finally:
            memory_region_transaction_commit()

    def set_address(self, addr: int) -> None:
        """Move the region inside its container (``memory_region_set_address``).

        The region is unmapped and mapped again with the same priority, so it
        becomes the last-added of its priority.

        Args:
            addr: the new offset in :attr:`parent_container`.

        Raises:
            Error: the address is out of range.
        """
        addr = _check_hwaddr(f"moving '{self._mr_name}'", addr)
        if addr == self._addr:
            return
        with memory_region_transaction():
            self._addr = addr
            container = self._container
            if container is not None:
                container.del_subregion(self)
                container._add_subregion_common(addr, self, self._priority)

    def set_alias_offset(self, offset: int) -> None:
        """Move an alias's window (``memory_region_set_alias_offset``).

        Args:
            offset: the new start of the window in :attr:`alias_target`.

        Raises:
            Error: the region is not an alias, or the offset is out of range.
        """
        if self._alias is None:
            raise Error(
                f"set_alias_offset: memory region '{self._mr_name}' is not an alias; "
                "make it with MemoryRegion.alias()"
            )
        offset = _check_hwaddr(f"alias '{self._mr_name}'", offset)
        if offset == self._alias_offset:
            return
        memory_region_transaction_begin()
        try:
            self._alias_offset = offset
            _mark_pending(self._enabled)
        finally:
            memory_region_transaction_commit()

    def invalidate_resolved(self) -> None:
        """Ask the region's ``resolve_read``/``resolve_write`` again.

        Address spaces keep the callables that :class:`MemoryRegionOps`'s
        resolvers returned until the flat view changes; a device whose
        answers depend on its own state (a property applied at realize)
        calls this when that state changes.

        >>> class Dev:
        ...     direct = True
        ...
        ...     def read(self, offset: int, size: int) -> int:
        ...         return 1
        ...
        ...     def write(self, offset: int, value: int, size: int) -> None:
        ...         pass
        ...
        ...     def resolve_read(
        ...         self, offset: int, size: int
        ...     ) -> Callable[[int, int], int] | None:
        ...         return (lambda off, size: 2) if self.direct else None
        >>> ops = MemoryRegionOps[Dev](
        ...     read=Dev.read, write=Dev.write, resolve_read=Dev.resolve_read
        ... )
        >>> dev = Dev()
        >>> mr = MemoryRegion.io(None, "dev", 0x10, ops, dev)
        >>> root = MemoryRegion.container(None, "root", 0x100)
        >>> root.add_subregion(0, mr)
        >>> space = AddressSpace(root)
        >>> space.read(0, 4)  # the resolved callable, not Dev.read
        2
        >>> dev.direct = False
        >>> mr.invalidate_resolved()
        >>> space.read(0, 4)
        1
        """
        for space in _live_address_spaces():
            space._flush_caches()

    # -- dispatch -----------------------------------------------------------------

    def dispatch_read(
        self,
        addr: int,
        size: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        *,
        endianness: Endianness = DEVICE_NATIVE_ENDIAN,
    ) -> MemTxValue:
        """Read ``size`` bytes at offset ``addr`` (``memory_region_dispatch_read``).

        This applies the region's own rules (valid sizes, splitting, byte
        swapping) as if the access came from an address space; RAM, ROM and
        containers reject it, as in QEMU, since their accesses do not go
        through ops.

        Args:
            addr: the offset in the region.
            size: 1, 2, 4 or 8.
            attrs: the transaction attributes.
            endianness: the byte order wanted for the value
                (``DEVICE_NATIVE_ENDIAN``: the target's).

        Returns:
            The result and the value (0 if the access was rejected).

        Raises:
            Error: ``size`` is not 1, 2, 4 or 8.
        """
        _check_access_size(size)
        return MemTxValue(*_dispatch_read(self, addr, size, _op_big(endianness), attrs))

    def dispatch_write(
        self,
        addr: int,
        value: int,
        size: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        *,
        endianness: Endianness = DEVICE_NATIVE_ENDIAN,
    ) -> MemTxResult:
        """Write ``size`` bytes at offset ``addr`` (``memory_region_dispatch_write``).

        Args:
            addr: the offset in the region.
            value: the value; only its low ``size`` bytes are used.
            size: 1, 2, 4 or 8.
            attrs: the transaction attributes.
            endianness: the byte order of ``value``.

        Returns:
            The result of the transaction.

        Raises:
            Error: ``size`` is not 1, 2, 4 or 8.
        """
        _check_access_size(size)
        return _dispatch_write(
            self, addr, value & _LIMITS[size], size, _op_big(endianness), attrs
        )

    @override
    def __repr__(self) -> str:
        return (
            f"<MemoryRegion '{self._mr_name}' {_memory_region_type(self)} "
            f"size={self._size:#x}>"
        )


# The region behind every unassigned address (QEMU's io_mem_unassigned, whose
# name is NULL and prints as "(null)").
_IO_MEM_UNASSIGNED: Final = MemoryRegion._make(None, "(null)", _SIZE_2_64)
_IO_MEM_UNASSIGNED._terminates = True


# ---------------------------------------------------------------------------
# Dispatch to a region (memory.c)


def _check_access_size(size: int) -> None:
    if size not in _ACCESS_SIZES:
        raise Error(f"access size {size!r} is invalid; expected 1, 2, 4 or 8 bytes")


def _op_big(endianness: Endianness) -> bool:
    if endianness is DEVICE_NATIVE_ENDIAN:
        return _target_big
    return endianness is DEVICE_BIG_ENDIAN


def _bswap(value: int, size: int) -> int:
    return int.from_bytes(value.to_bytes(size, "little"), "big")


def _log_invalid(
    mr: MemoryRegion, addr: int, size: int, is_write: bool, why: str
) -> None:
    kind = "write" if is_write else "read"
    qemu_log_mask(
        _LOG_BAD_ACCESS,
        f"Invalid {kind} at addr 0x{addr:X}, size {size}, region '{mr._mr_name}', "
        f"reason: {why}\n",
    )


def _access_valid(
    mr: MemoryRegion, addr: int, size: int, is_write: bool, attrs: MemTxAttrs
) -> bool:
    # memory_region_access_valid
    ops = mr._ops
    if ops.accepts is not None and not ops.accepts(addr, size, is_write, attrs):
        _log_invalid(mr, addr, size, is_write, "rejected")
        return False
    valid = ops.valid
    if not valid.unaligned and addr & (size - 1):
        _log_invalid(mr, addr, size, is_write, "unaligned")
        return False
    # Treat zero as compatibility all valid.
    if not valid.max_access_size:
        return True
    if size > valid.max_access_size or size < valid.min_access_size:
        _log_invalid(
            mr,
            addr,
            size,
            is_write,
            f"invalid size (min:{valid.min_access_size} max:{valid.max_access_size})",
        )
        return False
    return True


def _bad_read_value(read: object, value: object) -> Error:
    func = getattr(read, "__func__", read)
    name = getattr(func, "__qualname__", repr(func))
    return Error(
        f"MMIO read callback {name} returned {value!r}; expected an int "
        "(the register value; return 0 for registers that read as zero)"
    )


def _adjusted_access_size(ops: _BoundOps, size: int) -> int:
    return max(min(size, ops.impl_max), ops.impl_min)


def _read_adjusted(
    mr: MemoryRegion, addr: int, size: int, attrs: MemTxAttrs
) -> tuple[MemTxResult, int]:
    # access_with_adjusted_size with the read accessors.
    ops = mr._ops
    access_size = _adjusted_access_size(ops, size)
    access_mask = _LIMITS[access_size]
    big = _dev_big(ops)
    value = 0
    result = MEMTX_OK
    read = ops.read
    read_attrs = ops.read_attrs
    for i in range(0, size, access_size):
        shift = (size - access_size - i) * 8 if big else i * 8
        a = (addr + i) & _HWADDR_MASK
        if read is not None:
            tmp = read(a, access_size)
        else:
            assert read_attrs is not None
            r, tmp = read_attrs(a, access_size, attrs)
            result |= r
        if not isinstance(tmp, int):
            raise _bad_read_value(read or read_attrs, tmp)
        tmp &= access_mask
        value |= tmp << shift if shift >= 0 else tmp >> -shift
    return result, value


def _write_adjusted(
    mr: MemoryRegion, addr: int, value: int, size: int, attrs: MemTxAttrs
) -> MemTxResult:
    ops = mr._ops
    access_size = _adjusted_access_size(ops, size)
    access_mask = _LIMITS[access_size]
    big = _dev_big(ops)
    result = MEMTX_OK
    write = ops.write
    write_attrs = ops.write_attrs
    for i in range(0, size, access_size):
        shift = (size - access_size - i) * 8 if big else i * 8
        tmp = (value >> shift if shift >= 0 else value << -shift) & access_mask
        a = (addr + i) & _HWADDR_MASK
        if write is not None:
            write(a, tmp, access_size)
        else:
            assert write_attrs is not None
            result |= write_attrs(a, tmp, access_size, attrs)
    return result


def _dispatch_read(
    mr: MemoryRegion, addr: int, size: int, op_big: bool, attrs: MemTxAttrs
) -> tuple[MemTxResult, int]:
    # memory_region_dispatch_read
    while mr._alias is not None:
        addr = (mr._alias_offset + addr) & _HWADDR_MASK
        mr = mr._alias
    if not _access_valid(mr, addr, size, False, attrs):
        return MEMTX_DECODE_ERROR, 0
    result, value = _read_adjusted(mr, addr, size, attrs)
    value &= _LIMITS[size]
    if size > 1 and op_big != _dev_big(mr._ops):
        value = _bswap(value, size)
    return result, value


def _dispatch_write(
    mr: MemoryRegion, addr: int, value: int, size: int, op_big: bool, attrs: MemTxAttrs
) -> MemTxResult:
    # memory_region_dispatch_write; ``value`` fits in ``size`` bytes.
    while mr._alias is not None:
        addr = (mr._alias_offset + addr) & _HWADDR_MASK
        mr = mr._alias
    if not _access_valid(mr, addr, size, True, attrs):
        return MEMTX_DECODE_ERROR
    if size > 1 and op_big != _dev_big(mr._ops):
        value = _bswap(value, size)
    return _write_adjusted(mr, addr, value, size, attrs)


def _memory_access_size(mr: MemoryRegion, length: int, addr: int) -> int:
    # physmem.c memory_access_size: the largest piece of a buffer access.
    ops = mr._ops
    access_size_max = ops.valid.max_access_size or 4
    if not ops.impl_unaligned:
        align_size_max = addr & -addr
        if align_size_max != 0 and align_size_max < access_size_max:
            access_size_max = align_size_max
    length = min(length, access_size_max)
    return 1 << (length.bit_length() - 1)


# ---------------------------------------------------------------------------
# Rendering (memory.c render_memory_region, flatview_simplify)


@final
class _FlatRange:
    __slots__ = ("mr", "offset_in_region", "readonly", "size", "start")

    def __init__(
        self, start: int, size: int, mr: MemoryRegion, offset: int, readonly: bool
    ) -> None:
        self.start = start
        self.size = size
        self.mr = mr
        self.offset_in_region = offset
        self.readonly = readonly


def _render_memory_region(
    view: list[_FlatRange],
    mr: MemoryRegion,
    base: int,
    clip_start: int,
    clip_end: int,
    readonly: bool,
) -> None:
    if not mr._enabled:
        return
    base += mr._addr
    readonly = readonly or mr._readonly
    start = base
    end = base + mr._size
    # addrrange_intersects(tmp, clip)
    if not ((clip_start <= start < clip_end) or (start <= clip_start < end)):
        return
    clip_start = max(start, clip_start)
    clip_end = min(end, clip_end)
    if mr._alias is not None:
        base -= mr._alias._addr
        base -= mr._alias_offset
        _render_memory_region(view, mr._alias, base, clip_start, clip_end, readonly)
        return
    for sub in mr._subregions:
        _render_memory_region(view, sub, base, clip_start, clip_end, readonly)
    if not mr._terminates:
        return
    offset_in_region = clip_start - base
    base = clip_start
    remain = clip_end - clip_start
    i = 0
    while i < len(view) and remain:
        fr = view[i]
        fr_end = fr.start + fr.size
        if base >= fr_end:
            i += 1
            continue
        if base < fr.start:
            now = min(remain, fr.start - base)
            view.insert(i, _FlatRange(base, now, mr, offset_in_region, readonly))
            i += 1
            base += now
            offset_in_region += now
            remain -= now
        now = min(base + remain, fr_end) - base
        base += now
        offset_in_region += now
        remain -= now
        i += 1
    if remain:
        view.insert(i, _FlatRange(base, remain, mr, offset_in_region, readonly))


def _generate_memory_topology(root: MemoryRegion) -> list[_FlatRange]:
    view: list[_FlatRange] = []
    _render_memory_region(view, root, 0, 0, _SIZE_2_64, False)
    # flatview_simplify: merge adjacent ranges of one region.
    merged: list[_FlatRange] = []
    for fr in view:
        if merged:
            prev = merged[-1]
            if (
                prev.start + prev.size == fr.start
                and prev.mr is fr.mr
                and prev.offset_in_region + prev.size == fr.offset_in_region
                and prev.readonly == fr.readonly
            ):
                prev.size += fr.size
                continue
        merged.append(fr)
    return merged


def _flatview_root(mr: MemoryRegion) -> MemoryRegion | None:
    # memory_region_get_flatview_root, for the "Root memory region" line.
    while mr._enabled:
        if mr._alias is not None:
            if not mr._alias_offset and mr._size >= mr._alias._size:
                mr = mr._alias
                continue
        elif not mr._terminates:
            found = 0
            nxt: MemoryRegion | None = None
            for child in mr._subregions:
                if child._enabled:
                    found += 1
                    if found > 1:
                        nxt = None
                        break
                    if not child._addr and mr._size >= child._size:
                        nxt = child
            if found == 0:
                return None
            if nxt is not None:
                mr = nxt
                continue
        return mr
    return None


# ---------------------------------------------------------------------------
# Address spaces (physmem.c)

# Fast-path cache entries, per access size and address: (offset in the
# region, the device's bound callback, the largest value of that size).  A
# fast entry is made for an access that needs no checks, splitting, widening
# or byte swap, so a hit calls the device at once; RAM accesses that fit get
# one too.  Other accesses get a slow entry (limit -1) that sends them down
# QEMU's full path, so a miss costs the lookup only once.
_ReadEntry = tuple[int, Callable[[int, int], int], int]
_WriteEntry = tuple[int, Callable[[int, int, int], None], int]
_ReadCache = dict[int, dict[int, _ReadEntry]]
_WriteCache = dict[int, dict[int, _WriteEntry]]
# Entries per address space before the caches are emptied (like a TLB flush).
_CACHE_MAX: Final = 4096


def _read_caches() -> _ReadCache:
    return {size: {} for size in _ACCESS_SIZES}


def _write_caches() -> _WriteCache:
    return {size: {} for size in _ACCESS_SIZES}


@final
class _Section:
    """A flat range with everything dispatch needs computed once."""

    __slots__ = (
        "delta",
        "dev_big",
        "end",
        "impl_max",
        "impl_min",
        "mr",
        "offset_in_region",
        "plans",
        "ram",
        "ram_read",
        "ram_write",
        "read",
        "readonly",
        "resolve_read",
        "resolve_write",
        "start",
        "unaligned_ok",
        "valid_sizes",
        "write",
    )

    def __init__(
        self, start: int, end: int, mr: MemoryRegion, offset: int, readonly: bool
    ) -> None:
        self.start = start
        self.end = end
        self.mr = mr
        self.offset_in_region = offset
        self.readonly = readonly
        # Offset in the region = address - delta.
        self.delta = start - offset
        self.ram = ram = mr._ram
        # RAM accessors for each byte order, bound to the bytearray.
        self.ram_read: tuple[Callable[[int, int], int], ...] = ()
        self.ram_write: tuple[Callable[[int, int, int], None], ...] = ()
        if ram is not None:
            self.ram_read = (
                types.MethodType(_ram_read_le, ram),
                types.MethodType(_ram_read_be, ram),
            )
            if not mr._readonly:
                self.ram_write = (
                    types.MethodType(_ram_write_le, ram),
                    types.MethodType(_ram_write_be, ram),
                )
        ops = mr._ops
        self.unaligned_ok = ops.valid.unaligned
        self.read = ops.read
        self.write = ops.write
        # Resolved accesses stand for the device's own callbacks: not while
        # the MMIO tracepoints wrap them (set_tracing).
        raw_read, raw_write = ops.raw[0], ops.raw[1]
        self.resolve_read = ops.resolve_read if ops.read is raw_read else None
        self.resolve_write = ops.resolve_write if ops.write is raw_write else None
        self.dev_big = _dev_big(ops)
        self.impl_min = ops.impl_min
        self.impl_max = ops.impl_max
        # Bit N of valid_sizes is set if ops.valid accepts N-byte accesses;
        # nothing is cached for regions with an accepts hook (it sees the
        # attributes), for RAM and for unassigned addresses.
        valid = ops.valid
        cacheable = (
            mr._ram is None and ops.accepts is None and mr is not _IO_MEM_UNASSIGNED
        )
        self.valid_sizes = 0
        if cacheable:
            for size in _ACCESS_SIZES:
                if not valid.max_access_size or (
                    valid.min_access_size <= size <= valid.max_access_size
                ):
                    self.valid_sizes |= 1 << size
        self.plans: dict[tuple[int, bool], _AdjustedAccess] = {}

    def _offset(self, addr: int, size: int) -> int | None:
        """Return the region offset if an access passes ``ops.valid``, else None."""
        if not self.valid_sizes >> size & 1:
            return None
        off = addr - self.delta
        if not self.unaligned_ok and off & (size - 1):
            return None
        return off

    def _direct(self, size: int, big: bool) -> bool:
        """Return True if the callback handles the access as it is."""
        return self.impl_min <= size <= self.impl_max and (
            size == 1 or big == self.dev_big
        )

    def _plan(self, size: int, big: bool) -> _AdjustedAccess:
        plan = self.plans.get((size, big))
        if plan is None:
            plan = _AdjustedAccess(self, size, big)
            self.plans[size, big] = plan
        return plan

    def read_entry(self, addr: int, size: int, big: bool) -> _ReadEntry:
        if self.ram_read:
            if self.end - addr >= size:
                return (addr - self.delta, self.ram_read[big], _LIMITS[size])
            return _SLOW_READ
        off = self._offset(addr, size)
        if off is None or self.read is None:
            return _SLOW_READ
        if self._direct(size, big):
            resolve = self.resolve_read
            read = None if resolve is None else resolve(off, size)
            return (off, self.read if read is None else read, _LIMITS[size])
        return (off, self._plan(size, big).read, _LIMITS[size])

    def write_entry(self, addr: int, size: int, big: bool) -> _WriteEntry:
        if self.ram_write:
            if self.end - addr >= size:
                return (addr - self.delta, self.ram_write[big], _LIMITS[size])
            return _SLOW_WRITE
        off = self._offset(addr, size)
        if off is None or self.write is None:
            return _SLOW_WRITE
        if self._direct(size, big):
            resolve = self.resolve_write
            write = None if resolve is None else resolve(off, size)
            return (off, self.write if write is None else write, _LIMITS[size])
        return (off, self._plan(size, big).write, _LIMITS[size])


@final
class _AdjustedAccess:
    """A precomputed ``access_with_adjusted_size`` for one size and byte order.

    The pieces, their shifts and the byte swap of ``adjust_endianness`` are
    worked out once, when an address first needs them.
    """

    __slots__ = (
        "access_size",
        "dev_read",
        "dev_write",
        "limit",
        "mask",
        "steps",
        "swap",
    )

    def __init__(self, section: _Section, size: int, big: bool) -> None:
        self.dev_read = section.read
        self.dev_write = section.write
        access_size = max(min(size, section.impl_max), section.impl_min)
        self.access_size = access_size
        self.mask = _LIMITS[access_size]
        self.limit = _LIMITS[size]
        self.steps = tuple(
            (i, (size - access_size - i) * 8 if section.dev_big else i * 8)
            for i in range(0, size, access_size)
        )
        self.swap = size > 1 and big != section.dev_big

    def read(self, off: int, size: int) -> int:
        read = self.dev_read
        assert read is not None
        access_size = self.access_size
        mask = self.mask
        value = 0
        for i, shift in self.steps:
            tmp = read(off + i, access_size)
            try:
                tmp &= mask
            except TypeError:
                raise _bad_read_value(read, tmp) from None
            value |= tmp << shift if shift >= 0 else tmp >> -shift
        value &= self.limit
        if self.swap:
            value = _bswap(value, size)
        return value

    def write(self, off: int, value: int, size: int) -> None:
        write = self.dev_write
        assert write is not None
        if self.swap:
            value = _bswap(value, size)
        access_size = self.access_size
        mask = self.mask
        for i, shift in self.steps:
            tmp = (value >> shift if shift >= 0 else value << -shift) & mask
            write(off + i, tmp, access_size)


RamBuffer = bytearray | mmap.mmap
"""The storage of a RAM region: an anonymous mapping, or a bytearray when empty."""


def _alloc_ram(name: str, size: int) -> RamBuffer:
    """Zero-filled RAM of *size* bytes, allocated lazily by the host.

    Raises:
        Error: the host refuses the mapping, in QEMU's words.
    """
    if size == 0:
        return bytearray()
    try:
        return mmap.mmap(-1, size)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or "Cannot allocate memory"
        raise Error(f"cannot set up guest memory '{name}': {reason}") from None


def _ram_read_le(ram: RamBuffer, off: int, size: int) -> int:
    return int.from_bytes(ram[off : off + size], "little")


def _ram_read_be(ram: RamBuffer, off: int, size: int) -> int:
    return int.from_bytes(ram[off : off + size], "big")


def _ram_write_le(ram: RamBuffer, off: int, value: int, size: int) -> None:
    ram[off : off + size] = value.to_bytes(size, "little")


def _ram_write_be(ram: RamBuffer, off: int, value: int, size: int) -> None:
    ram[off : off + size] = value.to_bytes(size, "big")


def _read_nothing(off: int, size: int) -> int:
    return 0


def _write_nothing(off: int, value: int, size: int) -> None:
    return None


# The entries of accesses that take the full path: a limit of -1 sends the
# value check to it.
_SLOW_READ: Final[_ReadEntry] = (0, _read_nothing, -1)
_SLOW_WRITE: Final[_WriteEntry] = (0, _write_nothing, -1)


def _access_allowed(
    mr: MemoryRegion, attrs: MemTxAttrs, addr: int, length: int
) -> bool:
    # flatview_access_allowed
    if not attrs.memory or mr._ram is not None:
        return True
    qemu_log_mask(
        _LOG_BAD_ACCESS,
        f"Invalid access to non-RAM device at addr 0x{addr:X}, size {length}, "
        f"region '{mr._mr_name}'\n",
    )
    return False


@final
class FlatRange(NamedTuple):
    """One range of an address space's flat view (QEMU's ``FlatRange``)."""

    start: int
    """The first address of the range."""
    size: int
    """The length in bytes."""
    mr: MemoryRegion
    """The terminating region the range shows (RAM, ROM or I/O)."""
    offset_in_region: int
    """The offset in ``mr`` of the range's first byte."""
    readonly: bool
    """Guest writes are rejected (ROM or a read-only container)."""


@final
class AddressSpace:
    r"""A view of a memory region tree as the bus masters see it.

    QEMU's ``AddressSpace`` with its ``FlatView``: the tree under ``root`` is
    rendered into sorted, non-overlapping ranges when it changes (at the end
    of a transaction), and accesses are dispatched by binary search over the
    range starts.

    Accesses never raise for guest-controlled input: unassigned addresses,
    rejected sizes and unaligned accesses give :data:`MEMTX_DECODE_ERROR`
    (reads give 0) and an ``invalid_mem`` log line in QEMU's wording.
    Programming errors (an access size that is not 1, 2, 4 or 8) raise
    :class:`~qemu_api.error.Error`.

    Value accesses (:meth:`read`, :meth:`write`, ``ld*``, ``st*``) go to one
    region, as a CPU load or store does; an access at the end of RAM that
    does not fit is rejected.  Buffer accesses (:meth:`read_buf`,
    :meth:`write_buf`, :meth:`rw`) are cut into pieces that may fall in
    different regions, as ``address_space_rw`` does.

    A device that masters DMA builds its address space in ``realize`` from
    its ``memory`` link and passes ``owner=self``: the address space is then
    destroyed when the device is unrealized (or finalized, if it was made
    before realize), so it stops being rendered and leaves ``info mtree``.

    Args:
        root: the root of the tree.
        name: the name shown by ``info mtree``.
        owner: the object whose life bounds the address space's, or None.

    Raises:
        Error: ``root`` is not a :class:`MemoryRegion`, or the owner is
            finalized.

    >>> root = MemoryRegion.container(None, "bus", 0x10000)
    >>> root.add_subregion(0x100, MemoryRegion.ram(None, "sram", 0x100))
    >>> bus = AddressSpace(root, "dma")
    >>> bus.write_buf(0x1FE, b"\x01\x02\x03\x04")  # runs past the end of sram
    <MemTxResult.MEMTX_DECODE_ERROR: 2>
    >>> buf = bytearray(4)
    >>> bus.read_buf(0x1FC, buf), bytes(buf)
    (<MemTxResult.MEMTX_OK: 0>, b'\x00\x00\x01\x02')
    """

    __slots__ = (
        "__weakref__",
        "_cached",
        "_listeners",
        "_name",
        "_owner",
        "_rc",
        "_rcx",
        "_root",
        "_sections",
        "_starts",
        "_wc",
        "_wcx",
    )

    def __init__(
        self,
        root: MemoryRegion,
        name: str = "anonymous",
        *,
        owner: Object | None = None,
    ) -> None:
        if not isinstance(root, MemoryRegion):
            raise Error(
                f"AddressSpace {name!r}: root is a {type(root).__name__}; expected "
                "a MemoryRegion (usually a container)"
            )
        self._root = root
        self._name = name
        self._starts: list[int] = [0]
        self._sections: list[_Section] = []
        self._rc: _ReadCache = _read_caches()
        self._wc: _WriteCache = _write_caches()
        self._rcx: _ReadCache = _read_caches()
        self._wcx: _WriteCache = _write_caches()
        self._cached = 0
        self._owner = owner
        if owner is not None:
            owner.own_resource(self)
        self._listeners: list[Callable[[AddressSpace], None]] = []
        _address_spaces.append(weakref.ref(self))
        self._update_topology()

    @property
    def name(self) -> str:
        """The address space's name (``as->name``)."""
        return self._name

    @property
    def root(self) -> MemoryRegion:
        """The root of the rendered tree."""
        return self._root

    @property
    def owner(self) -> Object | None:
        """The object whose life bounds this address space's, or None."""
        return self._owner

    def destroy(self) -> None:
        """Stop rendering this address space (``address_space_destroy``).

        Accesses keep using the last view.
        """
        if self._owner is not None:
            self._owner.disown_resource(self)
            self._owner = None
        self._unregister()

    def _unregister(self) -> None:
        for i, ref in enumerate(_address_spaces):
            if ref() is self:
                del _address_spaces[i]
                break

    def owner_quiesce(self) -> None:
        """Keep rendering while the owner is unrealized."""

    def owner_release(self) -> None:
        """The owner is gone: destroy the address space."""
        self._owner = None
        self._unregister()

    def _update_topology(self) -> None:
        sections: list[_Section] = []
        pos = 0
        for fr in _generate_memory_topology(self._root):
            if fr.start > pos:
                sections.append(_Section(pos, fr.start, _IO_MEM_UNASSIGNED, pos, False))
            sections.append(
                _Section(
                    fr.start,
                    fr.start + fr.size,
                    fr.mr,
                    fr.offset_in_region,
                    fr.readonly,
                )
            )
            pos = fr.start + fr.size
        if pos < _SIZE_2_64:
            sections.append(_Section(pos, _SIZE_2_64, _IO_MEM_UNASSIGNED, pos, False))
        # Views are replaced, never changed, so a dispatch in progress keeps a
        # consistent one (QEMU's RCU).
        self._starts = [s.start for s in sections]
        self._sections = sections
        self._flush_caches()
        for listener in list(self._listeners):
            listener(self)

    def add_topology_listener(self, listener: Callable[[AddressSpace], None]) -> None:
        """Call *listener(space)* each time the flat view is rendered again.

        This is the part of QEMU's ``MemoryListener`` that an accelerator
        needs: the CPU engine mirrors :meth:`flat_ranges` in its own mappings
        and updates them when the view changes (a region added, removed,
        moved, resized, enabled or made read-only).  The listener runs with
        the BQL held, in the thread that committed the change.

        Args:
            listener: the callback; add it once.
        """
        self._listeners.append(listener)

    def remove_topology_listener(
        self, listener: Callable[[AddressSpace], None]
    ) -> None:
        """Stop calling *listener* (no error if it was not added)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def flat_ranges(self) -> list[FlatRange]:
        """Return the current flat view: what each address range maps to.

        The ranges are sorted, do not overlap and leave out unassigned
        addresses.  A RAM or ROM range's bytes are
        ``range.mr.get_ram_ptr()[range.offset_in_region:]``.

        >>> root = MemoryRegion.container(None, "r", 0x10000)
        >>> root.add_subregion(0x1000, MemoryRegion.ram(None, "ram", 0x1000))
        >>> [
        ...     (hex(r.start), r.size, r.mr.name)
        ...     for r in AddressSpace(root).flat_ranges()
        ... ]
        [('0x1000', 4096, 'ram')]
        """
        return [
            FlatRange(s.start, s.end - s.start, s.mr, s.offset_in_region, s.readonly)
            for s in self._sections
            if s.mr is not _IO_MEM_UNASSIGNED
        ]

    def _cache_slot(self) -> None:
        """Make room for one more fast-path entry."""
        self._cached += 1
        if self._cached > _CACHE_MAX:
            self._flush_caches()
            self._cached = 1

    def _flush_caches(self) -> None:
        self._rc = _read_caches()
        self._wc = _write_caches()
        self._rcx = _read_caches()
        self._wcx = _write_caches()
        self._cached = 0

    def _translate(self, addr: int) -> _Section:
        return self._sections[bisect_right(self._starts, addr) - 1]

    # -- value accesses (hot path) ----------------------------------------------

    def read(
        self,
        addr: int,
        size: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load ``size`` bytes at ``addr`` in the target's byte order.

        This is the MMIO path of a CPU load (and of qtest's ``readl``): the
        value comes from one region.  When the region is an I/O region whose
        ``impl`` sizes cover ``size``, without an ``accepts`` hook, and the
        access is aligned (or unaligned accesses are valid), the device's
        ``read`` is called directly after one lookup of the address in a
        cache: nothing is allocated.  Other accesses take QEMU's full path.

        Args:
            addr: the guest physical address, 0 to 2**64 - 1.
            size: 1, 2, 4 or 8.
            attrs: the transaction attributes.
            result: a slot that collects the :class:`MemTxResult` (QEMU's
                ``MemTxResult *result``; failures are or-ed in, success
                leaves it unchanged); None to ignore it.

        Returns:
            The value, 0 if the access failed.

        Raises:
            Error: ``size`` is not 1, 2, 4 or 8.
        """
        try:
            off, read, limit = self._rc[size][addr]
        except KeyError:
            return self._read_miss(addr, size, _target_big, attrs, result)
        value = read(off, size)
        try:
            if value <= limit and value >= 0:
                return value
        except TypeError:
            raise _bad_read_value(read, value) from None
        return self._read_masked(addr, size, _target_big, attrs, result, value, limit)

    def write(
        self,
        addr: int,
        value: int,
        size: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> MemTxResult:
        """Store ``size`` bytes at ``addr`` in the target's byte order.

        The store counterpart of :meth:`read`, with the same fast path.

        Args:
            addr: the guest physical address.
            value: the value; only its low ``size`` bytes are stored.
            size: 1, 2, 4 or 8.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.

        Raises:
            Error: ``size`` is not 1, 2, 4 or 8.
        """
        try:
            off, write, limit = self._wc[size][addr]
        except KeyError:
            return self._write_miss(addr, value, size, _target_big, attrs)
        if value <= limit and value >= 0:
            write(off, value, size)
            return MEMTX_OK
        if limit < 0:
            return self._store(addr, value, size, _target_big, attrs)
        write(off, value & limit, size)
        return MEMTX_OK

    def _read_miss(
        self,
        addr: int,
        size: int,
        big: bool,
        attrs: MemTxAttrs,
        result: MemTxResultSlot | None,
    ) -> int:
        if size in _ACCESS_SIZES and 0 <= addr <= UINT64_MAX:
            entry = self._translate(addr).read_entry(addr, size, big)
            self._cache_slot()
            caches = self._rc if big == _target_big else self._rcx
            caches[size][addr] = entry
            return self._ld(addr, size, big, attrs, result)
        return self._load(addr, size, big, attrs, result)

    def _write_miss(
        self, addr: int, value: int, size: int, big: bool, attrs: MemTxAttrs
    ) -> MemTxResult:
        if size in _ACCESS_SIZES and 0 <= addr <= UINT64_MAX:
            entry = self._translate(addr).write_entry(addr, size, big)
            self._cache_slot()
            caches = self._wc if big == _target_big else self._wcx
            caches[size][addr] = entry
            return self._st(addr, value, size, big, attrs)
        return self._store(addr, value, size, big, attrs)

    def _ld(
        self,
        addr: int,
        size: int,
        big: bool,
        attrs: MemTxAttrs,
        result: MemTxResultSlot | None,
    ) -> int:
        caches = self._rc if big == _target_big else self._rcx
        try:
            off, read, limit = caches[size][addr]
        except KeyError:
            return self._read_miss(addr, size, big, attrs, result)
        value = read(off, size)
        try:
            if value <= limit and value >= 0:
                return value
        except TypeError:
            raise _bad_read_value(read, value) from None
        return self._read_masked(addr, size, big, attrs, result, value, limit)

    def _read_masked(
        self,
        addr: int,
        size: int,
        big: bool,
        attrs: MemTxAttrs,
        result: MemTxResultSlot | None,
        value: int,
        limit: int,
    ) -> int:
        """Finish a cached read whose value is out of range, or a slow one."""
        if limit < 0:
            return self._load(addr, size, big, attrs, result)
        return value & limit

    def _st(
        self, addr: int, value: int, size: int, big: bool, attrs: MemTxAttrs
    ) -> MemTxResult:
        caches = self._wc if big == _target_big else self._wcx
        try:
            off, write, limit = caches[size][addr]
        except KeyError:
            return self._write_miss(addr, value, size, big, attrs)
        if value <= limit and value >= 0:
            write(off, value, size)
            return MEMTX_OK
        if limit < 0:
            return self._store(addr, value, size, big, attrs)
        write(off, value & limit, size)
        return MEMTX_OK

    def _load(
        self,
        addr: int,
        size: int,
        big: bool,
        attrs: MemTxAttrs,
        result: MemTxResultSlot | None,
    ) -> int:
        # address_space_ld*_internal
        _check_access_size(size)
        addr &= _HWADDR_MASK
        section = self._translate(addr)
        mr = section.mr
        off = addr - section.delta
        ram = section.ram
        if ram is not None and section.end - addr >= size:
            # RAM case (memory_access_is_direct for reads).
            res = MEMTX_OK
            value = int.from_bytes(ram[off : off + size], "big" if big else "little")
        else:
            res, value = _dispatch_read(mr, off, size, big, attrs)
        if result is not None:
            result.value |= res
        return value

    def _store(
        self, addr: int, value: int, size: int, big: bool, attrs: MemTxAttrs
    ) -> MemTxResult:
        # address_space_st*_internal
        _check_access_size(size)
        addr &= _HWADDR_MASK
        value &= _LIMITS[size]
        section = self._translate(addr)
        mr = section.mr
        off = addr - section.delta
        ram = section.ram
        if (
            ram is not None
            and section.end - addr >= size
            and (not mr._readonly or attrs.debug)
        ):
            ram[off : off + size] = value.to_bytes(size, "big" if big else "little")
            return MEMTX_OK
        return _dispatch_write(mr, off, value, size, big, attrs)

    def ldub(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load a byte (``address_space_ldub``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 1, _target_big, attrs, result)

    def lduw(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 16 bits in the target's byte order (``address_space_lduw``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 2, _target_big, attrs, result)

    def lduw_le(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 16 bits little-endian (``address_space_lduw_le``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 2, False, attrs, result)

    def lduw_be(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 16 bits big-endian (``address_space_lduw_be``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 2, True, attrs, result)

    def ldl(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 32 bits in the target's byte order (``address_space_ldl``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 4, _target_big, attrs, result)

    def ldl_le(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 32 bits little-endian (``address_space_ldl_le``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 4, False, attrs, result)

    def ldl_be(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 32 bits big-endian (``address_space_ldl_be``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 4, True, attrs, result)

    def ldq(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 64 bits in the target's byte order (``address_space_ldq``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 8, _target_big, attrs, result)

    def ldq_le(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 64 bits little-endian (``address_space_ldq_le``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 8, False, attrs, result)

    def ldq_be(
        self,
        addr: int,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
        result: MemTxResultSlot | None = None,
    ) -> int:
        """Load 64 bits big-endian (``address_space_ldq_be``).

        Args:
            addr: the guest physical address.
            attrs: the transaction attributes.
            result: a slot that collects failures, or None.

        Returns:
            The value, 0 if the access failed.
        """
        return self._ld(addr, 8, True, attrs, result)

    def stb(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store a byte (``address_space_stb``).

        Args:
            addr: the guest physical address.
            value: the value; only its low byte is stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 1, _target_big, attrs)

    def stw(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 16 bits in the target's byte order (``address_space_stw``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 16 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 2, _target_big, attrs)

    def stw_le(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 16 bits little-endian (``address_space_stw_le``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 16 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 2, False, attrs)

    def stw_be(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 16 bits big-endian (``address_space_stw_be``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 16 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 2, True, attrs)

    def stl(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 32 bits in the target's byte order (``address_space_stl``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 32 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 4, _target_big, attrs)

    def stl_le(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 32 bits little-endian (``address_space_stl_le``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 32 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 4, False, attrs)

    def stl_be(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 32 bits big-endian (``address_space_stl_be``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 32 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 4, True, attrs)

    def stq(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 64 bits in the target's byte order (``address_space_stq``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 64 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 8, _target_big, attrs)

    def stq_le(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 64 bits little-endian (``address_space_stq_le``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 64 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 8, False, attrs)

    def stq_be(
        self, addr: int, value: int, attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED
    ) -> MemTxResult:
        """Store 64 bits big-endian (``address_space_stq_be``).

        Args:
            addr: the guest physical address.
            value: the value; only its low 64 bits are stored.
            attrs: the transaction attributes.

        Returns:
            The result of the transaction.
        """
        return self._st(addr, value, 8, True, attrs)

    # -- buffer accesses --------------------------------------------------------

    def read_buf(
        self,
        addr: int,
        buf: bytearray | memoryview,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> MemTxResult:
        """Fill ``buf`` from ``addr`` onwards (``address_space_read``).

        The buffer is cut into pieces per region: RAM is copied, I/O regions
        are read in the largest accesses they accept (each piece in the
        device's byte order), unassigned parts read as zeros.

        Args:
            addr: the guest physical address of the first byte.
            buf: the writable buffer to fill; its length is the access size.
            attrs: the transaction attributes.

        Returns:
            The results of all pieces, or-ed together.
        """
        return self._rw(addr, memoryview(buf).cast("B"), False, attrs)

    def write_buf(
        self,
        addr: int,
        data: bytes | bytearray | memoryview,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> MemTxResult:
        """Write ``data`` from ``addr`` onwards (``address_space_write``).

        Args:
            addr: the guest physical address of the first byte.
            data: the bytes to write.
            attrs: the transaction attributes.

        Returns:
            The results of all pieces, or-ed together.
        """
        return self._rw(addr, memoryview(data).cast("B"), True, attrs)

    def rw(
        self,
        addr: int,
        buf: bytearray | memoryview,
        is_write: bool,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> MemTxResult:
        """Read into or write from ``buf`` (``address_space_rw``).

        Args:
            addr: the guest physical address of the first byte.
            buf: the buffer.
            is_write: True to write ``buf`` to the guest.
            attrs: the transaction attributes.

        Returns:
            The results of all pieces, or-ed together.
        """
        return self._rw(addr, memoryview(buf).cast("B"), is_write, attrs)

    def _rw(
        self, addr: int, buf: memoryview, is_write: bool, attrs: MemTxAttrs
    ) -> MemTxResult:
        # flatview_read / flatview_write and their _continue loops.
        length = len(buf)
        if length == 0:
            return MEMTX_OK
        addr &= _HWADDR_MASK
        section = self._translate(addr)
        mr_addr = addr - section.delta
        piece = self._clamp(section, addr, length)
        if not _access_allowed(section.mr, attrs, mr_addr, piece):
            return MEMTX_ACCESS_ERROR
        result = MEMTX_OK
        pos = 0
        while True:
            r, piece = self._rw_step(section, mr_addr, buf, pos, piece, is_write, attrs)
            result |= r
            pos += piece
            addr = (addr + piece) & _HWADDR_MASK
            if pos >= length:
                return result
            section = self._translate(addr)
            mr_addr = addr - section.delta
            piece = self._clamp(section, addr, length - pos)

    @staticmethod
    def _clamp(section: _Section, addr: int, length: int) -> int:
        # address_space_translate_internal clamps the length for RAM only:
        # MMIO registers expect full-width accesses.
        if section.ram is not None:
            return min(length, section.end - addr)
        return length

    @staticmethod
    def _rw_step(
        section: _Section,
        mr_addr: int,
        buf: memoryview,
        pos: int,
        piece: int,
        is_write: bool,
        attrs: MemTxAttrs,
    ) -> tuple[MemTxResult, int]:
        mr = section.mr
        if not _access_allowed(mr, attrs, mr_addr, piece):
            return MEMTX_ACCESS_ERROR, piece
        ram = section.ram
        if ram is not None and (not is_write or not mr._readonly or attrs.debug):
            if is_write:
                ram[mr_addr : mr_addr + piece] = buf[pos : pos + piece]
            else:
                buf[pos : pos + piece] = ram[mr_addr : mr_addr + piece]
            return MEMTX_OK, piece
        if mr is _IO_MEM_UNASSIGNED and not qemu_loglevel_mask(_LOG_BAD_ACCESS):
            # Nothing is there: each access would fail and read 0. With no log
            # line to write per access, the whole span is done at once (a
            # gigabyte of unassigned space costs no more than a page).
            if not is_write:
                end = pos + piece
                while pos < end:
                    n = min(end - pos, len(_ZEROS))
                    buf[pos : pos + n] = _ZEROS[:n]
                    pos += n
            return MEMTX_DECODE_ERROR, piece
        piece = _memory_access_size(mr, piece, mr_addr)
        # The value travels in the device's byte order, as through QEMU's
        # host-endian buffer and adjust_endianness.
        big = _dev_big(mr._ops)
        byteorder: Literal["little", "big"] = "big" if big else "little"
        if is_write:
            value = int.from_bytes(buf[pos : pos + piece], byteorder)
            return _dispatch_write(mr, mr_addr, value, piece, big, attrs), piece
        res, value = _dispatch_read(mr, mr_addr, piece, big, attrs)
        buf[pos : pos + piece] = value.to_bytes(piece, byteorder)
        return res, piece

    def write_rom(
        self,
        addr: int,
        data: bytes | bytearray | memoryview,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> MemTxResult:
        r"""Write ``data`` into RAM and ROM, skipping I/O (``address_space_write_rom``).

        Loaders use it to place firmware in ROM, which guest writes cannot
        change.

        Args:
            addr: the guest physical address of the first byte.
            data: the bytes to write.
            attrs: the transaction attributes (unused, as in QEMU).

        Returns:
            Always :data:`MEMTX_OK`, as in QEMU.

        >>> root = MemoryRegion.container(None, "r", 0x100)
        >>> root.add_subregion(0, MemoryRegion.rom(None, "flash", 0x10))
        >>> space = AddressSpace(root)
        >>> space.write_rom(0, b"\xea"), hex(space.ldub(0))
        (<MemTxResult.MEMTX_OK: 0>, '0xea')
        """
        buf = memoryview(data).cast("B")
        length = len(buf)
        pos = 0
        addr &= _HWADDR_MASK
        while pos < length:
            section = self._translate(addr)
            mr_addr = addr - section.delta
            piece = self._clamp(section, addr, length - pos)
            ram = section.ram
            if ram is None:
                piece = _memory_access_size(section.mr, piece, mr_addr)
            else:
                start = mr_addr
                ram[start : start + piece] = buf[pos : pos + piece]
            pos += piece
            addr = (addr + piece) & _HWADDR_MASK
        return MEMTX_OK

    def access_valid(
        self,
        addr: int,
        length: int,
        is_write: bool,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> bool:
        """Check that an access would succeed (``address_space_access_valid``).

        Args:
            addr: the guest physical address of the first byte.
            length: the number of bytes.
            is_write: True for a write.
            attrs: the transaction attributes.

        Returns:
            True if every piece would be accepted.  Rejected pieces are
            logged, as in QEMU.
        """
        addr &= _HWADDR_MASK
        while length > 0:
            section = self._translate(addr)
            mr_addr = addr - section.delta
            piece = self._clamp(section, addr, length)
            mr = section.mr
            direct = section.ram is not None and (
                not is_write or not mr._readonly or attrs.debug
            )
            if not direct:
                # QEMU passes the address-space address here, not mr_addr.
                piece = _memory_access_size(mr, piece, addr)
                if not _access_valid(
                    _resolve_alias(mr), mr_addr, piece, is_write, attrs
                ):
                    return False
            length -= piece
            addr = (addr + piece) & _HWADDR_MASK
        return True

    @override
    def __repr__(self) -> str:
        return f"<AddressSpace '{self._name}' root='{self._root._mr_name}'>"


def _resolve_alias(mr: MemoryRegion) -> MemoryRegion:
    while mr._alias is not None:
        mr = mr._alias
    return mr


# ---------------------------------------------------------------------------
# The machine's memory (physmem.c memory_map_init)

_system_memory: MemoryRegion | None = None
_address_space_memory: AddressSpace | None = None


def reset_system_memory(*, big_endian: bool = False) -> None:
    """Start a new machine's memory: a fresh ``system`` root and ``memory`` space.

    QEMU's ``memory_map_init``, for a new machine or a test.  Every existing
    address space stops being rendered (as after ``address_space_destroy``:
    it keeps its last view); regions mapped in the old root stay there
    (unmap them to reuse them).  Pending transactions are dropped.

    Args:
        big_endian: the target's byte order, used by ``DEVICE_NATIVE_ENDIAN``
            regions and by :meth:`AddressSpace.read`/:meth:`AddressSpace.write`.

    >>> reset_system_memory()
    >>> get_system_memory().size == 2**64, get_address_space_memory().name
    (True, 'memory')
    """
    global _system_memory, _address_space_memory, _target_big
    global _transaction_depth, _update_pending
    _transaction_depth = 0
    _update_pending = False
    _address_spaces.clear()
    _target_big = big_endian
    _system_memory = MemoryRegion.container(None, "system", UINT64_MAX)
    _address_space_memory = AddressSpace(_system_memory, "memory")


def get_system_memory() -> MemoryRegion:
    """Return the machine's root container, ``system`` (2**64 bytes).

    Boards and :mod:`qemu_api.sysbus` map device regions in it.
    """
    if _system_memory is None:
        reset_system_memory()
    assert _system_memory is not None
    return _system_memory


def get_address_space_memory() -> AddressSpace:
    """Return ``address_space_memory``, the CPUs' view of :func:`get_system_memory`."""
    if _address_space_memory is None:
        reset_system_memory()
    assert _address_space_memory is not None
    return _address_space_memory


# ---------------------------------------------------------------------------
# Guest memory for DMA


@final
class GuestAddress:
    """A guest physical address: a 64-bit value with checked arithmetic.

    Like ``vm-memory``'s ``GuestAddress``: adding an offset that a guest
    controls gives None instead of wrapping silently.

    Args:
        value: the address, 0 to 2**64 - 1.

    Raises:
        Error: ``value`` does not fit in 64 bits (a device bug: mask guest
            register values first).

    >>> base = GuestAddress(0x4000_0000)
    >>> base.checked_add(0x10)
    GuestAddress(0x40000010)
    >>> GuestAddress(UINT64_MAX).checked_add(1) is None
    True
    >>> int(base.wrapping_add(-1))
    1073741823
    """

    __slots__ = ("_value",)

    def __init__(self, value: int) -> None:
        self._value = _check_hwaddr("GuestAddress", value)

    def raw_value(self) -> int:
        """Return the address as an int."""
        return self._value

    def checked_add(self, offset: int) -> GuestAddress | None:
        """Return ``self + offset``, or None if it leaves the 64-bit space.

        Args:
            offset: a byte offset; may be negative.
        """
        value = self._value + offset
        if 0 <= value <= UINT64_MAX:
            return GuestAddress(value)
        return None

    def checked_sub(self, offset: int) -> GuestAddress | None:
        """Return ``self - offset``, or None if it leaves the 64-bit space.

        Args:
            offset: a byte offset.
        """
        return self.checked_add(-offset)

    def wrapping_add(self, offset: int) -> GuestAddress:
        """Return ``self + offset`` modulo 2**64 (C's ``hwaddr`` arithmetic).

        Args:
            offset: a byte offset; may be negative.
        """
        return GuestAddress((self._value + offset) & UINT64_MAX)

    def offset_from(self, base: GuestAddress) -> int:
        """Return ``self - base`` as an int (negative if ``base`` is higher).

        Args:
            base: the other address.
        """
        return self._value - base._value

    def __int__(self) -> int:
        return self._value

    def __index__(self) -> int:
        return self._value

    @override
    def __eq__(self, other: object) -> bool:
        if isinstance(other, GuestAddress):
            return self._value == other._value
        return NotImplemented

    def __lt__(self, other: GuestAddress) -> bool:
        return self._value < other._value

    def __le__(self, other: GuestAddress) -> bool:
        return self._value <= other._value

    def __gt__(self, other: GuestAddress) -> bool:
        return self._value > other._value

    def __ge__(self, other: GuestAddress) -> bool:
        return self._value >= other._value

    @override
    def __hash__(self) -> int:
        return hash(self._value)

    @override
    def __repr__(self) -> str:
        return f"GuestAddress({self._value:#x})"


@final
class GuestMemory:
    """Bounds-checked access to guest memory for DMA.

    Wraps an :class:`AddressSpace` (QEMU's ``dma_memory_read``/``write`` and
    the ``ld*_dma``/``st*_dma`` helpers: accesses reach RAM and other
    devices' registers, in pieces) or a RAM/ROM :class:`MemoryRegion` (or an
    alias of one; offsets are then relative to the region).

    Nothing here raises for guest-controlled addresses or lengths: a failed
    access returns an error :class:`MemTxResult`, zeros for the data, and
    logs an ``invalid_mem`` line.  Reads return :class:`MemTxValue` or
    :class:`MemTxBytes`, which unpack as ``result, value``; writes return the
    :class:`MemTxResult`.  Lengths are the device's to bound: reading ``n``
    bytes allocates ``n`` bytes.

    Args:
        target: the address space or RAM region to access.
        attrs: the transaction attributes of every access (the bus master's
            identity, ``memory=True`` to refuse MMIO targets).

    Raises:
        Error: ``target`` is a region that is not RAM or ROM.

    >>> ram = MemoryRegion.ram(None, "ram", 0x100)
    >>> mem = GuestMemory(ram)
    >>> mem.write_u32_le(GuestAddress(0x10), 0xAABBCCDD)
    <MemTxResult.MEMTX_OK: 0>
    >>> res, value = mem.read_u16_be(GuestAddress(0x10))
    >>> res, hex(value)
    (<MemTxResult.MEMTX_OK: 0>, '0xddcc')
    >>> mem.read_bytes(GuestAddress(0xFE), 4).result  # runs past the end
    <MemTxResult.MEMTX_DECODE_ERROR: 2>
    """

    __slots__ = ("_attrs", "_offset", "_ram", "_region", "_size", "_space")

    def __init__(
        self,
        target: AddressSpace | MemoryRegion,
        attrs: MemTxAttrs = MEMTXATTRS_UNSPECIFIED,
    ) -> None:
        self._attrs = attrs
        self._space: AddressSpace | None = None
        self._region: MemoryRegion | None = None
        self._ram: RamBuffer | None = None
        self._offset = 0
        self._size = _SIZE_2_64
        if isinstance(target, AddressSpace):
            self._space = target
            return
        if not isinstance(target, MemoryRegion):
            raise Error(
                f"GuestMemory: target is a {type(target).__name__}; expected an "
                "AddressSpace or a RAM MemoryRegion"
            )
        mr = target
        offset = 0
        size = target._size
        while mr._alias is not None:
            offset += mr._alias_offset
            mr = mr._alias
        if mr._ram is None:
            raise Error(
                f"GuestMemory: memory region '{target._mr_name}' is not RAM or ROM; "
                "DMA into device registers goes through an AddressSpace: use "
                "GuestMemory(get_address_space_memory())"
            )
        self._region = target
        self._ram = mr._ram
        self._offset = offset
        self._size = max(0, min(size, len(mr._ram) - offset))

    @property
    def target(self) -> AddressSpace | MemoryRegion:
        """The address space or region this object accesses."""
        if self._space is not None:
            return self._space
        assert self._region is not None
        return self._region

    def _check(self, addr: GuestAddress, length: int, is_write: bool) -> bool:
        if not isinstance(addr, GuestAddress):
            raise Error(
                f"GuestMemory: address {addr!r} is a {type(addr).__name__}; "
                "expected a GuestAddress (wrap it: GuestAddress(value))"
            )
        if length < 0:
            raise Error(f"GuestMemory: length {length} is negative")
        start = addr._value
        region = self._region
        if region is None:
            if start + length > _SIZE_2_64:
                qemu_log_mask(
                    _LOG_BAD_ACCESS,
                    f"Invalid DMA {'write' if is_write else 'read'} at addr "
                    f"0x{start:X}, size {length}, reason: wraps past the end of "
                    "the address space\n",
                )
                return False
            return True
        if start + length > self._size:
            _log_invalid(region, start, length, is_write, "out of bounds")
            return False
        if is_write and region._readonly | _resolve_alias(region)._readonly:
            _log_invalid(region, start, length, is_write, "rejected")
            return False
        return True

    def read_into(self, addr: GuestAddress, buf: bytearray | memoryview) -> MemTxResult:
        """Fill ``buf`` from guest memory at ``addr``, without copying twice.

        Args:
            addr: the guest address of the first byte.
            buf: the writable buffer; its length is the access size.

        Returns:
            The result; on failure ``buf`` holds zeros where nothing was read.
        """
        view = memoryview(buf).cast("B")
        length = len(view)
        if not self._check(addr, length, False):
            view[:] = bytes(length)
            return MEMTX_DECODE_ERROR
        if self._space is not None:
            return self._space.read_buf(addr._value, view, self._attrs)
        assert self._ram is not None
        start = self._offset + addr._value
        view[:] = self._ram[start : start + length]
        return MEMTX_OK

    def read_bytes(self, addr: GuestAddress, length: int) -> MemTxBytes:
        """Read ``length`` bytes at ``addr``.

        Args:
            addr: the guest address of the first byte.
            length: the number of bytes.

        Returns:
            The result and the bytes (zeros where the access failed).

        Raises:
            Error: ``length`` is negative or ``addr`` is not a GuestAddress.
        """
        buf = bytearray(length if length > 0 else 0)
        if length < 0:
            raise Error(f"GuestMemory: length {length} is negative")
        return MemTxBytes(self.read_into(addr, buf), bytes(buf))

    def write_bytes(
        self, addr: GuestAddress, data: bytes | bytearray | memoryview
    ) -> MemTxResult:
        """Write ``data`` at ``addr``.

        Args:
            addr: the guest address of the first byte.
            data: the bytes to write.

        Returns:
            The result; nothing is written to a region if any byte is out of
            bounds.
        """
        view = memoryview(data).cast("B")
        length = len(view)
        if not self._check(addr, length, True):
            return MEMTX_DECODE_ERROR
        if self._space is not None:
            return self._space.write_buf(addr._value, view, self._attrs)
        assert self._ram is not None
        start = self._offset + addr._value
        self._ram[start : start + length] = view
        return MEMTX_OK

    def is_valid(self, addr: GuestAddress, length: int, is_write: bool) -> bool:
        """Return True if an access of ``length`` bytes at ``addr`` would succeed.

        Args:
            addr: the guest address of the first byte.
            length: the number of bytes.
            is_write: True for a write.
        """
        if not self._check(addr, length, is_write):
            return False
        if self._space is not None:
            return self._space.access_valid(addr._value, length, is_write, self._attrs)
        return True

    def _read_int(
        self, addr: GuestAddress, size: int, byteorder: Literal["little", "big"]
    ) -> MemTxValue:
        buf = bytearray(size)
        res = self.read_into(addr, buf)
        return MemTxValue(res, int.from_bytes(buf, byteorder))

    def _write_int(
        self,
        addr: GuestAddress,
        value: int,
        size: int,
        byteorder: Literal["little", "big"],
    ) -> MemTxResult:
        data = (value & _LIMITS[size]).to_bytes(size, byteorder)
        return self.write_bytes(addr, data)

    def read_u8(self, addr: GuestAddress) -> MemTxValue:
        """Read a byte (``ldub_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 1, "little")

    def read_u16_le(self, addr: GuestAddress) -> MemTxValue:
        """Read 16 bits little-endian (``lduw_le_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 2, "little")

    def read_u16_be(self, addr: GuestAddress) -> MemTxValue:
        """Read 16 bits big-endian (``lduw_be_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 2, "big")

    def read_u32_le(self, addr: GuestAddress) -> MemTxValue:
        """Read 32 bits little-endian (``ldl_le_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 4, "little")

    def read_u32_be(self, addr: GuestAddress) -> MemTxValue:
        """Read 32 bits big-endian (``ldl_be_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 4, "big")

    def read_u64_le(self, addr: GuestAddress) -> MemTxValue:
        """Read 64 bits little-endian (``ldq_le_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 8, "little")

    def read_u64_be(self, addr: GuestAddress) -> MemTxValue:
        """Read 64 bits big-endian (``ldq_be_dma``).

        Args:
            addr: the guest address.

        Returns:
            The result and the value.
        """
        return self._read_int(addr, 8, "big")

    def write_u8(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write a byte (``stb_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low byte is written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 1, "little")

    def write_u16_le(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write 16 bits little-endian (``stw_le_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low 16 bits are written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 2, "little")

    def write_u16_be(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write 16 bits big-endian (``stw_be_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low 16 bits are written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 2, "big")

    def write_u32_le(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write 32 bits little-endian (``stl_le_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low 32 bits are written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 4, "little")

    def write_u32_be(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write 32 bits big-endian (``stl_be_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low 32 bits are written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 4, "big")

    def write_u64_le(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write 64 bits little-endian (``stq_le_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low 64 bits are written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 8, "little")

    def write_u64_be(self, addr: GuestAddress, value: int) -> MemTxResult:
        """Write 64 bits big-endian (``stq_be_dma``).

        Args:
            addr: the guest address.
            value: the value; only its low 64 bits are written.

        Returns:
            The result.
        """
        return self._write_int(addr, value, 8, "big")


# ---------------------------------------------------------------------------
# info mtree (memory.c mtree_info)

_MTREE_INDENT: Final = "  "


def _memory_region_type(mr: MemoryRegion) -> str:
    if mr._alias is not None:
        return _memory_region_type(mr._alias)
    if mr._ram is not None:
        return "rom" if mr._readonly else "ram"
    if mr._container is None:
        return "container"
    return "i/o"


def _mr_size(size: int) -> int:
    # MR_SIZE: the offset of the last byte, as a hwaddr.
    return (size - 1) & _HWADDR_MASK if size else 0


def _mtree_print_mr(
    out: list[str],
    mr: MemoryRegion,
    level: int,
    base: int,
    alias_queue: list[MemoryRegion],
    disabled: bool,
) -> None:
    cur_start = (base + mr._addr) & _HWADDR_MASK
    cur_end = (cur_start + _mr_size(mr._size)) & _HWADDR_MASK
    if cur_start < base or cur_end < cur_start:
        out.append("[DETECTED OVERFLOW!] ")
    state = "" if mr._enabled else " [disabled]"
    if mr._alias is not None:
        alias = mr._alias
        if not any(queued is alias for queued in alias_queue):
            alias_queue.append(alias)
        if mr._enabled or disabled:
            alias_end = (mr._alias_offset + _mr_size(mr._size)) & _HWADDR_MASK
            out.append(
                f"{_MTREE_INDENT * level}{cur_start:016x}-{cur_end:016x} "
                f"(prio {mr._priority}, {_memory_region_type(mr)}): alias "
                f"{mr._mr_name} @{alias._mr_name} {mr._alias_offset:016x}-"
                f"{alias_end:016x}{state}\n"
            )
    elif mr._enabled or disabled:
        out.append(
            f"{_MTREE_INDENT * level}{cur_start:016x}-{cur_end:016x} "
            f"(prio {mr._priority}, {_memory_region_type(mr)}): {mr._mr_name}{state}\n"
        )
    # Subregions by address, higher priority first at equal addresses.
    queue: list[MemoryRegion] = []
    for sub in mr._subregions:
        for i, queued in enumerate(queue):
            if sub._addr < queued._addr or (
                sub._addr == queued._addr and sub._priority > queued._priority
            ):
                queue.insert(i, sub)
                break
        else:
            queue.append(sub)
    for sub in queue:
        _mtree_print_mr(out, sub, level + 1, cur_start, alias_queue, disabled)


def _mtree_flatview(out: list[str], spaces: list[AddressSpace]) -> None:
    groups: list[tuple[MemoryRegion, list[AddressSpace]]] = []
    for space in spaces:
        for root, members in groups:
            if root is space._root:
                members.append(space)
                break
        else:
            groups.append((space._root, [space]))
    for counter, (root, members) in enumerate(groups):
        out.append(f"FlatView #{counter}\n")
        for space in members:
            line = f' AS "{space._name}", root: {root._mr_name}'
            if root._alias is not None:
                line += f", alias {root._alias._mr_name}"
            out.append(line + "\n")
        physmr = _flatview_root(root)
        physname = physmr._mr_name if physmr is not None else "(none)"
        out.append(f" Root memory region: {physname}\n")
        ranges = _generate_memory_topology(root)
        if not ranges:
            out.append(f"{_MTREE_INDENT}No rendered FlatView\n\n")
            continue
        for fr in ranges:
            mr = fr.mr
            kind = "rom" if fr.readonly else _memory_region_type(mr)
            end = (fr.start + _mr_size(fr.size)) & _HWADDR_MASK
            line = (
                f"{_MTREE_INDENT}{fr.start:016x}-{end:016x} "
                f"(prio {mr._priority}, {kind}): {mr._mr_name}"
            )
            if fr.offset_in_region:
                line += f" @{fr.offset_in_region:016x}"
            out.append(line + "\n")
        out.append("\n")


def mtree_info(*, flatview: bool = False, disabled: bool = False) -> str:
    """Return the text of the monitor's ``info mtree`` (QEMU's ``mtree_info``).

    Without ``flatview``: each address space's region tree (address spaces
    sharing a root are listed together), then every region that an alias
    looks into.  With ``flatview``: the rendered ranges of each view.

    Args:
        flatview: print the rendered views (``info mtree -f``).
        disabled: also print disabled regions (``info mtree -D``).

    Returns:
        The text, each line ending in a newline.

    >>> reset_system_memory()
    >>> uart = MemoryRegion.ram(None, "pl011", 0x1000)
    >>> get_system_memory().add_subregion(0x9000000, uart)
    >>> print(mtree_info(), end="")
    address-space: memory
      0000000000000000-ffffffffffffffff (prio 0, container): system
        0000000009000000-0000000009000fff (prio 0, ram): pl011
    <BLANKLINE>
    >>> reset_system_memory()
    """
    spaces = _live_address_spaces()
    out: list[str] = []
    if flatview:
        _mtree_flatview(out, spaces)
        return "".join(out)
    groups: list[tuple[MemoryRegion, list[AddressSpace]]] = []
    for space in spaces:
        for root, members in groups:
            if root is space._root:
                members.append(space)
                break
        else:
            groups.append((space._root, [space]))
    alias_queue: list[MemoryRegion] = []
    for root, members in groups:
        for space in sorted(members, key=lambda s: s._name):
            out.append(f"address-space: {space._name}\n")
        _mtree_print_mr(out, root, 1, 0, alias_queue, disabled)
        out.append("\n")
    i = 0
    while i < len(alias_queue):
        mr = alias_queue[i]
        out.append(f"memory-region: {mr._mr_name}\n")
        _mtree_print_mr(out, mr, 1, 0, alias_queue, disabled)
        out.append("\n")
        i += 1
    return "".join(out)


add_state_listener(_mmio_trace_changed)
