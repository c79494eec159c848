"""Exception entry to EL1 (QEMU's ``arm_cpu_do_interrupt_aarch64`` in ``helper.c``).

The engine does not take exceptions itself: the CPU model enters them as the
architecture does, on the engine's registers:

- the vector is ``VBAR_EL1`` plus 0x000 (from EL1 using SP_EL0), 0x200 (from EL1
  using SP_EL1) or 0x400 (from EL0, AArch64), plus 0x80 for IRQ, 0x100 for FIQ,
  0x180 for SError, 0 for synchronous exceptions;
- ``SPSR_EL1`` gets PSTATE, ``ELR_EL1`` the return address, ``ESR_EL1`` the
  syndrome (synchronous exceptions) and ``FAR_EL1`` the faulting address (aborts);
- the stack pointer of the old mode is saved in its bank and SP_EL1 becomes the
  stack pointer (EL1h); D, A, I and F are masked; PAN is set when SCTLR_EL1.SPAN
  is clear on CPUs that have it.
"""

from __future__ import annotations

from typing import Final

from accel.tcg.engine_api import Engine, Reg, sysreg_key

__all__ = [
    "ESR_EL1",
    "EXC_FIQ",
    "EXC_IRQ",
    "EXC_SERROR",
    "EXC_SYNC",
    "FAR_EL1",
    "PSTATE_A",
    "PSTATE_D",
    "PSTATE_F",
    "PSTATE_I",
    "PSTATE_PAN",
    "PSTATE_SP",
    "SCTLR_EL1",
    "SPSR_EL1",
    "VBAR_EL1",
    "current_el",
    "do_interrupt",
    "pstate_string",
]

SPSR_EL1: Final = sysreg_key(3, 0, 4, 0, 0)
ELR_EL1: Final = sysreg_key(3, 0, 4, 0, 1)
ESR_EL1: Final = sysreg_key(3, 0, 5, 2, 0)
FAR_EL1: Final = sysreg_key(3, 0, 6, 0, 0)
VBAR_EL1: Final = sysreg_key(3, 0, 12, 0, 0)
SCTLR_EL1: Final = sysreg_key(3, 0, 1, 0, 0)

PSTATE_SP: Final = 1 << 0
PSTATE_F: Final = 1 << 6
PSTATE_I: Final = 1 << 7
PSTATE_A: Final = 1 << 8
PSTATE_D: Final = 1 << 9
PSTATE_PAN: Final = 1 << 22
PSTATE_DAIF: Final = PSTATE_D | PSTATE_A | PSTATE_I | PSTATE_F
PSTATE_MODE_EL1H: Final = 0b0101
_SCTLR_SPAN: Final = 1 << 23

EXC_SYNC: Final = 0x000
EXC_IRQ: Final = 0x080
EXC_FIQ: Final = 0x100
EXC_SERROR: Final = 0x180


def current_el(pstate: int) -> int:
    """Return the exception level of *pstate* (AArch64)."""
    return pstate >> 2 & 3


def do_interrupt(
    engine: Engine,
    kind: int,
    return_pc: int,
    *,
    syndrome: int | None = None,
    far: int | None = None,
    has_pan: bool = False,
) -> None:
    """Enter an exception to EL1 on *engine*.

    Args:
        engine: the CPU's engine, not running.
        kind: :data:`EXC_SYNC`, :data:`EXC_IRQ`, :data:`EXC_FIQ` or
            :data:`EXC_SERROR` (the offset in the vector group).
        return_pc: the address ERET returns to (``ELR_EL1``).
        syndrome: ``ESR_EL1`` for a synchronous exception.
        far: ``FAR_EL1`` for an abort.
        has_pan: the CPU implements FEAT_PAN.
    """
    pstate = engine.reg_read(Reg.PSTATE)
    el = current_el(pstate)
    addr = engine.sysreg_read(VBAR_EL1)
    if el == 0:
        addr += 0x400
    elif pstate & PSTATE_SP:
        addr += 0x200
    addr += kind
    if syndrome is not None:
        engine.sysreg_write(ESR_EL1, syndrome)
    if far is not None:
        engine.sysreg_write(FAR_EL1, far)
    # aarch64_save_sp: the current SP goes back to its bank.
    sp = engine.reg_read(Reg.SP)
    if pstate & PSTATE_SP and el >= 1:
        engine.reg_write(Reg.SP_EL0 + el, sp)
    else:
        engine.reg_write(Reg.SP_EL0, sp)
    engine.sysreg_write(ELR_EL1, return_pc)
    engine.sysreg_write(SPSR_EL1, pstate)
    new = PSTATE_DAIF | PSTATE_MODE_EL1H
    if has_pan and not engine.sysreg_read(SCTLR_EL1) & _SCTLR_SPAN:
        new |= PSTATE_PAN
    elif has_pan:
        new |= pstate & PSTATE_PAN
    engine.reg_write(Reg.PSTATE, new)
    # aarch64_restore_sp for EL1h.
    engine.reg_write(Reg.SP, engine.reg_read(Reg.SP_EL1))
    engine.reg_write(Reg.PC, addr)


def pstate_string(pstate: int, secure_state: str = "") -> str:
    """Return QEMU's ``PSTATE=... NZCV ELnh`` text for ``info registers``.

    >>> pstate_string(0x600003C5)
    'PSTATE=600003c5 -ZC- EL1h'
    """
    flags = "".join(
        c if pstate >> bit & 1 else "-"
        for c, bit in (("N", 31), ("Z", 30), ("C", 29), ("V", 28))
    )
    mode = "h" if pstate & PSTATE_SP else "t"
    return f"PSTATE={pstate:08x} {flags} {secure_state}EL{current_el(pstate)}{mode}"
