"""The HPET register layout: offsets, bits, masks and constants.

The constants of QEMU's ``include/hw/timer/hpet.h`` with the names of the
IA-PC HPET specification 1.0a.  The registers themselves -- offsets, access,
the state behind each -- are declared once in the device's register map,
:attr:`hw.timer.hpet.device.HPETState.registers`.

The capability register of the default three timers:

>>> hex(hpet_capability(3))
'0x9896808086a201'
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "FS_PER_NS",
    "HPET_BASE",
    "HPET_CAP_BASE",
    "HPET_CFG",
    "HPET_CFG_ENABLE",
    "HPET_CFG_LEGACY",
    "HPET_CFG_WRITE_MASK",
    "HPET_CLK_PERIOD",
    "HPET_COUNTER",
    "HPET_ID",
    "HPET_ID_NUM_TIM_MASK",
    "HPET_ID_NUM_TIM_SHIFT",
    "HPET_LEGACY_PIT_INT",
    "HPET_LEGACY_RTC_INT",
    "HPET_LEN",
    "HPET_MAX_TIMERS",
    "HPET_MIN_TIMERS",
    "HPET_NUM_IRQ_ROUTES",
    "HPET_PERIOD",
    "HPET_STATUS",
    "HPET_TN_32BIT",
    "HPET_TN_BASE",
    "HPET_TN_CFG",
    "HPET_TN_CFG_WRITE_MASK",
    "HPET_TN_CMP",
    "HPET_TN_ENABLE",
    "HPET_TN_FSB_CAP",
    "HPET_TN_FSB_ENABLE",
    "HPET_TN_INT_ROUTE_MASK",
    "HPET_TN_INT_ROUTE_SHIFT",
    "HPET_TN_PERIODIC",
    "HPET_TN_PERIODIC_CAP",
    "HPET_TN_ROUTE",
    "HPET_TN_SETVAL",
    "HPET_TN_SIZE",
    "HPET_TN_SIZE_CAP",
    "HPET_TN_TYPE_LEVEL",
    "RTC_ISA_IRQ",
    "U32",
    "U64",
    "hpet_capability",
]

HPET_BASE: Final = 0xFED0_0000
"""Where the pc board maps the HPET (``HPET_BASE``)."""
HPET_LEN: Final = 0x400
"""The size of the register block."""
HPET_CLK_PERIOD: Final = 10
"""Nanoseconds per counter tick (100 MHz)."""
FS_PER_NS: Final = 1_000_000
"""Femtoseconds per nanosecond: CLK_PERIOD is in femtoseconds."""
HPET_MIN_TIMERS: Final = 3
"""The fewest timers the ``timers`` property accepts."""
HPET_MAX_TIMERS: Final = 24
"""The most timers: the 0x300 bytes of timer registers hold 24."""
HPET_NUM_IRQ_ROUTES: Final = 32
"""The sysbus IRQ outputs: one per ``Tn_INT_ROUTE`` value."""
HPET_LEGACY_PIT_INT: Final = 0
"""GPIO input of the PIT's interrupt (passed to output 0 outside legacy mode)."""
HPET_LEGACY_RTC_INT: Final = 1
"""GPIO input of the RTC's interrupt (passed to output 8 outside legacy mode)."""
RTC_ISA_IRQ: Final = 8
"""The RTC's ISA line, where timer 1 goes in legacy mode."""

HPET_ID: Final = 0x000
"""General capabilities and ID (CLK_PERIOD in the high half, at 0x004)."""
HPET_PERIOD: Final = 0x004
HPET_CFG: Final = 0x010
"""General configuration."""
HPET_STATUS: Final = 0x020
"""General interrupt status (write one to clear)."""
HPET_COUNTER: Final = 0x0F0
"""Main counter value."""
HPET_TN_BASE: Final = 0x100
"""Timer 0's registers; timer N's are ``HPET_TN_SIZE`` bytes further on."""
HPET_TN_SIZE: Final = 0x20
HPET_TN_CFG: Final = 0x00
"""Timer N configuration and capabilities (INT_ROUTE_CAP in the high half)."""
HPET_TN_CMP: Final = 0x08
"""Timer N comparator."""
HPET_TN_ROUTE: Final = 0x10
"""Timer N FSB interrupt route: data in the low half, address in the high."""

HPET_CFG_ENABLE: Final = 0x001
HPET_CFG_LEGACY: Final = 0x002
HPET_CFG_WRITE_MASK: Final = 0x003

HPET_ID_NUM_TIM_SHIFT: Final = 8
HPET_ID_NUM_TIM_MASK: Final = 0x1F00

HPET_TN_TYPE_LEVEL: Final = 0x002
HPET_TN_ENABLE: Final = 0x004
HPET_TN_PERIODIC: Final = 0x008
HPET_TN_PERIODIC_CAP: Final = 0x010
HPET_TN_SIZE_CAP: Final = 0x020
HPET_TN_SETVAL: Final = 0x040
HPET_TN_32BIT: Final = 0x100
HPET_TN_INT_ROUTE_MASK: Final = 0x3E00
HPET_TN_INT_ROUTE_SHIFT: Final = 9
HPET_TN_FSB_ENABLE: Final = 0x4000
HPET_TN_FSB_CAP: Final = 0x8000
HPET_TN_CFG_WRITE_MASK: Final = 0x7F4E
"""TYPE_LEVEL, ENABLE, PERIODIC, SETVAL, 32BIT, INT_ROUTE and FSB_ENABLE."""

HPET_CAP_BASE: Final = 0x8086_A001
"""REV_ID 1, COUNT_SIZE_CAP, LEG_RT_CAP, vendor 0x8086 (before NUM_TIM_CAP)."""

U32: Final = 0xFFFF_FFFF
U64: Final = 0xFFFF_FFFF_FFFF_FFFF


def hpet_capability(num_timers: int) -> int:
    """The capabilities and ID register of an HPET with ``num_timers`` timers.

    QEMU's ``hpet_realize``: NUM_TIM_CAP is ``num_timers - 1`` and
    CLK_PERIOD is 10 ns in femtoseconds.
    """
    return (
        HPET_CAP_BASE
        | ((num_timers - 1) << HPET_ID_NUM_TIM_SHIFT)
        | ((HPET_CLK_PERIOD * FS_PER_NS) << 32)
    )
