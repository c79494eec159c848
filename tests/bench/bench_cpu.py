"""The CPU's figures, measured in one run: compute, MMIO and idle.

Each figure is a ratio of times measured in this run, pyqemu's and QEMU 7.2's
(or a bare unicorn's) runs interleaved, ROUNDS of each, the best of each
kept: the machine's other load moves absolute times, and only slows a run.

- compute: a CPU-bound guest loop (tests/guest/aarch64/icount.S with 10M
  iterations a round); the guest times its rounds with the virtual counter,
  which follows host time, so start-up is left out on both sides. Figures:
  pyqemu's time per round / QEMU 7.2 TCG's (goal <= 1.3: no Python on the path
  while the guest computes), and / a bare unicorn running the same loop (what
  the engine itself costs: a call per translated block that QEMU does not
  make).
- MMIO: a guest loop of loads from the PL011's flag register (mmio.S). Figures:
  pyqemu's time per load / a bare unicorn MMIO hook that does nothing, running
  the same loop (goal <= 2), and / QEMU 7.2's time per load.
- idle: a guest that arms the virtual timer 10 s ahead and waits in WFI for
  its interrupt (idle.S); the host CPU seconds the process used from the
  guest's first line to the line it prints on waking (goal < 0.2 s), and
  QEMU 7.2's for the same guest.

Usage: python tests/bench/bench_cpu.py (from the source tree, with the build's
test environment; PYQEMU_GUEST_DIR names the built guests).
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import os
import subprocess
import sys
import time
from pathlib import Path

GUESTS = Path(os.environ.get("PYQEMU_GUEST_DIR", "build/tests/guest"))
QEMU = "qemu-system-aarch64"
LAUNCHER = Path(os.environ.get("PYQEMU_BUILD_ROOT", "build")) / "pyqemu-system-aarch64"
TICK_NS = 16  # 62.5 MHz
ROUNDS = 3
LOOP_ITERATIONS = 10_000_000  # bench_loop.elf's per round


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
    # The first round includes translation; the best of the others, as the
    # other figures keep the best run.
    return min(b - a for a, b in itertools.pairwise(ticks[1:])) * TICK_NS


def _bare_unicorn(code: bytes) -> tuple[object, object]:
    """A bare unicorn with *code* in 64 KiB of RAM at 0x40000000."""
    from unicorn import UC_ARCH_ARM64, UC_MODE_ARM, UC_PROT_ALL
    from unicorn.arm64_const import UC_CPU_ARM64_A57
    from unicorn.unicorn_py3.unicorn import Uc

    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(UC_CPU_ARM64_A57)
    ram = mmap.mmap(-1, 0x10000)
    buf = ctypes.c_char.from_buffer(ram)
    uc.mem_map_ptr(0x4000_0000, 0x10000, UC_PROT_ALL, ctypes.addressof(buf))
    ram[: len(code)] = code
    return uc, (ram, buf)


def _code(*insns: int) -> bytes:
    return b"".join(i.to_bytes(4, "little") for i in insns)


def bare_unicorn_round_ns() -> float:
    """Time for one round of bench_loop.elf's loop on a bare unicorn."""
    from unicorn.arm64_const import UC_ARM64_REG_X22
    from unicorn.unicorn_py3.unicorn import Uc

    uc, keep = _bare_unicorn(
        _code(
            0x9B1762B5,  # 1: madd x21, x21, x23, x24
            0xCA5576B5,  # eor x21, x21, x21, lsr #29
            0xF10006D6,  # subs x22, x22, #1
            0x54FFFFA1,  # b.ne 1b
            0xD503207F,  # wfi
        )
    )
    assert isinstance(uc, Uc)
    best = float("inf")
    for _ in range(2):  # the first run translates
        uc.reg_write(UC_ARM64_REG_X22, LOOP_ITERATIONS)
        start = time.perf_counter_ns()
        uc.emu_start(0x4000_0000, 0x4000_0010)
        best = min(best, time.perf_counter_ns() - start)
    del keep
    return best


def bare_unicorn_load_ns(loads: int) -> float:
    """Time per load of the same loop on unicorn with a do-nothing MMIO hook."""
    from unicorn.arm64_const import UC_ARM64_REG_X1, UC_ARM64_REG_X2
    from unicorn.unicorn_py3.unicorn import Uc

    uc, keep = _bare_unicorn(
        _code(
            0xB9401820,  # ldr w0, [x1, #0x18]
            0xF1000442,  # subs x2, x2, #1
            0x54FFFFC1,  # b.ne .-8
            0xD503207F,  # wfi
        )
    )
    assert isinstance(uc, Uc)
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
    del keep
    return elapsed / loads


