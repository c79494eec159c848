"""The PL011's ``x-tx-fifo`` option: transmit FIFO, line timing, levels, flow control.

QEMU has no transmit FIFO; the expected behaviour is the PL011 TRM's (ARM DDI
0183): FR.TXFF/TXFE/BUSY (section 3.3.3), the interrupt FIFO levels of UARTIFLS
(3.3.10), the transmit interrupt raised when the FIFO drains through its level
and the receive timeout after 32 bit periods (3.4), RTS/CTS flow control
(2.4.7).  Times are derived from the baud rate formula: with the ``clk`` input
unconnected UARTCLK is 24 MHz, so IBRD 3 gives 24 MHz / (16 * 3) = 500000 baud,
2000 ns per bit and 20000 ns per 8N1 character.
"""

from __future__ import annotations

import pytest

from hw.char.pl011.device import PL011State
from hw.char.pl011.registers import INT_CTS, INT_RT, INT_RX, INT_TX
from hw.char.pl011.tests.conftest import BASE, R, RecordingChardev, Uart
from qemu_api.error import Error
from qemu_api.irq import qemu_allocate_irq
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log
from qemu_api.memory import get_address_space_memory
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state
from qemu_api.qdev import device_cold_reset
from qemu_api.qom import override
from qemu_api.sysbus import sysbus_realize
from qemu_api.timer import clock_step

BIT_NS = 2000
FRAME_NS = 10 * BIT_NS
FR_CTS, FR_BUSY, FR_RXFE, FR_TXFF, FR_TXFE = 0x01, 0x08, 0x10, 0x20, 0x80
LCR_8N1_FIFO = 0x70
LCR_8N1 = 0x60
CR_ON = 0x301
CR_LBE, CR_RTSEN, CR_CTSEN = 0x80, 0x4000, 0x8000
IFLS_RX_HALF_TX_HALF = 0x12


class PeerChardev(RecordingChardev):
    """A chardev peer that takes ``room`` bytes, then refuses until given more."""

    BACKEND = "pl011-test-peer"
    SUPPORTS_WRITE_WATCH = True

    def __init__(self) -> None:
        super().__init__("pl011-peer")
        self.room = 1 << 30
        self.offers: list[int] = []

    @override
    def write(self, data: bytes) -> int:
        self.offers.append(len(data))
        n = min(self.room, len(data))
        self.output += data[:n]
        self.room -= n
        return n

    def give(self, room: int) -> None:
        self.room += room
        self.be_writable()


def make(on: bool = True, lcr: int = LCR_8N1_FIFO) -> tuple[Uart, PeerChardev]:
    dev = PL011State()
    peer = PeerChardev()
    dev.chardev = peer
    dev.property_set("x-tx-fifo", on)
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    u = Uart(dev, peer, get_address_space_memory(), BASE)
    for i in range(6):
        dev.connect_irq(i, qemu_allocate_irq(u.irq, i))
    device_cold_reset(dev)
    u.write(R.IBRD, 3)
    u.write(R.LCR_H, lcr)
    u.write(R.CR, CR_ON)
    return u, peer


def send(u: Uart, data: bytes) -> None:
    for ch in data:
        u.write(R.DR, ch)


def fr(u: Uart) -> int:
    return u.read(R.FR)


def test_reset_flags_show_cts_asserted() -> None:
    u, _ = make()
    assert fr(u) == FR_TXFE | FR_RXFE | FR_CTS
    off, _ = make(on=False)
    assert fr(off) == FR_TXFE | FR_RXFE  # QEMU's 0x90


def test_bytes_leave_at_the_line_rate() -> None:
    u, peer = make()
    send(u, b"abc")
    # 'a' went into the shift register at once; 'b' and 'c' wait in the FIFO.
    assert fr(u) & (FR_BUSY | FR_TXFE | FR_TXFF) == FR_BUSY
    assert peer.output == b""
    clock_step(FRAME_NS - 1)
    fr(u)  # the guest looks: nothing has ended yet
    assert peer.output == b""
    clock_step(1)
    fr(u)
    assert peer.output == b"a"
    clock_step(FRAME_NS)
    assert fr(u) & (FR_BUSY | FR_TXFE) == FR_BUSY | FR_TXFE  # 'c' on the line
    assert peer.output == b"ab"
    clock_step(FRAME_NS)
    assert fr(u) & (FR_BUSY | FR_TXFE) == FR_TXFE
    assert peer.output == b"abc"


