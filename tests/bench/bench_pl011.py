#!/usr/bin/env python3
"""PL011 throughput: bytes per second through the UART's data register.

Usage: python tests/bench/bench_pl011.py [KILOBYTES]

First the cost of single register accesses through ``AddressSpace.read`` and
``AddressSpace.write`` (the MMIO path of every guest access: dispatch, decode,
the register's own work, trace points off), in ns per access, best of several
runs: reads of FR, RIS, MIS, an ID register, ICR (write-only: a guest-error
line, logging off) and a reserved offset; writes of ILPR, IBRD, IMSC (which
updates the six IRQ lines), ICR, CR and RIS (read-only).

Then two figures, each moving KILOBYTES (default 256) through a ``pl011``
mapped at 0x09000000 in the system address space, as a guest's driver would:

  transmit: one 32-bit store to DR per byte through ``AddressSpace.write``,
            with a ``null`` chardev behind the UART (a byte store, as Linux's
            ``strb``, costs the same after the memory core widens it);
  receive:  a client thread writes into a ``socket`` chardev
            (``server=on,wait=off``) driven by a real main loop; the "guest"
            polls FR and reads DR while RXFE is clear, and runs the main loop
            while the FIFO is empty. The FIFO is on (16 entries), so the
            chardev delivers up to 16 bytes at a time and one more after each
            DR read (``accept_input``).

Then the transmit FIFO (``x-tx-fifo=on``, the line at 1.5 Mbaud: IBRD 1 with
virt's 24 MHz UARTCLK), in host time:

  transmit, x-tx-fifo: the "guest" writes DR while FR.TXFF is clear and moves
            the virtual clock by 16 character times when it is set; a
            ``null`` chardev behind (the cost of the FIFO, its per-character
            timer and the chardev write, against the direct path above);
  slow peer, off/on: 512 KiB to a ``socket`` chardev whose client reads 16 KiB
            every 10 ms (about 1.6 MB/s): with the option off the DR write
            waits in the chardev (``write_all``) while the socket is full,
            with it on the "machine" keeps running its main loop and moves
            virtual time while the guest sees TXFF. Figures: the transfer's
            rate, the time DR writes spent waiting (wall-clock time minus the
            thread's CPU time inside them: with the option off, the machine
            blocked on the chardev; a loaded host adds preemption to both)
            and the longest single DR write.

The received bytes are checked against what was sent; the exit status is
non-zero only if data was lost or reordered. The rates are figures, not
pass/fail: they depend on the machine and its load. It needs the build tree
(for the generated ``qemu_trace.pl011``): ``$PYQEMU_BUILD_ROOT`` or
``build/`` of the source tree.
"""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qemu_api.memory import AddressSpace
    from system.main_loop import MainLoop

BASE = 0x0900_0000
DR, FR, LCR_H, CR = 0x00, 0x18, 0x2C, 0x30
FR_RXFE = 0x10
TIMEOUT_S = 120.0


def _import_runtime() -> None:
    """Make the source and build trees importable when run as a script."""
    root = Path(__file__).resolve().parents[2]
    build = Path(os.environ.get("PYQEMU_BUILD_ROOT", root / "build"))
    sys.path[:0] = [str(root), str(build)]
    importlib.import_module("chardev")
    importlib.import_module("hw.char.pl011")


