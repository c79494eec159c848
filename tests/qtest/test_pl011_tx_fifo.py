"""virt's PL011 with ``-global pl011.x-tx-fifo=on`` through the real launcher.

The transmit FIFO drains to real host chardevs while qtest moves virtual time:
a TCP peer that reads slowly gets every byte in order, a peer that stops
reading (a named pipe) never stalls the machine (the qtest connection keeps
answering and the guest sees TXFF and CTS deasserted), and the flags and the
GIC interrupt line follow the PL011 TRM.  With UARTCLK at virt's 24 MHz (the
``clk`` input is unconnected) IBRD 1 gives 1.5 Mbaud: 8N1 characters of
6667 ns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.qtest.libqtest import QTestState

BASE = 0x0900_0000
UART_SPI = 1
DR, FR, IBRD, LCR_H, CR, IFLS, IMSC, RIS, ICR = (
    0x00,
    0x18,
    0x24,
    0x2C,
    0x30,
    0x34,
    0x38,
    0x3C,
    0x44,
)
FR_CTS, FR_BUSY, FR_RXFE, FR_TXFF, FR_TXFE = 0x01, 0x08, 0x10, 0x20, 0x80
INT_CTS, INT_TX = 0x02, 0x20
FRAME_NS = 6667  # 10 bits of 64 / (4 * 24 MHz) s, rounded
PATIENCE_S = 20.0


def launch(*args: str) -> QTestState:
    return QTestState(
        ["-M", "virt", "-nodefaults", "-S", "-global", "pl011.x-tx-fifo=on", *args]
    )


def setup(qts: QTestState) -> None:
    qts.writel(BASE + IBRD, 1)
    qts.writel(BASE + LCR_H, 0x70)  # 8N1, FIFOs on
    qts.writel(BASE + CR, 0x301)


@pytest.fixture
def tcp_peer() -> Iterator[tuple[socket.socket, int]]:
    """A listening TCP socket with a small receive window; pyqemu connects to it."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    try:
        yield lsock, lsock.getsockname()[1]
    finally:
        lsock.close()


def connect(lsock: socket.socket, port: int) -> tuple[QTestState, socket.socket]:
    qts = launch(
        "-chardev", f"socket,id=s0,host=127.0.0.1,port={port}", "-serial", "chardev:s0"
    )
    lsock.settimeout(PATIENCE_S)
    peer, _ = lsock.accept()
    return qts, peer


