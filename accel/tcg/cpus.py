"""The vCPU thread: run slices, stop on events, sleep in WFI, kick, pause.

This is QEMU's ``accel/tcg/tcg-accel-ops.c``/``tcg-accel-ops-mttcg.c`` and the
pause/resume half of ``system/cpus.c``, for one engine per vCPU thread.

The thread holds the BQL except while guest code runs (:meth:`Engine.run` drops
the GIL too; the BQL is lent with :func:`~qemu_api.bql.bql_lend`, and the
engine's device callbacks take it back for each access) and while it waits. A
slice of guest code ends when something needs the emulator:

- a **kick** (:meth:`VCPU.kick`): an interrupt line of the CPU changed, the
  machine is being stopped, reset or shut down, or the memory map changed. The
  kick stops the engine from any thread; a kick that lands in the instant
  before the engine starts is repeated every millisecond by the thread's kick
  watchdog until the slice ends, so none is lost;
- the guest executed WFI: the thread sleeps (holding nothing) until the next
  kick, so an idle guest costs no host CPU; with ``-icount`` it moves the
  virtual clock to the next timer deadline instead (QEMU's icount warp);
- a synchronous exception or a faulting access: the CPU model handles it (the
  BQL held) and the thread goes on;
- with ``-icount``, the instruction budget up to the next virtual-clock
  deadline ran out: the clock advances by the instructions executed and the
  timers due run in this thread, so two runs of the same guest repeat.

Pausing (``stop``, migration, ``system_reset``) waits until the vCPU is outside
the engine, at an instruction boundary, as QEMU's ``pause_all_vcpus`` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, Protocol, final

from accel.tcg.engine_api import Engine, EngineExit, ExitKind
from accel.tcg.memory import EngineMemory
from qemu_api.bql import bql_lend, bql_lock, bql_locked, bql_reclaim, bql_unlock
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    clock_set,
    qemu_clock_deadline_ns,
    qemu_clock_get_ns,
)

__all__ = ["ICOUNT_MAX_SLICE", "VCPU", "TcgCPU"]

ICOUNT_MAX_SLICE: Final = 1 << 22
"""The most instructions one ``-icount`` slice runs without a deadline."""

_KICK_RETRY_S: Final = 0.001


class TcgCPU(Protocol):
    """What the vCPU loop calls on a CPU model (QEMU's ``TCGCPUOps``)."""

    @property
    def cpu_index(self) -> int:
        """The CPU's index (QEMU's ``cpu->cpu_index``)."""
        ...

    def cpu_halted(self) -> bool:
        """Return True while the CPU waits in WFI."""
        ...

    def cpu_has_work(self) -> bool:
        """Return True if an interrupt would wake the CPU from WFI."""
        ...

    def cpu_wake(self) -> None:
        """Leave the WFI state."""
        ...

    def cpu_exec_enter(self) -> int:
        """Take pending interrupts that are unmasked; return the PC to run from."""
        ...

    def cpu_exec_exit(self, ex: EngineExit) -> None:
        """Handle the end of a slice (WFI, exceptions, faults), BQL held."""
        ...


@final
class VCPU:
    """One vCPU thread around one engine.

    Args:
        cpu: the CPU model.
        engine: its engine.
        can_run: tells whether the machine runs (``runstate_is_running``).
        icount_shift: ``-icount shift=N`` (ns per instruction = 2**N), or None.
        icount_sleep: with icount, wait in real time while the CPU is idle.
        on_error: receives a description and the exception of a failure
            in the CPU model (the machine then stops in ``internal-error``).
        memory: the engine's memory map, synchronized before each slice
            after the address space changed.
    """

    def __init__(
        self,
        cpu: TcgCPU,
        engine: Engine,
        can_run: Callable[[], bool],
        icount_shift: int | None = None,
        icount_sleep: bool = True,
        on_error: Callable[[str, BaseException], None] | None = None,
        memory: EngineMemory | None = None,
    ) -> None:
        self.cpu = cpu
        self.engine = engine
        self._can_run = can_run
        self.icount_shift = icount_shift
        self.icount_sleep = icount_sleep
        self._on_error = on_error
        self.memory = memory
        self._count_base = 0
        self._counting = False
        self._cond = threading.Condition(threading.Lock())
        # All below are guarded by _cond.
        self._kick = False
        self._in_engine = False
        self._stop = False
        self._stopped = True
        self._exit = False
        self.memory_dirty = True
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self.icount = 0
        """Instructions executed under ``-icount`` (QEMU's ``icount``)."""
        self._icount_base_ns = 0
        self.slices = 0
        """Slices run so far (for tests and statistics)."""
        self.iterations = 0
        """Turns of the loop so far: each kick makes at least one."""
        if icount_shift is not None:
            engine.count_blocks(True)

    # -- control, from any thread ------------------------------------------

    def start(self) -> None:
        """Start the thread (it waits until the machine runs)."""
        if self._thread is not None:
            return
        self._icount_base_ns = qemu_clock_get_ns(CLOCK_VIRTUAL)
        self.icount = 0
        self._thread = threading.Thread(
            target=self._run, name=f"CPU {self.cpu.cpu_index}/TCG", daemon=True
        )
        self._watchdog = threading.Thread(
            target=self._kick_watchdog,
            name=f"CPU {self.cpu.cpu_index} kick",
            daemon=True,
        )
        self._watchdog.start()
        self._thread.start()

    def native_id(self) -> int:
        """Return the host thread id of the vCPU thread (0 before it starts)."""
        thread = self._thread
        return thread.native_id or 0 if thread is not None else 0

    def is_self(self) -> bool:
        """Return True when called from this vCPU's thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def kick(self) -> None:
        """Make the vCPU leave the engine and look at its state (``qemu_cpu_kick``)."""
        with self._cond:
            self._kick = True
            in_engine = self._in_engine
            self._cond.notify_all()
        # Never call into the engine with the lock held: the vCPU thread may
        # be waiting for it inside an engine callback.
        if in_engine:
            self.engine.stop()

    def mark_memory_dirty(self) -> None:
        """The address space changed: remap before the next slice."""
        with self._cond:
            self.memory_dirty = True
        self.kick()

    def pause(self) -> None:
        """Stop the vCPU at an instruction boundary and wait for it (BQL held).

        From the vCPU's own thread it only asks: the loop stops before the
        next slice (QEMU's ``cpu_stop_current``).
        """
        with self._cond:
            self._stop = True
        self.kick()
        if self._thread is None or self.is_self():
            return
        self._wait(lambda: self._stopped or self._exit)

    def resume(self) -> None:
        """Let a paused vCPU run again (QEMU's ``resume_all_vcpus``)."""
        with self._cond:
            self._stop = False
        self.kick()

    def shutdown(self) -> None:
        """End the thread and wait for it (BQL held or not)."""
        with self._cond:
            self._exit = True
        self.kick()
        thread = self._thread
        if thread is None or self.is_self():
            return
        held = bql_locked()
        if held:
            bql_unlock()
        try:
            thread.join(timeout=10)
            if self._watchdog is not None:
                self._watchdog.join(timeout=10)
        finally:
            if held:
                bql_lock()
        self._thread = None

    def stopped(self) -> bool:
        """Return True while the vCPU is paused (or not started)."""
        with self._cond:
            return self._stopped

    def _wait(
        self, predicate: Callable[[], bool], timeout: float | None = None
    ) -> bool:
        """Wait for *predicate* (checked under the lock) with the BQL released."""
        held = bql_locked()
        if held:
            bql_unlock()
        try:
            with self._cond:
                return self._cond.wait_for(predicate, timeout)
        finally:
            if held:
                bql_lock()

    def _kick_watchdog(self) -> None:
        while True:
            with self._cond:
                while not self._exit and not (self._kick and self._in_engine):
                    self._cond.wait()
                if self._exit:
                    return
            self.engine.stop()
            time.sleep(_KICK_RETRY_S)

    # -- the thread ---------------------------------------------------------

    def _run(self) -> None:
        bql_lock()
        try:
            while self._loop_once():
                pass
        finally:
            with self._cond:
                self._stopped = True
                self._cond.notify_all()
            bql_unlock()

    def _loop_once(self) -> bool:
        """One turn of the loop, BQL held; return False to end the thread."""
        with self._cond:
            self._kick = False
            self.iterations += 1
            if self._exit:
                return False
            stop = self._stop or not self._can_run()
            if stop != self._stopped:
                self._stopped = stop
                self._cond.notify_all()
        if stop:
            self._wait(lambda: self._kick or self._exit)
            return True
        cpu = self.cpu
        try:
            if self.memory_dirty:
                with self._cond:
                    self.memory_dirty = False
                if self.memory is not None:
                    self.memory.sync()
            if cpu.cpu_halted():
                if cpu.cpu_has_work():
                    cpu.cpu_wake()
                else:
                    self._idle()
                    return True
            pc = cpu.cpu_exec_enter()
            if cpu.cpu_halted():
                return True
            budget = self._icount_budget()
        except Exception as exc:  # a bug in the model: stop the machine
            self._fail("the CPU", exc)
            return True
        with self._cond:
            if self._kick or self._exit:
                return True
            self._in_engine = True
        # The engine's device callbacks take the BQL back for each access.
        bql_lend()
        try:
            ex = self.engine.run(pc, budget)
        except Exception as exc:
            bql_reclaim()
            with self._cond:
                self._in_engine = False
            self._fail("a device access from the CPU", exc)
            return True
        bql_reclaim()
        with self._cond:
            self._in_engine = False
            self._cond.notify_all()
        self.slices += 1
        try:
            if self.icount_shift is not None:
                self._icount_advance()
            if ex.kind is not ExitKind.STOPPED:
                cpu.cpu_exec_exit(ex)
        except Exception as exc:
            self._fail("the CPU", exc)
        return True

    def _fail(self, what: str, exc: BaseException) -> None:
        with self._cond:
            self._stop = True
        if self._on_error is not None:
            self._on_error(what, exc)
        else:
            raise exc

    # -- time ---------------------------------------------------------------

    def icount_ns(self) -> int:
        """Return the virtual time the executed instructions stand for."""
        shift = self.icount_shift or 0
        executed = self.icount + (
            self.engine.block_count - self._count_base if self._counting else 0
        )
        return self._icount_base_ns + (executed << shift)

    def _icount_budget(self) -> int:
        shift = self.icount_shift
        if shift is None:
            return 0
        self._count_base = self.engine.block_count
        self._counting = True
        deadline = qemu_clock_deadline_ns(CLOCK_VIRTUAL)
        if deadline < 0:
            return ICOUNT_MAX_SLICE
        # Instructions until the deadline, at least one.
        return max(1, min(ICOUNT_MAX_SLICE, -(-deadline >> shift)))

    def _icount_advance(self) -> None:
        executed = self.engine.block_count - self._count_base
        self._counting = False
        self.icount += executed
        now = self.icount_ns()
        if now > qemu_clock_get_ns(CLOCK_VIRTUAL):
            clock_set(now)

    def _idle(self) -> None:
        """WFI with nothing pending: sleep until a kick (icount: warp the clock)."""
        if self.icount_shift is None:
            self._wait(lambda: self._kick or self._exit)
            return
        deadline = qemu_clock_deadline_ns(CLOCK_VIRTUAL)
        if deadline < 0:
            self._wait(lambda: self._kick or self._exit)
            return
        if self.icount_sleep and deadline > 0:
            start = time.monotonic_ns()
            if self._wait(lambda: self._kick or self._exit, deadline / 1e9):
                # Woken early (input from outside): warp by the time slept.
                deadline = min(deadline, time.monotonic_ns() - start)
        # The idle time counts as instructions so that later slices keep the
        # clock and the instruction count in step.
        shift = self.icount_shift
        warp = -(-deadline >> shift)
        self.icount += warp
        target = self.icount_ns()
        if target > qemu_clock_get_ns(CLOCK_VIRTUAL):
            clock_set(target)
