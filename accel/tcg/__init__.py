"""The tcg accelerator: AArch64 vCPUs on the unicorn engine (QEMU's ``accel/tcg``).

``-accel tcg`` (the default without ``-qtest``) gives each CPU an engine
(:mod:`accel.tcg.engine`) and a thread (:mod:`accel.tcg.cpus`). Options:

- ``-icount shift=N[,sleep=on|off]``: the virtual clock follows executed
  instructions, 2**N ns each, instead of host time, so a guest without outside
  input runs the same way every time (QEMU's ``-icount``). ``shift=auto`` is
  refused with an error that says why.

The CPU model (:mod:`target.arm`) asks :meth:`TcgAccel.create_vcpu` for its
engine when it is realized; the machine's run state starts, pauses and resumes
the vCPU threads through the accelerator.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, final

from accel import AccelState
from accel.tcg.engine_api import Engine, SysregRead, SysregWrite
from qemu_api.bql import bql_lent_pair
from qemu_api.error import Error
from qemu_api.memory import AddressSpace, get_address_space_memory
from qemu_api.qom import override
from qemu_api.timer import CLOCK_VIRTUAL, qemu_clock_get_ns

if TYPE_CHECKING:
    # Imported where a vCPU is made: a start under -accel qtest (the CPU
    # model imports accel.tcg.engine_api) does not pay for the vCPU threads
    # and ctypes.
    from accel.tcg.cpus import VCPU, TcgCPU

__all__ = ["ICOUNT_MAX_SHIFT", "TcgAccel", "accel_factory", "cpu_models"]

ICOUNT_MAX_SHIFT: Final = 10
"""The largest ``-icount shift`` QEMU accepts (1 instruction = 1024 ns)."""


def cpu_models() -> tuple[str, ...]:
    """Return the ``-cpu`` names the engine provides."""
    return ("cortex-a57", "max")


@final
class TcgAccel(AccelState):
    """``-accel tcg``: CPUs that run guest code.

    Args:
        opts: ``icount-shift`` (a number 0-10) and ``icount-sleep`` (``on``/``off``).

    Raises:
        Error: a bad icount option.
    """

    name = "tcg"
    has_cpus = True

    def __init__(self, opts: dict[str, str]) -> None:
        if importlib.util.find_spec("unicorn") is None:
            raise Error(
                "the tcg accelerator needs the unicorn engine, which is not "
                f"installed for {sys.executable}",
                hint="Install the Python package pinned in subprojects/runtime.txt "
                "(unicorn==2.1.4), or run without a CPU with -accel qtest.\n",
            )
        self.icount_shift: int | None = None
        self.icount_sleep = True
        shift = opts.get("icount-shift")
        if shift is not None:
            if shift == "auto":
                raise Error(
                    "icount: shift=auto is not supported: it adapts the rate to host "
                    "speed, which pyqemu's engine cannot measure per instruction",
                    hint="Use a fixed shift=N (0 to 10); N=3 (8 ns per instruction) "
                    "is close to a fast host.\n",
                )
            if not shift.isdigit() or int(shift) > ICOUNT_MAX_SHIFT:
                raise Error(
                    f"icount: shift must be a number from 0 to {ICOUNT_MAX_SHIFT}, "
                    f"not '{shift}'"
                )
            self.icount_shift = int(shift)
        sleep = opts.get("icount-sleep")
        if sleep is not None:
            if sleep not in ("on", "off"):
                raise Error(f"icount: sleep must be on or off, not '{sleep}'")
            if self.icount_shift is None:
                raise Error("icount: sleep needs shift=N")
            self.icount_sleep = sleep == "on"
        self.vcpus: list[VCPU] = []
        self.can_run: Callable[[], bool] = lambda: False
        """Tells whether the machine runs (set by the runtime)."""
        self.on_error: Callable[[str, BaseException], None] | None = None
        """Receives failures of the CPU model (set by the runtime)."""
        self.host_clock_ns: Callable[[], int] | None = None
        """Where the virtual clock is now when it follows host time (runtime)."""
        self.before_access: Callable[[], None] | None = None
        """Runs with the BQL held before each device access of a vCPU created
        afterwards: the runtime brings the virtual clock up to date there."""
        self._space: AddressSpace | None = None

    def create_vcpu(
        self,
        cpu: TcgCPU,
        model: str,
        sysreg_read: SysregRead,
        sysreg_write: SysregWrite,
        hooked: frozenset[int],
    ) -> tuple[Engine, VCPU]:
        """Create *cpu*'s engine and thread (the thread starts at :meth:`setup_post`).

        Raises:
            Error: an unknown CPU model.
        """
        from accel.tcg.cpus import VCPU
        from accel.tcg.memory import EngineMemory

        if model not in cpu_models():
            raise Error(f"unable to find CPU model '{model}'")
        module = importlib.import_module("accel.tcg.engine")
        # The engine calls the model's system registers while guest code runs:
        # the vCPU thread has lent the BQL then (see accel.tcg.cpus).
        take, release = bql_lent_pair()

        def read(key: int) -> int | None:
            take()
            try:
                return sysreg_read(key)
            finally:
                release()

        def write(key: int, value: int) -> bool:
            take()
            try:
                return sysreg_write(key, value)
            finally:
                release()

        engine: Engine = module.UnicornEngine(model, read, write, hooked)
        space = get_address_space_memory()
        memory = EngineMemory(engine, space, self.before_access)
        vcpu = VCPU(
            cpu,
            engine,
            self._can_run_now,
            self.icount_shift,
            self.icount_sleep,
            self._report,
            memory,
        )
        space.add_topology_listener(lambda _space: vcpu.mark_memory_dirty())
        self.vcpus.append(vcpu)
        return engine, vcpu

    def _can_run_now(self) -> bool:
        return self.can_run()

    def _report(self, what: str, exc: BaseException) -> None:
        if self.on_error is None:
            raise exc
        self.on_error(what, exc)

    def clock_ns(self) -> int:
        """Return the virtual time now, as the CPU's counters read it."""
        if self.icount_shift is not None and self.vcpus:
            return self.vcpus[0].icount_ns()
        source = self.host_clock_ns
        if source is not None:
            return source()
        return qemu_clock_get_ns(CLOCK_VIRTUAL)

    @override
    def setup_post(self) -> None:
        """Start every vCPU thread; they run when the machine runs."""
        for vcpu in self.vcpus:
            vcpu.start()

    def pause_all(self) -> None:
        """Stop every vCPU at an instruction boundary and wait for them."""
        for vcpu in self.vcpus:
            vcpu.pause()

    def resume_all(self) -> None:
        """Let every vCPU run again."""
        for vcpu in self.vcpus:
            vcpu.resume()

    def kick_all(self) -> None:
        """Make every vCPU look at the run state again."""
        for vcpu in self.vcpus:
            vcpu.kick()

    @override
    def shutdown(self) -> None:
        """End every vCPU thread."""
        for vcpu in self.vcpus:
            vcpu.shutdown()

    @override
    def describe(self) -> str:
        """Return ``tcg`` and the icount setting."""
        if self.icount_shift is None:
            return "tcg"
        return f"tcg (icount shift={self.icount_shift})"


def accel_factory(opts: dict[str, str]) -> TcgAccel:
    """Create the tcg accelerator with *opts*."""
    return TcgAccel(opts)
