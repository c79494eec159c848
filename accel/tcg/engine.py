"""The AArch64 execution engine: unicorn behind a small typed interface.

This is the one module that imports unicorn (QEMU's TCG itself, as far as
pyqemu is concerned). It gives the vCPU loop (:mod:`accel.tcg.cpus`) and the CPU
model (:mod:`target.arm`) what they need and nothing else:

- registers: the general registers, PC, PSTATE, the banked stack pointers and any
  system register by its encoding (:meth:`UnicornEngine.sysreg_read`);
- guest memory: RAM mapped from a host buffer that the rest of the emulator owns
  (no copy), I/O ranges whose accesses call Python (:meth:`UnicornEngine.map_mmio`);
- running: :meth:`UnicornEngine.run` executes until something needs the emulator and
  says what (:class:`ExitKind`); :meth:`UnicornEngine.stop` ends a run from any thread;
- hooks into the CPU model: the generic-timer system registers (the engine's own
  counter follows host time, the model's follows the virtual clock) and
  exceptions, which the engine reports instead of taking (the model enters them,
  see :mod:`target.arm.helper`).

Facts about the engine this relies on (checked by the tests): a synchronous
exception (SVC, HVC, SMC, an undefined instruction, an MMU fault) stops the run
with PC at QEMU's preferred return address for that exception and is *not*
taken; an access to an unmapped address stops it at the faulting instruction
with nothing written back; WFI and WFE end the run with PC past them; ``run``
releases the GIL, so other threads run while guest code does.
"""

from __future__ import annotations

import ctypes
import mmap
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, final

from unicorn import (
    UC_ARCH_ARM64,
    UC_ERR_EXCEPTION,
    UC_ERR_FETCH_PROT,
    UC_ERR_FETCH_UNMAPPED,
    UC_ERR_OK,
    UC_ERR_READ_PROT,
    UC_ERR_READ_UNMAPPED,
    UC_ERR_WRITE_PROT,
    UC_ERR_WRITE_UNMAPPED,
    UC_HOOK_BLOCK,
    UC_HOOK_INSN,
    UC_HOOK_INTR,
    UC_HOOK_MEM_INVALID,
    UC_MEM_FETCH_PROT,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_WRITE_PROT,
    UC_MEM_WRITE_UNMAPPED,
    UC_MODE_ARM,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
)
from unicorn import arm64_const as a64
from unicorn.arm64_const import UC_CPU_ARM64_A57, UC_CPU_ARM64_MAX
from unicorn.unicorn_py3.unicorn import MMIO_READ_CFUNC as _MMIO_READ_CFUNC
from unicorn.unicorn_py3.unicorn import MMIO_WRITE_CFUNC as _MMIO_WRITE_CFUNC
from unicorn.unicorn_py3.unicorn import Uc, UcError
from unicorn.unicorn_py3.unicorn import uclib as _uclib

from accel.tcg.engine_api import (
    MMIO_READ,
    MMIO_WRITE,
    Access,
    BlockWatcher,
    EngineExit,
    ExitKind,
    Reg,
    SysregRead,
    SysregWrite,
)

__all__ = ["BLOCK_HOOK_LINGER_S", "CPU_MODELS", "UnicornEngine"]

CPU_MODELS: Final = {"cortex-a57": UC_CPU_ARM64_A57, "max": UC_CPU_ARM64_MAX}
"""The engine's CPU models by ``-cpu`` name."""

BLOCK_HOOK_LINGER_S: Final = 2.0
"""How long the native block hook stays in translated code after its last use."""

PAGE: Final = 0x1000
"""The granule the engine maps memory in (a multiple of its own 1 KiB pages)."""

_X_IDS: Final = (
    *range(a64.UC_ARM64_REG_X0, a64.UC_ARM64_REG_X0 + 29),
    a64.UC_ARM64_REG_X29,
    a64.UC_ARM64_REG_X30,
)
_REG_IDS: Final = (
    *_X_IDS,
    a64.UC_ARM64_REG_SP,
    a64.UC_ARM64_REG_PC,
    a64.UC_ARM64_REG_PSTATE,
    a64.UC_ARM64_REG_SP_EL0,
    a64.UC_ARM64_REG_SP_EL1,
    a64.UC_ARM64_REG_SP_EL2,
    a64.UC_ARM64_REG_ELR_EL1,
    a64.UC_ARM64_REG_FPCR,
    a64.UC_ARM64_REG_FPSR,
)
_XZR: Final = a64.UC_ARM64_REG_XZR
_CP_REG: Final = a64.UC_ARM64_REG_CP_REG
_uc_reg_read = _uclib.uc_reg_read
_uc_reg_write = _uclib.uc_reg_write
_TPIDR_EL0: Final = 3 << 14 | 3 << 11 | 13 << 7 | 0 << 3 | 2
_V_IDS: Final = tuple(range(a64.UC_ARM64_REG_Q0, a64.UC_ARM64_REG_Q0 + 32))


