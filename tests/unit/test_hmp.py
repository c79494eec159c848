"""The human monitor on a chardev, its line editor, and the Ctrl-a mux.

Expected bytes come from QEMU 7.2 (its readline echo, its mux help and its
``-nographic`` session, captured with ``qemu-system-aarch64 -M virt
-nographic -S`` and compared live in :func:`test_nographic_session_as_qemu`).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

import chardev
from chardev.char_mux import MuxChardev, mux_help_text, set_quit_handler
from qemu_api.chardev import (
    CharBackend,
    ChrEvent,
    qemu_chr_new,
    ringbuf_read,
    ringbuf_write,
)
from qemu_api.error import Error
from system.main_loop import MainLoop
from system.monitor.commands import MonitorCommands
from system.monitor.hmp import handle_hmp_command
from system.monitor.hmp_monitor import HMPMonitor, ReadLineState
from system.runstate import RunState, runstate_init
from tests.qtest.libqtest import qemu_binary

assert chardev.MuxChardev is MuxChardev  # importing chardev registers "mux"

BANNER = re.compile(rb"[^\r\n]* monitor - type 'help' for more information\r\n")


def _typed(data: bytes) -> tuple[str, list[str]]:
    out: list[str] = []
    lines: list[str] = []
    rs = ReadLineState(out.append, lines.append)
    for ch in data:
        rs.handle_byte(ch)
    return "".join(out), lines


def test_readline_echo_is_qemus() -> None:
    # QEMU 7.2 echoes "info" typed at the prompt as (from a -nographic session):
    echo, lines = _typed(b"info\r")
    assert echo == (
        "i\x1b[K\x1b[Din\x1b[K\x1b[D\x1b[Dinf\x1b[K\x1b[D\x1b[D\x1b[Dinfo\x1b[K\n"
    )
    assert lines == ["info"]


def test_readline_editing_keys() -> None:
    # Left arrow, insert, ^A (home), ^E (end), ^D (delete), backspace, ^W.
    _, lines = _typed(b"ifo\x1b[D\x1b[Dn\x05 x\x7f\r")
    assert lines == ["info "]
    _, lines = _typed(b"Xinfo\x01\x04\r")
    assert lines == ["info"]
    _, lines = _typed(b"info status\x17\x17qtree\r")
    assert lines == ["qtree"]
    _, lines = _typed(b"abc\x1bOH\x1b[3~\x1bOFd\r")
    assert lines == ["bcd"]


def test_readline_history() -> None:
    out: list[str] = []
    lines: list[str] = []
    rs = ReadLineState(out.append, lines.append)
    for text in (b"info status\r", b"info qtree\r", b"info status\r"):
        for ch in text:
            rs.handle_byte(ch)
    # A repeated line moves to the end; up twice is the older one.
    assert rs.history == ["info qtree", "info status"]
    for ch in b"\x1b[A\x1b[A\r\x1b[A\x1b[B\x1b[Bx\r":
        rs.handle_byte(ch)
    assert lines[-2:] == ["info qtree", "x"]


def test_readline_completion() -> None:
    from system.monitor.hmp_monitor import _hmp_completions

    lines: list[str] = []
    rs = ReadLineState(lambda _text: None, lines.append, _hmp_completions)
    for ch in b"inf\tqt\t\r":
        rs.handle_byte(ch)
    assert lines == ["info qtree "]
    assert _hmp_completions("info ch") == (["chardev"], 5)


def test_monitor_on_a_chardev(qemu_runtime: None) -> None:
    runstate_init(RunState.PRELAUNCH)
    mon = HMPMonitor(qemu_chr_new("hmp", "ringbuf", {"size": 65536}), MainLoop())
    first = ringbuf_read("hmp", 65536).encode()
    assert BANNER.match(first)
    assert first.endswith(b"(qemu) ")
    mon.receive(b"info status\r")
    assert ringbuf_read("hmp", 65536).endswith(
        "info status\x1b[K\r\nVM status: paused (prelaunch)\r\n(qemu) "
    )
    mon.receive(b"info version\r")
    out = ringbuf_read("hmp", 65536)
    assert "\r\n7.2.0pyqemu " in out
    mon.receive(b"info nosuch\r")
    assert "unknown command: 'info nosuch'\r\n(qemu) " in ringbuf_read("hmp", 65536)
    assert mon.history == ["info status", "info version", "info nosuch"]
    mon.receive(b"info status\r")
    mon.receive(b"info history\r")
    assert ringbuf_read("hmp", 65536).endswith(
        "\r\n0: 'info version'\r\n1: 'info nosuch'\r\n2: 'info status'\r\n"
        "3: 'info history'\r\n(qemu) "
    )
    mon.close()


def test_info_commands_as_qemu() -> None:
    runstate_init(RunState.PRELAUNCH)
    cmds = MonitorCommands(None)
    # QEMU 7.2 (human-monitor-command on -M virt -S): no IRQ statistics on
    # virt, the migration globals before any migration.
    assert handle_hmp_command(cmds, "info irq") == ""
    assert handle_hmp_command(cmds, "info migrate") == (
        "globals:\r\nstore-global-state: on\r\nonly-migratable: off\r\n"
        "send-configuration: on\r\nsend-section-footer: on\r\n"
        "decompress-error-check: on\r\nclear-bitmap-shift: 18\r\n"
    )
    assert handle_hmp_command(cmds, "help quit") == "quit|q  -- quit the emulator\r\n"
    # A monitor without line editing (QMP's human-monitor-command) has none.
    assert handle_hmp_command(cmds, "info history") == ""


def test_human_monitor_command_cpu_index(qemu_runtime: None) -> None:
    runstate_init(RunState.PRELAUNCH)
    cmds = MonitorCommands(None)
    with pytest.raises(Error, match="Parameter 'cpu-index' expects a CPU number"):
        cmds.human_monitor_command(command_line="info status", cpu_index=5)
    assert cmds.human_monitor_command(command_line="info status", cpu_index=None) == (
        "VM status: paused (prelaunch)\r\n"
    )


@pytest.fixture
def mux(qemu_runtime: None) -> Iterator[tuple[MuxChardev, list[tuple[str, object]]]]:
    qemu_chr_new("con-base", "ringbuf", {"size": 65536})
    mux = qemu_chr_new("con", "mux", {"chardev": "con-base"})
    assert isinstance(mux, MuxChardev)
    got: list[tuple[str, object]] = []
    quits: list[bool] = []
    set_quit_handler(lambda: quits.append(True))
    serial, monitor = CharBackend(), CharBackend()
    monitor.connect(mux.new_port())
    monitor.set_handlers(
        lambda: 64,
        lambda b: got.append(("monitor", b)),
        lambda e: got.append(("monitor", e)),
    )
    serial.connect(mux)
    serial.set_handlers(
        lambda: 64,
        lambda b: got.append(("serial", b)),
        lambda e: got.append(("serial", e)),
    )
    mux.open_frontends()
    got.clear()
    yield mux, got
    assert len(quits) <= 1
    set_quit_handler(None)
    serial.disconnect()
    monitor.disconnect()


def test_mux_keys(mux: tuple[MuxChardev, list[tuple[str, object]]]) -> None:
    chr_, got = mux
    assert chr_.focus is chr_  # the last frontend to install handlers
    chr_.receive(b"a\x01\x01\x01b")
    assert got == [("serial", b"a"), ("serial", b"\x01"), ("serial", ChrEvent.BREAK)]
    got.clear()
    chr_.receive(b"\x01cq")
    assert got == [
        ("serial", ChrEvent.MUX_OUT),
        ("monitor", ChrEvent.MUX_IN),
        ("monitor", b"q"),
    ]
    chr_.receive(b"\x01h")
    assert ringbuf_read("con-base", 65536).encode() == mux_help_text()


def test_mux_help_is_qemus() -> None:
    # QEMU 7.2's Ctrl-a h output, byte for byte.
    assert mux_help_text() == (
        b"\n\rC-a h    print this help\n\rC-a x    exit emulator\n\r"
        b"C-a s    save disk data back to file (if -snapshot)\n\r"
        b"C-a t    toggle console timestamps\n\rC-a b    send break (magic sysrq)\n\r"
        b"C-a c    switch between console and monitor\n\rC-a C-a  sends C-a\n\r"
    )


def test_mux_exit_and_timestamps(
    mux: tuple[MuxChardev, list[tuple[str, object]]],
) -> None:
    chr_, _got = mux
    chr_.receive(b"\x01t")
    assert chr_.timestamps
    assert chr_.write(b"x\ny") == 3
    assert re.fullmatch(r"x\n\[00:00:00\.\d\d\d\] y", ringbuf_read("con-base", 65536))
    chr_.receive(b"\x01x")
    assert ringbuf_read("con-base", 100) == "QEMU: Terminated\n\r"
    ringbuf_write("con-base", "unused")


def _session(argv: list[str], script: list[bytes]) -> bytes:
    proc = subprocess.Popen(
        [*argv, "-M", "virt", "-nographic", "-S"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdin is not None
    time.sleep(1.5)
    for chunk in script:
        proc.stdin.write(chunk)
        proc.stdin.flush()
        time.sleep(0.4)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return out


def test_nographic_session_as_qemu() -> None:
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        pytest.fail("qemu-system-aarch64 (QEMU 7.2, the oracle) is not installed")
    script = [b"\x01h", b"\x01c", b"info status\r", b"info history\r"]
    script += [b"\x01c", b"\x01c", b"\x01x"]
    theirs = _session([qemu], script)
    ours = _session([str(qemu_binary("aarch64"))], script)
    assert BANNER.sub(b"BANNER\r\n", ours) == BANNER.sub(b"BANNER\r\n", theirs)
