import copy
import enum
import pickle
from pathlib import Path
from typing import Any

import pytest

from qemu_api.bits import (
    BitField,
    Bitfield,
    FixedInt,
    FixedSInt,
    FixedUInt,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    bit,
    clz32,
    clz64,
    ctpop,
    ctz32,
    ctz64,
    deposit32,
    deposit64,
    extract8,
    extract16,
    extract32,
    extract64,
    from_int_or_none,
    i8,
    i16,
    i32,
    i64,
    make_64bit_mask,
    mask,
    sextract32,
    sextract64,
    try_from_int,
    u8,
    u16,
    u32,
    u64,
)
from qemu_api.error import Error

# --- fixed-width integers -------------------------------------------------------
#
# The expected values follow C99 (gcc -fwrapv, as QEMU builds: wrap-around signed
# arithmetic, truncating division, remainder with the dividend's sign) and Rust's
# wrapping_* operations; see the rules in the qemu_api.bits docstring.

UNSIGNED = (u8, u16, u32, u64)
SIGNED = (i8, i16, i32, i64)
ALL = UNSIGNED + SIGNED


def test_aliases():
    assert (u8, u16, u32, u64) == (UInt8, UInt16, UInt32, UInt64)
    assert (i8, i16, i32, i64) == (Int8, Int16, Int32, Int64)
    assert all(issubclass(cls, FixedUInt) for cls in UNSIGNED)
    assert all(issubclass(cls, FixedSInt) for cls in SIGNED)
    assert all(issubclass(cls, FixedInt) and issubclass(cls, int) for cls in ALL)


@pytest.mark.parametrize("cls", ALL)
def test_widths(cls):
    bits = int(cls.__name__.lstrip("UInt"))
    prefix = "i" if cls.SIGNED else "u"
    assert (
        bits,
        (1 << bits) - 1,
        f"{prefix}{bits}",
    ) == (cls.BITS, cls.MASK, cls._SHORT)
    if cls.SIGNED:
        assert (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) == (cls.MIN, cls.MAX)
    else:
        assert (cls.MIN, cls.MAX) == (0, cls.MASK)
    assert cls() == 0
    assert cls(cls.MAX) + cls(1) == cls.MIN
    assert cls(cls.MIN) - cls(1) == cls.MAX
    assert cls(1 << bits) == 0
    assert isinstance(cls(3), int)


def test_constructor_truncates_like_a_cast():
    assert u8(0x1234) == 0x34
    assert u16(-2) == 0xFFFE
    assert u32(0x1_0000_0005) == 5
    assert i8(0x80) == -128
    assert i8(0xFF) == -1
    assert i8(0x17F) == 127
    assert i16(0x1_8000) == -0x8000
    assert i32(0xFFFF_FFFF) == -1
    assert i64(1 << 63) == -(1 << 63)
    # casts between signedness reinterpret the bits, as C's
    assert u32(i32(-1)) == 0xFFFF_FFFF
    assert i32(u32(0x8000_0000)) == -0x8000_0000
    assert u8(i64(-2)) == 0xFE


def test_checked():
    assert u8.checked(255) == 255
    assert type(u8.checked(1)) is u8
    with pytest.raises(Error, match=r"^256 does not fit in u8 \(0\.\.0xff\)") as ei:
        u8.checked(256)
    assert "u8(value) to truncate" in str(ei.value)
    with pytest.raises(Error, match=r"^-1 does not fit in u32"):
        u32.checked(-1)
    assert i8.checked(-128) == -128
    assert type(i8.checked(-1)) is i8
    with pytest.raises(Error, match=r"^128 does not fit in i8 \(-128\.\.127\); use i8"):
        i8.checked(128)
    with pytest.raises(Error, match=r"^-2147483649 does not fit in i32"):
        i32.checked(-(1 << 31) - 1)


