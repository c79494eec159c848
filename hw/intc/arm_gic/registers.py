"""The GICv2 register map: limits, control bits, ID bytes and the decode tables.

This module is the register description of the ARM Generic Interrupt
Controller as QEMU models it: the constants of QEMU's
``include/hw/intc/arm_gic_common.h`` and ``hw/intc/gic_internal.h``, with the
register names of the GICv2 architecture specification (ARM IHI 0048B). The
device lives in :mod:`hw.intc.arm_gic.device`.

The registers themselves -- which byte or word does what, and which exist
for a configuration -- are declared once in the device's register maps:
:attr:`hw.intc.arm_gic.device.GICState.registers` (the distributor, byte
registers, as QEMU's ``gic_dist_readb`` decodes it) and
:attr:`hw.intc.arm_gic.device.GicCpuView.registers` (the banked CPU
interface, exact offsets as ``gic_cpu_read``). This module names their
offsets:

>>> hex(DistRegister.ISENABLER + 4), hex(CpuRegister.IAR)
('0x104', '0xc')
"""

from __future__ import annotations

import enum
from typing import Final, final

__all__ = [
    "ALL_CPU_MASK",
    "GICC_CTLR_ACK_CTL",
    "GICC_CTLR_CBPR",
    "GICC_CTLR_EN_GRP0",
    "GICC_CTLR_EN_GRP1",
    "GICC_CTLR_EOIMODE",
    "GICC_CTLR_EOIMODE_NS",
    "GICC_CTLR_FIQ_EN",
    "GICC_CTLR_V1_MASK",
    "GICC_CTLR_V2_MASK",
    "GICD_CTLR_EN_GRP0",
    "GICD_CTLR_EN_GRP1",
    "GIC_CPU_IFACE_SIZE",
    "GIC_CPU_IFACE_SIZE_V1",
    "GIC_CPU_REGION_SIZE",
    "GIC_DIST_SIZE",
    "GIC_ID_GICV1",
    "GIC_ID_GICV2",
    "GIC_INTERNAL",
    "GIC_MAXIRQ",
    "GIC_MAX_IRQ_IDS",
    "GIC_MAX_PRIORITY_BITS",
    "GIC_MIN_ABPR",
    "GIC_MIN_BPR",
    "GIC_MIN_PRIORITY_BITS",
    "GIC_NCPU",
    "GIC_NR_APRS",
    "GIC_NR_SGIS",
    "GIC_SPURIOUS",
    "GIC_SPURIOUS_GROUP1",
    "IDLE_PRIORITY",
    "REV_11MPCORE",
    "CpuRegister",
    "DistRegister",
]

GIC_NCPU: Final = 8
"""CPU interfaces a GICv2 can have (QEMU's ``GIC_NCPU``)."""
GIC_MAXIRQ: Final = 1020
"""Interrupt IDs 0-1019; 1020-1023 are special (QEMU's ``GIC_MAXIRQ``)."""
GIC_MAX_IRQ_IDS: Final = 1024
"""Interrupt IDs the distributor's per-interrupt blocks have room for (0-1023)."""
GIC_INTERNAL: Final = 32
"""Private interrupts per CPU: 16 SGIs and 16 PPIs (``GIC_INTERNAL``)."""
GIC_NR_SGIS: Final = 16
"""Software-generated interrupts, IDs 0-15 (``GIC_NR_SGIS``)."""
GIC_MIN_BPR: Final = 0
"""Smallest GICC_BPR: 8 priority bits give group priority bits [7:1]."""
GIC_MIN_ABPR: Final = GIC_MIN_BPR + 1
"""Smallest GICC_ABPR (the Group 1 binary point is one more)."""
GIC_NR_APRS: Final = (1 << (7 - GIC_MIN_BPR)) // 32
"""Active priority registers per CPU: 128 preemption levels, 32 per register."""
GIC_MIN_PRIORITY_BITS: Final = 4
"""Fewest priority bits the ``num-priority-bits`` property accepts."""
GIC_MAX_PRIORITY_BITS: Final = 8
"""Most priority bits (and the default)."""
ALL_CPU_MASK: Final = (1 << GIC_NCPU) - 1
"""A CPU mask naming every CPU interface (``ALL_CPU_MASK``)."""
REV_11MPCORE: Final = 0
"""The ``revision`` value of the ARM11 MPCore GIC (not implemented here)."""

GIC_SPURIOUS: Final = 1023
"""The interrupt ID GICC_IAR returns when nothing can be acknowledged."""
GIC_SPURIOUS_GROUP1: Final = 1022
"""GICC_IAR's answer when the pending interrupt is Group 1 and AckCtl is clear."""
IDLE_PRIORITY: Final = 0x100
"""The running priority of a CPU with no active interrupt (reads as 0xFF)."""

GIC_DIST_SIZE: Final = 0x1000
"""The distributor region ``gic_dist`` (sysbus MMIO 0)."""
GIC_CPU_IFACE_SIZE: Final = 0x2000
"""The GICv2 CPU interface region ``gic_cpu`` (sysbus MMIO 1); GICC_DIR is at 0x1000."""
GIC_CPU_IFACE_SIZE_V1: Final = 0x100
"""The CPU interface region of a GICv1 (revision 1)."""
GIC_CPU_REGION_SIZE: Final = 0x100
"""Each per-CPU interface region (sysbus MMIO 2 onwards, one per CPU)."""

GICD_CTLR_EN_GRP0: Final = 1 << 0
"""GICD_CTLR.EnableGrp0: forward Group 0 interrupts."""
GICD_CTLR_EN_GRP1: Final = 1 << 1
"""GICD_CTLR.EnableGrp1: forward Group 1 interrupts."""

