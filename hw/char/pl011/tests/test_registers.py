"""The PL011 register description: the map, decoding, bit layouts, ID bytes."""

from __future__ import annotations

import pytest

from hw.char.pl011 import registers as r
from hw.char.pl011.device import PL011State
from hw.char.pl011.tests.conftest import R
from qemu_api.register import RAZ, RC, RO, RW, W1C, W1S, WI, Decode, W
from qemu_api.register import R as READ

MAP = PL011State.registers


def test_register_offsets_are_the_trm_map() -> None:
    assert {reg.name: reg.offset for reg in MAP if reg.array is None} == {
        "DR": 0x000,
        "RSR": 0x004,
        "FR": 0x018,
        "ILPR": 0x020,
        "IBRD": 0x024,
        "FBRD": 0x028,
        "LCR_H": 0x02C,
        "CR": 0x030,
        "IFLS": 0x034,
        "IMSC": 0x038,
        "RIS": 0x03C,
        "MIS": 0x040,
        "ICR": 0x044,
        "DMACR": 0x048,
    }
    assert {reg.name: int(R[reg.name]) for reg in MAP if reg.array is None} == {
        reg.name: reg.offset for reg in MAP if reg.array is None
    }
    assert [reg.offset for reg in MAP if reg.array is not None] == list(
        range(0xFE0, 0x1000, 4)
    )
    assert all(reg.width == 32 for reg in MAP)
    assert (MAP.size, MAP.decode) == (r.PL011_MMIO_SIZE, Decode.WHOLE)


def test_access_kinds_follow_qemu() -> None:
    """Which registers QEMU's pl011_read/pl011_write accept, and how."""
    kinds = {reg.name: reg.access for reg in MAP if reg.array is None}
    assert kinds["FR"] == READ | WI  # writes ignored without a log line
    assert kinds["RIS"] == kinds["MIS"] == RO  # a write is a bad offset
    assert kinds["ICR"] == W1C  # write one to clear RIS; a read is a bad offset
    assert all(kinds[n] == RW for n in ("DR", "RSR", "ILPR", "IBRD", "FBRD"))
    assert all(kinds[n] == RW for n in ("LCR_H", "CR", "IFLS", "IMSC", "DMACR"))
    assert all(reg.access == RO for reg in MAP if reg.array is not None)
    assert not any(reg.access & (W1S | RC | RAZ) for reg in MAP)
    assert MAP["ICR"].access & W1C
    assert not MAP["ICR"].access & (READ | W)


@pytest.mark.parametrize("name", [reg.name for reg in MAP])
def test_decode_uses_offset_shifted_by_two(name: str) -> None:
    reg = MAP[name]
    for byte in range(4):
        assert MAP.decode_offset(reg.offset + byte) is reg


@pytest.mark.parametrize(
    "offset", [0x08, 0x0C, 0x10, 0x14, 0x1C, 0x4C, 0x50, 0x100, 0xFDC, 0x1000]
)
def test_decode_reserved_offsets(offset: int) -> None:
    assert MAP.decode_offset(offset) is None


def test_regname_matches_qemu_table() -> None:
    assert [MAP.regname(reg) for reg in R] == [
        "DR",
        "RSR",
        "FR",
        "ILPR",
        "IBRD",
        "FBRD",
        "LCRH",
        "CR",
        "IFLS",
        "IMSC",
        "RIS",
        "MIS",
        "ICR",
        "DMACR",
    ]
    assert MAP.regname(0xFE0) == MAP.regname(0xFFF) == "ID"
    assert MAP.regname(0x08) == MAP.regname(0x4C) == MAP.regname(0xFDC) == "UNKN"


def test_reset_values_and_masks_are_qemus() -> None:
    resets = {reg.name: reg.reset for reg in MAP if reg.reset is not None}
    assert resets == {
        "RSR": 0,
        "FR": r.FR_RESET,
        "ILPR": 0,
        "IBRD": 0,
        "FBRD": 0,
        "LCR_H": 0,
        "CR": r.CR_RESET,
        "IFLS": r.IFLS_RESET,
        "IMSC": 0,
        "RIS": 0,
        "ICR": 0,
        "DMACR": 0,
    }
    assert (MAP["IBRD"].write_mask, MAP["FBRD"].write_mask) == (0xFFFF, 0x3F)
    assert MAP["DR"].write_mask == 0xFF
    assert MAP["DMACR"].unimp == 0x3  # TXDMAE and RXDMAE: "DMA not implemented"
    assert MAP["DR"].fields is r.Data


def test_flag_register_bits() -> None:
    bits = {name: 1 << f.start for name, f in r.Flags._FIELDS}
    assert bits == {
        "cts": 0x001,
        "dsr": 0x002,
        "dcd": 0x004,
        "busy": 0x008,
        "rxfe": 0x010,
        "txff": 0x020,
        "rxff": 0x040,
        "txfe": 0x080,
        "ri": 0x100,
    }
    assert r.FR_RESET == 0x90


def test_control_register_bits() -> None:
    cr = r.Control.from_int(0xFFFF)
    assert (cr.uarten, cr.lbe, cr.txe, cr.rxe) == (True, True, True, True)
    bits = {name: f.start for name, f in r.Control._FIELDS}
    assert bits["lbe"] == 7
    assert bits["txe"] == 8
    assert bits["rxe"] == 9
    assert bits["dtr"] == 10
    assert bits["rts"] == 11
    assert bits["out1"] == 12
    assert bits["out2"] == 13
    assert r.CR_RESET == 0x300


def test_line_control_bits_and_full_value_kept() -> None:
    lcr = r.LineControl.from_int(0xFFFF_FF11)
    assert lcr.brk
    assert lcr.fen
    assert int(lcr) == 0xFFFF_FF11


def test_data_and_status_bits() -> None:
    assert r.DR_BE == 0x400
    assert r.Data.from_int(r.DR_BE).be
    assert r.ReceiveStatus.from_int(r.DR_BE >> 8).be
    assert r.ReceiveStatus.FIELDS_MASK == 0xF


def test_interrupt_bits_and_irq_masks() -> None:
    assert [1 << i for i in range(11)] == [
        r.INT_RI,
        r.INT_CTS,
        r.INT_DCD,
        r.INT_DSR,
        r.INT_RX,
        r.INT_TX,
        r.INT_RT,
        r.INT_FE,
        r.INT_PE,
        r.INT_BE,
        r.INT_OE,
    ]
    assert r.INT_E == 0x780
    assert r.INT_MS == 0x00F
    assert r.IRQMASK == (0x7FF, 0x010, 0x020, 0x040, 0x00F, 0x780)


def test_masks_and_id_bytes() -> None:
    assert (r.IBRD_MASK, r.FBRD_MASK) == (0xFFFF, 0x3F)
    assert bytes.fromhex("11101400 0df005b1") == r.PL011_ID_ARM
    assert bytes.fromhex("11001801 0df005b1") == r.PL011_ID_LUMINARY
    assert r.PL011_FIFO_DEPTH == 16
    assert r.PL011_MMIO_SIZE == 0x1000
