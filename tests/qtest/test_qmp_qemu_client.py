"""End to end: the real launcher driven by QEMU's own QMP client, ``qemu.qmp``.

``build/pyqemu-system-aarch64 -M virt -display none -S -qmp unix:SOCK,...`` is
started as a user would start it, and ``qemu.qmp.QMPClient`` (QEMU's library,
pinned in subprojects/test.txt) negotiates, queries, starts and stops the
machine, reads QOM properties, gets an error and quits. The build directory
is ``$PYQEMU_BUILD_ROOT`` (``<repo>/build`` by default).

The last test replays a corpus of good and bad QMP input, byte for byte,
against pyqemu and against Debian's QEMU 7.2 (``qemu-system-aarch64``, the
oracle) and requires the same bytes back; it fails when QEMU is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from qemu.qmp import EventListener, ExecuteError, QMPClient

import pyqemu_config

BUILD = Path(
    os.environ.get("PYQEMU_BUILD_ROOT", Path(__file__).resolve().parents[2] / "build")
)
LAUNCHER = BUILD / "pyqemu-system-aarch64"
TIMEOUT = 30.0


class Emulator:
    """A running launcher (or QEMU) with a QMP socket."""

    def __init__(self, sock: Path, *extra: str, binary: Path = LAUNCHER) -> None:
        if not binary.is_file():
            pytest.fail(
                f"{binary} is not built: configure and build first "
                "(./configure && make), or point PYQEMU_BUILD_ROOT at a build "
                "directory",
                pytrace=False,
            )
        self.sock = sock
        self.proc = subprocess.Popen(
            [
                str(binary),
                *("-M", "virt", "-display", "none", "-S"),
                *("-qmp", f"unix:{sock},server=on,wait=off"),
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + TIMEOUT
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                _, err = self.stop()
                pytest.fail(
                    f"the emulator did not create {sock}; status "
                    f"{self.proc.returncode}, stderr:\n{err}",
                    pytrace=False,
                )
            time.sleep(0.02)

    def wait(self) -> tuple[int, str]:
        """Wait for the process to exit; return its status and standard error."""
        _, err = self.proc.communicate(timeout=TIMEOUT)
        return (self.proc.returncode, err.decode(errors="replace"))

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            self.proc.kill()
        out, err = self.proc.communicate(timeout=TIMEOUT)
        return (out.decode(errors="replace"), err.decode(errors="replace"))


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "qmp.sock")
    try:
        yield emu
    finally:
        emu.stop()


async def next_event(listener: EventListener, name: str) -> dict[str, object]:
    event = await asyncio.wait_for(listener.get(), TIMEOUT)
    assert event["event"] == name
    return dict(event)


async def session(sock: Path) -> None:
    qmp = QMPClient("pyqemu-qtest")
    await asyncio.wait_for(qmp.connect(str(sock)), TIMEOUT)
    greeting = qmp.greeting
    assert greeting is not None
    assert greeting.QMP.version == {
        "qemu": {"micro": 0, "minor": 2, "major": 7},
        "package": f"pyqemu {pyqemu_config.VERSION}",
    }
    assert greeting.QMP.capabilities == ["oob"]

    status = await qmp.execute("query-status")
    assert status == {"status": "prelaunch", "singlestep": False, "running": False}

    listener = EventListener(("RESUME", "STOP", "SHUTDOWN"))
    with qmp.listen(listener):
        assert await qmp.execute("cont") == {}
        await next_event(listener, "RESUME")
        status = await qmp.execute("query-status")
        assert status == {"status": "running", "singlestep": False, "running": True}

        assert await qmp.execute("stop") == {}
        await next_event(listener, "STOP")
        status = await qmp.execute("query-status")
        assert status == {"status": "paused", "singlestep": False, "running": False}

        props = await qmp.execute("qom-list", {"path": "/machine"})
        assert isinstance(props, list)
        names = {p["name"] for p in props}
        assert {"unattached", "gic"} <= names
        realized = await qmp.execute(
            "qom-get", {"path": "/machine/gic", "property": "realized"}
        )
        assert realized is True

        with pytest.raises(ExecuteError) as err:
            await qmp.execute("qom-get", {"path": "/machine/nope", "property": "x"})
        assert err.value.error_class == "DeviceNotFound"
        assert err.value.error.error.desc == "Device '/machine/nope' not found"

        with pytest.raises(ExecuteError) as err:
            await qmp.execute("qom-get", {"path": "/machine"})
        assert err.value.error_class == "GenericError"
        assert err.value.error.error.desc == "Parameter 'property' is missing"

        text = await qmp.execute(
            "human-monitor-command", {"command-line": "info status"}
        )
        assert text == "VM status: paused\r\n"

        assert await qmp.execute("quit") == {}
        event = await next_event(listener, "SHUTDOWN")
        assert event["data"] == {"guest": False, "reason": "host-qmp-quit"}
    # The emulator closes its monitors on the way out, as QEMU does; the
    # library then reports the end of the stream, which QEMU's own
    # python/qemu/machine expects after 'quit'.
    with contextlib.suppress(EOFError):
        await qmp.disconnect()


def test_qemu_qmp_client_session(emulator: Emulator) -> None:
    mode = stat.S_IMODE(emulator.sock.stat().st_mode)
    assert stat.S_ISSOCK(emulator.sock.stat().st_mode)
    assert mode == 0o600, oct(mode)
    asyncio.run(session(emulator.sock))
    status, err = emulator.wait()
    assert status == 0, err
    assert err == ""


def test_a_second_client_gets_a_fresh_session(emulator: Emulator) -> None:
    async def first() -> None:
        qmp = QMPClient("first")
        await asyncio.wait_for(qmp.connect(str(emulator.sock)), TIMEOUT)
        assert await qmp.execute("cont") == {}
        await qmp.disconnect()

    async def second() -> None:
        qmp = QMPClient("second")
        await asyncio.wait_for(qmp.connect(str(emulator.sock)), TIMEOUT)
        status = await qmp.execute("query-status")
        assert status == {"status": "running", "singlestep": False, "running": True}
        await qmp.execute("quit")
        with contextlib.suppress(EOFError):  # closed on the way out, as QEMU
            await qmp.disconnect()

    asyncio.run(first())
    asyncio.run(second())
    status, err = emulator.wait()
    assert status == 0, err


# -- the oracle: the same bytes as QEMU 7.2 -------------------------------------------

SYNC = b'{"execute": "query-status", "id": "sync"}\n'
CORPUS: list[bytes] = [
    b'{"execute": "query-status"}',
    b'{"execute": "foo", "id": [1, {"b": 2, "a": "\\u00e9"}]}',
    b'{"execute": "qmp_capabilities", "arguments": {"enable": ["fast"]}}',
    b'{"execute": "qmp_capabilities", "arguments": {"enable": "oob"}}',
    b'{"execute": "qmp_capabilities", "arguments": {"enable": [1]}}',
    b'{"exec-oob": "qmp_capabilities"}',
    b'{"execute": "qmp_capabilities", "id": 18446744073709551616}',
    b'{"execute": "qmp_capabilities"}',
    b'{"execute": "stop", "id": 0.1}',
    b"[1, 2]\n",
    b"42\n",
    b"{}",
    b'{"execute": ["stop"]}',
    b'{"execute": "stop", "arguments": []}',
    b'{"execute": "stop", "extra": 1}',
    b'{"exec-oob": "stop"}',
    b'{"id": "x"}',
    b'{"execute": "qom-get", "arguments": {"property": "x"}}',
    b'{"execute": "qom-get", "arguments": {"path": 1, "property": "x"}}',
    b'{"execute": "qom-get", "arguments": {"path": "/", "property": "x", "x": 1}}',
    b'{"execute": "query-status", "arguments": {"verbose": true}}',
    b'{"execute": "ringbuf-read", "arguments": {"device": "r", "size": 1.0}}',
    (
        b'{"execute": "ringbuf-read", "arguments": {"device": "r", "size": 8, '
        b'"format": "hex"}}'
    ),
    b'{"execute": "ringbuf-read", "arguments": {"device": "r", "size": 8}}',
    (
        b'{"execute": "trace-event-set-state", "arguments": {"name": "x", '
        b'"enable": "yes"}}'
    ),
    b'{"execute": tru}\n{"execute": "query-status", "id": 2}',
    b'{"execute": "stop" ! garbage "x"}\n{"execute": "cont"}',
    b'{"a" 1}\n{"a": 1 "b": 2}\n[1 2]\n{1: 2}\n{"a": 1, "a": 2}\n{,}\n{"a": ]\n',
    b'"\\x"\n"\\uZZZZ"\n"\\ud800"\n"\\ufffe"\n01\n-x\n"ab\x01\n}\n',
    b'{"execute": "stop", "id": "\xc3\x28"}\n\xff{"execute": "stop", "id": 1}',
    b"{'execute': 'stop', 'id': 'it\\'s \"q\" \\u00e9\\ud83d\\ude00 \\/'}",
    b'{"execute": "qom-list", "arguments": {"path": "/nothing"}}',
    b'{"execute": "device-list-properties", "arguments": {"typename": "nope"}}',
    b'{"execute": "device-list-properties", "arguments": {"typename": "device"}}',
    (
        b'{"execute": "human-monitor-command", "arguments": '
        b'{"command-line": "info status"}}'
    ),
    b'{"execute": "human-monitor-command", "arguments": {"command-line": "foo"}}',
    (
        b'{"execute": "human-monitor-command", "arguments": '
        b'{"command-line": "info qom-tree /nope"}}'
    ),
    b'{"execute": "human-monitor-command", "arguments": {"command-line": "help s"}}',
    (
        b'{"execute": "human-monitor-command", "arguments": '
        b'{"command-line": "info status", "cpu-index": 5}}'
    ),
    b'{"execute": "trace-event-get-state", "arguments": {"name": "nope"}}',
    b'{"execute": "trace-event-get-state", "arguments": {"name": "x", "vcpu": -1}}',
    b'{"execute": "cont"}',
    b'{"execute": "stop"}',
    b'{"execute": "stop"}',
    b'{"execute": "system_reset"}',
    b'{"execute": "ringbuf-write", "arguments": {"device": "nope", "data": "x"}}',
]
TIMESTAMP = re.compile(rb'"seconds": \d+, "microseconds": \d+')


def transcript(emu: Emulator) -> list[bytes]:
    """Send each corpus entry and a sync request; collect what comes back."""
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(TIMEOUT)
    conn.connect(str(emu.sock))
    reader = conn.makefile("rb")
    out = [b"greeting"]
    reader.readline()
    for entry in CORPUS:
        conn.sendall(entry + b"\n" + SYNC)
        out.append(b"> " + entry)
        while b'"id": "sync"' not in (line := reader.readline()):
            assert line, f"the connection closed after {entry!r}"
            out.append(TIMESTAMP.sub(b'"seconds": S, "microseconds": U', line))
    # quit: everything up to the end of the connection. No newline after it:
    # QEMU stops reading at the end of the request and would reset a
    # connection closed with input left unread.
    conn.sendall(b'{"execute": "quit"}')
    out.append(b"> quit")
    out.extend(TIMESTAMP.sub(b'"seconds": S, "microseconds": U', x) for x in reader)
    conn.close()
    assert emu.wait()[0] == 0
    return out


def test_protocol_matches_qemu_7_2(tmp_path: Path) -> None:
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        pytest.fail(
            "qemu-system-aarch64 (QEMU 7.2, the oracle) is not installed: "
            "apt-get install qemu-system-arm",
            pytrace=False,
        )
    version = subprocess.run(
        [qemu, "-version"], capture_output=True, text=True, check=True
    ).stdout
    assert "version 7.2." in version, f"the oracle must be QEMU 7.2, not: {version}"
    (tmp_path / "ours").mkdir()
    (tmp_path / "qemu").mkdir()
    ours = Emulator(tmp_path / "ours" / "qmp.sock", "-nodefaults")
    theirs = Emulator(tmp_path / "qemu" / "qmp.sock", "-nodefaults", binary=Path(qemu))
    try:
        got, expected = transcript(ours), transcript(theirs)
    finally:
        ours.stop()
        theirs.stop()
    assert got == expected


QMP_SHELL = BUILD / "pyvenv" / "bin" / "qmp-shell"
CONNECTED = re.compile(rb"Connected to QEMU \d+\.\d+\.\d+\n")


def _qmp_shell(binary: Path, sock: Path, human: bool, script: bytes) -> bytes:
    emu = Emulator(sock, binary=binary)
    try:
        res = subprocess.run(
            [str(QMP_SHELL), *(["-H"] if human else []), str(sock)],
            input=script,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        emu.stop()
    assert res.returncode == 0, res.stderr
    return CONNECTED.sub(b"Connected to QEMU X\n", res.stdout)


@pytest.mark.parametrize(
    ("human", "script"),
    [(False, b"query-status\nquery-name\n"), (True, b"info status\nhelp quit\n")],
    ids=["qmp", "hmp"],
)
def test_qmp_shell_as_with_qemu(human: bool, script: bytes, tmp_path: Path) -> None:
    """QEMU's qmp-shell, in both modes, prints the same with pyqemu as with QEMU."""
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        pytest.fail("qemu-system-aarch64 (QEMU 7.2, the oracle) is not installed")
    if not QMP_SHELL.is_file():
        pytest.fail(f"{QMP_SHELL} is missing: qemu.qmp (subprojects/test.txt)")
    theirs = _qmp_shell(Path(qemu), tmp_path / "q.sock", human, script)
    ours = _qmp_shell(LAUNCHER, tmp_path / "p.sock", human, script)
    assert b"(QEMU) " in ours
    assert ours == theirs