def test_same_type_wraps():
    assert u8(250) + u8(10) == 4
    assert u8(3) - u8(5) == 254
    assert u16(0x100) * u16(0x100) == 0
    assert u32(0xF0) | u32(0x0F) == 0xFF
    assert u8(0xFF) ^ u8(0x0F) == 0xF0
    assert u32(1) - u32(2) == 0xFFFF_FFFF
    assert u64(0xFFFF_FFFF_FFFF_FFFF) + u64(2) == 1
    # no C integer promotion of the narrow types: u8 arithmetic stays in u8
    assert type(u8(250) + u8(10)) is u8
    assert i8(127) + i8(1) == -128
    assert i8(-128) - i8(1) == 127
    assert i32(0x7FFF_FFFF) * i32(2) == -2
    assert i16(-1) * i16(-1) == 1
    assert i32(-1) & i32(0xFF) == 0xFF
    assert i8(-1) ^ i8(0x7F) == -128
    assert i64(-(1 << 63)) - i64(1) == (1 << 63) - 1


def test_same_type_result_types():
    for cls in ALL:
        a, b = cls(7), cls(3)
        for value in (a + b, a - b, a * b, a // b, a / b, a % b, a & b, a | b,
                      a ^ b, a << 1, a >> 1, a << b, -a, ~a, +a, abs(a),
                      a.__radd__(b), a.__rsub__(b), a.__rmul__(b), a.__rand__(b),
                      a.__ror__(b), a.__rxor__(b), a.__rfloordiv__(b),
                      a.__rtruediv__(b), a.__rmod__(b)):  # fmt: skip
            assert type(value) is cls
        q, r = divmod(a, b)
        assert (type(q), type(r), q, r) == (cls, cls, 2, 1)


def test_mixed_operands_give_the_exact_int():
    # The bug this rule removes: with u32 + int -> u32 the sum wrapped at 2**32.
    ticks = u32(10)
    now_ns = u64(5)
    assert now_ns + ticks * 1_000_000_000 == 10_000_000_005
    assert 10_000_000_000 + u32(5) == 10_000_000_005
    assert u32(5) + 10_000_000_000 == 10_000_000_005
    assert 1 - u32(2) == -1
    assert u32(2) - 3 == -1
    assert u8(200) * 2 == 400
    assert 2 * u8(200) == 400
    assert u8(0xF0) | 0x10F == 0x1FF
    assert 0x100 ^ u8(0xFF) == 0x1FF
    assert i8(100) + 100 == 200
    assert i8(-100) - 100 == -200
    assert i32(-1) & 0x1_0000_0000 == 0x1_0000_0000  # not exact in i32: an int
    # other widths and signedness, and bool, are "any other integer" too
    assert u8(200) + u32(100) == 300
    assert u32(0x1FF) * u8(2) == 0x3FE
    assert i32(-1) + u32(1) == 0
    assert u16(1) - i16(2) == -1
    assert u8(255) + True == 256
    for value in (
        u8(1) + 1, 1 + u8(1), u8(1) - 1, 1 - u8(1), u8(1) * 2, 2 * u8(1),
        u8(1) | 1, 1 | u8(1), u8(1) ^ 1, 1 ^ u8(1), u8(1) + u16(1), i8(1) + 1,
        i8(1) & 1, 1 & i8(1), i8(1) - u8(1), u8(7) // 2, u8(7) / 2, u8(7) % 2,
        7 // u8(2), 7 % u8(2), i8(7) // u8(2), u8(1) + True,
    ):  # fmt: skip
        assert type(value) is int, repr(value)


def test_shifts_keep_the_left_operand_type():
    assert u8(0x80) << 1 == 0
    assert type(u8(0x80) << 1) is u8
    assert u32(1) << 32 == 0
    assert u64(1) << 63 == 1 << 63
    assert u8(0x80) >> 7 == 1
    assert type(u8(1) << u32(1)) is u8  # the count's type does not matter
    assert i8(64) << 1 == -128
    assert i8(-128) >> 1 == -64  # arithmetic shift
    assert i32(-1) >> 31 == -1
    assert type(i16(1) << 3) is i16
    assert 1 << u32(3) == 8
    assert type(1 << u32(3)) is int  # a plain int on the left stays a plain int
    with pytest.raises(ValueError, match="negative shift count"):
        u32(1) << -1