def _key_fields(key: int) -> tuple[int, int, int, int, int]:
    """Return ``(crn, crm, op0, op1, op2)``, the engine's order."""
    return (key >> 7 & 15, key >> 3 & 15, key >> 14 & 3, key >> 11 & 7, key & 7)


_WFI: Final = 0xD503207F
_ADDR_MAX: Final = (1 << 64) - 1


@final
class UnicornEngine:
    """One AArch64 vCPU's engine (implements :class:`~accel.tcg.engine_api.Engine`).

    Args:
        model: the ``-cpu`` name (a key of :data:`CPU_MODELS`).
        sysreg_read: called for every MRS of a hooked register.
        sysreg_write: called for every MSR of a hooked register.
        hooked: the sysreg keys the callbacks handle (others run natively).

    Raises:
        KeyError: an unknown model.
    """

    def __init__(
        self,
        model: str,
        sysreg_read: SysregRead,
        sysreg_write: SysregWrite,
        hooked: frozenset[int],
    ) -> None:
        self._uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
        self._uch = self._uc._uch
        self._uc.ctl_set_cpu_model(CPU_MODELS[model])
        _disable_exit_checks(self._uc)
        # No exit address: runs end only on events (emu_start's "until" is
        # ignored).
        self._uc.ctl_exits_enabled(True)
        self._uc.ctl_set_exits([])
        self._exit = EngineExit()
        self._insn_buf = ctypes.create_string_buffer(4)
        self._sysreg_read = sysreg_read
        self._sysreg_write = sysreg_write
        self._hooked = hooked
        self._maps: dict[int, tuple[int, bool]] = {}  # start -> (size, is_mmio)
        self._callbacks: dict[int, tuple[object, object]] = {}
        self._error: BaseException | None = None
        self._keep: list[object] = []
        self.block_count = 0
        """Instructions counted by the block hook (see :meth:`count_blocks`)."""
        self._block_start = 0
        self._block_size = 0
        self._block_hook: int | None = None
        self._counting = False
        self._watcher: BlockWatcher | None = None
        self._block_unwanted_since: float | None = None
        self._exception_state = _ExceptionState(self._uc)
        uc = self._uc
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        self._writable: dict[int, int] = {}  # writable RAM: start -> size
        self._invalid_hooks: list[int] = []
        self._update_invalid_hooks()
        self._native = _NativeHooks.install(self, hooked)
        if self._native is None:
            # Without the native filter every MRS/MSR calls Python.
            uc.hook_add(UC_HOOK_INSN, self._on_mrs, None, 1, 0, a64.UC_ARM64_INS_MRS)
            uc.hook_add(UC_HOOK_INSN, self._on_msr, None, 1, 0, a64.UC_ARM64_INS_MSR)

    # -- registers ------------------------------------------------------------

    # The binding's reg_read/reg_write cost several microseconds each (type
    # lookups, a ctypes object per call); the engine calls the C API directly
    # with a fresh ctypes buffer per call (calls from two threads never share
    # one: the GIL is released during the C call).

    def _get(self, reg_id: int) -> int:
        buf = ctypes.c_uint64()
        status = _uc_reg_read(self._uch, reg_id, ctypes.byref(buf))
        if status != UC_ERR_OK:
            raise UcError(status, reg_id)
        return buf.value

    def _put(self, reg_id: int, value: int) -> None:
        buf = ctypes.c_uint64(value & 0xFFFFFFFFFFFFFFFF)
        status = _uc_reg_write(self._uch, reg_id, ctypes.byref(buf))
        if status != UC_ERR_OK:
            raise UcError(status, reg_id)

    def reg_read(self, reg: int) -> int:
        """Return X0-X30 (0-30) or a :class:`Reg`."""
        return self._get(_REG_IDS[reg])

    def reg_write(self, reg: int, value: int) -> None:
        """Write X0-X30 (0-30) or a :class:`Reg`.

        Writing PSTATE also refreshes the engine's cached translation flags
        (the exception level, the masks): the engine rebuilds them only after
        a system-register write, so one is made with TPIDR_EL0's own value.
        """
        self._put(_REG_IDS[reg], value)
        if reg == Reg.PSTATE:
            self.sysreg_write(_TPIDR_EL0, self.sysreg_read(_TPIDR_EL0))

    def vreg_read(self, n: int) -> int:
        """Return SIMD/FP register Vn as a 128-bit integer."""
        value = self._uc.reg_read(_V_IDS[n])
        assert isinstance(value, int)
        return value

    def vreg_write(self, n: int, value: int) -> None:
        """Write SIMD/FP register Vn (128 bits)."""
        self._uc.reg_write(_V_IDS[n], value & ((1 << 128) - 1))

    def sysreg_read(self, key: int) -> int:
        """Return the engine's value of the system register *key*."""
        cp = _CpReg(*_key_fields(key), 0)
        status = _uc_reg_read(self._uch, _CP_REG, ctypes.byref(cp))
        if status != UC_ERR_OK:
            raise UcError(status, _CP_REG)
        return int(cp.val)

    def sysreg_write(self, key: int, value: int) -> None:
        """Write the engine's system register *key*."""
        cp = _CpReg(*_key_fields(key), value & 0xFFFFFFFFFFFFFFFF)
        status = _uc_reg_write(self._uch, _CP_REG, ctypes.byref(cp))
        if status != UC_ERR_OK:
            raise UcError(status, _CP_REG)

    def read_insn(self, addr: int) -> int | None:
        """Return the instruction word at virtual address *addr*, or None.

        The address goes through the MMU as an instruction fetch of the
        current translation regime would (``uc_vmem_read``); with the MMU off
        it is the physical address.
        """
        buf = self._insn_buf
        status = _uclib.uc_vmem_read(
            self._uc._uch, ctypes.c_uint64(addr), UC_PROT_EXEC, buf, ctypes.c_size_t(4)
        )
        if status != UC_ERR_OK:
            return None
        return int.from_bytes(buf.raw, "little")

    # -- memory ---------------------------------------------------------------

    def map_ram(self, addr: int, size: int, ptr: int, readonly: bool) -> None:
        """Map *size* bytes of host memory at *ptr* as guest RAM (or ROM) at *addr*."""
        perms = UC_PROT_READ | UC_PROT_EXEC if readonly else UC_PROT_ALL
        self._uc.mem_map_ptr(addr, size, perms, ptr)
        self._maps[addr] = (size, False)
        if not readonly:
            self._writable[addr] = size
            self._update_invalid_hooks()

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
        """Send accesses to [addr, addr + size) to *read*/*write* (absolute addrs).

        The callbacks are registered with the engine's C API directly: the
        binding's own wrappers would add two Python calls to every access.
        *lock* and *unlock* (the BQL), when given, surround each call in the
        same Python frame, and *before* runs between *lock* and the access
        (the runtime brings the virtual clock up to date there). An exception
        in a callback stops the run and is raised by :meth:`run`.
        """
        fail = self._fail
        take = lock or _nothing
        release = unlock or _nothing

        if before is None:

            def rd(_handle: int, offset: int, width: int, _data: int) -> int:
                take()
                try:
                    return read(addr + offset, width)
                except BaseException as exc:
                    fail(exc)
                    return 0
                finally:
                    release()

            def wr(
                _handle: int, offset: int, width: int, value: int, _data: int
            ) -> None:
                take()
                try:
                    write(addr + offset, value, width)
                except BaseException as exc:
                    fail(exc)
                finally:
                    release()

        else:
            first = before

            def rd(_handle: int, offset: int, width: int, _data: int) -> int:
                take()
                try:
                    first()
                    return read(addr + offset, width)
                except BaseException as exc:
                    fail(exc)
                    return 0
                finally:
                    release()

            def wr(
                _handle: int, offset: int, width: int, value: int, _data: int
            ) -> None:
                take()
                try:
                    first()
                    write(addr + offset, value, width)
                except BaseException as exc:
                    fail(exc)
                finally:
                    release()

        cb_read = _MMIO_READ_CFUNC(rd)
        cb_write = _MMIO_WRITE_CFUNC(wr)
        status = _uclib.uc_mmio_map(
            self._uc._uch, addr, size, cb_read, None, cb_write, None
        )
        if status != UC_ERR_OK:
            raise UcError(status)
        self._callbacks[addr] = (cb_read, cb_write)
        self._maps[addr] = (size, True)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        _uclib.uc_emu_stop(self._uc._uch)

    def unmap(self, addr: int, size: int) -> None:
        """Remove the mapping at *addr*."""
        self._uc.mem_unmap(addr, size)
        self._maps.pop(addr, None)
        self._callbacks.pop(addr, None)
        if self._writable.pop(addr, None) is not None:
            self._update_invalid_hooks()

    def _update_invalid_hooks(self) -> None:
        """Hook invalid accesses everywhere except in writable RAM.

        Nothing invalid happens in mapped RAM, and the engine treats a page
        covered by any memory hook as watched: it never lets the TLB write to
        it directly (``notdirty_write`` keeps every store on the slow path,
        with a code-invalidation check per store). So the hook covers the
        gaps between RAM ranges only.
        """
        for h in self._invalid_hooks:
            self._uc.hook_del(h)
        gaps: list[tuple[int, int]] = []
        at = 0
        for start, size in sorted(self._writable.items()):
            if start > at:
                gaps.append((at, start - 1))
            at = max(at, start + size)
        if at <= _ADDR_MAX:
            gaps.append((at, _ADDR_MAX))
        self._invalid_hooks = [
            self._uc.hook_add(UC_HOOK_MEM_INVALID, self._on_mem_invalid, None, a, b)
            for a, b in gaps
        ]

    def mappings(self) -> dict[int, tuple[int, bool]]:
        """Return the current mappings: start -> (size, is_mmio)."""
        return dict(self._maps)

    # -- running --------------------------------------------------------------

    def count_blocks(self, enabled: bool) -> None:
        """Count executed instructions in :attr:`block_count` (for ``-icount``).

        A hook at the start of each translation block adds the previous
        block's length; :meth:`run` adds the part of the last block that ran.
        It is exact for runs that end at an instruction budget, WFI or an
        exception, which is what makes ``-icount`` runs repeat.
        """
        self._counting = enabled
        self._update_block_hook()

    def watch_blocks(self, watcher: BlockWatcher | None) -> None:
        """Call *watcher(address)* before each translation block runs.

        When it returns True the run ends before that block executes (the
        engine checks for a stop at the start of each block, after this
        hook): the CPU model uses it while an interrupt is pending but masked,
        to take it at the first block after the guest unmasks it (MSR DAIF
        and ERET end a block). None removes the watcher.
        """
        self._watcher = watcher
        self._update_block_hook()

    def _update_block_hook(self) -> None:
        """Put the block hook into translated code when wanted.

        Translated blocks call a block hook only if it existed when they were
        translated, and each call costs about as much as a short block. So
        the hook is added (and the translations flushed) when first wanted;
        unwanted, it is only switched off (the native hook's flag, or
        :meth:`_on_block` finding nothing to do) and stays in the
        translations until it has been unwanted for
        :data:`BLOCK_HOOK_LINGER_S` (see :meth:`run`). A guest that keeps
        masking and unmasking a pending interrupt does not retranslate its
        code each time, and a guest that computes runs its blocks without
        the call.
        """
        want = self._counting or self._watcher is not None
        native = self._native
        if native is not None:
            native.state.watching = int(want)
        if not want:
            if self.block_hook_installed() and self._block_unwanted_since is None:
                self._block_unwanted_since = time.monotonic()
            return
        self._block_unwanted_since = None
        if self.block_hook_installed():
            return
        if native is not None:
            native.install_block()
        else:
            self._block_hook = self._uc.hook_add(UC_HOOK_BLOCK, self._on_block)
        self._uc.ctl_flush_tb()

    def _drop_block_hook(self) -> None:
        """Remove the block hook from the engine and from translated code."""
        self._block_unwanted_since = None
        native = self._native
        if native is not None and native.block_installed:
            native.remove_block()
        elif self._block_hook is not None:
            self._uc.hook_del(self._block_hook)
            self._block_hook = None
        else:
            return
        self._uc.ctl_flush_tb()

    def block_hook_installed(self) -> bool:
        """Return True while translated blocks call the block hook."""
        native = self._native
        if native is not None:
            return native.block_installed
        return self._block_hook is not None

    def _on_block(self, _uc: Uc, address: int, size: int, _data: object) -> None:
        if self._counting:
            self.block_count += self._block_size >> 2
            self._block_start = address
            self._block_size = size
        watcher = self._watcher
        if watcher is not None and watcher(address):
            _uclib.uc_emu_stop(self._uc._uch)

    def run(self, pc: int, count: int = 0) -> EngineExit:
        """Run from *pc* until an event; *count* > 0 bounds the instructions.

        Called without the BQL: guest code runs while other threads hold it.
        """
        ex = self._exit
        ex.kind = ExitKind.STOPPED
        ex.intno = -1
        self._block_size = 0
        since = self._block_unwanted_since
        if since is not None and time.monotonic() - since > BLOCK_HOOK_LINGER_S:
            self._drop_block_hook()
        try:
            self._uc.emu_start(pc, 0, 0, count)
            error = self._error
            if error is not None:
                self._error = None
                raise error
        except UcError as e:
            if e.errno in _FAULTS:
                ex.kind = ExitKind.MEM_FAULT
            elif e.errno == UC_ERR_EXCEPTION and ex.intno >= 0:
                ex.kind = ExitKind.EXCEPTION
            else:
                ex.kind = ExitKind.ERROR
                ex.message = str(e)
        if self._block_size:
            pc_now = self.reg_read(Reg.PC)
            part = pc_now - self._block_start
            done = part if 0 <= part < self._block_size else self._block_size
            self.block_count += done >> 2
            self._block_size = 0
        if ex.kind is ExitKind.STOPPED and ex.intno >= 0:
            ex.kind = ExitKind.EXCEPTION
        if ex.kind is ExitKind.STOPPED and count == 0:
            pc_now = self.reg_read(Reg.PC)
            if self.read_insn(pc_now - 4) == _WFI:
                ex.kind = ExitKind.HALTED
        return ex

    def stop(self) -> None:
        """End the current :meth:`run` soon (any thread; no effect between runs)."""
        _uclib.uc_emu_stop(self._uc._uch)

    # -- hooks ----------------------------------------------------------------

    def _on_intr(self, uc: Uc, intno: int, _data: object) -> None:
        ex = self._exit
        ex.intno = intno
        ex.syndrome, ex.vaddress = self._exception_state.read()
        uc.emu_stop()

    def _on_mem_invalid(
        self, uc: Uc, access: int, address: int, size: int, value: int, _data: object
    ) -> bool:
        ex = self._exit
        # The engine syncs PC to the faulting instruction before this hook.
        ex.pc = self._get(a64.UC_ARM64_REG_PC)
        ex.address = address
        ex.size = size
        ex.rom = access == UC_MEM_WRITE_PROT
        if access in (UC_MEM_WRITE_UNMAPPED, UC_MEM_WRITE_PROT):
            ex.access = Access.WRITE
        elif access in (UC_MEM_FETCH_UNMAPPED, UC_MEM_FETCH_PROT):
            ex.access = Access.FETCH
        else:
            ex.access = Access.READ
        return False

    def sysreg_passed(self) -> int:
        """Return how many MRS/MSR the engine ran without calling Python."""
        native = self._native
        return int(native.state.passed) if native is not None else 0

    def _on_sysreg(self, reg: int, key: int, is_read: bool, value: int) -> bool:
        """A hooked MRS (*is_read*) or MSR from the native filter."""
        if not is_read:
            return self._sysreg_write(key, value)
        result = self._sysreg_read(key)
        if result is None:
            return False
        if reg != _XZR:
            self._put(reg, result)
        return True

    def _on_mrs(self, uc: Uc, reg: int, cp: tuple[int, ...], _data: object) -> bool:
        crn, crm, op0, op1, op2, _val = cp
        key = op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
        if key not in self._hooked:
            return False
        value = self._sysreg_read(key)
        if value is None:
            return False
        if reg != _XZR:
            uc.reg_write(reg, value)
        return True

    def _on_msr(self, _uc: Uc, _reg: int, cp: tuple[int, ...], _data: object) -> bool:
        crn, crm, op0, op1, op2, val = cp
        key = op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
        if key not in self._hooked:
            return False
        return self._sysreg_write(key, val)


