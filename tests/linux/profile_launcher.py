"""pyqemu-system-aarch64 with counters: where a Linux boot's host time goes.

Usage: profile_launcher.py REPORT [pyqemu options...]

Runs pyqemu in this process, as ``build/pyqemu-system-aarch64`` does, after
wrapping the few places a guest's time can go on the host, and writes REPORT
when the process ends (the guest powers off, or a signal ends it):

- the vCPU thread: time in the engine (guest code, with the device accesses
  and hooks it calls), asleep in WFI, and in the loop around them;
- guest MMIO per memory region: accesses and time in dispatch (BQL included);
- the generic timer's system registers: accesses and time;
- interrupts and exceptions the CPU model entered, by kind;
- expired timers run by the main loop: calls and time.

The benchmark (``bench_boot.py --profile``) boots the guest through it. It is a
measuring tool: it replaces functions of the emulator at run time and touches no
file of the tree.
"""

from __future__ import annotations

import atexit
import collections
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from accel.tcg import cpus as tcg_cpus
from accel.tcg import engine as tcg_engine
from accel.tcg.engine_api import EngineExit
from qemu_api import timer as qemu_timer
from qemu_api.memory import AddressSpace, get_address_space_memory
from target.arm import cpu as arm_cpu
from target.arm import helper as arm_helper

T0: Final = time.monotonic()
_lock = threading.Lock()
counts: collections.Counter[str] = collections.Counter()
seconds: dict[str, float] = collections.defaultdict(float)


def _add(key: str, dt: float) -> None:
    with _lock:
        counts[key] += 1
        seconds[key] += dt


def _region_name(space: AddressSpace, addr: int) -> str:
    for fr in space.flat_ranges():
        if fr.start <= addr < fr.start + fr.size:
            return str(fr.mr.name)
    return "unassigned"


def install() -> None:
    """Wrap the emulator's functions with counters."""
    names: dict[int, str] = {}
    map_mmio = tcg_engine.UnicornEngine.map_mmio

    def region(addr: int) -> str:
        page = addr & ~0xFFF
        name = names.get(page)
        if name is None:
            name = names[page] = _region_name(get_address_space_memory(), addr)
        return name

    def mapped(
        self: tcg_engine.UnicornEngine,
        addr: int,
        size: int,
        read: Callable[[int, int], int],
        write: Callable[[int, int, int], object],
        lock: Callable[[], object] | None = None,
        unlock: Callable[[], object] | None = None,
        before: Callable[[], object] | None = None,
    ) -> None:
        # The time of each access includes waiting for the BQL.
        take = lock or (lambda: None)
        release = unlock or (lambda: None)
        first = before or (lambda: None)

        def rd(a: int, width: int) -> int:
            t = time.perf_counter()
            take()
            try:
                first()
                return read(a, width)
            finally:
                release()
                _add("mmio " + region(a), time.perf_counter() - t)

        def wr(a: int, value: int, width: int) -> None:
            t = time.perf_counter()
            take()
            try:
                first()
                write(a, value, width)
            finally:
                release()
                _add("mmio " + region(a), time.perf_counter() - t)

        map_mmio(self, addr, size, rd, wr)

    tcg_engine.UnicornEngine.map_mmio = mapped  # type: ignore[method-assign]

    def timed(key: str, fn: Callable[..., object]) -> Callable[..., object]:
        def wrapper(*args: object, **kwargs: object) -> object:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                _add(key, time.perf_counter() - t)

        return wrapper

    engine_cls = tcg_engine.UnicornEngine
    engine_cls.run = timed("vcpu: in the engine", engine_cls.run)  # type: ignore[method-assign,assignment]
    vcpu_cls = tcg_cpus.VCPU
    vcpu_cls._idle = timed("vcpu: asleep (WFI)", vcpu_cls._idle)  # type: ignore[method-assign,assignment]
    cpu_cls = arm_cpu.ArmCPU
    cpu_cls._sysreg_read = timed("timer sysreg reads", cpu_cls._sysreg_read)  # type: ignore[method-assign,assignment]
    cpu_cls._sysreg_write = timed("timer sysreg writes", cpu_cls._sysreg_write)  # type: ignore[method-assign,assignment]
    cpu_cls.cpu_exec_exit = timed("vcpu: exits handled", cpu_cls.cpu_exec_exit)  # type: ignore[method-assign,assignment]
    do_interrupt = arm_helper.do_interrupt
    kinds = {0x000: "sync", 0x080: "IRQ", 0x100: "FIQ", 0x180: "SError"}

    def entered(engine: object, kind: int, return_pc: int, **kw: object) -> None:
        t = time.perf_counter()
        try:
            do_interrupt(engine, kind, return_pc, **kw)  # type: ignore[arg-type]
        finally:
            _add(f"entered {kinds.get(kind, hex(kind))}", time.perf_counter() - t)

    # target.arm.cpu calls the name it imported from target.arm.helper.
    vars(arm_cpu)["do_interrupt"] = entered
    exception = cpu_cls._exception

    def exc(self: arm_cpu.ArmCPU, engine: object, ex: EngineExit) -> None:
        with _lock:
            counts[f"exception EXCP {ex.intno}"] += 1
        exception(self, engine, ex)  # type: ignore[arg-type]

    cpu_cls._exception = exc  # type: ignore[method-assign]
    qemu_timer.qemu_clock_run_timers = timed(  # type: ignore[assignment]
        "main loop: run timers", qemu_timer.qemu_clock_run_timers
    )


def report(path: Path) -> None:
    """Write what the counters saw."""
    with _lock:
        items = sorted(counts.items(), key=lambda kv: -seconds[kv[0]])
        lines = [f"profile over {time.monotonic() - T0:.2f} s of host time"]
        for key, n in items:
            lines.append(f"  {key:<36} {n:>9} calls {seconds[key]:9.3f} s")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> int:
    out = Path(argv[1])
    install()
    atexit.register(report, out)

    def on_signal(signum: int, _frame: object) -> None:
        report(out)
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    from system.main import launch

    return launch("aarch64", ["pyqemu-system-aarch64", *argv[2:]])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