def test_unsigned_and_keeps_its_type():
    reg = u32(0xFFFF_FFFF)
    cleared = reg & ~0x10
    assert (type(cleared), cleared) == (u32, 0xFFFF_FFEF)
    assert type(0xFF & reg) is u32
    assert u8(0xF0) & 0x3C == 0x30
    assert type(u8(0xF0) & u32(0xFFFF)) is u8
    assert type(i32(-1) & 0xFF) is int  # signed: -1 & 2**40 would not fit


def test_division_is_c_division():
    # C99 6.5.5: the quotient is truncated toward zero, (a/b)*b + a%b == a.
    assert i32(-7) / i32(2) == -3
    assert i32(-7) // i32(2) == -3
    assert i32(-7) % i32(2) == -1
    assert i32(7) / i32(-2) == -3
    assert i32(7) % i32(-2) == 1
    assert i32(-7) / i32(-2) == 3
    assert i32(-7) % i32(-2) == -1
    assert divmod(i8(-7), i8(2)) == (-3, -1)
    for a in (-7, 7, -8, 0, 5):
        for b in (2, -2, 3, -3, 1):
            q, r = i32(a) / i32(b), i32(a) % i32(b)
            assert q * b + r == a
            assert abs(r) < abs(b)
            assert r == 0 or (r < 0) == (a < 0)
    # the one overflow wraps (Rust's wrapping_div / wrapping_rem)
    assert i32(i32.MIN) / i32(-1) == i32.MIN
    assert i32(i32.MIN) % i32(-1) == 0
    assert i8(-128) / i8(-1) == -128
    # unsigned: / is integer division too; mixed operands divide as C, exactly
    assert u32(7) / u32(2) == 3
    assert u32(7) / 2 == 3
    assert u32(7) / -2 == -3
    assert u32(7) % -2 == 1
    assert -7 // u32(2) == -3
    assert -7 % u32(2) == -1
    assert -7 / u32(2) == -3
    assert divmod(-7, u8(2)) == (-3, -1)
    assert i32(-7) / 2 == -3
    assert i64(-(1 << 63)) / -1 == 1 << 63  # mixed: exact, no wrap
    for zero in (u32(0), i32(0), 0):
        with pytest.raises(ZeroDivisionError):
            i32(1) / zero
        with pytest.raises(ZeroDivisionError):
            u32(1) % zero


def test_unary_operators_wrap():
    assert -u8(1) == 0xFF
    assert ~u32(0) == 0xFFFF_FFFF
    assert +u8(5) == 5
    assert abs(u8(5)) == 5
    assert -i8(-128) == -128
    assert abs(i8(-128)) == -128
    assert abs(i8(-5)) == 5
    assert ~i16(0) == -1
    assert -i32(5) == -5
    for cls in ALL:
        for value in (-cls(3), ~cls(3), +cls(3), abs(cls(3))):
            assert type(value) is cls


def test_comparisons_and_hash_are_int():
    assert u32(5) == 5
    five: int = u8(5)
    assert five == u32(5)  # mypy flags u8(5) == u32(5) (strict equality)
    assert u8(4) < 5
    assert i8(-1) < 0
    minus_one: int = i32(-1)
    assert minus_one != u32(0xFFFF_FFFF)
    assert hash(u32(7)) == hash(7)
    assert hash(i8(-3)) == hash(-3)
    table: dict[int, str] = {u8(1): "a"}
    assert table[1] == "a"
    assert bool(u8(0)) is False
    assert bool(u8(256 + 1)) is True
    assert bool(i8(256)) is False


def test_pow_is_ints():
    assert u8(16) ** 2 == 256
    assert type(u8(16) ** 2) is int


def test_float_operand_is_an_error():
    with pytest.raises(TypeError, match="unsupported operand for u32: float"):
        u32(1) + 1.5
    with pytest.raises(TypeError, match="combine only with int"):
        u8(1) * 2.0
    with pytest.raises(TypeError, match="unsupported operand for i32: float"):
        i32(1) / 2.0
    text: Any = "x"
    with pytest.raises(TypeError, match="unsupported operand for i8: str"):
        i8(1) % text
    one: Any = 1.0
    with pytest.raises(TypeError, match="unsupported operand for u16: float"):
        u16(1) << one


