"""PSCI firmware calls answered by the emulator (QEMU's ``target/arm/psci.c``).

QEMU's ``virt`` acts as the firmware: with ``psci-conduit=hvc`` an HVC from the
guest is a PSCI call whose function id is in X0 and arguments in X1-X3; the
result goes back in X0. The functions and answers are QEMU 7.2's.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "PSCI_0_1_FN_BASE",
    "PSCI_0_2_64BIT",
    "PSCI_CONDUIT_DISABLED",
    "PSCI_CONDUIT_HVC",
    "PSCI_CONDUIT_SMC",
    "PSCI_FN_AFFINITY_INFO",
    "PSCI_FN_CPU_OFF",
    "PSCI_FN_CPU_ON",
    "PSCI_FN_CPU_SUSPEND",
    "PSCI_FN_FEATURES",
    "PSCI_FN_MIGRATE",
    "PSCI_FN_MIGRATE_INFO_TYPE",
    "PSCI_FN_SYSTEM_OFF",
    "PSCI_FN_SYSTEM_RESET",
    "PSCI_FN_VERSION",
    "PSCI_RET_ALREADY_ON",
    "PSCI_RET_INVALID_PARAMS",
    "PSCI_RET_NOT_SUPPORTED",
    "PSCI_RET_TOS_MIGRATION_NOT_REQUIRED",
    "PSCI_VERSION",
    "psci_features",
]

PSCI_CONDUIT_DISABLED: Final = 0
PSCI_CONDUIT_SMC: Final = 1
PSCI_CONDUIT_HVC: Final = 2

PSCI_0_2_64BIT: Final = 0x40000000
PSCI_0_1_FN_BASE: Final = 0x95C1BA5E
PSCI_0_1_FN_CPU_SUSPEND: Final = PSCI_0_1_FN_BASE
PSCI_0_1_FN_CPU_OFF: Final = PSCI_0_1_FN_BASE + 1
PSCI_0_1_FN_CPU_ON: Final = PSCI_0_1_FN_BASE + 2
PSCI_0_1_FN_MIGRATE: Final = PSCI_0_1_FN_BASE + 3

PSCI_FN_VERSION: Final = 0x84000000
PSCI_FN_CPU_SUSPEND: Final = 0x84000001
PSCI_FN_CPU_OFF: Final = 0x84000002
PSCI_FN_CPU_ON: Final = 0x84000003
PSCI_FN_AFFINITY_INFO: Final = 0x84000004
PSCI_FN_MIGRATE: Final = 0x84000005
PSCI_FN_MIGRATE_INFO_TYPE: Final = 0x84000006
PSCI_FN_SYSTEM_OFF: Final = 0x84000008
PSCI_FN_SYSTEM_RESET: Final = 0x84000009
PSCI_FN_FEATURES: Final = 0x8400000A
PSCI_FN64_CPU_SUSPEND: Final = PSCI_FN_CPU_SUSPEND | PSCI_0_2_64BIT
PSCI_FN64_CPU_ON: Final = PSCI_FN_CPU_ON | PSCI_0_2_64BIT
PSCI_FN64_AFFINITY_INFO: Final = PSCI_FN_AFFINITY_INFO | PSCI_0_2_64BIT
PSCI_FN64_MIGRATE: Final = PSCI_FN_MIGRATE | PSCI_0_2_64BIT

PSCI_VERSION: Final = 0x00010001
"""PSCI 1.1, what QEMU 7.2's ``virt`` reports."""

PSCI_RET_SUCCESS: Final = 0
PSCI_RET_NOT_SUPPORTED: Final = -1
PSCI_RET_INVALID_PARAMS: Final = -2
PSCI_RET_ALREADY_ON: Final = -4
PSCI_RET_TOS_MIGRATION_NOT_REQUIRED: Final = 2

_FEATURES: Final = frozenset(
    {
        PSCI_FN_VERSION,
        PSCI_FN_MIGRATE_INFO_TYPE,
        PSCI_FN_AFFINITY_INFO,
        PSCI_FN64_AFFINITY_INFO,
        PSCI_FN_SYSTEM_RESET,
        PSCI_FN_SYSTEM_OFF,
        PSCI_0_1_FN_CPU_ON,
        PSCI_FN_CPU_ON,
        PSCI_FN64_CPU_ON,
        PSCI_0_1_FN_CPU_OFF,
        PSCI_FN_CPU_OFF,
        PSCI_0_1_FN_CPU_SUSPEND,
        PSCI_FN_CPU_SUSPEND,
        PSCI_FN64_CPU_SUSPEND,
        PSCI_FN_FEATURES,
    }
)


def psci_features(fn: int) -> int:
    """Return ``PSCI_FEATURES``'s answer for function *fn* (from AArch64).

    >>> psci_features(PSCI_FN_SYSTEM_OFF), psci_features(PSCI_FN_MIGRATE)
    (0, -1)
    """
    return PSCI_RET_SUCCESS if fn in _FEATURES else PSCI_RET_NOT_SUPPORTED
