"""The PL011 device through the address space: every register and quirk.

Expected values come from QEMU's hw/char/pl011.c (10.x); comments name the
quirk when QEMU's behaviour differs from the hardware manual.
"""

from __future__ import annotations

import pytest

from hw.char.pl011.device import (
    TYPE_PL011,
    TYPE_PL011_LUMINARY,
    PL011State,
    pl011_baudrate,
    pl011_create,
)
from hw.char.pl011.registers import (
    DR_BE,
    INT_CTS,
    INT_DCD,
    INT_DSR,
    INT_MS,
    INT_RI,
    INT_RX,
    INT_TX,
    PL011_ID_ARM,
    PL011_ID_LUMINARY,
)
from hw.char.pl011.tests.conftest import BASE, R, RecordingChardev, Uart, make_uart
from qemu_api.clock import Clock
from qemu_api.error import Error
from qemu_api.irq import qemu_allocate_irq
from qemu_api.log import LOG_GUEST_ERROR, LOG_UNIMP, qemu_set_log
from qemu_api.memory import get_address_space_memory
from qemu_api.qdev import device_cold_reset, qdev_connect_clock_in, qdev_new
from qemu_api.qom import object_class_by_name
from qemu_api.sysbus import sysbus_realize
from qemu_api.trace import trace_enable_events

LCR_FEN = 0x10
LCR_BRK = 0x01
CR_UARTEN = 0x001
CR_LBE = 0x080
CR_TXE = 0x100
CR_RXE = 0x200
CR_DTR = 0x400
CR_RTS = 0x800
CR_OUT1 = 0x1000
CR_OUT2 = 0x2000
CR_ON = CR_UARTEN | CR_TXE | CR_RXE
FR_TXFE = 0x80
FR_RXFF = 0x40
FR_RXFE = 0x10


def backend(u: Uart) -> RecordingChardev:
    assert u.backend is not None
    return u.backend


def fifo_state(u: Uart) -> tuple[int, int]:
    with u.dev.regs.borrow() as regs:
        return regs.read_count, regs.read_pos


def drain(u: Uart) -> list[int]:
    out = []
    while not u.read(R.FR) & FR_RXFE:
        out.append(u.read(R.DR))
    return out


# -- types, properties, creation ---------------------------------------------------


def test_types_are_registered() -> None:
    assert object_class_by_name(TYPE_PL011) is PL011State
    luminary = object_class_by_name(TYPE_PL011_LUMINARY)
    assert luminary is not None
    assert issubclass(luminary, PL011State)


def test_properties() -> None:
    rows = {p.name: p for p in PL011State.class_properties()}
    assert set(rows) == {"chardev", "migrate-clk", "x-tx-fifo"}
    assert rows["migrate-clk"].type == "bool"
    assert rows["migrate-clk"].default_value is True
    assert rows["x-tx-fifo"].type == "bool"
    assert rows["x-tx-fifo"].default_value is False
    assert rows["chardev"].type == "str"
    dev = PL011State()
    assert dev.migrate_clk is True
    dev.property_set("migrate-clk", False)
    assert dev.property_get("migrate-clk") is False
    assert dev.property_get("chardev") == ""


def test_chardev_property_by_id_and_frozen_after_realize() -> None:
    u = make_uart()
    assert u.dev.property_get("chardev") == "pl011-test"
    with pytest.raises(Error, match="Attempt to set property 'chardev'"):
        u.dev.property_set("chardev", "")


def test_unknown_chardev_id_is_refused() -> None:
    dev = qdev_new(TYPE_PL011)
    with pytest.raises(Error, match=r"Property 'pl011\.chardev' can't find value 'x'"):
        dev.property_set("chardev", "x")


def test_mmio_region_and_irq_outputs() -> None:
    u = make_uart()
    region = u.dev.mmio_get_region(0)
    assert (region.name, region.size) == ("pl011", 0x1000)
    assert u.dev.num_mmio == 1
    assert u.dev.num_irq == 6


def test_pl011_create_maps_and_connects_irq_0_only() -> None:
    seen: list[tuple[int, int]] = []
    ring = RecordingChardev("serial0")
    dev = pl011_create(
        0x1000_0000, qemu_allocate_irq(lambda n, v: seen.append((n, v)), 7), ring
    )
    assert dev.realized
    assert dev.mmio_addr(0) == 0x1000_0000
    assert dev.is_irq_connected(0)
    assert not any(dev.is_irq_connected(i) for i in range(1, 6))
    mem = get_address_space_memory()
    mem.write(0x1000_0038, INT_TX, 4)
    mem.write(0x1000_0000, ord("x"), 4)
    assert seen == [(7, 0), (7, 1)]
    assert ring.output == b"x"


