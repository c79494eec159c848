"""Register maps: access kinds, masks, logs, arrays, 64-bit halves, reset, decode.

The semantics are those of QEMU's hw/core/register.c (register_read,
register_write with its write-enable mask, register_reset) and the log lines
are QEMU 7.2's (the strings in its binary); the PrimeCell decode (Decode.WHOLE)
is the offset >> 2 switch of QEMU's pl011.c.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import pytest

from qemu_api.bits import BitField, Bitfield, u8, u16, u64
from qemu_api.bql import (
    BorrowError,
    BorrowMutError,
    BqlCell,
    BqlNotHeldError,
    BqlRefCell,
    BqlStruct,
)
from qemu_api.error import Error
from qemu_api.log import LOG_GUEST_ERROR, LOG_UNIMP, qemu_set_log
from qemu_api.memory import (
    AddressSpace,
    MemoryRegion,
    MemoryRegionOps,
    OpsImpl,
    OpsValid,
)
from qemu_api.register import (
    RAZ,
    RC,
    RO,
    RW,
    W1C,
    W1S,
    WI,
    WO,
    Access,
    Decode,
    R,
    Register,
    RegisterArray,
    RegisterLog,
    RegisterMap,
    W,
)


class Ctrl(Bitfield, width=32):
    enable = BitField(0, 1, bool)
    mode = BitField(4, 2, int)


class Regs(BqlStruct):
    data: int
    ctrl: Ctrl
    status: int
    latch: int
    mask: u16
    counter: int
    prio: list[int]
    timers: list[Timer64]

    def __init__(self) -> None:
        self.data = 0
        self.ctrl = Ctrl()
        self.status = 0
        self.latch = 0
        self.mask = u16(0)
        self.counter = 0
        self.prio = [0] * 8
        self.timers = [Timer64(), Timer64()]


class Timer64(BqlStruct):
    config: u64
    cmp: int

    def __init__(self) -> None:
        self.config = u64(0)
        self.cmp = 0


class Dev:
    """A device with one register of each kind (offsets in the map below)."""

    regs: Regs

    def __init__(self) -> None:
        self.regs = Regs()
        self.events: list[str] = []
        self.fifo = [0x41, 0x42]

    def pop(self) -> int:
        self.events.append("pop")
        return self.fifo.pop(0) if self.fifo else 0

    def send(self, value: int) -> None:
        self.events.append(f"send {value:#x}")

    def changed(self) -> None:
        self.events.append("changed")

    def double(self, value: int) -> int:
        return value * 2

    def prio_written(self, n: int) -> None:
        self.events.append(f"prio {n}")

    registers = RegisterMap["Dev"](
        "dev",
        0x200,
        [
            Register("DATA", 0x00, RW, read=pop, write=send, write_mask=0xFF),
            Register("CTRL", 0x04, RW, field=lambda s: s.regs.ctrl, reset=0x10),
            Register("STATUS", 0x08, R | W1C, field=lambda s: s.regs.status),
            Register("SET", 0x0C, W1S, field=lambda s: s.regs.status),
            Register("LATCH", 0x10, R | RC, field=lambda s: s.regs.latch),
            Register(
                "MASK",
                0x14,
                RW,
                field=lambda s: s.regs.mask,
                write_mask=0xF0F0,
                rsvd=0x0F00,
                unimp=0x8000,
                post_write=changed,
            ),
            Register("ID", 0x18, RO, read=lambda s: 0xC0FFEE),
            Register("KICK", 0x1C, WO, field=lambda s: s.regs.data),
            Register("IGN", 0x20, R | WI, field=lambda s: s.regs.data, reset=None),
            Register("ZERO", 0x24, RAZ | W, field=lambda s: s.regs.latch, reset=None),
            Register(
                "DBL",
                0x28,
                RW,
                field=lambda s: s.regs.counter,
                pre_write=lambda s, v: v + 1,
                post_read=double,
            ),
            Register("CNT", 0x30, RW, width=64, field=lambda s: s.regs.counter),
            RegisterArray(
                "PRIO",
                0x40,
                8,
                RW,
                width=8,
                field=lambda s, n: s.regs.prio[n],
                post_write=prio_written,
                reset=[1, 2, 3, 4, 5, 6, 7, 8],
            ),
            RegisterArray(
                "TCFG",
                0x100,
                2,
                RW,
                width=64,
                stride=0x20,
                field=lambda s, n: s.regs.timers[n].config,
            ),
            RegisterArray(
                "TCMP",
                0x108,
                2,
                R | W1S,
                width=64,
                stride=0x20,
                field=lambda s, n: s.regs.timers[n].cmp,
            ),
        ],
    )


M = Dev.registers


@pytest.fixture
def dev() -> Dev:
    d = Dev()
    M.reset(d)
    return d


@pytest.fixture
def log(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    qemu_set_log(LOG_GUEST_ERROR | LOG_UNIMP)
    capsys.readouterr()
    return capsys


# -- access kinds --------------------------------------------------------------------


def test_rw_field_and_bitfield(dev: Dev) -> None:
    assert M.read(dev, 0x04, 4) == 0x10  # the reset value, through the Bitfield
    M.write(dev, 0x04, 0x31, 4)
    assert dev.regs.ctrl.enable
    assert dev.regs.ctrl.mode == 3
    assert type(dev.regs.ctrl) is Ctrl
    assert M.read(dev, 0x04, 4) == 0x31


def test_callbacks_instead_of_a_field(dev: Dev) -> None:
    assert [M.read(dev, 0x00, 4), M.read(dev, 0x00, 4)] == [0x41, 0x42]
    M.write(dev, 0x00, 0x1234, 4)  # write_mask 0xFF, no field: the rest is 0
    assert dev.events == ["pop", "pop", "send 0x34"]


def test_write_one_to_clear_and_to_set(dev: Dev) -> None:
    dev.regs.status = 0b1111
    M.write(dev, 0x08, 0b0101, 4)
    assert M.read(dev, 0x08, 4) == 0b1010
    M.write(dev, 0x0C, 0b0001, 4)
    assert dev.regs.status == 0b1011
    M.write(dev, 0x0C, 0, 4)
    M.write(dev, 0x08, 0, 4)
    assert dev.regs.status == 0b1011


def test_write_only_w1s_reads_are_guest_errors(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    dev.regs.status = 3
    assert M.read(dev, 0x0C, 4) == 0
    assert log.readouterr().err == (
        "dev: read from write-only register SET at address: 0xc\n"
    )


def test_clear_on_read(dev: Dev) -> None:
    dev.regs.latch = 0x55
    assert M.read(dev, 0x10, 4) == 0x55
    assert M.read(dev, 0x10, 4) == 0


def test_write_mask_keeps_the_other_bits_and_reserved_bits_log(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    dev.regs.mask = u16(0x0A0A)
    M.write(dev, 0x14, 0x3333, 4)
    # register.c: new = (val & ~no_w_mask) | (old & no_w_mask), with the
    # reserved bits in no_w_mask; a reserved bit that would change is logged.
    assert dev.regs.mask == (0x3333 & 0xF0F0) | (0x0A0A & ~0xF0F0)
    assert type(dev.regs.mask) is u16
    assert log.readouterr().err == (
        "dev: change of value in reserved bitfields: 0x900)\n"
    )
    assert dev.events == ["changed"]


def test_unimplemented_bits_log_as_unimp(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    M.write(dev, 0x14, 0x8000 | 0x00A0, 4)
    assert log.readouterr().err == (
        "dev:MASK writing 0x80a0 to unimplemented bits: 0x8000\n"
    )
    assert dev.regs.mask == 0x80A0  # stored as the write mask says


def test_read_only_and_write_only(dev: Dev, log: pytest.CaptureFixture[str]) -> None:
    assert M.read(dev, 0x18, 4) == 0xC0FFEE
    M.write(dev, 0x18, 1, 4)
    assert M.read(dev, 0x1C, 4) == 0
    M.write(dev, 0x1C, 7, 4)
    assert dev.regs.data == 7
    assert log.readouterr().err == (
        "dev: write to read-only register ID at address: 0x18\n"
        "dev: read from write-only register KICK at address: 0x1c\n"
    )


def test_writes_ignored_and_reads_as_zero_are_silent(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    dev.regs.data = 9
    dev.regs.latch = 5
    M.write(dev, 0x20, 1, 4)
    assert M.read(dev, 0x20, 4) == 9
    assert M.read(dev, 0x24, 4) == 0
    M.write(dev, 0x24, 3, 4)
    assert dev.regs.latch == 3
    assert log.readouterr().err == ""


def test_pre_write_and_post_read_hooks(dev: Dev) -> None:
    M.write(dev, 0x28, 20, 4)
    assert dev.regs.counter == 21
    assert M.read(dev, 0x28, 4) == 42


def test_guest_errors_are_silent_without_the_log_flag(
    dev: Dev, capsys: pytest.CaptureFixture[str]
) -> None:
    M.read(dev, 0x1C, 4)
    M.write(dev, 0x18, 1, 4)
    M.read(dev, 0x1F0, 4)
    M.write(dev, 0x14, 0xFFFF, 4)
    assert capsys.readouterr().err == ""


# -- decode ----------------------------------------------------------------------


def test_unassigned_offsets_log_register_c_lines(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    assert M.read(dev, 0x2C, 4) == 0
    M.write(dev, 0x2C, 5, 4)
    assert M.read(dev, 0x1F8, 4) == 0
    assert log.readouterr().err == (
        "dev:  read to unimplemented register at address: 0x2c\n"
        "dev: write to unimplemented register at address: 0x2c\n"
        "dev:  read to unimplemented register at address: 0x1f8\n"
    )


@pytest.mark.parametrize(("offset", "size"), [(0x200, 4), (0x1000, 4), (-4, 4)])
def test_offsets_outside_the_block_are_unassigned(
    dev: Dev, log: pytest.CaptureFixture[str], offset: int, size: int
) -> None:
    assert M.read(dev, offset, size) == 0
    M.write(dev, offset, 1, size)
    err = log.readouterr().err
    assert err.count("unimplemented register") == 2


@pytest.mark.parametrize("size", [0, 3, 16])
def test_bad_sizes_are_guest_errors(
    dev: Dev, log: pytest.CaptureFixture[str], size: int
) -> None:
    before = dev.regs.status
    if size == 3:
        # A 3-byte access is bytes 0-2 of the register.
        dev.regs.status = 0xAABBCCDD
        assert M.read(dev, 0x08, size) == 0xBBCCDD
        assert log.readouterr().err == ""
        return
    assert M.read(dev, 0x08, size) == 0
    M.write(dev, 0x08, 0xFF, size)
    assert dev.regs.status == before
    assert log.readouterr().err == (
        "dev:  read to unimplemented register at address: 0x8\n"
        "dev: write to unimplemented register at address: 0x8\n"
    )


def test_regname_and_lookup() -> None:
    assert M.regname(0x04) == "CTRL"
    assert M.regname(0x07) == "CTRL"
    assert M.regname(0x2C) == "UNKN"
    assert M.regname(0x43) == "PRIO3"
    assert M["PRIO3"].offset == 0x43
    assert M["TCMP1"].offset == 0x128
    assert M.decode_offset(0x2C) is None
    with pytest.raises(KeyError, match="no register 'CTLR'; did you mean 'CTRL'"):
        M["CTLR"]
    assert len(M) == 12 + 8 + 2 + 2
    assert [r.name for r in M][:3] == ["DATA", "CTRL", "STATUS"]


def test_trace_points_get_offset_value_and_name(dev: Dev) -> None:
    seen: list[tuple[str, int, int, str]] = []

    class Traced:
        regs: Regs

        def __init__(self) -> None:
            self.regs = Regs()

        registers = RegisterMap["Traced"](
            "traced",
            0x10,
            [Register("A", 0, RW, field=lambda s: s.regs.data, trace_name="AA")],
            trace_read=lambda o, v, n: seen.append(("r", o, v, n)),
            trace_write=lambda o, v, n: seen.append(("w", o, v, n)),
            unknown_name="?",
        )

    t = Traced()
    Traced.registers.write(t, 0, 5, 4)
    Traced.registers.read(t, 0, 4)
    Traced.registers.read(t, 8, 4)
    assert seen == [("w", 0, 5, "AA"), ("r", 0, 5, "AA"), ("r", 8, 0, "?")]


# -- partial and spanning accesses (Decode.BYTES) ---------------------------------


def test_64_bit_register_as_32_bit_halves(dev: Dev) -> None:
    dev.regs.counter = 0x1122_3344_5566_7788
    assert M.read(dev, 0x30, 4) == 0x5566_7788
    assert M.read(dev, 0x34, 4) == 0x1122_3344
    assert M.read(dev, 0x30, 8) == 0x1122_3344_5566_7788
    M.write(dev, 0x34, 0xAABB_CCDD, 4)
    assert dev.regs.counter == 0xAABB_CCDD_5566_7788
    M.write(dev, 0x30, 0x0102_0304, 4)
    assert dev.regs.counter == 0xAABB_CCDD_0102_0304
    assert M.read(dev, 0x36, 2) == 0xAABB


class Split(BqlStruct):
    cmp: int
    period: int

    def __init__(self) -> None:
        self.cmp = 0
        self.period = 0


class SplitDev:
    """A comparator whose writes go to one value or another, as QEMU's HPET's."""

    def __init__(self) -> None:
        self.regs = Split()
        self.periodic = False
        self.writes: list[tuple[int, int]] = []

    def read_cmp(self) -> int:
        return self.regs.cmp

    def write_cmp(self, value: int, mask: int) -> None:
        self.writes.append((value, mask))
        if self.periodic:
            self.regs.period = (self.regs.period & ~mask) | value
        else:
            self.regs.cmp = (self.regs.cmp & ~mask) | value

    registers = RegisterMap["SplitDev"](
        "split",
        0x10,
        [
            Register("CMP", 0x8, RW, width=64, read=read_cmp, write_masked=write_cmp),
        ],
    )


def test_write_masked_gets_the_bits_each_access_covers() -> None:
    d = SplitDev()
    m = SplitDev.registers
    m.write(d, 0x8, 0x1122_3344_5566_7788, 8)
    m.write(d, 0xC, 0xAABB_CCDD, 4)
    d.periodic = True
    m.write(d, 0x8, 0x0102_0304, 4)
    assert d.writes == [
        (0x1122_3344_5566_7788, 0xFFFF_FFFF_FFFF_FFFF),
        (0xAABB_CCDD_0000_0000, 0xFFFF_FFFF_0000_0000),
        (0x0102_0304, 0xFFFF_FFFF),
    ]
    assert d.regs.cmp == 0xAABB_CCDD_5566_7788
    assert d.regs.period == 0x0102_0304
    assert m.read(d, 0xC, 4) == 0xAABB_CCDD


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"write": lambda s, v: None}, "replaces write= and pre_write="),
        ({"pre_write": lambda s, v: v}, "replaces write= and pre_write="),
        ({"access": R | W1C}, "use W, not W1C or W1S"),
        ({"access": RO}, "need a writable register"),
    ],
)
def test_write_masked_declaration_errors(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"access": RW, **kwargs}
    access = args.pop("access")
    with pytest.raises(Error, match=message):
        Register[Any](
            "A",
            0,
            access,
            field=lambda s: s.x,
            write_masked=lambda s, v, m: None,
            **args,
        )


def test_halves_of_w1s_registers_set_only_their_bits(dev: Dev) -> None:
    dev.regs.timers[1].cmp = 0x1
    M.write(dev, 0x12C, 0x8000_0000, 4)  # high half of TCMP1
    assert dev.regs.timers[1].cmp == 0x8000_0000_0000_0001
    assert dev.regs.timers[0].cmp == 0
    M.write(dev, 0x100, 0xFFFF_FFFF, 4)
    assert dev.regs.timers[0].config == 0xFFFF_FFFF
    assert type(dev.regs.timers[0].config) is u64


def test_partial_rc_clears_only_the_bytes_read(dev: Dev) -> None:
    dev.regs.latch = 0x1234
    assert M.read(dev, 0x11, 1) == 0x12
    assert dev.regs.latch == 0x34


def test_one_access_over_several_byte_registers(dev: Dev) -> None:
    assert M.read(dev, 0x40, 4) == 0x0403_0201  # the reset values, little-endian
    M.write(dev, 0x44, 0x0D0C_0B0A, 4)
    assert dev.regs.prio == [1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D]
    assert dev.events == ["prio 4", "prio 5", "prio 6", "prio 7"]
    assert M.read(dev, 0x40, 8) == 0x0D0C_0B0A_0403_0201


def test_access_across_a_register_and_a_hole(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    dev.regs.latch = 0xFFFF_FFFF  # LATCH is 0x10, RC; MASK follows at 0x14
    dev.regs.mask = u16(0x1234)
    assert M.read(dev, 0x12, 4) == 0x1234_FFFF
    assert dev.regs.latch == 0x0000_FFFF
    assert M.read(dev, 0x2A, 4) == 0  # DBL's upper half, then a hole
    assert log.readouterr().err == (
        "dev:  read to unimplemented register at address: 0x2c\n"
    )


def test_access_over_several_registers_takes_the_same_path_every_time(
    dev: Dev, log: pytest.CaptureFixture[str]
) -> None:
    # The decomposition of an access into whole registers is remembered; the
    # second access of each kind must behave exactly as the first.
    for _ in range(2):
        dev.events.clear()
        M.write(dev, 0x42, 0x0B0A, 2)
        assert dev.regs.prio[2:4] == [0x0A, 0x0B]
        assert dev.events == ["prio 2", "prio 3"]
        assert M.read(dev, 0x41, 2) == 0x0A02
        # Part of a register (CNT's middle bytes) is not whole registers.
        dev.regs.counter = 0x1122_3344_5566_7788
        assert M.read(dev, 0x32, 4) == 0x3344_5566
        dev.regs.counter = 0
        # A register, then a hole: the general path, with its log line.
        assert M.read(dev, 0x2A, 4) == 0
    assert log.readouterr().err == (
        "dev:  read to unimplemented register at address: 0x2c\n" * 2
    )


class Sized:
    """A device whose configuration decides which registers it has."""

    regs: Regs

    def __init__(self, count: int) -> None:
        self.regs = Regs()
        self.count = count

    registers = RegisterMap["Sized"](
        "sized",
        0x20,
        [
            Register(
                "EXTRA",
                0x00,
                RW,
                field=lambda s: s.regs.status,
                present=lambda s: s.count > 4,
            ),
            RegisterArray(
                "PRIO",
                0x10,
                8,
                RW,
                width=8,
                field=lambda s, n: s.regs.prio[n],
                present=lambda s, n: n < s.count,
            ),
        ],
        log=RegisterLog.bad_offset(
            "sized_read: Bad offset {addr:x}\n", "sized_write: Bad offset {addr:x}\n"
        ),
    )


def test_registers_the_instance_does_not_have_are_holes(
    log: pytest.CaptureFixture[str],
) -> None:
    small, big = Sized(2), Sized(8)
    for d in (big, small):
        Sized.registers.reset(d)
        Sized.registers.write(d, 0x10, 0x4433_2211, 4)
        Sized.registers.write(d, 0x00, 5, 4)
        if d is big:
            assert log.readouterr().err == ""
    assert log.readouterr().err == (
        "sized_write: Bad offset 12\n"
        "sized_write: Bad offset 13\n"
        "sized_write: Bad offset 0\n"
    )
    assert big.regs.prio[:4] == [0x11, 0x22, 0x33, 0x44]
    assert Sized.registers.read(big, 0x10, 4) == 0x4433_2211
    assert Sized.registers.read(big, 0x00, 4) == 5
    assert log.readouterr().err == ""
    assert small.regs.prio[:4] == [0x11, 0x22, 0, 0]
    assert small.regs.status == 0
    assert Sized.registers.read(small, 0x10, 4) == 0x2211
    assert Sized.registers.read(small, 0x12, 1) == 0
    assert Sized.registers.read(small, 0x00, 4) == 0
    assert log.readouterr().err == (
        "sized_read: Bad offset 12\n"
        "sized_read: Bad offset 13\n"
        "sized_read: Bad offset 12\n"
        "sized_read: Bad offset 0\n"
    )
    Sized.registers.write(small, 0x12, 0x77, 1)
    assert log.readouterr().err == "sized_write: Bad offset 12\n"
    assert small.regs.prio[2] == 0


def test_exact_decode_takes_only_a_register_s_own_offset(
    log: pytest.CaptureFixture[str],
) -> None:
    class C:
        regs: Regs

        def __init__(self) -> None:
            self.regs = Regs()
            self.acks = 0

        def ack(self) -> int:
            self.acks += 1
            return 0x1234_5678

        registers = RegisterMap["C"](
            "c",
            0x100,
            [
                Register("CTLR", 0x00, RW, field=lambda s: s.regs.status),
                Register("IAR", 0x0C, RO, read=ack),
            ],
            decode=Decode.EXACT,
            log=RegisterLog.bad_offset(
                "c_read: Bad offset {addr:x}\n", "c_write: Bad offset {addr:x}\n"
            ),
        )

    c = C()
    C.registers.reset(c)
    # Any size at the register's offset is the whole register (the memory
    # core narrows the value for the guest, as QEMU's does).
    assert C.registers.read(c, 0x0C, 1) == 0x1234_5678
    assert C.registers.read(c, 0x0C, 4) == 0x1234_5678
    C.registers.write(c, 0x00, 0x1_0000_0005, 4)
    assert c.regs.status == 5
    assert log.readouterr().err == ""
    # Inside a register but not at its offset: a bad offset, no side effect.
    assert C.registers.read(c, 0x0E, 2) == 0
    C.registers.write(c, 0x01, 1, 1)
    assert C.registers.read(c, 0x40, 4) == 0
    assert c.acks == 2
    assert c.regs.status == 5
    assert log.readouterr().err == (
        "c_read: Bad offset e\nc_write: Bad offset 1\nc_read: Bad offset 40\n"
    )


# -- reset ---------------------------------------------------------------------------


def test_reset_stores_the_declared_values(dev: Dev) -> None:
    dev.regs.ctrl = Ctrl(0xFF)
    dev.regs.status = 7
    dev.regs.prio[3] = 99
    dev.regs.data = 5
    M.reset(dev)
    assert int(dev.regs.ctrl) == 0x10
    assert dev.regs.status == 0
    assert dev.regs.prio == [1, 2, 3, 4, 5, 6, 7, 8]
    # IGN has reset=None and KICK (same field) resets it to 0.
    assert dev.regs.data == 0
    assert dev.events == []  # no hook runs


def test_reset_values_of_aliases_must_agree() -> None:
    class S(BqlStruct):
        x: int

    class D:
        s: S

    with pytest.raises(
        Error,
        match=r"register B \(offset 0x4\): reset=0x1, but A resets the same field to "
        r"0x0; make them agree",
    ):
        RegisterMap["D"](
            "d",
            8,
            [
                Register("A", 0, RW, field=lambda d: d.s.x),
                Register("B", 4, RW, field=lambda d: d.s.x, reset=1),
            ],
        ).bind(D)


# -- the big lock and borrows --------------------------------------------------------


def test_access_without_the_bql_raises(dev: Dev) -> None:
    errors: list[BaseException] = []

    def guest() -> None:
        try:
            M.read(dev, 0x08, 4)
        except BaseException as exc:
            errors.append(exc)
        try:
            M.write(dev, 0x04, 1, 4)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=guest)
    t.start()
    t.join(5)
    assert [type(e) for e in errors] == [BqlNotHeldError, BqlNotHeldError]
    assert "reading Regs.status needs the BQL" in str(errors[0])
    assert "writing Regs.ctrl needs the BQL" in str(errors[1])
    assert int(dev.regs.ctrl) == 0x10


def test_mmio_while_the_state_is_borrowed_is_caught(dev: Dev) -> None:
    with dev.regs.borrow_mut():
        with pytest.raises(BorrowError, match=r"reading Regs\.status: the struct is"):
            M.read(dev, 0x08, 4)
        with pytest.raises(BorrowMutError, match=r"writing Regs\.ctrl: the struct is"):
            M.write(dev, 0x04, 1, 4)
    with dev.regs.borrow():
        assert M.read(dev, 0x08, 4) == 0  # shared borrows nest
        with pytest.raises(BorrowMutError):
            M.write(dev, 0x04, 1, 4)
        with pytest.raises(BorrowMutError):
            M.write(dev, 0x44, 1, 1)  # an element of a list in the struct


def test_fields_in_cells() -> None:
    class Inner:
        level: int

        def __init__(self) -> None:
            self.level = 0

    class C:
        plain: BqlCell[int]
        ref: BqlRefCell[Inner]

        def __init__(self) -> None:
            self.plain = BqlCell(0)
            self.ref = BqlRefCell(Inner())

        registers = RegisterMap["C"](
            "c",
            8,
            [
                Register("P", 0, RW, field=lambda s: s.plain.get()),
                Register("Q", 4, R | W1S, field=lambda s: s.ref.get().level),
            ],
        )

    c = C()
    C.registers.write(c, 0, 7, 4)
    C.registers.write(c, 4, 6, 4)
    C.registers.write(c, 4, 1, 4)
    assert (c.plain.get(), c.ref.get().level) == (7, 7)
    with c.ref.borrow(), pytest.raises(BorrowMutError):
        C.registers.write(c, 4, 1, 4)


# -- through an address space ----------------------------------------------------


def test_dispatch_through_an_address_space(dev: Dev) -> None:
    ops = MemoryRegionOps[Dev](
        read=M.read,
        write=M.write,
        valid=OpsValid(min_access_size=1, max_access_size=8),
        impl=OpsImpl(min_access_size=1, max_access_size=8),
    )
    root = MemoryRegion.container(None, "root", 1 << 32)
    root.add_subregion(0x1000, MemoryRegion.io(None, "dev", M.size, ops, dev))
    space = AddressSpace(root, "test-register")
    dev.regs.counter = 0x1122_3344_5566_7788
    assert space.read(0x1034, 4) == 0x1122_3344
    space.write(0x1042, 0x0706, 2)
    assert dev.regs.prio[:4] == [1, 2, 6, 7]


def test_whole_register_decode_ignores_size_and_low_bits(
    log: pytest.CaptureFixture[str],
) -> None:
    class P:
        regs: Regs

        def __init__(self) -> None:
            self.regs = Regs()

        registers = RegisterMap["P"](
            "p",
            0x1000,
            [
                Register("FR", 0x18, R | WI, field=lambda s: s.regs.status, reset=0x90),
                Register("CR", 0x30, RW, field=lambda s: s.regs.data, reset=0x300),
            ],
            decode=Decode.WHOLE,
            log=RegisterLog.bad_offset(
                "p_read: Bad offset 0x{addr:x}\n", "p_write: Bad offset 0x{addr:x}\n"
            ),
        )

    p = P()
    P.registers.reset(p)
    assert P.registers.read(p, 0x19, 1) == 0x90  # the whole register, not byte 1
    assert P.registers.read(p, 0x32, 2) == 0x300
    P.registers.write(p, 0x31, 0x1234, 1)
    assert p.regs.data == 0x1234
    P.registers.write(p, 0x18, 1, 4)
    assert P.registers.read(p, 0x1C, 4) == 0
    P.registers.write(p, 0xFFF, 1, 4)
    assert log.readouterr().err == (
        "p_read: Bad offset 0x1c\np_write: Bad offset 0xfff\n"
    )


def test_exact_decode_reaches_registers_at_their_offset_only(
    log: pytest.CaptureFixture[str],
) -> None:
    # QEMU's pl031_read: "case RTC_MR" matches offset 4 only (offset 5 is a bad
    # offset), "case 0xfe0 ... 0xfff" every byte of the ID block.
    ids = (0x31, 0x10, 0x14, 0x00)

    class P:
        regs: Regs

        def __init__(self) -> None:
            self.regs = Regs()

        registers = RegisterMap["P"](
            "p",
            0x1000,
            [
                Register("MR", 0x04, RW, field=lambda s: s.regs.data),
                RegisterArray(
                    "ID", 0xFF0, 16, RO, width=8, read=lambda s, n: ids[n >> 2]
                ),
            ],
            decode=Decode.EXACT,
            log=RegisterLog.bad_offset(
                "p_read: Bad offset 0x{addr:x}\n", "p_write: Bad offset 0x{addr:x}\n"
            ),
        )

    p = P()
    P.registers.write(p, 0x04, 0x1234_5678, 4)
    assert P.registers.read(p, 0x04, 1) == 0x1234_5678  # whole, the core narrows
    P.registers.write(p, 0x04, 0x9A, 1)  # a byte store writes the whole register
    assert p.regs.data == 0x9A
    assert P.registers.read(p, 0x05, 1) == 0
    P.registers.write(p, 0x06, 1, 2)
    assert p.regs.data == 0x9A
    assert [P.registers.read(p, 0xFF0 + i, 1) for i in (0, 3, 4, 0xD)] == [
        0x31,
        0x31,
        0x10,
        0x00,
    ]
    assert P.registers.regname(0x04) == "MR"
    assert P.registers.regname(0x05) == "UNKN"
    assert P.registers.decode_offset(0x07) is None
    assert log.readouterr().err == ("p_read: Bad offset 0x5\np_write: Bad offset 0x6\n")


def test_exact_decode_in_large_maps() -> None:
    # Past the byte-indexed table size the decode is by granule; an access
    # must still land on a register's own offset.
    class Big:
        registers = RegisterMap["Big"](
            "big",
            0x20000,
            [Register("R", 0x10004, R, read=lambda s: 0xABCD)],
            decode=Decode.EXACT,
        )

    big = Big()
    assert Big.registers.read(big, 0x10004, 4) == 0xABCD
    assert Big.registers.read(big, 0x10004, 1) == 0xABCD
    assert Big.registers.read(big, 0x10006, 2) == 0


# -- declaration errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Register("A", 2, RW, field=lambda s: s.x), "must sit at a multiple"),
        (lambda: Register("A", 0, RW, width=12, field=lambda s: s.x), "width=12"),
        (lambda: Register("A", 0, R | RAZ, read=lambda s: 0), "R and RAZ both"),
        (lambda: Register("A", 0, W | W1C, field=lambda s: s.x), "W and W1C both"),
        (lambda: Register("A", 0, Access(0)), "neither read nor written"),
        (lambda: Register("A", 0, RC | W, field=lambda s: s.x), "RC .* needs R"),
        (lambda: Register("A", 0, RO), "needs field= or read="),
        (lambda: Register("A", 0, WO), "needs field= or write="),
        (lambda: Register("A", 0, R | W1C, read=lambda s: 0), "needs field="),
        (
            lambda: Register[Any]("A", 0, RO, field=lambda s: s.x, post_write=print),
            "need a writable register",
        ),
        (lambda: Register("A", 0, RAZ | WI, reset=5), "a reset value needs a field"),
        (
            lambda: Register(
                "A", 0, RW, width=8, field=lambda s: s.x, write_mask=0x100
            ),
            "write_mask=0x100 has bits outside the 8-bit register",
        ),
        (
            lambda: Register[Any]("A", 0, RW, field=lambda s: s.x + 1),
            "computes something instead of naming a field",
        ),
        (lambda: Register("A", 0, RW, field=lambda s: s), "returns its argument"),
        (
            lambda: RegisterArray("A", 0, 2, RW, field=lambda s, n: s.x[n], reset=[1]),
            "1 reset values for 2 elements",
        ),
        (
            lambda: RegisterArray("A", 0, 4, RAZ | WI, width=32, stride=2),
            "stride=2 is less than the 4 bytes",
        ),
        (
            lambda: RegisterMap[Any](
                "m",
                8,
                [Register("A", 0, RAZ | WI), Register("B", 2, RAZ | WI, width=16)],
            ),
            "B at 0x2 overlaps A",
        ),
        (
            lambda: RegisterMap[Any]("m", 8, [Register("A", 8, RAZ | WI)]),
            "ends past the 0x8-byte block",
        ),
        (
            lambda: RegisterMap[Any](
                "m", 8, [Register("A", 0, RAZ | WI), Register("A", 4, RAZ | WI)]
            ),
            "two registers are called A",
        ),
        (lambda: RegisterLog(bad_read="{offset}"), "may use {prefix}"),
    ],
)
def test_inconsistent_declarations(make: Any, message: str) -> None:
    with pytest.raises(Error, match=message):
        make()


class Plain:
    x: int

    def __init__(self) -> None:
        self.x = 0


class Holder(BqlStruct):
    wide: Ctrl
    small: u8
    name: str
    inner: Timer64

    def __init__(self) -> None:
        self.wide = Ctrl()
        self.small = u8(0)
        self.name = ""
        self.inner = Timer64()


class Bad:
    h: Holder
    p: Plain
    fifo: Annotated[list[int], 4]


@pytest.mark.parametrize(
    ("reg", "message"),
    [
        (Register("A", 0, RW, field=lambda s: s.p.x), "not BQL-protected state"),
        (Register("A", 0, RW, field=lambda s: s.h.nope), "no annotated attribute"),
        (Register("A", 0, RW, field=lambda s: s.h.name), "annotated str"),
        (Register("A", 0, RW, field=lambda s: s.h.inner), "names the struct Timer64"),
        (
            Register("A", 0, RW, width=16, field=lambda s: s.h.wide),
            "32-bit Ctrl, wider than the 16-bit register",
        ),
        (
            Register("A", 0, RW, field=lambda s: s.h.small),
            "holds the bits 0xff, but the write mask and reset value reach 0xffffffff",
        ),
        (Register("A", 0, RW, field=lambda s: s.h.name[0]), "indexes a str"),
    ],
)
def test_references_that_do_not_fit_the_class(reg: Any, message: str) -> None:
    with pytest.raises(Error, match=message):
        RegisterMap[Any]("m", 8, [reg]).bind(Bad)


def test_a_map_binds_to_one_class() -> None:
    class S(BqlStruct):
        x: int

    class A:
        s: S

    class B:
        s: S

    m = RegisterMap[Any]("m", 4, [Register("X", 0, RW, field=lambda d: d.s.x)])
    m.bind(A)
    with pytest.raises(Error, match="is bound to A, not to B"):
        m.bind(B)


def test_module_level_map_binds_on_first_use() -> None:
    class S(BqlStruct):
        x: int

        def __init__(self) -> None:
            self.x = 3

    class D:
        s: S

        def __init__(self) -> None:
            self.s = S()

    m = RegisterMap[D]("m", 4, [Register("X", 0, RW, field=lambda d: d.s.x)])
    assert m.read(D(), 0, 4) == 3


def test_bind_on_first_use_defers_the_class_s_bind() -> None:
    class S(BqlStruct):
        x: int

        def __init__(self) -> None:
            self.x = 5

    class D:
        s: S
        plain: int

        def __init__(self) -> None:
            self.s = S()
            self.plain = 0

        registers = RegisterMap["D"](
            "m",
            8,
            [
                Register("X", 0, RW, field=lambda d: d.s.x),
                Register("Y", 4, RW, field=lambda d: d.plain),
            ],
            bind_on_first_use=True,
        )

    class E(D):
        pass

    unbound = D.registers.read
    # The class is created: the bad reference to plain is found on first use.
    with pytest.raises(Error, match=r"register Y .* not BQL-protected state"):
        D.registers.read(E(), 0, 4)
    # A good map binds to the declaring class, from a subclass's access too.
    D.registers = RegisterMap["D"](
        "m", 4, [Register("X", 0, RW, field=lambda d: d.s.x)], bind_on_first_use=True
    )
    D.registers.__set_name__(D, "registers")
    assert D.registers.read(E(), 0, 4) == 5
    assert D.registers.read is not unbound
    with pytest.raises(Error, match="is bound to D, not to Plain"):
        D.registers.bind(Plain)


def test_bind_on_first_use_checks_the_layout_on_first_use() -> None:
    # An array checks its own declaration at once, whatever the map.
    with pytest.raises(
        Error, match=r"register B1 \(offset 0x5\): .* multiple of 4 bytes"
    ):
        RegisterArray[Any]("B", 0, 4, RAZ, stride=5)
    with pytest.raises(Error, match=r"register B2 .* reset=0x100 does not fit"):
        RegisterArray[Any](
            "B", 0, 4, RO, width=8, field=lambda d, n: d.s.b[n], reset=(0, 1, 256, 3)
        )
    # Overlaps between registers are found when the map is first used.
    m = RegisterMap[Any](
        "m",
        8,
        [RegisterArray("B", 0, 4, RAZ, width=8), Register("W", 0, RAZ)],
        bind_on_first_use=True,
    )
    with pytest.raises(Error, match="W at 0x0 overlaps B0"):
        m.read(object(), 0, 4)
    ok = RegisterMap[Any](
        "m",
        8,
        [RegisterArray("B", 0, 4, RO, width=8, read=lambda d, n: n + 1)],
        bind_on_first_use=True,
    )
    assert ok.read(object(), 0, 4) == 0x04030201
    assert [reg.name for reg in ok] == ["B0", "B1", "B2", "B3"]
    assert ok["B2"].offset == 2


# -- static typing ---------------------------------------------------------------

MISUSE = """
from qemu_api.bql import BqlStruct
from qemu_api.register import RO, RW, Register, RegisterArray, RegisterMap


