"""pyqemu's qtest replies, byte for byte against Debian's QEMU 7.2.

Both emulators run ``-M virt -S -nodefaults -display none -accel tcg`` (the
Debian build has no qtest accelerator, so both use tcg: the clock commands
then fail the same way) and get the same command lines; their replies must
be identical. RAM is compared above 0x44000000: QEMU loads the device tree
at the start of RAM.

Where the two differ by design the difference is listed here and tested
explicitly:

- ``ABORTS``: lines on which QEMU asserts and dies (or crashes); pyqemu
  answers ``FAIL <reason>`` and goes on. Each is checked on both.
- ``STRICTER``: malformed lines QEMU silently accepts (extra arguments, a
  trailing space, ``write`` data that is not ``0x`` and hex digits); pyqemu
  answers ``FAIL``.
- Not compared, because the machines differ, not the protocol: what QEMU's
  virt has and pyqemu does not model yet (the device tree in RAM, flash at
  0, the RTC, GPIO, fw_cfg and virtio-mmio transports, the GIC's registers
  and its QOM path), ``b64write`` with less data than SIZE (QEMU writes
  bytes from beyond its buffer; pyqemu zero-fills), and ``-qtest`` without
  ``-accel`` (QEMU 7.2 picks tcg, pyqemu's launcher qtest).

The test fails, with the command to install it, when qemu-system-aarch64 is
missing: it is the oracle, not an optional extra.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import pyqemu_config
from tests.oracle import qemu72
from tests.qtest.libqtest import QTestError, QTestState

ARGS: Final = ["-M", "virt", "-S", "-nodefaults", "-accel", "tcg"]
M: Final = 0x44000000  # RAM that QEMU leaves untouched at startup
END: Final = 0x48000000  # the end of the default 128 MiB


@pytest.fixture
def sessions() -> Iterator[tuple[QTestState, QTestState]]:
    qemu = QTestState(ARGS, binary=qemu72(), accel=None)
    try:
        ours = QTestState(ARGS, accel=None)
    except BaseException:
        qemu.kill()
        raise
    try:
        yield qemu, ours
    finally:
        qemu.quit()
        ours.quit()


def compare(sessions: tuple[QTestState, QTestState], lines: list[str]) -> None:
    qemu, ours = sessions
    diffs = []
    for line in lines:
        expected, got = qemu.raw(line), ours.raw(line)
        if expected != got:
            diffs.append(f"{line!r}: QEMU {expected!r}, pyqemu {got!r}")
    assert not diffs, "replies differ:\n" + "\n".join(diffs)


# -- identical replies -------------------------------------------------------------


def test_endianness_and_unknown_commands(
    sessions: tuple[QTestState, QTestState],
) -> None:
    compare(
        sessions,
        [
            "endianness",
            "bogus",
            "READB 0x0",
            "bogus with args",
            "module_load accel nosuch",
            # no qtest accelerator: the clock commands do not exist
            "clock_step",
            "clock_step 10",
            "clock_set 100",
            "irq_intercept_in /machine/nothing",
            "irq_intercept_out /nothing",
            "set_irq_in /nothing unnamed-gpio-in 0 1",
        ],
    )


def test_value_accesses_of_every_size(
    sessions: tuple[QTestState, QTestState],
) -> None:
    lines = []
    values = ["0x1122334455667788", "0xff", "-1", "010", "1234", "0x1ff", "0"]
    for i, size in enumerate("bwlq"):
        for j, value in enumerate(values):
            addr = M + 0x100 * i + 0x10 * j
            lines += [f"write{size} {addr:#x} {value}", f"read {addr:#x} 16"]
            lines += [f"read{s} {addr:#x}" for s in "bwlq"]
            # unaligned
            lines += [f"write{size} {addr + 3:#x} {value}", f"readq {addr + 1:#x}"]
    lines += [f"readl {M:d}", f"readw 0{M:o}", f"readb {M:#X}", f"readb +{M:#x}"]
    compare(sessions, lines)


def test_buffer_accesses(sessions: tuple[QTestState, QTestState]) -> None:
    a = M + 0x10000
    compare(
        sessions,
        [
            f"write {a:#x} 8 0x0123456789abcdef",
            f"read {a:#x} 8",
            f"read {a + 3:#x} 3",
            f"write {a:#x} 8 0xA0B1",  # short: zero-filled
            f"read {a:#x} 8",
            f"write {a:#x} 2 0xaabbccddeeff",  # long: cut
            f"write {a + 2:#x} 2 0x123",  # odd digit ignored
            f"read {a:#x} 8",
            f"write {a:#x} 0 0x55",
            f"read {a:#x} 1",
            f"write {a:#x} 2 0x",  # ERR
            f"write {a:#x} 2 0",  # ERR
            f"b64write {a:#x} 6 AQIDBAUG",
            f"b64read {a:#x} 8",
            *(f"b64read {a:#x} {n}" for n in range(7)),
            f"b64write {a:#x} 3 A!Q-ID.",  # glib skips foreign characters
            f"b64write {a:#x} 1 CQoL",  # long: cut
            f"read {a:#x} 4",
            f"b64write {a:#x} 1 AQ",  # ERR
            f"b64write {a:#x} 2 AQ==",  # one byte, size 2: see module doc
            f"memset {a:#x} 5 0x1ab",
            f"memset {a + 5:#x} 0 0x11",
            f"memset {a + 6:#x} 2 -1",
            f"read {a:#x} 9",
            f"write {a + 0x100:#x} 300 0x{bytes(range(256)).hex()}",
            f"read {a + 0x100:#x} 300",
            f"b64read {a + 0x100:#x} 300",
        ],
    )


def test_unassigned_memory(sessions: tuple[QTestState, QTestState]) -> None:
    lines = []
    for addr in (0x50000000, 0x3_0000_0000, 0xFFFFFFFFFFFFFFF0):
        lines += [f"read{s} {addr:#x}" for s in "bwlq"]
        lines += [f"read {addr:#x} 5", f"b64read {addr:#x} 5"]
        lines += [f"writel {addr:#x} 0x12345678", f"readl {addr:#x}"]
        lines += [f"memset {addr:#x} 4 0xff", f"read {addr:#x} 4"]
    # across the end of RAM
    lines += [f"writeq {END - 8:#x} -1", f"read {END - 4:#x} 8", f"readq {END - 4:#x}"]
    compare(sessions, lines)


def test_port_io(sessions: tuple[QTestState, QTestState]) -> None:
    compare(
        sessions,
        ["outb 0x10 0x5", "outw 0x0 0xffff", "outl 0xfffc 1"]
        + [
            f"in{s} {p:#x}"
            for s in "bwl"
            for p in (0, 0x10, 0x3F8, 0xFFFD, 0xFFFE, 0xFFFF)
        ],
    )


@pytest.mark.skipif("pl011" not in pyqemu_config.DEVICES, reason="pl011 not built")
def test_pl011_registers(sessions: tuple[QTestState, QTestState]) -> None:
    uart = 0x09000000
    lines = [f"readl {uart + off:#x}" for off in range(0xFE0, 0x1000, 4)]
    lines += [f"readl {uart + off:#x}" for off in (0x18, 0x24, 0x28, 0x2C, 0x30)]
    lines += [f"readl {uart + off:#x}" for off in (0x34, 0x38, 0x3C, 0x40)]
    lines += [f"readb {uart + 0xFE0:#x}", f"readw {uart + 0xFE4:#x}"]
    lines += [f"readq {uart + 0xFE0:#x}", f"read {uart + 0xFF8:#x} 8"]
    lines += [
        f"writel {uart + 0x24:#x} 0x27",  # IBRD
        f"writel {uart + 0x28:#x} 0x4",  # FBRD
        f"writel {uart + 0x2C:#x} 0x70",  # LCR_H
        f"writel {uart + 0x38:#x} 0x7ff",  # IMSC
        f"writel {uart + 0x30:#x} 0x301",  # CR: enable
        f"writeb {uart:#x} 0x41",  # DR
    ]
    lines += [f"readl {uart + off:#x}" for off in (0x18, 0x24, 0x28, 0x2C, 0x30)]
    lines += [f"readl {uart + off:#x}" for off in (0x38, 0x3C, 0x40)]
    compare(sessions, lines)


def test_log_format(tmp_path: Path) -> None:
    lines = [
        f"writel {M:#x} 0x1234",
        f"readl {M:#x}",
        f"read {M:#x} 2",
        f"write {M:#x} 1 0x",
        f"b64write {M:#x} 2 AQID",  # a length mismatch line
        "bogus",
        "endianness",
    ]
    logs = []
    for name, binary in (("qemu", qemu72()), ("pyqemu", None)):
        log = tmp_path / name
        with QTestState(ARGS, binary=binary, accel=None, log=str(log)) as qts:
            for line in lines:
                qts.raw(line)
        text = re.sub(r"\[([RSI]) \+?\d+\.\d{6}\]", r"[\1 T]", log.read_text())
        # up to the last reply: how the session ends depends on the kill
        logs.append(text[: text.rindex("[S T] OK little\n")])
    assert logs[1] == logs[0]


# -- deliberate differences ------------------------------------------------------------

ABORTS: Final = [
    # (line, pyqemu's reply); QEMU asserts (g_assert) or crashes on each
    ("", "FAIL Unknown command ''"),
    ("readb", "FAIL readb: missing ADDR (usage: readb ADDR)"),
    ("writeb 0x44000000", "FAIL writeb: missing VALUE (usage: writeb ADDR VALUE)"),
    ("read 0x44000000", "FAIL read: missing SIZE (usage: read ADDR SIZE)"),
    ("read 0x44000000 0", "FAIL read: SIZE must not be 0"),
    ("readl zz", "FAIL readl: ADDR 'zz' is not a number (0x hex, 0 octal or decimal)"),
    (
        "readl 0x44000000\r",
        "FAIL readl: ADDR '0x44000000\\r' is not a number (0x hex, 0 octal or decimal)",
    ),
    (
        "readq 0x10000000000000000",
        (
            "FAIL readq: ADDR '0x10000000000000000' is out of range "
            "(at most 0xffffffffffffffff)"
        ),
    ),
    (
        "readb  0x44000000",
        (
            "FAIL readb: empty argument 1: separate the words with exactly one space "
            "(and none at the end)"
        ),
    ),
    ("inb 0x10000", "FAIL inb: ADDR 0x10000 is not an I/O port (0 to 0xffff)"),
    (
        "memset 0x44000000 4",
        "FAIL memset: missing VALUE (usage: memset ADDR SIZE VALUE)",
    ),
    (
        "b64read 0x44000000",
        "FAIL b64read: missing SIZE (usage: b64read ADDR SIZE)",
    ),
    (
        "irq_intercept_in",
        "FAIL irq_intercept_in: missing QOM-PATH (usage: irq_intercept_in QOM-PATH)",
    ),
    (
        "irq_intercept_in /machine",
        "FAIL irq_intercept_in: '/machine' is a virt-machine, not a device",
    ),
    (
        "set_irq_in /machine/unattached",
        "FAIL set_irq_in: missing NAME (usage: set_irq_in QOM-PATH NAME NUM LEVEL)",
    ),
    (
        "module_load accel",
        "FAIL module_load: missing NAME (usage: module_load PREFIX NAME)",
    ),
    (
        "read 0x44000000 0x10000000000",
        "FAIL read: SIZE 0x10000000000 is too large (at most 0x40000000)",
    ),
]


@pytest.mark.parametrize(("line", "reply"), ABORTS)
def test_qemu_aborts_where_pyqemu_fails(line: str, reply: str) -> None:
    with QTestState(ARGS, binary=qemu72(), accel=None) as qemu:
        with pytest.raises(QTestError, match="closed the qtest reply connection"):
            qemu.raw(line)
        assert qemu.wait() < 0  # SIGABRT from g_assert, or a crash
    with QTestState(ARGS, accel=None) as ours:
        assert ours.raw(line) == reply
        assert ours.raw("endianness") == "OK little"


STRICTER: Final = [
    # (line, QEMU's reply, pyqemu's reply)
    (
        f"readb {M:#x} extra",
        "OK 0x0000000000000000",
        "FAIL readb: unexpected argument 'extra' (usage: readb ADDR)",
    ),
    (
        f"writel {M:#x} 1 2",
        "OK",
        "FAIL writel: unexpected argument '2' (usage: writel ADDR VALUE)",
    ),
    (
        f"readb {M:#x} ",
        "OK 0x0000000000000000",
        (
            "FAIL readb: empty argument 2: separate the words with exactly one space "
            "(and none at the end)"
        ),
    ),
    (
        "endianness now",
        "OK little",
        "FAIL endianness: unexpected argument 'now' (usage: endianness)",
    ),
    (
        f"write {M:#x} 2 0xzz",
        "OK",
        "FAIL write: DATA '0xzz' is not 0x followed by hex digits",
    ),
    (
        f"write {M:#x} 2 12345",
        "OK",
        "FAIL write: DATA '12345' is not 0x followed by hex digits",
    ),
]


@pytest.mark.parametrize(("line", "qemu_reply", "reply"), STRICTER)
def test_pyqemu_is_stricter(
    sessions: tuple[QTestState, QTestState], line: str, qemu_reply: str, reply: str
) -> None:
    qemu, ours = sessions
    assert qemu.raw(line) == qemu_reply
    assert ours.raw(line) == reply


def test_qemu_has_a_device_tree_at_the_start_of_ram(
    sessions: tuple[QTestState, QTestState],
) -> None:
    qemu, ours = sessions
    # With no -kernel, both put the DTB at the start of RAM for the firmware.
    assert qemu.readl(0x40000000) == 0xEDFE0DD0  # FDT magic, big-endian in memory
    assert ours.readl(0x40000000) == 0xEDFE0DD0
