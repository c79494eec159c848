"""The PL011's VMState: QEMU's wire layout, round trips, post_load checks."""

from __future__ import annotations

import struct

import pytest

from hw.char.pl011.device import PL011State
from hw.char.pl011.tests.conftest import BASE, R, Uart, make_uart
from qemu_api.clock import Clock, clock_period_from_hz
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state
from qemu_api.qdev import device_cold_reset, qdev_connect_clock_in
from qemu_api.sysbus import sysbus_realize

VMSD = PL011State.vmsd
OTHER = 0x0A00_0000
FIELDS = (
    "flags",
    "lcr",
    "rsr",
    "cr",
    "dmacr",
    "int_enabled",
    "int_level",
    "read_fifo",
    "ilpr",
    "ibrd",
    "fbrd",
    "ifl",
    "read_pos",
    "read_count",
    "read_trigger",
)


def save(dev: PL011State) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, VMSD, dev)
    return f.getvalue()


def load(dev: PL011State, data: bytes, version_id: int = 2) -> None:
    vmstate_load_state(QEMUFileReader(data), VMSD, dev, version_id)


def body(**values: int | list[int]) -> bytes:
    """A 124-byte main body; unnamed fields take their reset values."""
    state: dict[str, int | list[int]] = {
        "flags": 0x90,
        "lcr": 0,
        "rsr": 0,
        "cr": 0x300,
        "dmacr": 0,
        "int_enabled": 0,
        "int_level": 0,
        "read_fifo": [0] * 16,
        "ilpr": 0,
        "ibrd": 0,
        "fbrd": 0,
        "ifl": 0x12,
        "read_pos": 0,
        "read_count": 0,
        "read_trigger": 1,
    }
    state.update(values)
    out = bytearray(4)  # VMSTATE_UNUSED(4)
    for name in FIELDS:
        value = state[name]
        if isinstance(value, list):
            out += struct.pack(">16I", *value)
        elif name.startswith("read_"):
            out += struct.pack(">i", value)
        else:
            out += struct.pack(">I", value)
    return bytes(out)


def clock_subsection(period: int = 0) -> bytes:
    name = b"pl011/clock"
    return b"\x05" + bytes((len(name),)) + name + struct.pack(">IQ", 1, period)


def registers(u: Uart) -> dict[int, int]:
    return {reg: u.read(reg) for reg in R if reg not in (R.DR, R.ICR)}


def test_description_is_qemus() -> None:
    assert (VMSD.name, VMSD.version_id, VMSD.minimum_version_id) == ("pl011", 2, 2)
    assert [f.name for f in VMSD.fields] == ["unused", *FIELDS]
    assert VMSD.static_size() == 124
    clock, tx_fifo = VMSD.subsections
    assert (clock.name, clock.version_id, clock.minimum_version_id) == (
        "pl011/clock",
        1,
        1,
    )
    assert [f.name for f in clock.fields] == ["clk"]
    # Not in QEMU: sent only with x-tx-fifo=on (tests/test_tx_fifo.py).
    assert tx_fifo.name == "pl011/tx-fifo"


def test_wire_layout(uart: Uart) -> None:
    uart.write(R.LCR_H, 0x70)
    uart.write(R.IBRD, 0x1234)
    uart.write(R.FBRD, 0x3F)
    uart.write(R.IMSC, 0x50)
    uart.write(R.CR, 0x301)
    uart.write(R.ILPR, 0xABCD)
    uart.write(R.DMACR, 4)
    uart.write(R.DR, 0x41)
    assert uart.backend is not None
    uart.backend.send(b"xyz")
    uart.read(R.DR)
    expected = body(
        flags=0x80,
        lcr=0x70,
        cr=0x301,
        dmacr=4,
        int_enabled=0x50,
        int_level=0x30,
        read_fifo=[ord("x"), ord("y"), ord("z")] + [0] * 13,
        ilpr=0xABCD,
        ibrd=0x1234,
        fbrd=0x3F,
        read_pos=1,
        read_count=2,
    )
    assert save(uart.dev) == expected + clock_subsection()


def test_migrate_clk_off_drops_the_clock_subsection() -> None:
    dev = PL011State()
    dev.migrate_clk = False
    sysbus_realize(dev)
    device_cold_reset(dev)
    assert save(dev) == body()


def test_clock_period_is_migrated() -> None:
    src = Clock()
    src.set_hz(24_000_000)
    dev = PL011State()
    qdev_connect_clock_in(dev, "clk", src)
    sysbus_realize(dev)
    device_cold_reset(dev)
    period = clock_period_from_hz(24_000_000)
    assert save(dev) == body() + clock_subsection(period)
    other = make_uart(base=OTHER)
    load(other.dev, body() + clock_subsection(period))
    assert other.dev.clk.get_hz() == 24_000_000


