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