def test_generic_operators_match_specialized_ones():
    # __init_subclass__ replaces the generic operators with faster copies; they
    # must behave the same for every kind of operand.
    names = ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__",
             "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__",
             "__lshift__", "__rshift__", "__floordiv__", "__truediv__",
             "__mod__", "__rfloordiv__", "__rtruediv__", "__rmod__")  # fmt: skip
    for cls, base in ((u8, FixedUInt), (i8, FixedSInt)):
        for name in names:
            generic = getattr(base, name)
            specialized = getattr(cls, name)
            assert generic is not specialized, name
            for a, b in ((200, 100), (3, 5), (0x80, 1), (7, 3), (-7, 2), (5, -3)):
                for other in (cls(b), b, u16(b & 0x7F), True):
                    if "shift" in name and int(other) < 0:
                        continue
                    g = generic(cls(a), other)
                    s = specialized(cls(a), other)
                    assert (type(g), g) == (type(s), s), (cls, name, a, other)
            with pytest.raises(TypeError, match=f"for {cls._SHORT}: float"):
                generic(cls(1), 1.5)
            with pytest.raises(TypeError, match=f"for {cls._SHORT}: float"):
                specialized(cls(1), 1.5)


def test_repr_str_format():
    assert repr(u8(4)) == "u8(0x04)"
    assert repr(u16(0xABC)) == "u16(0x0abc)"
    assert repr(u32(1)) == "u32(0x00000001)"
    assert repr(u64(1)) == "u64(0x0000000000000001)"
    assert repr(i8(-5)) == "i8(-5)"
    assert repr(i64(7)) == "i64(7)"
    assert str(u32(10)) == "10"
    assert str(i32(-10)) == "-10"
    assert f"{u32(10)}" == "10"
    assert f"{u32(255):#x}" == "0xff"
    assert format(u8(10), "d") + format(u8(10), "x") == "10a"
    assert hex(u16(0xAB)) == "0xab"
    assert [1, 2, 3][u8(1)] == 2
    assert [1, 2, 3][i8(-1)] == 3


def test_pickle_and_copy():
    for v in (u32(0xDEADBEEF), i32(-2), i8(-128)):
        for clone in (pickle.loads(pickle.dumps(v)), copy.copy(v), copy.deepcopy(v)):
            assert clone == v
            assert type(clone) is type(v)


def test_integer_ext_methods():
    r = u32(0x8000_0000)
    assert r.bit(3) == 8
    assert type(r.bit(3)) is u32
    assert r.deposit(0, 8, 0x142) == 0x8000_0042
    assert type(r.deposit(0, 8, 1)) is u32
    assert u32(0x1234_5678).extract(8, 8) == 0x56
    assert type(u32(1).extract(0, 1)) is u32
    assert u8(0xF0).sextract(4, 4) == -1
    assert u8(0x70).sextract(4, 4) == 7
    assert u8(0xFF).to_signed() == -1
    assert u8(0x7F).to_signed() == 127
    assert u64(1 << 63).to_signed() == -(1 << 63)


def test_integer_ext_errors():
    with pytest.raises(
        ValueError, match=r"u8\.bit\(8\): the bit number must be in 0\.\.7"
    ):
        u8(0).bit(8)
    with pytest.raises(ValueError, match=r"u16\.extract\(start=12, length=8\)"):
        u16(0).extract(12, 8)
    with pytest.raises(ValueError, match="within 32 bits"):
        u32(0).deposit(0, 33, 0)
    with pytest.raises(ValueError, match=r"u8\.sextract"):
        u8(0).sextract(-1, 2)