def make_payload(size: int) -> bytes:
    block = os.urandom(1 << 16)
    return (block * (size // len(block) + 1))[:size]


def new_uart(chardev_label: str, backend: str, options: dict[str, str]) -> None:
    """A reset PL011 at BASE with its FIFO and transmitter on."""
    from hw.char.pl011 import pl011_create
    from qemu_api.chardev import qemu_chr_new
    from qemu_api.memory import get_address_space_memory
    from qemu_api.qdev import device_cold_reset

    chr_ = qemu_chr_new(chardev_label, backend, options)
    uart = pl011_create(BASE, None, chr_)
    device_cold_reset(uart)
    mem = get_address_space_memory()
    mem.write(BASE + LCR_H, 0x70, 4)  # 8 bits, FIFOs on
    mem.write(BASE + CR, 0x301, 4)  # UARTEN, TXE, RXE


REGISTER_CASES: tuple[tuple[str, str, int], ...] = (
    ("read", "FR", 0x018),
    ("read", "RIS", 0x03C),
    ("read", "MIS", 0x040),
    ("read", "PeriphID0", 0xFE0),
    ("read", "ICR (write-only)", 0x044),
    ("read", "reserved 0x008", 0x008),
    ("write", "ILPR", 0x020),
    ("write", "IBRD", 0x024),
    ("write", "IMSC", 0x038),
    ("write", "ICR", 0x044),
    ("write", "CR", 0x030),
    ("write", "RIS (read-only)", 0x03C),
)
REGISTER_NUMBER = 20_000
REGISTER_REPEAT = 7


FR_TXFF = 0x20
FRAME_NS = 6667  # 8N1 at 1.5 Mbaud
SLOW_PEER_BYTES = 512 << 10


def new_fifo_uart(chardev_label: str, backend: str, options: dict[str, str]) -> None:
    """A reset PL011 at BASE with x-tx-fifo on, FIFOs on, the line at 1.5 Mbaud."""
    from hw.char.pl011 import PL011State
    from qemu_api.chardev import qemu_chr_new
    from qemu_api.memory import get_address_space_memory
    from qemu_api.qdev import device_cold_reset
    from qemu_api.sysbus import sysbus_realize

    dev = PL011State()
    dev.chardev = qemu_chr_new(chardev_label, backend, options)
    dev.property_set("x-tx-fifo", True)
    sysbus_realize(dev)
    dev.mmio_map(0, BASE)
    device_cold_reset(dev)
    mem = get_address_space_memory()
    mem.write(BASE + 0x24, 1, 4)  # IBRD
    mem.write(BASE + LCR_H, 0x70, 4)
    mem.write(BASE + CR, 0x301, 4)


def bench_transmit_fifo(mem: AddressSpace, payload: bytes) -> float:
    """DR writes while TXFF is clear, 16 character times when set; seconds."""
    from qemu_api.timer import clock_step

    write = mem.write
    read = mem.read
    addr = BASE + DR
    fr = BASE + FR
    start = time.perf_counter()
    for ch in payload:
        while read(fr, 4) & FR_TXFF:
            clock_step(16 * FRAME_NS)
        write(addr, ch, 4)
    clock_step(17 * FRAME_NS)
    return time.perf_counter() - start


SLOW_READER = """
import socket, sys, time
path, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
got = bytearray()
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.connect(path)
    s.settimeout(float(sys.argv[4]))
    while len(got) < size:
        part = s.recv(16 << 10)
        if not part:
            break
        got += part
        time.sleep(0.010)
open(out, "wb").write(got)
"""


def slow_reader(path: str, size: int, out: str) -> subprocess.Popen[bytes]:
    """Start a client of the socket chardev that reads 16 KiB every 10 ms.

    It runs in its own process, so that it shares no GIL with the machine,
    and saves what it got in ``out``.
    """
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_READER, path, str(size), out, str(TIMEOUT_S)]
    )


def bench_slow_peer(
    loop: MainLoop, path: str, payload: bytes, tx_fifo: bool
) -> tuple[float, float, float, bool]:
    """Transmit to a slow socket peer.

    Returns:
        The seconds the transfer took, the seconds DR writes spent off the
        CPU (waiting: with the option off, for the chardev), the longest DR
        write, and whether the peer got the payload.
    """
    from qemu_api.chardev import qemu_chr_find
    from qemu_api.memory import get_address_space_memory
    from qemu_api.timer import clock_step

    chr_ = qemu_chr_find("slow0")
    assert chr_ is not None
    out = path + ".out"
    reader = slow_reader(path, len(payload), out)
    deadline = time.perf_counter() + TIMEOUT_S
    while not chr_.be_open and time.perf_counter() < deadline:
        loop.wait(10_000_000)
    mem = get_address_space_memory()
    write = mem.write
    read = mem.read
    addr = BASE + DR
    fr = BASE + FR
    clock = time.perf_counter
    cpu = time.thread_time
    waiting = 0.0
    longest = 0.0
    start = clock()
    for ch in payload:
        if tx_fifo:
            while read(fr, 4) & FR_TXFF:
                # The machine runs on: its main loop serves the chardev's
                # watch, and virtual time moves.
                loop.wait(0)
                clock_step(16 * FRAME_NS)
                if clock() > deadline:
                    reader.kill()
                    reader.wait()
                    return clock() - start, waiting, longest, False
        t0 = clock()
        c0 = cpu()
        write(addr, ch, 4)
        spent = clock() - t0
        # Off-CPU time: the thread waited (for the chardev, or the host).
        waiting += spent - (cpu() - c0)
        longest = max(longest, spent)
    while reader.poll() is None and clock() < deadline:
        loop.wait(1_000_000)
        clock_step(16 * FRAME_NS)
    elapsed = clock() - start
    if reader.poll() is None:
        reader.kill()
        reader.wait()
        return elapsed, waiting, longest, False
    return elapsed, waiting, longest, Path(out).read_bytes() == payload


def bench_registers(mem: AddressSpace) -> dict[str, float]:
    """Time single register accesses through the address space (ns, best of runs)."""
    import timeit

    env: dict[str, object] = {"read": mem.read, "write": mem.write}
    stmts = {}
    for kind, label, offset in REGISTER_CASES:
        addr = BASE + offset
        if kind == "read":
            stmts[f"{kind} {label}"] = f"read({addr}, 4)"
        else:
            value = 0x301 if label == "CR" else 0
            stmts[f"{kind} {label}"] = f"write({addr}, {value}, 4)"
    stmts["loop"] = "pass"
    timers = {k: timeit.Timer(v, globals=env) for k, v in stmts.items()}
    best = dict.fromkeys(stmts, float("inf"))
    for _ in range(REGISTER_REPEAT):
        for key, timer in timers.items():
            best[key] = min(best[key], timer.timeit(REGISTER_NUMBER))
    loop = best.pop("loop")
    return {k: (v - loop) / REGISTER_NUMBER * 1e9 for k, v in best.items()}


