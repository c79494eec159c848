"""The virt board's PL011 through the real launcher: registers, IRQs, chardevs, QMP.

Each test starts ``pyqemu-system-aarch64 -M virt`` under qtest (see
tests/qtest/libqtest.py) and drives UART0 at 0x09000000, which the board wires
to shared peripheral interrupt 1 of ``/machine/gic``. Input comes through a
real unix socket (``-chardev socket,...`` and ``-serial chardev:ID``), output
goes to a file (``-serial file:PATH``), and the device's properties are read
with QMP ``qom-get``. Expected values are QEMU's (hw/char/pl011.c, 10.x).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.qtest.libqtest import QTestState, qemu_binary

BASE = 0x0900_0000
UART_SPI = 1
DR, RSR, FR, ILPR, IBRD, FBRD, LCR_H, CR = (
    0x00,
    0x04,
    0x18,
    0x20,
    0x24,
    0x28,
    0x2C,
    0x30,
)
IFLS, IMSC, RIS, MIS, ICR, DMACR = 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48
FR_RXFE, FR_RXFF, FR_TXFE = 0x10, 0x40, 0x80
INT_RX, INT_TX = 0x10, 0x20
LCR_FEN = 0x10
CR_ON, CR_LBE = 0x301, 0x80
PATIENCE_S = 10.0


def launch(*args: str, qmp: bool = False) -> QTestState:
    return QTestState(["-M", "virt", "-nodefaults", "-S", *args], qmp=qmp)


class SerialClient:
    """The host side of ``-chardev socket,server=on,wait=off``."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, size: int) -> bytes:
        self.sock.settimeout(PATIENCE_S)
        out = b""
        while len(out) < size:
            part = self.sock.recv(size - len(out))
            if not part:
                break
            out += part
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def uart(tmp_path: Path) -> Iterator[tuple[QTestState, SerialClient]]:
    """The virt board, UART0 on a socket chardev, a client connected, GIC watched."""
    path = tmp_path / "serial.sock"
    qts = launch(
        "-chardev",
        f"socket,id=serial0,path={path},server=on,wait=off",
        "-serial",
        "chardev:serial0",
        qmp=True,
    )
    client = SerialClient(path)
    qts.irq_intercept_in("/machine/gic")
    try:
        yield qts, client
    finally:
        client.close()
        qts.quit()


def wait_fr(qts: QTestState, mask: int, value: int) -> None:
    """Poll FR until ``FR & mask == value`` (chardev input arrives asynchronously)."""
    deadline = time.monotonic() + PATIENCE_S
    while qts.readl(BASE + FR) & mask != value:
        if time.monotonic() > deadline:
            pytest.fail(f"FR stayed {qts.readl(BASE + FR):#x}; waited for {value:#x}")
        time.sleep(0.002)


def read_all(qts: QTestState) -> bytes:
    out = bytearray()
    while not qts.readl(BASE + FR) & FR_RXFE:
        out.append(qts.readl(BASE + DR) & 0xFF)
    return bytes(out)


# -- registers -------------------------------------------------------------------


def test_reset_values_and_id_bytes() -> None:
    with launch() as qts:
        regs = {off: qts.readl(BASE + off) for off in (RSR, FR, ILPR, IBRD, FBRD)}
        regs |= {off: qts.readl(BASE + off) for off in (LCR_H, CR, IFLS, IMSC)}
        regs |= {off: qts.readl(BASE + off) for off in (RIS, MIS, DMACR)}
        assert regs == {
            RSR: 0,
            FR: 0x90,
            ILPR: 0,
            IBRD: 0,
            FBRD: 0,
            LCR_H: 0,
            CR: 0x300,
            IFLS: 0x12,
            IMSC: 0,
            RIS: 0,
            MIS: 0,
            DMACR: 0,
        }
        ids = bytes(qts.readl(BASE + 0xFE0 + 4 * i) for i in range(8))
        assert ids == bytes.fromhex("111014000df005b1")


