"""VMState: a device's migratable state, declared from its typed attributes.

This module mirrors QEMU's ``include/migration/vmstate.h`` with the behaviour
of ``migration/vmstate.c`` and ``migration/vmstate-types.c`` (and the clock
description of ``hw/core/clock-vmstate.c``), shaped like the builder API of
QEMU's Rust ``migration::vmstate``.

A :class:`VMStateDescription` lists the fields of a state in wire order, with
QEMU's field kinds: fixed-width integers (:func:`vmstate_uint32`,
:func:`vmstate_int32`, ...), :func:`vmstate_bool`, fixed arrays
(:func:`vmstate_array`), arrays sized by an earlier field
(:func:`vmstate_varray`), byte buffers, :func:`vmstate_unused` padding, nested
structs and struct arrays, timers (:func:`vmstate_timer_ptr`), clocks
(:func:`vmstate_clock`) and validation entries (:func:`vmstate_validate`);
fields that exist only from a given version; subsections with a ``needed``
predicate; and ``pre_save``/``pre_load``/``post_load`` hooks.

Fields name the state's attributes with typed references: each field
constructor takes a lambda from the state to the attribute,
``vmstate_uint32(lambda s: s.regs.flags)``, and the field is named after the
last attribute unless ``name=`` says otherwise (the wire name QEMU uses).  mypy
checks the lambda against the description's state type: a misspelt or
missing attribute, an attribute of another class, or one whose type does not
fit the field kind (a ``Timer`` for ``vmstate_uint32``, a struct whose
description is for another class) is a type error.  Give the state type as
``VMStateDescription[State](...)`` (``VMStateDescription["State"]`` in the
class's own body) unless a hook already names it.

At run time, attaching the description to a class (``vmsd =
VMStateDescription(...)`` in the class body, or ``state=Class``) checks every
field against the class's annotations as well: a missing attribute, a type
that does not fit the field kind (a ``u16`` where ``vmstate_uint32`` expects
``u32``, which mypy accepts since both are ``int``) or a fixed array of the
wrong length is an :class:`~qemu_api.error.Error` at class creation, naming
the field.  References reach through :class:`~qemu_api.bql.BqlStruct` fields
and through :class:`~qemu_api.bql.BqlRefCell` and
:class:`~qemu_api.bql.BqlCell` holders (``lambda s: s.regs.get().ctrl``):

>>> from dataclasses import dataclass
>>> from qemu_api.bits import u8, u32
>>> @dataclass
... class Regs:
...     ctrl: u32 = u32(0)
...     fifo: list[u8] = array_field(u8, 4)
...     count: int = 0
...
...     vmsd = VMStateDescription["Regs"](
...         "doc-regs",
...         version_id=2,
...         minimum_version_id=1,
...         fields=[
...             vmstate_uint32(lambda r: r.ctrl),
...             vmstate_array(lambda r: r.fifo, vmstate_info_uint8, 4),
...             vmstate_int32(lambda r: r.count, version_id=2),
...         ],
...     )
>>> regs = Regs(ctrl=u32(0x301), count=-2)
>>> regs.fifo[0] = u8(0x41)
>>> f = QEMUFileWriter()
>>> vmstate_save_state(f, Regs.vmsd, regs)
>>> f.getvalue().hex()
'0000030141000000fffffffe'
>>> other = Regs()
>>> vmstate_load_state(QEMUFileReader(f.getvalue()), Regs.vmsd, other, 2)
>>> other == regs
True

A description that does not match its state fails when it is attached to
the class (at class creation for a ``vmsd`` class attribute; Python 3.11
reports that as a ``RuntimeError`` whose cause is this error):

>>> @dataclass
... class Bad:
...     ctrl: u8 = u8(0)
>>> VMStateDescription[Bad](
...     "doc-bad", fields=[vmstate_uint32(lambda s: s.ctrl)], state=Bad
... )
Traceback (most recent call last):
  ...
qemu_api.error.Error: VMState 'doc-bad', field 'ctrl': Bad.ctrl is annotated \
u8, but vmstate_uint32 needs u32, int or a Bitfield of at most 32 bits

Loading is split in two, so that a whole migration stream can be checked
before anything changes (:mod:`qemu_api.migration.savevm` does this for every
device): :func:`vmstate_parse_state` reads and checks the bytes without
touching the state, and :func:`vmstate_apply_state` runs ``pre_load``, stores
the values, runs the validation entries and ``post_load``.  ``post_load`` (or
``pre_load``) rejects a state by raising :class:`~qemu_api.error.Error`;
:func:`vmstate_capture_state` and :func:`vmstate_restore_state` put back the
previous values when that happens.

Devices attach their description as the class attribute ``vmsd``; a realized
device with a ``vmsd`` is registered for migration (QEMU's
``vmstate_register`` from ``device_set_realized``) with the instance id QEMU
computes: its description name is the section's ``idstr`` (sysbus devices get
no path prefix) and the instance id is one more than the highest one already
registered under that name.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import operator
import struct
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar, final

from qemu_api._fieldref import (
    FieldRefError,
    caller_namespaces,
    describe_path,
    field_path,
    resolve_annotation,
    type_name,
    unwrap_annotation,
)
from qemu_api.bits import Bitfield, FixedUInt, UInt8, UInt16, UInt32, UInt64
from qemu_api.bql import BqlCell, BqlRefCell, BqlStruct
from qemu_api.clock import Clock
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter, stream_text
from qemu_api.qdev import DeviceListener, DeviceState, device_listener_register
from qemu_api.qom import override
from qemu_api.timer import Timer

__all__ = [
    "QEMU_VM_SUBSECTION",
    "VMSTATE_INSTANCE_ID_ANY",
    "JSONObject",
    "LoadedState",
    "SaveStateEntry",
    "VMStateDescription",
    "VMStateField",
    "VMStateInfo",
    "array_field",
    "savevm_entries",
    "vmstate_apply_state",
    "vmstate_array",
    "vmstate_bool",
    "vmstate_buffer",
    "vmstate_capture_state",
    "vmstate_clock",
    "vmstate_info_bool",
    "vmstate_info_int8",
    "vmstate_info_int16",
    "vmstate_info_int32",
    "vmstate_info_int64",
    "vmstate_info_timer",
    "vmstate_info_uint8",
    "vmstate_info_uint16",
    "vmstate_info_uint32",
    "vmstate_info_uint64",
    "vmstate_int8",
    "vmstate_int16",
    "vmstate_int32",
    "vmstate_int64",
    "vmstate_load_state",
    "vmstate_parse_state",
    "vmstate_register",
    "vmstate_restore_state",
    "vmstate_save_state",
    "vmstate_struct",
    "vmstate_struct_array",
    "vmstate_struct_varray",
    "vmstate_timer_ptr",
    "vmstate_uint8",
    "vmstate_uint16",
    "vmstate_uint32",
    "vmstate_uint64",
    "vmstate_unregister",
    "vmstate_unused",
    "vmstate_validate",
    "vmstate_varray",
]

T = TypeVar("T")
if TYPE_CHECKING:
    # A description without hooks accepts any state (PEP 696 default).
    from typing_extensions import TypeVar as _TypeVarWithDefault

    T_contra = _TypeVarWithDefault("T_contra", contravariant=True, default=object)
else:
    T_contra = TypeVar("T_contra", contravariant=True)
S = TypeVar("S")
E = TypeVar("E")
St = TypeVar("St")
V = TypeVar("V")

QEMU_VM_SUBSECTION: Final = 0x05
"""The byte that starts a subsection in the stream."""

VMSTATE_INSTANCE_ID_ANY: Final = -1
"""Let :func:`vmstate_register` pick the next free instance id."""

_LENGTH_KEY: Final = "vmstate_length"

JSONObject = dict[str, object]
"""A JSON object under construction (the stream's VM description)."""


# -- field kinds ------------------------------------------------------------------


@final
class VMStateInfo:
    """How one scalar is put on the wire (QEMU's ``VMStateInfo``).

    The module provides one instance per QEMU type (:data:`vmstate_info_uint32`
    and friends); pass them to :func:`vmstate_array` and
    :func:`vmstate_varray`.

    Attributes:
        name: QEMU's type name, as the JSON description shows it.
        size: the bytes of one value on the wire.
        signed: whether the value is two's complement.
    """

    __slots__ = ("name", "signed", "size")

    def __init__(self, name: str, size: int, signed: bool) -> None:
        self.name = name
        self.size = size
        self.signed = signed

    @property
    def bits(self) -> int:
        """The width in bits."""
        return self.size * 8

    @override
    def __repr__(self) -> str:
        return f"vmstate_info_{self.name}"


vmstate_info_bool: Final = VMStateInfo("bool", 1, False)
"""A ``bool`` as one byte, 0 or 1 (any non-zero byte loads as True)."""
vmstate_info_int8: Final = VMStateInfo("int8", 1, True)
"""A signed 8-bit integer."""
vmstate_info_int16: Final = VMStateInfo("int16", 2, True)
"""A signed 16-bit integer."""
vmstate_info_int32: Final = VMStateInfo("int32", 4, True)
"""A signed 32-bit integer."""
vmstate_info_int64: Final = VMStateInfo("int64", 8, True)
"""A signed 64-bit integer."""
vmstate_info_uint8: Final = VMStateInfo("uint8", 1, False)
"""An unsigned 8-bit integer."""
vmstate_info_uint16: Final = VMStateInfo("uint16", 2, False)
"""An unsigned 16-bit integer."""
vmstate_info_uint32: Final = VMStateInfo("uint32", 4, False)
"""An unsigned 32-bit integer."""
vmstate_info_uint64: Final = VMStateInfo("uint64", 8, False)
"""An unsigned 64-bit integer."""
vmstate_info_timer: Final = VMStateInfo("timer", 8, True)
"""A :class:`~qemu_api.timer.Timer`: its expiry in ns, -1 when not pending."""

_UINT_TYPES: Final[dict[int, type[FixedUInt]]] = {
    8: UInt8,
    16: UInt16,
    32: UInt32,
    64: UInt64,
}


class _Kind(enum.Enum):
    SCALAR = "scalar"
    ARRAY = "array"
    VARRAY = "varray"
    BUFFER = "buffer"
    UNUSED = "unused"
    STRUCT = "struct"
    STRUCT_ARRAY = "struct array"
    STRUCT_VARRAY = "struct varray"
    CLOCK = "clock"
    VALIDATE = "validate"


_ARRAYS: Final = frozenset({_Kind.ARRAY, _Kind.VARRAY})
_STRUCTS: Final = frozenset({_Kind.STRUCT, _Kind.STRUCT_ARRAY, _Kind.STRUCT_VARRAY})
_VARRAYS: Final = frozenset({_Kind.VARRAY, _Kind.STRUCT_VARRAY})
_COUNT_INFOS: Final = ("uint8", "uint16", "uint32", "int32")


@final
class VMStateField(Generic[T_contra]):
    """One entry of a :class:`VMStateDescription` (QEMU's ``VMStateField``).

    Make fields with the ``vmstate_*`` functions, not directly.  The type
    parameter is the state the field belongs to: the argument type of its
    field reference (``vmstate_uint32(lambda s: s.regs.flags)`` in a
    ``VMStateDescription[PL011State]`` is a ``VMStateField[PL011State]``), or
    of a :func:`vmstate_validate` test; :func:`vmstate_unused` fits any state.

    Attributes:
        name: the field's name in the stream's JSON description and in errors.
        path: the attribute path in the state, e.g. ``("regs", "flags")``.
        version_id: the first version of the description that has the field.
    """

    __slots__ = (
        "_func",
        "info",
        "kind",
        "name",
        "num",
        "num_field",
        "num_path",
        "path",
        "size",
        "test",
        "version_id",
        "vmsd",
    )

    def __init__(
        self,
        func: str,
        kind: _Kind,
        name: str,
        *,
        path: tuple[str, ...] = (),
        info: VMStateInfo | None = None,
        num: int = 1,
        num_path: tuple[str, ...] = (),
        size: int = 0,
        vmsd: VMStateDescription[Any] | None = None,
        version_id: int = 0,
        test: Callable[[T_contra, int], bool] | None = None,
    ) -> None:
        self._func = func
        if not name:
            raise Error(f"{func}(): the field needs a name")
        if version_id < 0:
            raise Error(f"{func}('{name}'): version_id must be 0 or more")
        if num < 0:
            raise Error(f"{func}('{name}'): the element count must be 0 or more")
        self.kind = kind
        self.name = name
        self.path = path
        self.info = info
        self.num = num
        self.num_path = num_path
        # The name of the earlier field holding the count, found by
        # VMStateDescription from num_path.
        self.num_field: str | None = None
        self.size = size
        self.vmsd = vmsd
        self.version_id = version_id
        self.test: Callable[[Any, int], bool] | None = test

    @property
    def func(self) -> str:
        """The function that made the field, for messages (``vmstate_uint32``)."""
        return self._func

    def dump_size(self) -> int:
        """The ``size`` that ``-dump-vmstate`` shows: one element's size.

        QEMU prints ``sizeof`` of the C field's element: the scalar width, the
        buffer length, 8 for timer and clock pointers, the struct's size.
        """
        if self.kind in (_Kind.SCALAR, _Kind.ARRAY, _Kind.VARRAY):
            assert self.info is not None
            return self.info.size
        return self.size

    @override
    def __repr__(self) -> str:
        return f"{self._func}('{self.name}')"


_Ref = Callable[[St], V]
"""A field reference: ``lambda s: s.regs.flags`` (see :mod:`qemu_api._fieldref`)."""

IntLike = int | Bitfield
"""What the integer fields hold: ``int``, a fixed-width integer or a Bitfield."""


def _ref_path(func: str, ref: Callable[..., object], what: str) -> tuple[str, ...]:
    try:
        steps = field_path(ref)
    except FieldRefError as exc:
        raise Error(f"{func}(): {what}: {exc}") from None
    path: list[str] = []
    for step in steps:
        if not isinstance(step, str):
            raise Error(
                f"{func}(): {what} {describe_path(steps)} indexes a list; a field "
                "names a whole attribute (migrate lists with vmstate_array)"
            )
        path.append(step)
    return tuple(path)


def _field_of(
    func: str,
    kind: _Kind,
    ref: Callable[..., object],
    name: str | None,
    **kwargs: Any,
) -> VMStateField[Any]:
    path = _ref_path(func, ref, "the field reference")
    return VMStateField[Any](
        func, kind, path[-1] if name is None else name, path=path, **kwargs
    )


def _scalar(
    func: str,
    info: VMStateInfo,
    ref: Callable[..., object],
    name: str | None,
    version_id: int,
) -> VMStateField[Any]:
    return _field_of(func, _Kind.SCALAR, ref, name, info=info, version_id=version_id)


def vmstate_bool(
    ref: _Ref[St, bool], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A ``bool`` attribute, one byte on the wire (``VMSTATE_BOOL``).

    Args:
        ref: the attribute, ``lambda s: s.enabled`` (through nested objects:
            ``lambda s: s.regs.enabled``).
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_bool", vmstate_info_bool, ref, name, version_id)


def vmstate_int8(
    ref: _Ref[St, int], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A signed 8-bit attribute (``VMSTATE_INT8``): ``int`` or ``u8``.

    Args:
        ref: the attribute, ``lambda s: s.level``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_int8", vmstate_info_int8, ref, name, version_id)


def vmstate_int16(
    ref: _Ref[St, int], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A signed 16-bit attribute (``VMSTATE_INT16``): ``int`` or ``u16``.

    Args:
        ref: the attribute, ``lambda s: s.level``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_int16", vmstate_info_int16, ref, name, version_id)


def vmstate_int32(
    ref: _Ref[St, int], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A signed 32-bit attribute (``VMSTATE_INT32``): ``int`` or ``u32``.

    An ``int`` must hold a value in -2**31..2**31-1 when it is saved; a
    ``u32`` is written as its two's complement bits.

    Args:
        ref: the attribute, ``lambda s: s.regs.read_pos``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_int32", vmstate_info_int32, ref, name, version_id)


def vmstate_int64(
    ref: _Ref[St, int], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A signed 64-bit attribute (``VMSTATE_INT64``): ``int`` or ``u64``.

    Args:
        ref: the attribute, ``lambda s: s.offset``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_int64", vmstate_info_int64, ref, name, version_id)


def vmstate_uint8(
    ref: _Ref[St, IntLike], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A ``u8``, ``int`` or Bitfield (at most 8 bits) attribute (``VMSTATE_UINT8``).

    Args:
        ref: the attribute, ``lambda s: s.regs.count``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_uint8", vmstate_info_uint8, ref, name, version_id)


def vmstate_uint16(
    ref: _Ref[St, IntLike], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A ``u16``, ``int`` or Bitfield (at most 16 bits) attribute (``VMSTATE_UINT16``).

    Args:
        ref: the attribute, ``lambda s: s.regs.divisor``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_uint16", vmstate_info_uint16, ref, name, version_id)


def vmstate_uint32(
    ref: _Ref[St, IntLike], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A ``u32``, ``int`` or Bitfield (at most 32 bits) attribute (``VMSTATE_UINT32``).

    Args:
        ref: the attribute, ``lambda s: s.regs.flags``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.

    >>> vmstate_uint32(lambda s: s.regs.flags)
    vmstate_uint32('flags')
    >>> vmstate_uint32(lambda s: s.regs.line_control, name="lcr").path
    ('regs', 'line_control')
    """
    return _scalar("vmstate_uint32", vmstate_info_uint32, ref, name, version_id)


def vmstate_uint64(
    ref: _Ref[St, IntLike], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A ``u64``, ``int`` or Bitfield (at most 64 bits) attribute (``VMSTATE_UINT64``).

    Args:
        ref: the attribute, ``lambda s: s.counter``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_uint64", vmstate_info_uint64, ref, name, version_id)


def vmstate_timer_ptr(
    ref: _Ref[St, Timer], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A :class:`~qemu_api.timer.Timer` attribute (``VMSTATE_TIMER_PTR``).

    The stream holds the expiry in ns as a signed 64-bit number, -1 when the
    timer is not pending (``timer_expire_time_ns``); loading re-arms the
    timer at that expiry (``timer_mod_ns``) or deletes it.

    Args:
        ref: the attribute, ``lambda s: s.timer``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _scalar("vmstate_timer_ptr", vmstate_info_timer, ref, name, version_id)


def vmstate_array(
    ref: _Ref[St, Sequence[IntLike | Timer]],
    info: VMStateInfo,
    num: int,
    *,
    name: str | None = None,
    version_id: int = 0,
) -> VMStateField[St]:
    """A fixed-length ``list`` attribute (``VMSTATE_UINT32_ARRAY`` and friends).

    The elements are written one after the other, with no count.  The
    attribute is a ``list`` whose elements fit ``info`` (``list[u32]`` for
    :data:`vmstate_info_uint32`, ``list[Timer]`` for
    :data:`vmstate_info_timer`); declare it in a dataclass with
    :func:`array_field`, or annotate it ``Annotated[list[int], 16]``, so
    that its length is checked against ``num``.

    Args:
        ref: the attribute, ``lambda s: s.regs.read_fifo``.
        info: the element type, e.g. :data:`vmstate_info_uint32`.
        num: the number of elements.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _field_of(
        "vmstate_array",
        _Kind.ARRAY,
        ref,
        name,
        info=info,
        num=num,
        version_id=version_id,
    )


def vmstate_varray(
    ref: _Ref[St, Sequence[IntLike | Timer]],
    info: VMStateInfo,
    num: _Ref[St, IntLike],
    *,
    name: str | None = None,
    version_id: int = 0,
) -> VMStateField[St]:
    """The first *n* elements of a ``list``, *n* held by an earlier field.

    QEMU's ``VMSTATE_VARRAY_UINT8/UINT16/UINT32/INT32``: ``num`` names the
    attribute of an earlier ``uint8``, ``uint16``, ``uint32`` or ``int32``
    field of the same description.  Loading stores the elements into the
    existing list, which must be long enough.

    Args:
        ref: the list attribute, ``lambda s: s.items``.
        info: the element type.
        num: the attribute holding the count, ``lambda s: s.count``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _field_of(
        "vmstate_varray",
        _Kind.VARRAY,
        ref,
        name,
        info=info,
        num_path=_ref_path("vmstate_varray", num, "the element count"),
        version_id=version_id,
    )


def vmstate_buffer(
    ref: _Ref[St, bytes | bytearray],
    size: int,
    *,
    name: str | None = None,
    version_id: int = 0,
) -> VMStateField[St]:
    """A ``bytearray`` (or ``bytes``) attribute of ``size`` bytes (``VMSTATE_BUFFER``).

    Args:
        ref: the attribute, ``lambda s: s.data``.
        size: the number of bytes.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _field_of(
        "vmstate_buffer", _Kind.BUFFER, ref, name, size=size, version_id=version_id
    )


def vmstate_unused(size: int, *, version_id: int = 0) -> VMStateField[object]:
    """``size`` zero bytes, skipped on load (``VMSTATE_UNUSED``).

    Keeps the wire layout when a field is dropped from a device.

    Args:
        size: the number of bytes.
        version_id: the first version of the description with these bytes.
    """
    return VMStateField[object](
        "vmstate_unused", _Kind.UNUSED, "unused", size=size, version_id=version_id
    )


def vmstate_struct(
    ref: _Ref[St, S | BqlRefCell[S] | BqlCell[S]],
    vmsd: VMStateDescription[S],
    *,
    name: str | None = None,
    version_id: int = 0,
    size: int | None = None,
) -> VMStateField[St]:
    """A nested object with its own description (``VMSTATE_STRUCT``).

    The attribute holds an instance of the class ``vmsd`` is attached to
    (directly or in a :class:`~qemu_api.bql.BqlRefCell`); its fields and
    subsections are written inline.  Loading fills the existing object.

    Args:
        ref: the attribute, ``lambda s: s.regs``.
        vmsd: the nested description, attached to its class.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
        size: the C ``sizeof`` that ``-dump-vmstate`` shows; by default the
            bytes of the nested fields.
    """
    return _field_of(
        "vmstate_struct",
        _Kind.STRUCT,
        ref,
        name,
        vmsd=vmsd,
        size=-1 if size is None else size,
        version_id=version_id,
    )


def vmstate_struct_array(
    ref: _Ref[St, Sequence[S]],
    vmsd: VMStateDescription[S],
    num: int,
    *,
    name: str | None = None,
    version_id: int = 0,
    size: int | None = None,
) -> VMStateField[St]:
    """A fixed-length ``list`` of nested objects (``VMSTATE_STRUCT_ARRAY``).

    Args:
        ref: the list attribute, ``lambda s: s.timers``.
        vmsd: the description of each element, attached to its class.
        num: the number of elements.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
        size: the C ``sizeof`` of one element for ``-dump-vmstate``.
    """
    return _field_of(
        "vmstate_struct_array",
        _Kind.STRUCT_ARRAY,
        ref,
        name,
        vmsd=vmsd,
        num=num,
        size=-1 if size is None else size,
        version_id=version_id,
    )


def vmstate_struct_varray(
    ref: _Ref[St, Sequence[S]],
    vmsd: VMStateDescription[S],
    num: _Ref[St, IntLike],
    *,
    name: str | None = None,
    version_id: int = 0,
    size: int | None = None,
) -> VMStateField[St]:
    """The first *n* objects of a ``list``, *n* held by an earlier field.

    QEMU's ``VMSTATE_STRUCT_VARRAY_UINT8/UINT32/INT32``.

    Args:
        ref: the list attribute, ``lambda s: s.timers``.
        vmsd: the description of each element, attached to its class.
        num: the attribute holding the count, ``lambda s: s.num_timers``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
        size: the C ``sizeof`` of one element for ``-dump-vmstate``.
    """
    return _field_of(
        "vmstate_struct_varray",
        _Kind.STRUCT_VARRAY,
        ref,
        name,
        vmsd=vmsd,
        num_path=_ref_path("vmstate_struct_varray", num, "the element count"),
        size=-1 if size is None else size,
        version_id=version_id,
    )


def vmstate_clock(
    ref: _Ref[St, Clock], *, name: str | None = None, version_id: int = 0
) -> VMStateField[St]:
    """A :class:`~qemu_api.clock.Clock` attribute (``VMSTATE_CLOCK``).

    QEMU's struct pointer to ``vmstate_clock``: the period (``uint64``, in
    2^-32 ns), then the ``clock/muldiv`` subsection (multiplier, divider)
    when the ratio is not 1:1.  Loading sets the period without running the
    clock's callbacks, as QEMU does.

    Args:
        ref: the attribute, ``lambda s: s.clk``.
        name: the field's name in the stream description; by default the
            last attribute of ``ref``.
        version_id: the first version of the description with this field.
    """
    return _field_of(
        "vmstate_clock",
        _Kind.CLOCK,
        ref,
        name,
        vmsd=_VMSTATE_CLOCK,
        size=8,
        version_id=version_id,
    )


def vmstate_validate(name: str, test: Callable[[T, int], bool]) -> VMStateField[T]:
    """A check run while loading, after the fields before it (``VMSTATE_VALIDATE``).

    Nothing goes on the wire.  ``test(state, version_id)`` returning False
    fails the load with ``name`` as the message, as QEMU's "Input validation
    failed".

    Args:
        name: what the check asserts, e.g. ``"num_timers in range"``.
        test: called with the state (holding the values loaded so far) and
            the stream's version of the description.
    """
    return VMStateField[T]("vmstate_validate", _Kind.VALIDATE, name, num=0, test=test)


def array_field(factory: Callable[[], E], length: int) -> list[E]:
    """Declare a fixed-length list attribute of a dataclass.

    ``fifo: list[u32] = array_field(u32, 16)`` gives each instance a list of
    16 ``u32(0)``, and records the length so that :func:`vmstate_array`
    checks it when the description is attached.

    Args:
        factory: makes one element (``u32``, a struct class).
        length: the number of elements.

    >>> from dataclasses import dataclass
    >>> from qemu_api.bits import u16
    >>> @dataclass
    ... class S:
    ...     regs: list[u16] = array_field(u16, 3)
    >>> S().regs
    [u16(0x0000), u16(0x0000), u16(0x0000)]
    """
    return dataclasses.field(
        default_factory=lambda: [factory() for _ in range(length)],
        metadata={_LENGTH_KEY: length},
    )


# -- descriptions -----------------------------------------------------------------


@final
class VMStateDescription(Generic[T_contra]):
    """The migratable state of a device or struct (QEMU's ``VMStateDescription``).

    The type parameter is the state the hooks receive: a description whose
    ``post_load`` takes a ``PL011State`` is a
    ``VMStateDescription[PL011State]``.

    Attach the description to the state's class as the class attribute
    ``vmsd`` (or pass ``state=``): its fields are then checked against the
    class's annotations, and an :class:`~qemu_api.error.Error` names the
    first field that does not fit.

    Args:
        name: the description's name; a device's section in the stream is
            called by it (``"pl011"``).  Subsections are named
            ``"<parent>/<what>"``.
        fields: the fields in wire order.
        version_id: the version written to the stream.
        minimum_version_id: the oldest version this description can load.
        subsections: optional parts, written when their ``needed`` returns
            True (or when they have no ``needed``).
        needed: for a subsection, whether to send it; for a device's
            description, whether to send its section at all.
        pre_save: called before the fields are written.
        post_save: called after the state is written.
        pre_load: called before loaded values are stored; may raise
            :class:`~qemu_api.error.Error` to reject the load.
        post_load: called with the stream's version after the values are
            stored; raises :class:`~qemu_api.error.Error` to reject them.
        state: the class of the state, when the description is not attached
            as a class attribute.

    Raises:
        Error: the description is inconsistent (a subsection whose name does
            not begin with its parent's, a count field that does not come
            earlier, versions out of order), or it does not match ``state``.

    >>> from qemu_api.clock import Clock
    >>> class Uart:
    ...     clk: Clock
    >>> VMStateDescription[Uart](
    ...     "pl011/clock",
    ...     version_id=1,
    ...     minimum_version_id=1,
    ...     fields=[vmstate_clock(lambda s: s.clk)],
    ... )
    VMStateDescription('pl011/clock', version_id=1)
    """

    __slots__ = (
        "_bindings",
        "_flat",
        "_namespaces",
        "fields",
        "minimum_version_id",
        "name",
        "needed",
        "post_load",
        "post_save",
        "pre_load",
        "pre_save",
        "subsections",
        "version_id",
    )

    def __init__(
        self,
        name: str,
        *,
        fields: Sequence[VMStateField[T_contra]],
        version_id: int = 0,
        minimum_version_id: int = 0,
        subsections: Sequence[VMStateDescription[T_contra]] = (),
        needed: Callable[[T_contra], bool] | None = None,
        pre_save: Callable[[T_contra], None] | None = None,
        post_save: Callable[[T_contra], None] | None = None,
        pre_load: Callable[[T_contra], None] | None = None,
        post_load: Callable[[T_contra, int], None] | None = None,
        state: type[T_contra] | None = None,
    ) -> None:
        self.name = name
        self.version_id = version_id
        self.minimum_version_id = minimum_version_id
        self.fields: tuple[VMStateField[Any], ...] = tuple(fields)
        self.subsections: tuple[VMStateDescription[Any], ...] = tuple(subsections)
        self.needed: Callable[[Any], bool] | None = needed
        self.pre_save: Callable[[Any], None] | None = pre_save
        self.post_save: Callable[[Any], None] | None = post_save
        self.pre_load: Callable[[Any], None] | None = pre_load
        self.post_load: Callable[[Any, int], None] | None = post_load
        self._bindings: dict[type, tuple[_Binding, ...]] = {}
        self._flat: dict[type, _Flat | None] = {}
        self._namespaces = caller_namespaces(1)
        self._check()
        if state is not None:
            self.bind(state)

    def _error(self, field: VMStateField[Any] | None, msg: str) -> Error:
        where = f", field '{field.name}'" if field is not None else ""
        return Error(f"VMState '{self.name}'{where}: {msg}")

    def _check(self) -> None:
        if not self.name or len(self.name.encode()) > 255:
            raise Error(f"VMState name '{self.name[:40]}' must be 1 to 255 bytes long")
        if not 0 <= self.minimum_version_id <= self.version_id:
            raise self._error(
                None,
                f"minimum_version_id {self.minimum_version_id} must be between 0 "
                f"and version_id {self.version_id}",
            )
        earlier: list[VMStateField[Any]] = []
        for field in self.fields:
            if not isinstance(field, VMStateField):
                raise self._error(
                    None,
                    f"{field!r} is not a field; build fields with vmstate_uint32(), "
                    "vmstate_struct(), ...",
                )
            if field.version_id > self.version_id:
                raise self._error(
                    field,
                    f"the field exists from version {field.version_id}, after the "
                    f"description's version_id {self.version_id}; raise version_id",
                )
            if field.kind in _VARRAYS:
                count = next(
                    (f for f in earlier if f.path and f.path == field.num_path), None
                )
                if count is None:
                    raise self._error(
                        field,
                        f"the element count '{'.'.join(field.num_path)}' must be "
                        "an earlier field of the same description",
                    )
                field.num_field = count.name
                if (
                    count.kind is not _Kind.SCALAR
                    or count.info is None
                    or count.info.name not in _COUNT_INFOS
                ):
                    raise self._error(
                        field,
                        f"the element count '{count.name}' must be a uint8, "
                        "uint16, uint32 or int32 field",
                    )
            if field.kind in _STRUCTS and not isinstance(
                field.vmsd, VMStateDescription
            ):
                raise self._error(field, "vmstate_struct needs a VMStateDescription")
            earlier.append(field)
        names = set()
        for sub in self.subsections:
            if not isinstance(sub, VMStateDescription):
                raise self._error(
                    None, f"subsection {sub!r} is not a VMStateDescription"
                )
            # QEMU's vmstate_subsection_load takes the next record as one of
            # this description's subsections only if its name begins with the
            # parent's name and is longer (strncmp on the parent's length):
            # any other name ends the parent's subsections there and the load
            # fails on what follows.  Beyond that the name is free ("pl011/
            # clock", "arm_gic_virt_state") and must be unique in the parent.
            if len(sub.name) <= len(self.name) or not sub.name.startswith(self.name):
                raise self._error(
                    None,
                    f"subsection '{sub.name}' must begin with its parent's name "
                    f"'{self.name}' and add to it (as '{self.name}/{sub.name}' or "
                    f"'{self.name}_{sub.name}'): QEMU's loader recognises a "
                    "subsection by its parent's name as a prefix",
                )
            if sub.name in names:
                raise self._error(None, f"subsection '{sub.name}' is listed twice")
            names.add(sub.name)

    def __set_name__(self, owner: type, attr: str) -> None:
        """Attach the description to the class whose body assigns it."""
        self._namespaces = caller_namespaces(1) + self._namespaces
        self.bind(owner)

    def bind(self, owner: type) -> None:
        """Check the fields against ``owner``'s annotations and remember the result.

        Attaching the description as a class attribute does this; call it for
        a class that cannot carry the attribute.  Binding one description to
        several classes is allowed (each is checked).

        Raises:
            Error: a field does not match the class, naming the field.
        """
        if owner in self._bindings:
            return
        bindings = tuple(_bind_field(self, f, owner) for f in self.fields)
        self._bindings[owner] = bindings
        try:
            for sub in self.subsections:
                sub._namespaces = self._namespaces + sub._namespaces
                sub.bind(owner)
        except Error:
            del self._bindings[owner]
            raise

    def is_bound_to(self, cls: type) -> bool:
        """Return True if the description was checked against ``cls`` (or a base)."""
        return any(k in self._bindings for k in cls.__mro__)

    def _binding(self, opaque: object) -> tuple[_Binding, ...]:
        cls = type(opaque)
        found = self._bindings.get(cls)
        if found is not None:
            return found
        for klass in cls.__mro__:
            found = self._bindings.get(klass)
            if found is not None:
                self._bindings[cls] = found
                return found
        self.bind(cls)
        return self._bindings[cls]

    def static_size(self) -> int:
        """The bytes of the fields, when they do not depend on the state (else 0)."""
        total = 0
        for field in self.fields:
            if field.kind in _VARRAYS or field.kind is _Kind.CLOCK:
                return 0
            if field.kind in (_Kind.SCALAR, _Kind.ARRAY):
                assert field.info is not None
                total += field.info.size * field.num
            elif field.kind in (_Kind.BUFFER, _Kind.UNUSED):
                total += field.size
            elif field.kind in _STRUCTS:
                assert field.vmsd is not None
                total += field.vmsd.static_size() * field.num
        return total

    @override
    def __repr__(self) -> str:
        return f"VMStateDescription('{self.name}', version_id={self.version_id})"


# -- binding: annotations, converters and accessors --------------------------------


_type_name = type_name
_unwrap = unwrap_annotation


def _resolve(
    vmsd: VMStateDescription[Any], field: VMStateField[Any], owner: type, attr: str
) -> tuple[object, type]:
    """Return the evaluated annotation of ``owner.attr`` and the class defining it."""
    return resolve_annotation(
        owner, attr, vmsd._namespaces, lambda msg: vmsd._error(field, msg)
    )


def _declared_length(owner: type, attr: str, meta: tuple[object, ...]) -> int | None:
    for m in meta:
        if isinstance(m, int) and not isinstance(m, bool):
            return m
    for klass in owner.__mro__:
        dc_fields = klass.__dict__.get("__dataclass_fields__", {})
        value = dc_fields.get(attr, klass.__dict__.get(attr, dataclasses.MISSING))
        if value is dataclasses.MISSING:
            continue
        if isinstance(value, dataclasses.Field):
            length = value.metadata.get(_LENGTH_KEY)
            if isinstance(length, int):
                return length
            if value.default_factory is not dataclasses.MISSING:
                made = value.default_factory()
                if isinstance(made, list | tuple | bytes | bytearray):
                    return len(made)
                return None
            value = value.default
        if isinstance(value, list | tuple | bytes | bytearray):
            return len(value)
        return None
    return None


Decode = Callable[[int], object]
Encode = Callable[[Any], int]


def _decode_uint(cls: type[FixedUInt]) -> Decode:
    return cls


def _decode_bitfield(cls: type[Bitfield], what: str) -> Decode:
    def decode(value: int) -> object:
        if value > cls.MASK:
            raise Error(
                f"{value:#x} does not fit the {cls.WIDTH}-bit {cls.__name__} {what}"
            )
        return cls.from_int(value)

    return decode


def _decode_signed_as(cls: type[FixedUInt]) -> Decode:
    return cls


def _decode_int(value: int) -> object:
    return value


def _decode_bool(value: int) -> object:
    return value != 0


def _encode_unsigned(bits: int) -> Encode:
    mask = (1 << bits) - 1

    def encode(value: Any) -> int:
        v = int(value)
        if not 0 <= v <= mask:
            raise Error(f"the value {v:#x} does not fit {bits} bits unsigned")
        return v

    return encode


def _encode_signed(bits: int) -> Encode:
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1

    def encode(value: Any) -> int:
        v = int(value)
        if isinstance(value, FixedUInt):
            return v - (1 << bits) if v > hi else v
        if not lo <= v <= hi:
            raise Error(f"the value {v} does not fit int{bits} ({lo}..{hi})")
        return v

    return encode


def _encode_bool(value: Any) -> int:
    return 1 if value else 0


def _encode_timer(timer: Any) -> int:
    expire: int = timer.expire_time()
    return expire


def _scalar_codec(
    vmsd: VMStateDescription[Any],
    field: VMStateField[Any],
    info: VMStateInfo,
    ann: object,
    what: str,
) -> tuple[Decode, Encode]:
    """Check that ``ann`` fits ``info`` and return its converters."""
    func = field.func if field.kind is _Kind.SCALAR else f"{info.name} elements"
    if info is vmstate_info_bool:
        if ann is bool:
            return _decode_bool, _encode_bool
        expected = "bool"
    elif info is vmstate_info_timer:
        if ann is Timer:
            return _decode_int, _encode_timer
        expected = "Timer"
    elif info.signed:
        same = _UINT_TYPES[info.bits]
        if ann is int:
            return _decode_int, _encode_signed(info.bits)
        if ann is same:
            return _decode_signed_as(same), _encode_signed(info.bits)
        expected = f"int (or {same._SHORT}, written as two's complement)"
    else:
        exact = _UINT_TYPES[info.bits]
        if ann is exact:
            return _decode_uint(exact), _encode_unsigned(info.bits)
        if ann is int:
            return _decode_int, _encode_unsigned(info.bits)
        if isinstance(ann, type) and issubclass(ann, Bitfield):
            if info.bits >= ann.WIDTH:
                return _decode_bitfield(ann, what), _encode_unsigned(info.bits)
            raise vmsd._error(
                field,
                f"{what} is a {ann.WIDTH}-bit Bitfield, but {func} holds at most "
                f"{info.bits} bits; use a wider field",
            )
        expected = f"{exact._SHORT}, int or a Bitfield of at most {info.bits} bits"
    raise vmsd._error(
        field, f"{what} is annotated {_type_name(ann)}, but {func} needs {expected}"
    )


# -- bulk codecs: whole arrays and flat structs through the struct module --------------
#
# Saving and loading value by value costs a few Python calls per byte of
# stream.  Fields whose values are plain integers (``int`` or the exact
# fixed-width type of the field) and ``bool`` are packed and unpacked in bulk
# instead: an array with one ``struct`` format, a list of flat structs (only
# such scalars, no hooks, no subsections) with the element's format repeated.
# The bytes are the same (big-endian, as ``qemu_put_be*``); when a value does
# not fit (``struct.error``) or the stream is short, the value-by-value path
# runs to raise its precise error.

_BULK_CODES: Final = {
    "bool": "?",
    "int8": "b",
    "int16": "h",
    "int32": "i",
    "int64": "q",
    "uint8": "B",
    "uint16": "H",
    "uint32": "I",
    "uint64": "Q",
}


@final
class _Bulk:
    """How the values of one scalar field pack in bulk.

    Attributes:
        code: the ``struct`` format character.
        make: the fixed-width class a loaded value becomes (None: the
            unpacked ``int`` or ``bool`` as it is).
    """

    __slots__ = ("code", "make")

    def __init__(self, code: str, make: type[FixedUInt] | None) -> None:
        self.code = code
        self.make = make


def _bulk(info: VMStateInfo, ann: object) -> _Bulk | None:
    """The bulk codec of ``info`` values held as ``ann``, or None if there is none."""
    if info is vmstate_info_timer:
        return None
    code = _BULK_CODES[info.name]
    if info is vmstate_info_bool:
        return _Bulk(code, None) if ann is bool else None
    if ann is int:
        return _Bulk(code, None)
    if not info.signed and ann is _UINT_TYPES[info.bits]:
        return _Bulk(code, _UINT_TYPES[info.bits])
    return None


_PACKERS: dict[str, struct.Struct] = {}


def _packer(fmt: str) -> struct.Struct:
    packer = _PACKERS.get(fmt)
    if packer is None:
        if len(_PACKERS) > 1024:
            _PACKERS.clear()
        packer = _PACKERS[fmt] = struct.Struct(">" + fmt)
    return packer


def _make_all(make: type[FixedUInt] | None, values: tuple[int, ...]) -> list[object]:
    if make is None:
        return list(values)
    new = int.__new__
    return [new(make, v) for v in values]


def _pack_array(bulk: _Bulk, values: Sequence[object], n: int) -> bytes | None:
    """``n`` values packed, or None if one does not fit (the slow path says which)."""
    try:
        return _packer(f"{n}{bulk.code}").pack(*values[:n])
    except struct.error:
        return None


def _unpack_array(f: QEMUFileReader, bulk: _Bulk, n: int) -> list[object] | None:
    """``n`` values read, or None if the stream is short (the slow path says where)."""
    packer = _packer(f"{n}{bulk.code}")
    if n < 0 or f.remaining() < packer.size:
        return None
    return _make_all(bulk.make, packer.unpack_from(f.get_buffer(packer.size)))


@final
class _Flat:
    """A struct description whose fields are bulk scalars on plain attributes.

    Its elements save and load as one ``struct`` format per list.
    """

    __slots__ = ("fmt", "get", "makes", "names", "plain")

    def __init__(
        self, names: tuple[str, ...], bulks: Sequence[_Bulk], plain: bool
    ) -> None:
        self.names = names
        self.plain = plain
        """Whether the attributes live in the instance ``__dict__`` as they are."""
        self.fmt = "".join(b.code for b in bulks)
        self.makes = [(i, b.make) for i, b in enumerate(bulks) if b.make is not None]
        if len(names) == 1:
            only = names[0]
            self.get: Callable[[object], tuple[object, ...]] = lambda e: (
                getattr(e, only),
            )
        else:
            self.get = operator.attrgetter(*names)

    def pack(self, elems: Sequence[object], n: int) -> bytes | None:
        """The first ``n`` elements packed, or None if a value does not fit."""
        flat = itertools.chain.from_iterable(map(self.get, elems[:n]))
        try:
            return _packer(self.fmt * n).pack(*flat)
        except struct.error:
            return None

    def unpack(
        self, f: QEMUFileReader, vmsd: VMStateDescription[Any], n: int
    ) -> list[object] | None:
        """``n`` elements' values read, or None for the value-by-value path.

        That path runs when the stream is short (it says where), and when a
        byte after an element could start a subsection record: QEMU looks
        for the struct's subsections there, and refuses one it does not know.
        """
        packer = _packer(self.fmt * n)
        if f.remaining() < packer.size:
            return None
        if n:
            width = packer.size // n
            after = f.peek_buffer(packer.size + 1)[width::width]
            if QEMU_VM_SUBSECTION in bytes(after):
                return None
        values = packer.unpack_from(f.get_buffer(packer.size))
        k = len(self.names)
        rows = list(map(list, zip(*[iter(values)] * k, strict=True)))
        new = int.__new__
        for col, make in self.makes:
            for row in rows:
                row[col] = new(make, row[col])
        version = vmsd.version_id
        return [LoadedState(vmsd, version, row, []) for row in rows]

    def store(self, elems: Sequence[object], items: Sequence[object]) -> bool:
        """Set the elements' attributes from loaded values; False if not flat ones."""
        names = self.names
        k = len(names)
        rows: list[list[object]] = []
        for loaded in items:
            if not isinstance(loaded, LoadedState) or len(loaded.values) != k:
                return False
            rows.append(loaded.values)
        pairs = zip(elems, rows, strict=False)
        if self.plain:
            for obj, row in pairs:
                obj.__dict__.update(zip(names, row, strict=True))
        else:
            for obj, row in pairs:
                for name, value in zip(names, row, strict=True):
                    setattr(obj, name, value)
        return True


def _flat(vmsd: VMStateDescription[Any], elems: Sequence[object]) -> _Flat | None:
    """The bulk plan for a list of ``vmsd`` structs, or None (the slow path)."""
    if not elems:
        return None
    cls = type(elems[0])
    if cls in vmsd._flat:
        plan = vmsd._flat[cls]
    else:
        plan = vmsd._flat[cls] = _flat_plan(vmsd, elems[0])
    if plan is None or set(map(type, elems)) != {cls}:
        return None
    return plan


def _flat_plan(vmsd: VMStateDescription[Any], elem: object) -> _Flat | None:
    if (
        vmsd.subsections
        or vmsd.pre_save is not None
        or vmsd.post_save is not None
        or vmsd.pre_load is not None
        or vmsd.post_load is not None
        or not vmsd.fields
        or isinstance(elem, BqlStruct)
    ):
        return None
    bulks: list[_Bulk] = []
    for field, binding in zip(vmsd.fields, vmsd._binding(elem), strict=True):
        if (
            field.kind is not _Kind.SCALAR
            or binding.bulk is None
            or len(binding.path) != 1
            or binding.holder
        ):
            return None
        bulks.append(binding.bulk)
    names = tuple(f.path[0] for f in vmsd.fields)
    cls = type(elem)
    plain = (
        cls.__setattr__ is object.__setattr__
        and isinstance(getattr(elem, "__dict__", None), dict)
        and not any(hasattr(getattr(cls, name, None), "__set__") for name in names)
    )
    return _Flat(names, bulks, plain)


@final
class _Binding:
    """What a field needs at run time for one state class."""

    __slots__ = ("bulk", "decode", "encode", "holder", "length", "path")

    def __init__(
        self,
        path: tuple[str, ...],
        decode: Decode | None = None,
        encode: Encode | None = None,
        length: int | None = None,
        holder: str = "",
        bulk: _Bulk | None = None,
    ) -> None:
        self.path = path
        self.decode = decode
        self.encode = encode
        self.length = length
        self.holder = holder
        self.bulk = bulk


def _bind_field(
    vmsd: VMStateDescription[Any], field: VMStateField[Any], owner: type
) -> _Binding:
    if field.kind in (_Kind.UNUSED, _Kind.VALIDATE):
        return _Binding(())
    cls: type = owner
    ann: object = object
    meta: tuple[object, ...] = ()
    holder = ""
    defining: type = owner
    for i, attr in enumerate(field.path):
        raw, defining = _resolve(vmsd, field, cls, attr)
        ann, meta, holder = _unwrap(raw)
        if i < len(field.path) - 1:
            if not isinstance(ann, type):
                raise vmsd._error(
                    field,
                    f"{cls.__name__}.{attr} is annotated {_type_name(raw)}; a "
                    "path can only go through attributes whose type is a class",
                )
            cls = ann
    attr = field.path[-1]
    what = f"{cls.__name__}.{attr}"
    kind = field.kind
    if kind is _Kind.SCALAR:
        assert field.info is not None
        decode, encode = _scalar_codec(vmsd, field, field.info, ann, what)
        return _Binding(
            field.path, decode, encode, holder=holder, bulk=_bulk(field.info, ann)
        )
    if kind in _ARRAYS or kind in (_Kind.STRUCT_ARRAY, _Kind.STRUCT_VARRAY):
        if typing.get_origin(ann) is not list:
            raise vmsd._error(
                field,
                f"{what} is annotated {_type_name(ann)}, but {field.func} needs a "
                "list (declare it with array_field())",
            )
        (elem,) = typing.get_args(ann) or (object,)
        length = _declared_length(defining, attr, meta)
        if (
            kind in (_Kind.ARRAY, _Kind.STRUCT_ARRAY)
            and length is not None
            and length != field.num
        ):
            raise vmsd._error(
                field,
                f"{what} has {length} elements, but the description says "
                f"{field.num}; make them agree",
            )
        if kind in _ARRAYS:
            assert field.info is not None
            decode, encode = _scalar_codec(
                vmsd, field, field.info, elem, f"an element of {what}"
            )
            bulk = _bulk(field.info, elem)
            return _Binding(field.path, decode, encode, length, holder, bulk)
        _check_struct_type(vmsd, field, elem, f"an element of {what}")
        return _Binding(field.path, length=length, holder=holder)
    if kind is _Kind.BUFFER:
        if ann not in (bytearray, bytes):
            raise vmsd._error(
                field,
                f"{what} is annotated {_type_name(ann)}, but vmstate_buffer needs "
                "bytearray or bytes",
            )
        length = _declared_length(defining, attr, meta)
        if length is not None and length != field.size:
            raise vmsd._error(
                field,
                f"{what} has {length} bytes, but the description says "
                f"{field.size}; make them agree",
            )
        return _Binding(field.path, holder=holder)
    if kind is _Kind.STRUCT:
        _check_struct_type(vmsd, field, ann, what)
        return _Binding(field.path, holder=holder)
    if kind is _Kind.CLOCK:
        if ann is not Clock:
            raise vmsd._error(
                field,
                f"{what} is annotated {_type_name(ann)}, but vmstate_clock needs Clock",
            )
        return _Binding(field.path, holder=holder)
    raise AssertionError(kind)


def _check_struct_type(
    vmsd: VMStateDescription[Any], field: VMStateField[Any], ann: object, what: str
) -> None:
    inner = field.vmsd
    assert inner is not None
    if not isinstance(ann, type):
        raise vmsd._error(
            field, f"{what} is annotated {_type_name(ann)}, which is not a class"
        )
    if not inner._bindings:
        raise vmsd._error(
            field,
            f"the nested description '{inner.name}' is not attached to a class; "
            f"write 'vmsd = ...' in the body of {ann.__name__} or pass "
            f"state={ann.__name__}",
        )
    if not inner.is_bound_to(ann):
        owners = ", ".join(sorted(k.__name__ for k in inner._bindings))
        raise vmsd._error(
            field,
            f"{what} is annotated {ann.__name__}, but the nested description "
            f"'{inner.name}' describes {owners}",
        )


# -- attribute access ----------------------------------------------------------------


def _deref(value: Any) -> Any:
    if isinstance(value, BqlRefCell | BqlCell):
        return value.get()
    return value


def _read(obj: object, path: tuple[str, ...]) -> Any:
    value: Any = obj
    for attr in path:
        value = _deref(getattr(value, attr))
    return value


def _write(obj: object, path: tuple[str, ...], value: object) -> None:
    attr = path[0]
    current = getattr(obj, attr)
    if len(path) == 1:
        if isinstance(current, BqlRefCell | BqlCell):
            current.set(value)
        else:
            setattr(obj, attr, value)
        return
    if isinstance(current, BqlRefCell):
        with current.borrow_mut() as inner:
            _write(inner, path[1:], value)
    elif isinstance(current, BqlCell):
        _write(current.get(), path[1:], value)
    else:
        _write(current, path[1:], value)


def _modify(obj: object, path: tuple[str, ...], fn: Callable[[Any], None]) -> None:
    """Call ``fn`` on the object at ``path``, mutably borrowing cells on the way.

    A :class:`~qemu_api.bql.BqlStruct` on the way is borrowed too, and ``fn``
    gets its raw view: loading changes lists and nested objects in place.
    """
    current = getattr(obj, path[0])
    if isinstance(current, BqlRefCell | BqlStruct):
        with current.borrow_mut() as inner:
            if len(path) == 1:
                fn(inner)
            else:
                _modify(inner, path[1:], fn)
        return
    if isinstance(current, BqlCell):
        current = current.get()
    if len(path) == 1:
        fn(current)
    else:
        _modify(current, path[1:], fn)


# -- the clock (hw/core/clock-vmstate.c) -----------------------------------------------


@final
@dataclasses.dataclass
class _ClockView:
    """The migrated part of a Clock, in QEMU's ``Clock`` field names."""

    period: UInt64
    multiplier: UInt32
    divider: UInt32

    @classmethod
    def of(cls, clk: Clock) -> _ClockView:
        return cls(UInt64(clk.period()), UInt32(clk._multiplier), UInt32(clk._divider))

    def store(self, clk: Clock) -> None:
        if self.divider == 0:
            raise Error("the clock divider is 0")
        clk.set(int(self.period))
        clk.set_mul_div(int(self.multiplier), int(self.divider))


def _clock_pre_load(view: _ClockView) -> None:
    view.multiplier = UInt32(1)
    view.divider = UInt32(1)


def _muldiv_needed(view: _ClockView) -> bool:
    return view.multiplier != 1 or view.divider != 1


def _muldiv_post_load(view: _ClockView, version_id: int) -> None:
    if view.divider == 0:
        raise Error("the clock divider is 0; a stream must not carry it")


_VMSTATE_MULDIV: Final = VMStateDescription[_ClockView](
    "clock/muldiv",
    version_id=1,
    minimum_version_id=1,
    needed=_muldiv_needed,
    post_load=_muldiv_post_load,
    fields=[
        vmstate_uint32(lambda v: v.multiplier),
        vmstate_uint32(lambda v: v.divider),
    ],
)

_VMSTATE_CLOCK: Final = VMStateDescription[_ClockView](
    "clock",
    version_id=0,
    minimum_version_id=0,
    pre_load=_clock_pre_load,
    fields=[vmstate_uint64(lambda v: v.period)],
    subsections=[_VMSTATE_MULDIV],
    state=_ClockView,
)


# -- saving --------------------------------------------------------------------------


def _unique_name(vmsd: VMStateDescription[Any], field: VMStateField[Any]) -> str:
    same = [f for f in vmsd.fields if f.name == field.name]
    if len(same) == 1:
        return field.name
    return f"{field.name}[{same.index(field)}]"


def _can_compress(field: VMStateField[Any]) -> bool:
    """QEMU's ``vmsd_can_compress``: whether array elements share one description."""
    if field.test is not None:
        return False
    if field.kind in _STRUCTS or field.kind is _Kind.CLOCK:
        inner = field.vmsd
        assert inner is not None
        if inner.subsections:
            return False
        return all(_can_compress(f) for f in inner.fields)
    return True


def _field_error(
    vmsd: VMStateDescription[Any], field: VMStateField[Any], exc: Error
) -> Error:
    return exc.prepend(f"VMState '{vmsd.name}', field '{field.name}': ")


def vmstate_save_state(
    f: QEMUFileWriter,
    vmsd: VMStateDescription[T],
    opaque: T,
    vmdesc: JSONObject | None = None,
) -> None:
    """Write ``opaque``'s state as ``vmsd`` describes it (``vmstate_save_state``).

    Runs ``pre_save``, writes the fields in order and the needed subsections,
    then runs ``post_save``.

    Args:
        f: the stream.
        vmsd: the description.
        opaque: the state.
        vmdesc: when given, filled with QEMU's JSON description of what was
            written (``vmsd_name``, ``version``, ``fields``, ``subsections``).

    Raises:
        Error: a value does not fit its field (naming the field), or a hook
            raised.
    """
    _save(f, vmsd, opaque, vmdesc)


def _save(
    f: QEMUFileWriter,
    vmsd: VMStateDescription[Any],
    opaque: object,
    vmdesc: JSONObject | None,
) -> None:
    bindings = vmsd._binding(opaque)
    if vmsd.pre_save is not None:
        vmsd.pre_save(opaque)
    fields_desc: list[object] | None = None
    if vmdesc is not None:
        vmdesc["vmsd_name"] = vmsd.name
        vmdesc["version"] = vmsd.version_id
        fields_desc = []
        vmdesc["fields"] = fields_desc
    values: dict[str, object] = {}
    for field, binding in zip(vmsd.fields, bindings, strict=True):
        try:
            _save_field(f, vmsd, field, binding, opaque, values, fields_desc)
        except Error as exc:
            raise _field_error(vmsd, field, exc) from None
    subs_desc: list[object] = []
    for sub in vmsd.subsections:
        if sub.needed is not None and not sub.needed(opaque):
            continue
        f.put_byte(QEMU_VM_SUBSECTION)
        f.put_counted_string(sub.name)
        f.put_be32(sub.version_id)
        sub_desc: JSONObject | None = None
        if vmdesc is not None:
            sub_desc = {}
            subs_desc.append(sub_desc)
        _save(f, sub, opaque, sub_desc)
    if vmdesc is not None and subs_desc:
        vmdesc["subsections"] = subs_desc
    if vmsd.post_save is not None:
        vmsd.post_save(opaque)


def _element_desc(
    vmsd: VMStateDescription[Any],
    field: VMStateField[Any],
    i: int,
    n: int,
    type_name: str,
) -> JSONObject:
    entry: JSONObject = {"name": _unique_name(vmsd, field)}
    if n > 1:
        if _can_compress(field):
            entry["array_len"] = n
        else:
            entry["index"] = i
    entry["type"] = type_name
    return entry


def _put_scalar(f: QEMUFileWriter, info: VMStateInfo, value: int) -> None:
    size = info.size
    if size == 4:
        f.put_be32(value)
    elif size == 8:
        f.put_be64(value)
    elif size == 1:
        f.put_byte(value)
    else:
        f.put_be16(value)


def _save_field(
    f: QEMUFileWriter,
    vmsd: VMStateDescription[Any],
    field: VMStateField[Any],
    binding: _Binding,
    opaque: object,
    values: dict[str, object],
    desc: list[object] | None,
) -> None:
    kind = field.kind
    if kind is _Kind.VALIDATE:
        return
    if kind is _Kind.UNUSED:
        start = f.transferred()
        f.put_buffer(bytes(field.size))
        if desc is not None:
            pad = _element_desc(vmsd, field, 0, 1, "unused_buffer")
            pad["size"] = f.transferred() - start
            desc.append(pad)
        return
    value = _read(opaque, binding.path)
    if kind is _Kind.SCALAR:
        info = field.info
        assert info is not None
        assert binding.encode is not None
        wire = binding.encode(value)
        values[field.name] = wire
        _put_scalar(f, info, wire)
        if desc is not None:
            desc.append(
                {
                    "name": _unique_name(vmsd, field),
                    "type": info.name,
                    "size": info.size,
                }
            )
        return
    if kind is _Kind.BUFFER:
        data = bytes(value)
        if len(data) != field.size:
            raise Error(
                f"the buffer holds {len(data)} bytes, but the description says "
                f"{field.size}"
            )
        f.put_buffer(data)
        if desc is not None:
            desc.append(
                {
                    "name": _unique_name(vmsd, field),
                    "type": "buffer",
                    "size": field.size,
                }
            )
        return
    if kind is _Kind.STRUCT or kind is _Kind.CLOCK:
        inner = field.vmsd
        assert inner is not None
        target = _ClockView.of(value) if kind is _Kind.CLOCK else value
        start = f.transferred()
        sub: JSONObject | None = None if desc is None else {}
        _save(f, inner, target, sub)
        if desc is not None and sub is not None:
            one = _element_desc(vmsd, field, 0, 1, "struct")
            one["struct"] = sub
            one["size"] = f.transferred() - start
            desc.append(one)
        return
    # Arrays.
    n = _element_count(field, values, value)
    if kind in _ARRAYS:
        info = field.info
        assert info is not None
        assert binding.encode is not None
        encode = binding.encode
        packed = None if binding.bulk is None else _pack_array(binding.bulk, value, n)
        if packed is not None:
            f.put_buffer(packed)
        else:
            for i in range(n):
                _put_scalar(f, info, encode(value[i]))
        if desc is not None and n:
            entry = _element_desc(vmsd, field, 0, n, info.name)
            entry["size"] = info.size
            desc.append(entry)
            if not _can_compress(field):
                for i in range(1, n):
                    more = _element_desc(vmsd, field, i, n, info.name)
                    more["size"] = info.size
                    desc.append(more)
        return
    inner = field.vmsd
    assert inner is not None
    if desc is None:
        flat = _flat(inner, value)
        packed = None if flat is None else flat.pack(value, n)
        if packed is not None:
            f.put_buffer(packed)
            return
    compress = _can_compress(field)
    for i in range(n):
        start = f.transferred()
        sub = None
        if desc is not None and (i == 0 or not compress):
            sub = {}
        _save(f, inner, value[i], sub)
        if desc is not None and sub is not None:
            entry = _element_desc(vmsd, field, i, n, "struct")
            entry["struct"] = sub
            entry["size"] = f.transferred() - start
            desc.append(entry)


def _element_count(
    field: VMStateField[Any],
    values: Mapping[str, object],
    current: Sequence[object],
) -> int:
    if field.kind in _VARRAYS:
        assert field.num_field is not None
        count = values.get(field.num_field)
        if not isinstance(count, int):
            raise Error(f"the element count '{field.num_field}' is not an integer")
        n = int(count)
        if n < 0:
            raise Error(f"the element count '{field.num_field}' is negative ({n})")
    else:
        n = field.num
    if len(current) < n:
        raise Error(
            f"the list has {len(current)} elements, but {n} are to be migrated; "
            "the list must be at least that long"
        )
    return n


# -- loading -------------------------------------------------------------------------


@final
class LoadedState:
    """The values of one description read from a stream, not yet stored.

    Made by :func:`vmstate_parse_state` (or :func:`vmstate_capture_state`)
    and stored with :func:`vmstate_apply_state`.

    Attributes:
        vmsd: the description.
        version_id: the version the values were written with.
        values: one entry per field, None for fields not in that version.
        subsections: the subsections present, in stream order.
    """

    __slots__ = ("subsections", "values", "version_id", "vmsd")

    def __init__(
        self,
        vmsd: VMStateDescription[Any],
        version_id: int,
        values: list[object],
        subsections: list[LoadedState],
    ) -> None:
        self.vmsd = vmsd
        self.version_id = version_id
        self.values = values
        self.subsections = subsections

    def field_value(self, name: str) -> object:
        """Return the value loaded for the field ``name`` (None if absent).

        Raises:
            KeyError: the description has no such field.
        """
        for field, value in zip(self.vmsd.fields, self.values, strict=True):
            if field.name == name:
                return value
        raise KeyError(name)

    @override
    def __repr__(self) -> str:
        return f"LoadedState('{self.vmsd.name}', version_id={self.version_id})"


def vmstate_parse_state(
    f: QEMUFileReader,
    vmsd: VMStateDescription[T],
    opaque: T,
    version_id: int,
) -> LoadedState:
    """Read and check ``vmsd``'s state from ``f`` without changing ``opaque``.

    This is the reading half of QEMU's ``vmstate_load_state``: version checks,
    every field (converted to the attribute's type, so a value that does not
    fit is reported now), and the subsections that follow.  ``opaque`` is
    only read, for array capacities and counts absent from old versions.

    Args:
        f: the stream, positioned at the state.
        vmsd: the description.
        opaque: the state the values are for.
        version_id: the version the stream says the state has.

    Returns:
        The values, for :func:`vmstate_apply_state`.

    Raises:
        Error: the version is too new or too old, the stream ends early, a
            value does not fit, or an unknown subsection follows; the message
            names the description and field.
    """
    return _parse(f, vmsd, opaque, version_id)


def _parse(
    f: QEMUFileReader,
    vmsd: VMStateDescription[Any],
    opaque: object,
    version_id: int,
) -> LoadedState:
    if version_id > vmsd.version_id:
        raise vmsd._error(
            None,
            f"incoming version_id {version_id} is too new for local version_id "
            f"{vmsd.version_id}",
        )
    if version_id < vmsd.minimum_version_id:
        raise vmsd._error(
            None,
            f"incoming version_id {version_id} is too old for local minimum "
            f"version_id {vmsd.minimum_version_id}",
        )
    bindings = vmsd._binding(opaque)
    values: list[object] = []
    by_name: dict[str, object] = {}
    for field, binding in zip(vmsd.fields, bindings, strict=True):
        if field.version_id > version_id:
            values.append(None)
            if field.kind is _Kind.SCALAR and field.name not in by_name:
                # A count absent from this version: QEMU uses the current value.
                by_name[field.name] = _read(opaque, binding.path)
            continue
        try:
            value = _parse_field(f, field, binding, opaque, by_name)
        except Error as exc:
            raise _field_error(vmsd, field, exc) from None
        values.append(value)
        by_name.setdefault(field.name, value)
    subsections: list[LoadedState] = []
    seen: set[str] = set()
    while f.peek_byte() == QEMU_VM_SUBSECTION:
        length = f.peek_byte(1)
        if length < len(vmsd.name) + 1:
            break
        raw = bytes(f.peek_buffer(length, 2))
        if len(raw) != length:
            break
        name = stream_text(raw)
        if not name.startswith(vmsd.name):
            break
        sub = next((s for s in vmsd.subsections if s.name == name), None)
        if sub is None:
            known = ", ".join(f"'{s.name}'" for s in vmsd.subsections) or "none"
            raise vmsd._error(
                None,
                f"the stream has subsection '{name}', which this description does "
                f"not know (known subsections: {known})",
            )
        if name in seen:
            raise vmsd._error(None, f"subsection '{name}' appears twice")
        seen.add(name)
        f.skip(2 + length)
        try:
            sub_version = f.get_be32()
        except Error as exc:
            raise exc.prepend(f"VMState '{name}': ") from None
        subsections.append(_parse(f, sub, opaque, sub_version))
    return LoadedState(vmsd, version_id, values, subsections)


def _get_scalar(f: QEMUFileReader, info: VMStateInfo) -> int:
    return f.get_int(info.size, info.signed)


def _parse_field(
    f: QEMUFileReader,
    field: VMStateField[Any],
    binding: _Binding,
    opaque: object,
    by_name: Mapping[str, object],
) -> object:
    kind = field.kind
    if kind is _Kind.VALIDATE:
        return None
    if kind is _Kind.UNUSED:
        f.skip(field.size)
        return None
    if kind is _Kind.SCALAR:
        info = field.info
        assert info is not None
        assert binding.decode is not None
        return binding.decode(_get_scalar(f, info))
    if kind is _Kind.BUFFER:
        return bytes(f.get_buffer(field.size))
    current = _read(opaque, binding.path)
    if kind is _Kind.STRUCT:
        assert field.vmsd is not None
        return _parse(f, field.vmsd, current, field.vmsd.version_id)
    if kind is _Kind.CLOCK:
        assert field.vmsd is not None
        return _parse(f, field.vmsd, _ClockView.of(current), field.vmsd.version_id)
    n = _element_count(field, by_name, current)
    if kind in _ARRAYS:
        info = field.info
        assert info is not None
        assert binding.decode is not None
        decode = binding.decode
        if binding.bulk is not None:
            fast = _unpack_array(f, binding.bulk, n)
            if fast is not None:
                return fast
        out: list[object] = []
        for i in range(n):
            try:
                out.append(decode(_get_scalar(f, info)))
            except Error as exc:
                raise exc.prepend(f"element {i}: ") from None
        return out
    inner = field.vmsd
    assert inner is not None
    flat = _flat(inner, current[:n])
    if flat is not None:
        loaded = flat.unpack(f, inner, n)
        if loaded is not None:
            return loaded
    structs: list[object] = []
    for i in range(n):
        try:
            structs.append(_parse(f, inner, current[i], inner.version_id))
        except Error as exc:
            raise exc.prepend(f"element {i}: ") from None
    return structs


def vmstate_apply_state(
    vmsd: VMStateDescription[T], opaque: T, loaded: LoadedState
) -> None:
    """Store values read by :func:`vmstate_parse_state` into ``opaque``.

    The writing half of QEMU's ``vmstate_load_state``: ``pre_load``, the
    fields in order (nested structs get their own hooks), the validation
    entries, the subsections, then ``post_load``.

    If a hook or a validation entry fails, ``opaque`` may be partly changed:
    take a :func:`vmstate_capture_state` first and restore it (as
    :func:`vmstate_load_state` does).

    Raises:
        Error: a validation entry failed or a hook rejected the state; the
            message names the description and field.
    """
    _apply(vmsd, opaque, loaded, hooks=True)


def _apply(
    vmsd: VMStateDescription[Any],
    opaque: object,
    loaded: LoadedState,
    *,
    hooks: bool,
    restoring: bool = False,
) -> None:
    if loaded.vmsd is not vmsd:
        raise vmsd._error(
            None, f"the loaded values are for '{loaded.vmsd.name}', not this state"
        )
    bindings = vmsd._binding(opaque)
    if hooks and vmsd.pre_load is not None:
        try:
            vmsd.pre_load(opaque)
        except Error as exc:
            raise exc.prepend(f"VMState '{vmsd.name}': pre_load: ") from None
    for field, binding, value in zip(vmsd.fields, bindings, loaded.values, strict=True):
        if field.kind is _Kind.VALIDATE:
            if (
                hooks
                and field.test is not None
                and not field.test(opaque, loaded.version_id)
            ):
                raise vmsd._error(field, "input validation failed")
            continue
        if field.version_id > loaded.version_id or field.kind is _Kind.UNUSED:
            continue
        _apply_field(field, binding, opaque, value, hooks, restoring)
    for sub in loaded.subsections:
        _apply(sub.vmsd, opaque, sub, hooks=hooks, restoring=restoring)
    if (hooks or restoring) and vmsd.post_load is not None:
        try:
            vmsd.post_load(opaque, loaded.version_id)
        except Error as exc:
            raise exc.prepend(f"VMState '{vmsd.name}': post_load: ") from None


def _apply_timer(timer: Timer, expire: int) -> None:
    if expire == -1:
        timer.delete()
    else:
        timer.mod_ns(expire)


def _apply_field(
    field: VMStateField[Any],
    binding: _Binding,
    opaque: object,
    value: object,
    hooks: bool,
    restoring: bool,
) -> None:
    kind = field.kind
    path = binding.path
    if kind is _Kind.SCALAR:
        if field.info is vmstate_info_timer:
            assert isinstance(value, int)
            expire = value
            _modify(opaque, path, lambda t: _apply_timer(t, expire))
        else:
            _write(opaque, path, value)
        return
    if kind is _Kind.BUFFER:
        assert isinstance(value, bytes)
        current = _read(opaque, path)
        if isinstance(current, bytearray) and len(current) == len(value):
            current[:] = value
        else:
            _write(opaque, path, type(current)(value))
        return
    if kind is _Kind.STRUCT:
        assert field.vmsd is not None
        assert isinstance(value, LoadedState)
        inner_vmsd = field.vmsd
        loaded = value
        _modify(
            opaque,
            path,
            lambda obj: _apply(
                inner_vmsd, obj, loaded, hooks=hooks, restoring=restoring
            ),
        )
        return
    if kind is _Kind.CLOCK:
        assert isinstance(value, LoadedState)
        clock_state = value

        def store(clk: Clock) -> None:
            view = _ClockView.of(clk)
            _apply(_VMSTATE_CLOCK, view, clock_state, hooks=True)
            view.store(clk)

        _modify(opaque, path, store)
        return
    assert isinstance(value, list)
    items = value
    if kind in _ARRAYS:
        if field.info is vmstate_info_timer:

            def arm(timers: list[Timer]) -> None:
                for timer, expire in zip(timers, items, strict=False):
                    _apply_timer(timer, expire)

            _modify(opaque, path, arm)
        else:

            def fill(lst: list[object]) -> None:
                lst[: len(items)] = items

            _modify(opaque, path, fill)
        return
    inner = field.vmsd
    assert inner is not None

    def each(lst: list[object]) -> None:
        flat = _flat(inner, lst[: len(items)])
        if flat is not None and flat.store(lst, items):
            return
        for obj, loaded in zip(lst, items, strict=False):
            assert isinstance(loaded, LoadedState)
            _apply(inner, obj, loaded, hooks=hooks, restoring=restoring)

    _modify(opaque, path, each)


def vmstate_capture_state(vmsd: VMStateDescription[T], opaque: T) -> LoadedState:
    """Take the current values of every field and subsection of ``opaque``.

    Nothing is written.  ``pre_save`` runs first, as for a save, so that a
    device whose fields are a migration-only view of its state (filled by
    ``pre_save``, read back by ``post_load``) is captured as it is now.
    :func:`vmstate_restore_state` puts the values back, which undoes a load
    that a hook rejected halfway.

    Raises:
        Error: a value does not fit its field.
    """
    f = QEMUFileWriter()
    _save_all(f, vmsd, opaque)
    return _parse_all(QEMUFileReader(f.getvalue()), vmsd, opaque)


def _save_all(f: QEMUFileWriter, vmsd: VMStateDescription[Any], opaque: object) -> None:
    bindings = vmsd._binding(opaque)
    if vmsd.pre_save is not None:
        vmsd.pre_save(opaque)
    values: dict[str, object] = {}
    for field, binding in zip(vmsd.fields, bindings, strict=True):
        try:
            if field.kind is _Kind.STRUCT or field.kind is _Kind.CLOCK:
                inner = field.vmsd
                assert inner is not None
                value = _read(opaque, binding.path)
                target = _ClockView.of(value) if field.kind is _Kind.CLOCK else value
                _save_all(f, inner, target)
            elif field.kind in (_Kind.STRUCT_ARRAY, _Kind.STRUCT_VARRAY):
                # The whole list, not just the counted part: a load may have
                # changed elements past the current count.
                inner = field.vmsd
                assert inner is not None
                elems = _read(opaque, binding.path)
                flat = _flat(inner, elems)
                packed = None if flat is None else flat.pack(elems, len(elems))
                if packed is not None:
                    f.put_buffer(packed)
                else:
                    for elem in elems:
                        _save_all(f, inner, elem)
            elif field.kind is _Kind.VARRAY:
                info = field.info
                assert info is not None
                assert binding.encode is not None
                elems = _read(opaque, binding.path)
                packed = (
                    None
                    if binding.bulk is None
                    else _pack_array(binding.bulk, elems, len(elems))
                )
                if packed is not None:
                    f.put_buffer(packed)
                else:
                    for elem in elems:
                        _put_scalar(f, info, binding.encode(elem))
            else:
                _save_field(f, vmsd, field, binding, opaque, values, None)
        except Error as exc:
            raise _field_error(vmsd, field, exc) from None
    for sub in vmsd.subsections:
        _save_all(f, sub, opaque)


def _parse_all(
    f: QEMUFileReader, vmsd: VMStateDescription[Any], opaque: object
) -> LoadedState:
    bindings = vmsd._binding(opaque)
    values: list[object] = []
    by_name: dict[str, object] = {}
    for field, binding in zip(vmsd.fields, bindings, strict=True):
        if field.kind is _Kind.STRUCT or field.kind is _Kind.CLOCK:
            inner = field.vmsd
            assert inner is not None
            current = _read(opaque, binding.path)
            target = _ClockView.of(current) if field.kind is _Kind.CLOCK else current
            value: object = _parse_all(f, inner, target)
        elif field.kind in (_Kind.STRUCT_ARRAY, _Kind.STRUCT_VARRAY):
            inner = field.vmsd
            assert inner is not None
            elems = _read(opaque, binding.path)
            flat = _flat(inner, elems)
            bulk = None if flat is None else flat.unpack(f, inner, len(elems))
            value = (
                bulk if bulk is not None else [_parse_all(f, inner, e) for e in elems]
            )
        elif field.kind is _Kind.VARRAY:
            info = field.info
            assert info is not None
            assert binding.decode is not None
            decode = binding.decode
            n = len(_read(opaque, binding.path))
            fast = None if binding.bulk is None else _unpack_array(f, binding.bulk, n)
            value = (
                fast
                if fast is not None
                else [decode(_get_scalar(f, info)) for _ in range(n)]
            )
        else:
            value = _parse_field(f, field, binding, opaque, by_name)
        values.append(value)
        by_name.setdefault(field.name, value)
    subs = [_parse_all(f, sub, opaque) for sub in vmsd.subsections]
    return LoadedState(vmsd, vmsd.version_id, values, subs)


def vmstate_restore_state(
    vmsd: VMStateDescription[T], opaque: T, loaded: LoadedState
) -> None:
    """Put back values taken by :func:`vmstate_capture_state`.

    The values are stored, then ``post_load`` runs (neither ``pre_load`` nor
    the validation entries), so that a device rebuilds what it derives from
    its migrated fields from the values put back.  Should ``post_load``
    refuse the very state it had, the values are stored again without it.
    """
    try:
        _apply(vmsd, opaque, loaded, hooks=False, restoring=True)
    except Error:
        _apply(vmsd, opaque, loaded, hooks=False)


def vmstate_load_state(
    f: QEMUFileReader, vmsd: VMStateDescription[T], opaque: T, version_id: int
) -> None:
    """Load ``vmsd``'s state into ``opaque``, all or nothing (``vmstate_load_state``).

    Parses and checks everything first; then stores the values and runs the
    hooks; if a hook or validation entry rejects the state, the previous
    values are restored before the error propagates.

    Raises:
        Error: the stream is bad or the state was rejected; ``opaque``'s
            migrated fields are as they were.
    """
    loaded = _parse(f, vmsd, opaque, version_id)
    # The previous values as bytes; parsed only if they are to be put back
    # (loading changes lists in place, so their lengths stay).
    backup = QEMUFileWriter()
    _save_all(backup, vmsd, opaque)
    try:
        _apply(vmsd, opaque, loaded, hooks=True)
    except Error:
        previous = _parse_all(QEMUFileReader(backup.getvalue()), vmsd, opaque)
        vmstate_restore_state(vmsd, opaque, previous)
        raise


# -- registration (vmstate_register) -------------------------------------------------


@final
class SaveStateEntry:
    """A state registered for migration (QEMU's ``SaveStateEntry``).

    Attributes:
        idstr: the section name in the stream.
        instance_id: distinguishes states with the same ``idstr``.
        vmsd: the description.
        opaque: the state (usually the device).
    """

    __slots__ = ("idstr", "instance_id", "opaque", "vmsd")

    def __init__(
        self,
        idstr: str,
        instance_id: int,
        vmsd: VMStateDescription[Any],
        opaque: object,
    ) -> None:
        self.idstr = idstr
        self.instance_id = instance_id
        self.vmsd = vmsd
        self.opaque = opaque

    @property
    def version_id(self) -> int:
        """The version written in the section header."""
        return self.vmsd.version_id

    @override
    def __repr__(self) -> str:
        return f"SaveStateEntry('{self.idstr}', {self.instance_id})"


_entries: list[SaveStateEntry] = []


def vmstate_register(
    opaque: T,
    vmsd: VMStateDescription[T],
    instance_id: int = VMSTATE_INSTANCE_ID_ANY,
) -> SaveStateEntry:
    """Register ``opaque`` for migration under ``vmsd.name`` (``vmstate_register``).

    Realized devices with a ``vmsd`` class attribute are registered
    automatically; this is for other states.

    Args:
        opaque: the state.
        vmsd: its description; bound to ``type(opaque)`` if not yet.
        instance_id: :data:`VMSTATE_INSTANCE_ID_ANY` for one more than the
            highest instance id registered under the same name (QEMU's
            ``calculate_new_instance_id``), or an explicit id.

    Returns:
        The entry.

    Raises:
        Error: ``vmsd`` does not match ``opaque``'s class, or the name and
            instance id are already registered.
    """
    if not vmsd.is_bound_to(type(opaque)):
        vmsd.bind(type(opaque))
    idstr = vmsd.name
    if instance_id == VMSTATE_INSTANCE_ID_ANY:
        instance_id = 0
        for e in _entries:
            if e.idstr == idstr and instance_id <= e.instance_id:
                instance_id = e.instance_id + 1
    elif any(e.idstr == idstr and e.instance_id == instance_id for e in _entries):
        raise Error(
            f"vmstate_register(): '{idstr}' instance {instance_id} is already "
            "registered; pass VMSTATE_INSTANCE_ID_ANY"
        )
    entry = SaveStateEntry(idstr, instance_id, vmsd, opaque)
    _entries.append(entry)
    return entry


def vmstate_unregister(opaque: object, vmsd: VMStateDescription[Any]) -> None:
    """Forget the registration of ``opaque`` with ``vmsd`` (``vmstate_unregister``)."""
    _entries[:] = [e for e in _entries if not (e.opaque is opaque and e.vmsd is vmsd)]


def savevm_entries() -> list[SaveStateEntry]:
    """Return the registered states, in registration order (a copy)."""
    return list(_entries)


def _device_vmsd(dev: DeviceState) -> VMStateDescription[Any] | None:
    vmsd = getattr(type(dev), "vmsd", None)
    if vmsd is None:
        return None
    if not isinstance(vmsd, VMStateDescription):
        raise Error(
            f"device type '{dev.typename()}' has a 'vmsd' class attribute that is a "
            f"{type(vmsd).__name__}, not a VMStateDescription"
        )
    return vmsd


@final
class _VMStateDeviceListener(DeviceListener):
    """Registers realized devices that have a ``vmsd`` (``device_set_realized``)."""

    @override
    def realize(self, dev: DeviceState) -> None:
        vmsd = _device_vmsd(dev)
        if vmsd is not None:
            vmstate_register(dev, vmsd)

    @override
    def unrealize(self, dev: DeviceState) -> None:
        vmsd = _device_vmsd(dev)
        if vmsd is not None:
            vmstate_unregister(dev, vmsd)


device_listener_register(_VMStateDeviceListener())
