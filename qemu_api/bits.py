"""Fixed-width integers, bit operations and register bitfields.

This module models QEMU's ``include/qemu/bitops.h`` (``deposit32``,
``extract64``, ``sextract32``, ``BIT``, ``MAKE_64BIT_MASK``), the Rust
``IntegerExt`` trait of ``bitops.rs``, the ``TryInto`` derive of
``qemu_api_macros`` and the bilge register bitfields used by QEMU's Rust
devices.

**Fixed-width integers.**  :class:`u8`, :class:`u16`, :class:`u32`,
:class:`u64` (unsigned) and :class:`i8`, :class:`i16`, :class:`i32`,
:class:`i64` (signed, two's complement) are ``int`` subclasses for register
values and C integers.  Converting is explicit and truncates like a C cast or
Rust's ``as``: ``u32(x)``, ``i8(0xFF) == -1``; :meth:`FixedInt.checked`
refuses a value that does not fit.  The arithmetic rules:

1. **Same type, same type: wrap around.**  ``u32 + u32`` is a ``u32``
   modulo 2**32, ``i8(127) + i8(1)`` is ``i8(-128)``: C's unsigned
   arithmetic, C's signed arithmetic under QEMU's ``-fwrapv``, Rust's
   ``wrapping_*``.  Unlike C, ``u8`` and ``u16`` are not promoted to
   ``int`` first: ``u8(250) + u8(10)`` is ``u8(4)``, as in Rust.
2. **Anything else: the exact result, as a plain int.**  A plain ``int``, a
   ``bool``, another width or the other signedness as the second operand gives
   the mathematically exact ``int``, never a wrapped value::

       u32(5) + 10_000_000_000  -> 10000000005      1 - u32(2)     -> -1
       u8(200) * u32(2)         -> 400              i32(-1) + u32(1) -> 0

   Narrowing is then always written out: ``u32(now + 1)``.
3. **Shifts keep the left operand's type** whatever the type of the count
   (in C and Rust the count is not an arithmetic operand): ``u32(1) << 32``
   is ``u32(0)``; ``>>`` of a signed value is arithmetic.  **Unsigned AND
   keeps its type:** ``&`` of an unsigned value with any integer can only
   clear bits, so the result is exact (``reg & ~FLAG`` stays a ``u32``).
4. **Division is C's** wherever a fixed-width integer takes part: ``/``
   and ``//`` truncate toward zero, ``%`` has the sign of the dividend
   (``i32(-7) / i32(2) == -3``, ``i32(-7) % i32(2) == -1``; Python's floor
   rules are ``int(a) // int(b)``).  The type follows rules 1 and 2; the
   one overflow, ``MIN / -1``, wraps to ``MIN`` (Rust's ``wrapping_div``).
5. Unary ``-``, ``~``, ``+`` and ``abs()`` keep the type and wrap
   (``-u8(1) == u8(0xff)``, ``abs(i8(-128)) == i8(-128)``).  ``**`` is
   ``int``'s; comparisons and hashing are ``int``'s; a ``float`` operand
   is a ``TypeError``.

Why rule 2: a Python ``int`` has no width.  C's usual arithmetic conversions
convert both operands to the wider type; an unbounded ``int`` is wider than
any fixed type, so the consistent result is the exact ``int``.  Taking the
fixed operand's width instead (C's rule for an ``int`` literal that fits)
makes the type depend on the value, which no type checker can follow, and
silently truncates ``now_ns + ticks * 1_000_000_000`` when ``ticks`` is a
``u32``.  Different widths get the same treatment where C would widen and
Rust would refuse to compile: the author states the width.  mypy sees the
rules: the operators are overloaded as ``(Self) -> Self`` and
``(int) -> int``, so ``reg: u32 = reg + 1`` and passing ``reg + 1`` where a
``u32`` is expected are type errors (write ``reg + u32(1)`` to wrap, or
``u32(reg + 1)`` to narrow), while every fixed-width value still goes
anywhere an ``int`` does (``hex()``, indexing, ``%x``).

Each operation costs one Python-level call (a few hundred ns, against tens
for a plain ``int``); code that needs the last nanosecond can compute on
plain ``int`` and convert once.

**Bit operations.**  :func:`deposit32`, :func:`extract32`, :func:`sextract32`
and their 64-bit forms follow ``bitops.h`` and check their arguments as QEMU's
``assert`` does; the fixed-width types have the same operations as methods
(``IntegerExt``): ``reg.deposit(start, length, value)``, ``reg.extract(start,
length)``.

**Enums from register values.**  :func:`try_from_int` turns an integer into an
enum member or raises an :class:`~qemu_api.error.Error` listing the valid
values; :func:`from_int_or_none` is the exception-free form for guest input.

**Register bitfields.**  A :class:`Bitfield` subclass declares named fields
with :class:`BitField` descriptors; mypy sees each field's type (``bool``,
``int``, an enum or a nested bitfield):

>>> import enum
>>> class Mode(enum.IntEnum):
...     CHAR = 0
...     FIFO = 1
>>> class Control(Bitfield, width=16):
...     enable = BitField(0, 1, bool)
...     mode = BitField(8, 1, Mode)
...     watermark = BitField(4, 3, int)
>>> c = Control.from_int(0x0101)
>>> c
Control(enable=True, mode=Mode.FIFO, watermark=0, 0x0101)
>>> c.watermark = 5
>>> int(c)
337
>>> c.enable = False
>>> c
Control(enable=False, mode=Mode.FIFO, watermark=5, 0x0150)

Bitfield values are **mutable** (a device updates one flag of a register in
place, as bilge's setters do) and compare equal when their type and integer
value are equal; :meth:`Bitfield.copy` gives an independent value.  Bits not
covered by a field are **preserved**: ``from_int`` keeps them and ``int()``
returns them, as bilge keeps ``reserved`` fields.  A device whose reserved
bits read as zero masks them with :meth:`Bitfield.from_int_masked` or
:attr:`Bitfield.FIELDS_MASK`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import (
    ClassVar,
    Final,
    Generic,
    Self,
    SupportsIndex,
    TypeVar,
    final,
    overload,
)

from qemu_api._compat import override
from qemu_api.error import Error

__all__ = [
    "BitField",
    "Bitfield",
    "FixedInt",
    "FixedSInt",
    "FixedUInt",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "bit",
    "clz32",
    "clz64",
    "ctpop",
    "ctz32",
    "ctz64",
    "deposit32",
    "deposit64",
    "extract8",
    "extract16",
    "extract32",
    "extract64",
    "from_int_or_none",
    "i8",
    "i16",
    "i32",
    "i64",
    "make_64bit_mask",
    "mask",
    "sextract32",
    "sextract64",
    "try_from_int",
    "u8",
    "u16",
    "u32",
    "u64",
]

E = TypeVar("E", bound=enum.Enum)
V = TypeVar("V")


# --- bitops.h -------------------------------------------------------------------


def _check_field(fn: str, start: int, length: int, bits: int) -> None:
    if start < 0 or length <= 0 or length > bits - start:
        raise ValueError(
            f"{fn}(start={start}, length={length}): the field must lie within "
            f"{bits} bits (0 <= start, 0 < length <= {bits} - start)"
        )


def bit(n: int) -> int:
    """Return an integer with only bit ``n`` set (QEMU's ``BIT``/``BIT_ULL``).

    >>> hex(bit(4))
    '0x10'
    """
    if n < 0:
        raise ValueError(f"bit({n}): the bit number must be 0 or more")
    return 1 << n


def mask(start: int, length: int) -> int:
    """Return ``length`` one bits starting at bit ``start``.

    This is Rust's ``IntegerExt::mask`` and, with its arguments swapped,
    QEMU's ``MAKE_64BIT_MASK(shift, length)``.

    >>> hex(mask(4, 3))
    '0x70'
    """
    if start < 0 or length < 0:
        raise ValueError(
            f"mask(start={start}, length={length}): both must be 0 or more"
        )
    return ((1 << length) - 1) << start


def make_64bit_mask(shift: int, length: int) -> int:
    """Return QEMU's ``MAKE_64BIT_MASK(shift, length)``, within 64 bits.

    >>> hex(make_64bit_mask(32, 32))
    '0xffffffff00000000'
    """
    _check_field("make_64bit_mask", shift, length, 64)
    return ((1 << length) - 1) << shift


def extract8(value: int, start: int, length: int) -> int:
    """Return ``length`` bits of an 8-bit ``value`` starting at bit ``start``.

    Raises:
        ValueError: the field does not lie within 8 bits.
    """
    _check_field("extract8", start, length, 8)
    return (value >> start) & ((1 << length) - 1)


def extract16(value: int, start: int, length: int) -> int:
    """Return ``length`` bits of a 16-bit ``value`` starting at bit ``start``.

    Raises:
        ValueError: the field does not lie within 16 bits.
    """
    _check_field("extract16", start, length, 16)
    return (value >> start) & ((1 << length) - 1)


def extract32(value: int, start: int, length: int) -> int:
    """Return ``length`` bits of a 32-bit ``value`` starting at bit ``start``.

    Raises:
        ValueError: the field does not lie within 32 bits.

    >>> hex(extract32(0x12345678, 8, 8))
    '0x56'
    """
    _check_field("extract32", start, length, 32)
    return (value >> start) & ((1 << length) - 1)


def extract64(value: int, start: int, length: int) -> int:
    """Return ``length`` bits of a 64-bit ``value`` starting at bit ``start``.

    Raises:
        ValueError: the field does not lie within 64 bits.

    >>> hex(extract64(0xFEDC_BA98_0000_0000, 48, 16))
    '0xfedc'
    """
    _check_field("extract64", start, length, 64)
    return (value >> start) & ((1 << length) - 1)


def sextract32(value: int, start: int, length: int) -> int:
    """Return a bit field of a 32-bit ``value``, sign-extended from its top bit.

    Raises:
        ValueError: the field does not lie within 32 bits.

    >>> sextract32(0x0000_0F00, 8, 4)
    -1
    >>> sextract32(0x0000_0700, 8, 4)
    7
    """
    _check_field("sextract32", start, length, 32)
    field = (value >> start) & ((1 << length) - 1)
    return field - (1 << length) if field >> (length - 1) else field


def sextract64(value: int, start: int, length: int) -> int:
    """Return a bit field of a 64-bit ``value``, sign-extended from its top bit.

    Raises:
        ValueError: the field does not lie within 64 bits.

    >>> sextract64(0xFFFF_FFFF_FFFF_FFFE, 0, 64)
    -2
    """
    _check_field("sextract64", start, length, 64)
    field = (value >> start) & ((1 << length) - 1)
    return field - (1 << length) if field >> (length - 1) else field


def deposit32(value: int, start: int, length: int, fieldval: int) -> int:
    """Return ``value`` with ``length`` bits at ``start`` replaced by ``fieldval``.

    ``fieldval`` is truncated to ``length`` bits and the result to 32 bits, as
    in QEMU.

    Raises:
        ValueError: the field does not lie within 32 bits.

    >>> hex(deposit32(0xFFFF_FFFF, 8, 8, 0x12))
    '0xffff12ff'
    """
    _check_field("deposit32", start, length, 32)
    m = ((1 << length) - 1) << start
    return ((value & ~m) | ((fieldval << start) & m)) & 0xFFFF_FFFF


def deposit64(value: int, start: int, length: int, fieldval: int) -> int:
    """Return ``value`` with ``length`` bits at ``start`` replaced by ``fieldval``.

    ``fieldval`` is truncated to ``length`` bits and the result to 64 bits.

    Raises:
        ValueError: the field does not lie within 64 bits.

    >>> hex(deposit64(0, 32, 32, 0xDEAD_BEEF))
    '0xdeadbeef00000000'
    """
    _check_field("deposit64", start, length, 64)
    m = ((1 << length) - 1) << start
    return ((value & ~m) | ((fieldval << start) & m)) & 0xFFFF_FFFF_FFFF_FFFF


def ctpop(value: int) -> int:
    """Return the number of one bits of a non-negative ``value``.

    >>> ctpop(0b1011)
    3
    """
    return value.bit_count()


def ctz32(value: int) -> int:
    """Return the number of trailing zero bits of a 32-bit value (32 for 0).

    >>> ctz32(0x100), ctz32(0)
    (8, 32)
    """
    value &= 0xFFFF_FFFF
    return (value & -value).bit_length() - 1 if value else 32


def ctz64(value: int) -> int:
    """Return the number of trailing zero bits of a 64-bit value (64 for 0)."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return (value & -value).bit_length() - 1 if value else 64


def clz32(value: int) -> int:
    """Return the number of leading zero bits of a 32-bit value (32 for 0).

    >>> clz32(1), clz32(0x8000_0000)
    (31, 0)
    """
    return 32 - (value & 0xFFFF_FFFF).bit_length()


def clz64(value: int) -> int:
    """Return the number of leading zero bits of a 64-bit value (64 for 0)."""
    return 64 - (value & 0xFFFF_FFFF_FFFF_FFFF).bit_length()


# --- fixed-width integers -------------------------------------------------------


def _bad_operand(cls: type[FixedInt], other: object) -> TypeError:
    return TypeError(
        f"unsupported operand for {cls._SHORT}: {type(other).__name__}; "
        "fixed-width integers combine only with int (convert with int() "
        "or the target type first)"
    )


def _c_div(a: int, b: int) -> int:
    """C's quotient ``a / b``: truncated toward zero (plain ``int`` arithmetic)."""
    q = int.__floordiv__(a, b)
    if q < 0 and int.__mul__(q, b) != a:
        q += 1
    return q


def _c_mod(a: int, b: int) -> int:
    """C's remainder ``a % b``: it has the sign of the dividend ``a``."""
    return int.__sub__(a, int.__mul__(b, _c_div(a, b)))


class FixedInt(int):
    """Base class of every fixed-width integer: :class:`FixedUInt`, :class:`FixedSInt`.

    An ``int`` of :attr:`BITS` bits.  An operation between two values of the
    same type wraps around and keeps the type; with any other integer it gives
    the exact result as a plain ``int`` (the rules are in the module
    documentation).  Use the concrete types; annotate with ``FixedInt`` only
    code that works on any of them.
    """

    __slots__ = ()
    BITS: ClassVar[int] = 0
    """The width in bits."""
    MASK: ClassVar[int] = 0
    """All ``BITS`` bits set: the bits a value occupies."""
    MIN: ClassVar[int] = 0
    """The smallest value."""
    MAX: ClassVar[int] = 0
    """The largest value."""
    SIGNED: ClassVar[bool] = False
    """Whether the type is signed (two's complement)."""
    _SHORT: ClassVar[str] = ""
    _SIGN: ClassVar[int] = 0  # the sign bit of a signed type, 0 if unsigned

    def __new__(cls, value: SupportsIndex = 0) -> Self:
        """Convert ``value``, keeping its low ``BITS`` bits (a C cast)."""
        s = cls._SIGN
        return int.__new__(cls, ((value.__index__() & cls.MASK) ^ s) - s)

    @classmethod
    def checked(cls, value: int) -> Self:
        """Convert ``value``, which must already fit (Rust's ``try_from``).

        Raises:
            Error: ``value`` is outside ``MIN..MAX``.
        """
        if not cls.MIN <= value <= cls.MAX:
            shown = f"{cls.MIN}..{cls.MAX}" if cls.SIGNED else f"0..{cls.MAX:#x}"
            raise Error(
                f"{value} does not fit in {cls._SHORT} ({shown}); "
                f"use {cls._SHORT}(value) to truncate it on purpose"
            )
        return int.__new__(cls, value)

    @override
    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if not cls.BITS:
            return  # FixedUInt, FixedSInt: no width yet
        # Speed: give each width its own copies of the binary operators, with
        # the class and the masks bound in a closure instead of looked up on
        # every operation (about 30% faster).  They behave exactly like the
        # generic methods below, which are what mypy and the docs see.
        keep = _KEEP_OPS | (_UNSIGNED_KEEP_OPS if not cls.SIGNED else frozenset())
        for name in _ARITH_OPS:
            op = getattr(int, name)
            if name in keep:
                setattr(cls, name, _specialized_keep(cls, op))
            else:
                setattr(cls, name, _specialized_arith(cls, op))
        for name, (fn, reflected) in _DIV_OPS.items():
            setattr(cls, name, _specialized_div(cls, fn, reflected=reflected))

    # The generic operators.  int.__xxx__ returns NotImplemented for operands
    # that are not ints (a float, say): that is a TypeError here, as a float
    # has no place in register arithmetic.

    def _arith(self, op: Callable[[int, int], int], other: int) -> int:
        """Same type: wrap around and keep it; another integer: the exact int."""
        r = op(self, other)
        if r is NotImplemented:
            raise _bad_operand(type(self), other)
        if type(other) is type(self):
            return type(self)(r)
        return r

    def _keep(self, op: Callable[[int, int], int], other: int) -> Self:
        """Keep this type whatever the other operand (shifts, unsigned ``&``)."""
        r = op(self, other)
        if r is NotImplemented:
            raise _bad_operand(type(self), other)
        return type(self)(r)

    def _div(self, fn: Callable[[int, int], int], other: int, reflected: bool) -> int:
        """C's division or remainder; same type: wrap around, else the exact int."""
        if not isinstance(other, int):
            raise _bad_operand(type(self), other)
        r = fn(other, self) if reflected else fn(self, other)
        if type(other) is type(self):
            return type(self)(r)
        return r

    @overload
    def __add__(self, other: Self) -> Self: ...
    @overload
    def __add__(self, other: int) -> int: ...
    @override
    def __add__(self, other: int) -> int:
        return self._arith(int.__add__, other)

    @override
    def __radd__(self, other: int) -> int:
        return self._arith(int.__radd__, other)

    @overload
    def __sub__(self, other: Self) -> Self: ...
    @overload
    def __sub__(self, other: int) -> int: ...
    @override
    def __sub__(self, other: int) -> int:
        return self._arith(int.__sub__, other)

    @override
    def __rsub__(self, other: int) -> int:
        return self._arith(int.__rsub__, other)

    @overload
    def __mul__(self, other: Self) -> Self: ...
    @overload
    def __mul__(self, other: int) -> int: ...
    @override
    def __mul__(self, other: int) -> int:
        return self._arith(int.__mul__, other)

    @override
    def __rmul__(self, other: int) -> int:
        return self._arith(int.__rmul__, other)

    @overload
    def __and__(self, other: Self) -> Self: ...
    @overload
    def __and__(self, other: int) -> int: ...
    @override
    def __and__(self, other: int) -> int:
        return self._arith(int.__and__, other)

    @override
    def __rand__(self, other: int) -> int:
        return self._arith(int.__rand__, other)

    @overload
    def __or__(self, other: Self) -> Self: ...
    @overload
    def __or__(self, other: int) -> int: ...
    @override
    def __or__(self, other: int) -> int:
        return self._arith(int.__or__, other)

    @override
    def __ror__(self, other: int) -> int:
        return self._arith(int.__ror__, other)

    @overload
    def __xor__(self, other: Self) -> Self: ...
    @overload
    def __xor__(self, other: int) -> int: ...
    @override
    def __xor__(self, other: int) -> int:
        return self._arith(int.__xor__, other)

    @override
    def __rxor__(self, other: int) -> int:
        return self._arith(int.__rxor__, other)

    @override
    def __lshift__(self, other: int) -> Self:
        return self._keep(int.__lshift__, other)

    @override
    def __rshift__(self, other: int) -> Self:
        return self._keep(int.__rshift__, other)

    @overload
    def __floordiv__(self, other: Self) -> Self: ...
    @overload
    def __floordiv__(self, other: int) -> int: ...
    @override
    def __floordiv__(self, other: int) -> int:
        return self._div(_c_div, other, reflected=False)

    @overload
    def __truediv__(self, other: Self) -> Self: ...
    @overload
    def __truediv__(self, other: int) -> int: ...
    @override
    def __truediv__(self, other: int) -> int:
        return self._div(_c_div, other, reflected=False)

    @overload
    def __mod__(self, other: Self) -> Self: ...
    @overload
    def __mod__(self, other: int) -> int: ...
    @override
    def __mod__(self, other: int) -> int:
        return self._div(_c_mod, other, reflected=False)

    @override
    def __rfloordiv__(self, other: int) -> int:
        return self._div(_c_div, other, reflected=True)

    @override
    def __rtruediv__(self, other: int) -> float:
        # An int, as C divides; typed float because mypy types ``int / x``
        # with int.__truediv__ and requires the reflected operator to agree.
        return self._div(_c_div, other, reflected=True)

    @override
    def __rmod__(self, other: int) -> int:
        return self._div(_c_mod, other, reflected=True)

    @overload
    def __divmod__(self, other: Self) -> tuple[Self, Self]: ...
    @overload
    def __divmod__(self, other: int) -> tuple[int, int]: ...
    @override
    def __divmod__(self, other: int) -> tuple[int, int]:
        return (self // other, self % other)

    @override
    def __rdivmod__(self, other: int) -> tuple[int, int]:
        return (self.__rfloordiv__(other), self.__rmod__(other))

    @override
    def __neg__(self) -> Self:
        return type(self)(int.__neg__(self))

    @override
    def __pos__(self) -> Self:
        return self

    @override
    def __abs__(self) -> Self:
        return type(self)(int.__abs__(self))

    @override
    def __invert__(self) -> Self:
        return type(self)(int.__invert__(self))

    @override
    def __str__(self) -> str:
        return int.__repr__(self)


class FixedUInt(FixedInt):
    """Base class of :class:`UInt8`, :class:`UInt16`, :class:`UInt32`, :class:`UInt64`.

    An unsigned :class:`FixedInt`: ``0..MAX``, arithmetic modulo
    ``2**BITS`` as C's unsigned types.  ``&`` with any integer keeps the type
    (it can only clear bits).  The methods are Rust's ``IntegerExt``.
    """

    __slots__ = ()

    def __new__(cls, value: SupportsIndex = 0) -> Self:
        """Convert ``value``, keeping its low ``BITS`` bits (a C cast)."""
        return int.__new__(cls, value.__index__() & cls.MASK)

    @override
    def __and__(self, other: int) -> Self:
        return self._keep(int.__and__, other)

    @override
    def __rand__(self, other: int) -> Self:
        return self._keep(int.__rand__, other)

    # IntegerExt (bitops.rs)

    def bit(self, n: int) -> Self:
        """Return this type's value with only bit ``n`` set."""
        if not 0 <= n < self.BITS:
            raise ValueError(
                f"{type(self)._SHORT}.bit({n}): the bit number must be in "
                f"0..{self.BITS - 1}"
            )
        return int.__new__(type(self), 1 << n)

    def extract(self, start: int, length: int) -> Self:
        """Return ``length`` bits starting at bit ``start``.

        Raises:
            ValueError: the field does not lie within ``BITS`` bits.
        """
        _check_field(f"{type(self)._SHORT}.extract", start, length, self.BITS)
        return int.__new__(type(self), (int(self) >> start) & ((1 << length) - 1))

    def deposit(self, start: int, length: int, fieldval: int) -> Self:
        """Return this value with ``length`` bits at ``start`` set to ``fieldval``.

        ``fieldval`` is truncated to ``length`` bits.

        Raises:
            ValueError: the field does not lie within ``BITS`` bits.
        """
        _check_field(f"{type(self)._SHORT}.deposit", start, length, self.BITS)
        m = ((1 << length) - 1) << start
        return int.__new__(type(self), (int(self) & ~m) | ((fieldval << start) & m))

    def sextract(self, start: int, length: int) -> int:
        """Return a field sign-extended from its top bit, as a plain ``int``.

        Raises:
            ValueError: the field does not lie within ``BITS`` bits.
        """
        _check_field(f"{type(self)._SHORT}.sextract", start, length, self.BITS)
        field = (int(self) >> start) & ((1 << length) - 1)
        return field - (1 << length) if field >> (length - 1) else field

    def to_signed(self) -> int:
        """Return the two's-complement signed value (C's cast to ``intN_t``)."""
        v = int(self)
        return v - (1 << self.BITS) if v >> (self.BITS - 1) else v

    @override
    def __repr__(self) -> str:
        return f"{self._SHORT}({int(self):#0{2 + self.BITS // 4}x})"


class FixedSInt(FixedInt):
    """Base class of :class:`Int8`, :class:`Int16`, :class:`Int32`, :class:`Int64`.

    A signed :class:`FixedInt` in two's complement: ``MIN..MAX``, arithmetic
    wrapping around as C's signed types under QEMU's ``-fwrapv`` (and Rust's
    ``wrapping_*``); ``>>`` shifts arithmetically.
    """

    __slots__ = ()

    @override
    def __repr__(self) -> str:
        return f"{self._SHORT}({int(self)})"


# The binary operators of int that FixedInt.__init_subclass__ specializes.
_ARITH_OPS: Final = (
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__and__",
    "__rand__",
    "__or__",
    "__ror__",
    "__xor__",
    "__rxor__",
    "__lshift__",
    "__rshift__",
)
# Those that keep the left operand's type whatever the other operand.
_KEEP_OPS: Final = frozenset({"__lshift__", "__rshift__"})
_UNSIGNED_KEEP_OPS: Final = frozenset({"__and__", "__rand__"})
# C's division and remainder: (function, whether the operands are swapped).
_DIV_OPS: Final[dict[str, tuple[Callable[[int, int], int], bool]]] = {
    "__floordiv__": (_c_div, False),
    "__truediv__": (_c_div, False),
    "__mod__": (_c_mod, False),
    "__rfloordiv__": (_c_div, True),
    "__rtruediv__": (_c_div, True),
    "__rmod__": (_c_mod, True),
}


def _specialized_arith(
    cls: type[FixedInt], int_op: Callable[[int, int], int]
) -> Callable[[int, int], int]:
    """``FixedInt._arith`` of ``int_op`` for ``cls``, for ``__init_subclass__``."""
    new: Callable[[type[FixedInt], int], int] = int.__new__
    m = cls.MASK
    s = cls._SIGN
    if not s:

        def op(self: int, other: int) -> int:
            if type(other) is cls:
                return new(cls, int_op(self, other) & m)
            r = int_op(self, other)
            if r is NotImplemented:
                raise _bad_operand(cls, other)
            return r

        return op

    def signed_op(self: int, other: int) -> int:
        if type(other) is cls:
            return new(cls, ((int_op(self, other) & m) ^ s) - s)
        r = int_op(self, other)
        if r is NotImplemented:
            raise _bad_operand(cls, other)
        return r

    return signed_op


def _specialized_keep(
    cls: type[FixedInt], int_op: Callable[[int, int], int]
) -> Callable[[int, int], int]:
    """``FixedInt._keep`` of ``int_op`` for ``cls``, for ``__init_subclass__``."""
    new: Callable[[type[FixedInt], int], int] = int.__new__
    m = cls.MASK
    s = cls._SIGN

    def op(self: int, other: int) -> int:
        r = int_op(self, other)
        if r is NotImplemented:
            raise _bad_operand(cls, other)
        return new(cls, ((r & m) ^ s) - s)

    return op


def _specialized_div(
    cls: type[FixedInt], fn: Callable[[int, int], int], *, reflected: bool
) -> Callable[[int, int], int]:
    """``FixedInt._div`` of ``fn`` for ``cls``, for ``__init_subclass__``."""
    new: Callable[[type[FixedInt], int], int] = int.__new__
    m = cls.MASK
    s = cls._SIGN
    if not s and not reflected:
        # Two unsigned values of one type are never negative: C's division
        # is Python's floor division there, and the result fits.
        same = int.__mod__ if fn is _c_mod else int.__floordiv__

        def unsigned_op(self: int, other: int) -> int:
            if type(other) is cls:
                return new(cls, same(self, other))
            if not isinstance(other, int):
                raise _bad_operand(cls, other)
            return fn(self, other)

        return unsigned_op

    def op(self: int, other: int) -> int:
        if not isinstance(other, int):
            raise _bad_operand(cls, other)
        r = fn(other, self) if reflected else fn(self, other)
        if type(other) is cls:
            return new(cls, ((r & m) ^ s) - s)
        return r

    return op


@final
class UInt8(FixedUInt):
    """An 8-bit unsigned integer with wrap-around arithmetic (``uint8_t``).

    >>> u8(250) + u8(10)
    u8(0x04)
    >>> u8(0x1FF)
    u8(0xff)
    """

    __slots__ = ()
    BITS = 8
    _SHORT = "u8"
    MASK = MAX = 0xFF


@final
class UInt16(FixedUInt):
    """A 16-bit unsigned integer with wrap-around arithmetic (``uint16_t``).

    >>> ~u16(0)
    u16(0xffff)
    """

    __slots__ = ()
    BITS = 16
    _SHORT = "u16"
    MASK = MAX = 0xFFFF


@final
class UInt32(FixedUInt):
    """A 32-bit unsigned integer with wrap-around arithmetic (``uint32_t``).

    >>> r = u32(0x8000_0000)
    >>> r << 1
    u32(0x00000000)
    >>> u32(1) - u32(2)
    u32(0xffffffff)
    >>> 1 - u32(2)
    -1
    >>> r.deposit(0, 8, 0x42)
    u32(0x80000042)
    >>> print(u32(10))
    10
    """

    __slots__ = ()
    BITS = 32
    _SHORT = "u32"
    MASK = MAX = 0xFFFF_FFFF


@final
class UInt64(FixedUInt):
    """A 64-bit unsigned integer with wrap-around arithmetic (``uint64_t``).

    >>> u64(-1).to_signed()
    -1
    """

    __slots__ = ()
    BITS = 64
    _SHORT = "u64"
    MASK = MAX = 0xFFFF_FFFF_FFFF_FFFF


@final
class Int8(FixedSInt):
    """An 8-bit signed integer with wrap-around arithmetic (``int8_t``).

    >>> i8(127) + i8(1)
    i8(-128)
    >>> i8(0xFF)
    i8(-1)
    """

    __slots__ = ()
    BITS = 8
    _SHORT = "i8"
    SIGNED = True
    MASK = 0xFF
    MIN = -0x80
    MAX = 0x7F
    _SIGN = 0x80


@final
class Int16(FixedSInt):
    """A 16-bit signed integer with wrap-around arithmetic (``int16_t``).

    >>> -i16(-0x8000)
    i16(-32768)
    """

    __slots__ = ()
    BITS = 16
    _SHORT = "i16"
    SIGNED = True
    MASK = 0xFFFF
    MIN = -0x8000
    MAX = 0x7FFF
    _SIGN = 0x8000


@final
class Int32(FixedSInt):
    """A 32-bit signed integer with wrap-around arithmetic (``int32_t``).

    Division truncates toward zero and the remainder has the sign of the
    dividend, as in C:

    >>> i32(-7) / i32(2), i32(-7) % i32(2)
    (i32(-3), i32(-1))
    >>> i32(0x7FFF_FFFF) * i32(2)
    i32(-2)
    """

    __slots__ = ()
    BITS = 32
    _SHORT = "i32"
    SIGNED = True
    MASK = 0xFFFF_FFFF
    MIN = -0x8000_0000
    MAX = 0x7FFF_FFFF
    _SIGN = 0x8000_0000


@final
class Int64(FixedSInt):
    """A 64-bit signed integer with wrap-around arithmetic (``int64_t``).

    >>> i64(u64(0xFFFF_FFFF_FFFF_FFFE))
    i64(-2)
    """

    __slots__ = ()
    BITS = 64
    _SHORT = "i64"
    SIGNED = True
    MASK = 0xFFFF_FFFF_FFFF_FFFF
    MIN = -0x8000_0000_0000_0000
    MAX = 0x7FFF_FFFF_FFFF_FFFF
    _SIGN = 0x8000_0000_0000_0000


u8 = UInt8
"""Rust-style name of :class:`UInt8`."""
u16 = UInt16
"""Rust-style name of :class:`UInt16`."""
u32 = UInt32
"""Rust-style name of :class:`UInt32`."""
u64 = UInt64
"""Rust-style name of :class:`UInt64`."""
i8 = Int8
"""Rust-style name of :class:`Int8`."""
i16 = Int16
"""Rust-style name of :class:`Int16`."""
i32 = Int32
"""Rust-style name of :class:`Int32`."""
i64 = Int64
"""Rust-style name of :class:`Int64`."""


# --- enums from integers (TryInto derive) ---------------------------------------


def _describe_values(enum_type: type[enum.Enum]) -> str:
    parts = []
    for member in enum_type:
        value = member.value
        shown = f"{value:#x}" if isinstance(value, int) and value >= 10 else repr(value)
        parts.append(f"{member.name}={shown}")
    return ", ".join(parts)


def try_from_int(enum_type: type[E], value: int) -> E:
    """Return the member of ``enum_type`` whose value is ``value``.

    QEMU Rust's ``#[derive(TryInto)]`` on register-offset enums.  For guest
    input, where an unknown value is normal, prefer :func:`from_int_or_none`.

    Args:
        enum_type: an enum with integer values.
        value: the integer to convert.

    Raises:
        Error: no member has that value; the message lists the valid ones.

    >>> import enum
    >>> class Reg(enum.IntEnum):
    ...     DR = 0x000
    ...     FR = 0x018
    >>> try_from_int(Reg, 0x18)
    <Reg.FR: 24>
    >>> try_from_int(Reg, 5)
    Traceback (most recent call last):
      ...
    qemu_api.error.Error: 5 is not a valid Reg (valid: DR=0, FR=0x18)
    """
    try:
        return enum_type(value)
    except ValueError:
        raise Error(
            f"{value} is not a valid {enum_type.__name__} "
            f"(valid: {_describe_values(enum_type)})"
        ) from None


def from_int_or_none(enum_type: type[E], value: int) -> E | None:
    """Return the member of ``enum_type`` whose value is ``value``, or None.

    The exception-free form of :func:`try_from_int`, for decoding guest
    input (an MMIO offset, a register field) where unknown values are a guest
    error to log, not a bug.

    >>> import enum
    >>> class Reg(enum.IntEnum):
    ...     DR = 0
    >>> from_int_or_none(Reg, 4) is None
    True
    """
    try:
        return enum_type(value)
    except ValueError:
        return None


# --- register bitfields ---------------------------------------------------------


class BitField(Generic[V]):
    """One field of a :class:`Bitfield`: ``width`` bits starting at ``start``.

    The field's Python type is ``kind``:

    - ``bool``: a one-bit flag;
    - ``int``: an unsigned ``width``-bit number (setting a value that does not
      fit raises ``ValueError``);
    - an enum with integer values: every ``width``-bit encoding must have a
      member (bilge's ``FromBits``), unless ``fallback`` names the member that
      unknown encodings read as (bilge's ``#[fallback]``; the raw bits are
      still kept in the register value);
    - a :class:`Bitfield` subclass of exactly ``width`` bits: a nested
      register; reading it gives a new value, so write it back after changing
      it.

    Args:
        start: the lowest bit of the field.
        width: the number of bits.
        kind: the field's type, as above.
        fallback: for enum fields, the member that unknown encodings read as.

    Raises:
        TypeError: ``kind`` is not one of the supported types.
        ValueError: ``width`` does not suit ``kind``, or an enum does not
            cover every encoding and has no ``fallback``.
    """

    __slots__ = ("_decode", "_encode", "kind", "mask", "name", "start", "width")

    def __init__(
        self,
        start: int,
        width: int,
        kind: type[V],
        *,
        fallback: V | None = None,
    ) -> None:
        if start < 0 or width <= 0:
            raise ValueError(
                f"BitField(start={start}, width={width}): start must be 0 or more "
                "and width at least 1"
            )
        self.start = start
        self.width = width
        self.mask = (1 << width) - 1
        self.kind = kind
        self.name = "?"
        self._decode: Callable[[int], V]
        self._encode: Callable[[V], int]
        if kind is bool:
            if width != 1:
                raise ValueError(
                    f"BitField({start}, {width}, bool): a bool field is one bit "
                    "wide; use int for a wider number"
                )
            self._decode = kind
            self._encode = self._encode_bool
        elif kind is int:
            self._decode = kind
            self._encode = self._encode_int
        elif issubclass(kind, enum.Enum):
            self._decode = self._enum_decoder(kind, fallback)
            self._encode = self._encode_enum
        elif issubclass(kind, Bitfield):
            if width != kind.WIDTH:
                raise ValueError(
                    f"BitField({start}, {width}, {kind.__name__}): "
                    f"{kind.__name__} is {kind.WIDTH} bits wide, the field "
                    f"{width}; make them equal"
                )
            self._decode = kind.from_int
            self._encode = self._encode_int_of
        else:
            raise TypeError(
                f"BitField({start}, {width}, {kind!r}): the field type must be "
                "bool, int, an enum with integer values or a Bitfield subclass"
            )

    def _enum_decoder(
        self, kind: type[enum.Enum], fallback: object
    ) -> Callable[[int], V]:
        table: dict[int, V] = {}
        for member in kind:
            value = member.value
            if not isinstance(value, int) or not 0 <= value <= self.mask:
                raise ValueError(
                    f"BitField({self.start}, {self.width}, {kind.__name__}): "
                    f"{kind.__name__}.{member.name} = {value!r} is not a "
                    f"{self.width}-bit unsigned integer"
                )
            table[value] = self._member(member)
        missing = [v for v in range(self.mask + 1) if v not in table]
        if fallback is not None:
            if not isinstance(fallback, kind):
                raise TypeError(
                    f"BitField({self.start}, {self.width}, {kind.__name__}): "
                    f"fallback={fallback!r} is not a {kind.__name__} member"
                )
            fb = self._member(fallback)
            for v in missing:
                table[v] = fb
        elif missing:
            shown = ", ".join(str(v) for v in missing[:8])
            more = ", ..." if len(missing) > 8 else ""
            raise ValueError(
                f"BitField({self.start}, {self.width}, {kind.__name__}): no "
                f"member for the encodings {shown}{more}; add members or pass "
                "fallback=<member> for the value unknown encodings read as"
            )
        return table.__getitem__

    def _member(self, member: object) -> V:
        # The members are instances of self.kind, which is type[V].
        if isinstance(member, self.kind):
            return member
        raise TypeError(f"{member!r} is not a {self.kind.__name__}")

    def _encode_bool(self, value: V) -> int:
        return 1 if value else 0

    def _encode_int(self, value: V) -> int:
        if not isinstance(value, int) or not 0 <= value <= self.mask:
            raise ValueError(
                f"{self.name}: {value!r} does not fit in {self.width} bits "
                f"(0..{self.mask:#x})"
            )
        return value

    def _encode_enum(self, value: V) -> int:
        if not isinstance(value, self.kind) or not isinstance(value, enum.Enum):
            raise TypeError(
                f"{self.name}: expected a {self.kind.__name__} member, got {value!r}"
            )
        raw: int = value.value
        return raw

    def _encode_int_of(self, value: V) -> int:
        if not isinstance(value, self.kind) or not isinstance(value, Bitfield):
            raise TypeError(
                f"{self.name}: expected a {self.kind.__name__}, got {value!r}"
            )
        return value._value

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = f"{owner.__name__}.{name}"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> BitField[V]: ...
    @overload
    def __get__(self, obj: Bitfield, owner: type | None = None) -> V: ...
    def __get__(
        self, obj: Bitfield | None, owner: type | None = None
    ) -> V | BitField[V]:
        if obj is None:
            return self
        return self._decode((obj._value >> self.start) & self.mask)

    def __set__(self, obj: Bitfield, value: V) -> None:
        raw = self._encode(value)
        m = self.mask << self.start
        obj._value = (obj._value & ~m) | (raw << self.start)

    @override
    def __repr__(self) -> str:
        kind = self.kind.__name__
        return f"BitField({self.start}, {self.width}, {kind})"


class _BitfieldMeta(type):
    """Gives each Bitfield subclass empty ``__slots__`` (no stray attributes)."""

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, object],
        **kwargs: int,
    ) -> _BitfieldMeta:
        namespace.setdefault("__slots__", ())
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class Bitfield(metaclass=_BitfieldMeta):
    """Base class of register bitfields (bilge's ``#[bitsize(N)]`` structs).

    Subclass it with the register width and :class:`BitField` descriptors::

        class Flags(Bitfield, width=16):
            cts = BitField(0, 1, bool)
            busy = BitField(3, 1, bool)

    A value holds the whole register as an integer; reading a field extracts
    and converts its bits, writing one deposits them.  Fields may not overlap
    or extend past the width.

    Args:
        value: the whole register value, 0 by default; see :meth:`from_int`.

    Raises:
        ValueError: ``value`` does not fit in the width.

    >>> class Flags(Bitfield, width=16):
    ...     cts = BitField(0, 1, bool)
    ...     busy = BitField(3, 1, bool)
    >>> f = Flags()
    >>> f.busy = True
    >>> f, int(f)
    (Flags(cts=False, busy=True, 0x0008), 8)
    >>> Flags.FIELDS_MASK
    9
    """

    WIDTH: ClassVar[int] = 0
    """The register width in bits."""
    MASK: ClassVar[int] = 0
    """All ``WIDTH`` bits set."""
    FIELDS_MASK: ClassVar[int] = 0
    """The bits covered by fields; the others are reserved."""
    _FIELDS: ClassVar[tuple[tuple[str, BitField[object]], ...]] = ()

    __slots__ = ("_value",)

    @override
    def __init_subclass__(cls, *, width: int | None = None) -> None:
        super().__init_subclass__()
        if width is None:
            if not cls.WIDTH:
                raise TypeError(
                    f"class {cls.__name__}(Bitfield) needs a width: write "
                    f"'class {cls.__name__}(Bitfield, width=32):'"
                )
            width = cls.WIDTH
        if not 1 <= width <= 64:
            raise ValueError(
                f"{cls.__name__}: width={width} must be between 1 and 64 bits"
            )
        fields = dict(cls._FIELDS)
        used = 0
        for field in fields.values():
            used |= field.mask << field.start
        for attr, value in vars(cls).items():
            if not isinstance(value, BitField):
                continue
            span = value.mask << value.start
            if value.start + value.width > width:
                raise ValueError(
                    f"{cls.__name__}.{attr}: bits {value.start}.."
                    f"{value.start + value.width - 1} do not fit in the "
                    f"{width}-bit register"
                )
            if used & span:
                other = next(n for n, f in fields.items() if (f.mask << f.start) & span)
                raise ValueError(
                    f"{cls.__name__}.{attr}: bits {value.start}.."
                    f"{value.start + value.width - 1} overlap field '{other}'"
                )
            used |= span
            fields[attr] = value
        cls.WIDTH = width
        cls.MASK = (1 << width) - 1
        cls.FIELDS_MASK = used
        cls._FIELDS = tuple(fields.items())

    def __init__(self, value: int = 0) -> None:
        if not 0 <= value <= self.MASK:
            raise ValueError(
                f"{type(self).__name__}({value:#x}): the value does not fit in "
                f"{self.WIDTH} bits; mask it first or use {type(self).__name__}"
                ".from_int_masked()"
            )
        self._value = int(value)

    @classmethod
    def from_int(cls, value: int) -> Self:
        """Return the bitfield whose whole value is ``value`` (reserved bits kept).

        Raises:
            ValueError: ``value`` does not fit in the width.
        """
        return cls(value)

    @classmethod
    def from_int_masked(cls, value: int) -> Self:
        """Return the bitfield of ``value`` with the reserved bits cleared.

        Bits outside the fields, and above the width, are dropped: the
        behaviour of a register whose reserved bits read as zero.
        """
        return cls(value & cls.FIELDS_MASK)

    def to_int(self) -> int:
        """Return the whole register value."""
        return self._value

    def __int__(self) -> int:
        return self._value

    def __index__(self) -> int:
        return self._value

    def copy(self) -> Self:
        """Return an independent value with the same bits."""
        return type(self)(self._value)

    @override
    def __eq__(self, other: object) -> bool:
        if type(other) is type(self) and isinstance(other, Bitfield):
            return self._value == other._value
        return NotImplemented

    @override
    def __hash__(self) -> int:
        raise TypeError(
            f"unhashable type: '{type(self).__name__}' (bitfield values are "
            "mutable); use int(value) as the key"
        )

    @override
    def __repr__(self) -> str:
        parts = []
        for attr, field in self._FIELDS:
            value = getattr(self, attr)
            if isinstance(value, enum.Enum):
                shown = f"{type(value).__name__}.{value.name}"
            elif isinstance(value, bool) or field.width <= 4:
                shown = repr(value)
            elif isinstance(value, int):
                shown = hex(value)
            else:
                shown = repr(value)
            parts.append(f"{attr}={shown}")
        digits = (self.WIDTH + 3) // 4
        parts.append(f"{self._value:#0{digits + 2}x}")
        return f"{type(self).__name__}({', '.join(parts)})"
