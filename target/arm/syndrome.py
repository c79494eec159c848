"""Exception numbers and syndromes (QEMU's ``target/arm/cpu.h`` and ``syndrome.h``).

The engine reports a synchronous exception by QEMU's ``EXCP_*`` number; the CPU
model builds the ESR value QEMU would have written.

>>> hex(syn_aa64_svc(0x42))
'0x56000042'
>>> hex(syn_data_abort_no_iss(same_el=True, ea=False, wnr=False, fsc=0x10))
'0x96000010'
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ARM_EL_IL",
    "EC_AA64_BKPT",
    "EC_DATAABORT",
    "EC_INSNABORT",
    "EC_SVC_AA64",
    "EC_UNCATEGORIZED",
    "EXCP_BKPT",
    "EXCP_DATA_ABORT",
    "EXCP_FIQ",
    "EXCP_HLT",
    "EXCP_HVC",
    "EXCP_IRQ",
    "EXCP_PREFETCH_ABORT",
    "EXCP_SMC",
    "EXCP_SWI",
    "EXCP_UDEF",
    "EXCP_VFIQ",
    "EXCP_VIRQ",
    "FSC_SYNC_EXTERNAL",
    "syn_aa64_bkpt",
    "syn_aa64_svc",
    "syn_data_abort_no_iss",
    "syn_insn_abort",
    "syn_uncategorized",
]

EXCP_UDEF: Final = 1
EXCP_SWI: Final = 2
EXCP_PREFETCH_ABORT: Final = 3
EXCP_DATA_ABORT: Final = 4
EXCP_IRQ: Final = 5
EXCP_FIQ: Final = 6
EXCP_BKPT: Final = 7
EXCP_HVC: Final = 11
EXCP_SMC: Final = 13
EXCP_VIRQ: Final = 14
EXCP_VFIQ: Final = 15
EXCP_HLT: Final = 0x10001

ARM_EL_EC_SHIFT: Final = 26
ARM_EL_IL: Final = 1 << 25
EC_UNCATEGORIZED: Final = 0x00
EC_SVC_AA64: Final = 0x15
EC_INSNABORT: Final = 0x20
EC_DATAABORT: Final = 0x24
EC_AA64_BKPT: Final = 0x3C

FSC_SYNC_EXTERNAL: Final = 0x10
"""Long-descriptor fault status: synchronous external abort, not on a walk."""


def syn_uncategorized() -> int:
    """An undefined instruction (``syn_uncategorized``)."""
    return EC_UNCATEGORIZED << ARM_EL_EC_SHIFT | ARM_EL_IL


def syn_aa64_svc(imm16: int) -> int:
    """SVC #imm16 from AArch64 (``syn_aa64_svc``)."""
    return EC_SVC_AA64 << ARM_EL_EC_SHIFT | ARM_EL_IL | (imm16 & 0xFFFF)


def syn_aa64_bkpt(imm16: int) -> int:
    """BRK #imm16 (``syn_aa64_bkpt``)."""
    return EC_AA64_BKPT << ARM_EL_EC_SHIFT | ARM_EL_IL | (imm16 & 0xFFFF)


def syn_insn_abort(*, same_el: bool, ea: bool, fsc: int) -> int:
    """An instruction abort (``syn_insn_abort`` without a stage-2 walk)."""
    return (
        (EC_INSNABORT + same_el) << ARM_EL_EC_SHIFT | ARM_EL_IL | ea << 9 | fsc & 0x3F
    )


def syn_data_abort_no_iss(*, same_el: bool, ea: bool, wnr: bool, fsc: int) -> int:
    """A data abort without instruction syndrome (``syn_data_abort_no_iss``).

    QEMU reports no ISS for aborts taken to EL1 (``merge_syn_data_abort``).
    """
    return (
        (EC_DATAABORT + same_el) << ARM_EL_EC_SHIFT
        | ARM_EL_IL
        | ea << 9
        | wnr << 6
        | fsc & 0x3F
    )