@pytest.mark.parametrize(
    ("lcr", "bits"),
    [(0x70, 10), (0x10, 7), (0x7E, 12), (0x52, 10)],
)
def test_frame_format_sets_the_character_time(lcr: int, bits: int) -> None:
    # start + 5..8 data bits + parity (PEN) + 1 or 2 stop bits (STP2)
    u, peer = make(lcr=lcr)
    send(u, b"xy")
    clock_step(2 * bits * BIT_NS - 1)
    assert fr(u) & FR_BUSY  # the guest looks: 'x' ended, 'y' has not
    assert peer.output == b"x"
    clock_step(1)
    assert not fr(u) & FR_BUSY
    assert peer.output == b"xy"


def test_divisor_and_clock_set_the_bit_period() -> None:
    u, peer = make()
    u.write(R.IBRD, 6)
    u.write(R.FBRD, 32)  # (64 * 6 + 32) / (4 * 24 MHz) s = 4333.33 ns per bit
    send(u, b"q")
    clock_step(43333 - 1)
    assert fr(u) & FR_BUSY
    assert peer.output == b""
    clock_step(1)
    assert not fr(u) & FR_BUSY
    assert peer.output == b"q"


def test_ended_frames_are_offered_together() -> None:
    # The line needs no timer per character: the characters whose frames
    # ended go to the chardev together when the guest looks at the UART, or
    # at the latest 16 character times (the FIFO's depth) after they ended,
    # never before their own frame ends.
    u, peer = make()
    send(u, b"0123456789")
    clock_step(5 * FRAME_NS - 1)
    assert b"0123".startswith(peer.output)
    clock_step(1)
    fr(u)
    assert peer.output == b"01234"
    clock_step(5 * FRAME_NS)
    assert b"0123456789".startswith(peer.output)
    clock_step(16 * FRAME_NS)  # nobody looks
    assert peer.output == b"0123456789"
    assert peer.offers == [5, 5]


def test_one_character_reaches_the_chardev_within_a_fifo_time() -> None:
    u, peer = make()
    u.write(R.DR, ord("x"))
    clock_step(FRAME_NS - 1)
    fr(u)
    assert peer.output == b""
    clock_step((1 + 16) * FRAME_NS)
    assert peer.output == b"x"


def test_a_partial_write_holds_the_first_refused_character() -> None:
    u, peer = make()
    send(u, b"ABCDEFGH")
    peer.room = 3
    clock_step(6 * FRAME_NS)
    # Six frames ended; the peer took three: 'D' waits in the shift register
    # with CTS deasserted, E-H in the FIFO, and the line stops.
    assert fr(u) & (FR_CTS | FR_BUSY | FR_TXFE) == FR_BUSY
    assert peer.output == b"ABC"
    assert u.read(R.RIS) & INT_CTS
    clock_step(100 * FRAME_NS)
    assert peer.output == b"ABC"
    peer.give(1 << 20)
    assert fr(u) & FR_CTS
    clock_step(4 * FRAME_NS)
    assert fr(u) & (FR_BUSY | FR_TXFE) == FR_TXFE
    assert peer.output == b"ABCDEFGH"


def test_txff_and_a_write_to_a_full_fifo(capsys: pytest.CaptureFixture[str]) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    u, peer = make()
    send(u, bytes(range(17)))  # one in the shift register, 16 in the FIFO
    assert fr(u) & (FR_TXFF | FR_TXFE | FR_BUSY) == FR_TXFF | FR_BUSY
    u.write(R.DR, 0xEE)
    assert "PL011 data written to full TX FIFO" in capsys.readouterr().err
    clock_step(FRAME_NS)
    assert not fr(u) & FR_TXFF
    clock_step(100 * FRAME_NS)
    assert peer.output == bytes(range(17))  # the refused byte is not sent