def test_flags_and_the_tx_interrupt_through_the_gic(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with launch("-serial", f"file:{out}") as qts:
        qts.irq_intercept_in("/machine/gic")
        assert qts.readl(BASE + FR) == FR_TXFE | FR_RXFE | FR_CTS
        setup(qts)
        qts.writel(BASE + IFLS, 0x12)  # TX level 1/2: 8 entries
        qts.writel(BASE + IMSC, INT_TX)
        for ch in b"0123456789abcdefg":  # 1 on the line, 16 queued
            qts.writel(BASE + DR, ch)
        assert qts.readl(BASE + FR) & (FR_TXFF | FR_TXFE | FR_BUSY) == FR_TXFF | FR_BUSY
        assert not qts.get_irq(UART_SPI)
        qts.clock_step(8 * FRAME_NS - 1)  # 9 left
        assert not qts.readl(BASE + RIS) & INT_TX
        qts.clock_step(1)  # 8 left: the FIFO drained through its level
        assert qts.readl(BASE + RIS) & INT_TX
        assert qts.get_irq(UART_SPI)
        qts.writel(BASE + ICR, INT_TX)
        assert not qts.get_irq(UART_SPI)
        qts.clock_step(17 * FRAME_NS)
        assert qts.readl(BASE + FR) & (FR_TXFE | FR_BUSY) == FR_TXFE
    assert out.read_bytes() == b"0123456789abcdefg"


def test_without_the_option_transmission_is_immediate(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with QTestState(
        ["-M", "virt", "-nodefaults", "-S", "-serial", f"file:{out}"]
    ) as qts:
        setup(qts)
        qts.writel(BASE + DR, 0x41)
        assert qts.readl(BASE + FR) == FR_TXFE | FR_RXFE
        assert qts.readl(BASE + RIS) & INT_TX
        qts.clock_step(0)
    assert out.read_bytes() == b"A"


def test_a_peer_that_stops_reading(tmp_path: Path) -> None:
    """The guest fills the host's buffer, then sees TXFF; the machine runs on.

    The peer is a named pipe shrunk to one page, so that few bytes fill it.
    """
    fifo = tmp_path / "serial.fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    fcntl.fcntl(rfd, fcntl.F_SETPIPE_SZ, 4096)
    qts = launch("-serial", f"file:{fifo}")
    try:
        setup(qts)
        qts.writel(BASE + IMSC, INT_CTS)
        qts.irq_intercept_in("/machine/gic")
        written = 0
        deadline = time.monotonic() + PATIENCE_S
        # While the FIFO is empty, fill it, as a driver does from its TX
        # interrupt, until the peer's refusal shows as CTS deasserted.
        while True:
            qts.clock_step(17 * FRAME_NS)
            fr = qts.readl(BASE + FR)
            if not fr & FR_CTS:
                break
            if fr & FR_TXFE:
                for _ in range(16):
                    qts.writel(BASE + DR, written & 0xFF)
                    written += 1
            assert time.monotonic() < deadline, f"never refused after {written} bytes"
        # The pipe took its 4096 bytes; the guest fills the FIFO and sees TXFF.
        while not qts.readl(BASE + FR) & FR_TXFF:
            qts.writel(BASE + DR, written & 0xFF)
            written += 1
        assert 4096 + 1 + 16 <= written <= 4096 + 3 * 17
        qts.clock_step(100 * FRAME_NS)
        fr = qts.readl(BASE + FR)
        assert fr & (FR_TXFF | FR_BUSY | FR_CTS) == FR_TXFF | FR_BUSY
        assert qts.readl(BASE + RIS) & INT_CTS
        assert qts.get_irq(UART_SPI)
        # Still answering: virtual time moves and registers read back.
        before = qts.clock_step(0)
        assert qts.clock_step(1_000_000) == before + 1_000_000
        assert qts.readl(BASE + IBRD) == 1
        # The peer reads again: everything arrives, in order.
        got = bytearray()
        while len(got) < written:
            with contextlib.suppress(BlockingIOError):
                got += os.read(rfd, 1 << 16)
            qts.clock_step(1000 * FRAME_NS)
            assert time.monotonic() < deadline + PATIENCE_S, f"got {len(got)}"
        assert bytes(got) == bytes(i & 0xFF for i in range(written))
        fr = qts.readl(BASE + FR)
        assert fr & (FR_CTS | FR_TXFE | FR_BUSY) == FR_CTS | FR_TXFE
    finally:
        qts.quit()
        os.close(rfd)


def test_a_slow_peer_gets_everything_in_order(
    tcp_peer: tuple[socket.socket, int],
) -> None:
    qts, peer = connect(*tcp_peer)
    total = 8_000
    got = bytearray()

    def reader() -> None:
        peer.settimeout(PATIENCE_S)
        while len(got) < total:
            part = peer.recv(256)
            if not part:
                return
            got.extend(part)
            time.sleep(0.005)  # about 50 KB/s at most: slower than the line

    t = threading.Thread(target=reader)
    t.start()
    try:
        setup(qts)
        sent = 0
        deadline = time.monotonic() + 2 * PATIENCE_S
        while sent < total:
            while sent < total and not qts.readl(BASE + FR) & FR_TXFF:
                qts.writel(BASE + DR, (sent * 7) & 0xFF)
                sent += 1
            qts.clock_step(16 * FRAME_NS)
            assert time.monotonic() < deadline
        while len(got) < total and time.monotonic() < deadline:
            qts.clock_step(100 * FRAME_NS)
            time.sleep(0.001)
    finally:
        t.join(PATIENCE_S)
        qts.quit()
        peer.close()
    assert bytes(got) == bytes((i * 7) & 0xFF for i in range(total))