class _CpReg(ctypes.Structure):
    """unicorn 2.1.4's ``uc_arm64_cp_reg``."""

    _fields_ = (
        ("crn", ctypes.c_uint32),
        ("crm", ctypes.c_uint32),
        ("op0", ctypes.c_uint32),
        ("op1", ctypes.c_uint32),
        ("op2", ctypes.c_uint32),
        ("val", ctypes.c_uint64),
    )


_SYSREG_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_uint32,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.POINTER(_CpReg),
    ctypes.c_void_p,
)
_BLOCK_CFUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p
)
_MAX_KEYS: Final = 64


class _HookState(ctypes.Structure):
    """``pyqemu_hooks`` of ``accel/tcg/uchooks.c``."""

    _fields_ = (
        ("mrs", _SYSREG_CFUNC),
        ("msr", _SYSREG_CFUNC),
        ("block", _BLOCK_CFUNC),
        ("watching", ctypes.c_int32),
        ("nkeys", ctypes.c_uint32),
        ("keys", ctypes.c_uint32 * _MAX_KEYS),
        ("passed", ctypes.c_uint64),
    )


_SHIM_NAME: Final = "libpyqemu-uchooks.so"
_SHIM: list[ctypes.CDLL | None] = []


def _load_shim() -> ctypes.CDLL | None:
    """Load ``accel/tcg/uchooks.c``'s library, built by meson, once; None if absent.

    It is looked for next to this package in the build tree (``build/accel``)
    and in an installed tree (``accel/``), through ``sys.path``.
    """
    if _SHIM:
        return _SHIM[0]
    lib: ctypes.CDLL | None = None
    for entry in sys.path:
        path = Path(entry or ".") / "accel" / _SHIM_NAME
        if path.is_file():
            candidate = ctypes.CDLL(str(path))
            candidate.pyqemu_hooks_abi.restype = ctypes.c_uint32
            if candidate.pyqemu_hooks_abi() == ctypes.sizeof(_HookState):
                lib = candidate
                break
    _SHIM.append(lib)
    return lib