def test_user_creatable_is_false_as_for_qemu_sysbus_devices() -> None:
    assert PL011State.user_creatable is False


# -- reset and plain registers -----------------------------------------------------

RESET_VALUES = {
    R.RSR: 0,
    R.FR: 0x90,
    R.ILPR: 0,
    R.IBRD: 0,
    R.FBRD: 0,
    R.LCR_H: 0,
    R.CR: 0x300,
    R.IFLS: 0x12,
    R.IMSC: 0,
    R.RIS: 0,
    R.MIS: 0,
    R.DMACR: 0,
}


def test_reset_values(uart: Uart) -> None:
    assert {reg: uart.read(reg) for reg in RESET_VALUES} == RESET_VALUES


def test_new_device_starts_with_reset_values() -> None:
    dev = PL011State()
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    mem = get_address_space_memory()
    assert {reg: mem.read(BASE + reg, 4) for reg in RESET_VALUES} == RESET_VALUES


def test_reset_keeps_fifo_words_and_irq_lines(uart: Uart) -> None:
    uart.write(R.IMSC, INT_RX)
    backend(uart).send(b"A")
    uart.write(R.CR, 0xFFFF & ~CR_LBE)
    uart.write(R.ILPR, 5)
    uart.write(R.IBRD, 6)
    uart.write(R.FBRD, 7)
    uart.write(R.IFLS, 8)
    uart.write(R.DMACR, 4)
    uart.write(R.LCR_H, 0x60)
    assert uart.levels[1] == 1
    calls = len(uart.calls)
    device_cold_reset(uart.dev)
    assert {reg: uart.read(reg) for reg in RESET_VALUES} == RESET_VALUES
    # pl011_reset does not update the IRQ lines...
    assert len(uart.calls) == calls
    assert uart.levels[1] == 1
    # ... nor clear the FIFO words: an empty read returns the stale entry.
    assert uart.read(R.DR) == 0x41
    assert uart.levels[1] == 0


def test_reset_clears_loopback_modem_flags(uart: Uart) -> None:
    uart.write(R.CR, CR_LBE | CR_RTS | CR_OUT2)
    assert uart.read(R.FR) == 0x90 | 0x100 | 0x001
    device_cold_reset(uart.dev)
    assert uart.read(R.FR) == 0x90


