"""The CPU's figures, measured in one run: compute, MMIO and idle.

- compute: a CPU-bound guest loop (tests/guest/aarch64/icount.S with 10M
  iterations a round); the guest times its rounds with the virtual counter,
  which follows host time. Figure: pyqemu's time per round / QEMU 7.2 TCG's
  (goal <= 1.3: no Python on the path while the guest computes).
- MMIO: a guest loop of loads from the PL011's flag register (mmio.S). Figures:
  pyqemu's time per load / a bare unicorn MMIO hook that does nothing, running
  the same loop (goal <= 2), and / QEMU 7.2's time per load.
- idle: a guest waiting in WFI for 10 s; the host CPU seconds the process used
  meanwhile (goal < 0.2 s).

Usage: python tests/bench/bench_cpu.py (from the source tree, with the build's
test environment; PYQEMU_GUEST_DIR names the built guests).
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GUESTS = Path(os.environ.get("PYQEMU_GUEST_DIR", "build/tests/guest"))
QEMU = "qemu-system-aarch64"
LAUNCHER = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build")) / "pyqemu-system-aarch64"
TICK_NS = 16  # 62.5 MHz


def pyqemu(elf: Path, *extra: str) -> str:
    proc = subprocess.run(
        [
            str(LAUNCHER),
            "-kernel",
            str(elf),
            "-M",
            "virt",
            "-nographic",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return proc.stdout


def qemu(elf: Path) -> str:
    proc = subprocess.run(
        [QEMU, "-M", "virt", "-cpu", "cortex-a57", "-nographic", "-kernel", str(elf)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return proc.stdout


def values(out: str, key: str) -> list[int]:
    return [
        int(line.split("=")[1], 16)
        for line in out.splitlines()
        if line.startswith(key + "=")
    ]


def round_ns(out: str) -> float:
    ticks = values(out, "cntvct")
    # The first round includes translation; the median of the others.
    return statistics.median(b - a for a, b in itertools.pairwise(ticks[1:])) * TICK_NS


def bare_unicorn_load_ns(loads: int) -> float:
    """Time per load of the same loop on unicorn with a do-nothing MMIO hook."""
    from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, UC_PROT_ALL
    from unicorn.arm64_const import UC_ARM64_REG_X1, UC_ARM64_REG_X2
    from unicorn.unicorn_py3.unicorn import Uc

    code = b"".join(
        i.to_bytes(4, "little")
        for i in (
            0xB9401820,  # ldr w0, [x1, #0x18]
            0xF1000442,  # subs x2, x2, #1
            0x54FFFFC1,  # b.ne .-8
            0xD503207F,  # wfi
        )
    )
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    ram = mmap.mmap(-1, 0x10000)
    buf = ctypes.c_char.from_buffer(ram)
    uc.mem_map_ptr(0x4000_0000, 0x10000, UC_PROT_ALL, ctypes.addressof(buf))
    ram[: len(code)] = code
    uc.mmio_map(
        0x0900_0000,
        0x1000,
        lambda u, o, s, d: 0,
        None,
        lambda u, o, s, v, d: None,
        None,
    )
    uc.reg_write(UC_ARM64_REG_X1, 0x0900_0000)
    uc.reg_write(UC_ARM64_REG_X2, loads)
    start = time.perf_counter_ns()
    uc.emu_start(0x4000_0000, 0x4000_000C)
    elapsed = time.perf_counter_ns() - start
    del buf
    return elapsed / loads


def engine_path_load_ns(loads: int) -> float:
    """Time per load through pyqemu's path to a device that returns a constant.

    The engine, the BQL and the address space: the path's own cost.
    """
    from accel.tcg.engine import UnicornEngine
    from accel.tcg.engine_api import Reg
    from accel.tcg.memory import EngineMemory
    from qemu_api.bql import bql_lock, bql_locked, bql_unlock
    from qemu_api.memory import (
        MemoryRegion,
        MemoryRegionOps,
        OpsImpl,
        get_address_space_memory,
        get_system_memory,
    )

    if not bql_locked():
        bql_lock()
    ops = MemoryRegionOps[object](
        read=lambda _o, _off, _size: 0,
        write=lambda _o, _off, _v, _size: None,
        impl=OpsImpl(min_access_size=4, max_access_size=4),
    )
    get_system_memory().add_subregion(
        0x0900_0000, MemoryRegion.io(None, "null", 0x1000, ops, object())
    )
    ram = MemoryRegion.ram(None, "ram", 0x10000)
    get_system_memory().add_subregion(0x4000_0000, ram)
    ram.get_ram_ptr()[:16] = b"".join(
        i.to_bytes(4, "little")
        for i in (
            0xB9401820,
            0xF1000442,
            0x54FFFFC1,
            0xD503207F,
        )
    )
    engine = UnicornEngine(
        "cortex-a57", lambda k: None, lambda k, v: False, frozenset()
    )
    memory = EngineMemory(engine, get_address_space_memory())
    memory.sync()
    engine.reg_write(1, 0x0900_0000)
    engine.reg_write(2, loads)
    bql_unlock()
    start = time.perf_counter_ns()
    engine.run(0x4000_0000)
    elapsed = time.perf_counter_ns() - start
    bql_lock()
    assert engine.reg_read(Reg.PC) == 0x4000_0010
    return elapsed / loads


def idle_cpu_seconds(seconds: float) -> float:
    proc = subprocess.Popen(
        [
            str(LAUNCHER),
            "-kernel",
            str(GUESTS / "idle.elf"),
            "-M",
            "virt",
            "-display",
            "none",
            "-serial",
            "null",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(3)  # start-up and translation
    before = _cpu_seconds(proc.pid)
    time.sleep(seconds)
    used = _cpu_seconds(proc.pid) - before
    proc.terminate()
    proc.wait(timeout=30)
    return used


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    loop = GUESTS / "bench_loop.elf"
    ours = round_ns(pyqemu(loop))
    theirs = round_ns(qemu(loop))
    print(
        f"compute: pyqemu {ours / 1e6:.1f} ms/round, QEMU 7.2 TCG "
        f"{theirs / 1e6:.1f} ms/round, ratio {ours / theirs:.2f} (goal <= 1.3)"
    )

    mmio = GUESTS / "mmio.elf"
    loads = 200_000
    ours_load = values(pyqemu(mmio), "ticks")[0] * TICK_NS / loads
    qemu_load = values(qemu(mmio), "ticks")[0] * TICK_NS / loads
    bare = min(bare_unicorn_load_ns(loads) for _ in range(3))
    print(
        f"mmio: pyqemu {ours_load:.0f} ns/load, bare unicorn hook {bare:.0f} "
        f"ns/load, QEMU 7.2 {qemu_load:.0f} ns/load; ratio to the bare hook "
        f"{ours_load / bare:.2f} (goal <= 2), to QEMU {ours_load / qemu_load:.1f}"
    )
    path = engine_path_load_ns(loads)
    print(
        f"mmio: pyqemu's own path (engine, BQL, address space) to a device that "
        f"returns a constant {path:.0f} ns/load, ratio to the bare hook "
        f"{path / bare:.2f}; the rest of the PL011 figure is the PL011 model's read"
    )

    used = idle_cpu_seconds(10)
    print(f"idle: {used:.3f} host CPU seconds over 10 s in WFI (goal < 0.2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