# mypy --strict on a device-like snippet: every implicit narrowing is an error,
# the explicit forms are not.
NARROWING = """\
from dataclasses import dataclass

from qemu_api.bits import i32, u8, u32, u64


@dataclass
class Regs:
    count: u32
    now: u64


def program(value: u32) -> None:
    pass


def use(regs: Regs, ticks: u32, data: u8) -> None:
    a: u32 = regs.count + 1
    regs.count = regs.count * 2
    program(ticks + 1)
    regs.now = regs.now + ticks * 1_000_000_000
    b: u32 = ticks + data
    c: i32 = i32(5) / 2
    d: u32 = 1 - ticks
    # explicit: wrap in the type, or narrow with a cast
    regs.count = regs.count + u32(1)
    regs.count = u32(regs.count * 2)
    program(ticks << 1)
    program(ticks & ~0x10)
    regs.now = u64(regs.now + ticks * 1_000_000_000)
    e: i32 = i32(-7) / i32(2)
    f: int = ticks + 1
"""


def test_implicit_narrowing_fails_mypy(tmp_path, monkeypatch):
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "narrowing.py"
    src.write_text(NARROWING)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c"), str(src)]
    )
    errors = [
        (int(line.split(":")[1]), line.split(": error: ")[1])
        for line in out.splitlines()
        if ": error: " in line
    ]
    int_to = 'Incompatible types in assignment (expression has type "int", variable '
    assert errors == [
        (17, int_to + 'has type "UInt32")  [assignment]'),
        (18, int_to + 'has type "UInt32")  [assignment]'),
        (
            19,
            (
                'Argument 1 to "program" has incompatible type "int"; expected '
                '"UInt32"  [arg-type]'
            ),
        ),
        (20, int_to + 'has type "UInt64")  [assignment]'),
        (21, int_to + 'has type "UInt32")  [assignment]'),
        (22, int_to + 'has type "Int32")  [assignment]'),
        (23, int_to + 'has type "UInt32")  [assignment]'),
    ], out + err


# --- bitops.h -------------------------------------------------------------------


def test_bit_and_masks():
    assert bit(0) == 1
    assert bit(63) == 1 << 63
    assert mask(4, 3) == 0x70
    assert mask(0, 0) == 0
    assert make_64bit_mask(0, 64) == (1 << 64) - 1
    assert make_64bit_mask(8, 4) == 0xF00


def test_bit_and_mask_errors():
    with pytest.raises(
        ValueError, match=r"bit\(-1\): the bit number must be 0 or more"
    ):
        bit(-1)
    with pytest.raises(ValueError, match=r"mask\(start=-1, length=2\): both must"):
        mask(-1, 2)
    with pytest.raises(ValueError, match=r"make_64bit_mask\(start=60, length=8\)"):
        make_64bit_mask(60, 8)


def test_extract():
    assert extract8(0xA5, 4, 4) == 0xA
    assert extract16(0xABCD, 4, 8) == 0xBC
    assert extract32(0x12345678, 8, 8) == 0x56
    assert extract32(0xFFFF_FFFF, 0, 32) == 0xFFFF_FFFF
    assert extract64(0xFEDC_BA98_7654_3210, 60, 4) == 0xF


def test_sextract():
    assert sextract32(0x0000_0F00, 8, 4) == -1
    assert sextract32(0x0000_0700, 8, 4) == 7
    assert sextract32(0x8000_0000, 0, 32) == -(1 << 31)
    assert sextract64(0xFFFF_FFFF_FFFF_FFFE, 0, 64) == -2
    assert sextract64(0x10, 4, 1) == -1


def test_deposit():
    assert deposit32(0xFFFF_FFFF, 8, 8, 0x12) == 0xFFFF_12FF
    assert deposit32(0, 28, 4, 0x1F) == 0xF000_0000  # fieldval truncated
    assert deposit32(0x1_0000_0000, 0, 1, 1) == 1  # result is 32 bits
    assert deposit64(0, 32, 32, 0xDEAD_BEEF) == 0xDEAD_BEEF_0000_0000
    assert deposit64(-1, 0, 64, 5) == 5