class Regs(BqlStruct):
    ctrl: int
    name: str

    def __init__(self) -> None:
        self.ctrl = 0
        self.name = ""


class Dev:
    regs: Regs

    def update(self) -> None:
        pass

    def read_id(self, n: int) -> int:
        return n

    registers = RegisterMap["Dev"](
        "dev",
        0x100,
        [
            Register("CTRL", 0x0, RW, field=lambda s: s.regs.ctlr),
            Register("NAME", 0x4, RW, field=lambda s: s.regs.name),
            Register("UPD", 0x8, RW, field=lambda s: s.regs.ctrl, post_write=read_id),
            Register("ID", 0xC, RO, read=read_id),
            RegisterArray("IDS", 0x10, 4, RO, read=update),
        ],
    )


def use(d: Dev) -> None:
    d.regs.ctrl = "on"
"""


def test_misused_register_map_fails_mypy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "misuse.py"
    src.write_text(MISUSE)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c"), str(src)]
    )
    lines = [
        line.split(": error: ")[1] for line in out.splitlines() if ": error: " in line
    ]
    assert lines == [
        '"Regs" has no attribute "ctlr"  [attr-defined]',
        (
            'Argument "field" to "Register" has incompatible type "Callable[[Dev], '
            'str]"; expected "Callable[[Dev], int | Bitfield] | None"  [arg-type]'
        ),
        (
            'Incompatible return value type (got "str", expected "int | Bitfield")  '
            "[return-value]"
        ),
        (
            'Argument "post_write" to "Register" has incompatible type '
            '"Callable[[Dev, int], int]"; expected "Callable[[Dev], None] | None"  '
            "[arg-type]"
        ),
        (
            'Argument "read" to "Register" has incompatible type "Callable[[Dev, '
            'int], int]"; expected "Callable[[Dev], int] | None"  [arg-type]'
        ),
        (
            'Argument "read" to "RegisterArray" has incompatible type '
            '"Callable[[Dev], None]"; expected "Callable[[Dev, int], int] | None"  '
            "[arg-type]"
        ),
        (
            'Incompatible types in assignment (expression has type "str", variable '
            'has type "int")  [assignment]'
        ),
    ], err


# -- resolved accesses ------------------------------------------------------------


def snapshot(d: Dev) -> tuple[object, ...]:
    r = d.regs
    return (
        r.data,
        int(r.ctrl),
        r.status,
        r.latch,
        int(r.mask),
        r.counter,
        list(r.prio),
        [(int(t.config), t.cmp) for t in r.timers],
        list(d.events),
        list(d.fifo),
    )


def busy_dev() -> Dev:
    d = Dev()
    M.reset(d)
    d.regs.status = 0b1010
    d.regs.latch = 0x55
    d.regs.counter = 0x1122_3344_5566_7788
    return d


ACCESSES = [(offset, size) for offset in range(0x140) for size in (1, 2, 4, 8)]


def test_resolved_accesses_do_what_the_callbacks_do(
    log: pytest.CaptureFixture[str],
) -> None:
    resolved_reads = resolved_writes = 0
    for offset, size in ACCESSES:
        a, b = busy_dev(), busy_dev()
        read = M.resolve_read(a, offset, size)
        if read is not None:
            resolved_reads += 1
            assert read(offset, size) == M.read(b, offset, size), (offset, size)
            assert snapshot(a) == snapshot(b), (offset, size)
        a, b = busy_dev(), busy_dev()
        write = M.resolve_write(a, offset, size)
        if write is not None:
            resolved_writes += 1
            value = 0xA5A5_5A5A_F00F_0FF0 & ((1 << (8 * size)) - 1)
            write(offset, value, size)
            M.write(b, offset, value, size)
            assert snapshot(a) == snapshot(b), (offset, size)
    # Whole registers only, one access size each: 11 words, CNT, the 8 PRIO
    # bytes and the 4 TCFG/TCMP doublewords (a read-only register's write
    # resolves to its guest-error log, as the general path logs it).
    assert (resolved_reads, resolved_writes) == (24, 24)
    # The log lines came out on both sides, as many of each.
    lines = log.readouterr().err.splitlines()
    assert all(lines.count(line) % 2 == 0 for line in lines)


def test_only_whole_register_accesses_resolve(dev: Dev) -> None:
    assert M.resolve_read(dev, 0x04, 4) is not None
    assert M.resolve_read(dev, 0x04, 2) is None  # a part: the general path
    assert M.resolve_read(dev, 0x06, 2) is None
    assert M.resolve_read(dev, 0x30, 8) is not None
    assert M.resolve_write(dev, 0x34, 4) is None  # a 32-bit half
    assert M.resolve_read(dev, 0x40, 4) is None  # four byte registers
    assert M.resolve_read(dev, 0x2C, 4) is None  # nothing there: logged
    assert M.resolve_read(dev, 0x200, 4) is None
    assert M.resolve_read(dev, -4, 4) is None


def test_traced_maps_do_not_resolve() -> None:
    from qemu_api.trace import trace_enable_events
    from qemu_trace.pl011 import trace_pl011_read, trace_pl011_write

    class T:
        regs: Regs

        def __init__(self) -> None:
            self.regs = Regs()

        registers = RegisterMap["T"](
            "t",
            0x10,
            [Register("A", 0, RW, field=lambda s: s.regs.data)],
            trace_read=trace_pl011_read,
            trace_write=trace_pl011_write,
        )

    class U:
        regs: Regs

        def __init__(self) -> None:
            self.regs = Regs()

        registers = RegisterMap["U"](
            "u",
            0x10,
            [Register("A", 0, RW, field=lambda s: s.regs.data)],
            trace_read=lambda o, v, n: None,
        )

    t = T()
    assert T.registers.resolve_read(t, 0, 4) is not None  # the events are off
    trace_enable_events("pl011_read")
    assert T.registers.resolve_read(t, 0, 4) is None
    assert T.registers.resolve_write(t, 0, 4) is not None
    trace_enable_events("-pl011_read")
    # A tracer that is not a generated tracepoint is called for every access.
    assert U.registers.resolve_read(U(), 0, 4) is None
    assert U.registers.resolve_write(U(), 0, 4) is not None