@final
class _NativeHooks:
    """The engine's MRS/MSR and block hooks behind the native filters.

    unicorn calls an MRS/MSR hook for every system-register access and builds
    block hooks into translated code; ``accel/tcg/uchooks.c`` keeps both in C
    and calls Python only for the registers the CPU model hooks and while a
    block watcher is on (see that file).
    """

    def __init__(self, engine: UnicornEngine, lib: ctypes.CDLL, keys: frozenset[int]):
        self.engine = engine
        state = _HookState()
        state.mrs = _SYSREG_CFUNC(self._mrs)
        state.msr = _SYSREG_CFUNC(self._msr)
        state.block = _BLOCK_CFUNC(self._block)
        state.watching = 0
        if len(keys) > _MAX_KEYS:
            raise ValueError(f"at most {_MAX_KEYS} hooked system registers")
        state.nkeys = len(keys)
        for i, k in enumerate(sorted(keys)):
            state.keys[i] = k
        self.state = state
        self._lib = lib
        uch = engine._uc._uch
        self._uch = uch
        user = ctypes.cast(ctypes.pointer(state), ctypes.c_void_p)
        self._user = user
        self._block_handle: int | None = None
        for insn, fn in (
            (a64.UC_ARM64_INS_MRS, lib.pyqemu_mrs_hook),
            (a64.UC_ARM64_INS_MSR, lib.pyqemu_msr_hook),
        ):
            _hook_add(
                uch,
                UC_HOOK_INSN,
                ctypes.cast(fn, ctypes.c_void_p),
                user,
                ctypes.c_int(insn),
            )

    @property
    def block_installed(self) -> bool:
        """Whether the engine has the native block hook."""
        return self._block_handle is not None

    def install_block(self) -> None:
        """Add the native block hook (blocks translated from now on call it)."""
        if self._block_handle is None:
            self._block_handle = _hook_add(
                self._uch,
                UC_HOOK_BLOCK,
                ctypes.cast(self._lib.pyqemu_block_hook, ctypes.c_void_p),
                self._user,
            )

    def remove_block(self) -> None:
        """Remove the native block hook (flush the translations after it)."""
        handle = self._block_handle
        if handle is not None:
            self._block_handle = None
            status = _uclib.uc_hook_del(self._uch, ctypes.c_size_t(handle))
            if status != UC_ERR_OK:
                raise UcError(status)

    @classmethod
    def install(
        cls, engine: UnicornEngine, keys: frozenset[int]
    ) -> _NativeHooks | None:
        lib = _load_shim()
        return None if lib is None else cls(engine, lib, keys)

    def _mrs(
        self, _uc: int | None, reg: int, cp: ctypes._Pointer[_CpReg], _data: int | None
    ) -> int:
        return self._sysreg(reg, cp.contents, True)

    def _msr(
        self, _uc: int | None, reg: int, cp: ctypes._Pointer[_CpReg], _data: int | None
    ) -> int:
        return self._sysreg(reg, cp.contents, False)

    def _sysreg(self, reg: int, c: _CpReg, is_read: bool) -> int:
        key = c.op0 << 14 | c.op1 << 11 | c.crn << 7 | c.crm << 3 | c.op2
        try:
            return int(self.engine._on_sysreg(reg, key, is_read, int(c.val)))
        except BaseException as exc:
            self.engine._fail(exc)
            return 1

    def _block(
        self, _uc: int | None, address: int, size: int, _data: int | None
    ) -> None:
        try:
            self.engine._on_block(self.engine._uc, address, size, None)
        except BaseException as exc:
            self.engine._fail(exc)


