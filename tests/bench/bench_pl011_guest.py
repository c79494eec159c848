#!/usr/bin/env python3
"""PL011 transmit throughput of a guest, with ``x-tx-fifo`` off and on.

The guest (tests/guest/aarch64/uart_tx.S) writes 64 KiB to UART0, polling
FR.TXFF before each byte, and times the loop with the virtual counter (which
follows host time). It runs on pyqemu's virt with the option off (every DR
write goes to the chardev at once, QEMU's way), with it on (the FIFO drains at
the programmed 1.5 Mbaud, so about 150 KB/s at most), and on QEMU 7.2 for
reference; the serial output goes to a file, checked afterwards. Figures:
bytes per second of guest time.

Usage: python tests/bench/bench_pl011_guest.py (with the build's test
environment; PYQEMU_GUEST_DIR names the built guests).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

GUESTS = Path(os.environ.get("PYQEMU_GUEST_DIR", "build/tests/guest"))
LAUNCHER = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build")) / "pyqemu-system-aarch64"
TICK_NS = 16  # 62.5 MHz
BYTES = 65536


def run(cmd: list[str], out: Path) -> tuple[float, bool]:
    """Run the guest; (bytes per second, output intact)."""
    subprocess.run(
        [*cmd, "-M", "virt", "-display", "none", "-serial", f"file:{out}"],
        capture_output=True,
        timeout=600,
        check=True,
    )
    text = out.read_bytes()
    expected = bytes(ord("A") + i % 26 for i in range(BYTES))
    intact = text.startswith(expected)
    ticks = [
        int(line.split(b"=")[1], 16)
        for line in text[BYTES:].splitlines()
        if line.startswith(b"ticks=")
    ]
    if not ticks:
        return 0.0, False
    return BYTES / (ticks[0] * TICK_NS * 1e-9), intact


def main() -> int:
    elf = GUESTS / "uart_tx.elf"
    ok = True
    print(f"pl011 guest transmit, {BYTES} bytes polling FR.TXFF")
    with tempfile.TemporaryDirectory(prefix="pl011guest") as tmp:
        cases = [
            ("pyqemu, x-tx-fifo=off", [str(LAUNCHER), "-kernel", str(elf)]),
            (
                "pyqemu, x-tx-fifo=on ",
                [
                    str(LAUNCHER),
                    "-kernel",
                    str(elf),
                    "-global",
                    "pl011.x-tx-fifo=on",
                ],
            ),
            (
                "QEMU 7.2 (no FIFO)   ",
                ["qemu-system-aarch64", "-cpu", "cortex-a57", "-kernel", str(elf)],
            ),
        ]
        for i, (label, cmd) in enumerate(cases):
            rate, intact = run(cmd, Path(tmp) / f"out{i}")
            status = "ok" if intact else "OUTPUT LOST OR REORDERED"
            print(f"  {label}: {rate:12,.0f} bytes/s  {status}")
            ok = ok and intact
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