def test_round_trip_keeps_every_register_and_the_fifo(uart: Uart) -> None:
    assert uart.backend is not None
    uart.write(R.LCR_H, 0x10)
    uart.write(R.CR, 0x381 | 0x2C00)  # loopback with modem outputs
    uart.write(R.IMSC, 0x7FF)
    for ch in b"migr":
        uart.write(R.DR, ch)
    uart.read(R.DR)
    uart.write(R.IFLS, 0x3F)
    uart.write(R.IBRD, 99)
    data = save(uart.dev)
    other = make_uart(base=OTHER)
    load(other.dev, data)
    assert registers(other) == registers(uart)
    assert save(other.dev) == data
    assert [other.read(R.DR) for _ in range(4)] == [uart.read(R.DR) for _ in range(4)]


def test_loading_does_not_update_the_irq_lines(uart: Uart) -> None:
    src = make_uart(base=OTHER)
    src.write(R.IMSC, 0x20)
    src.write(R.DR, 0x41)
    assert src.levels[2] == 1
    uart.calls.clear()
    load(uart.dev, save(src.dev))
    assert uart.calls == []
    assert uart.read(R.MIS) == 0x20
    uart.write(R.IMSC, 0x20)
    assert uart.levels[2] == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("read_pos", 16, "read_pos 16 is outside the receive FIFO; expected 0 to 15"),
        ("read_pos", -1, "read_pos -1 is outside the receive FIFO; expected 0 to 15"),
        ("read_count", 17, "read_count 17 is outside the receive FIFO"),
        ("read_count", -1, "read_count -1 is outside the receive FIFO"),
    ],
)
def test_post_load_refuses_a_corrupted_fifo(
    uart: Uart, field: str, value: int, message: str
) -> None:
    uart.write(R.IBRD, 7)
    before = save(uart.dev)
    with pytest.raises(Error, match=message) as err:
        load(uart.dev, body(**{field: value}) + clock_subsection())
    assert str(err.value).startswith(f"VMState 'pl011': post_load: {field} ")
    assert save(uart.dev) == before  # all or nothing


def test_truncated_fifo_is_refused_naming_the_field(uart: Uart) -> None:
    before = save(uart.dev)
    truncated = body()[: 4 + 7 * 4 + 10 * 4]
    with pytest.raises(Error, match="read_fifo"):
        load(uart.dev, truncated)
    assert save(uart.dev) == before


def test_older_versions_are_refused(uart: Uart) -> None:
    with pytest.raises(Error, match="version"):
        load(uart.dev, body(), version_id=1)


def test_fifo_off_entry_moves_to_entry_zero(uart: Uart) -> None:
    fifo = [0] * 16
    fifo[5] = 0x41
    load(uart.dev, body(read_fifo=fifo, read_pos=5, read_count=1, flags=0xC0))
    with uart.dev.regs.borrow() as regs:
        assert (regs.read_pos, regs.read_fifo[0]) == (0, 0x41)
    assert uart.read(R.DR) == 0x41
    assert uart.read(R.FR) == 0x90


def test_fifo_on_entries_stay_in_place(uart: Uart) -> None:
    fifo = [0] * 16
    fifo[5] = 0x41
    load(uart.dev, body(read_fifo=fifo, read_pos=5, read_count=1, lcr=0x10))
    with uart.dev.regs.borrow() as regs:
        assert regs.read_pos == 5
    assert uart.read(R.DR) == 0x41


def test_divisors_are_masked_on_load(uart: Uart) -> None:
    # A stream from QEMU 7.2 or 9.1, which stored IBRD/FBRD unmasked or swapped.
    load(uart.dev, body(ibrd=0x1234_5678, fbrd=0xFF))
    assert (uart.read(R.IBRD), uart.read(R.FBRD)) == (0x5678, 0x3F)


def test_read_trigger_and_flags_are_trusted(uart: Uart) -> None:
    load(uart.dev, body(read_trigger=3, flags=0x1FF))
    assert uart.read(R.FR) == 0x1FF
    with uart.dev.regs.borrow() as regs:
        assert regs.read_trigger == 3


def test_luminary_uses_the_same_description() -> None:
    u = make_uart("pl011_luminary")
    assert save(u.dev) == body() + clock_subsection()
    assert u.dev.mmio_addr(0) == BASE