def _hook_add(
    uch: object, htype: int, callback: object, user: object, *extra: object
) -> int:
    handle = ctypes.c_size_t()
    status = _uclib.uc_hook_add(
        uch,
        ctypes.byref(handle),
        htype,
        callback,
        user,
        ctypes.c_uint64(1),
        ctypes.c_uint64(0),
        *extra,
    )
    if status != UC_ERR_OK:
        raise UcError(status)
    return handle.value


def _nothing() -> object:
    return None


def _disable_exit_checks(uc: Uc) -> None:
    """Make the engine's stops take effect only between translation blocks.

    unicorn checks for a stop request after every guest load and store; when
    one is pending it abandons the instruction *after* the access and runs it
    again on the next start. For a device register that repeats the access (a
    byte written twice to a UART); for ``ldr x1, [x1]`` it loads through the
    already-overwritten base register. ``accel/tests/test_engine.py`` shows
    both. The engine has a switch that leaves these checks out of translated
    code (``uc_struct.no_exit_request``, its workaround for Thumb IT blocks,
    never set by the AArch64 translator) but no API for it: it is found in
    unicorn 2.1.4's ``uc_struct`` by the fields around it and set. Stops then
    land at the start of the next translation block, between instructions.

    Raises:
        RuntimeError: the field is not where unicorn 2.1.4 keeps it.
    """
    page = uc.ctl_get_page_size()
    base = int(uc._uch.value or 0)
    area = ctypes.string_at(base, _UC_STRUCT_SCAN)
    # target_page_size, target_page_align, then two host page sizes (u64).
    at = area.find(struct.pack("<II", page, page - 1))
    host_page = mmap.PAGESIZE
    if at < 0 or area[at + 8 : at + 24] != struct.pack("<QQ", host_page, host_page):
        raise RuntimeError(
            "unicorn's uc_struct does not have the layout of unicorn 2.1.4: "
            "install the version pinned in subprojects/runtime.txt"
        )
    # ... icache line size, context content, context size, padding, next_pc,
    # hook_insert, first_tb, no_exit_request, init_done.
    flag = base + at + 50
    init_done = ctypes.c_bool.from_address(flag + 1)
    if not init_done.value:
        raise RuntimeError("unicorn's uc_struct: init_done is not where expected")
    ctypes.c_bool.from_address(flag).value = True