def test_register_writes_and_masks() -> None:
    with launch() as qts:
        for off, written, kept in (
            (ILPR, 0xFFFF_FFFF, 0xFFFF_FFFF),
            (IBRD, 0xFFFF_FFFF, 0xFFFF),
            (FBRD, 0xFFFF_FFFF, 0x3F),
            (LCR_H, 0xFFFF_FFEE, 0xFFFF_FFEE),
            (CR, 0xFFFF_FF7F, 0xFFFF_FF7F),
            (IFLS, 0xFFFF_FFFF, 0xFFFF_FFFF),
            (IMSC, 0xFFFF_FFFF, 0xFFFF_FFFF),
            (DMACR, 0xFFFF_FFFC, 0xFFFF_FFFC),
        ):
            qts.writel(BASE + off, written)
            assert qts.readl(BASE + off) == kept, hex(off)
        qts.writel(BASE + FR, 0)
        qts.writel(BASE + RIS, 0xFFFF)
        assert qts.readl(BASE + FR) == 0x90
        assert qts.readl(BASE + RIS) == 0


def test_access_sizes() -> None:
    with launch() as qts:
        # 1- and 2-byte loads read the register's low bytes.
        assert qts.readb(BASE + 0x19) == 0x90
        assert qts.readw(BASE + 0x32) == 0x300
        # Unaligned: the memory core splits by alignment (FR & 0xffff, then 0x1c).
        assert qts.readl(BASE + 0x1A) == 0x90
        # 8 bytes: two 32-bit accesses, low word first; unaligned-to-8 writes too.
        qts.writeq(BASE + IBRD, 0xFFFF_FFFF_FFFF_FFFF)
        assert qts.readq(BASE + IBRD) == 0x3F_0000_FFFF
        qts.writel(BASE + ILPR, 0x12)
        assert qts.readq(BASE + ILPR) == 0xFFFF_0000_0012
        qts.writew(BASE + 0x26, 0x34)  # a store to IBRD's upper half writes IBRD
        assert qts.readl(BASE + IBRD) == 0x34


def test_guest_errors_and_unimp_are_logged(tmp_path: Path) -> None:
    log = tmp_path / "qemu.log"
    with launch("-d", "guest_errors,unimp", "-D", str(log)) as qts:
        assert qts.readl(BASE + 0x08) == 0
        assert qts.readl(BASE + ICR) == 0
        qts.writel(BASE + 0x1C, 1)
        qts.writel(BASE + RIS, 1)
        qts.writel(BASE + 0xFE0, 1)
        qts.writel(BASE + DMACR, 3)
        qts.writel(BASE + DR, 0x41)  # UARTEN is clear after reset
        qts.writel(BASE + DR, 0x42)
        qts.writel(BASE + CR, 0x201)
        qts.writel(BASE + DR, 0x43)
    assert log.read_text() == (
        "pl011_read: Bad offset 0x8\n"
        "pl011_read: Bad offset 0x44\n"
        "pl011_write: Bad offset 0x1c\n"
        "pl011_write: Bad offset 0x3c\n"
        "pl011_write: Bad offset 0xfe0\n"
        "pl011: DMA not implemented\n"
        "PL011 data written to disabled UART\n"
        "PL011 data written to disabled TX UART\n"
    )