@pytest.mark.parametrize(
    ("fn", "args", "text"),
    [
        (extract8, (0, 4, 5), r"extract8\(start=4, length=5\): the field must lie"),
        (extract16, (0, 0, 17), r"extract16\(start=0, length=17\)"),
        (extract32, (0, -1, 4), r"extract32\(start=-1, length=4\)"),
        (extract64, (0, 0, 0), r"extract64\(start=0, length=0\)"),
        (sextract32, (0, 30, 3), r"sextract32\(start=30, length=3\)"),
        (sextract64, (0, 64, 1), r"sextract64\(start=64, length=1\)"),
        (deposit32, (0, 0, 33, 0), r"deposit32\(start=0, length=33\)"),
        (deposit64, (0, 1, 64, 0), r"deposit64\(start=1, length=64\)"),
    ],
)  # fmt: skip
def test_field_argument_errors(fn, args, text):
    with pytest.raises(ValueError, match=text):
        fn(*args)


def test_count_bits():
    assert ctpop(0) == 0
    assert ctpop(0xFF00FF) == 16
    assert ctz32(0x100) == 8
    assert ctz32(0) == 32
    assert ctz32(1 << 32) == 32  # only the low 32 bits count
    assert ctz64(0) == 64
    assert ctz64(1 << 63) == 63
    assert clz32(1) == 31
    assert clz32(0) == 32
    assert clz32(0x8000_0000) == 0
    assert clz64(1) == 63
    assert clz64(0) == 64


# --- enums ----------------------------------------------------------------------


class RegisterOffset(enum.IntEnum):
    DR = 0x000
    RSR = 0x004
    FR = 0x018


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def test_try_from_int():
    assert try_from_int(RegisterOffset, 0x18) is RegisterOffset.FR
    assert try_from_int(Color, 2) is Color.BLUE


def test_try_from_int_error():
    with pytest.raises(Error) as ei:
        try_from_int(RegisterOffset, 5)
    assert str(ei.value) == (
        "5 is not a valid RegisterOffset (valid: DR=0, RSR=4, FR=0x18)"
    )
    with pytest.raises(
        Error, match=r"^3 is not a valid Color \(valid: RED=1, BLUE=2\)$"
    ):
        try_from_int(Color, 3)


def test_from_int_or_none():
    assert from_int_or_none(RegisterOffset, 4) is RegisterOffset.RSR
    assert from_int_or_none(RegisterOffset, 8) is None
    assert from_int_or_none(Color, 0) is None


# --- bitfields ------------------------------------------------------------------


def untyped_set(obj, attr, value):
    """Assign what mypy would reject, to test the run-time checks."""
    setattr(obj, attr, value)


class Parity(enum.IntEnum):
    ODD = 0
    EVEN = 1


class WordLength(enum.IntEnum):
    FIVE = 0b00
    SIX = 0b01
    SEVEN = 0b10
    EIGHT = 0b11


class LineControl(Bitfield, width=8):
    send_break = BitField(0, 1, bool)
    parity_enabled = BitField(1, 1, bool)
    parity = BitField(2, 1, Parity)
    two_stop_bits = BitField(3, 1, bool)
    fifos_enabled = BitField(4, 1, bool)
    word_length = BitField(5, 2, WordLength)
    sticky_parity = BitField(7, 1, bool)


class Errors(Bitfield, width=4):
    framing = BitField(0, 1, bool)
    parity = BitField(1, 1, bool)
    brk = BitField(2, 1, bool)
    overrun = BitField(3, 1, bool)


class Data(Bitfield, width=16):
    data = BitField(0, 8, int)
    errors = BitField(8, 4, Errors)


class Speed(enum.IntEnum):
    SLOW = 0
    FAST = 1
    RESERVED = 3


class Timing(Bitfield, width=32):
    speed = BitField(0, 2, Speed, fallback=Speed.RESERVED)
    divisor = BitField(4, 12, int)


def test_bitfield_class_constants():
    assert LineControl.WIDTH == 8
    assert LineControl.MASK == 0xFF
    assert LineControl.FIELDS_MASK == 0xFF
    assert Data.FIELDS_MASK == 0x0FFF
    assert Timing.FIELDS_MASK == 0xFFF3
    assert repr(LineControl.word_length) == "BitField(5, 2, WordLength)"
    assert LineControl.word_length.name == "LineControl.word_length"


