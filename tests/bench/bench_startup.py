"""Benchmark: launcher start to qtest-ready, with and without modules, vs QEMU 7.2.

Starts ``-M virt -nodefaults`` with ``-qtest`` through tests/qtest/libqtest.py
(which waits for the first reply) several times each for: QEMU 7.2
(``qemu-system-aarch64``), this build's launcher, and the same build in
``--enable-modules`` mode (tests/qtest/modules_launcher.py), in the same run,
interleaved. Prints the median milliseconds of each and pyqemu's ratio to
QEMU's (goal: at most 3), and for reference the interpreter's own start to
exit (``python -c pass``: what any Python launcher pays before its first
import).

Usage: bench_startup.py [--starts N]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.qtest.libqtest import QTestState, qemu_binary
from tests.qtest.modules_launcher import modules_launcher

GOAL_RATIO = 3.0


def cpu_ms(pid: int) -> float:
    """The CPU time of every thread of *pid* so far (Linux schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e6


def start_ms(binary: Path, accel: str | None) -> tuple[float, float]:
    """Wall and CPU milliseconds from the start to the first qtest reply."""
    t0 = time.perf_counter()
    qts = QTestState(["-M", "virt", "-nodefaults"], binary=binary, accel=accel)
    elapsed = (time.perf_counter() - t0) * 1000
    cpu = cpu_ms(qts.pid)
    qts.quit()
    return elapsed, cpu


def python_ms() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - t0) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=7)
    args = parser.parse_args()
    qemu = shutil.which("qemu-system-aarch64")
    if qemu is None:
        print("qemu-system-aarch64 not found: apt-get install qemu-system-arm")
        return 1
    with tempfile.TemporaryDirectory(prefix="pyqemu-bench-") as tmp:
        runs = {
            # -qtest selects QEMU's qtest accelerator by itself
            "QEMU 7.2": (Path(qemu), None),
            "pyqemu": (qemu_binary(), "qtest"),
            "pyqemu --enable-modules": (modules_launcher(Path(tmp)), "qtest"),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpus: dict[str, list[float]] = {name: [] for name in runs}
        for binary, accel in runs.values():
            start_ms(binary, accel)  # warm the caches (pyc, page cache)
        interpreter: list[float] = []
        for _ in range(args.starts):
            for name, (binary, accel) in runs.items():
                wall, cpu = start_ms(binary, accel)
                times[name].append(wall)
                cpus[name].append(cpu)
            interpreter.append(python_ms())
    qemu_ms = statistics.median(times["QEMU 7.2"])
    qemu_cpu = statistics.median(cpus["QEMU 7.2"])
    print(
        f"start to qtest-ready, median of {args.starts} (-M virt -nodefaults),"
        " wall clock and the process's CPU time:"
    )
    for name, values in times.items():
        med = statistics.median(values)
        cpu = statistics.median(cpus[name])
        ratio = (
            f"  {med / qemu_ms:4.1f}x QEMU (CPU {cpu / qemu_cpu:4.1f}x)"
            if name != "QEMU 7.2"
            else ""
        )
        print(f"  {name:<24} {med:8.1f} ms  CPU {cpu:7.1f} ms{ratio}")
    py_ms = statistics.median(interpreter)
    print(f"  {'(python -c pass)':<24} {py_ms:8.1f} ms  {py_ms / qemu_ms:4.1f}x QEMU")
    best = min(statistics.median(v) for n, v in times.items() if n != "QEMU 7.2")
    verdict = "meets" if best / qemu_ms <= GOAL_RATIO else "misses"
    print(f"  best pyqemu start {verdict} the goal (<= {GOAL_RATIO:.0f}x QEMU 7.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