def test_fifo_off_is_a_one_byte_holding_register() -> None:
    u, peer = make(lcr=LCR_8N1)
    u.write(R.DR, 0x41)
    # Moved to the shift register at once: the holding register is empty,
    # which raises the transmit interrupt.
    assert fr(u) & (FR_TXFF | FR_TXFE | FR_BUSY) == FR_TXFE | FR_BUSY
    assert u.read(R.RIS) & INT_TX
    u.write(R.DR, 0x42)
    assert fr(u) & (FR_TXFF | FR_TXFE) == FR_TXFF
    assert not u.read(R.RIS) & INT_TX  # cleared by the write
    clock_step(FRAME_NS)
    assert u.read(R.RIS) & INT_TX
    assert peer.output == b"A"
    clock_step(FRAME_NS)
    assert fr(u) & (FR_TXFE | FR_BUSY) == FR_TXFE
    assert peer.output == b"AB"


def test_tx_interrupt_when_the_fifo_drains_through_its_level() -> None:
    u, _ = make()
    u.write(R.IFLS, IFLS_RX_HALF_TX_HALF)  # TX at 1/2: 8 entries
    u.write(R.IMSC, INT_TX)
    send(u, bytes(17))  # 16 in the FIFO
    assert not u.read(R.RIS) & INT_TX
    clock_step(7 * FRAME_NS)  # 9 left
    assert not u.read(R.RIS) & INT_TX
    assert u.levels[2] == 0
    clock_step(FRAME_NS)  # 8 left: the level is crossed
    assert u.read(R.RIS) & INT_TX
    assert u.levels[2] == 1
    u.write(R.ICR, INT_TX)
    clock_step(FRAME_NS)  # 7: below the level, no new crossing
    assert not u.read(R.RIS) & INT_TX
    send(u, bytes(2))  # 9: above the level again
    clock_step(FRAME_NS)  # back to 8
    assert u.read(R.RIS) & INT_TX


@pytest.mark.parametrize(("sel", "level"), [(0, 2), (1, 4), (3, 12), (4, 14)])
def test_tx_levels_of_ifls(sel: int, level: int) -> None:
    u, _ = make()
    u.write(R.IFLS, sel)
    send(u, bytes(17))
    clock_step((16 - level - 1) * FRAME_NS)
    assert not u.read(R.RIS) & INT_TX
    clock_step(FRAME_NS)
    assert u.read(R.RIS) & INT_TX


def test_writing_above_the_level_clears_the_tx_interrupt() -> None:
    u, _ = make()
    u.write(R.IFLS, 0)  # TX at 1/8: 2 entries
    send(u, bytes(4))  # 3 in the FIFO
    clock_step(FRAME_NS)  # 2: crossing
    assert u.read(R.RIS) & INT_TX
    u.write(R.DR, 0)  # 3 > 2
    assert not u.read(R.RIS) & INT_TX


def test_backpressure_holds_the_output_and_deasserts_cts() -> None:
    u, peer = make()
    u.write(R.IMSC, INT_CTS)
    peer.room = 5
    payload = bytes(range(100, 116))
    send(u, payload)
    clock_step(1_000_000)
    # The peer took 5; the sixth waits in the shift register, 10 in the FIFO.
    assert peer.output == payload[:5]
    assert fr(u) & (FR_CTS | FR_BUSY | FR_TXFE | FR_TXFF) == FR_BUSY
    assert u.read(R.RIS) & INT_CTS
    assert u.levels[0] == 1
    u.write(R.ICR, INT_CTS)
    more = bytes(range(200, 206))
    send(u, more)  # fills the FIFO: the machine is not held up
    assert fr(u) & FR_TXFF
    clock_step(1_000_000)
    assert peer.output == payload[:5]
    peer.give(1 << 20)  # room again: the watch resumes the line
    assert fr(u) & FR_CTS
    assert u.read(R.RIS) & INT_CTS
    clock_step(1_000_000)
    assert peer.output == payload + more
    assert fr(u) & (FR_BUSY | FR_TXFE) == FR_TXFE