@pytest.mark.parametrize(
    ("reg", "written", "kept"),
    [
        (R.ILPR, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (R.IBRD, 0x1234_5678, 0x5678),
        (R.FBRD, 0xFFFF_FFFF, 0x3F),
        (R.LCR_H, 0xFFFF_FFEE, 0xFFFF_FFEE),
        (R.CR, 0xFFFF_FF7F, 0xFFFF_FF7F),
        (R.IFLS, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (R.IMSC, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (R.DMACR, 0xFFFF_FFFC, 0xFFFF_FFFC),
    ],
)
def test_register_write_masks(uart: Uart, reg: R, written: int, kept: int) -> None:
    uart.write(reg, written)
    assert uart.read(reg) == kept


def test_flag_register_writes_are_ignored_silently(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    uart.write(R.FR, 0xFFFF_FFFF)
    assert uart.read(R.FR) == 0x90
    assert capsys.readouterr().err == ""


def test_rsr_holds_the_error_bits_of_the_last_read_and_ecr_clears(uart: Uart) -> None:
    backend(uart).send_break()
    assert uart.read(R.DR) == DR_BE
    assert uart.read(R.RSR) == 0x4
    uart.write(R.RSR, 0)
    assert uart.read(R.RSR) == 0


def test_mis_is_ris_and_imsc(uart: Uart) -> None:
    uart.write(R.DR, 0x20)
    backend(uart).send(b"r")
    assert uart.read(R.RIS) == INT_RX | INT_TX
    assert uart.read(R.MIS) == 0
    uart.write(R.IMSC, INT_TX | INT_MS)
    assert uart.read(R.MIS) == INT_TX


def test_icr_clears_the_bits_written(uart: Uart) -> None:
    uart.write(R.DR, 0x20)
    backend(uart).send(b"r")
    uart.write(R.ICR, INT_TX | 0xFFFF_F800)
    assert uart.read(R.RIS) == INT_RX


# -- ID registers and bad offsets ----------------------------------------------------


@pytest.mark.parametrize(
    ("typename", "ids"),
    [(TYPE_PL011, PL011_ID_ARM), (TYPE_PL011_LUMINARY, PL011_ID_LUMINARY)],
)
def test_id_registers(typename: str, ids: bytes) -> None:
    u = make_uart(typename)
    assert bytes(u.read(0xFE0 + 4 * i) for i in range(8)) == ids
    assert [u.read(0xFE0 + 4 * i + 1, 1) for i in range(8)] == list(ids)


def test_qemu_72_id_bytes() -> None:
    # What QEMU 7.2 returned for readl 0x9000fe0..0x9000ffc on -M virt.
    u = make_uart()
    assert [u.read(0xFE0 + 4 * i) for i in range(8)] == [
        0x11,
        0x10,
        0x14,
        0x00,
        0x0D,
        0xF0,
        0x05,
        0xB1,
    ]


@pytest.mark.parametrize(
    "offset", [0x08, 0x0C, 0x10, 0x14, 0x1C, 0x44, 0x4C, 0x100, 0xFDC]
)
def test_bad_read_offsets_log_and_read_zero(
    uart: Uart, capsys: pytest.CaptureFixture[str], offset: int
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    assert uart.read(offset) == 0
    assert capsys.readouterr().err == f"pl011_read: Bad offset 0x{offset:x}\n"


@pytest.mark.parametrize("offset", [0x08, 0x1C, 0x3C, 0x40, 0x4C, 0xFDC, 0xFE0, 0xFFC])
def test_bad_write_offsets_log_and_change_nothing(
    uart: Uart, capsys: pytest.CaptureFixture[str], offset: int
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    uart.write(offset, 0xFFFF_FFFF)
    assert capsys.readouterr().err == f"pl011_write: Bad offset 0x{offset:x}\n"
    assert {reg: uart.read(reg) for reg in RESET_VALUES} == RESET_VALUES
    assert uart.read(0xFE0) == 0x11


def test_guest_errors_are_silent_without_the_log_flag(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    uart.read(0x08)
    uart.write(0x08, 1)
    uart.write(R.DR, 0x41)
    uart.write(R.DMACR, 3)
    assert capsys.readouterr().err == ""


def test_dma_is_not_implemented(uart: Uart, capsys: pytest.CaptureFixture[str]) -> None:
    qemu_set_log(LOG_UNIMP)
    uart.write(R.DMACR, 4)
    assert capsys.readouterr().err == ""
    for value in (1, 2, 3):
        uart.write(R.DMACR, value)
        assert capsys.readouterr().err == "pl011: DMA not implemented\n"
        assert uart.read(R.DMACR) == value


# -- access sizes ----------------------------------------------------------------


def test_narrow_reads_return_the_registers_low_bytes(uart: Uart) -> None:
    # One 32-bit callback at the same address: the register's low bytes, not
    # the bytes at that offset.
    assert uart.read(0x19, 1) == 0x90
    assert uart.read(0x1B, 1) == 0x90
    assert uart.read(0x31, 1) == 0x00
    assert uart.read(0x32, 2) == 0x300
    assert uart.read(0xFE5, 1) == 0x10


def test_narrow_writes_write_the_whole_register(uart: Uart) -> None:
    uart.write(0x25, 0x12, 1)
    assert uart.read(R.IBRD) == 0x12
    uart.write(0x22, 0xABCD, 2)
    assert uart.read(R.ILPR) == 0xABCD


def test_byte_store_to_any_dr_byte_transmits(uart: Uart) -> None:
    for offset, ch in enumerate(b"dr03"):
        uart.write(offset, ch, 1)
    assert backend(uart).output == b"dr03"


def test_byte_load_from_any_dr_byte_pops(uart: Uart) -> None:
    uart.write(R.LCR_H, LCR_FEN)
    backend(uart).send(b"abcd")
    assert [uart.read(offset, 1) for offset in range(4)] == list(b"abcd")


def test_64bit_accesses_are_two_32bit_accesses(uart: Uart) -> None:
    uart.write(R.ILPR, 0x3F_0000_1234, 8)
    assert (uart.read(R.ILPR), uart.read(R.IBRD)) == (0x1234, 0x3F)
    assert uart.read(R.ILPR, 8) == 0x3F_0000_1234
    # DR and RSR: a load pops the FIFO and then reads the new RSR.
    backend(uart).send_break()
    assert uart.read(R.DR, 8) == 0x4_0000_0400


def test_buffer_accesses_split_by_alignment(uart: Uart) -> None:
    # address_space_write/read (qtest's writeq/readl): pieces as large as the
    # alignment allows, each one 32-bit callback.
    uart.mem.write_buf(BASE + R.IBRD, (0x3F_0000_1234).to_bytes(8, "little"))
    assert (uart.read(R.IBRD), uart.read(R.FBRD)) == (0x1234, 0x3F)
    buf = bytearray(4)
    uart.mem.read_buf(BASE + 0x1A, buf)  # FR & 0xffff, then reserved 0x1c
    assert int.from_bytes(buf, "little") == 0x90


# -- receive FIFO ----------------------------------------------------------------


def test_fifo_off_holds_one_entry(uart: Uart) -> None:
    chr_ = backend(uart)
    assert uart.dev.can_receive() == 1
    assert chr_.send(b"AB") == 1
    assert uart.read(R.FR) == FR_TXFE | FR_RXFF
    assert uart.dev.can_receive() == 0
    assert uart.read(R.DR) == 0x41
    # The read made room and called accept_input: 'B' came in at once.
    assert chr_.accepts == 1
    assert chr_.pending == b""
    assert uart.read(R.FR) == FR_TXFE | FR_RXFF
    assert uart.read(R.DR) == 0x42
    assert uart.read(R.FR) == FR_TXFE | FR_RXFE


def test_fifo_off_uses_entry_zero_only(uart: Uart) -> None:
    chr_ = backend(uart)
    for ch in b"xyz":
        chr_.send(bytes((ch,)))
        assert fifo_state(uart) == (1, 0)
        assert uart.read(R.DR) == ch
        assert fifo_state(uart) == (0, 0)
        # An empty read returns the stale word, the last byte received.
        assert uart.read(R.DR) == ch


def test_fifo_on_holds_sixteen_entries_in_order(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN | 0x60)
    assert uart.dev.can_receive() == 16
    data = bytes(range(0x30, 0x30 + 20))
    assert chr_.send(data) == 16
    assert uart.read(R.FR) == FR_TXFE | FR_RXFF
    assert uart.dev.can_receive() == 0
    assert drain(uart) == list(data)
    assert chr_.pending == b""


def test_fifo_wraps_around(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN)
    chr_.send(bytes(range(10)))
    assert drain(uart) == list(range(10))
    assert fifo_state(uart) == (0, 10)
    chr_.send(bytes(range(100, 116)))
    assert uart.read(R.FR) & FR_RXFF
    assert drain(uart) == list(range(100, 116))
    assert fifo_state(uart) == (0, 10)


def test_multi_byte_receive_takes_the_free_slots(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN)
    assert chr_.send(b"12345") == 5
    assert uart.dev.can_receive() == 11
    assert chr_.be_can_write() == 11


def test_empty_read_returns_stale_word_and_clears_rx(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.IMSC, INT_RX)
    uart.write(R.LCR_H, LCR_FEN)
    chr_.send_break()
    chr_.send(b"q")
    assert uart.read(R.DR) == DR_BE
    assert uart.read(R.DR) == ord("q")
    assert uart.read(R.FR) & FR_RXFE
    # read_pos is 2, whose word was never written: 0.
    assert uart.read(R.DR) == 0
    assert uart.read(R.RSR) == 0
    assert uart.levels[1] == 0


def test_fen_change_resets_the_fifo_but_not_int_rx(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.IMSC, INT_RX)
    chr_.send(b"A")
    assert uart.read(R.RIS) == INT_RX
    calls = len(uart.calls)
    uart.write(R.LCR_H, LCR_FEN)
    assert fifo_state(uart) == (0, 0)
    assert uart.read(R.FR) == FR_TXFE | FR_RXFE
    # INT_RX stays raised and the lines are not updated by LCR_H.
    assert uart.read(R.RIS) == INT_RX
    assert len(uart.calls) == calls
    assert uart.levels[1] == 1
    # The next read finds an empty FIFO: the stale 'A', and INT_RX clears.
    assert uart.read(R.DR) == 0x41
    assert uart.read(R.RIS) == 0
    assert uart.levels[1] == 0


def test_fen_change_drops_a_full_fifo(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN)
    chr_.send(bytes(16))
    assert uart.read(R.FR) == FR_TXFE | FR_RXFF
    uart.write(R.LCR_H, 0)
    assert uart.read(R.FR) == FR_TXFE | FR_RXFE
    assert uart.dev.can_receive() == 1


def test_lcr_h_write_without_fen_change_keeps_the_fifo(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN)
    chr_.send(b"abc")
    uart.write(R.LCR_H, LCR_FEN | 0x60)
    assert fifo_state(uart) == (3, 0)
    assert drain(uart) == list(b"abc")


def test_ifls_does_not_change_the_rx_trigger(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN)
    uart.write(R.IFLS, 0x3F)
    with uart.dev.regs.borrow() as regs:
        assert regs.read_trigger == 1
    chr_.send(b"a")
    assert uart.read(R.RIS) == INT_RX
    chr_.send(b"b")
    uart.read(R.DR)
    assert uart.read(R.RIS) == INT_RX
    uart.read(R.DR)
    assert uart.read(R.RIS) == 0


def test_receive_works_with_the_uart_disabled(uart: Uart) -> None:
    uart.write(R.CR, 0)
    assert backend(uart).send(b"z") == 1
    assert uart.read(R.DR) == ord("z")


def test_break_from_the_chardev(uart: Uart) -> None:
    chr_ = backend(uart)
    chr_.send_break()
    assert uart.read(R.RIS) == INT_RX  # no INT_BE: QEMU never raises it
    assert uart.read(R.DR) == 0x400
    assert uart.read(R.RSR) == 0x4


def test_break_overfills_the_fifo(uart: Uart) -> None:
    chr_ = backend(uart)
    chr_.send(b"A")
    chr_.send_break()
    # No full check: the break overwrote entry 0 and the count passed the depth.
    assert fifo_state(uart) == (2, 0)
    assert uart.dev.can_receive() == -1
    assert chr_.be_can_write() == 0
    assert uart.read(R.DR) == DR_BE
    assert uart.read(R.FR) == FR_TXFE
    assert uart.read(R.DR) == DR_BE
    assert uart.read(R.FR) == FR_TXFE | FR_RXFE


def test_other_chardev_events_are_ignored(uart: Uart) -> None:
    from qemu_api.chardev import ChrEvent

    for ev in (ChrEvent.OPENED, ChrEvent.CLOSED, ChrEvent.MUX_IN, ChrEvent.MUX_OUT):
        backend(uart).be_event(ev)
    assert fifo_state(uart) == (0, 0)


# -- transmit --------------------------------------------------------------------


def test_transmit_sets_int_tx_every_time(uart: Uart) -> None:
    uart.write(R.CR, CR_ON)
    uart.write(R.IMSC, INT_TX)
    uart.write(R.DR, 0x1_2341)  # only the low byte is sent
    assert backend(uart).output == b"A"
    assert uart.read(R.RIS) == INT_TX
    assert uart.levels[2] == 1
    uart.write(R.ICR, INT_TX)
    assert uart.levels[2] == 0
    uart.write(R.DR, 0x42)
    assert uart.levels[2] == 1
    assert uart.read(R.FR) == FR_TXFE | FR_RXFE  # never busy, never full


def test_transmit_waits_for_the_backend(uart: Uart) -> None:
    chr_ = backend(uart)
    chr_.stall = 3
    uart.write(R.DR, 0x41)
    assert chr_.output == b"A"
    assert chr_.waits == 3


def test_without_chardev() -> None:
    u = make_uart(with_chardev=False)
    u.write(R.DR, 0x41)
    assert u.read(R.RIS) == INT_TX
    assert u.dev.can_receive() == 1
    u.write(R.LCR_H, LCR_BRK)
    assert u.read(R.LCR_H) == LCR_BRK
    assert u.read(R.DR) == 0


def test_disabled_uart_is_logged_once(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    uart.write(R.DR, 0x61)  # reset CR: TXE and RXE, UARTEN clear
    uart.write(R.DR, 0x62)
    uart.write(R.CR, CR_ON)
    uart.write(R.CR, CR_TXE | CR_RXE)
    uart.write(R.DR, 0x63)
    assert capsys.readouterr().err == "PL011 data written to disabled UART\n"
    assert backend(uart).output == b"abc"


def test_disabled_transmitter_is_logged_every_time(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    uart.write(R.CR, CR_UARTEN | CR_RXE)
    uart.write(R.DR, 0x61)
    uart.write(R.DR, 0x62)
    assert capsys.readouterr().err == "PL011 data written to disabled TX UART\n" * 2
    uart.write(R.CR, 0)
    uart.write(R.DR, 0x63)
    assert capsys.readouterr().err == (
        "PL011 data written to disabled UART\nPL011 data written to disabled TX UART\n"
    )
    assert backend(uart).output == b"abc"


def test_break_goes_to_the_backend_on_brk_changes(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_BRK)
    uart.write(R.LCR_H, LCR_BRK | 0x60)
    uart.write(R.LCR_H, 0)
    assert chr_.breaks == [True, False]
    assert fifo_state(uart) == (0, 0)


# -- loopback ----------------------------------------------------------------------


def test_loopback_transmits_into_the_receiver(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.CR, CR_ON | CR_LBE)
    uart.write(R.LCR_H, LCR_FEN)
    for ch in b"loop":
        uart.write(R.DR, ch)
    assert chr_.output == b"loop"  # the bytes still go out
    assert uart.read(R.RIS) == INT_RX | INT_TX
    assert drain(uart) == list(b"loop")


def test_loopback_drops_chardev_input_and_breaks(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.CR, CR_ON | CR_LBE)
    assert chr_.send(b"xyz") == 1  # taken (one free slot) and dropped
    chr_.send_break()
    assert fifo_state(uart) == (0, 0)
    assert uart.read(R.RIS) == 0


def test_loopback_break(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.CR, CR_ON | CR_LBE)
    uart.write(R.LCR_H, LCR_FEN)
    uart.write(R.LCR_H, LCR_FEN | LCR_BRK)
    uart.write(R.LCR_H, LCR_FEN)
    assert chr_.breaks == [True, False]
    assert drain(uart) == [DR_BE]
    assert uart.read(R.RSR) == 0x4


def test_loopback_break_uses_the_old_fifo_depth(uart: Uart) -> None:
    uart.write(R.CR, CR_ON | CR_LBE)
    # FEN and BRK set together: the FIFO is reset, then the break word goes in
    # while LCR_H still says "FIFO off", so it fills the one-entry FIFO.
    uart.write(R.LCR_H, LCR_FEN | LCR_BRK)
    assert fifo_state(uart) == (1, 0)
    assert uart.read(R.FR) == FR_TXFE | FR_RXFF
    assert uart.dev.can_receive() == 15
    assert uart.read(R.DR) == DR_BE


def test_loopback_overfills_the_fifo(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    uart.write(R.CR, CR_ON | CR_LBE)
    for ch in b"abc":
        uart.write(R.DR, ch)
    assert fifo_state(uart) == (3, 0)
    trace_enable_events("pl011_can_receive")
    assert uart.dev.can_receive() == -2
    assert capsys.readouterr().err.endswith(
        ":pl011_can_receive LCR 0x00, RX FIFO used 3/1, can_receive 4294967294 chars\n"
    )
    assert uart.read(R.FR) == FR_TXFE | FR_RXFF
    assert uart.read(R.DR) == ord("c")  # entry 0 holds the last byte
    assert uart.read(R.FR) == FR_TXFE


@pytest.mark.parametrize(
    ("cr_bit", "fr_bit", "int_bit"),
    [
        (CR_OUT2, 0x100, INT_RI),
        (CR_OUT1, 0x004, INT_DCD),
        (CR_RTS, 0x001, INT_CTS),
        (CR_DTR, 0x002, INT_DSR),
    ],
)
def test_loopback_modem_lines(
    uart: Uart, cr_bit: int, fr_bit: int, int_bit: int
) -> None:
    uart.write(R.IMSC, INT_MS)
    uart.write(R.CR, CR_ON | cr_bit)  # not looping back: nothing happens
    assert uart.read(R.FR) == 0x90
    assert uart.read(R.RIS) == 0
    uart.write(R.CR, CR_ON | cr_bit | CR_LBE)  # the write that sets LBE applies
    assert uart.read(R.FR) == 0x90 | fr_bit
    assert uart.read(R.RIS) == int_bit
    assert uart.levels[4] == 1
    assert uart.levels[0] == 1
    uart.write(R.CR, CR_ON | CR_LBE)
    assert uart.read(R.FR) == 0x90
    assert uart.read(R.RIS) == 0
    assert uart.levels[4] == 0


def test_loopback_modem_interrupts_copy_levels(uart: Uart) -> None:
    all_out = CR_OUT2 | CR_OUT1 | CR_RTS | CR_DTR
    uart.write(R.CR, CR_LBE | all_out)
    assert uart.read(R.FR) == 0x197
    assert uart.read(R.RIS) == INT_MS
    uart.write(R.ICR, INT_MS)
    assert uart.read(R.RIS) == 0
    # Level copy, not edge detection: the same CR raises them all again.
    uart.write(R.CR, CR_LBE | all_out)
    assert uart.read(R.RIS) == INT_MS
    # Leaving loopback keeps the modem flags and interrupts as they are.
    uart.write(R.CR, CR_ON)
    assert uart.read(R.FR) == 0x197
    assert uart.read(R.RIS) == INT_MS


# -- interrupt lines ---------------------------------------------------------------

IRQMASK_QEMU = (0x7FF, 0x010, 0x020, 0x040, 0x00F, 0x780)


@pytest.mark.parametrize("bit", range(11))
def test_each_interrupt_drives_the_lines_of_its_mask(uart: Uart, bit: int) -> None:
    with uart.dev.regs.borrow_mut() as regs:
        regs.int_level = 1 << bit
    uart.write(R.IMSC, 1 << bit)
    assert uart.levels == [int(bool(m & (1 << bit))) for m in IRQMASK_QEMU]
    uart.write(R.IMSC, 0)
    assert uart.levels == [0] * 6


def test_update_sets_every_line_each_time(uart: Uart) -> None:
    uart.calls.clear()
    uart.write(R.IMSC, INT_TX)
    assert uart.calls == [(i, 0) for i in range(6)]
    uart.calls.clear()
    uart.write(R.DR, 0x41)
    assert uart.calls == [(0, 1), (1, 0), (2, 1), (3, 0), (4, 0), (5, 0)]


@pytest.mark.parametrize(
    ("reg", "value"),
    [
        (R.RSR, 0),
        (R.FR, 0),
        (R.ILPR, 1),
        (R.IBRD, 1),
        (R.FBRD, 1),
        (R.LCR_H, LCR_FEN),
        (R.LCR_H, 0x60),
        (R.IFLS, 0),
        (R.DMACR, 1),
        (R.CR, CR_ON | CR_RTS),
        (R.RIS, 0),
    ],
)
def test_writes_that_do_not_update_the_lines(uart: Uart, reg: R, value: int) -> None:
    uart.calls.clear()
    uart.write(reg, value)
    assert uart.calls == []


def test_updates_on_reads_only_from_dr(uart: Uart) -> None:
    uart.calls.clear()
    for reg in RESET_VALUES:
        uart.read(reg)
    uart.read(0xFE0)
    assert uart.calls == []
    uart.read(R.DR)
    assert len(uart.calls) == 6


def test_receive_updates_when_the_trigger_level_is_reached(uart: Uart) -> None:
    chr_ = backend(uart)
    uart.write(R.LCR_H, LCR_FEN)
    uart.write(R.IMSC, INT_RX)
    uart.calls.clear()
    chr_.send(b"ab")
    assert uart.calls == [(0, 1), (1, 1), (2, 0), (3, 0), (4, 0), (5, 0)]
    uart.calls.clear()
    chr_.send(b"c")
    assert uart.calls == []


def test_loopback_transmit_updates_twice(uart: Uart) -> None:
    # pl011_fifo_rx_put updates when INT_RX is set, then the write sets INT_TX
    # and updates again.
    uart.write(R.CR, CR_ON | CR_LBE)
    uart.write(R.IMSC, INT_RX | INT_TX)
    uart.calls.clear()
    uart.write(R.DR, 0x41)
    assert uart.calls == [
        *[(0, 1), (1, 1), (2, 0), (3, 0), (4, 0), (5, 0)],
        *[(0, 1), (1, 1), (2, 1), (3, 0), (4, 0), (5, 0)],
    ]


def test_irq_handler_may_read_the_device(uart: Uart) -> None:
    # The lines are driven outside the register borrow: a handler that reads
    # the UART (an interrupt controller acknowledging it) works.
    seen = []
    mem = get_address_space_memory()

    def handler(n: int, level: int) -> None:
        seen.append((level, mem.read(BASE + R.MIS, 4)))

    uart.dev.connect_irq(0, qemu_allocate_irq(handler, 0))
    uart.write(R.IMSC, INT_TX)
    uart.write(R.DR, 0x41)
    assert seen == [(0, 0), (1, INT_TX)]


# -- clock and baud rate -----------------------------------------------------------


def test_baudrate_formula() -> None:
    assert pl011_baudrate(24_000_000, 0, 5) == 0
    assert pl011_baudrate(24_000_000, 13, 1) == 115244
    assert pl011_baudrate(7_372_800, 4, 0) == 115200
    assert pl011_baudrate(0, 13, 1) == 0
    assert pl011_baudrate(1 << 40, 1, 0) == ((1 << 40) // 64 * 4) & 0xFFFF_FFFF


def test_baudrate_trace_on_divisor_writes_and_clock_updates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = Clock()
    src.set_hz(24_000_000)
    dev = PL011State()
    qdev_connect_clock_in(dev, "clk", src)
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    mem = get_address_space_memory()
    trace_enable_events("pl011_baudrate_change")
    mem.write(BASE + R.IBRD, 13, 4)
    mem.write(BASE + R.FBRD, 1, 4)
    src.update_hz(48_000_000)
    lines = [line.split(":", 1)[1] for line in capsys.readouterr().err.splitlines()]
    assert lines == [
        f"pl011_baudrate_change new baudrate {baud} (clk: {hz}hz, ibrd: 13, fbrd: {f})"
        for baud, hz, f in (
            (115384, 24_000_000, 0),
            (115244, 24_000_000, 1),
            (230492, 48_000_000, 1),
        )
    ]


def test_unconnected_clock_gives_baud_zero(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_enable_events("pl011_baudrate_change")
    uart.write(R.IBRD, 13)
    assert capsys.readouterr().err.endswith(
        ":pl011_baudrate_change new baudrate 0 (clk: 0hz, ibrd: 13, fbrd: 0)\n"
    )


# -- trace events ------------------------------------------------------------------


def traced(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line.split(":", 1)[1] for line in capsys.readouterr().err.splitlines()]


def test_trace_events_of_an_access_sequence(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_enable_events("pl011_*")
    uart.write(R.IMSC, INT_RX)
    backend(uart).send(b"A")
    uart.read(R.DR)
    uart.read(0xFE4)
    uart.write(0x08, 1)
    assert traced(capsys) == [
        "pl011_write addr 0x038 value 0x00000010 reg IMSC",
        "pl011_irq_state irq state 0",
        "pl011_can_receive LCR 0x00, RX FIFO used 0/1, can_receive 1 chars",
        "pl011_receive recv 1 chars",
        "pl011_fifo_rx_put RX FIFO push char [0x41] 1/1 depth used",
        "pl011_fifo_rx_full RX FIFO now full, RXFF set",
        "pl011_irq_state irq state 1",
        "pl011_read_fifo RX FIFO read, used 0/1",
        "pl011_irq_state irq state 0",
        "pl011_read addr 0x000 value 0x00000041 reg DR",
        "pl011_read addr 0xfe4 value 0x00000010 reg ID",
        "pl011_write addr 0x008 value 0x00000001 reg UNKN",
    ]


def test_trace_events_fire_after_untraced_accesses(
    uart: Uart, capsys: pytest.CaptureFixture[str]
) -> None:
    # Untraced accesses leave the address space calling the registers' own
    # reads and writes; enabling the events must reach them all the same.
    for _ in range(2):
        uart.write(R.IMSC, INT_RX)
        uart.read(R.FR)
    assert traced(capsys) == []
    trace_enable_events("pl011_read")
    trace_enable_events("pl011_write")
    uart.write(R.IMSC, INT_TX)
    uart.read(R.FR)
    trace_enable_events("-pl011_*")
    uart.write(R.IMSC, INT_RX)
    assert uart.read(R.IMSC) == INT_RX
    assert traced(capsys) == [
        "pl011_write addr 0x038 value 0x00000020 reg IMSC",
        "pl011_read addr 0x018 value 0x00000090 reg FR",
    ]


def test_trace_event_names_match_qemu() -> None:
    import qemu_trace.pl011 as events

    assert sorted(events.__all__) == sorted(
        f"trace_pl011_{name}"
        for name in (
            "irq_state",
            "read",
            "read_fifo",
            "write",
            "can_receive",
            "fifo_rx_put",
            "fifo_rx_full",
            "baudrate_change",
            "receive",
            # x-tx-fifo, named as the (unmerged) QEMU transmit FIFO series.
            "fifo_tx_put",
            "fifo_tx_xmit",
        )
    )


PUT = "pl011_fifo_rx_put RX FIFO push char [0x41] 1/1 depth used"
FULL = "pl011_fifo_rx_full RX FIFO now full, RXFF set"


@pytest.mark.parametrize(
    ("line", "expected"),
    [("pl011_put_fifo", [PUT]), ("pl011_put_f*", [PUT, FULL])],
)
def test_trace_accepts_qemu_7_2_event_names(
    uart: Uart, capsys: pytest.CaptureFixture[str], line: str, expected: list[str]
) -> None:
    # QEMU 7.2's names (or a pattern of them) enable the renamed events,
    # which print under their current names; no "does not exist" warning.
    trace_enable_events(line)
    backend(uart).send(b"A")
    assert traced(capsys) == expected