def engine_path_load_ns(loads: int) -> float:
    """Best time per load through pyqemu's path to a device that returns a constant.

    The engine, the BQL, the virtual clock's sync with host time (as while a
    machine runs) and the address space: the path's own cost.
    """
    from accel.tcg.engine import UnicornEngine
    from accel.tcg.engine_api import Reg
    from accel.tcg.memory import EngineMemory
    from qemu_api.bql import bql_lend, bql_lock, bql_locked, bql_reclaim
    from qemu_api.memory import (
        MemoryRegion,
        MemoryRegionOps,
        OpsImpl,
        get_address_space_memory,
        get_system_memory,
    )
    from qemu_api.timer import (
        CLOCK_VIRTUAL,
        qemu_clock_get_ns,
        qemu_clock_sync_host_bql_held,
        virtual_clock_follow_host,
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
    memory = EngineMemory(
        engine, get_address_space_memory(), qemu_clock_sync_host_bql_held
    )
    memory.sync()
    virtual_clock_follow_host(time.monotonic_ns() - qemu_clock_get_ns(CLOCK_VIRTUAL))
    best = float("inf")
    for _ in range(ROUNDS):
        engine.reg_write(1, 0x0900_0000)
        engine.reg_write(2, loads)
        bql_lend()  # as the vCPU thread runs guest code
        start = time.perf_counter_ns()
        engine.run(0x4000_0000)
        elapsed = time.perf_counter_ns() - start
        bql_reclaim()
        assert engine.reg_read(Reg.PC) == 0x4000_0010
        best = min(best, elapsed)
    virtual_clock_follow_host(None)
    return best / loads


def idle_cpu_seconds(cmd: list[str]) -> tuple[float, float]:
    """Run the idle guest; return host CPU and wall seconds from line 1 to line 2."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(b"idle: waiting"), first
        cpu0, wall0 = _cpu_seconds(proc.pid), time.monotonic()
        last = proc.stdout.readline()
        cpu1, wall1 = _cpu_seconds(proc.pid), time.monotonic()
        assert last == b"woke at or after the deadline=0000000000000001\n", last
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return cpu1 - cpu0, wall1 - wall0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def engine_build() -> str:
    """Which unicorn library runs: the one configure built, or the wheel's."""
    import importlib.util

    spec = importlib.util.find_spec("unicorn")
    if spec is None or spec.origin is None:
        return "unicorn is not installed"
    stamp = Path(spec.origin).parent / "lib" / "pyqemu-engine.txt"
    if stamp.is_file():
        return stamp.read_text().splitlines()[1]
    return "unicorn's wheel as published (configure --disable-unicorn-build)"


def main() -> int:
    print(f"engine: {engine_build()}")
    loop = GUESTS / "bench_loop.elf"
    ours = theirs = bare_round = float("inf")
    for _ in range(ROUNDS):
        ours = min(ours, round_ns(pyqemu(loop)))
        theirs = min(theirs, round_ns(qemu(loop)))
        bare_round = min(bare_round, bare_unicorn_round_ns())
    print(
        f"compute: pyqemu {ours / 1e6:.1f} ms/round, QEMU 7.2 TCG "
        f"{theirs / 1e6:.1f} ms/round, bare unicorn {bare_round / 1e6:.1f} ms/round; "
        f"ratio to QEMU {ours / theirs:.2f} (goal <= 1.3), to the bare unicorn "
        f"{ours / bare_round:.2f}; bare unicorn / QEMU {bare_round / theirs:.2f}"
    )

    mmio = GUESTS / "mmio.elf"
    loads = 200_000
    ours_load = qemu_load = bare = float("inf")
    for _ in range(ROUNDS):
        ours_load = min(ours_load, values(pyqemu(mmio), "ticks")[0] * TICK_NS / loads)
        qemu_load = min(qemu_load, values(qemu(mmio), "ticks")[0] * TICK_NS / loads)
        bare = min(bare, bare_unicorn_load_ns(loads))
    print(
        f"mmio: pyqemu {ours_load:.0f} ns/load, bare unicorn hook {bare:.0f} "
        f"ns/load, QEMU 7.2 {qemu_load:.0f} ns/load; ratio to the bare hook "
        f"{ours_load / bare:.2f} (goal <= 2), to QEMU {ours_load / qemu_load:.1f}"
    )
    path = engine_path_load_ns(loads)
    print(
        f"mmio: pyqemu's own path (engine, BQL, clock sync, address space) to a "
        f"device that returns a constant {path:.0f} ns/load, ratio to the bare hook "
        f"{path / bare:.2f}; the rest of the PL011 figure is the PL011 model's read"
    )

    idle = GUESTS / "idle.elf"
    common = [
        "-M",
        "virt",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        str(idle),
    ]
    used, wall = idle_cpu_seconds([str(LAUNCHER), *common])
    qemu_used, qemu_wall = idle_cpu_seconds([QEMU, "-cpu", "cortex-a57", *common])
    print(
        f"idle: pyqemu used {used:.3f} host CPU seconds over {wall:.1f} s of the "
        f"guest waiting in WFI for its timer (goal < 0.2); QEMU 7.2 "
        f"{qemu_used:.3f} s over {qemu_wall:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