def test_trace_events(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    with launch("-trace", "pl011_*", "-D", str(log)) as qts:
        qts.writel(BASE + IBRD, 13)
        qts.readl(BASE + LCR_H)
    lines = [line.split(":", 1)[1] for line in log.read_text().splitlines()]
    assert lines == [
        "pl011_write addr 0x024 value 0x0000000d reg IBRD",
        "pl011_baudrate_change new baudrate 0 (clk: 0hz, ibrd: 13, fbrd: 0)",
        "pl011_read addr 0x02c value 0x00000000 reg LCRH",
    ]


# -- interrupts ------------------------------------------------------------------


def test_irq_lines_through_the_gic(uart: tuple[QTestState, SerialClient]) -> None:
    qts, client = uart
    qts.writel(BASE + IMSC, INT_TX)
    qts.writel(BASE + DR, 0x41)
    assert qts.get_irq(UART_SPI)
    assert client.recv(1) == b"A"
    qts.writel(BASE + ICR, INT_TX)
    assert not qts.get_irq(UART_SPI)
    qts.writel(BASE + IMSC, INT_RX)
    client.send(b"x")
    wait_fr(qts, FR_RXFE, 0)
    assert qts.get_irq(UART_SPI)
    assert qts.readl(BASE + MIS) == INT_RX
    assert qts.readl(BASE + DR) == ord("x")
    assert not qts.get_irq(UART_SPI)
    qts.writel(BASE + CR, CR_ON | CR_LBE | 0x800)  # loopback RTS -> CTS
    qts.writel(BASE + IMSC, 0x2)
    assert qts.get_irq(UART_SPI)
    qts.writel(BASE + IMSC, 0)
    assert not qts.get_irq(UART_SPI)
    assert qts.irq_events == [("raise", 1), ("lower", 1)] * 3


# -- chardev input and output ------------------------------------------------------


def test_socket_input_without_fifo(uart: tuple[QTestState, SerialClient]) -> None:
    qts, client = uart
    client.send(b"abc")
    got = bytearray()
    for _ in range(3):
        wait_fr(qts, FR_RXFF, FR_RXFF)  # one entry: full
        got.append(qts.readl(BASE + DR))
    assert bytes(got) == b"abc"
    assert qts.readl(BASE + FR) == FR_TXFE | FR_RXFE
    assert qts.readl(BASE + DR) == ord("c")  # stale: the last byte, entry 0


def test_socket_input_fills_the_fifo(uart: tuple[QTestState, SerialClient]) -> None:
    qts, client = uart
    qts.writel(BASE + LCR_H, LCR_FEN | 0x60)
    data = bytes(range(0x40, 0x40 + 40))
    client.send(data)
    wait_fr(qts, FR_RXFF, FR_RXFF)
    got = bytearray()
    deadline = time.monotonic() + PATIENCE_S
    while len(got) < len(data) and time.monotonic() < deadline:
        got += read_all(qts)
    assert bytes(got) == data


def test_break_and_modem_in_loopback(uart: tuple[QTestState, SerialClient]) -> None:
    qts, client = uart
    qts.writel(BASE + CR, CR_ON | CR_LBE | 0x3C00)  # DTR, RTS, OUT1, OUT2
    assert qts.readl(BASE + FR) == 0x197
    assert qts.readl(BASE + RIS) == 0xF
    qts.writel(BASE + LCR_H, LCR_FEN)
    qts.writel(BASE + DR, 0x6C)
    qts.writel(BASE + LCR_H, LCR_FEN | 1)  # BRK: a break word comes back
    client.send(b"dropped")
    assert client.recv(1) == b"l"  # the byte still goes out
    assert qts.readl(BASE + DR) == 0x6C
    assert qts.readl(BASE + DR) == 0x400
    assert qts.readl(BASE + RSR) == 0x4
    assert qts.readl(BASE + FR) & FR_RXFE
    qts.writel(BASE + CR, CR_ON)
    # Chardev input sent during loopback was taken and dropped.
    client.send(b"k")
    wait_fr(qts, FR_RXFE, 0)
    assert read_all(qts) == b"k"


def test_output_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "serial.out"
    with launch("-serial", f"file:{out}") as qts:
        qts.writel(BASE + CR, CR_ON)
        for ch in b"hello, pl011\n":
            qts.writeb(BASE + DR, ch)
        qts.writel(BASE + DR, 0x1_2321)  # only bits 7:0 go out
    assert out.read_bytes() == b"hello, pl011\n!"


def test_without_a_serial_port() -> None:
    with launch(qmp=True) as qts:
        assert qts.qmp("qom-get", path="/machine/pl011", property="chardev") == ""
        qts.writel(BASE + IMSC, INT_TX)
        qts.writel(BASE + DR, 0x41)
        assert qts.readl(BASE + MIS) == INT_TX


# -- QMP -------------------------------------------------------------------------


def test_qom_properties(uart: tuple[QTestState, SerialClient]) -> None:
    qts, _ = uart
    assert qts.qmp("qom-get", path="/machine/pl011", property="chardev") == "serial0"
    assert qts.qmp("qom-get", path="/machine/pl011", property="migrate-clk") is True
    assert qts.qmp("qom-get", path="/machine/pl011", property="realized") is True
    props = qts.qmp("qom-list", path="/machine/pl011")
    assert isinstance(props, list)
    types = {p["name"]: p["type"] for p in props if isinstance(p, dict)}
    assert types["clk"] == "child<clock>"
    assert types["chardev"] == "str"
    assert types["migrate-clk"] == "bool"


def test_global_migrate_clk_off() -> None:
    with launch("-global", "pl011.migrate-clk=off", qmp=True) as qts:
        got = qts.qmp("qom-get", path="/machine/pl011", property="migrate-clk")
        assert got is False


def test_pl011_is_not_user_creatable() -> None:
    # As in QEMU, a sysbus type; only virt's platform bus takes it
    # (tests/qtest/test_platform_bus.py).
    proc = subprocess.run(
        [str(qemu_binary()), "-M", "none", "-nodefaults", "-S", "-device", "pl011"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert ": Parameter 'driver' expects a pluggable device type" in proc.stderr