GICC_CTLR_EN_GRP0: Final = 1 << 0
"""GICC_CTLR.EnableGrp0: signal Group 0 interrupts."""
GICC_CTLR_EN_GRP1: Final = 1 << 1
"""GICC_CTLR.EnableGrp1: signal Group 1 interrupts."""
GICC_CTLR_ACK_CTL: Final = 1 << 2
"""GICC_CTLR.AckCtl: GICC_IAR may acknowledge a Group 1 interrupt."""
GICC_CTLR_FIQ_EN: Final = 1 << 3
"""GICC_CTLR.FIQEn: Group 0 interrupts are signalled as FIQs."""
GICC_CTLR_CBPR: Final = 1 << 4
"""GICC_CTLR.CBPR: GICC_BPR controls both groups."""
GICC_CTLR_EOIMODE: Final = 1 << 9
"""GICC_CTLR.EOImodeS: GICC_EOIR drops priority only; GICC_DIR deactivates."""
GICC_CTLR_EOIMODE_NS: Final = 1 << 10
"""GICC_CTLR.EOImodeNS (security extensions only)."""
GICC_CTLR_V1_MASK: Final = 0x1
"""The GICC_CTLR bits a GICv1 without security extensions keeps."""
GICC_CTLR_V2_MASK: Final = 0x21F
"""The GICC_CTLR bits a GICv2 without security extensions keeps (no bypass bits)."""

GIC_ID_GICV1: Final = bytes(
    (0x04, 0x00, 0x00, 0x00, 0x90, 0xB3, 0x1B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
)
"""GICD_PIDR4-7, PIDR0-3, CIDR0-3 (0xFD0-0xFFC, one byte per word) of revision 1."""
GIC_ID_GICV2: Final = bytes(
    (0x04, 0x00, 0x00, 0x00, 0x90, 0xB4, 0x2B, 0x00, 0x0D, 0xF0, 0x05, 0xB1)
)
"""The ID bytes of revision 2 (GICD_PIDR2 0x2B: architecture version 2)."""


@final
class DistRegister(enum.IntEnum):
    """The distributor's register blocks, by their first byte offset."""

    CTLR = 0x000
    """GICD_CTLR."""
    TYPER = 0x004
    """GICD_TYPER: ITLinesNumber, CPUNumber (read only)."""
    IIDR = 0x008
    """GICD_IIDR (read only); reserved from 0x00C to 0x07F."""
    IGROUPR = 0x080
    """GICD_IGROUPRn: one group bit per interrupt."""
    ISENABLER = 0x100
    """GICD_ISENABLERn: set-enable."""
    ICENABLER = 0x180
    """GICD_ICENABLERn: clear-enable."""
    ISPENDR = 0x200
    """GICD_ISPENDRn: set-pending."""
    ICPENDR = 0x280
    """GICD_ICPENDRn: clear-pending."""
    ISACTIVER = 0x300
    """GICD_ISACTIVERn: set-active (writable on GICv2)."""
    ICACTIVER = 0x380
    """GICD_ICACTIVERn: clear-active (GICv2 only)."""
    IPRIORITYR = 0x400
    """GICD_IPRIORITYRn: one priority byte per interrupt."""
    ITARGETSR = 0x800
    """GICD_ITARGETSRn: one CPU target byte per interrupt."""
    ICFGR = 0xC00
    """GICD_ICFGRn: two configuration bits per interrupt (bit 1: edge)."""
    SGIR = 0xF00
    """GICD_SGIR: write-only, and only as a 32-bit write."""
    CPENDSGIR = 0xF10
    """GICD_CPENDSGIRn: clear SGI pending, one byte (source CPUs) per SGI."""
    SPENDSGIR = 0xF20
    """GICD_SPENDSGIRn: set SGI pending."""
    RESERVED = 0xF30
    """Reserved and implementation defined space up to 0xFCF."""
    ID = 0xFD0
    """The peripheral and component ID registers, 0xFD0-0xFFF."""


@final
class CpuRegister(enum.IntEnum):
    """The CPU interface registers, by offset (QEMU decodes exact offsets)."""

    CTLR = 0x00
    """GICC_CTLR."""
    PMR = 0x04
    """GICC_PMR, the priority mask."""
    BPR = 0x08
    """GICC_BPR, the binary point."""
    IAR = 0x0C
    """GICC_IAR: a read acknowledges the highest priority pending interrupt."""
    EOIR = 0x10
    """GICC_EOIR: end of interrupt (write only)."""
    RPR = 0x14
    """GICC_RPR, the running priority (read only)."""
    HPPIR = 0x18
    """GICC_HPPIR, the highest priority pending interrupt (read only)."""
    ABPR = 0x1C
    """GICC_ABPR, the aliased (Group 1) binary point."""
    APR0 = 0xD0
    """GICC_APR0, active priorities (QEMU's layout: one bit per preemption level)."""
    APR1 = 0xD4
    """GICC_APR1."""
    APR2 = 0xD8
    """GICC_APR2."""
    APR3 = 0xDC
    """GICC_APR3."""
    NSAPR0 = 0xE0
    """GICC_NSAPR0, active priorities of Group 1 interrupts."""
    NSAPR1 = 0xE4
    """GICC_NSAPR1."""
    NSAPR2 = 0xE8
    """GICC_NSAPR2."""
    NSAPR3 = 0xEC
    """GICC_NSAPR3."""
    IIDR = 0xFC
    """GICC_IIDR: ``(revision << 16) | 0x43B`` (read only)."""
    DIR = 0x1000
    """GICC_DIR: deactivate, when EOImode splits it from GICC_EOIR (write only)."""
