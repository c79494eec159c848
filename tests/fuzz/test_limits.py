"""Limits and leaks: floods, peers that never read, and what is left on disk.

Each test runs the real launcher and watches its peak memory (``VmHWM`` in
``/proc/PID/status``), printing it:

- a serial peer floods input while the guest never reads: the emulator
  stops reading when the PL011's FIFO is full, memory stays flat, and the
  guest then reads every byte that was accepted, in order;
- a QMP client and a qtest client send requests and never read the
  replies: each server stops reading their input while replies wait, memory
  stays bounded, another client is served meanwhile, and once the client
  reads, every request it sent has its reply, in order;
- files named on the command line are created where named, nowhere else
  (not in the working directory, ``$HOME`` or ``$TMPDIR``).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from pathlib import Path

from tests.qtest.libqtest import QTestState, qemu_binary

UART = 0x0900_0000
DR, FR, CR = 0x000, 0x018, 0x030
RXFE = 1 << 4
RAM = 0x4000_0000
MIB = 1 << 20


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def connect(path: Path) -> socket.socket:
    deadline = time.monotonic() + 30
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError:
            sock.close()
            assert time.monotonic() < deadline, f"nobody listens on {path}"
            time.sleep(0.05)
            continue
        return sock


def flood(sock: socket.socket, data: bytes, seconds: float) -> int:
    """Send until the peer stops taking (or ``seconds`` pass); return bytes taken."""
    sock.setblocking(False)
    sent = 0
    deadline = time.monotonic() + seconds
    stalled_since: float | None = None
    while sent < len(data) and time.monotonic() < deadline:
        try:
            n = sock.send(data[sent : sent + 65536])
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                break  # the peer has stopped reading
            time.sleep(0.01)
            continue
        stalled_since = None
        sent += n
    sock.setblocking(True)
    return sent


def test_serial_input_flood_while_the_guest_never_reads(tmp_path: Path) -> None:
    serial = tmp_path / "serial.sock"
    args = ["-M", "virt", "-nodefaults", "-serial", f"unix:{serial},server=on,wait=off"]
    with QTestState(args) as qts:
        base = peak_rss_mib(qts.pid)
        peer = connect(serial)
        data = os.urandom(16 * MIB)
        sent = flood(peer, data, seconds=20)
        peak = peak_rss_mib(qts.pid)
        print(
            f"serial flood: {sent} bytes taken of {len(data)}; peak RSS "
            f"{base:.0f} -> {peak:.0f} MiB"
        )
        assert sent < 4 * MIB  # the emulator stopped reading
        assert peak - base < 32
        qts.writel(UART + CR, 0x301)
        got = bytearray()
        while len(got) < min(sent, 1024):
            if qts.readl(UART + FR) & RXFE:
                qts.clock_step(1000)  # let the main loop read more
                continue
            got.append(qts.readl(UART + DR) & 0xFF)
        assert bytes(got) == data[: len(got)]
        peer.close()


def test_qmp_client_that_never_reads(tmp_path: Path) -> None:
    path = tmp_path / "qmp.sock"
    args = ["-M", "virt", "-nodefaults", "-qmp", f"unix:{path},server=on,wait=off"]
    with QTestState(args, qmp=True) as qts:
        base = peak_rss_mib(qts.pid)
        lazy = connect(path)
        lazy.recv(4096)  # the greeting
        requests = b'{"execute": "qmp_capabilities"}' + b"".join(
            b'{"execute": "qom-list-types", "id": %d}' % i for i in range(3000)
        )
        sent = flood(lazy, requests, seconds=10)
        assert isinstance(qts.qmp("query-status"), dict)  # the other client
        peak = peak_rss_mib(qts.pid)
        print(
            f"QMP flood: {sent} bytes of requests taken; peak RSS "
            f"{base:.0f} -> {peak:.0f} MiB"
        )
        assert peak - base < 64
        whole = requests[:sent].count(b"}{") + (sent == len(requests))
        lazy.sendall(requests[sent:])
        lazy.shutdown(socket.SHUT_WR)
        ids = []
        with lazy.makefile("rb") as f:
            for line in f:
                reply = json.loads(line)
                if "id" in reply:
                    ids.append(reply["id"])
        assert ids == list(range(3000))
        assert whole <= 3001


def test_qtest_client_that_never_reads() -> None:
    with QTestState(["-M", "virt", "-nodefaults"], qmp=True) as qts:
        base = peak_rss_mib(qts.pid)
        qts.memwrite(RAM, bytes(range(256)) * 256)
        line = f"b64read {RAM:#x} 0x10000\n".encode()
        count = 2000  # 175 MiB of replies
        qts.send(line * count)
        time.sleep(2)
        assert isinstance(qts.qmp("query-status"), dict)
        peak = peak_rss_mib(qts.pid)
        print(
            f"qtest flood: peak RSS {base:.0f} -> {peak:.0f} MiB with "
            f"{count} replies of 87 KiB unread"
        )
        assert peak - base < 64
        expected = "OK " + base64.b64encode(bytes(range(256)) * 256).decode()
        for _ in range(count):
            assert qts.recv_line() == expected


def test_files_named_on_the_command_line_are_created_there_only(tmp_path: Path) -> None:
    cwd, home, tmp, named = (tmp_path / d for d in ("cwd", "home", "tmp", "named"))
    for d in (cwd, home, tmp, named):
        d.mkdir()
    qmp = named / "qmp.sock"
    proc = subprocess.Popen(
        [
            str(qemu_binary("aarch64")),
            "-M",
            "virt",
            "-nodefaults",
            "-display",
            "none",
            "-D",
            str(named / "log.txt"),
            "-d",
            "guest_errors",
            "-serial",
            f"file:{named / 'serial.out'}",
            "-trace",
            f"file={named / 'trace.log'}",
            "-qtest",
            "null",
            "-qtest-log",
            str(named / "qtest.log"),
            "-qmp",
            f"unix:{qmp},server=on,wait=off",
        ],
        cwd=cwd,
        env={**os.environ, "HOME": str(home), "TMPDIR": str(tmp)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        sock = connect(qmp)
        with sock:
            sock.sendall(b'{"execute": "qmp_capabilities"}{"execute": "quit"}')
            while sock.recv(4096):
                pass
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert sorted(p.name for p in named.iterdir()) == [
        "log.txt",
        "qtest.log",
        "serial.out",
        "trace.log",
    ]
    for d in (cwd, home, tmp):
        assert list(d.iterdir()) == [], d
