"""The AArch64 CPU device (QEMU's ``ARMCPU``, ``target/arm/cpu.c``).

An :class:`ArmCPU` is shaped like QEMU's so that a board wires it as QEMU's
``virt`` does:

- QOM types ``cortex-a57-arm-cpu`` and ``max-arm-cpu``;
- unnamed GPIO inputs 0-3: :data:`ARM_CPU_IRQ`, :data:`ARM_CPU_FIQ`,
  :data:`ARM_CPU_VIRQ`, :data:`ARM_CPU_VFIQ`;
- unnamed GPIO outputs 0-4: the generic timers in QEMU's order (physical,
  virtual, hypervisor, secure, hypervisor virtual); only the EL1 physical and
  virtual timers are modelled, the others stay low; named outputs
  ``gicv3-maintenance-interrupt`` and ``pmu-interrupt`` (low);
- properties ``psci-conduit`` (0 disabled, 1 SMC, 2 HVC), ``start-powered-off``,
  ``mp-affinity``.

The CPU runs only under an accelerator with CPUs (``-accel tcg``): realizing it
asks the accelerator for an engine and a vCPU thread. At reset the CPU enters
non-secure EL1 with D, A, I and F masked (QEMU's ``virt`` without EL2 and EL3),
then applies the boot entry set by the loader (:meth:`ArmCPU.set_boot_entry`).

Interrupts: a level change on an input kicks the vCPU; before each slice of
guest code the vCPU takes FIQ then IRQ when its line is high and PSTATE.F/I
allows it (:func:`target.arm.helper.do_interrupt`). WFI sleeps until a line is
high (whatever the masks, as the architecture says).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Final

from accel import current_accel
from accel.tcg.engine_api import Access, EngineExit, ExitKind, Reg, sysreg_key
from hw.core.cpu import CPUState
from qemu_api.bql import bql_lock, bql_locked, bql_unlock
from qemu_api.error import Error
from qemu_api.irq import InterruptSource
from qemu_api.log import LOG_GUEST_ERROR, qemu_log_mask
from qemu_api.memory import (
    MEMTX_DECODE_ERROR,
    MemTxResultSlot,
    get_address_space_memory,
)
from qemu_api.migration.vmstate import VMStateDescription, vmstate_struct
from qemu_api.qdev import ResetType, prop_bool, prop_u32, prop_u64
from qemu_api.qom import override
from system import runstate
from target.arm import psci
from target.arm.gtimer import (
    GT_CNTFRQ,
    GTIMER_PHYS,
    GTIMER_VIRT,
    NUM_GTIMERS,
    GenericTimer,
)
from target.arm.helper import (
    EXC_FIQ,
    EXC_IRQ,
    EXC_SYNC,
    PSTATE_F,
    PSTATE_I,
    current_el,
    do_interrupt,
    pstate_string,
)
from target.arm.machine import SAVED_SYSREGS, VMSTATE_ARM_CPU, ArmCPUSnapshot
from target.arm.syndrome import (
    EXCP_BKPT,
    EXCP_DATA_ABORT,
    EXCP_HVC,
    EXCP_PREFETCH_ABORT,
    EXCP_SMC,
    EXCP_SWI,
    EXCP_UDEF,
    FSC_SYNC_EXTERNAL,
    syn_data_abort_no_iss,
    syn_insn_abort,
    syn_uncategorized,
)

if TYPE_CHECKING:
    from accel.tcg.cpus import VCPU
    from accel.tcg.engine_api import Engine

__all__ = [
    "ARM_CPU_FIQ",
    "ARM_CPU_IRQ",
    "ARM_CPU_VFIQ",
    "ARM_CPU_VIRQ",
    "TYPE_ARM_CPU",
    "ArmCPU",
    "CortexA57ArmCPU",
    "MaxArmCPU",
    "arm_cpu_models",
    "arm_cpu_type_name",
]

TYPE_ARM_CPU = "arm-cpu"

LOCKUP_FAULTS: Final = 64
"""Faults in a row at the vector each entered before the CPU is stopped."""

ARM_CPU_IRQ: Final = 0
ARM_CPU_FIQ: Final = 1
ARM_CPU_VIRQ: Final = 2
ARM_CPU_VFIQ: Final = 3

# System registers.
CNTFRQ_EL0: Final = sysreg_key(3, 3, 14, 0, 0)
CNTPCT_EL0: Final = sysreg_key(3, 3, 14, 0, 1)
CNTVCT_EL0: Final = sysreg_key(3, 3, 14, 0, 2)
CNTP_TVAL_EL0: Final = sysreg_key(3, 3, 14, 2, 0)
CNTP_CTL_EL0: Final = sysreg_key(3, 3, 14, 2, 1)
CNTP_CVAL_EL0: Final = sysreg_key(3, 3, 14, 2, 2)
CNTV_TVAL_EL0: Final = sysreg_key(3, 3, 14, 3, 0)
CNTV_CTL_EL0: Final = sysreg_key(3, 3, 14, 3, 1)
CNTV_CVAL_EL0: Final = sysreg_key(3, 3, 14, 3, 2)
CNTVOFF_EL2: Final = sysreg_key(3, 4, 14, 0, 3)
CNTKCTL_EL1: Final = sysreg_key(3, 0, 14, 1, 0)
SCR_EL3: Final = sysreg_key(3, 6, 1, 1, 0)
HCR_EL2: Final = sysreg_key(3, 4, 1, 1, 0)
CPACR_EL1: Final = sysreg_key(3, 0, 1, 0, 2)

_HOOKED: Final = frozenset(
    {
        CNTFRQ_EL0,
        CNTPCT_EL0,
        CNTVCT_EL0,
        CNTP_TVAL_EL0,
        CNTP_CTL_EL0,
        CNTP_CVAL_EL0,
        CNTV_TVAL_EL0,
        CNTV_CTL_EL0,
        CNTV_CVAL_EL0,
        CNTVOFF_EL2,
    }
)
# CNTKCTL_EL1 bits that let EL0 read each register (EL0PCTEN, EL0VCTEN,
# EL0VTEN, EL0PTEN); the engine's own checks run when EL0 is not allowed.
_EL0_ACCESS: Final = {
    CNTFRQ_EL0: 0b11,
    CNTPCT_EL0: 1 << 0,
    CNTVCT_EL0: 1 << 1,
    CNTV_TVAL_EL0: 1 << 8,
    CNTV_CTL_EL0: 1 << 8,
    CNTV_CVAL_EL0: 1 << 8,
    CNTP_TVAL_EL0: 1 << 9,
    CNTP_CTL_EL0: 1 << 9,
    CNTP_CVAL_EL0: 1 << 9,
}

# SCR_EL3: NS | HCE | RW (EL1 and below non-secure, HVC enabled, EL2 AArch64);
# HCR_EL2: RW (EL1 is AArch64). The engine's EL2 and EL3 stay out of the
# guest's way, as QEMU's virt without virtualization=on or secure=on.
_SCR_EL3_NS_EL1: Final = 0x501
_HCR_EL2_RW: Final = 1 << 31
# EL1h, D, A, I, F masked, and Z: QEMU keeps Z inverted, so a zeroed reset
# state reads Z set.
_PSTATE_RESET: Final = 0x400003C5


def arm_cpu_type_name(model: str) -> str:
    """Return the QOM type of the ``-cpu`` model (QEMU's ``ARM_CPU_TYPE_NAME``)."""
    return f"{model}-{TYPE_ARM_CPU}"


def arm_cpu_models() -> list[tuple[str, str]]:
    """Return ``(model, description)`` for ``-cpu help``, sorted by name."""
    return sorted((c.model, c.__doc__ or "") for c in (CortexA57ArmCPU, MaxArmCPU))


class ArmCPU(CPUState, type_name=TYPE_ARM_CPU, abstract=True):
    """An AArch64 CPU (QEMU's ``ARMCPU``)."""

    model: ClassVar[str] = ""
    has_pan: ClassVar[bool] = False
    snapshot: ArmCPUSnapshot

    psci_conduit = prop_u32(
        "psci-conduit", default=0, doc="PSCI conduit: 0 none, 1 SMC, 2 HVC"
    )
    start_powered_off = prop_bool(
        "start-powered-off", default=False, doc="start in the PSCI off state"
    )
    mp_affinity = prop_u64(
        "mp-affinity", default=0, doc="MPIDR_EL1 affinity (Aff3-Aff0)"
    )

    @override
    def instance_init(self) -> None:
        """Declare the GPIO lines and the state; the engine comes at realize."""
        self.irq_level = [0, 0, 0, 0]
        self.init_gpio_in(self._set_irq, 4)
        self.gt_outputs = [InterruptSource() for _ in range(NUM_GTIMERS)]
        self.init_gpio_out(self.gt_outputs)
        self.maint_irq = InterruptSource()
        self.pmu_irq = InterruptSource()
        self.init_gpio_out_named([self.maint_irq], "gicv3-maintenance-interrupt")
        self.init_gpio_out_named([self.pmu_irq], "pmu-interrupt")
        self.engine: Engine | None = None
        self.vcpu: VCPU | None = None
        self.halted = False
        self.powered_off = False
        self.boot_pc = 0
        self.boot_regs: dict[int, int] = {}
        self.cntvoff = 0
        self._clock = _zero_clock
        self.gt_timers: list[GenericTimer] = []
        self.snapshot = ArmCPUSnapshot()
        self._last_vector = -1
        self._lockup = 0
        self._watching = False

    # -- construction -----------------------------------------------------

    @override
    def realize(self) -> None:
        """Get an engine and a vCPU thread from the accelerator; reset.

        Raises:
            Error: the accelerator runs no CPUs (``-accel qtest``).
        """
        super().realize()
        accel = current_accel()
        create = getattr(accel, "create_vcpu", None)
        if accel is None or not accel.has_cpus or create is None:
            raise Error(
                f"CPU '{self.typename()}' needs an accelerator that runs CPUs",
                hint="Use -accel tcg (the default without -qtest).\n",
            )
        engine, vcpu = create(
            self, self.model, self._sysreg_read, self._sysreg_write, _HOOKED
        )
        self.engine = engine
        self.vcpu = vcpu
        clock = getattr(accel, "clock_ns", None)
        if clock is not None:
            self._clock = clock
        self.gt_timers = [
            GenericTimer(self._clock_ns, self.gt_outputs[GTIMER_PHYS].set),
            GenericTimer(
                self._clock_ns, self.gt_outputs[GTIMER_VIRT].set, lambda: self.cntvoff
            ),
        ]
        self.cpu_reset()

    def _clock_ns(self) -> int:
        return int(self._clock())

    # -- the boot interface -------------------------------------------------

    def set_boot_entry(self, pc: int, regs: Mapping[int, int]) -> None:
        """Start at *pc* with X registers *regs* (number -> value) at every reset.

        The loader (``hw/arm/boot.py``) computes the entry state; it is applied
        now and after each machine reset, as QEMU's ``do_cpu_reset`` does.

        Raises:
            Error: a register number outside 0-30.
        """
        for n in regs:
            if not 0 <= n <= 30:
                raise Error(f"set_boot_entry: X{n} is not a register (X0 to X30)")
        self.boot_pc = pc
        self.boot_regs = dict(regs)
        if self.engine is not None:
            self._apply_boot_entry(self.engine)

    def _apply_boot_entry(self, engine: Engine) -> None:
        engine.reg_write(Reg.PC, self.boot_pc)
        for n, value in self.boot_regs.items():
            engine.reg_write(n, value)

    # -- reset --------------------------------------------------------------

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """A device reset resets the CPU (:meth:`cpu_reset`)."""
        super().reset_hold(reset_type)
        self.cpu_reset()

    @override
    def cpu_reset(self) -> None:
        """Reset the registers to non-secure EL1, then apply the boot entry."""
        engine = self.engine
        if engine is None:
            return
        for n in range(31):
            engine.reg_write(n, 0)
        engine.sysreg_write(SCR_EL3, _SCR_EL3_NS_EL1)
        engine.sysreg_write(HCR_EL2, _HCR_EL2_RW)
        for reg in (Reg.SP_EL0, Reg.SP_EL1, Reg.SP_EL2):
            engine.reg_write(reg, 0)
        engine.reg_write(Reg.PSTATE, _PSTATE_RESET)
        engine.reg_write(Reg.SP, 0)
        engine.sysreg_write(CPACR_EL1, 0)
        self.cntvoff = 0
        for t in self.gt_timers:
            t.reset()
        self.halted = False
        self.powered_off = bool(self.start_powered_off)
        self._last_vector = -1
        self._lockup = 0
        self._apply_boot_entry(engine)

    # -- interrupt inputs ---------------------------------------------------

    def _set_irq(self, line: int, level: int) -> None:
        # arm_cpu_set_irq: remember the level and kick the vCPU when it
        # changed (QEMU's cpu_interrupt/cpu_reset_interrupt run only then).
        new = 1 if level else 0
        if self.irq_level[line] == new:
            return
        self.irq_level[line] = new
        vcpu = self.vcpu
        if vcpu is not None:
            vcpu.kick()

    # -- the vCPU loop's hooks (accel.tcg.cpus.TcgCPU) ------------------------

    def cpu_halted(self) -> bool:
        """Return True while the CPU waits in WFI or is powered off."""
        return self.halted or self.powered_off

    def cpu_has_work(self) -> bool:
        """Return True if an input line would end WFI."""
        if self.powered_off:
            return False
        return any(self.irq_level)

    def cpu_wake(self) -> None:
        """Leave WFI."""
        self.halted = False

    def cpu_exec_enter(self) -> int:
        """Take an unmasked FIQ or IRQ; return the PC to run from.

        An interrupt that stays pending because PSTATE masks it is watched
        for: the run ends at the first block after the guest unmasks it.
        """
        engine = self.engine
        assert engine is not None
        level = self.irq_level
        watch = False
        if level[ARM_CPU_FIQ] or level[ARM_CPU_IRQ]:
            pstate = engine.reg_read(Reg.PSTATE)
            if level[ARM_CPU_FIQ] and not pstate & PSTATE_F:
                do_interrupt(
                    engine, EXC_FIQ, engine.reg_read(Reg.PC), has_pan=self.has_pan
                )
            elif level[ARM_CPU_IRQ] and not pstate & PSTATE_I:
                do_interrupt(
                    engine, EXC_IRQ, engine.reg_read(Reg.PC), has_pan=self.has_pan
                )
            # Still pending behind the masks (or entered with them set).
            watch = True
        if watch != self._watching:
            self._watching = watch
            engine.watch_blocks(self._unmasked if watch else None)
        return engine.reg_read(Reg.PC)

    def _unmasked(self, _address: int) -> bool:
        """Block watcher: has the guest unmasked a pending interrupt?"""
        engine = self.engine
        assert engine is not None
        level = self.irq_level
        pstate = engine.reg_read(Reg.PSTATE)
        return bool(
            (level[ARM_CPU_FIQ] and not pstate & PSTATE_F)
            or (level[ARM_CPU_IRQ] and not pstate & PSTATE_I)
        )

    def cpu_exec_exit(self, ex: EngineExit) -> None:
        """Handle WFI, a synchronous exception or a faulting access (BQL held)."""
        engine = self.engine
        assert engine is not None
        if ex.kind is ExitKind.HALTED:
            if not self.cpu_has_work():
                self.halted = True
        elif ex.kind in (ExitKind.EXCEPTION, ExitKind.MEM_FAULT):
            fault_pc = engine.reg_read(Reg.PC)
            if ex.kind is ExitKind.EXCEPTION:
                self._exception(engine, ex)
            else:
                self._mem_fault(engine, ex)
            self._check_lockup(engine, fault_pc)
        elif ex.kind is ExitKind.ERROR:
            raise Error(
                f"the engine stopped: {ex.message} at PC 0x{engine.reg_read(Reg.PC):x}"
            )

    def _check_lockup(self, engine: Engine, fault_pc: int) -> None:
        """Stop a CPU that only takes exceptions at its own exception vectors.

        A guest whose vector table faults (no guest loaded: nothing at address
        0 and VBAR_EL1 is 0) would take an exception per instruction forever,
        as on QEMU, but here each costs the host a slice: after
        :data:`LOCKUP_FAULTS` faults in a row, each at the vector the previous
        one entered, the CPU stops until the next reset, with a guest-error
        log line. The guest cannot tell: it makes no progress either way.
        """
        if fault_pc == self._last_vector:
            self._lockup += 1
            if self._lockup >= LOCKUP_FAULTS:
                qemu_log_mask(
                    LOG_GUEST_ERROR,
                    f"CPU {self.cpu_index} stopped: every exception faults at its "
                    f"own vector (last at 0x{fault_pc:x})\n",
                )
                self.powered_off = True
                self._lockup = 0
        else:
            self._lockup = 0
        self._last_vector = engine.reg_read(Reg.PC)

    def _sync(self, engine: Engine, syndrome: int, return_pc: int) -> None:
        do_interrupt(
            engine, EXC_SYNC, return_pc, syndrome=syndrome, has_pan=self.has_pan
        )

    def _exception(self, engine: Engine, ex: EngineExit) -> None:
        intno = ex.intno
        pc = engine.reg_read(Reg.PC)
        if intno == EXCP_SWI:
            # The engine's syndrome holds the SVC's immediate.
            self._sync(engine, ex.syndrome, pc)
        elif intno in (EXCP_HVC, EXCP_SMC):
            conduit = (
                psci.PSCI_CONDUIT_HVC if intno == EXCP_HVC else psci.PSCI_CONDUIT_SMC
            )
            if self.psci_conduit == conduit and current_el(engine.reg_read(Reg.PSTATE)):
                self._psci_call(engine)
            else:
                # No EL2 or EL3 here: HVC and SMC are undefined (PC is past them).
                self._sync(engine, syn_uncategorized(), pc - 4)
        elif intno == EXCP_UDEF:
            # An undefined instruction (uncategorized), or a trapped FP/SIMD
            # or system-register access: the engine's syndrome says which.
            self._sync(engine, ex.syndrome, pc)
        elif intno == EXCP_BKPT:
            self._sync(engine, ex.syndrome, pc)
        elif intno in (EXCP_DATA_ABORT, EXCP_PREFETCH_ABORT):
            # An MMU fault (translation, access flag, permission, alignment):
            # the engine walked the page tables and computed the syndrome and
            # the faulting address as QEMU's arm_deliver_fault does; PC is the
            # faulting instruction.
            do_interrupt(
                engine,
                EXC_SYNC,
                pc,
                syndrome=ex.syndrome,
                far=ex.vaddress,
                has_pan=self.has_pan,
            )
        else:
            raise Error(f"unexpected exception {intno} from the engine at 0x{pc:x}")

    def _mem_fault(self, engine: Engine, ex: EngineExit) -> None:
        # The faulting instruction. A load or fetch stops the engine at once;
        # a store stops it at the end of its translation block (the engine's
        # stops land between blocks, see accel.tcg.engine), so the
        # instructions after it in that block have run.
        pc = ex.pc
        if ex.rom:
            # A store to ROM: QEMU drops it (the TLB discards ROM writes).
            return
        # Nothing is mapped: the access goes through the address space, which
        # logs it under -d guest_errors as any invalid access, and the CPU
        # takes a synchronous external abort (arm_cpu_do_transaction_failed).
        space = get_address_space_memory()
        size = ex.size if ex.size in (1, 2, 4, 8) else 8
        slot = MemTxResultSlot()
        if ex.access is Access.WRITE:
            result = space.write(ex.address, 0, size)
        else:
            space.read(ex.address, size, result=slot)
            result = slot.value
        ea = result != MEMTX_DECODE_ERROR
        same_el = current_el(engine.reg_read(Reg.PSTATE)) == 1
        if ex.access is Access.FETCH:
            syndrome = syn_insn_abort(same_el=same_el, ea=ea, fsc=FSC_SYNC_EXTERNAL)
        else:
            syndrome = syn_data_abort_no_iss(
                same_el=same_el,
                ea=ea,
                wnr=ex.access is Access.WRITE,
                fsc=FSC_SYNC_EXTERNAL,
            )
        do_interrupt(
            engine,
            EXC_SYNC,
            pc,
            syndrome=syndrome,
            far=ex.address,
            has_pan=self.has_pan,
        )

    # -- PSCI ---------------------------------------------------------------

    def _psci_call(self, engine: Engine) -> None:
        fn = engine.reg_read(0)
        ret: int
        if fn == psci.PSCI_FN_VERSION:
            ret = psci.PSCI_VERSION
        elif fn == psci.PSCI_FN_MIGRATE_INFO_TYPE:
            ret = psci.PSCI_RET_TOS_MIGRATION_NOT_REQUIRED
        elif fn in (psci.PSCI_FN_AFFINITY_INFO, psci.PSCI_FN64_AFFINITY_INFO):
            if engine.reg_read(2):
                ret = 0
            elif engine.reg_read(1) == self.mp_affinity:
                ret = 1 if self.powered_off else 0
            else:
                ret = psci.PSCI_RET_INVALID_PARAMS
        elif fn == psci.PSCI_FN_SYSTEM_RESET:
            runstate.qemu_system_reset_request(runstate.ShutdownCause.GUEST_RESET)
            self.powered_off = True
            return
        elif fn == psci.PSCI_FN_SYSTEM_OFF:
            runstate.qemu_system_shutdown_request(runstate.ShutdownCause.GUEST_SHUTDOWN)
            self.powered_off = True
            return
        elif fn in (psci.PSCI_0_1_FN_CPU_OFF, psci.PSCI_FN_CPU_OFF):
            self.powered_off = True
            return
        elif fn in (
            psci.PSCI_0_1_FN_CPU_ON,
            psci.PSCI_FN_CPU_ON,
            psci.PSCI_FN64_CPU_ON,
        ):
            ret = (
                psci.PSCI_RET_ALREADY_ON
                if engine.reg_read(1) == self.mp_affinity
                else psci.PSCI_RET_INVALID_PARAMS
            )
        elif fn in (
            psci.PSCI_0_1_FN_CPU_SUSPEND,
            psci.PSCI_FN_CPU_SUSPEND,
            psci.PSCI_FN64_CPU_SUSPEND,
        ):
            if engine.reg_read(1) & 0xFFFE0000:
                ret = psci.PSCI_RET_INVALID_PARAMS
            else:
                ret = 0
                if not self.cpu_has_work():
                    self.halted = True
        elif fn == psci.PSCI_FN_FEATURES:
            ret = psci.psci_features(engine.reg_read(1))
        else:
            ret = psci.PSCI_RET_NOT_SUPPORTED
        engine.reg_write(0, ret)

    # -- the generic timer's system registers ---------------------------------

    def _sysreg_read(self, key: int) -> int | None:
        engine = self.engine
        assert engine is not None
        bql = _BqlScope()
        with bql:
            if current_el(engine.reg_read(Reg.PSTATE)) == 0:
                allowed = _EL0_ACCESS.get(key, 0)
                if not engine.sysreg_read(CNTKCTL_EL1) & allowed:
                    return None
            if key == CNTFRQ_EL0:
                return GT_CNTFRQ
            phys, virt = self.gt_timers
            if key == CNTPCT_EL0:
                return phys.count()
            if key == CNTVCT_EL0:
                return (virt.count() - self.cntvoff) & 0xFFFFFFFFFFFFFFFF
            if key == CNTVOFF_EL2:
                return self.cntvoff
            timer = (
                phys if key in (CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0) else virt
            )
            if key in (CNTP_CTL_EL0, CNTV_CTL_EL0):
                return timer.read_ctl()
            if key in (CNTP_CVAL_EL0, CNTV_CVAL_EL0):
                return timer.cval
            return timer.read_tval()

    def _sysreg_write(self, key: int, value: int) -> bool:
        engine = self.engine
        assert engine is not None
        with _BqlScope():
            if current_el(engine.reg_read(Reg.PSTATE)) == 0:
                allowed = _EL0_ACCESS.get(key, 0)
                if not engine.sysreg_read(CNTKCTL_EL1) & allowed:
                    return False
            if key in (CNTFRQ_EL0, CNTPCT_EL0, CNTVCT_EL0):
                # Read-only here (CNTFRQ is written by firmware at EL3 only).
                qemu_log_mask(
                    LOG_GUEST_ERROR, f"write to read-only timer register {key:#x}\n"
                )
                return True
            if key == CNTVOFF_EL2:
                self.cntvoff = value
                self.gt_timers[GTIMER_VIRT].recalc()
                return True
            phys, virt = self.gt_timers
            timer = (
                phys if key in (CNTP_CTL_EL0, CNTP_CVAL_EL0, CNTP_TVAL_EL0) else virt
            )
            if key in (CNTP_CTL_EL0, CNTV_CTL_EL0):
                timer.write_ctl(value)
            elif key in (CNTP_CVAL_EL0, CNTV_CVAL_EL0):
                timer.write_cval(value)
            else:
                timer.write_tval(value)
            return True

    # -- migration (target/arm/machine.c) -------------------------------------

    def cpu_pre_save(self) -> None:
        """Copy the engine's registers into :attr:`snapshot` (vCPU paused)."""
        engine = self.engine
        if engine is None:
            return
        snap = self.snapshot
        snap.xregs = [engine.reg_read(n) for n in range(31)]
        snap.sp = engine.reg_read(Reg.SP)
        snap.pc = engine.reg_read(Reg.PC)
        snap.pstate = engine.reg_read(Reg.PSTATE)
        snap.sp_el0 = engine.reg_read(Reg.SP_EL0)
        snap.sp_el1 = engine.reg_read(Reg.SP_EL1)
        snap.fpcr = engine.reg_read(Reg.FPCR)
        snap.fpsr = engine.reg_read(Reg.FPSR)
        vregs: list[int] = []
        for n in range(32):
            v = engine.vreg_read(n)
            vregs += [v & 0xFFFFFFFFFFFFFFFF, v >> 64]
        snap.vregs = vregs
        snap.sysregs = [engine.sysreg_read(k) for k in SAVED_SYSREGS]
        snap.cntvoff = self.cntvoff
        phys, virt = self.gt_timers
        snap.cntp_ctl, snap.cntp_cval = phys.ctl, phys.cval
        snap.cntv_ctl, snap.cntv_cval = virt.ctl, virt.cval
        snap.halted = self.halted
        snap.powered_off = self.powered_off
        snap.irq_line_state = sum(
            1 << n for n, level in enumerate(self.irq_level) if level
        )

    def cpu_post_load(self, _version_id: int) -> None:
        """Write :attr:`snapshot` back into the engine."""
        engine = self.engine
        if engine is None:
            return
        snap = self.snapshot
        for n, value in enumerate(snap.xregs):
            engine.reg_write(n, value)
        for key, value in zip(SAVED_SYSREGS, snap.sysregs, strict=True):
            engine.sysreg_write(key, value)
        engine.reg_write(Reg.SP_EL0, snap.sp_el0)
        engine.reg_write(Reg.SP_EL1, snap.sp_el1)
        engine.reg_write(Reg.PSTATE, snap.pstate)
        engine.reg_write(Reg.SP, snap.sp)
        engine.reg_write(Reg.PC, snap.pc)
        engine.reg_write(Reg.FPCR, snap.fpcr)
        engine.reg_write(Reg.FPSR, snap.fpsr)
        for n in range(32):
            engine.vreg_write(n, snap.vregs[2 * n] | snap.vregs[2 * n + 1] << 64)
        self.cntvoff = snap.cntvoff
        phys, virt = self.gt_timers
        phys.ctl, phys.cval = snap.cntp_ctl, snap.cntp_cval
        virt.ctl, virt.cval = snap.cntv_ctl, snap.cntv_cval
        phys.recalc()
        virt.recalc()
        self.halted = snap.halted
        self.powered_off = snap.powered_off
        self.irq_level = [snap.irq_line_state >> n & 1 for n in range(4)]

    vmsd = VMStateDescription["ArmCPU"](
        "arm-cpu",
        version_id=1,
        minimum_version_id=1,
        fields=[vmstate_struct(lambda s: s.snapshot, VMSTATE_ARM_CPU)],
        pre_save=cpu_pre_save,
        post_load=cpu_post_load,
    )

    # -- the monitor ----------------------------------------------------------

    @override
    def arch_name(self) -> str:
        """Return ``aarch64``."""
        return "aarch64"

    @override
    def thread_id(self) -> int:
        """Return the host thread id of the vCPU thread."""
        vcpu = self.vcpu
        return vcpu.native_id() if vcpu is not None else threading.get_native_id()

    @override
    def dump_state(self, fpu: bool) -> str:
        """Return ``info registers`` as QEMU's ``aarch64_cpu_dump_state`` prints it."""
        engine = self.engine
        if engine is None:
            return ""
        out = [f" PC={engine.reg_read(Reg.PC):016x} "]
        for i in range(32):
            if i == 31:
                out.append(f" SP={engine.reg_read(Reg.SP):016x}\n")
            else:
                sep = " " if (i + 2) % 3 else "\n"
                out.append(f"X{i:02d}={engine.reg_read(i):016x}{sep}")
        pstate = engine.reg_read(Reg.PSTATE)
        # No EL3 on QEMU's virt: no "NS "/"S " before the EL.
        out.append(pstate_string(pstate))
        if not fpu:
            out.append("\n")
            return "".join(out)
        el = current_el(pstate)
        fpen = engine.sysreg_read(CPACR_EL1) >> 20 & 3
        if el <= 1 and (fpen in {0, 2} or (fpen == 1 and el == 0)):
            out.append("    FPU disabled\n")
            return "".join(out)
        out.append(
            f"     FPCR={engine.reg_read(Reg.FPCR):08x} "
            f"FPSR={engine.reg_read(Reg.FPSR):08x}\n"
        )
        for i in range(32):
            q = engine.vreg_read(i)
            sep = "\n" if i & 1 else " "
            out.append(f"Q{i:02d}={q >> 64:016x}:{q & (1 << 64) - 1:016x}{sep}")
        return "".join(out)


class _BqlScope:
    """Takes the BQL in an engine hook when the current thread lacks it."""

    __slots__ = ("_taken",)

    def __init__(self) -> None:
        self._taken = False

    def __enter__(self) -> None:
        self._taken = not bql_locked()
        if self._taken:
            bql_lock()

    def __exit__(self, *exc: object) -> None:
        if self._taken:
            bql_unlock()


def _zero_clock() -> int:
    return 0


class CortexA57ArmCPU(ArmCPU, type_name=arm_cpu_type_name("cortex-a57")):
    """ARM Cortex-A57 (ARMv8.0), QEMU's default for ``virt``."""

    model = "cortex-a57"


class MaxArmCPU(ArmCPU, type_name=arm_cpu_type_name("max")):
    """The engine's most capable CPU (QEMU's ``max``)."""

    model = "max"
    has_pan = True
