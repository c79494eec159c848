"""The qtest protocol (system/qtest.py): every command, reply format and error.

Most tests run the server in process, on a test chardev that delivers input
through the frontend's ``can_receive``/``receive`` handlers as a real backend
does, against a small machine: RAM at 0x1000 and a probe device at 0x10000
with an MMIO register, GPIO inputs and outputs and a virtual-clock timer.
The last tests run the real launcher over a unix socket and over stdio.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import system.qtest
from qemu_api import chardev, memory, qom
from qemu_api.chardev import Chardev, ChardevOptions, ChrEvent
from qemu_api.error import Error
from qemu_api.irq import InterruptSource
from qemu_api.memory import (
    MemoryRegion,
    MemoryRegionOps,
    OpsImpl,
    get_address_space_memory,
    get_system_memory,
)
from qemu_api.qom import object_get_root, object_property_add_child, override
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import CLOCK_VIRTUAL, SCALE_NS, Timer, qemu_clock_get_ns
from system import runstate
from system.main_loop import MainLoop
from system.qtest import MAX_TRANSFER, QTestServer, qtest_parse_number
from system.runstate import RunState
from tests.qtest.libqtest import QTestFailError, QTestState
from tests.runtime import fresh_runtime

RAM: Final = 0x1000
PROBE: Final = 0x10000
U64: Final = 2**64 - 1


# -- the in-process machine ------------------------------------------------------


class Pipe(Chardev):
    """A backend that records output and feeds input as a host backend does."""

    BACKEND = "test-qtest-pipe"

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        self.output = bytearray()
        self.deliveries: list[bytes] = []

    @override
    def write(self, data: bytes) -> int:
        self.output += data
        return len(data)

    def push(self, data: bytes) -> None:
        """Offer ``data``; deliver no more than ``can_receive`` allows at a time."""
        while data:
            room = self.be_can_write()
            assert room > 0, "the qtest server must always accept input"
            n = self.be_write(data)
            assert 0 < n <= room
            self.deliveries.append(data[:n])
            data = data[n:]

    def take(self) -> list[str]:
        text = self.output.decode("latin-1")
        self.output.clear()
        assert text == "" or text.endswith("\n"), text
        return text.splitlines()


class Probe(SysBusDevice, type_name="test-qtest-probe"):
    """A device to drive through qtest.

    Register 0: scratch; 0x10: raises on read; 0x20: drives GPIO out 0;
    0x30: arms the timer ``value`` ns ahead, which raises GPIO out 1.
    """

    @override
    def instance_init(self) -> None:
        self.reg = 0
        self.in_levels: dict[int, int] = {}
        self.outs = [InterruptSource(), InterruptSource()]
        self.iomem = MemoryRegion.io(self, "probe", 0x100, PROBE_OPS, self)
        self.init_mmio(self.iomem)
        self.init_gpio_in(self.set_in, 4)
        self.init_gpio_in_named(self.set_in, "reset", 1)
        self.init_gpio_out(self.outs)
        self.timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.fire)

    def set_in(self, n: int, level: int) -> None:
        if level == 99:
            raise RuntimeError("probe cannot take level 99")
        self.in_levels[n] = level

    def fire(self) -> None:
        self.outs[1].raise_()

    def read(self, offset: int, size: int) -> int:
        if offset == 0x10:
            raise RuntimeError("probe read bug")
        return self.reg

    def write(self, offset: int, value: int, size: int) -> None:
        if offset == 0x20:
            self.outs[0].set(value)
        elif offset == 0x30:
            self.timer.mod(qemu_clock_get_ns(CLOCK_VIRTUAL) + value)
        else:
            self.reg = value


PROBE_OPS: Final = MemoryRegionOps[Probe](
    read=Probe.read,
    write=Probe.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)


@pytest.fixture(autouse=True)
def _running() -> Iterator[None]:
    """The fresh runtime of tests/runtime.py, with the machine running."""
    with fresh_runtime():
        runstate.runstate_init(RunState.RUNNING)
        yield


class Session:
    def __init__(self, log_path: str | None = "none", accel_qtest: bool = True):
        get_system_memory().add_subregion(RAM, MemoryRegion.ram(None, "ram", 0x1000))
        machine = object_property_add_child(
            object_get_root(), "machine", qom.Container()
        )
        self.probe = object_property_add_child(machine, "probe", Probe())
        sysbus_realize(self.probe)
        self.probe.mmio_map(0, PROBE)
        self.other = object_property_add_child(machine, "other", Probe())
        sysbus_realize(self.other)
        self.pipe = Pipe("qtest")
        self.loop = MainLoop()
        self.server = QTestServer(
            self.pipe, self.loop, log_path, accel_qtest=accel_qtest
        )
        self.pipe.be_event(ChrEvent.OPENED)

    def ask(self, *lines: str) -> list[str]:
        self.pipe.push("".join(f"{line}\n" for line in lines).encode("latin-1"))
        return self.pipe.take()

    def one(self, line: str) -> str:
        (reply,) = self.ask(line)
        return reply

    def close(self) -> None:
        self.server.close()
        self.loop.close()


@pytest.fixture
def s() -> Iterator[Session]:
    session = Session()
    yield session
    session.close()


# -- numbers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("10", 10),
        ("0x1F", 31),
        ("0X1f", 31),
        ("010", 8),
        ("+7", 7),
        ("-1", U64),
        ("-0x10", U64 - 15),
        ("\t 5", 5),
        ("0xffffffffffffffff", U64),
    ],
)
def test_numbers_parse_as_strtoull(text: str, value: int) -> None:
    assert qtest_parse_number(text, 0, U64, wrap=True) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "'' is not a number (0x hex, 0 octal or decimal)"),
        ("0x", "'0x' is not a number (0x hex, 0 octal or decimal)"),
        ("08", "'08' is not a number (0x hex, 0 octal or decimal)"),
        ("12ab", "'12ab' is not a number (0x hex, 0 octal or decimal)"),
        ("5 ", "'5 ' is not a number (0x hex, 0 octal or decimal)"),
        ("1_000", "'1_000' is not a number (0x hex, 0 octal or decimal)"),
        ("0x1ffffffffffffffff", "is out of range (at most 0xffffffffffffffff)"),
    ],
)
def test_bad_numbers_are_explained(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        qtest_parse_number(text, 0, U64, wrap=True)


def test_signed_ranges() -> None:
    assert qtest_parse_number("-5", -10, 10) == -5
    with pytest.raises(ValueError, match=re.escape("'11' is out of range (-10 to 10)")):
        qtest_parse_number("11", -10, 10)


# -- memory commands -------------------------------------------------------------


def test_value_reads_use_qemu_formats(s: Session) -> None:
    assert s.ask(
        f"writeq {RAM:#x} 0x1122334455667788",
        f"readb {RAM:#x}",
        f"readw {RAM:#x}",
        f"readl {RAM:#x}",
        f"readq {RAM:#x}",
        f"readl {RAM + 4:#x}",
    ) == [
        "OK",
        "OK 0x0000000000000088",
        "OK 0x0000000000007788",
        "OK 0x0000000055667788",
        "OK 0x1122334455667788",
        "OK 0x0000000011223344",
    ]


def test_value_writes_keep_the_low_bytes(s: Session) -> None:
    assert s.ask(
        f"writeq {RAM:#x} 0",
        f"writeb {RAM:#x} 0x1ff",
        f"writew {RAM + 2:#x} -1",
        f"writel {RAM + 4:#x} 0x123456789",
        f"read {RAM:#x} 8",
    ) == ["OK", "OK", "OK", "OK", "OK 0xff00ffff89674523"]


def test_read_and_write_hex(s: Session) -> None:
    assert s.ask(
        f"write {RAM:#x} 4 0x01020304",
        f"read {RAM:#x} 4",
        f"write {RAM:#x} 4 0x0A0b",  # short: zero-filled
        f"read {RAM:#x} 4",
        f"write {RAM:#x} 1 0xaabbcc",  # long: cut
        f"write {RAM + 1:#x} 2 0xdde",  # a trailing nibble is ignored, as in QEMU
        f"read {RAM:#x} 4",
        f"write {RAM:#x} 0 0x99",  # size 0 writes nothing
        f"read {RAM:#x} 1",
    ) == [
        "OK",
        "OK 0x01020304",
        "OK",
        "OK 0x0a0b0000",
        "OK",
        "OK",
        "OK 0xaadd0000",
        "OK",
        "OK 0xaa",
    ]


def test_base64(s: Session) -> None:
    assert s.ask(
        f"b64write {RAM:#x} 3 AQID",
        f"b64read {RAM:#x} 4",
        f"b64read {RAM:#x} 0",
        f"b64write {RAM:#x} 1 B!g==",  # glib skips characters outside base64
        f"read {RAM:#x} 4",
        f"b64write {RAM:#x} 4 BQY=",  # short: zero-filled (QEMU: undefined)
        f"read {RAM:#x} 4",
        f"b64write {RAM:#x} 1 CQoL",  # long: cut
        f"read {RAM:#x} 2",
    ) == [
        "OK",
        "OK AQIDAA==",
        "OK ",
        "OK",
        "OK 0x06020300",
        "OK",
        "OK 0x05060000",
        "OK",
        "OK 0x0906",
    ]


def test_memset(s: Session) -> None:
    assert s.ask(
        f"memset {RAM:#x} 4 0x1ab",
        f"memset {RAM + 1:#x} 0 0x11",
        f"read {RAM:#x} 5",
    ) == ["OK", "OK", "OK 0xabababab00"]


def test_short_data_gets_qemu_err_reply(s: Session) -> None:
    assert s.ask(f"write {RAM:#x} 2 0x", f"b64write {RAM:#x} 1 AQ") == [
        "ERR invalid argument size",
        "ERR invalid argument size",
    ]


def test_accesses_reach_devices_and_unassigned_memory(s: Session) -> None:
    assert s.ask(
        f"writel {PROBE:#x} 0xcafef00d",
        f"readl {PROBE:#x}",
        f"readw {PROBE + 2:#x}",  # one 32-bit read at offset 2, low half kept
        f"readq {PROBE:#x}",  # split into two 32-bit reads
        f"readl {0x8000_0000:#x}",  # unassigned: 0, as QEMU on virt
        f"read {RAM + 0xFFE:#x} 4",  # runs off the end of RAM
    ) == [
        "OK",
        "OK 0x00000000cafef00d",
        "OK 0x000000000000f00d",
        "OK 0xcafef00dcafef00d",
        "OK 0x0000000000000000",
        "OK 0x00000000",
    ]


def test_big_endian_target(s: Session) -> None:
    memory.reset_system_memory(big_endian=True)
    get_system_memory().add_subregion(RAM, MemoryRegion.ram(None, "ram", 0x1000))
    assert s.ask(
        "endianness",
        f"writel {RAM:#x} 0x11223344",
        f"read {RAM:#x} 4",
        f"readw {RAM:#x}",
    ) == ["OK big", "OK", "OK 0x11223344", "OK 0x0000000000001122"]


def test_endianness_little(s: Session) -> None:
    assert s.one("endianness") == "OK little"


def test_port_io_reads_as_unassigned(s: Session) -> None:
    assert s.ask(
        "outb 0x10 0x5", "inb 0x10", "inw 0x10", "inl 0xfffc", "inl 0xfffe"
    ) == [
        "OK",
        "OK 0x00ff",
        "OK 0xffff",
        "OK 0xffffffff",
        "OK 0xffff",  # the I/O space ends at 0xffff
    ]


def test_module_load_fails_as_for_a_missing_module(s: Session) -> None:
    assert s.one("module_load accel tcg-aarch64") == "FAIL"


# -- malformed lines -------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("", "FAIL Unknown command ''"),
        ("bogus 1 2", "FAIL Unknown command 'bogus'"),
        ("READB 0x0", "FAIL Unknown command 'READB'"),
        ("readb", "FAIL readb: missing ADDR (usage: readb ADDR)"),
        ("writel 0x1000", "FAIL writel: missing VALUE (usage: writel ADDR VALUE)"),
        (
            "readb 0x1000 0x1",
            "FAIL readb: unexpected argument '0x1' (usage: readb ADDR)",
        ),
        (
            "readb 0x1000 ",
            (
                "FAIL readb: empty argument 2: separate the words with exactly one "
                "space (and none at the end)"
            ),
        ),
        (
            "readb  0x1000",
            (
                "FAIL readb: empty argument 1: separate the words with exactly one "
                "space (and none at the end)"
            ),
        ),
        (
            "readl 0x1000\r",
            "FAIL readl: ADDR '0x1000\\r' is not a number (0x hex, 0 octal or decimal)",
        ),
        (
            "readq 0x1ffffffffffffffff",
            (
                "FAIL readq: ADDR '0x1ffffffffffffffff' is out of range "
                "(at most 0xffffffffffffffff)"
            ),
        ),
        (
            "writeb 0x1000 zz",
            "FAIL writeb: VALUE 'zz' is not a number (0x hex, 0 octal or decimal)",
        ),
        ("read 0x1000 0", "FAIL read: SIZE must not be 0"),
        (
            f"read 0x1000 {MAX_TRANSFER + 1:#x}",
            "FAIL read: SIZE 0x40000001 is too large (at most 0x40000000)",
        ),
        (
            f"memset 0x1000 {MAX_TRANSFER + 1:#x} 0",
            "FAIL memset: SIZE 0x40000001 is too large (at most 0x40000000)",
        ),
        (
            "write 0x1000 2 1234",
            "FAIL write: DATA '1234' is not 0x followed by hex digits",
        ),
        (
            "write 0x1000 2 0xzz",
            "FAIL write: DATA '0xzz' is not 0x followed by hex digits",
        ),
        (
            "write 0x1000 4",
            "FAIL write: missing DATA (usage: write ADDR SIZE DATA)",
        ),
        ("b64read 0x1000", "FAIL b64read: missing SIZE (usage: b64read ADDR SIZE)"),
        ("inb 0x10000", "FAIL inb: ADDR 0x10000 is not an I/O port (0 to 0xffff)"),
        (
            "endianness x",
            "FAIL endianness: unexpected argument 'x' (usage: endianness)",
        ),
        (
            "module_load accel",
            "FAIL module_load: missing NAME (usage: module_load PREFIX NAME)",
        ),
        (
            "irq_intercept_in",
            (
                "FAIL irq_intercept_in: missing QOM-PATH (usage: irq_intercept_in "
                "QOM-PATH)"
            ),
        ),
        ("irq_intercept_in /nothing", "FAIL Unknown device"),
        ("irq_intercept_out /machine/nothing", "FAIL Unknown device"),
        (
            "irq_intercept_in /machine",
            "FAIL irq_intercept_in: '/machine' is a container, not a device",
        ),
        ("set_irq_in /nothing unnamed-gpio-in 0 1", "FAIL Unknown device"),
        (
            "set_irq_in /machine/probe unnamed-gpio-in 0",
            (
                "FAIL set_irq_in: missing LEVEL (usage: set_irq_in QOM-PATH NAME NUM "
                "LEVEL)"
            ),
        ),
        (
            "set_irq_in /machine/probe unnamed-gpio-in 4 1",
            (
                "FAIL set_irq_in: device type 'test-qtest-probe' has no GPIO input "
                "'unnamed-gpio-in[4]' (it has 4)"
            ),
        ),
        (
            "set_irq_in /machine/probe nothing 0 1",
            (
                "FAIL set_irq_in: device type 'test-qtest-probe' has no GPIO input "
                "'nothing[0]' (it has 0)"
            ),
        ),
        (
            "set_irq_in /machine/probe unnamed-gpio-in 0 0x80000000",
            (
                "FAIL set_irq_in: LEVEL '0x80000000' is out of range "
                "(-2147483648 to 2147483647)"
            ),
        ),
        (
            "clock_step 0x8000000000000000",
            (
                "FAIL clock_step: [NS] '0x8000000000000000' is out of range "
                "(-9223372036854775808 to 9223372036854775807)"
            ),
        ),
        ("clock_set", "FAIL clock_set: missing NS (usage: clock_set NS)"),
    ],
)
def test_malformed_lines_fail_and_the_session_goes_on(
    s: Session, line: str, reply: str
) -> None:
    assert s.ask(line, "endianness") == [reply, "OK little"]


def test_clock_commands_need_accel_qtest() -> None:
    session = Session(accel_qtest=False)
    try:
        assert session.ask("clock_step", "clock_step 10", "clock_set 5") == [
            "FAIL Unknown command 'clock_step'",
            "FAIL Unknown command 'clock_step'",
            "FAIL Unknown command 'clock_set'",
        ]
    finally:
        session.close()


# -- the virtual clock -----------------------------------------------------------


def test_clock_step_and_set(s: Session) -> None:
    assert s.ask(
        "clock_step",  # no timer armed: the clock stays (QEMU steps by -1)
        "clock_step 100",
        "clock_step -5",  # QEMU never moves the clock backwards
        "clock_set 50",
        "clock_set 1000",
        "clock_step 0",
        "clock_step 0x7fffffffffffffff",  # saturates instead of overflowing
    ) == [
        "OK 0",
        "OK 100",
        "OK 100",
        "OK 100",
        "OK 1000",
        "OK 1000",
        "OK 9223372036854775807",
    ]


def test_clock_step_runs_timers_and_reports_their_irqs(s: Session) -> None:
    assert s.ask(
        "irq_intercept_out /machine/probe",
        f"writel {PROBE + 0x30:#x} 250",  # timer 250 ns ahead
        "clock_step 100",
        "clock_step",  # to the deadline
        "clock_step",  # nothing armed any more
    ) == ["OK", "OK", "OK 100", "IRQ raise 1", "OK 250", "OK 250"]


# -- interrupts ------------------------------------------------------------------


def test_irq_intercept_in_reports_changes_and_forwards(s: Session) -> None:
    assert s.ask(
        "irq_intercept_in /machine/probe",
        "set_irq_in /machine/probe unnamed-gpio-in 2 1",
        "set_irq_in /machine/probe unnamed-gpio-in 2 1",  # no change: no line
        "set_irq_in /machine/probe unnamed-gpio-in 2 5",  # another non-zero level
        "set_irq_in /machine/probe unnamed-gpio-in 2 0",
        "set_irq_in /machine/probe reset 0 1",  # named lists are not intercepted
        "irq_intercept_in /machine/probe",  # again: OK
        "irq_intercept_out /machine/other",
    ) == [
        "OK",
        "IRQ raise 2",
        "OK",
        "OK",
        "IRQ raise 2",
        "OK",
        "IRQ lower 2",
        "OK",
        "OK",
        "OK",
        "FAIL IRQ intercept already enabled",
    ]
    assert s.probe.in_levels == {2: 0, 0: 1}


def test_irq_intercept_out_reports_before_the_reply(s: Session) -> None:
    s.probe.connect_gpio_out(0, s.other.get_gpio_in(3))
    assert s.ask(
        "irq_intercept_out /machine/probe",
        f"writel {PROBE + 0x20:#x} 1",
        f"writel {PROBE + 0x20:#x} 0",
    ) == ["OK", "IRQ raise 0", "OK", "IRQ lower 0", "OK"]
    # the old connection still gets the levels
    assert s.other.in_levels == {3: 0}


def test_irq_lines_outside_a_command_are_sent_at_once(s: Session) -> None:
    s.ask("irq_intercept_out /machine/probe")
    s.probe.outs[1].raise_()
    assert s.pipe.take() == ["IRQ raise 1"]


def test_irq_levels_restart_when_the_client_reconnects(s: Session) -> None:
    s.ask(
        "irq_intercept_in /machine/probe",
        "set_irq_in /machine/probe unnamed-gpio-in 1 1",
    )
    s.pipe.be_event(ChrEvent.CLOSED)
    s.pipe.be_event(ChrEvent.OPENED)
    assert s.ask("set_irq_in /machine/probe unnamed-gpio-in 1 1") == [
        "IRQ raise 1",
        "OK",
    ]


# -- device bugs -----------------------------------------------------------------


def test_device_exception_is_an_internal_error_and_serving_goes_on(
    s: Session, capfd: pytest.CaptureFixture[str]
) -> None:
    what = (
        "test-qtest-probe (/machine/probe) read at 0x00010010 size 4 (region 'probe')"
    )
    assert s.ask(f"readl {PROBE + 0x10:#x}", f"readl {PROBE:#x}") == [
        f"FAIL internal error in {what}: RuntimeError: probe read bug",
        "OK 0x0000000000000000",
    ]
    assert runstate.runstate_get() is RunState.INTERNAL_ERROR
    err = capfd.readouterr().err
    assert f"internal error in {what}: RuntimeError: probe read bug" in err
    assert "Traceback" in err  # the model's bug, for its author


def test_gpio_handler_exception_is_an_internal_error(
    s: Session, capfd: pytest.CaptureFixture[str]
) -> None:
    reply = s.one("set_irq_in /machine/probe unnamed-gpio-in 1 99")
    assert reply == (
        "FAIL internal error in test-qtest-probe (/machine/probe) GPIO input "
        "'unnamed-gpio-in[1]' set to 99: RuntimeError: probe cannot take level 99"
    )
    assert "probe cannot take level 99" in capfd.readouterr().err
    assert s.one("endianness") == "OK little"


def test_timer_exception_during_clock_step(
    s: Session, capfd: pytest.CaptureFixture[str]
) -> None:
    def boom() -> None:
        raise ValueError("timer bug")

    Timer(CLOCK_VIRTUAL, SCALE_NS, boom).mod(10)
    assert s.ask("clock_step 20", "clock_step 1") == [
        (
            "FAIL internal error in a timer callback while moving the virtual clock "
            "to 20 ns: ValueError: timer bug"
        ),
        f"OK {qemu_clock_get_ns(CLOCK_VIRTUAL)}",
    ]
    assert "timer bug" in capfd.readouterr().err


# -- input handling --------------------------------------------------------------


def test_lines_split_across_reads_and_many_per_read(s: Session) -> None:
    data = f"writel {RAM:#x} 0x5\nreadb {RAM:#x}\nendianness\n".encode()
    for i in range(len(data)):
        s.pipe.push(data[i : i + 1])
        if i == 10:
            assert s.pipe.output == b""  # an incomplete line waits
    assert s.pipe.take() == ["OK", "OK 0x0000000000000005", "OK little"]
    s.pipe.push(b"endianness\nendian")
    assert s.pipe.take() == ["OK little"]
    s.pipe.push(b"ness\n")
    assert s.pipe.take() == ["OK little"]


def test_large_input_is_taken_in_can_receive_chunks(s: Session) -> None:
    lines = [f"writeb {RAM + i:#x} {i}" for i in range(256)]
    replies = s.ask(*lines, f"read {RAM:#x} 256")
    assert replies[:-1] == ["OK"] * 256
    assert replies[-1] == "OK 0x" + bytes(range(256)).hex()
    assert len(s.pipe.deliveries) > 1
    assert max(len(d) for d in s.pipe.deliveries) <= chardev.CHR_READ_BUF_LEN


def test_non_ascii_bytes_are_echoed_back(s: Session) -> None:
    s.pipe.push(b"r\xe9adb 0\n")
    assert s.pipe.output == b"FAIL Unknown command 'r\xe9adb'\n"


# -- the log -----------------------------------------------------------------------

LOG_LINE: Final = re.compile(r"\[([RS]) \+\d+\.\d{6}\] (.*)")


def test_log_file_is_qemu_format(tmp_path: Path) -> None:
    path = tmp_path / "qtest.log"
    session = Session(str(path))
    try:
        session.ask(
            "irq_intercept_in /machine/probe",
            "set_irq_in /machine/probe unnamed-gpio-in 0 1",
            "write 0x1000 1 0x",
            f"b64write {RAM:#x} 2 AQID",
            "bogus",
        )
        session.pipe.be_event(ChrEvent.CLOSED)
    finally:
        session.close()
    lines = path.read_text().splitlines()
    assert lines[0] == "[I 0.000000] OPENED"
    closed = re.fullmatch(r"\[I \+(\d+\.\d{6})\] CLOSED", lines[-1])
    assert closed
    assert float(closed.group(1)) > 0
    body = []
    for line in lines[1:-1]:
        m = LOG_LINE.fullmatch(line)
        body.append(f"{m.group(1)} {m.group(2)}" if m else line)
    assert body == [
        "R irq_intercept_in /machine/probe",
        "S OK",
        "R set_irq_in /machine/probe unnamed-gpio-in 0 1",
        "S IRQ raise 0",
        "S OK",
        "R write 0x1000 1 0x",
        "ERR invalid argument size",  # QEMU sends it without the prefix
        "R b64write 0x1000 2 AQID",
        "S b64write: data length mismatch (told 2, found 3)",
        "S OK",
        "R bogus",
        "S FAIL Unknown command 'bogus'",
    ]


def test_log_defaults_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    session = Session(None)
    try:
        session.ask("endianness")
    finally:
        session.close()
    err = capfd.readouterr().err
    assert "[I 0.000000] OPENED\n" in err
    assert re.search(
        r"\[R \+\d+\.\d{6}\] endianness\n\[S \+\d+\.\d{6}\] OK little", err
    )


def test_log_none_writes_nothing(capfd: pytest.CaptureFixture[str], s: Session) -> None:
    s.ask("endianness")
    assert capfd.readouterr().err == ""


def test_log_file_error_is_explained(tmp_path: Path) -> None:
    with pytest.raises(
        Error, match=r"could not open qtest log file '.*/missing/log': No such file"
    ):
        QTestServer(Pipe("x"), MainLoop(), str(tmp_path / "missing" / "log"))


def test_close_releases_the_chardev(s: Session) -> None:
    s.server.close()
    assert s.pipe.frontend is None
    assert s.pipe.be_can_write() == 0


def test_a_second_connection_is_refused(s: Session) -> None:
    with pytest.raises(Error, match="Device 'qtest' is in use"):
        QTestServer(s.pipe, s.loop, "none")


def test_reads_go_to_the_current_system_memory(s: Session) -> None:
    assert get_address_space_memory().name == "memory"
    assert s.ask(f"writeb {RAM:#x} 7", f"readb {RAM:#x}")[1].endswith("07")


# -- the real launcher -------------------------------------------------------------


def test_launcher_over_a_unix_socket_with_split_lines() -> None:
    with QTestState(["-M", "virt", "-nodefaults"]) as qts:
        assert qts.raw("endianness") == "OK little"
        pieces = (b"writel 0x4000", b"0000 0x", b"1234\nreadw 0x40000000\nread")
        for piece in (*pieces, b"l "):
            qts.send(piece)
            time.sleep(0.05)
        qts.send(b"0x40000000\n")
        assert qts.recv_line() == "OK"
        assert qts.recv_line() == "OK 0x0000000000001234"
        assert qts.recv_line() == "OK 0x0000000000001234"
        with pytest.raises(QTestFailError, match="FAIL Unknown command 'nope'"):
            qts.command_ok("nope")
        assert qts.readl(0x40000000) == 0x1234


def test_launcher_over_stdio() -> None:
    with QTestState(["-M", "virt", "-nodefaults"], transport="stdio") as qts:
        qts.writeq(0x40000008, 0x0102030405060708)
        assert qts.memread(0x40000008, 8) == bytes.fromhex("0807060504030201")
        assert qts.clock_step(10) == 10


def test_launcher_log_file(tmp_path: Path) -> None:
    path = tmp_path / "log"
    with QTestState(["-M", "virt", "-nodefaults"], log=str(path)) as qts:
        qts.readb(0x40000000)
    lines = path.read_text().splitlines()
    assert lines[0] == "[I 0.000000] OPENED"
    assert [LOG_LINE.sub(r"\1 \2", line) for line in lines[1:5]] == [
        "R endianness",
        "S OK little",
        "R readb 0x40000000",
        "S OK 0x00000000000000d0",  # the first byte of the DTB's magic
    ]


def test_launcher_logs_to_stderr_without_qtest_log() -> None:
    with QTestState(["-M", "none"], log=None) as qts:
        qts.raw("endianness")
        qts.raw("endianness")
        err = qts.stderr()
    assert "[I 0.000000] OPENED" in err
    assert re.search(r"\[S \+\d+\.\d{6}\] OK little", err)


def test_launcher_without_accel_qtest_has_no_clock_commands() -> None:
    with QTestState(["-M", "none"], accel="tcg") as qts:
        assert qts.raw("clock_step 1") == "FAIL Unknown command 'clock_step'"


def test_client_disconnect_leaves_the_emulator_running() -> None:
    qts = QTestState(["-M", "none"])
    try:
        qts.disconnect()
        time.sleep(0.3)
        assert qts.poll() is None  # as QEMU: the test kills it
    finally:
        qts.quit()
    assert "Traceback" not in qts.stderr()


# -- slow readers: replies wait, the main loop does not -------------------------------


class SlowPipe(Chardev):
    """A backend whose host side takes only ``room`` more bytes, then waits."""

    BACKEND = "test-qtest-slow"
    SUPPORTS_WRITE_WATCH = True

    def __init__(self, label: str, options: ChardevOptions | None = None) -> None:
        super().__init__(label, options)
        self.output = bytearray()
        self.room = 0

    @override
    def write(self, data: bytes) -> int:
        n = min(len(data), self.room)
        self.output += data[:n]
        self.room -= n
        return n

    def drain(self, room: int) -> None:
        """The client reads: ``room`` more bytes fit, waiting writers resume."""
        self.room += room
        self.be_writable()


def test_a_slow_reader_holds_input_not_the_main_loop() -> None:
    # Replies were written with write_all: a client that read slowly (or
    # never) stalled the main loop, and with it the monitor, for as long.
    get_system_memory().add_subregion(RAM, MemoryRegion.ram(None, "ram", 0x1000))
    get_address_space_memory().write_buf(RAM, bytes(range(256)) * 16)
    pipe = SlowPipe("slow")
    server = QTestServer(pipe, MainLoop(), "none")
    pipe.be_event(ChrEvent.OPENED)
    pipe.room = 100
    delivered = pipe.be_write(f"read {RAM:#x} 0x1000\nendianness\n".encode())
    assert delivered > 0  # taken, and feed() returned without waiting
    assert len(pipe.output) == 100
    assert pipe.be_can_write() == 0  # no more input until the replies are out
    pipe.drain(len("OK 0x\n") + 8192 - 100)  # the rest of the first reply
    assert pipe.output.endswith(b"\n")
    assert pipe.be_can_write() == 0  # "endianness" ran; its reply waits
    pipe.drain(100)
    assert pipe.output.decode().splitlines() == [
        "OK 0x" + (bytes(range(256)) * 16).hex(),
        "OK little",
    ]
    assert pipe.be_can_write() == chardev.CHR_READ_BUF_LEN
    pipe.room = 1 << 20
    assert pipe.be_write(b"endianness\n") == 11
    assert pipe.output.decode().splitlines()[-1] == "OK little"
    server.close()


def test_the_monitor_answers_while_a_qtest_client_does_not_read() -> None:
    with QTestState(["-M", "virt", "-nodefaults"], qmp=True) as qts:
        qts.send(b"b64read 0x40000000 0x2000000\n")  # 43 MiB of reply, unread
        time.sleep(0.5)
        for _ in range(3):
            assert isinstance(qts.qmp("query-status"), dict)
        assert len(qts.recv_line()) == 3 + 4 * (0x2000000 // 3 + 1)
        assert qts.raw("endianness") == "OK little"


def test_an_overlong_line_is_refused_and_serving_goes_on(
    monkeypatch: pytest.MonkeyPatch, s: Session
) -> None:
    monkeypatch.setattr("system.qtest._MAX_LINE", 64)
    s.pipe.push(b"write 0x1000 4 0x" + b"00" * 100)
    assert s.pipe.output == b""
    assert s.ask("", "endianness") == [
        (
            "FAIL line too long: more than 64 bytes (the largest transfer is "
            "0x40000000 bytes)"
        ),
        "OK little",
    ]


def test_a_server_bug_is_answered_and_leaves_the_run_state(
    monkeypatch: pytest.MonkeyPatch, s: Session, capfd: pytest.CaptureFixture[str]
) -> None:
    def broken(self: QTestServer, words: list[str]) -> str:
        raise KeyError("bug")

    monkeypatch.setattr(system.qtest._COMMANDS["endianness"], "handler", broken)
    assert s.ask("endianness", "readb 0x1000") == [
        "FAIL internal error in the qtest server: KeyError: 'bug'",
        "OK 0x0000000000000000",
    ]
    assert runstate.runstate_get() is RunState.RUNNING
    assert "Traceback" in capfd.readouterr().err
