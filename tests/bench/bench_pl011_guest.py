#!/usr/bin/env python3
"""PL011 transmit throughput of a guest, with ``x-tx-fifo`` off and on.

The guest (tests/guest/aarch64/uart_tx.S) writes BYTES bytes to UART0, polling
FR.TXFF before each one, as a polling driver (and Linux's earlycon) does, and
times the loop with the virtual counter, which follows host time. Figures:
bytes per second of guest time.

Two builds of the guest program two line rates (8N1, FIFOs on, virt's UARTCLK
of 24 MHz):

- ``uart_tx_115200.elf``: IBRD 13, FBRD 1, 115246 baud, the usual console
  rate: with the option on the line, not the CPU, is the limit, and the
  figure is given as a fraction of its ceiling (10 bits per character:
  11,525 bytes/s);
- ``uart_tx.elf``: IBRD 1, 1.5 Mbaud (150,000 bytes/s): the guest's register
  accesses are the limit.

Each runs on pyqemu's virt with the option off (every DR write goes to the
chardev at once, QEMU's way; the rate is ignored), with it on (the FIFO drains
at the programmed rate in virtual time), and on QEMU 7.2 for reference, with
the serial output in a file, checked afterwards.

Then the 115200-baud guest sends to a slow peer: a Unix socket whose client
(its own process) reads SLOW_CHUNK bytes every SLOW_INTERVAL_S seconds, slower
than the line. The figure is the time the machine spent blocked on the
chardev, measured by the chardev layer (``Chardev.write_all_wait_ns``, traced
by ``qemu_chr_write_all_wait``): with the option off the vCPU waits in the
DR write while the socket is full (QEMU's behaviour); with it on it must be
zero, the guest seeing TXFF instead while the machine runs on.

The exit status is non-zero if output was lost or reordered, or if the machine
blocked with the option on; the rates are figures, not pass/fail: they depend
on the machine and its load (a line at 115200 baud keeps a 16-character FIFO
busy only if the vCPU thread runs at least every 1.4 ms).

Usage: python tests/bench/bench_pl011_guest.py (with the build's test
environment; PYQEMU_GUEST_DIR names the built guests).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GUESTS = Path(os.environ.get("PYQEMU_GUEST_DIR", "build/tests/guest"))
LAUNCHER = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build")) / "pyqemu-system-aarch64"
QEMU = ["qemu-system-aarch64", "-cpu", "cortex-a57"]
TICK_NS = 16  # 62.5 MHz
UARTCLK_HZ = 24_000_000
FRAME_BITS = 10  # 8N1
SLOW_CHUNK = 64
SLOW_INTERVAL_S = 0.010  # 6,400 bytes/s: slower than 115200 baud
TIMEOUT_S = 600

# (guest, bytes it sends, IBRD, FBRD), as tests/guest/meson.build builds them.
GUEST_115200 = ("uart_tx_115200.elf", 16384, 13, 1)
GUEST_1M5 = ("uart_tx.elf", 65536, 1, 0)


def ceiling(ibrd: int, fbrd: int) -> float:
    """Characters per second of the line: UARTCLK / (16 * BAUDDIV) / 10 bits."""
    baud = UARTCLK_HZ * 4 / (64 * ibrd + fbrd)
    return baud / FRAME_BITS


def expected(size: int) -> bytes:
    return bytes(ord("A") + i % 26 for i in range(size))


def measure(text: bytes, size: int) -> tuple[float, bool]:
    """(bytes per second of guest time, output intact) from the guest's output."""
    intact = text.startswith(expected(size))
    found = re.search(rb"ticks=([0-9a-f]{16})\n", text[size:])
    if found is None:
        return 0.0, False
    return size / (int(found.group(1), 16) * TICK_NS * 1e-9), intact