def test_bitfield_get_fields():
    lc = LineControl.from_int(0b0111_0110)
    assert lc.send_break is False
    assert lc.parity_enabled is True
    assert lc.parity is Parity.EVEN
    assert lc.two_stop_bits is False
    assert lc.fifos_enabled is True
    assert lc.word_length is WordLength.EIGHT
    assert lc.sticky_parity is False


def test_bitfield_set_fields():
    lc = LineControl()
    lc.word_length = WordLength.SEVEN
    lc.sticky_parity = True
    lc.parity = Parity.EVEN
    assert int(lc) == 0b1100_0100
    lc.sticky_parity = False
    assert lc.to_int() == 0b0100_0100


def test_bitfield_int_field():
    d = Data()
    d.data = 0x41
    assert d.data == 0x41
    assert int(d) == 0x41
    with pytest.raises(
        ValueError, match=r"^Data\.data: 256 does not fit in 8 bits \(0\.\.0xff\)$"
    ):
        d.data = 256
    with pytest.raises(ValueError, match="-1 does not fit"):
        d.data = -1
    assert d.data == 0x41


def test_bitfield_nested():
    d = Data.from_int(0x0541)
    errors = d.errors
    assert isinstance(errors, Errors)
    assert errors.framing is True
    assert errors.brk is True
    assert errors.parity is False
    errors.overrun = True  # a copy: write it back
    assert int(d) == 0x0541
    d.errors = errors
    assert int(d) == 0x0D41
    with pytest.raises(TypeError, match=r"^Data\.errors: expected a Errors, got 3$"):
        untyped_set(d, "errors", 3)


def test_bitfield_enum_set_type_error():
    lc = LineControl()
    with pytest.raises(
        TypeError, match=r"^LineControl\.parity: expected a Parity member, got 1$"
    ):
        untyped_set(lc, "parity", 1)
    with pytest.raises(TypeError, match="expected a WordLength member"):
        untyped_set(lc, "word_length", Parity.EVEN)


def test_bitfield_enum_fallback_keeps_raw_bits():
    t = Timing.from_int(0x0122)  # speed encoding 2 has no member
    assert t.speed is Speed.RESERVED
    assert int(t) == 0x0122
    assert t.divisor == 0x12
    t.speed = Speed.FAST
    assert int(t) == 0x0121


def test_bitfield_reserved_bits_preserved_or_masked():
    d = Data.from_int(0xF041)  # bits 12..15 are reserved
    assert int(d) == 0xF041
    d.data = 0x42
    assert int(d) == 0xF042
    assert int(Data.from_int_masked(0xF041)) == 0x0041
    assert int(Data.from_int_masked(0x1_0041)) == 0x0041


def test_bitfield_value_range():
    assert int(Data(0xFFFF)) == 0xFFFF
    with pytest.raises(
        ValueError, match=r"^Data\(0x10000\): the value does not fit in 16 bits"
    ) as ei:
        Data.from_int(0x1_0000)
    assert "from_int_masked()" in str(ei.value)
    with pytest.raises(ValueError, match="does not fit"):
        Data(-1)


def test_bitfield_value_semantics():
    a = LineControl.from_int(0x60)
    b = LineControl.from_int(0x60)
    assert a == b
    assert a is not b
    assert a != LineControl.from_int(0x61)
    assert a != 0x60  # a bitfield is not an int
    assert Errors(1) != Data(1)
    c = a.copy()
    c.send_break = True
    assert int(a) == 0x60
    assert int(c) == 0x61
    assert type(c) is LineControl
    with pytest.raises(TypeError, match="unhashable type: 'LineControl'"):
        hash(a)
    assert [10, 11, 12][Errors(2)] == 12  # __index__
    assert hex(Data(0x41)) == "0x41"


def test_bitfield_no_stray_attributes():
    lc = LineControl()
    with pytest.raises(AttributeError):
        untyped_set(lc, "word_lenght", WordLength.FIVE)  # a typo
    assert not hasattr(lc, "__dict__")