_UC_STRUCT_SCAN: Final = 16384


@final
class _ExceptionState:
    """Reads the syndrome and fault address the engine computed for an exception.

    When the engine raises a synchronous exception it has done QEMU's work:
    ``env->exception.syndrome`` holds the ESR value (for an MMU fault, the
    fault status from its own page-table walk, merged as
    ``arm_deliver_fault`` does) and ``env->exception.vaddress`` the faulting
    address, before the interrupt hook runs. unicorn has no register for
    them, but ``uc_context_save`` copies the CPU state (``CPUARMState`` up to
    its breakpoints) into a context buffer: the two fields are read from
    there, at the offset :func:`_exception_offset` finds once per process.
    """

    def __init__(self, uc: Uc) -> None:
        self._uch = uc._uch
        self._size = int(_uclib.uc_context_size(self._uch))
        ctx = ctypes.c_void_p()
        status = _uclib.uc_context_alloc(self._uch, ctypes.byref(ctx))
        if status != UC_ERR_OK:
            raise UcError(status)
        self._ctx = ctx
        self._at = _exception_offset()

    def read(self) -> tuple[int, int]:
        """Return ``(syndrome, vaddress)`` of the exception being raised."""
        _uclib.uc_context_save(self._uch, self._ctx)
        base = int(self._ctx.value or 0) + self._at
        syndrome = ctypes.c_uint32.from_address(base).value
        vaddress = ctypes.c_uint64.from_address(base + 8).value
        return syndrome, vaddress

    def __del__(self) -> None:
        ctx = getattr(self, "_ctx", None)
        if ctx is not None and ctx.value:
            _uclib.uc_context_free(ctx)