def run_file(cmd: list[str], out: Path, size: int) -> tuple[float, bool]:
    subprocess.run(
        [*cmd, "-M", "virt", "-display", "none", "-serial", f"file:{out}"],
        capture_output=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    return measure(out.read_bytes(), size)


SLOW_READER = """
import socket, sys, time
path, out = sys.argv[1], sys.argv[2]
chunk, interval = int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + 60
while True:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        break
    except OSError:
        s.close()
        if time.monotonic() > deadline:
            raise
        time.sleep(0.01)
got = bytearray()
while True:
    part = s.recv(chunk)
    if not part:
        break
    got += part
    time.sleep(interval)
open(out, "wb").write(got)
"""


def run_slow_peer(
    cmd: list[str], tmp: Path, tag: str, size: int
) -> tuple[float, float, float, bool]:
    """Send to the slow peer.

    Returns:
        Bytes per second of guest time, the seconds the machine waited in
        blocking chardev writes, the run's host seconds, output intact.
    """
    sock = tmp / f"{tag}.sock"
    out = tmp / f"{tag}.out"
    log = tmp / f"{tag}.log"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_READER,
            str(sock),
            str(out),
            str(SLOW_CHUNK),
            str(SLOW_INTERVAL_S),
        ]
    )
    start = time.monotonic()
    try:
        subprocess.run(
            [
                *cmd,
                "-M",
                "virt",
                "-display",
                "none",
                "-chardev",
                f"socket,id=slow,path={sock},server=on,wait=on",
                "-serial",
                "chardev:slow",
                "-trace",
                "qemu_chr_write_all_wait",
                "-D",
                str(log),
            ],
            capture_output=True,
            timeout=TIMEOUT_S,
            check=True,
        )
        reader.wait(timeout=TIMEOUT_S)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    elapsed = time.monotonic() - start
    waited = 0
    for line in log.read_text().splitlines():
        found = re.search(r"qemu_chr_write_all_wait .*\((\d+) ns in all\)", line)
        if found:
            waited = int(found.group(1))
    rate, intact = measure(out.read_bytes() if out.exists() else b"", size)
    return rate, waited / 1e9, elapsed, intact


def main() -> int:
    ok = True
    print("pl011 guest transmit, polling FR.TXFF before each byte (8N1, FIFOs on)")
    with tempfile.TemporaryDirectory(prefix="pl011guest") as tmpdir:
        tmp = Path(tmpdir)
        for name, size, ibrd, fbrd in (GUEST_115200, GUEST_1M5):
            elf = str(GUESTS / name)
            top = ceiling(ibrd, fbrd)
            baud = top * FRAME_BITS
            print(
                f"  {name}: {size} bytes, IBRD {ibrd} FBRD {fbrd}: {baud:,.0f} baud,"
                f" ceiling {top:,.0f} bytes/s"
            )
            rates: dict[str, float] = {}
            for label, cmd in (
                ("off", [str(LAUNCHER), "-kernel", elf]),
                (
                    "on",
                    [str(LAUNCHER), "-kernel", elf, "-global", "pl011.x-tx-fifo=on"],
                ),
                ("qemu", [*QEMU, "-kernel", elf]),
            ):
                rate, intact = run_file(cmd, tmp / f"{name}.{label}", size)
                rates[label] = rate
                ok = ok and intact
                status = "ok" if intact else "OUTPUT LOST OR REORDERED"
                what = {
                    "off": "pyqemu, x-tx-fifo=off",
                    "on": "pyqemu, x-tx-fifo=on ",
                    "qemu": "QEMU 7.2 (no FIFO)   ",
                }[label]
                extra = f" ({rate / top:6.1%} of the ceiling)" if label == "on" else ""
                print(f"    {what}: {rate:12,.0f} bytes/s{extra}  {status}")
            if rates["off"]:
                print(f"    on/off: {rates['on'] / rates['off']:.2f}")

        name, size, ibrd, fbrd = GUEST_115200
        elf = str(GUESTS / name)
        print(
            f"  slow peer ({SLOW_CHUNK} bytes every {SLOW_INTERVAL_S * 1e3:.0f} ms,"
            f" {SLOW_CHUNK / SLOW_INTERVAL_S:,.0f} bytes/s), {name}:"
        )
        for label, extra_args in (
            ("off", []),
            ("on", ["-global", "pl011.x-tx-fifo=on"]),
        ):
            rate, waited, elapsed, intact = run_slow_peer(
                [str(LAUNCHER), "-kernel", elf, *extra_args], tmp, f"slow-{label}", size
            )
            status = "ok" if intact else "OUTPUT LOST OR REORDERED"
            print(
                f"    x-tx-fifo={label:3}: {rate:10,.0f} bytes/s; machine blocked on"
                f" the chardev {waited:7.3f} s of {elapsed:7.3f} s  {status}"
            )
            ok = ok and intact
            if label == "on" and waited > 0:
                print("    the machine blocked with x-tx-fifo=on")
                ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