def test_bitfield_repr():
    assert repr(LineControl.from_int(0x71)) == (
        "LineControl(send_break=True, parity_enabled=False, parity=Parity.ODD, "
        "two_stop_bits=False, fifos_enabled=True, word_length=WordLength.EIGHT, "
        "sticky_parity=False, 0x71)"
    )
    assert repr(Data.from_int(0x141)) == (
        "Data(data=0x41, errors=Errors(framing=True, parity=False, brk=False, "
        "overrun=False, 0x1), 0x0141)"
    )
    assert (
        repr(Timing.from_int(0x32))
        == "Timing(speed=Speed.RESERVED, divisor=0x3, 0x00000032)"
    )


def test_bitfield_subclass_inherits_fields():
    class Extended(LineControl):
        pass

    e = Extended.from_int(0x80)
    assert e.sticky_parity is True
    assert Extended.WIDTH == 8
    assert repr(e).startswith("Extended(send_break=False")

    class Wider(Errors, width=8):
        extra = BitField(4, 4, int)

    w = Wider.from_int(0xA1)
    assert w.framing is True
    assert w.extra == 0xA
    assert Wider.FIELDS_MASK == 0xFF


def test_bitfield_declaration_errors():
    with pytest.raises(TypeError, match=r"'class Nowidth\(Bitfield, width=32\):'"):

        class Nowidth(Bitfield):
            pass

    with pytest.raises(ValueError, match="width=65 must be between 1 and 64 bits"):

        class TooWide(Bitfield, width=65):
            pass

    with pytest.raises(
        ValueError, match=r"^Overlap\.b: bits 3\.\.4 overlap field 'a'$"
    ):

        class Overlap(Bitfield, width=8):
            a = BitField(0, 4, int)
            b = BitField(3, 2, int)

    with pytest.raises(
        ValueError, match=r"^Outside\.a: bits 6\.\.9 do not fit in the 8-bit register$"
    ):

        class Outside(Bitfield, width=8):
            a = BitField(6, 4, int)

    with pytest.raises(ValueError, match="overlap field 'framing'"):

        class Clash(Errors, width=8):
            again = BitField(0, 2, int)


def test_bitfield_field_errors():
    with pytest.raises(
        ValueError, match=r"BitField\(start=-1, width=1\): start must be 0"
    ):
        BitField(-1, 1, bool)
    with pytest.raises(ValueError, match="width at least 1"):
        BitField(0, 0, int)
    with pytest.raises(
        ValueError, match=r"^BitField\(0, 2, bool\): a bool field is one bit wide"
    ):
        BitField(0, 2, bool)
    with pytest.raises(
        TypeError, match=r"BitField\(0, 4, <class 'str'>\): the field type must be"
    ):
        BitField(0, 4, str)
    with pytest.raises(
        ValueError,
        match=r"^BitField\(0, 8, Errors\): Errors is 4 bits wide, the field 8",
    ):
        BitField(0, 8, Errors)


def test_bitfield_enum_coverage_errors():
    with pytest.raises(
        ValueError,
        match=r"^BitField\(0, 2, Speed\): no member for the encodings 2; add "
        r"members or pass fallback=",
    ):
        BitField(0, 2, Speed)
    with pytest.raises(ValueError, match=r"encodings 2, 3, 4, 5, 6, 7, 8, 9, \.\.\."):
        BitField(0, 4, Parity)
    with pytest.raises(
        ValueError, match=r"RegisterOffset\.FR = 24 is not a 4-bit unsigned integer"
    ):
        BitField(0, 4, RegisterOffset)
    with pytest.raises(
        TypeError, match=r"fallback=<Parity\.ODD: 0> is not a Speed member"
    ):
        BitField(0, 2, Speed, fallback=Parity.ODD)

    class Named(enum.Enum):
        A = "a"

    with pytest.raises(
        ValueError, match=r"Named\.A = 'a' is not a 1-bit unsigned integer"
    ):
        BitField(0, 1, Named)
