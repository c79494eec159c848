#!/usr/bin/env python3
"""Socket chardev throughput: bytes per second through a Unix socket chardev.

Usage: python tests/bench/bench_chardev.py [MEGABYTES]

Two directions, each moving MEGABYTES (default 64) through a ``socket``
chardev (``server=on,wait=off``) driven by a real main loop:

  input:  a client thread writes into the socket; a frontend that takes
          everything it is offered (``can_receive`` = 64 KiB) consumes it.
          The backend reads at most CHR_READ_BUF_LEN (4 KiB) per readiness
          event, as QEMU does.
  output: the frontend writes 64 KiB at a time with ``CharBackend.write``
          and waits on a write watch when the socket is full; a client
          thread reads and discards.

Both transfers are checked byte for byte (SHA-256); the exit status is
non-zero only if data was lost or reordered.  The rates are figures, not
pass/fail: they depend on the machine and its load.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from system.main_loop import MainLoop

CHUNK = 1 << 16
TIMEOUT_S = 60.0


def _import_runtime() -> None:
    """Make the source tree importable when run as a script, then load it."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    importlib.import_module("chardev")


def make_payload(size: int) -> bytes:
    block = os.urandom(1 << 20)
    return (block * (size // len(block) + 1))[:size]


def run_until(loop: MainLoop, cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_chardev: timed out waiting for {what}")
        loop.wait(100_000_000)


def bench_input(loop: MainLoop, path: str, payload: bytes) -> tuple[float, bool]:
    """Client -> socket -> frontend; returns (seconds, data intact)."""
    from qemu_api.chardev import CharBackend, ChrEvent, qemu_chr_delete, qemu_chr_new

    opts = {"path": path, "server": "on", "wait": "off"}
    chr_ = qemu_chr_new("bench-in", "socket", opts)
    fe = CharBackend()
    fe.connect(chr_)
    digest = hashlib.sha256()
    received = 0
    closed: list[ChrEvent] = []

    def receive(data: bytes) -> None:
        nonlocal received
        digest.update(data)
        received += len(data)

    def event(ev: ChrEvent) -> None:
        if ev is ChrEvent.CLOSED:
            closed.append(ev)

    fe.set_handlers(lambda: CHUNK, receive, event)

    def client() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(payload)

    start = time.perf_counter()
    t = threading.Thread(target=client)
    t.start()
    run_until(loop, lambda: received >= len(payload) or bool(closed), "input")
    elapsed = time.perf_counter() - start
    t.join()
    fe.disconnect()
    qemu_chr_delete("bench-in")
    intact = received == len(payload) and digest.digest() == _sha(payload)
    return elapsed, intact


def bench_output(loop: MainLoop, path: str, payload: bytes) -> tuple[float, bool]:
    """Frontend -> socket -> client; returns (seconds, data intact)."""
    from qemu_api.chardev import CharBackend, ChrEvent, qemu_chr_delete, qemu_chr_new

    opts = {"path": path, "server": "on", "wait": "off"}
    chr_ = qemu_chr_new("bench-out", "socket", opts)
    fe = CharBackend()
    fe.connect(chr_)
    opened: list[ChrEvent] = []
    fe.set_handlers(lambda: 0, lambda data: None, opened.append)
    digest = hashlib.sha256()
    received = [0]

    def client() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            while received[0] < len(payload):
                part = s.recv(1 << 18)
                if not part:
                    break
                digest.update(part)
                received[0] += len(part)

    t = threading.Thread(target=client)
    t.start()
    run_until(loop, lambda: ChrEvent.OPENED in opened, "connection")
    sent = 0
    view = memoryview(payload)

    def pump() -> None:
        nonlocal sent
        while sent < len(payload):
            n = fe.write(bytes(view[sent : sent + CHUNK]))
            if n == 0:
                fe.add_write_watch(pump)
                return
            sent += n

    start = time.perf_counter()
    pump()
    run_until(loop, lambda: sent >= len(payload), "output")
    t.join(TIMEOUT_S)
    elapsed = time.perf_counter() - start
    fe.disconnect()
    qemu_chr_delete("bench-out")
    intact = received[0] == len(payload) and digest.digest() == _sha(payload)
    return elapsed, intact


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def main(argv: list[str]) -> int:
    _import_runtime()
    import chardev
    from qemu_api import bql
    from system.main_loop import MainLoop

    megabytes = int(argv[0]) if argv else 64
    payload = make_payload(megabytes << 20)
    tmpdir = tempfile.mkdtemp(prefix="chrbench", dir="/tmp")
    loop = MainLoop()
    chardev.set_main_loop(loop)
    bql.bql_lock()
    ok = True
    try:
        print(f"socket chardev throughput, {megabytes} MiB each way (unix socket)")
        for name, fn in (("input ", bench_input), ("output", bench_output)):
            path = os.path.join(tmpdir, f"{name.strip()}.sock")
            elapsed, intact = fn(loop, path, payload)
            rate = len(payload) / elapsed
            status = "ok" if intact else "DATA LOST OR REORDERED"
            print(
                f"  {name}: {rate:14,.0f} bytes/s ({rate / 1e6:.1f} MB/s; "
                f"{len(payload)} bytes in {elapsed:.3f} s)  {status}"
            )
            ok = ok and intact
    finally:
        bql.bql_unlock()
        chardev.set_main_loop(None)
        loop.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
