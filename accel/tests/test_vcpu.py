"""The vCPU thread: pause at an instruction boundary, kicks, WFI sleep, icount."""

from __future__ import annotations

import ctypes
import mmap
import time
from collections.abc import Callable

from accel.tcg.cpus import VCPU
from accel.tcg.engine import UnicornEngine
from accel.tcg.engine_api import EngineExit, ExitKind, Reg
from qemu_api.bql import bql_lock, bql_unlock
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    SCALE_NS,
    Timer,
    qemu_clock_get_ns,
)

BASE = 0x4000_0000
ADD_X0_1 = 0x91000400
B_BACK1 = 0x17FFFFFF
WFI = 0xD503207F
ADD_X1_1 = 0x91000421  # add x1, x1, #1
B_BACK2 = 0x17FFFFFE  # b .-8


_KEEP: list[object] = []


class FakeCPU:
    """The smallest TcgCPU: WFI halts until woken, no interrupts."""

    cpu_index = 0

    def __init__(self, engine: UnicornEngine) -> None:
        self.engine = engine
        self.halted = False
        self.work = False
        self.exits: list[ExitKind] = []

    def cpu_halted(self) -> bool:
        return self.halted

    def cpu_has_work(self) -> bool:
        return self.work

    def cpu_wake(self) -> None:
        self.halted = False

    def cpu_exec_enter(self) -> int:
        return self.engine.reg_read(Reg.PC)

    def cpu_exec_exit(self, ex: EngineExit) -> None:
        self.exits.append(ex.kind)
        if ex.kind is ExitKind.HALTED:
            self.halted = True


def make(*insns: int, **kw: object) -> tuple[VCPU, FakeCPU, mmap.mmap]:
    engine = UnicornEngine(
        "cortex-a57", lambda key: None, lambda k, v: False, frozenset()
    )
    ram = mmap.mmap(-1, 0x10000)
    buf = ctypes.c_char.from_buffer(ram)
    engine.map_ram(BASE, 0x10000, ctypes.addressof(buf), False)
    for i, insn in enumerate(insns):
        ram[4 * i : 4 * i + 4] = insn.to_bytes(4, "little")
    engine.reg_write(Reg.PC, BASE)
    cpu = FakeCPU(engine)
    running = [True]
    shift = kw.get("icount_shift")
    vcpu = VCPU(
        cpu,
        engine,
        lambda: running[0],
        icount_shift=shift if isinstance(shift, int) else None,
        icount_sleep=False,
    )
    _KEEP.append((buf, running))
    return vcpu, cpu, ram


def wait_for(pred: Callable[[], bool], timeout: float = 10) -> bool:
    """Wait with the BQL released (the vCPU needs it between slices)."""
    end = time.monotonic() + timeout
    bql_unlock()
    try:
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.005)
        return pred()
    finally:
        bql_lock()


def test_pause_stops_at_an_instruction_boundary_and_resume_goes_on() -> None:
    vcpu, cpu, _ = make(ADD_X0_1, B_BACK1)
    vcpu.start()
    try:
        assert wait_for(lambda: vcpu.slices > 0 or cpu.engine.reg_read(0) > 0)
        vcpu.pause()
        assert vcpu.stopped()
        x0 = cpu.engine.reg_read(0)
        pc = cpu.engine.reg_read(Reg.PC)
        assert pc in (BASE, BASE + 4)
        wait_for(lambda: False, 0.05)
        assert cpu.engine.reg_read(0) == x0  # nothing runs while paused
        vcpu.resume()
        assert wait_for(lambda: cpu.engine.reg_read(0) > x0)
    finally:
        vcpu.shutdown()


def test_wfi_sleeps_without_cpu_until_a_kick_with_work() -> None:
    vcpu, cpu, _ = make(WFI, ADD_X0_1, WFI)
    vcpu.start()
    try:
        assert wait_for(lambda: cpu.halted)
        slices = vcpu.slices
        t0 = time.process_time()
        wait_for(lambda: False, 0.3)
        assert vcpu.slices == slices  # asleep: no slices
        assert time.process_time() - t0 < 0.2
        cpu.work = True
        vcpu.kick()
        assert wait_for(lambda: cpu.engine.reg_read(0) == 1)
    finally:
        vcpu.shutdown()


def test_many_kicks_none_lost() -> None:
    # Each kick must end the running slice; a kick landing just before the
    # engine starts is repeated by the watchdog.
    vcpu, _, _ = make(ADD_X0_1, B_BACK1)
    vcpu.start()
    try:
        for _ in range(200):
            before = vcpu.iterations

            def moved(b: int = before) -> bool:
                return vcpu.iterations > b

            vcpu.kick()
            assert wait_for(moved, 5)
    finally:
        vcpu.shutdown()


def test_icount_moves_the_clock_by_executed_instructions() -> None:
    fired: list[int] = []
    timer = Timer(
        CLOCK_VIRTUAL, SCALE_NS, lambda: fired.append(qemu_clock_get_ns(CLOCK_VIRTUAL))
    )
    timer.mod_ns(10_000)
    vcpu, _, _ = make(ADD_X1_1, ADD_X0_1, B_BACK2, icount_shift=2)
    vcpu.start()
    try:
        assert wait_for(lambda: bool(fired))
        vcpu.pause()
        # 4 ns per instruction: the timer fired after exactly 2500 of them.
        assert fired == [10_000]
        assert vcpu.icount_ns() == qemu_clock_get_ns(CLOCK_VIRTUAL)
    finally:
        vcpu.shutdown()