def test_a_peer_that_takes_a_byte_at_a_time_gets_everything_in_order() -> None:
    u, peer = make()
    peer.room = 0
    payload = bytes(range(33, 120))
    sent = 0
    for _ in range(10_000):
        while sent < len(payload) and not fr(u) & FR_TXFF:
            u.write(R.DR, payload[sent])
            sent += 1
        peer.give(1)
        clock_step(FRAME_NS)
        if len(peer.output) == len(payload):
            break
    assert peer.output == payload


def test_without_a_chardev_output_drains_at_the_line_rate() -> None:
    dev = PL011State()
    dev.property_set("x-tx-fifo", True)
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    device_cold_reset(dev)
    u = Uart(dev, None, get_address_space_memory(), BASE)
    u.write(R.IBRD, 3)
    u.write(R.LCR_H, LCR_8N1_FIFO)
    send(u, bytes(17))
    assert fr(u) & FR_TXFF
    clock_step(17 * FRAME_NS)
    assert fr(u) & (FR_BUSY | FR_TXFE | FR_CTS) == FR_TXFE | FR_CTS


def test_fen_change_keeps_queued_bytes() -> None:
    u, peer = make()
    send(u, b"hello")
    u.write(R.LCR_H, LCR_8N1)  # FIFOs off: 4 queued > depth 1
    assert fr(u) & FR_TXFF
    clock_step(5 * FRAME_NS)
    assert not fr(u) & FR_BUSY
    assert peer.output == b"hello"


def test_reset_empties_the_transmitter() -> None:
    u, peer = make()
    peer.room = 0
    send(u, b"lost")
    clock_step(FRAME_NS)
    assert not fr(u) & FR_CTS
    device_cold_reset(u.dev)
    assert fr(u) == FR_TXFE | FR_RXFE | FR_CTS
    peer.give(100)
    clock_step(10 * FRAME_NS)
    assert peer.output == b""


# -- receive side --------------------------------------------------------------------


def test_rx_interrupt_at_the_ifls_level() -> None:
    u, peer = make()
    u.write(R.IFLS, IFLS_RX_HALF_TX_HALF)  # RX at 1/2: 8 entries
    peer.send(bytes(7))
    assert not u.read(R.RIS) & INT_RX
    peer.send(bytes(1))
    assert u.read(R.RIS) & INT_RX
    u.read(R.DR)  # 7: below the level
    assert not u.read(R.RIS) & INT_RX


@pytest.mark.parametrize(("sel", "level"), [(0, 2), (1, 4), (3, 12), (4, 14)])
def test_rx_levels_of_ifls(sel: int, level: int) -> None:
    u, peer = make()
    u.write(R.IFLS, sel << 3)
    peer.send(bytes(level - 1))
    assert not u.read(R.RIS) & INT_RX
    peer.send(bytes(1))
    assert u.read(R.RIS) & INT_RX


def test_rx_level_is_one_entry_with_the_fifo_off() -> None:
    u, peer = make(lcr=LCR_8N1)
    u.write(R.IFLS, 4 << 3)
    peer.send(b"x")
    assert u.read(R.RIS) & INT_RX


def test_receive_timeout_after_32_bit_periods() -> None:
    u, peer = make()
    u.write(R.IMSC, INT_RT)
    peer.send(b"abc")  # below the RX level of 8
    assert not u.read(R.RIS) & (INT_RX | INT_RT)
    clock_step(32 * BIT_NS - 1)
    peer.send(b"d")  # new input restarts the timeout
    clock_step(32 * BIT_NS - 1)
    assert not u.read(R.RIS) & INT_RT
    clock_step(1)
    assert u.read(R.RIS) & INT_RT
    assert u.levels[3] == 1
    assert [u.read(R.DR) for _ in range(3)] == [0x61, 0x62, 0x63]
    assert u.read(R.RIS) & INT_RT  # data left
    assert u.read(R.DR) == 0x64
    assert not u.read(R.RIS) & INT_RT  # the FIFO emptied
    assert u.levels[3] == 0


def test_no_receive_timeout_once_the_fifo_is_read() -> None:
    u, peer = make()
    peer.send(b"a")
    u.read(R.DR)
    clock_step(100 * BIT_NS)
    assert not u.read(R.RIS) & INT_RT


