"""The ARM Generic Interrupt Controller (GICv1/GICv2), as QEMU's ``arm_gic`` models it.

This is QEMU's ``hw/intc/arm_gic.c`` and ``hw/intc/arm_gic_common.c``
(``include/hw/intc/arm_gic_common.h``, ``hw/intc/gic_internal.h``) in Python,
without the security and virtualization extensions; the register map is in
:mod:`hw.intc.arm_gic.registers`. Where QEMU departs from the GICv2
architecture specification (ARM IHI 0048B), this model follows the
specification; ``docs/devices/arm_gic.rst`` lists each difference.

- Sysbus MMIO 0: the distributor (``gic_dist``, 4 KiB), decoded byte by byte
  as QEMU does: a 2- or 4-byte access is that many byte accesses, each
  followed by an interrupt update; a 32-bit write at 0xF00 is GICD_SGIR.
- Sysbus MMIO 1: the CPU interface of the accessing CPU (``gic_cpu``, 8 KiB
  on a GICv2 with GICC_DIR at 0x1000); MMIO 2 to ``1 + num-cpu``: each CPU's
  interface (256 bytes) for CPU *i*. Pyqemu's accelerators do not tell a
  device which vCPU makes an access, so MMIO 1 and the distributor's banked
  registers act for CPU 0 (as QEMU does under qtest).
- Sysbus IRQs: ``i`` is CPU *i*'s IRQ, ``i + num-cpu`` its FIQ,
  ``i + 2*num-cpu`` its VIRQ and ``i + 3*num-cpu`` its VFIQ (the last two are
  never raised without the virtualization extensions).
- GPIO inputs: SPI *n* (interrupt ID ``32 + n``) on input *n*, then 32 inputs
  per CPU for its private interrupts: input ``num-irq - 32 + 32*cpu + id``
  is PPI ``id`` (16 to 31) of that CPU. SGIs have no input.
- Properties ``num-cpu`` (1), ``num-irq`` (32, private interrupts included),
  ``revision`` (1; 2 for a GICv2), ``num-priority-bits`` (8),
  ``has-security-extensions`` and ``has-virtualization-extensions`` (both
  false: asking for either is a realize error).

The state keeps QEMU's per-interrupt CPU masks as one bitmap per CPU slot
(bit *n* = interrupt *n*), so that choosing the highest priority pending
interrupt is a few integer operations instead of a walk over every
interrupt; the VMState converts to and from QEMU's layout.

The guest's view, on a uniprocessor GICv2 with 64 interrupts:

>>> from qemu_api.irq import qemu_allocate_irq
>>> from qemu_api.memory import get_address_space_memory
>>> from qemu_api.qdev import device_cold_reset
>>> gic = GICState()
>>> gic.num_irq, gic.revision = 64, 2
>>> sysbus_realize(gic)
>>> gic.mmio_map(0, 0x0800_0000)
>>> gic.mmio_map(1, 0x0801_0000)
>>> irq = []
>>> gic.connect_irq(0, qemu_allocate_irq(lambda n, level: irq.append(level), 0))
>>> device_cold_reset(gic)
>>> mem = get_address_space_memory()
>>> hex(mem.read(0x0800_0004, 4)), hex(mem.read(0x0801_00FC, 4))  # TYPER, GICC_IIDR
('0x1', '0x2043b')
>>> _ = mem.write(0x0800_0000, 1, 4)  # GICD_CTLR: forward Group 0
>>> _ = mem.write(0x0800_0104, 1 << 1, 4)  # enable interrupt 33 (SPI 1)
>>> _ = mem.write(0x0801_0000, 1, 4)  # GICC_CTLR: signal Group 0
>>> _ = mem.write(0x0801_0004, 0xFF, 4)  # GICC_PMR
>>> gic.get_gpio_in(1).raise_()
>>> irq[-1], mem.read(0x0801_000C, 4), irq[-1]  # GICC_IAR acknowledges it
(1, 33, 0)
>>> _ = mem.write(0x0801_0010, 33, 4)  # GICC_EOIR; the level input stays high
>>> irq[-1], hex(mem.read(0x0800_0204, 4))  # raised again, still pending
(1, '0x2')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, final

from hw.intc.arm_gic.registers import (
    ALL_CPU_MASK,
    CPU_DECODE,
    GIC_CPU_IFACE_SIZE,
    GIC_CPU_IFACE_SIZE_V1,
    GIC_CPU_REGION_SIZE,
    GIC_DIST_SIZE,
    GIC_ID_GICV1,
    GIC_ID_GICV2,
    GIC_INTERNAL,
    GIC_MAX_PRIORITY_BITS,
    GIC_MAXIRQ,
    GIC_MIN_ABPR,
    GIC_MIN_BPR,
    GIC_MIN_PRIORITY_BITS,
    GIC_NCPU,
    GIC_NR_APRS,
    GIC_NR_SGIS,
    GIC_SPURIOUS,
    GIC_SPURIOUS_GROUP1,
    GICC_CTLR_ACK_CTL,
    GICC_CTLR_CBPR,
    GICC_CTLR_EN_GRP0,
    GICC_CTLR_EN_GRP1,
    GICC_CTLR_EOIMODE,
    GICC_CTLR_FIQ_EN,
    GICC_CTLR_V1_MASK,
    GICC_CTLR_V2_MASK,
    GICD_CTLR_EN_GRP0,
    GICD_CTLR_EN_GRP1,
    IDLE_PRIORITY,
    CpuRegister,
    DistRegister,
    dist_decode,
)
from qemu_api.bql import BqlRefCell
from qemu_api.error import Error
from qemu_api.irq import InterruptSource
from qemu_api.log import LOG_GUEST_ERROR, qemu_log_mask
from qemu_api.memory import MemoryRegion, MemoryRegionOps
from qemu_api.migration.vmstate import (
    VMStateDescription,
    array_field,
    vmstate_array,
    vmstate_bool,
    vmstate_info_uint8,
    vmstate_info_uint16,
    vmstate_info_uint32,
    vmstate_struct_array,
    vmstate_uint8,
    vmstate_uint32,
)
from qemu_api.qdev import ResetType, prop_bool, prop_u32
from qemu_api.qom import override
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_trace.arm_gic import (
    trace_gic_acknowledge_irq,
    trace_gic_cpu_read,
    trace_gic_cpu_write,
    trace_gic_disable_irq,
    trace_gic_dist_read,
    trace_gic_dist_write,
    trace_gic_enable_irq,
    trace_gic_set_irq,
    trace_gic_update_bestirq,
    trace_gic_update_set_irq,
)

__all__ = [
    "TYPE_ARM_GIC",
    "GICIrqState",
    "GICMigrationState",
    "GICRegisters",
    "GICState",
    "gic_create",
]

TYPE_ARM_GIC: Final = "arm_gic"
"""QOM type name of the GIC (:class:`GICState`)."""

_SGI_BITS: Final = (1 << GIC_NR_SGIS) - 1
_PRIVATE_BITS: Final = (1 << GIC_INTERNAL) - 1
_SHARED_BITS: Final = ~_PRIVATE_BITS
_GROUPS: Final = GICD_CTLR_EN_GRP0 | GICD_CTLR_EN_GRP1
_CPU_GROUPS: Final = GICC_CTLR_EN_GRP0 | GICC_CTLR_EN_GRP1
_CPUS_IN: Final = tuple(
    tuple(c for c in range(GIC_NCPU) if mask >> c & 1) for mask in range(256)
)
"""The CPU slots named by each 8-bit CPU mask."""


def _ctz(value: int) -> int:
    """The number of trailing zero bits of a non-zero value (``ctz32``)."""
    return (value & -value).bit_length() - 1


def _union(bitmaps: list[int], cm: int) -> int:
    """The union of the bitmaps of the CPUs of mask ``cm``."""
    result = 0
    for c in _CPUS_IN[cm]:
        result |= bitmaps[c]
    return result


def _any(bitmaps: list[int], cm: int, bit: int) -> bool:
    """Whether ``bit`` is set in the bitmap of any CPU of mask ``cm``."""
    return bool(_union(bitmaps, cm) & bit)


def _set(bitmaps: list[int], cm: int, bit: int) -> None:
    if cm == ALL_CPU_MASK:
        bitmaps[:] = [b | bit for b in bitmaps]
    else:
        for c in _CPUS_IN[cm]:
            bitmaps[c] |= bit


def _clear(bitmaps: list[int], cm: int, bit: int) -> None:
    keep = ~bit
    if cm == ALL_CPU_MASK:
        bitmaps[:] = [b & keep for b in bitmaps]
    else:
        for c in _CPUS_IN[cm]:
            bitmaps[c] &= keep


def _bad_dist_read(offset: int) -> None:
    qemu_log_mask(LOG_GUEST_ERROR, f"gic_dist_readb: Bad offset {offset:x}\n")


def _bad_dist_write(offset: int) -> None:
    qemu_log_mask(LOG_GUEST_ERROR, f"gic_dist_writeb: Bad offset {offset:x}\n")


@final
class GICRegisters:
    """The state of a GIC and the operations on it that do no I/O.

    The fields of QEMU's ``GICState``, with each per-interrupt CPU mask of
    ``gic_irq_state`` kept as eight bitmaps (one per CPU slot, bit *n* for
    interrupt *n*). The device (:class:`GICState`) owns it in a
    :class:`~qemu_api.bql.BqlRefCell`; :meth:`update` (QEMU's
    ``gic_update``) writes the output levels into the list the device gave
    to :meth:`configure` and sets :attr:`drive`, and the device then drives
    its lines.

    Attributes:
        num_cpu: CPU interfaces in use (the ``num-cpu`` property).
        num_irq: interrupts, private ones included (``num-irq``).
        revision: 1 or 2 (``revision``).
        prio_mask: the implemented priority bits (``num-priority-bits``).
        ctlr: GICD_CTLR (EnableGrp0, EnableGrp1).
        cpu_ctlr: GICC_CTLR of each CPU slot.
        enabled: per CPU slot, the enabled interrupts.
        pending: per CPU slot, the latched pending state.
        active: per CPU slot, the active interrupts.
        level: per CPU slot, the input levels.
        group: per CPU slot, the Group 1 interrupts.
        model: the 11MPCore N-N model bits (never set on revision 1 or 2).
        edge: the edge-triggered interrupts.
        irq_target: GICD_ITARGETSR of each interrupt.
        priority1: private priorities, index ``irq * 8 + cpu``.
        priority2: shared priorities, index ``irq - 32``.
        sgi_pending: source CPUs of each SGI, index ``irq * 8 + cpu``.
        priority_mask: GICC_PMR of each CPU slot.
        running_priority: each CPU's running priority (0x100: idle).
        current_pending: each CPU's highest priority pending interrupt.
        bpr: GICC_BPR of each CPU slot.
        abpr: GICC_ABPR of each CPU slot.
        apr: GICC_APRn, index ``n * 8 + cpu``.
        nsapr: GICC_NSAPRn, index ``n * 8 + cpu``.
        drive: set by :meth:`update`: the output levels changed or were
            recomputed and the device must drive its lines.

    >>> regs = GICRegisters()
    >>> regs.configure(1, 64, 2, 8, [0, 0])
    >>> regs.reset()
    >>> regs.set_irq(1, 1), regs.current_pending[0]  # SPI 1 = interrupt 33
    (True, 1023)
    """

    __slots__ = (
        "abpr",
        "active",
        "apr",
        "bpr",
        "cpu_ctlr",
        "ctlr",
        "current_pending",
        "drive",
        "edge",
        "enabled",
        "group",
        "irq_bits",
        "irq_target",
        "level",
        "model",
        "nsapr",
        "num_cpu",
        "num_irq",
        "out",
        "pending",
        "prio_mask",
        "priority1",
        "priority2",
        "priority_mask",
        "revision",
        "running_priority",
        "sgi_pending",
        "spi_active",
        "targets",
    )

    def __init__(self) -> None:
        self.num_cpu = 1
        self.num_irq = GIC_INTERNAL
        self.revision = 1
        self.prio_mask = 0xFF
        self.irq_bits = (1 << GIC_INTERNAL) - 1
        self.out: list[int] = [0, 0]
        self.drive = False
        self.ctlr = 0
        self.cpu_ctlr = [0] * GIC_NCPU
        self.enabled = [0] * GIC_NCPU
        self.pending = [0] * GIC_NCPU
        self.active = [0] * GIC_NCPU
        self.level = [0] * GIC_NCPU
        self.group = [0] * GIC_NCPU
        self.model = 0
        self.edge = 0
        self.irq_target = [0] * GIC_MAXIRQ
        self.targets = [_PRIVATE_BITS] * GIC_NCPU
        self.spi_active = 0
        self.priority1 = [0] * (GIC_INTERNAL * GIC_NCPU)
        self.priority2 = [0] * (GIC_MAXIRQ - GIC_INTERNAL)
        self.sgi_pending = [0] * (GIC_NR_SGIS * GIC_NCPU)
        self.priority_mask = [0] * GIC_NCPU
        self.running_priority = [0] * GIC_NCPU
        self.current_pending = [0] * GIC_NCPU
        self.bpr = [0] * GIC_NCPU
        self.abpr = [0] * GIC_NCPU
        self.apr = [0] * (GIC_NR_APRS * GIC_NCPU)
        self.nsapr = [0] * (GIC_NR_APRS * GIC_NCPU)

    def configure(
        self, num_cpu: int, num_irq: int, revision: int, prio_bits: int, out: list[int]
    ) -> None:
        """Set the configuration the properties chose (at realize).

        Args:
            num_cpu: CPU interfaces, 1 to 8.
            num_irq: interrupts, a multiple of 32 up to 1020.
            revision: 1 or 2.
            prio_bits: implemented priority bits, 4 to 8.
            out: the output levels :meth:`update` writes: ``out[cpu]`` the
                IRQ and ``out[num_cpu + cpu]`` the FIQ of each CPU.
        """
        self.num_cpu = num_cpu
        self.num_irq = num_irq
        self.revision = revision
        self.prio_mask = (0xFF << (8 - prio_bits)) & 0xFF
        self.irq_bits = (1 << num_irq) - 1
        self.out = out

    # -- small helpers -----------------------------------------------------------

    def has_groups(self) -> bool:
        """Interrupt groups exist: a GICv2 (``gic_has_groups``)."""
        return self.revision == 2

    def priority(self, irq: int, cpu: int) -> int:
        """The stored priority of ``irq`` for ``cpu`` (``GIC_DIST_GET_PRIORITY``)."""
        if irq < GIC_INTERNAL:
            return self.priority1[irq * GIC_NCPU + cpu]
        return self.priority2[irq - GIC_INTERNAL]

    def test_group(self, irq: int, cpu: int) -> int:
        """1 when ``irq`` is in Group 1 for ``cpu``, else 0."""
        return self.group[cpu] >> irq & 1

    def refresh_targets(self) -> None:
        """Recompute each CPU slot's target bitmap from ``irq_target``."""
        targets = [_PRIVATE_BITS] * GIC_NCPU
        for irq in range(GIC_INTERNAL, GIC_MAXIRQ):
            mask = self.irq_target[irq]
            if mask:
                bit = 1 << irq
                for c in _CPUS_IN[mask]:
                    targets[c] |= bit
        self.targets = targets

    def refresh_spi_active(self) -> None:
        """Recompute the shared interrupts active on any CPU."""
        self.spi_active = _union(self.active, ALL_CPU_MASK) & _SHARED_BITS

    # -- reset ---------------------------------------------------------------------

    def reset(self) -> None:
        """Reset values (``arm_gic_common_reset_hold``, non-secure reset off).

        Only the slots of existing CPUs are reset, as in QEMU; the outputs
        are not updated.
        """
        zero = [0] * GIC_NCPU
        self.enabled = [_SGI_BITS] * GIC_NCPU
        self.pending = zero.copy()
        self.active = zero.copy()
        self.level = zero.copy()
        self.group = zero.copy()
        self.model = 0
        self.edge = _SGI_BITS
        self.spi_active = 0
        for c in range(self.num_cpu):
            self.priority_mask[c] = 0
            self.current_pending[c] = GIC_SPURIOUS
            self.running_priority[c] = IDLE_PRIORITY
            self.cpu_ctlr[c] = 0
            self.bpr[c] = GIC_MIN_BPR
            self.abpr[c] = GIC_MIN_ABPR
            for j in range(GIC_INTERNAL):
                self.priority1[j * GIC_NCPU + c] = 0
            for j in range(GIC_NR_SGIS):
                self.sgi_pending[j * GIC_NCPU + c] = 0
        self.priority2 = [0] * (GIC_MAXIRQ - GIC_INTERNAL)
        target = 1 if self.num_cpu == 1 else 0
        self.irq_target = [target] * GIC_MAXIRQ
        self.refresh_targets()
        self.ctlr = 0

    # -- the interrupt update (the hot path) ---------------------------------------

    def update(self) -> None:
        """Choose each CPU's best pending interrupt and its output levels.

        QEMU's ``gic_update``, with two differences the specification asks
        for: a shared interrupt active on any CPU is not a candidate, and a
        group disabled in GICD_CTLR is not forwarded.
        """
        ctlr = self.ctlr
        out = self.out
        n = self.num_cpu
        self.drive = True
        for cpu in range(n):
            self.current_pending[cpu] = GIC_SPURIOUS
            cpu_ctlr = self.cpu_ctlr[cpu]
            if not ctlr & _GROUPS or not cpu_ctlr & _CPU_GROUPS:
                out[cpu] = 0
                out[n + cpu] = 0
                continue
            group = self.group[cpu]
            if ctlr & _GROUPS == _GROUPS:
                forwarded = -1
            else:
                forwarded = group if ctlr & GICD_CTLR_EN_GRP1 else ~group
            cand = (
                self.enabled[cpu]
                & (self.pending[cpu] | (self.level[cpu] & ~self.edge))
                & ~(self.active[cpu] | self.spi_active)
                & self.targets[cpu]
                & forwarded
                & self.irq_bits
            )
            best_irq = GIC_SPURIOUS
            best_prio = IDLE_PRIORITY
            while cand:
                low = cand & -cand
                cand ^= low
                irq = low.bit_length() - 1
                if irq < GIC_INTERNAL:
                    prio = self.priority1[irq * GIC_NCPU + cpu]
                else:
                    prio = self.priority2[irq - GIC_INTERNAL]
                if prio < best_prio:
                    best_prio = prio
                    best_irq = irq
            irq_level = fiq_level = 0
            if best_irq != GIC_SPURIOUS:
                pmask = self.priority_mask[cpu]
                running = self.running_priority[cpu]
                trace_gic_update_bestirq(
                    "cpu", cpu, best_irq, best_prio, pmask, running
                )
                if best_prio < pmask:
                    self.current_pending[cpu] = best_irq
                    if best_prio < running:
                        grp = group >> best_irq & 1
                        if ctlr >> grp & 1 and cpu_ctlr >> grp & 1:
                            if grp == 0 and cpu_ctlr & GICC_CTLR_FIQ_EN:
                                fiq_level = 1
                                trace_gic_update_set_irq(cpu, "fiq", 1)
                            else:
                                irq_level = 1
                                trace_gic_update_set_irq(cpu, "irq", 1)
            out[cpu] = irq_level
            out[n + cpu] = fiq_level

    def set_irq(self, line: int, level: int) -> bool:
        """An input line changed (``gic_set_irq``); True if :meth:`update` ran.

        Args:
            line: the GPIO input: SPI *n* is line *n*; then 32 lines per CPU
                for its private interrupts.
            level: the new level (any non-zero value asserts the line).
        """
        spis = self.num_irq - GIC_INTERNAL
        if line < spis:
            cm = ALL_CPU_MASK
            irq = line + GIC_INTERNAL
            target = self.irq_target[irq]
        else:
            line -= spis
            cpu = line // GIC_INTERNAL
            irq = line % GIC_INTERNAL
            cm = 1 << cpu
            target = cm
        if irq < GIC_NR_SGIS:
            # QEMU asserts: SGIs have no input line.
            qemu_log_mask(
                LOG_GUEST_ERROR,
                f"gic_set_irq: input {line} would be SGI {irq}, which has no "
                "input line; ignored\n",
            )
            return False
        bit = 1 << irq
        if level == (1 if _any(self.level, cm, bit) else 0):
            return False
        if level:
            _set(self.level, cm, bit)
            if self.edge & bit:
                _set(self.pending, target, bit)
        else:
            _clear(self.level, cm, bit)
        trace_gic_set_irq(irq, level, cm, target)
        self.update()
        return True

    # -- the CPU interface ---------------------------------------------------------

    def pending_irq(self, cpu: int) -> int:
        """GICC_HPPIR's interrupt ID (``gic_get_current_pending_irq``).

        On a GICv2 without the security extensions accesses act as Secure:
        a Group 1 interrupt reads as 1022 unless GICC_CTLR.AckCtl is set.
        """
        irq = self.current_pending[cpu]
        if (
            irq < GIC_MAXIRQ
            and self.revision == 2
            and self.group[cpu] >> irq & 1
            and not self.cpu_ctlr[cpu] & GICC_CTLR_ACK_CTL
        ):
            return GIC_SPURIOUS_GROUP1
        return irq

    def group_priority(self, cpu: int, irq: int) -> int:
        """The group priority of ``irq``: its priority masked by the binary point."""
        if (
            self.revision == 2
            and not self.cpu_ctlr[cpu] & GICC_CTLR_CBPR
            and self.group[cpu] >> irq & 1
        ):
            bpr = self.abpr[cpu] - 1
        else:
            bpr = self.bpr[cpu]
        return self.priority(irq, cpu) & (0xFFFFFFFF << ((bpr & 7) + 1)) & 0xFF

    def prio_from_apr_bits(self, cpu: int) -> int:
        """The running priority the active priority registers give."""
        for i in range(GIC_NR_APRS):
            apr = self.apr[i * GIC_NCPU + cpu] | self.nsapr[i * GIC_NCPU + cpu]
            if apr:
                return (i * 32 + _ctz(apr)) << (GIC_MIN_BPR + 1)
        return IDLE_PRIORITY

    def clear_pending(self, irq: int, cpu: int) -> None:
        """Clear the pending latch when ``cpu`` acknowledges ``irq``.

        A shared interrupt is handled by one CPU only (the 1-of-N model of
        the specification): its latch clears on every CPU. QEMU clears it on
        the acknowledging CPU only.
        """
        bit = 1 << irq
        if irq >= GIC_INTERNAL or self.model & bit:
            _clear(self.pending, ALL_CPU_MASK, bit)
        else:
            self.pending[cpu] &= ~bit

    def clear_active(self, irq: int, cpu: int) -> None:
        """Deactivate ``irq`` for ``cpu``; a shared interrupt on every CPU."""
        bit = 1 << irq
        if irq < GIC_INTERNAL:
            self.active[cpu] &= ~bit
        else:
            _clear(self.active, ALL_CPU_MASK, bit)
            self.spi_active &= ~bit

    def acknowledge(self, cpu: int) -> int:
        """A GICC_IAR read (``gic_acknowledge_irq``): the interrupt ID, or 1022/1023."""
        irq = self.pending_irq(cpu)
        trace_gic_acknowledge_irq("cpu", cpu, irq)
        if irq >= GIC_MAXIRQ:
            return irq
        if self.priority(irq, cpu) >= self.running_priority[cpu]:
            return GIC_SPURIOUS
        # gic_activate_irq: set the active priority bit, raise the running priority.
        prio = self.group_priority(cpu, irq)
        level = prio >> (GIC_MIN_BPR + 1)
        index = (level // 32) * GIC_NCPU + cpu
        if self.revision == 2 and self.group[cpu] >> irq & 1:
            self.nsapr[index] |= 1 << (level % 32)
        else:
            self.apr[index] |= 1 << (level % 32)
        self.running_priority[cpu] = prio
        bit = 1 << irq
        self.active[cpu] |= bit
        if irq >= GIC_INTERNAL:
            self.spi_active |= bit
        ret = irq
        if irq < GIC_NR_SGIS:
            slot = irq * GIC_NCPU + cpu
            sources = self.sgi_pending[slot]
            src = _ctz(sources) if sources else 0
            sources &= ~(1 << src)
            self.sgi_pending[slot] = sources
            if not sources:
                self.clear_pending(irq, cpu)
            ret = irq | ((src & 7) << 10)
        else:
            self.clear_pending(irq, cpu)
        self.update()
        return ret

    def eoi_split(self, cpu: int) -> bool:
        """GICC_CTLR.EOImode splits priority drop and deactivation (GICv2)."""
        return self.revision == 2 and bool(self.cpu_ctlr[cpu] & GICC_CTLR_EOIMODE)

    def complete(self, cpu: int, irq: int) -> None:
        """A GICC_EOIR write (``gic_complete_irq``): drop the running priority.

        Interrupt IDs beyond ``num-irq`` (1023 included) are ignored, and so
        is an EOI with no active priority. Without EOImode the interrupt is
        deactivated too.
        """
        if irq >= self.num_irq or self.running_priority[cpu] == IDLE_PRIORITY:
            return
        group = self.revision == 2 and self.group[cpu] >> irq & 1
        aprs = self.nsapr if group else self.apr
        for i in range(GIC_NR_APRS):
            index = i * GIC_NCPU + cpu
            if aprs[index]:
                aprs[index] &= aprs[index] - 1  # the highest active priority
                break
        self.running_priority[cpu] = self.prio_from_apr_bits(cpu)
        if not self.eoi_split(cpu):
            self.clear_active(irq, cpu)
        self.update()

    def deactivate(self, cpu: int, irq: int) -> None:
        """A GICC_DIR write (``gic_deactivate_irq``)."""
        if irq >= self.num_irq:
            return
        if not self.eoi_split(cpu):
            qemu_log_mask(
                LOG_GUEST_ERROR,
                "gic_deactivate_irq: GICC_DIR write when EOIMode clear\n",
            )
            return
        self.clear_active(irq, cpu)

    def cpu_read(self, cpu: int, offset: int) -> int:
        """A CPU interface read (``gic_cpu_read``), for any access size."""
        handler = _CPU_READ.get(offset)
        if handler is None:
            qemu_log_mask(LOG_GUEST_ERROR, f"gic_cpu_read: Bad offset {offset:x}\n")
            value = 0
        else:
            value = handler(self, cpu, offset)
        trace_gic_cpu_read("cpu", cpu, offset, value)
        return value

    def cpu_write(self, cpu: int, offset: int, value: int) -> None:
        """A CPU interface write (``gic_cpu_write``), for any access size."""
        trace_gic_cpu_write("cpu", cpu, offset, value)
        handler = _CPU_WRITE.get(offset)
        if handler is None:
            qemu_log_mask(LOG_GUEST_ERROR, f"gic_cpu_write: Bad offset {offset:x}\n")
        elif handler(self, cpu, offset, value):
            self.update()

    def _read_ctlr(self, cpu: int, offset: int) -> int:
        return self.cpu_ctlr[cpu]

    def _read_pmr(self, cpu: int, offset: int) -> int:
        return self.priority_mask[cpu]

    def _read_bpr(self, cpu: int, offset: int) -> int:
        return self.bpr[cpu]

    def _read_iar(self, cpu: int, offset: int) -> int:
        return self.acknowledge(cpu)

    def _read_rpr(self, cpu: int, offset: int) -> int:
        return min(self.running_priority[cpu], 0xFF)

    def _read_hppir(self, cpu: int, offset: int) -> int:
        irq = self.pending_irq(cpu)
        if irq < GIC_NR_SGIS:
            # The specification's CPUID field: the SGI's source CPU (QEMU omits it).
            sources = self.sgi_pending[irq * GIC_NCPU + cpu]
            if sources:
                irq |= (_ctz(sources) & 7) << 10
        return irq

    def _read_abpr(self, cpu: int, offset: int) -> int:
        return self.abpr[cpu] if self.revision == 2 else 0

    def _read_apr(self, cpu: int, offset: int) -> int:
        if self.revision != 2:
            return 0
        return self.apr[((offset - CpuRegister.APR0) >> 2) * GIC_NCPU + cpu]

    def _read_nsapr(self, cpu: int, offset: int) -> int:
        if self.revision != 2:
            return 0
        return self.nsapr[((offset - CpuRegister.NSAPR0) >> 2) * GIC_NCPU + cpu]

    def _read_iidr(self, cpu: int, offset: int) -> int:
        return (self.revision << 16) | 0x43B

    def _write_ctlr(self, cpu: int, offset: int, value: int) -> bool:
        mask = GICC_CTLR_V2_MASK if self.revision == 2 else GICC_CTLR_V1_MASK
        self.cpu_ctlr[cpu] = value & mask
        return True

    def _write_pmr(self, cpu: int, offset: int, value: int) -> bool:
        self.priority_mask[cpu] = value & self.prio_mask
        return True

    def _write_bpr(self, cpu: int, offset: int, value: int) -> bool:
        self.bpr[cpu] = max(value & 7, GIC_MIN_BPR)
        return True

    def _write_eoir(self, cpu: int, offset: int, value: int) -> bool:
        self.complete(cpu, value & 0x3FF)
        return False

    def _write_abpr(self, cpu: int, offset: int, value: int) -> bool:
        if self.revision != 2:
            return False
        self.abpr[cpu] = max(value & 7, GIC_MIN_ABPR)
        return True

    def _write_apr(self, cpu: int, offset: int, value: int) -> bool:
        if self.revision != 2:
            return False
        self.apr[((offset - CpuRegister.APR0) >> 2) * GIC_NCPU + cpu] = value
        self.running_priority[cpu] = self.prio_from_apr_bits(cpu)
        return True

    def _write_nsapr(self, cpu: int, offset: int, value: int) -> bool:
        if self.revision != 2:
            return False
        self.nsapr[((offset - CpuRegister.NSAPR0) >> 2) * GIC_NCPU + cpu] = value
        self.running_priority[cpu] = self.prio_from_apr_bits(cpu)
        return True

    def _write_dir(self, cpu: int, offset: int, value: int) -> bool:
        self.deactivate(cpu, value & 0x3FF)
        return True

    # -- the distributor -----------------------------------------------------------

    def dist_readb(self, offset: int, cpu: int) -> int:
        """One distributor byte (``gic_dist_readb``); bad offsets log and read 0."""
        value = _DIST_READ[offset >> 4](self, offset, cpu)
        if value is None:
            _bad_dist_read(offset)
            return 0
        return value

    def dist_writeb(self, offset: int, value: int, cpu: int) -> bool:
        """One distributor byte write (``gic_dist_writeb``); False for a bad offset.

        The caller runs :meth:`update` after every byte that was not bad,
        as QEMU does.
        """
        if _DIST_WRITE[offset >> 4](self, offset, value, cpu):
            return True
        _bad_dist_write(offset)
        return False

    def write_sgir(self, value: int, cpu: int) -> None:
        """A 32-bit GICD_SGIR write: send SGI ``value & 0xF``, then update.

        Target list filter 0 sends to the CPUs of bits [23:16], 1 to every
        other CPU, 2 to the writer; the reserved 3 sends to all, as QEMU.
        """
        irq = value & 0xF
        match (value >> 24) & 3:
            case 0:
                mask = (value >> 16) & ALL_CPU_MASK
            case 1:
                mask = ALL_CPU_MASK ^ (1 << cpu)
            case 2:
                mask = 1 << cpu
            case _:
                mask = ALL_CPU_MASK
        bit = 1 << irq
        for target in _CPUS_IN[mask]:
            self.pending[target] |= bit
            self.sgi_pending[irq * GIC_NCPU + target] |= 1 << cpu
        self.update()

    def _block_irq(self, offset: int, block: int, per_byte: int) -> int | None:
        irq = (offset - block) * per_byte
        return irq if irq < self.num_irq else None

    def _dread_ctlr(self, offset: int, cpu: int) -> int | None:
        match offset:
            case 0:
                return self.ctlr
            case 4:
                return ((self.num_irq // 32) - 1) | ((self.num_cpu - 1) << 5)
            case 8:
                return 0x3B  # GICD_IIDR: ARM's JEP106 code
            case 9:
                return 0x04
            case _ if offset < 0x0C:
                return 0
            case _:
                return None

    def _dread_igroupr(self, offset: int, cpu: int) -> int | None:
        if not self.has_groups():
            return 0
        irq = self._block_irq(offset, DistRegister.IGROUPR, 8)
        return None if irq is None else (self.group[cpu] >> irq) & 0xFF

    def _dread_enabler(self, offset: int, cpu: int) -> int | None:
        irq = self._block_irq(offset & ~0x80, DistRegister.ISENABLER, 8)
        return None if irq is None else (self.enabled[cpu] >> irq) & 0xFF

    def _dread_pendr(self, offset: int, cpu: int) -> int | None:
        irq = self._block_irq(offset & ~0x80, DistRegister.ISPENDR, 8)
        if irq is None:
            return None
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        pending = _union(self.pending, cm) | (_union(self.level, cm) & ~self.edge)
        return (pending >> irq) & 0xFF

    def _dread_activer(self, offset: int, cpu: int) -> int | None:
        if offset >= DistRegister.ICACTIVER and self.revision != 2:
            return None
        irq = self._block_irq(offset & ~0x80, DistRegister.ISACTIVER, 8)
        if irq is None:
            return None
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        return (_union(self.active, cm) >> irq) & 0xFF

    def _dread_priority(self, offset: int, cpu: int) -> int | None:
        irq = self._block_irq(offset, DistRegister.IPRIORITYR, 1)
        return None if irq is None else self.priority(irq, cpu) & self.prio_mask

    def _dread_targets(self, offset: int, cpu: int) -> int | None:
        if self.num_cpu == 1:
            return 0  # RAZ/WI on a uniprocessor GIC
        irq = self._block_irq(offset, DistRegister.ITARGETSR, 1)
        if irq is None:
            return None
        return 1 << cpu if irq < GIC_INTERNAL else self.irq_target[irq]

    def _dread_icfgr(self, offset: int, cpu: int) -> int | None:
        irq = self._block_irq(offset, DistRegister.ICFGR, 4)
        if irq is None:
            return None
        value = 0
        for i in range(4):
            if self.model >> (irq + i) & 1:
                value |= 1 << (i * 2)
            if self.edge >> (irq + i) & 1:
                value |= 2 << (i * 2)
        return value

    def _dread_sgi_pending(self, offset: int, cpu: int) -> int | None:
        irq = (offset - DistRegister.CPENDSGIR) & 0xF
        return self.sgi_pending[irq * GIC_NCPU + cpu]

    def _dread_id(self, offset: int, cpu: int) -> int | None:
        if offset & 3:
            return 0
        ids = GIC_ID_GICV2 if self.revision == 2 else GIC_ID_GICV1
        return ids[(offset - DistRegister.ID) >> 2]

    def _dread_bad(self, offset: int, cpu: int) -> int | None:
        return None

    def _dwrite_ctlr(self, offset: int, value: int, cpu: int) -> bool:
        if offset == 0:
            self.ctlr = value & (_GROUPS if self.has_groups() else GICD_CTLR_EN_GRP0)
            return True
        return offset < 4  # the other GICD_CTLR bytes ignore writes

    def _dwrite_igroupr(self, offset: int, value: int, cpu: int) -> bool:
        if not self.has_groups():
            return True
        irq = self._block_irq(offset, DistRegister.IGROUPR, 8)
        if irq is None:
            return False
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        for i in range(8):
            if value >> i & 1:
                _set(self.group, cm, 1 << (irq + i))
            else:
                _clear(self.group, cm, 1 << (irq + i))
        return True

    def _dwrite_isenabler(self, offset: int, value: int, cpu: int) -> bool:
        irq = self._block_irq(offset, DistRegister.ISENABLER, 8)
        if irq is None:
            return False
        if irq < GIC_NR_SGIS:
            value = 0xFF
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        for i in range(8):
            if value >> i & 1:
                bit = 1 << (irq + i)
                if not _any(self.enabled, cm, bit):
                    trace_gic_enable_irq(irq + i)
                _set(self.enabled, cm, bit)
        return True

    def _dwrite_icenabler(self, offset: int, value: int, cpu: int) -> bool:
        irq = self._block_irq(offset, DistRegister.ICENABLER, 8)
        if irq is None:
            return False
        if irq < GIC_NR_SGIS:
            value = 0
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        for i in range(8):
            if value >> i & 1:
                bit = 1 << (irq + i)
                if _any(self.enabled, cm, bit):
                    trace_gic_disable_irq(irq + i)
                _clear(self.enabled, cm, bit)
        return True

    def _dwrite_ispendr(self, offset: int, value: int, cpu: int) -> bool:
        irq = self._block_irq(offset, DistRegister.ISPENDR, 8)
        if irq is None:
            return False
        if irq < GIC_NR_SGIS:
            return True  # SGIs are made pending through GICD_SPENDSGIR
        for i in range(8):
            if value >> i & 1:
                n = irq + i
                mask = 1 << cpu if n < GIC_INTERNAL else self.irq_target[n]
                _set(self.pending, mask, 1 << n)
        return True

    def _dwrite_icpendr(self, offset: int, value: int, cpu: int) -> bool:
        irq = self._block_irq(offset, DistRegister.ICPENDR, 8)
        if irq is None:
            return False
        if irq < GIC_NR_SGIS:
            return True
        # The specification banks GICD_ICPENDR0 (PPIs) per CPU; QEMU clears
        # the pending state on every CPU.
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        for i in range(8):
            if value >> i & 1:
                _clear(self.pending, cm, 1 << (irq + i))
        return True

    def _dwrite_isactiver(self, offset: int, value: int, cpu: int) -> bool:
        if self.revision != 2:
            return False
        irq = self._block_irq(offset, DistRegister.ISACTIVER, 8)
        if irq is None:
            return False
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        for i in range(8):
            if value >> i & 1:
                _set(self.active, cm, 1 << (irq + i))
        self.refresh_spi_active()
        return True

    def _dwrite_icactiver(self, offset: int, value: int, cpu: int) -> bool:
        if self.revision != 2:
            return False
        irq = self._block_irq(offset, DistRegister.ICACTIVER, 8)
        if irq is None:
            return False
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        for i in range(8):
            if value >> i & 1:
                _clear(self.active, cm, 1 << (irq + i))
        self.refresh_spi_active()
        return True

    def _dwrite_priority(self, offset: int, value: int, cpu: int) -> bool:
        irq = self._block_irq(offset, DistRegister.IPRIORITYR, 1)
        if irq is None:
            return False
        value &= self.prio_mask
        if irq < GIC_INTERNAL:
            self.priority1[irq * GIC_NCPU + cpu] = value
        else:
            self.priority2[irq - GIC_INTERNAL] = value
        return True

    def _dwrite_targets(self, offset: int, value: int, cpu: int) -> bool:
        if self.num_cpu == 1:
            return True  # RAZ/WI on a uniprocessor GIC
        irq = self._block_irq(offset, DistRegister.ITARGETSR, 1)
        if irq is None:
            return False
        if irq < GIC_INTERNAL:
            value = ALL_CPU_MASK  # read only: each CPU reads its own bit
        value &= ALL_CPU_MASK
        self.irq_target[irq] = value
        if irq >= GIC_INTERNAL:
            bit = 1 << irq
            for c in range(GIC_NCPU):
                if value >> c & 1:
                    self.targets[c] |= bit
                else:
                    self.targets[c] &= ~bit
            if _any(self.pending, ALL_CPU_MASK, bit):
                # A pending shared interrupt follows its new targets.
                _clear(self.pending, ALL_CPU_MASK, bit)
                _set(self.pending, value, bit)
        return True

    def _dwrite_icfgr(self, offset: int, value: int, cpu: int) -> bool:
        irq = self._block_irq(offset, DistRegister.ICFGR, 4)
        if irq is None:
            return False
        if irq < GIC_NR_SGIS:
            value |= 0xAA  # SGIs are edge-triggered
        for i in range(4):
            bit = 1 << (irq + i)
            if value & (2 << (i * 2)):
                self.edge |= bit
            else:
                self.edge &= ~bit
        return True

    def _dwrite_cpendsgir(self, offset: int, value: int, cpu: int) -> bool:
        irq = offset - DistRegister.CPENDSGIR
        slot = irq * GIC_NCPU + cpu
        self.sgi_pending[slot] &= ~value
        if not self.sgi_pending[slot]:
            self.pending[cpu] &= ~(1 << irq)
        return True

    def _dwrite_spendsgir(self, offset: int, value: int, cpu: int) -> bool:
        if value:  # QEMU marks the SGI pending even for 0 (no source CPU)
            irq = offset - DistRegister.SPENDSGIR
            self.pending[cpu] |= 1 << irq
            self.sgi_pending[irq * GIC_NCPU + cpu] |= value
        return True

    def _dwrite_bad(self, offset: int, value: int, cpu: int) -> bool:
        return False


_DistRead = Callable[[GICRegisters, int, int], "int | None"]
_DistWrite = Callable[[GICRegisters, int, int, int], bool]

_DIST_READERS: Final[dict[DistRegister, _DistRead]] = {
    DistRegister.CTLR: GICRegisters._dread_ctlr,
    DistRegister.IGROUPR: GICRegisters._dread_igroupr,
    DistRegister.ISENABLER: GICRegisters._dread_enabler,
    DistRegister.ICENABLER: GICRegisters._dread_enabler,
    DistRegister.ISPENDR: GICRegisters._dread_pendr,
    DistRegister.ICPENDR: GICRegisters._dread_pendr,
    DistRegister.ISACTIVER: GICRegisters._dread_activer,
    DistRegister.ICACTIVER: GICRegisters._dread_activer,
    DistRegister.IPRIORITYR: GICRegisters._dread_priority,
    DistRegister.ITARGETSR: GICRegisters._dread_targets,
    DistRegister.ICFGR: GICRegisters._dread_icfgr,
    DistRegister.SGIR: GICRegisters._dread_bad,
    DistRegister.CPENDSGIR: GICRegisters._dread_sgi_pending,
    DistRegister.SPENDSGIR: GICRegisters._dread_sgi_pending,
    DistRegister.RESERVED: GICRegisters._dread_bad,
    DistRegister.ID: GICRegisters._dread_id,
}
_DIST_WRITERS: Final[dict[DistRegister, _DistWrite]] = {
    DistRegister.CTLR: GICRegisters._dwrite_ctlr,
    DistRegister.IGROUPR: GICRegisters._dwrite_igroupr,
    DistRegister.ISENABLER: GICRegisters._dwrite_isenabler,
    DistRegister.ICENABLER: GICRegisters._dwrite_icenabler,
    DistRegister.ISPENDR: GICRegisters._dwrite_ispendr,
    DistRegister.ICPENDR: GICRegisters._dwrite_icpendr,
    DistRegister.ISACTIVER: GICRegisters._dwrite_isactiver,
    DistRegister.ICACTIVER: GICRegisters._dwrite_icactiver,
    DistRegister.IPRIORITYR: GICRegisters._dwrite_priority,
    DistRegister.ITARGETSR: GICRegisters._dwrite_targets,
    DistRegister.ICFGR: GICRegisters._dwrite_icfgr,
    DistRegister.SGIR: GICRegisters._dwrite_bad,  # a 32-bit write is GICD_SGIR
    DistRegister.CPENDSGIR: GICRegisters._dwrite_cpendsgir,
    DistRegister.SPENDSGIR: GICRegisters._dwrite_spendsgir,
    DistRegister.RESERVED: GICRegisters._dwrite_bad,
    DistRegister.ID: GICRegisters._dwrite_bad,
}
# The handlers by offset >> 4, so that a byte access is one tuple index.
_DIST_READ: Final = tuple(
    _DIST_READERS[dist_decode(b << 4)] for b in range(GIC_DIST_SIZE >> 4)
)
_DIST_WRITE: Final = tuple(
    _DIST_WRITERS[dist_decode(b << 4)] for b in range(GIC_DIST_SIZE >> 4)
)

_CPU_READERS: Final[dict[CpuRegister, Callable[[GICRegisters, int, int], int]]] = {
    CpuRegister.CTLR: GICRegisters._read_ctlr,
    CpuRegister.PMR: GICRegisters._read_pmr,
    CpuRegister.BPR: GICRegisters._read_bpr,
    CpuRegister.IAR: GICRegisters._read_iar,
    CpuRegister.RPR: GICRegisters._read_rpr,
    CpuRegister.HPPIR: GICRegisters._read_hppir,
    CpuRegister.ABPR: GICRegisters._read_abpr,
    CpuRegister.APR0: GICRegisters._read_apr,
    CpuRegister.APR1: GICRegisters._read_apr,
    CpuRegister.APR2: GICRegisters._read_apr,
    CpuRegister.APR3: GICRegisters._read_apr,
    CpuRegister.NSAPR0: GICRegisters._read_nsapr,
    CpuRegister.NSAPR1: GICRegisters._read_nsapr,
    CpuRegister.NSAPR2: GICRegisters._read_nsapr,
    CpuRegister.NSAPR3: GICRegisters._read_nsapr,
    CpuRegister.IIDR: GICRegisters._read_iidr,
}
_CPU_WRITERS: Final[
    dict[CpuRegister, Callable[[GICRegisters, int, int, int], bool]]
] = {
    CpuRegister.CTLR: GICRegisters._write_ctlr,
    CpuRegister.PMR: GICRegisters._write_pmr,
    CpuRegister.BPR: GICRegisters._write_bpr,
    CpuRegister.EOIR: GICRegisters._write_eoir,
    CpuRegister.ABPR: GICRegisters._write_abpr,
    CpuRegister.APR0: GICRegisters._write_apr,
    CpuRegister.APR1: GICRegisters._write_apr,
    CpuRegister.APR2: GICRegisters._write_apr,
    CpuRegister.APR3: GICRegisters._write_apr,
    CpuRegister.NSAPR0: GICRegisters._write_nsapr,
    CpuRegister.NSAPR1: GICRegisters._write_nsapr,
    CpuRegister.NSAPR2: GICRegisters._write_nsapr,
    CpuRegister.NSAPR3: GICRegisters._write_nsapr,
    CpuRegister.DIR: GICRegisters._write_dir,
}
# Keyed by plain offsets: one dict lookup per access, no enum conversion.
_CPU_READ: Final = {int(CPU_DECODE[int(r)]): f for r, f in _CPU_READERS.items()}
_CPU_WRITE: Final = {int(CPU_DECODE[int(r)]): f for r, f in _CPU_WRITERS.items()}


# -- migration: QEMU's layout -------------------------------------------------------


@dataclass
class GICIrqState:
    """One entry of QEMU's ``irq_state`` array (``gic_irq_state``): CPU masks."""

    enabled: int = 0
    pending: int = 0
    active: int = 0
    level: int = 0
    model: bool = False
    edge_trigger: bool = False
    group: int = 0

    vmsd = VMStateDescription(
        "arm_gic_irq_state",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_uint8("enabled"),
            vmstate_uint8("pending"),
            vmstate_uint8("active"),
            vmstate_uint8("level"),
            vmstate_bool("model"),
            vmstate_bool("edge_trigger"),
            vmstate_uint8("group"),
        ],
    )
    """QEMU's ``vmstate_gic_irq_state``."""


@dataclass
class GICMigrationState:
    """The GIC state in QEMU's ``GICState`` layout, as the stream carries it.

    Filled from :class:`GICRegisters` before saving and copied back after
    loading; two-dimensional C arrays are flattened in C order
    (``priority1[irq][cpu]`` is ``priority1[irq * 8 + cpu]``).
    """

    ctlr: int = 0
    cpu_ctlr: list[int] = array_field(int, GIC_NCPU)
    irq_state: list[GICIrqState] = array_field(GICIrqState, GIC_MAXIRQ)
    irq_target: list[int] = array_field(int, GIC_MAXIRQ)
    priority1: list[int] = array_field(int, GIC_INTERNAL * GIC_NCPU)
    priority2: list[int] = array_field(int, GIC_MAXIRQ - GIC_INTERNAL)
    sgi_pending: list[int] = array_field(int, GIC_NR_SGIS * GIC_NCPU)
    priority_mask: list[int] = array_field(int, GIC_NCPU)
    running_priority: list[int] = array_field(int, GIC_NCPU)
    current_pending: list[int] = array_field(int, GIC_NCPU)
    bpr: list[int] = array_field(int, GIC_NCPU)
    abpr: list[int] = array_field(int, GIC_NCPU)
    apr: list[int] = array_field(int, GIC_NR_APRS * GIC_NCPU)
    nsapr: list[int] = array_field(int, GIC_NR_APRS * GIC_NCPU)

    def capture(self, regs: GICRegisters) -> None:
        """Copy the registers into QEMU's layout."""
        self.ctlr = regs.ctlr
        self.cpu_ctlr[:] = regs.cpu_ctlr
        for irq, entry in enumerate(self.irq_state):
            entry.enabled = _mask_of(regs.enabled, irq)
            entry.pending = _mask_of(regs.pending, irq)
            entry.active = _mask_of(regs.active, irq)
            entry.level = _mask_of(regs.level, irq)
            entry.model = bool(regs.model >> irq & 1)
            entry.edge_trigger = bool(regs.edge >> irq & 1)
            entry.group = _mask_of(regs.group, irq)
        self.irq_target[:] = regs.irq_target
        self.priority1[:] = regs.priority1
        self.priority2[:] = regs.priority2
        self.sgi_pending[:] = regs.sgi_pending
        self.priority_mask[:] = regs.priority_mask
        self.running_priority[:] = regs.running_priority
        self.current_pending[:] = regs.current_pending
        self.bpr[:] = regs.bpr
        self.abpr[:] = regs.abpr
        self.apr[:] = regs.apr
        self.nsapr[:] = regs.nsapr

    def check(self, regs: GICRegisters) -> None:
        """Refuse values the model cannot run with, naming the field.

        Raises:
            Error: a CPU interface of the configured CPUs holds an impossible
                value (a corrupt stream, or one from a differently
                configured GIC).
        """
        for cpu in range(regs.num_cpu):
            checks = (
                ("priority_mask", self.priority_mask[cpu], 0, 0xFF),
                ("running_priority", self.running_priority[cpu], 0, IDLE_PRIORITY),
                ("bpr", self.bpr[cpu], GIC_MIN_BPR, 7),
                ("abpr", self.abpr[cpu], 0, 7),  # 0 before the first reset
            )
            for name, value, lo, hi in checks:
                if not lo <= value <= hi:
                    raise Error(
                        f"arm_gic: {name}[{cpu}] is {value} in the stream; "
                        f"expected {lo} to {hi}"
                    )
            pending = self.current_pending[cpu]
            if pending != GIC_SPURIOUS and pending >= regs.num_irq:
                raise Error(
                    f"arm_gic: current_pending[{cpu}] is {pending} in the stream, "
                    f"but this GIC has {regs.num_irq} interrupts (num-irq); "
                    "expected an interrupt ID below it or 1023"
                )

    def restore(self, regs: GICRegisters) -> None:
        """Copy QEMU's layout back into the registers (after :meth:`check`)."""
        regs.ctlr = self.ctlr
        regs.cpu_ctlr[:] = self.cpu_ctlr
        for name in ("enabled", "pending", "active", "level", "group"):
            maps = [0] * GIC_NCPU
            for irq, entry in enumerate(self.irq_state):
                mask = getattr(entry, name)
                if mask:
                    bit = 1 << irq
                    for c in _CPUS_IN[mask & ALL_CPU_MASK]:
                        maps[c] |= bit
            setattr(regs, name, maps)
        regs.model = sum(1 << i for i, e in enumerate(self.irq_state) if e.model)
        regs.edge = sum(1 << i for i, e in enumerate(self.irq_state) if e.edge_trigger)
        regs.irq_target[:] = self.irq_target
        regs.priority1[:] = self.priority1
        regs.priority2[:] = self.priority2
        regs.sgi_pending[:] = self.sgi_pending
        regs.priority_mask[:] = self.priority_mask
        regs.running_priority[:] = self.running_priority
        regs.current_pending[:] = self.current_pending
        regs.bpr[:] = self.bpr
        regs.abpr[:] = self.abpr
        regs.apr[:] = self.apr
        regs.nsapr[:] = self.nsapr
        regs.refresh_targets()
        regs.refresh_spi_active()


def _mask_of(bitmaps: list[int], irq: int) -> int:
    mask = 0
    for c in range(GIC_NCPU):
        mask |= (bitmaps[c] >> irq & 1) << c
    return mask


# -- the device ----------------------------------------------------------------------


@final
class GicCpuView:
    """The opaque of a per-CPU interface region: the GIC and the CPU it serves."""

    __slots__ = ("cpu", "gic")

    def __init__(self, gic: GICState, cpu: int) -> None:
        self.gic = gic
        self.cpu = cpu

    def read(self, offset: int, size: int) -> int:
        """A read of this CPU's interface (``gic_do_cpu_read``)."""
        return self.gic.cpu_iface_read(self.cpu, offset)

    def write(self, offset: int, value: int, size: int) -> None:
        """A write to this CPU's interface (``gic_do_cpu_write``)."""
        self.gic.cpu_iface_write(self.cpu, offset, value)


class GICState(SysBusDevice, type_name=TYPE_ARM_GIC):
    """The ARM Generic Interrupt Controller, QEMU's ``TYPE_ARM_GIC``.

    Set the properties, realize it (which creates the lines and regions the
    properties ask for) and reset it before use (a machine reset does).

    Attributes:
        regs: the register state.
        iomem: the distributor region (sysbus MMIO 0).
        cpuiomem: the current CPU's interface (MMIO 1), then each CPU's.
        parent_irq: each CPU's IRQ output (sysbus IRQ ``cpu``).
        parent_fiq: each CPU's FIQ output (sysbus IRQ ``num-cpu + cpu``).
        parent_virq: each CPU's VIRQ output (never raised).
        parent_vfiq: each CPU's VFIQ output (never raised).
    """

    user_creatable = False

    regs: BqlRefCell[GICRegisters]
    mig: BqlRefCell[GICMigrationState]

    num_cpu = prop_u32("num-cpu", default=1, doc="CPU interfaces (1 to 8)")
    num_irq = prop_u32(
        "num-irq", default=32, doc="interrupts, the 32 private ones included"
    )
    revision = prop_u32("revision", default=1, doc="GIC architecture version: 1 or 2")
    security_extn = prop_bool(
        "has-security-extensions",
        default=False,
        doc="implement the security extensions (not supported)",
    )
    virt_extn = prop_bool(
        "has-virtualization-extensions",
        default=False,
        doc="implement the virtualization extensions (not supported)",
    )
    n_prio_bits = prop_u32(
        "num-priority-bits", default=8, doc="implemented priority bits (4 to 8)"
    )

    @override
    def instance_init(self) -> None:
        super().instance_init()
        self.regs = BqlRefCell(GICRegisters())
        self.mig = BqlRefCell(GICMigrationState())
        self.parent_irq: tuple[InterruptSource, ...] = ()
        self.parent_fiq: tuple[InterruptSource, ...] = ()
        self.parent_virq: tuple[InterruptSource, ...] = ()
        self.parent_vfiq: tuple[InterruptSource, ...] = ()
        self.cpuiomem: tuple[MemoryRegion, ...] = ()
        self._levels: list[int] = []
        self._lines: tuple[InterruptSource, ...] = ()

    def _check_properties(self) -> None:
        """``arm_gic_common_realize`` and ``arm_gic_realize``'s checks."""
        if self.num_cpu > GIC_NCPU or self.num_cpu == 0:
            raise Error(
                f"requested {self.num_cpu} CPUs: expected 1 to {GIC_NCPU} "
                "(the GIC maximum)",
                hint="set num-cpu to the number of CPUs wired to the GIC",
            )
        if self.num_irq > GIC_MAXIRQ:
            raise Error(
                f"requested {self.num_irq} interrupt lines exceeds GIC maximum "
                f"{GIC_MAXIRQ}",
                hint="num-irq counts the 32 private interrupts too; at most 992",
            )
        if self.num_irq < GIC_INTERNAL or self.num_irq % 32:
            raise Error(
                f"{self.num_irq} interrupt lines unsupported: not divisible by 32",
                hint="num-irq is 32 private interrupts plus the SPIs, a multiple "
                "of 32 (QEMU's virt uses 288)",
            )
        if self.revision not in (1, 2):
            what = "the 11MPCore GIC" if self.revision == 0 else "no GIC revision"
            raise Error(
                f"arm_gic revision {self.revision} ({what}) is not implemented; "
                "expected 1 or 2"
            )
        if self.virt_extn and self.revision != 2:
            raise Error(
                "GIC virtualization extensions are only supported by revision 2"
            )
        for name, asked in (
            ("has-security-extensions", self.security_extn),
            ("has-virtualization-extensions", self.virt_extn),
        ):
            if asked:
                raise Error(
                    f"arm_gic: {name} is not implemented by this model",
                    hint="leave it off (the virt board's default: secure=off, "
                    "virtualization=off)",
                )
        if not GIC_MIN_PRIORITY_BITS <= self.n_prio_bits <= GIC_MAX_PRIORITY_BITS:
            raise Error(
                f"num-priority-bits cannot be greater than {GIC_MAX_PRIORITY_BITS} "
                f"or less than {GIC_MIN_PRIORITY_BITS}"
            )

    @override
    def realize(self) -> None:
        super().realize()
        self._check_properties()
        n = self.num_cpu
        self._levels = [0] * (2 * n)
        with self.regs.borrow_mut() as regs:
            regs.configure(
                n, self.num_irq, self.revision, self.n_prio_bits, self._levels
            )
        # gic_init_irqs_and_mmio: SPIs, then 32 private inputs per CPU.
        self.init_gpio_in(self._set_irq, self.num_irq - GIC_INTERNAL + GIC_INTERNAL * n)
        self.parent_irq = tuple(InterruptSource() for _ in range(n))
        self.parent_fiq = tuple(InterruptSource() for _ in range(n))
        self.parent_virq = tuple(InterruptSource() for _ in range(n))
        self.parent_vfiq = tuple(InterruptSource() for _ in range(n))
        for lines in (
            self.parent_irq,
            self.parent_fiq,
            self.parent_virq,
            self.parent_vfiq,
        ):
            for line in lines:
                self.init_irq(line)
        self._lines = self.parent_irq + self.parent_fiq
        self.iomem = MemoryRegion.io(
            self, "gic_dist", GIC_DIST_SIZE, GIC_DIST_OPS, self
        )
        self.init_mmio(self.iomem)
        size = GIC_CPU_IFACE_SIZE if self.revision == 2 else GIC_CPU_IFACE_SIZE_V1
        regions = [MemoryRegion.io(self, "gic_cpu", size, GIC_CPU_OPS, self)]
        for cpu in range(n):
            view = GicCpuView(self, cpu)
            regions.append(
                MemoryRegion.io(
                    self, "gic_cpu", GIC_CPU_REGION_SIZE, GIC_CPU_VIEW_OPS, view
                )
            )
        self.cpuiomem = tuple(regions)
        for region in regions:
            self.init_mmio(region)

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        super().reset_hold(reset_type)
        with self.regs.borrow_mut() as regs:
            regs.reset()

    # -- outputs -------------------------------------------------------------------

    def _drive(self) -> None:
        """Drive the IRQ and FIQ lines from the last update, as ``gic_update`` does."""
        levels = self._levels
        lines = self._lines
        for i in range(len(lines)):
            lines[i].set(levels[i])

    def _set_irq(self, line: int, level: int) -> None:
        with self.regs.borrow_mut() as regs:
            changed = regs.set_irq(line, level)
        if changed:
            self._drive()

    # -- MMIO ----------------------------------------------------------------------

    def dist_read(self, offset: int, size: int) -> int:
        """A distributor read (``gic_dist_read``): ``size`` byte reads."""
        with self.regs.borrow() as regs:
            value = regs.dist_readb(offset, 0)
            for i in range(1, size):
                value |= regs.dist_readb(offset + i, 0) << (8 * i)
        trace_gic_dist_read(offset, size, value)
        return value

    def dist_write(self, offset: int, value: int, size: int) -> None:
        """A distributor write (``gic_dist_write``): byte writes, or GICD_SGIR."""
        trace_gic_dist_write(offset, size, value)
        if size == 4 and offset == DistRegister.SGIR:
            with self.regs.borrow_mut() as regs:
                regs.write_sgir(value, 0)
            self._drive()
            return
        for i in range(size):
            with self.regs.borrow_mut() as regs:
                ok = regs.dist_writeb(offset + i, (value >> (8 * i)) & 0xFF, 0)
                if ok:
                    regs.update()
            if ok:
                self._drive()

    def cpu_iface_read(self, cpu: int, offset: int) -> int:
        """A read of ``cpu``'s interface (``gic_cpu_read``)."""
        with self.regs.borrow_mut() as regs:
            regs.drive = False
            value = regs.cpu_read(cpu, offset)
            drive = regs.drive
        if drive:
            self._drive()
        return value

    def cpu_iface_write(self, cpu: int, offset: int, value: int) -> None:
        """A write to ``cpu``'s interface (``gic_cpu_write``)."""
        with self.regs.borrow_mut() as regs:
            regs.drive = False
            regs.cpu_write(cpu, offset, value)
            drive = regs.drive
        if drive:
            self._drive()

    def cpu_read(self, offset: int, size: int) -> int:
        """A read of the accessing CPU's interface (``gic_thiscpu_read``)."""
        return self.cpu_iface_read(0, offset)

    def cpu_write(self, offset: int, value: int, size: int) -> None:
        """A write to the accessing CPU's interface (``gic_thiscpu_write``)."""
        self.cpu_iface_write(0, offset, value)

    # -- migration -----------------------------------------------------------------

    def pre_save(self) -> None:
        """Put the state in QEMU's layout for the stream."""
        with self.regs.borrow() as regs, self.mig.borrow_mut() as mig:
            mig.capture(regs)

    def post_load(self, version_id: int) -> None:
        """Take a loaded state; the outputs are not updated, as in QEMU.

        Raises:
            Error: the stream holds values this GIC cannot run with.
        """
        with self.regs.borrow_mut() as regs, self.mig.borrow() as mig:
            mig.check(regs)
            mig.restore(regs)

    vmsd = VMStateDescription(
        "arm_gic",
        version_id=12,
        minimum_version_id=12,
        pre_save=pre_save,
        post_load=post_load,
        fields=[
            vmstate_uint32("ctlr", path="mig.ctlr"),
            vmstate_array(
                "cpu_ctlr", vmstate_info_uint32, GIC_NCPU, path="mig.cpu_ctlr"
            ),
            vmstate_struct_array(
                "irq_state",
                GICIrqState.vmsd,
                GIC_MAXIRQ,
                path="mig.irq_state",
                size=7,
                version_id=1,
            ),
            vmstate_array(
                "irq_target", vmstate_info_uint8, GIC_MAXIRQ, path="mig.irq_target"
            ),
            vmstate_array(
                "priority1",
                vmstate_info_uint8,
                GIC_INTERNAL * GIC_NCPU,
                path="mig.priority1",
            ),
            vmstate_array(
                "priority2",
                vmstate_info_uint8,
                GIC_MAXIRQ - GIC_INTERNAL,
                path="mig.priority2",
            ),
            vmstate_array(
                "sgi_pending",
                vmstate_info_uint8,
                GIC_NR_SGIS * GIC_NCPU,
                path="mig.sgi_pending",
            ),
            vmstate_array(
                "priority_mask", vmstate_info_uint16, GIC_NCPU, path="mig.priority_mask"
            ),
            vmstate_array(
                "running_priority",
                vmstate_info_uint16,
                GIC_NCPU,
                path="mig.running_priority",
            ),
            vmstate_array(
                "current_pending",
                vmstate_info_uint16,
                GIC_NCPU,
                path="mig.current_pending",
            ),
            vmstate_array("bpr", vmstate_info_uint8, GIC_NCPU, path="mig.bpr"),
            vmstate_array("abpr", vmstate_info_uint8, GIC_NCPU, path="mig.abpr"),
            vmstate_array(
                "apr", vmstate_info_uint32, GIC_NR_APRS * GIC_NCPU, path="mig.apr"
            ),
            vmstate_array(
                "nsapr", vmstate_info_uint32, GIC_NR_APRS * GIC_NCPU, path="mig.nsapr"
            ),
        ],
    )
    """QEMU's ``vmstate_gic``: the section ``arm_gic``, version 12.

    QEMU's subsection ``arm_gic_virt_state`` (sent only with the
    virtualization extensions) is not declared: a stream that has it fails
    to load with an error naming it.
    """


GIC_DIST_OPS: Final = MemoryRegionOps[GICState](
    read=GICState.dist_read, write=GICState.dist_write
)
"""The distributor's ops (QEMU's ``gic_ops[0]``): native endian, 1-4 byte callbacks."""
GIC_CPU_OPS: Final = MemoryRegionOps[GICState](
    read=GICState.cpu_read, write=GICState.cpu_write
)
"""The current CPU's interface (``gic_ops[1]``)."""
GIC_CPU_VIEW_OPS: Final = MemoryRegionOps[GicCpuView](
    read=GicCpuView.read, write=GicCpuView.write
)
"""A given CPU's interface (``gic_cpu_ops``)."""


def gic_create(
    num_cpu: int, num_irq: int, revision: int, dist_addr: int, cpu_addr: int
) -> GICState:
    """Create, realize and map a GIC, as QEMU's boards do (not reset yet).

    Args:
        num_cpu: CPU interfaces.
        num_irq: interrupts, the 32 private ones included.
        revision: 1 or 2.
        dist_addr: where to map the distributor (MMIO 0).
        cpu_addr: where to map the CPU interface (MMIO 1).

    Returns:
        The realized device.
    """
    dev = GICState()
    dev.num_cpu = num_cpu
    dev.num_irq = num_irq
    dev.revision = revision
    sysbus_realize(dev)
    dev.mmio_map(0, dist_addr)
    dev.mmio_map(1, cpu_addr)
    return dev
