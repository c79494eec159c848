"""What the CPU model and the vCPU loop see of the engine (no unicorn here).

:mod:`accel.tcg.engine` implements :class:`Engine` on unicorn; the CPU model
(:mod:`target.arm`) is written against this module only, so importing it does
not load the engine.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol, final

__all__ = [
    "MMIO_READ",
    "MMIO_WRITE",
    "Access",
    "BlockWatcher",
    "Engine",
    "EngineExit",
    "ExitKind",
    "Reg",
    "SysregRead",
    "SysregWrite",
    "sysreg_key",
]

MMIO_READ = Callable[[int, int], int]
"""An I/O read: ``read(address, size) -> value``."""
MMIO_WRITE = Callable[[int, int, int], object]
"""An I/O write: ``write(address, value, size)`` (its result is ignored)."""


class Reg(enum.IntEnum):
    """Registers read and written by number (X0-X30 are 0-30)."""

    SP = 31
    PC = 32
    PSTATE = 33
    SP_EL0 = 34
    SP_EL1 = 35
    SP_EL2 = 36
    ELR_EL1 = 37
    FPCR = 38
    FPSR = 39


def sysreg_key(op0: int, op1: int, crn: int, crm: int, op2: int) -> int:
    """Return the 16-bit key of a system register (the MRS/MSR encoding fields).

    >>> hex(sysreg_key(3, 3, 14, 0, 2))  # CNTVCT_EL0
    '0xdf02'
    """
    return op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2


class ExitKind(enum.Enum):
    """Why :meth:`Engine.run` returned."""

    STOPPED = "stopped"
    """:meth:`Engine.stop` was called, or the instruction budget ran out."""
    HALTED = "halted"
    """The guest executed WFI; PC is past it."""
    EXCEPTION = "exception"
    """A synchronous exception (``intno`` says which, QEMU's ``EXCP_*``)."""
    MEM_FAULT = "mem-fault"
    """An access to an address with nothing mapped, or a write to ROM."""
    ERROR = "error"
    """The engine failed (``message`` says why)."""


class Access(enum.Enum):
    """The kind of a faulting access."""

    READ = "read"
    WRITE = "write"
    FETCH = "fetch"


@final
class EngineExit:
    """The result of one :meth:`Engine.run` (one preallocated object per engine)."""

    __slots__ = (
        "access",
        "address",
        "intno",
        "kind",
        "message",
        "pc",
        "rom",
        "size",
        "syndrome",
        "vaddress",
    )

    def __init__(self) -> None:
        self.kind = ExitKind.STOPPED
        self.intno = -1
        self.pc = 0
        """For a faulting access: the address of the instruction."""
        self.address = 0
        self.size = 0
        self.access = Access.READ
        self.rom = False
        self.message = ""
        self.syndrome = 0
        """For an exception: the syndrome the engine computed (QEMU's
        ``env->exception.syndrome``, what ``ESR_ELx`` gets)."""
        self.vaddress = 0
        """For an abort: the faulting virtual address (``env->exception.vaddress``,
        what ``FAR_ELx`` gets)."""


BlockWatcher = Callable[[int], bool]
"""``watcher(address)``: True to end the run before the block at *address*."""
SysregRead = Callable[[int], int | None]
"""``read(key)``: the value of an MRS, or None to let the engine answer."""
SysregWrite = Callable[[int, int], bool]
"""``write(key, value)``: handle an MSR (True) or let the engine do it (False)."""


class Engine(Protocol):
    """One vCPU's engine, as :class:`accel.tcg.engine.UnicornEngine` implements it."""

    block_count: int

    def reg_read(self, reg: int) -> int:
        """Return X0-X30 (0-30) or a :class:`Reg`."""
        ...

    def reg_write(self, reg: int, value: int) -> None:
        """Write X0-X30 (0-30) or a :class:`Reg`."""
        ...

    def vreg_read(self, n: int) -> int:
        """Return SIMD/FP register Vn (128 bits)."""
        ...

    def vreg_write(self, n: int, value: int) -> None:
        """Write SIMD/FP register Vn (128 bits)."""
        ...

    def sysreg_read(self, key: int) -> int:
        """Return the engine's value of system register *key*."""
        ...

    def sysreg_write(self, key: int, value: int) -> None:
        """Write the engine's system register *key*."""
        ...

    def read_insn(self, addr: int) -> int | None:
        """Return the instruction word at *addr*, or None."""
        ...

    def map_ram(self, addr: int, size: int, ptr: int, readonly: bool) -> None:
        """Map host memory at *ptr* as guest RAM or ROM."""
        ...

    def map_mmio(
        self,
        addr: int,
        size: int,
        read: MMIO_READ,
        write: MMIO_WRITE,
        lock: Callable[[], object] | None = None,
        unlock: Callable[[], object] | None = None,
        before: Callable[[], object] | None = None,
    ) -> None:
        """Send accesses to a range to *read*/*write*, inside *lock*/*unlock*.

        *before*, when given, runs before each access with the lock held.
        """
        ...

    def unmap(self, addr: int, size: int) -> None:
        """Remove the mapping at *addr*."""
        ...

    def count_blocks(self, enabled: bool) -> None:
        """Count executed instructions in :attr:`block_count`."""
        ...

    def watch_blocks(self, watcher: BlockWatcher | None) -> None:
        """Call *watcher* before each block; True ends the run there."""
        ...

    def run(self, pc: int, count: int = 0) -> EngineExit:
        """Run from *pc* until an event."""
        ...

    def stop(self) -> None:
        """End the current run (any thread)."""
        ...
