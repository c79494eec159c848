"""The ARM Generic Interrupt Controller (GICv1/GICv2), as QEMU's ``arm_gic`` models it.

This is QEMU's ``hw/intc/arm_gic.c`` and ``hw/intc/arm_gic_common.c``
(``include/hw/intc/arm_gic_common.h``, ``hw/intc/gic_internal.h``) in Python,
without the security and virtualization extensions; the registers are
declared in two register maps, :attr:`GICState.registers` (the distributor)
and :attr:`GicCpuView.registers` (the banked CPU interface), with the
constants and offsets of :mod:`hw.intc.arm_gic.registers`. Where QEMU
departs from the GICv2 architecture specification (ARM IHI 0048B), this
model follows the specification; ``docs/devices/arm_gic.rst`` lists each difference.

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
    GIC_CPU_IFACE_SIZE,
    GIC_CPU_IFACE_SIZE_V1,
    GIC_CPU_REGION_SIZE,
    GIC_DIST_SIZE,
    GIC_ID_GICV1,
    GIC_ID_GICV2,
    GIC_INTERNAL,
    GIC_MAX_IRQ_IDS,
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
)
from qemu_api.bql import BqlRefCell, BqlStruct
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
from qemu_api.register import (
    RO,
    RW,
    WO,
    Decode,
    Register,
    RegisterArray,
    RegisterLog,
    RegisterMap,
)
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
    "GicCpuView",
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
    if cm == ALL_CPU_MASK:
        b0, b1, b2, b3, b4, b5, b6, b7 = bitmaps
        return b0 | b1 | b2 | b3 | b4 | b5 | b6 | b7
    result = 0
    for c in _CPUS_IN[cm]:
        result |= bitmaps[c]
    return result


def _any(bitmaps: list[int], cm: int, bit: int) -> bool:
    """Whether ``bit`` is set in the bitmap of any CPU of mask ``cm``."""
    return bool(_union(bitmaps, cm) & bit)


# _set and _clear change every CPU slot one statement at a time when the
# mask names them all (a shared interrupt): cheaper than a loop or a list
# comprehension, and this is the interrupt path.


def _set(bitmaps: list[int], cm: int, bit: int) -> None:
    if cm == ALL_CPU_MASK:
        bitmaps[0] |= bit
        bitmaps[1] |= bit
        bitmaps[2] |= bit
        bitmaps[3] |= bit
        bitmaps[4] |= bit
        bitmaps[5] |= bit
        bitmaps[6] |= bit
        bitmaps[7] |= bit
    else:
        for c in _CPUS_IN[cm]:
            bitmaps[c] |= bit


def _clear(bitmaps: list[int], cm: int, bit: int) -> None:
    keep = ~bit
    if cm == ALL_CPU_MASK:
        bitmaps[0] &= keep
        bitmaps[1] &= keep
        bitmaps[2] &= keep
        bitmaps[3] &= keep
        bitmaps[4] &= keep
        bitmaps[5] &= keep
        bitmaps[6] &= keep
        bitmaps[7] &= keep
    else:
        for c in _CPUS_IN[cm]:
            bitmaps[c] &= keep


def _bad_dist_write(offset: int) -> None:
    qemu_log_mask(LOG_GUEST_ERROR, f"gic_dist_writeb: Bad offset {offset:x}\n")


@final
class GICRegisters(BqlStruct):
    """The state of a GIC and the operations on it that do no I/O.

    The fields of QEMU's ``GICState``, with each per-interrupt CPU mask of
    ``gic_irq_state`` kept as eight bitmaps (one per CPU slot, bit *n* for
    interrupt *n*). A :class:`~qemu_api.bql.BqlStruct`: the device
    (:class:`GICState`) works on it inside one ``borrow_mut()`` block per
    register access, on the raw view; :meth:`update` (QEMU's ``gic_update``)
    writes the output levels into the list the device gave to
    :meth:`configure` and sets :attr:`drive`, and the device then drives its
    lines once the block has ended.

    Attributes:
        num_cpu: CPU interfaces in use (the ``num-cpu`` property).
        num_irq: interrupts, private ones included (``num-irq``).
        revision: 1 or 2 (``revision``).
        prio_mask: the implemented priority bits (``num-priority-bits``).
        irq_bits: a mask of the ``num_irq`` interrupts.
        out: the output levels :meth:`update` computes.
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
        targets: per CPU slot, the interrupts that target it.
        spi_active: the shared interrupts active on any CPU.
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
    >>> with regs.borrow_mut() as raw:
    ...     raw.configure(1, 64, 2, 8, [0, 0])
    ...     raw.reset()
    ...     raw.set_irq(1, 1), raw.current_pending[0]  # SPI 1 = interrupt 33
    (True, 1023)
    """

    num_cpu: int
    num_irq: int
    revision: int
    prio_mask: int
    irq_bits: int
    out: list[int]
    drive: bool
    ctlr: int
    cpu_ctlr: list[int]
    enabled: list[int]
    pending: list[int]
    active: list[int]
    level: list[int]
    group: list[int]
    model: int
    edge: int
    irq_target: list[int]
    targets: list[int]
    spi_active: int
    priority1: list[int]
    priority2: list[int]
    sgi_pending: list[int]
    priority_mask: list[int]
    running_priority: list[int]
    current_pending: list[int]
    bpr: list[int]
    abpr: list[int]
    apr: list[int]
    nsapr: list[int]

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
        current = self.current_pending
        self.drive = True
        if ctlr & _GROUPS == _GROUPS:
            forward_all = True
        elif ctlr & _GROUPS:
            forward_all = False
        else:
            for cpu in range(n):
                current[cpu] = GIC_SPURIOUS
                out[cpu] = 0
                out[n + cpu] = 0
            return
        # Candidates on every CPU: not a shared interrupt active somewhere,
        # one of the configured interrupts.
        live = self.irq_bits & ~self.spi_active
        level_triggered = ~self.edge
        enabled = self.enabled
        pending = self.pending
        level = self.level
        active = self.active
        targets = self.targets
        priority1 = self.priority1
        priority2 = self.priority2
        for cpu in range(n):
            current[cpu] = GIC_SPURIOUS
            cpu_ctlr = self.cpu_ctlr[cpu]
            irq_level = fiq_level = 0
            if not cpu_ctlr & _CPU_GROUPS:
                out[cpu] = 0
                out[n + cpu] = 0
                continue
            group = self.group[cpu]
            cand = (
                enabled[cpu]
                & (pending[cpu] | (level[cpu] & level_triggered))
                & ~active[cpu]
                & targets[cpu]
                & live
            )
            if not forward_all:
                cand &= group if ctlr & GICD_CTLR_EN_GRP1 else ~group
            if cand:
                if cand & (cand - 1) == 0:
                    # One candidate (the common case): no priority race.
                    best_irq = cand.bit_length() - 1
                    if best_irq < GIC_INTERNAL:
                        best_prio = priority1[best_irq * GIC_NCPU + cpu]
                    else:
                        best_prio = priority2[best_irq - GIC_INTERNAL]
                    if best_prio >= IDLE_PRIORITY:
                        best_irq = GIC_SPURIOUS
                else:
                    best_irq = GIC_SPURIOUS
                    best_prio = IDLE_PRIORITY
                    while cand:
                        low = cand & -cand
                        cand ^= low
                        irq = low.bit_length() - 1
                        if irq < GIC_INTERNAL:
                            prio = priority1[irq * GIC_NCPU + cpu]
                        else:
                            prio = priority2[irq - GIC_INTERNAL]
                        if prio < best_prio:
                            best_prio = prio
                            best_irq = irq
                if best_irq != GIC_SPURIOUS:
                    pmask = self.priority_mask[cpu]
                    running = self.running_priority[cpu]
                    trace_gic_update_bestirq(
                        "cpu", cpu, best_irq, best_prio, pmask, running
                    )
                    if best_prio < pmask:
                        current[cpu] = best_irq
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
        # pending_irq(), priority(), group_priority() and clear_pending()
        # written out: this is every interrupt's path.
        irq = self.current_pending[cpu]
        group1 = irq < GIC_MAXIRQ and self.revision == 2 and self.group[cpu] >> irq & 1
        if group1 and not self.cpu_ctlr[cpu] & GICC_CTLR_ACK_CTL:
            irq = GIC_SPURIOUS_GROUP1
        trace_gic_acknowledge_irq("cpu", cpu, irq)
        if irq >= GIC_MAXIRQ:
            return irq
        if irq < GIC_INTERNAL:
            priority = self.priority1[irq * GIC_NCPU + cpu]
        else:
            priority = self.priority2[irq - GIC_INTERNAL]
        if priority >= self.running_priority[cpu]:
            return GIC_SPURIOUS
        # gic_activate_irq: set the active priority bit, raise the running priority.
        if group1 and not self.cpu_ctlr[cpu] & GICC_CTLR_CBPR:
            bpr = self.abpr[cpu] - 1
        else:
            bpr = self.bpr[cpu]
        prio = priority & (0xFFFFFFFF << ((bpr & 7) + 1)) & 0xFF
        level = prio >> (GIC_MIN_BPR + 1)
        index = (level // 32) * GIC_NCPU + cpu
        if group1:
            self.nsapr[index] |= 1 << (level % 32)
        else:
            self.apr[index] |= 1 << (level % 32)
        self.running_priority[cpu] = prio
        bit = 1 << irq
        self.active[cpu] |= bit
        if irq >= GIC_INTERNAL:
            self.spi_active |= bit
            _clear(self.pending, ALL_CPU_MASK, bit)
            self.update()
            return irq
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
        v2 = self.revision == 2
        apr = self.apr
        nsapr = self.nsapr
        aprs = nsapr if v2 and self.group[cpu] >> irq & 1 else apr
        for i in range(GIC_NR_APRS):
            index = i * GIC_NCPU + cpu
            if aprs[index]:
                aprs[index] &= aprs[index] - 1  # the highest active priority
                break
        # prio_from_apr_bits(), written out.
        running = IDLE_PRIORITY
        for i in range(GIC_NR_APRS):
            bits = apr[i * GIC_NCPU + cpu] | nsapr[i * GIC_NCPU + cpu]
            if bits:
                running = (i * 32 + _ctz(bits)) << (GIC_MIN_BPR + 1)
                break
        self.running_priority[cpu] = running
        if not (v2 and self.cpu_ctlr[cpu] & GICC_CTLR_EOIMODE):
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

    # -- the CPU interface registers (QEMU's gic_cpu_read/gic_cpu_write) ------------

    def read_ctlr(self, cpu: int) -> int:
        """GICC_CTLR."""
        return self.cpu_ctlr[cpu]

    def read_pmr(self, cpu: int) -> int:
        """GICC_PMR."""
        return self.priority_mask[cpu]

    def read_bpr(self, cpu: int) -> int:
        """GICC_BPR."""
        return self.bpr[cpu]

    def read_rpr(self, cpu: int) -> int:
        """GICC_RPR: the running priority, 0xFF when idle."""
        return min(self.running_priority[cpu], 0xFF)

    def read_hppir(self, cpu: int) -> int:
        """GICC_HPPIR, with the SGI's source CPU as the specification asks."""
        irq = self.pending_irq(cpu)
        if irq < GIC_NR_SGIS:
            # The specification's CPUID field: the SGI's source CPU (QEMU omits it).
            sources = self.sgi_pending[irq * GIC_NCPU + cpu]
            if sources:
                irq |= (_ctz(sources) & 7) << 10
        return irq

    def read_abpr(self, cpu: int) -> int:
        """GICC_ABPR (RAZ on a GICv1)."""
        return self.abpr[cpu] if self.revision == 2 else 0

    def read_apr(self, cpu: int, n: int) -> int:
        """GICC_APRn (RAZ on a GICv1)."""
        if self.revision != 2:
            return 0
        return self.apr[n * GIC_NCPU + cpu]

    def read_nsapr(self, cpu: int, n: int) -> int:
        """GICC_NSAPRn (RAZ on a GICv1)."""
        if self.revision != 2:
            return 0
        return self.nsapr[n * GIC_NCPU + cpu]

    def read_iidr(self, cpu: int) -> int:
        """GICC_IIDR."""
        return (self.revision << 16) | 0x43B

    def write_ctlr(self, cpu: int, value: int) -> bool:
        """GICC_CTLR; True: the interrupt state needs an update."""
        mask = GICC_CTLR_V2_MASK if self.revision == 2 else GICC_CTLR_V1_MASK
        self.cpu_ctlr[cpu] = value & mask
        return True

    def write_pmr(self, cpu: int, value: int) -> bool:
        """GICC_PMR, narrowed to the implemented priority bits."""
        self.priority_mask[cpu] = value & self.prio_mask
        return True

    def write_bpr(self, cpu: int, value: int) -> bool:
        """GICC_BPR."""
        self.bpr[cpu] = max(value & 7, GIC_MIN_BPR)
        return True

    def write_eoir(self, cpu: int, value: int) -> bool:
        """GICC_EOIR (:meth:`complete` updates when it changes anything)."""
        self.complete(cpu, value & 0x3FF)
        return False

    def write_abpr(self, cpu: int, value: int) -> bool:
        """GICC_ABPR (WI on a GICv1)."""
        if self.revision != 2:
            return False
        self.abpr[cpu] = max(value & 7, GIC_MIN_ABPR)
        return True

    def write_apr(self, cpu: int, n: int, value: int) -> bool:
        """GICC_APRn (WI on a GICv1)."""
        if self.revision != 2:
            return False
        self.apr[n * GIC_NCPU + cpu] = value
        self.running_priority[cpu] = self.prio_from_apr_bits(cpu)
        return True

    def write_nsapr(self, cpu: int, n: int, value: int) -> bool:
        """GICC_NSAPRn (WI on a GICv1)."""
        if self.revision != 2:
            return False
        self.nsapr[n * GIC_NCPU + cpu] = value
        self.running_priority[cpu] = self.prio_from_apr_bits(cpu)
        return True

    def write_dir(self, cpu: int, value: int) -> bool:
        """GICC_DIR."""
        self.deactivate(cpu, value & 0x3FF)
        return True

    # -- the distributor, one byte register at a time (gic_dist_readb/writeb) -----
    #
    # Byte n of each register block; cpu is the accessing CPU (banked
    # registers). The device runs update() after every byte written, as
    # QEMU does, and keeps the bytes a configuration lacks out of reach
    # (the register map's present=).

    def read_ctlr_byte(self, n: int, cpu: int) -> int:
        """GICD_CTLR byte ``n``."""
        return self.ctlr if n == 0 else 0

    def read_typer_byte(self, n: int, cpu: int) -> int:
        """GICD_TYPER byte ``n``: ITLinesNumber and CPUNumber."""
        if n:
            return 0
        return ((self.num_irq // 32) - 1) | ((self.num_cpu - 1) << 5)

    def read_igroupr(self, n: int, cpu: int) -> int:
        """GICD_IGROUPR byte ``n`` (RAZ without groups)."""
        if not self.has_groups():
            return 0
        return (self.group[cpu] >> (n * 8)) & 0xFF

    def read_enabler(self, n: int, cpu: int) -> int:
        """GICD_ISENABLER/ICENABLER byte ``n``."""
        return (self.enabled[cpu] >> (n * 8)) & 0xFF

    def read_pendr(self, n: int, cpu: int) -> int:
        """GICD_ISPENDR/ICPENDR byte ``n``: latched, or level-triggered and high."""
        irq = n * 8
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        pending = _union(self.pending, cm) | (_union(self.level, cm) & ~self.edge)
        return (pending >> irq) & 0xFF

    def read_activer(self, n: int, cpu: int) -> int:
        """GICD_ISACTIVER/ICACTIVER byte ``n``."""
        irq = n * 8
        cm = 1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK
        return (_union(self.active, cm) >> irq) & 0xFF

    def read_priority(self, n: int, cpu: int) -> int:
        """GICD_IPRIORITYR byte ``n``: interrupt ``n``'s priority."""
        return self.priority(n, cpu) & self.prio_mask

    def read_targets(self, n: int, cpu: int) -> int:
        """GICD_ITARGETSR byte ``n`` (RAZ on a uniprocessor GIC)."""
        if self.num_cpu == 1:
            return 0
        return 1 << cpu if n < GIC_INTERNAL else self.irq_target[n]

    def read_icfgr(self, n: int, cpu: int) -> int:
        """GICD_ICFGR byte ``n``: interrupts ``4n`` to ``4n + 3``."""
        irq = n * 4
        value = 0
        for i in range(4):
            if self.model >> (irq + i) & 1:
                value |= 1 << (i * 2)
            if self.edge >> (irq + i) & 1:
                value |= 2 << (i * 2)
        return value

    def read_sgi_pending(self, n: int, cpu: int) -> int:
        """GICD_CPENDSGIR/SPENDSGIR byte ``n``: SGI ``n``'s source CPUs."""
        return self.sgi_pending[n * GIC_NCPU + cpu]

    def write_ctlr_byte(self, n: int, value: int, cpu: int) -> None:
        """GICD_CTLR byte ``n`` (the upper bytes ignore writes)."""
        if n == 0:
            self.ctlr = value & (_GROUPS if self.has_groups() else GICD_CTLR_EN_GRP0)

    def write_igroupr(self, n: int, value: int, cpu: int) -> None:
        """GICD_IGROUPR byte ``n`` (WI without groups)."""
        if not self.has_groups():
            return
        irq = n * 8
        keep = ~(0xFF << irq)
        bits = value << irq
        group = self.group
        for c in _CPUS_IN[1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK]:
            group[c] = (group[c] & keep) | bits

    def set_enable(self, n: int, value: int, cpu: int) -> None:
        """GICD_ISENABLER byte ``n`` (SGIs are always enabled)."""
        irq = n * 8
        if irq < GIC_NR_SGIS:
            value = 0xFF
        bits = value << irq
        if not bits:
            return
        enabled = self.enabled
        if irq < GIC_INTERNAL:
            newly = bits & ~enabled[cpu]
            enabled[cpu] |= bits
        else:
            newly = bits & ~_union(enabled, ALL_CPU_MASK)
            _set(enabled, ALL_CPU_MASK, bits)
        while newly:
            low = newly & -newly
            newly ^= low
            trace_gic_enable_irq(low.bit_length() - 1)

    def clear_enable(self, n: int, value: int, cpu: int) -> None:
        """GICD_ICENABLER byte ``n`` (SGIs cannot be disabled)."""
        irq = n * 8
        if irq < GIC_NR_SGIS:
            return
        bits = value << irq
        if not bits:
            return
        enabled = self.enabled
        if irq < GIC_INTERNAL:
            was = bits & enabled[cpu]
            enabled[cpu] &= ~bits
        else:
            was = bits & _union(enabled, ALL_CPU_MASK)
            _clear(enabled, ALL_CPU_MASK, bits)
        while was:
            low = was & -was
            was ^= low
            trace_gic_disable_irq(low.bit_length() - 1)

    def set_pending_byte(self, n: int, value: int, cpu: int) -> None:
        """GICD_ISPENDR byte ``n``: a shared interrupt pends on its targets."""
        irq = n * 8
        if irq < GIC_NR_SGIS:
            return  # SGIs are made pending through GICD_SPENDSGIR
        while value:
            low = value & -value
            value ^= low
            i = irq + low.bit_length() - 1
            mask = 1 << cpu if i < GIC_INTERNAL else self.irq_target[i]
            _set(self.pending, mask, 1 << i)

    def clear_pending_byte(self, n: int, value: int, cpu: int) -> None:
        """GICD_ICPENDR byte ``n``.

        The specification banks GICD_ICPENDR0 (PPIs) per CPU; QEMU clears
        the pending state on every CPU.
        """
        irq = n * 8
        if irq < GIC_NR_SGIS:
            return
        if value:
            _clear(
                self.pending,
                1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK,
                value << irq,
            )

    def set_active_byte(self, n: int, value: int, cpu: int) -> None:
        """GICD_ISACTIVER byte ``n`` (GICv2)."""
        irq = n * 8
        if value:
            _set(
                self.active,
                1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK,
                value << irq,
            )
        self.refresh_spi_active()

    def clear_active_byte(self, n: int, value: int, cpu: int) -> None:
        """GICD_ICACTIVER byte ``n`` (GICv2)."""
        irq = n * 8
        if value:
            _clear(
                self.active,
                1 << cpu if irq < GIC_INTERNAL else ALL_CPU_MASK,
                value << irq,
            )
        self.refresh_spi_active()

    def write_priority(self, n: int, value: int, cpu: int) -> None:
        """GICD_IPRIORITYR byte ``n``, narrowed to the implemented bits."""
        value &= self.prio_mask
        if n < GIC_INTERNAL:
            self.priority1[n * GIC_NCPU + cpu] = value
        else:
            self.priority2[n - GIC_INTERNAL] = value

    def write_targets(self, n: int, value: int, cpu: int) -> None:
        """GICD_ITARGETSR byte ``n`` (WI on a uniprocessor GIC)."""
        if self.num_cpu == 1:
            return
        if n < GIC_INTERNAL:
            value = ALL_CPU_MASK  # read only: each CPU reads its own bit
        value &= ALL_CPU_MASK
        self.irq_target[n] = value
        if n >= GIC_INTERNAL:
            bit = 1 << n
            for c in range(GIC_NCPU):
                if value >> c & 1:
                    self.targets[c] |= bit
                else:
                    self.targets[c] &= ~bit
            if _any(self.pending, ALL_CPU_MASK, bit):
                # A pending shared interrupt follows its new targets.
                _clear(self.pending, ALL_CPU_MASK, bit)
                _set(self.pending, value, bit)

    def write_icfgr(self, n: int, value: int, cpu: int) -> None:
        """GICD_ICFGR byte ``n``: bit 1 of each pair makes it edge-triggered."""
        irq = n * 4
        if irq < GIC_NR_SGIS:
            value |= 0xAA  # SGIs are edge-triggered
        for i in range(4):
            bit = 1 << (irq + i)
            if value & (2 << (i * 2)):
                self.edge |= bit
            else:
                self.edge &= ~bit

    def write_cpendsgir(self, n: int, value: int, cpu: int) -> None:
        """GICD_CPENDSGIR byte ``n``: clear source CPUs of SGI ``n``."""
        slot = n * GIC_NCPU + cpu
        self.sgi_pending[slot] &= ~value
        if not self.sgi_pending[slot]:
            self.pending[cpu] &= ~(1 << n)

    def write_spendsgir(self, n: int, value: int, cpu: int) -> None:
        """GICD_SPENDSGIR byte ``n``: add source CPUs to SGI ``n``."""
        if value:  # QEMU marks the SGI pending even for 0 (no source CPU)
            self.pending[cpu] |= 1 << n
            self.sgi_pending[n * GIC_NCPU + cpu] |= value

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

    vmsd = VMStateDescription["GICIrqState"](
        "arm_gic_irq_state",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_uint8(lambda s: s.enabled),
            vmstate_uint8(lambda s: s.pending),
            vmstate_uint8(lambda s: s.active),
            vmstate_uint8(lambda s: s.level),
            vmstate_bool(lambda s: s.model),
            vmstate_bool(lambda s: s.edge_trigger),
            vmstate_uint8(lambda s: s.group),
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
        n = len(self.irq_state)
        enabled = _masks_of(regs.enabled, n)
        pending = _masks_of(regs.pending, n)
        active = _masks_of(regs.active, n)
        level = _masks_of(regs.level, n)
        group = _masks_of(regs.group, n)
        model = regs.model
        edge = regs.edge
        for irq, entry in enumerate(self.irq_state):
            entry.enabled = enabled[irq]
            entry.pending = pending[irq]
            entry.active = active[irq]
            entry.level = level[irq]
            entry.model = bool(model >> irq & 1)
            entry.edge_trigger = bool(edge >> irq & 1)
            entry.group = group[irq]
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


def _masks_of(bitmaps: list[int], n: int) -> list[int]:
    """Per interrupt below ``n``, the mask of the CPUs whose bitmap has its bit."""
    masks = [0] * n
    for cpu, bitmap in enumerate(bitmaps[:GIC_NCPU]):
        cpu_bit = 1 << cpu
        rest = bitmap & ((1 << n) - 1)
        while rest:
            low = rest & -rest
            masks[low.bit_length() - 1] |= cpu_bit
            rest ^= low
    return masks


# -- the device ----------------------------------------------------------------------

_CpuRead = Callable[[GICRegisters, int], int]
_CpuWrite = Callable[[GICRegisters, int, int], bool]
_DistRead = Callable[[GICRegisters, int, int], int]
_DistWrite = Callable[[GICRegisters, int, int, int], None]

_GICD_IIDR: Final = bytes((0x3B, 0x04, 0x00, 0x00))
"""GICD_IIDR, byte by byte: ARM's JEP106 code."""


def _bit_per_irq(s: GICState, n: int) -> bool:
    """Whether byte ``n`` of a bit-per-interrupt block has a configured IRQ."""
    return n * 8 < s._num_irqs


def _cpu_reg(
    name: str,
    offset: int,
    *,
    read: _CpuRead | None = None,
    write: _CpuWrite | None = None,
) -> Register[GicCpuView]:
    """A CPU-interface register whose read and write act on the CPU's state.

    ``read(regs, cpu)`` and ``write(regs, cpu, value)``; the access is RW,
    RO or WO after which of them is given.
    """
    return Register(
        name,
        offset,
        RW if read and write else RO if read else WO,
        read=None if read is None else lambda v: v._read(read),
        write=None if write is None else lambda v, x: v._write(write, x),
    )


def _dist_bytes(
    name: str,
    offset: int,
    count: int,
    read: _DistRead,
    write: _DistWrite | None = None,
    *,
    present: Callable[[GICState, int], bool] | None = None,
) -> RegisterArray[GICState]:
    """``count`` distributor byte registers from ``offset``.

    Byte ``n`` reads with ``read(regs, n, cpu)``; with ``write`` it is RW and
    a write runs ``write(regs, n, value, cpu)`` and then the interrupt update.
    """
    return RegisterArray(
        name,
        offset,
        count,
        RO if write is None else RW,
        width=8,
        read=lambda s, n: s._dist_read(read, n),
        write=None if write is None else lambda s, n, v: s._dist_write(write, n, v),
        present=present,
    )


@final
class GicCpuView:
    """One CPU's view of the CPU interface: the GIC and the CPU it serves.

    The CPU interface registers are banked per CPU: the register map
    :attr:`registers` is declared on this view, and each CPU's region (and
    the region of "the accessing CPU", which acts for CPU 0) has its own
    view as the opaque, so a register's callbacks know the CPU.
    """

    __slots__ = ("cpu", "gic")

    def __init__(self, gic: GICState, cpu: int) -> None:
        self.gic = gic
        self.cpu = cpu

    def read(self, offset: int, size: int) -> int:
        """A read of this CPU's interface (``gic_cpu_read``)."""
        value = GicCpuView.registers.read(self, offset, size)
        trace_gic_cpu_read("cpu", self.cpu, offset, value)
        return value

    def write(self, offset: int, value: int, size: int) -> None:
        """A write to this CPU's interface (``gic_cpu_write``)."""
        trace_gic_cpu_write("cpu", self.cpu, offset, value)
        GicCpuView.registers.write(self, offset, value, size)

    def _read(self, op: _CpuRead) -> int:
        with self.gic.regs.borrow() as regs:
            return op(regs, self.cpu)

    def _write(self, op: _CpuWrite, value: int) -> None:
        gic = self.gic
        with gic.regs.borrow_mut() as regs:
            regs.drive = False
            if op(regs, self.cpu, value):
                regs.update()
            drive = regs.drive
        if drive:
            gic._drive()

    def acknowledge(self) -> int:
        """GICC_IAR (``gic_acknowledge_irq``)."""
        gic = self.gic
        with gic.regs.borrow_mut() as regs:
            regs.drive = False
            irq = regs.acknowledge(self.cpu)
            drive = regs.drive
        if drive:
            gic._drive()
        return irq

    def end_of_interrupt(self, value: int) -> None:
        """GICC_EOIR (``gic_complete_irq``)."""
        gic = self.gic
        with gic.regs.borrow_mut() as regs:
            regs.drive = False
            regs.complete(self.cpu, value & 0x3FF)
            drive = regs.drive
        if drive:
            gic._drive()

    def read_apr(self, n: int) -> int:
        """GICC_APRn."""
        with self.gic.regs.borrow() as regs:
            return regs.read_apr(self.cpu, n)

    def read_nsapr(self, n: int) -> int:
        """GICC_NSAPRn."""
        with self.gic.regs.borrow() as regs:
            return regs.read_nsapr(self.cpu, n)

    def write_apr(self, n: int, value: int) -> None:
        """GICC_APRn."""
        self._write(lambda regs, cpu, v: regs.write_apr(cpu, n, v), value)

    def write_nsapr(self, n: int, value: int) -> None:
        """GICC_NSAPRn."""
        self._write(lambda regs, cpu, v: regs.write_nsapr(cpu, n, v), value)

    registers = RegisterMap["GicCpuView"](
        "gic_cpu",
        GIC_CPU_IFACE_SIZE,
        [
            _cpu_reg(
                "CTLR",
                CpuRegister.CTLR,
                read=GICRegisters.read_ctlr,
                write=GICRegisters.write_ctlr,
            ),
            _cpu_reg(
                "PMR",
                CpuRegister.PMR,
                read=GICRegisters.read_pmr,
                write=GICRegisters.write_pmr,
            ),
            _cpu_reg(
                "BPR",
                CpuRegister.BPR,
                read=GICRegisters.read_bpr,
                write=GICRegisters.write_bpr,
            ),
            Register("IAR", CpuRegister.IAR, RO, read=acknowledge),
            Register("EOIR", CpuRegister.EOIR, WO, write=end_of_interrupt),
            _cpu_reg("RPR", CpuRegister.RPR, read=GICRegisters.read_rpr),
            _cpu_reg("HPPIR", CpuRegister.HPPIR, read=GICRegisters.read_hppir),
            _cpu_reg(
                "ABPR",
                CpuRegister.ABPR,
                read=GICRegisters.read_abpr,
                write=GICRegisters.write_abpr,
            ),
            RegisterArray(
                "APR", CpuRegister.APR0, GIC_NR_APRS, RW, read=read_apr, write=write_apr
            ),
            RegisterArray(
                "NSAPR",
                CpuRegister.NSAPR0,
                GIC_NR_APRS,
                RW,
                read=read_nsapr,
                write=write_nsapr,
            ),
            _cpu_reg("IIDR", CpuRegister.IIDR, read=GICRegisters.read_iidr),
            _cpu_reg("DIR", CpuRegister.DIR, write=GICRegisters.write_dir),
        ],
        decode=Decode.EXACT,
        log=RegisterLog.bad_offset(
            "gic_cpu_read: Bad offset {addr:x}\n",
            "gic_cpu_write: Bad offset {addr:x}\n",
        ),
        # Bound on the first access: a start that never touches it pays nothing.
        bind_on_first_use=True,
    )
    """The CPU interface (``gic_cpu_read``/``gic_cpu_write``): QEMU decodes
    exact offsets, whatever the access size; any other offset is a bad one."""


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

    regs: GICRegisters
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
        self.regs = GICRegisters()
        self.mig = BqlRefCell(GICMigrationState())
        self.parent_irq: tuple[InterruptSource, ...] = ()
        self.parent_fiq: tuple[InterruptSource, ...] = ()
        self.parent_virq: tuple[InterruptSource, ...] = ()
        self.parent_vfiq: tuple[InterruptSource, ...] = ()
        self.cpuiomem: tuple[MemoryRegion, ...] = ()
        self._levels: list[int] = []
        self._lines: tuple[InterruptSource, ...] = ()
        # The configuration the distributor's register map asks about on
        # each access (set at realize; a device that is not realized has
        # no regions).
        self._num_irqs = GIC_INTERNAL
        self._v2 = False
        self._uni = True
        self._cpu0 = GicCpuView(self, 0)

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
        self._num_irqs = self.num_irq
        self._v2 = self.revision == 2
        self._uni = n == 1
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
        regions = [MemoryRegion.io(self, "gic_cpu", size, GIC_CPU_OPS, self._cpu0)]
        for cpu in range(n):
            view = GicCpuView(self, cpu)
            regions.append(
                MemoryRegion.io(self, "gic_cpu", GIC_CPU_REGION_SIZE, GIC_CPU_OPS, view)
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

    # -- the distributor -----------------------------------------------------------

    def dist_read(self, offset: int, size: int) -> int:
        """A distributor read (``gic_dist_read``): ``size`` byte reads."""
        value = GICState.registers.read(self, offset, size)
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
        GICState.registers.write(self, offset, value, size)

    def _dist_read(self, op: _DistRead, n: int) -> int:
        with self.regs.borrow() as regs:
            return op(regs, n, 0)

    def _dist_write(self, op: _DistWrite, n: int, value: int) -> None:
        """Write one byte register, then update, as ``gic_dist_writeb`` does."""
        with self.regs.borrow_mut() as regs:
            op(regs, n, value, 0)
            regs.update()
        self._drive()

    def _write_isactiver(self, n: int, value: int) -> None:
        if not self._v2:
            # Read-only on a GICv1: QEMU's bad offset, without an update.
            _bad_dist_write(DistRegister.ISACTIVER + n)
            return
        self._dist_write(GICRegisters.set_active_byte, n, value)

    def _id_byte(self, n: int) -> int:
        if n & 3:
            return 0
        return (GIC_ID_GICV2 if self._v2 else GIC_ID_GICV1)[n >> 2]

    registers = RegisterMap["GICState"](
        "gic_dist",
        GIC_DIST_SIZE,
        [
            _dist_bytes(
                "CTLR",
                DistRegister.CTLR,
                4,
                GICRegisters.read_ctlr_byte,
                GICRegisters.write_ctlr_byte,
            ),
            _dist_bytes(
                "TYPER",
                DistRegister.TYPER,
                4,
                GICRegisters.read_typer_byte,
            ),
            RegisterArray(
                "IIDR",
                DistRegister.IIDR,
                4,
                RO,
                width=8,
                read=lambda s, n: _GICD_IIDR[n],
            ),
            _dist_bytes(
                "IGROUPR",
                DistRegister.IGROUPR,
                GIC_MAX_IRQ_IDS // 8,
                GICRegisters.read_igroupr,
                GICRegisters.write_igroupr,
                # Without groups (a GICv1) the whole block is RAZ/WI.
                present=lambda s, n: not s._v2 or n * 8 < s._num_irqs,
            ),
            _dist_bytes(
                "ISENABLER",
                DistRegister.ISENABLER,
                GIC_MAX_IRQ_IDS // 8,
                GICRegisters.read_enabler,
                GICRegisters.set_enable,
                present=_bit_per_irq,
            ),
            _dist_bytes(
                "ICENABLER",
                DistRegister.ICENABLER,
                GIC_MAX_IRQ_IDS // 8,
                GICRegisters.read_enabler,
                GICRegisters.clear_enable,
                present=_bit_per_irq,
            ),
            _dist_bytes(
                "ISPENDR",
                DistRegister.ISPENDR,
                GIC_MAX_IRQ_IDS // 8,
                GICRegisters.read_pendr,
                GICRegisters.set_pending_byte,
                present=_bit_per_irq,
            ),
            _dist_bytes(
                "ICPENDR",
                DistRegister.ICPENDR,
                GIC_MAX_IRQ_IDS // 8,
                GICRegisters.read_pendr,
                GICRegisters.clear_pending_byte,
                present=_bit_per_irq,
            ),
            RegisterArray(
                "ISACTIVER",
                DistRegister.ISACTIVER,
                GIC_MAX_IRQ_IDS // 8,
                RW,
                width=8,
                read=lambda s, n: s._dist_read(GICRegisters.read_activer, n),
                write=_write_isactiver,
                present=_bit_per_irq,
            ),
            _dist_bytes(
                "ICACTIVER",
                DistRegister.ICACTIVER,
                GIC_MAX_IRQ_IDS // 8,
                GICRegisters.read_activer,
                GICRegisters.clear_active_byte,
                present=lambda s, n: s._v2 and n * 8 < s._num_irqs,
            ),
            _dist_bytes(
                "IPRIORITYR",
                DistRegister.IPRIORITYR,
                GIC_MAXIRQ,
                GICRegisters.read_priority,
                GICRegisters.write_priority,
                present=lambda s, n: n < s._num_irqs,
            ),
            _dist_bytes(
                "ITARGETSR",
                DistRegister.ITARGETSR,
                GIC_MAX_IRQ_IDS,
                GICRegisters.read_targets,
                GICRegisters.write_targets,
                # RAZ/WI on a uniprocessor GIC, the whole block.
                present=lambda s, n: s._uni or n < s._num_irqs,
            ),
            _dist_bytes(
                "ICFGR",
                DistRegister.ICFGR,
                GIC_MAX_IRQ_IDS // 4,
                GICRegisters.read_icfgr,
                GICRegisters.write_icfgr,
                present=lambda s, n: n * 4 < s._num_irqs,
            ),
            _dist_bytes(
                "CPENDSGIR",
                DistRegister.CPENDSGIR,
                GIC_NR_SGIS,
                GICRegisters.read_sgi_pending,
                GICRegisters.write_cpendsgir,
            ),
            _dist_bytes(
                "SPENDSGIR",
                DistRegister.SPENDSGIR,
                GIC_NR_SGIS,
                GICRegisters.read_sgi_pending,
                GICRegisters.write_spendsgir,
            ),
            RegisterArray(
                "ID",
                DistRegister.ID,
                GIC_DIST_SIZE - DistRegister.ID,
                RO,
                width=8,
                read=_id_byte,
            ),
        ],
        log=RegisterLog.bad_offset(
            "gic_dist_readb: Bad offset {addr:x}\n",
            "gic_dist_writeb: Bad offset {addr:x}\n",
        ),
        log_each_byte=True,
        # Bound on the first access: a start that never touches it pays nothing.
        bind_on_first_use=True,
    )
    """The distributor (``gic_dist_readb``/``gic_dist_writeb``): every
    register is a byte, so a wider access is that many byte accesses, each
    write followed by an interrupt update, as in QEMU; the bytes beyond the
    configured interrupts are bad offsets (``present=``). GICD_SGIR (a
    32-bit write at 0xF00) is decoded by :meth:`dist_write` before the map."""

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

    vmsd = VMStateDescription["GICState"](
        "arm_gic",
        version_id=12,
        minimum_version_id=12,
        pre_save=pre_save,
        post_load=post_load,
        fields=[
            vmstate_uint32(lambda s: s.mig.get().ctlr),
            vmstate_array(
                lambda s: s.mig.get().cpu_ctlr, vmstate_info_uint32, GIC_NCPU
            ),
            vmstate_struct_array(
                lambda s: s.mig.get().irq_state,
                GICIrqState.vmsd,
                GIC_MAXIRQ,
                size=7,
                version_id=1,
            ),
            vmstate_array(
                lambda s: s.mig.get().irq_target, vmstate_info_uint8, GIC_MAXIRQ
            ),
            vmstate_array(
                lambda s: s.mig.get().priority1,
                vmstate_info_uint8,
                GIC_INTERNAL * GIC_NCPU,
            ),
            vmstate_array(
                lambda s: s.mig.get().priority2,
                vmstate_info_uint8,
                GIC_MAXIRQ - GIC_INTERNAL,
            ),
            vmstate_array(
                lambda s: s.mig.get().sgi_pending,
                vmstate_info_uint8,
                GIC_NR_SGIS * GIC_NCPU,
            ),
            vmstate_array(
                lambda s: s.mig.get().priority_mask, vmstate_info_uint16, GIC_NCPU
            ),
            vmstate_array(
                lambda s: s.mig.get().running_priority, vmstate_info_uint16, GIC_NCPU
            ),
            vmstate_array(
                lambda s: s.mig.get().current_pending, vmstate_info_uint16, GIC_NCPU
            ),
            vmstate_array(lambda s: s.mig.get().bpr, vmstate_info_uint8, GIC_NCPU),
            vmstate_array(lambda s: s.mig.get().abpr, vmstate_info_uint8, GIC_NCPU),
            vmstate_array(
                lambda s: s.mig.get().apr, vmstate_info_uint32, GIC_NR_APRS * GIC_NCPU
            ),
            vmstate_array(
                lambda s: s.mig.get().nsapr, vmstate_info_uint32, GIC_NR_APRS * GIC_NCPU
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
GIC_CPU_OPS: Final = MemoryRegionOps[GicCpuView](
    read=GicCpuView.read, write=GicCpuView.write
)
"""A CPU's interface (``gic_ops[1]`` for the accessing CPU, ``gic_cpu_ops``)."""


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