def bench_transmit(mem: AddressSpace, payload: bytes) -> float:
    """Write every byte to DR; returns the seconds taken."""
    write = mem.write
    addr = BASE + DR
    start = time.perf_counter()
    for ch in payload:
        write(addr, ch, 4)
    return time.perf_counter() - start


def bench_receive(
    loop: MainLoop, mem: AddressSpace, path: str, payload: bytes
) -> tuple[float, bool]:
    """Client -> socket chardev -> PL011 FIFO -> DR reads; (seconds, intact)."""
    received = bytearray()
    read = mem.read

    def client() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(payload)
            # Stay connected until everything is read: closing the socket
            # would close the chardev.
            s.settimeout(TIMEOUT_S)
            s.recv(1)

    start = time.perf_counter()
    deadline = start + TIMEOUT_S
    t = threading.Thread(target=client, daemon=True)
    t.start()
    while len(received) < len(payload):
        if read(BASE + FR, 4) & FR_RXFE:
            if time.perf_counter() > deadline:
                break
            loop.wait(10_000_000)
            continue
        received.append(read(BASE + DR, 4) & 0xFF)
    elapsed = time.perf_counter() - start
    return elapsed, bytes(received) == payload


def main(argv: list[str]) -> int:
    _import_runtime()
    import chardev
    from qemu_api import bql
    from qemu_api.memory import get_address_space_memory
    from system.main_loop import MainLoop

    kilobytes = int(argv[0]) if argv else 256
    payload = make_payload(kilobytes << 10)
    tmpdir = tempfile.mkdtemp(prefix="pl011bench", dir="/tmp")
    loop = MainLoop()
    chardev.set_main_loop(loop)
    bql.bql_lock()
    ok = True
    try:
        print(f"pl011 throughput, {kilobytes} KiB each way")
        new_uart("null0", "null", {})
        mem = get_address_space_memory()
        figures = bench_registers(mem)
        print(
            f"  register accesses, ns each (best of {REGISTER_REPEAT} x "
            f"{REGISTER_NUMBER}, loop subtracted):"
        )
        for label, ns in figures.items():
            print(f"    {label:28s} {ns:8.1f}")
        print(f"    {'mean':28s} {sum(figures.values()) / len(figures):8.1f}")
        elapsed = bench_transmit(mem, payload)
        rate = len(payload) / elapsed
        print(
            f"  transmit (DR writes -> null chardev):       {rate:12,.0f} bytes/s "
            f"({1e9 / rate:,.0f} ns/byte)"
        )

        from qemu_api import memory, qom
        from qemu_api.chardev import qemu_chr_reset

        qom.object_tree_reset()
        qemu_chr_reset()
        memory.reset_system_memory()
        path = os.path.join(tmpdir, "serial.sock")
        new_uart("sock0", "socket", {"path": path, "server": "on", "wait": "off"})
        mem = get_address_space_memory()
        elapsed, intact = bench_receive(loop, mem, path, payload)
        rate = len(payload) / elapsed
        status = "ok" if intact else "DATA LOST OR REORDERED"
        print(
            f"  receive (socket chardev -> FR/DR reads):    {rate:12,.0f} bytes/s "
            f"({1e9 / rate:,.0f} ns/byte)  {status}"
        )
        ok = intact

        qom_reset()
        memory.reset_system_memory()
        new_fifo_uart("null1", "null", {})
        mem = get_address_space_memory()
        elapsed = bench_transmit_fifo(mem, payload)
        rate = len(payload) / elapsed
        print(
            f"  transmit, x-tx-fifo (null chardev):         {rate:12,.0f} bytes/s "
            f"({1e9 / rate:,.0f} ns/byte)"
        )

        slow = make_payload(SLOW_PEER_BYTES)
        for tx_fifo in (False, True):
            qom_reset()
            memory.reset_system_memory()
            path = os.path.join(tmpdir, f"slow{int(tx_fifo)}.sock")
            options = {"path": path, "server": "on", "wait": "off"}
            if tx_fifo:
                new_fifo_uart("slow0", "socket", options)
            else:
                new_uart("slow0", "socket", options)
            elapsed, waiting, longest, intact = bench_slow_peer(
                loop, path, slow, tx_fifo
            )
            status = "ok" if intact else "DATA LOST OR REORDERED"
            label = "on " if tx_fifo else "off"
            print(
                f"  slow peer, x-tx-fifo={label}: {len(slow) / elapsed:10,.0f} bytes/s;"
                f" DR writes waited {waiting:7.3f} s of {elapsed:7.3f} s,"
                f" longest {longest * 1e3:8.3f} ms  {status}"
            )
            ok = ok and intact
    finally:
        qom_reset()
        bql.bql_unlock()
        chardev.set_main_loop(None)
        loop.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    return 0 if ok else 1


def qom_reset() -> None:
    """Close the chardevs (their sockets) and drop the devices."""
    from qemu_api import qom
    from qemu_api.chardev import qemu_chr_reset

    qom.object_tree_reset()
    qemu_chr_reset()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
