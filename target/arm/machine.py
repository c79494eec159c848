"""The CPU's migration state (QEMU's ``target/arm/machine.c``).

The registers live in the engine; before the state is saved the vCPU is paused
at an instruction boundary and :func:`cpu_pre_save` copies what a guest can see
into :class:`ArmCPUSnapshot`; :func:`cpu_post_load` writes it back. The section
is pyqemu's own (QEMU's ``cpu`` section lists every coprocessor register by
index, which the engine does not expose), named ``arm-cpu``; this struct is
its ``arm-cpu/regs`` part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from accel.tcg.engine_api import sysreg_key
from qemu_api.migration.vmstate import (
    VMStateDescription,
    array_field,
    vmstate_array,
    vmstate_bool,
    vmstate_info_uint64,
    vmstate_uint32,
    vmstate_uint64,
)

__all__ = ["SAVED_SYSREGS", "VMSTATE_ARM_CPU", "ArmCPUSnapshot"]

SAVED_SYSREGS: Final = (
    sysreg_key(3, 0, 1, 0, 0),  # SCTLR_EL1
    sysreg_key(3, 0, 1, 0, 2),  # CPACR_EL1
    sysreg_key(3, 0, 2, 0, 0),  # TTBR0_EL1
    sysreg_key(3, 0, 2, 0, 1),  # TTBR1_EL1
    sysreg_key(3, 0, 2, 0, 2),  # TCR_EL1
    sysreg_key(3, 0, 4, 0, 0),  # SPSR_EL1
    sysreg_key(3, 0, 4, 0, 1),  # ELR_EL1
    sysreg_key(3, 0, 5, 1, 0),  # AFSR0_EL1
    sysreg_key(3, 0, 5, 1, 1),  # AFSR1_EL1
    sysreg_key(3, 0, 5, 2, 0),  # ESR_EL1
    sysreg_key(3, 0, 6, 0, 0),  # FAR_EL1
    sysreg_key(3, 0, 7, 4, 0),  # PAR_EL1
    sysreg_key(3, 0, 10, 2, 0),  # MAIR_EL1
    sysreg_key(3, 0, 10, 3, 0),  # AMAIR_EL1
    sysreg_key(3, 0, 12, 0, 0),  # VBAR_EL1
    sysreg_key(3, 0, 13, 0, 1),  # CONTEXTIDR_EL1
    sysreg_key(3, 0, 13, 0, 4),  # TPIDR_EL1
    sysreg_key(3, 3, 13, 0, 2),  # TPIDR_EL0
    sysreg_key(3, 3, 13, 0, 3),  # TPIDRRO_EL0
    sysreg_key(3, 0, 14, 1, 0),  # CNTKCTL_EL1
    sysreg_key(2, 0, 0, 2, 2),  # MDSCR_EL1
    sysreg_key(3, 2, 0, 0, 0),  # CSSELR_EL1
)
"""The system registers that migrate, by key."""

NUM_XREGS: Final = 31


@dataclass
class ArmCPUSnapshot:
    """What migrates of a CPU, copied out of the engine while it is paused."""

    xregs: list[int] = array_field(int, NUM_XREGS)
    sp: int = 0
    pc: int = 0
    pstate: int = 0
    sp_el0: int = 0
    sp_el1: int = 0
    fpcr: int = 0
    fpsr: int = 0
    vregs: list[int] = array_field(int, 64)
    sysregs: list[int] = array_field(int, len(SAVED_SYSREGS))
    cntvoff: int = 0
    cntp_ctl: int = 0
    cntp_cval: int = 0
    cntv_ctl: int = 0
    cntv_cval: int = 0
    halted: bool = False
    powered_off: bool = False
    irq_line_state: int = 0
    """The levels of the IRQ, FIQ, VIRQ and VFIQ inputs (bit n: line n), as
    QEMU's ``cpu/irq-line-state``: an interrupt asserted when the machine
    stopped is still asserted on the destination."""

    vmsd = VMStateDescription["ArmCPUSnapshot"](
        "arm-cpu/regs",
        version_id=2,
        minimum_version_id=1,
        fields=[
            vmstate_array(lambda s: s.xregs, vmstate_info_uint64, NUM_XREGS),
            vmstate_uint64(lambda s: s.sp),
            vmstate_uint64(lambda s: s.pc),
            vmstate_uint64(lambda s: s.pstate),
            vmstate_uint64(lambda s: s.sp_el0),
            vmstate_uint64(lambda s: s.sp_el1),
            vmstate_uint64(lambda s: s.fpcr),
            vmstate_uint64(lambda s: s.fpsr),
            vmstate_array(lambda s: s.vregs, vmstate_info_uint64, 64),
            vmstate_array(lambda s: s.sysregs, vmstate_info_uint64, len(SAVED_SYSREGS)),
            vmstate_uint64(lambda s: s.cntvoff),
            vmstate_uint64(lambda s: s.cntp_ctl),
            vmstate_uint64(lambda s: s.cntp_cval),
            vmstate_uint64(lambda s: s.cntv_ctl),
            vmstate_uint64(lambda s: s.cntv_cval),
            vmstate_bool(lambda s: s.halted),
            vmstate_bool(lambda s: s.powered_off),
            vmstate_uint32(lambda s: s.irq_line_state, version_id=2),
        ],
    )


VMSTATE_ARM_CPU: Final = ArmCPUSnapshot.vmsd