def test_rtsen_stops_the_peer_at_the_rx_level() -> None:
    u, peer = make()
    u.write(R.CR, CR_ON | CR_RTSEN)
    peer.send(bytes(range(16)))
    assert fr(u) & FR_RXFE == 0
    assert len(peer.pending) == 8  # 8 taken: the level (1/2)
    assert u.read(R.DR) == 0
    assert len(peer.pending) == 7  # room for one more
    got = []
    while not fr(u) & FR_RXFE:
        got.append(u.read(R.DR))
    assert got == list(range(1, 16))


def test_loopback_with_hardware_flow_control_loses_nothing() -> None:
    u, peer = make()
    u.write(R.IMSC, INT_CTS)
    u.write(R.CR, CR_ON | CR_LBE | CR_RTSEN | CR_CTSEN)
    payload = bytes(range(1, 18))
    send(u, payload)
    clock_step(100 * FRAME_NS)
    # The receiver filled to its level (8); RTS, looped to CTS, then stopped
    # the transmitter.
    with u.dev.regs.borrow() as regs:
        assert regs.read_count == 8
    assert not fr(u) & FR_CTS
    got = []
    for _ in range(100):
        while not fr(u) & FR_RXFE:
            got.append(u.read(R.DR))
        clock_step(FRAME_NS)
    assert bytes(got) == payload
    assert peer.output == b""  # looped back, not sent
    assert fr(u) & FR_CTS


def test_loopback_without_ctsen_keeps_sending() -> None:
    u, _ = make()
    u.write(R.CR, CR_ON | CR_LBE | CR_RTSEN)
    send(u, bytes(12))
    clock_step(100 * FRAME_NS)
    with u.dev.regs.borrow() as regs:
        assert regs.read_count == 12


# -- migration ---------------------------------------------------------------


def save(dev: PL011State) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, PL011State.vmsd, dev)
    return f.getvalue()


def load(dev: PL011State, data: bytes) -> None:
    vmstate_load_state(QEMUFileReader(data), PL011State.vmsd, dev, 2)


def test_the_subsection_is_sent_only_with_the_option() -> None:
    off, _ = make(on=False)
    assert b"pl011/tx-fifo" not in save(off.dev)
    on, _ = make()
    assert b"pl011/tx-fifo" in save(on.dev)


def test_migration_mid_transmission_continues_the_line() -> None:
    src, peer = make()
    peer.room = 3
    send(src, b"migrate me")
    clock_step(FRAME_NS)
    fr(src)  # the guest looks: 'm' is sent
    assert peer.output == b"m"
    peer.room = 0
    data = save(src.dev)
    src.dev.unparent()
    dst, dst_peer = make()
    load(dst.dev, data)
    assert fr(dst) & FR_BUSY
    clock_step(100 * FRAME_NS)
    assert dst_peer.output == b"igrate me"


def test_migration_of_a_blocked_transmitter() -> None:
    src, peer = make()
    peer.room = 2
    send(src, b"stuck")
    clock_step(10 * FRAME_NS)
    assert not fr(src) & FR_CTS
    assert peer.output == b"st"
    data = save(src.dev)
    src.dev.unparent()
    dst, dst_peer = make()
    load(dst.dev, data)
    assert not fr(dst) & FR_CTS  # loading changes no interrupt or line
    dst_peer.be_writable()  # the main loop: this side's chardev has room
    assert fr(dst) & FR_CTS
    clock_step(2 * FRAME_NS)
    assert not fr(dst) & FR_BUSY
    assert dst_peer.output == b"uck"


def test_loading_the_fifo_into_a_device_without_the_option_fails() -> None:
    src, _ = make()
    data = save(src.dev)
    src.dev.unparent()
    dst, _ = make(on=False)
    with pytest.raises(Error, match=r"x-tx-fifo=off"):
        load(dst.dev, data)


def test_a_corrupt_tx_count_is_refused() -> None:
    src, _ = make()
    data = bytearray(save(src.dev))
    at = data.index(b"pl011/tx-fifo") + len(b"pl011/tx-fifo") + 4 + 16
    data[at : at + 4] = (99).to_bytes(4, "big")
    src.dev.unparent()
    dst, _ = make()
    with pytest.raises(Error, match=r"tx_count 99"):
        load(dst.dev, bytes(data))