_EXCEPTION_AT: list[int] = []
# The probe: LDXR x0, [x1] with x1 unaligned (exclusive loads always check
# alignment), in non-secure AArch64 EL1 as the CPU model runs the guest.
_PROBE_BASE: Final = 0x40000000
_PROBE_FAR: Final = 0x40001233
_PROBE_MARKS: Final = (0x1122334455667788, 0x99AABBCCDDEEFF00)
_LDXR_X0_X1: Final = 0xC85F7C20
_FSC_ALIGNMENT: Final = 0x21
_EC_DATAABORT_SAME_EL: Final = 0x25


def _exception_offset() -> int:
    """Return where ``env->exception`` sits in a saved context (found once).

    A probe engine takes an alignment fault at a known address; its saved
    context is searched for that address, and the syndrome and fault status
    before it are checked (``struct { uint32_t syndrome, fsr; uint64_t
    vaddress; }``), so a unicorn with another layout is refused rather than
    misread.

    Raises:
        RuntimeError: the context does not hold the fault where unicorn
            2.1.4 keeps it.
    """
    if _EXCEPTION_AT:
        return _EXCEPTION_AT[0]
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.ctl_set_cpu_model(UC_CPU_ARM64_A57)
    uc.mem_map(_PROBE_BASE, 0x2000)
    uc.mem_write(_PROBE_BASE, struct.pack("<I", _LDXR_X0_X1))
    uc.reg_write(a64.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, 0x501))  # SCR_EL3
    uc.reg_write(a64.UC_ARM64_REG_CP_REG, (1, 1, 3, 4, 0, 1 << 31))  # HCR_EL2
    uc.reg_write(a64.UC_ARM64_REG_X1, _PROBE_FAR)
    uc.reg_write(a64.UC_ARM64_REG_X2, _PROBE_MARKS[0])
    uc.reg_write(a64.UC_ARM64_REG_X3, _PROBE_MARKS[1])
    size = int(_uclib.uc_context_size(uc._uch))
    raw: list[bytes] = []

    def intr(uc: Uc, _intno: int, _data: object) -> None:
        ctx = ctypes.c_void_p()
        _uclib.uc_context_alloc(uc._uch, ctypes.byref(ctx))
        _uclib.uc_context_save(uc._uch, ctx)
        raw.append(ctypes.string_at(ctx.value or 0, size))
        _uclib.uc_context_free(ctx)
        uc.emu_stop()

    uc.hook_add(UC_HOOK_INTR, intr)
    uc.emu_start(_PROBE_BASE, _PROBE_BASE + 4)
    problem = "the probe raised no exception"
    if raw:
        data = raw[0]
        xregs = data.find(struct.pack("<QQ", *_PROBE_MARKS))
        at = data.find(struct.pack("<Q", _PROBE_FAR), max(xregs, 0) + 0x100) - 8
        if xregs < 0 or at < 0:
            problem = "the fault address is not in the saved context"
        else:
            syndrome, fsr = struct.unpack_from("<II", data, at)
            if syndrome >> 26 == _EC_DATAABORT_SAME_EL and fsr & 0x3F == _FSC_ALIGNMENT:
                _EXCEPTION_AT.append(at)
                uc.mem_unmap(_PROBE_BASE, 0x2000)
                return at
            problem = f"syndrome {syndrome:#x} and fsr {fsr:#x} next to it"
    raise RuntimeError(
        f"unicorn's saved CPU state does not have the layout of unicorn 2.1.4 "
        f"({problem}): install the version pinned in subprojects/runtime.txt"
    )


_FAULTS: Final = frozenset(
    {
        UC_ERR_READ_UNMAPPED,
        UC_ERR_WRITE_UNMAPPED,
        UC_ERR_FETCH_UNMAPPED,
        UC_ERR_OK,
        UC_ERR_READ_PROT,
        UC_ERR_WRITE_PROT,
        UC_ERR_FETCH_PROT,
    }
)
