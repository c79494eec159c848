"""The AArch64 CPU model without running guest code.

QOM shape, reset and boot entry, exception entry, interrupt masking, the
generic timer, PSCI answers and the migration snapshot. Guest-level behaviour
is in tests/guest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accel import accel_new, set_current_accel
from accel.tcg import TcgAccel
from accel.tcg.engine_api import Reg
from qemu_api.error import Error
from qemu_api.qdev import qdev_new, qdev_realize
from qemu_api.timer import CLOCK_VIRTUAL, clock_set, qemu_clock_get_ns
from target.arm.cpu import (
    ARM_CPU_FIQ,
    ARM_CPU_IRQ,
    ArmCPU,
    arm_cpu_models,
)
from target.arm.gtimer import CTL_ENABLE, CTL_IMASK, GenericTimer
from target.arm.helper import ELR_EL1, SPSR_EL1, VBAR_EL1
from target.arm.psci import PSCI_FN_CPU_ON, psci_features


@pytest.fixture
def tcg() -> Iterator[TcgAccel]:
    accel = accel_new("tcg")
    assert isinstance(accel, TcgAccel)
    accel.host_clock_ns = lambda: qemu_clock_get_ns(CLOCK_VIRTUAL)
    set_current_accel(accel)
    yield accel
    set_current_accel(None)


def new_cpu(model: str = "cortex-a57") -> ArmCPU:
    cpu = qdev_new(f"{model}-arm-cpu")
    assert isinstance(cpu, ArmCPU)
    cpu.property_set("psci-conduit", 2)
    qdev_realize(cpu)
    return cpu


def test_models_and_gpio_layout(tcg: TcgAccel) -> None:
    assert [m for m, _ in arm_cpu_models()] == ["cortex-a57", "max"]
    cpu = new_cpu()
    assert cpu.num_gpio_in() == 4  # IRQ, FIQ, VIRQ, VFIQ
    assert cpu.num_gpio_out() == 5  # the generic timers, QEMU's GTIMER_* order
    assert cpu.num_gpio_out("pmu-interrupt") == 1
    assert cpu.num_gpio_out("gicv3-maintenance-interrupt") == 1
    assert cpu.canonical_path() == "/machine/unattached/device[0]"
    assert len(tcg.vcpus) == 1


def test_a_cpu_needs_an_accelerator_with_cpus() -> None:
    set_current_accel(accel_new("qtest"))
    try:
        with pytest.raises(Error, match="needs an accelerator that runs CPUs"):
            new_cpu()
    finally:
        set_current_accel(None)


def test_reset_enters_el1h_masked_and_applies_the_boot_entry(tcg: TcgAccel) -> None:
    cpu = new_cpu()
    engine = cpu.engine
    assert engine is not None
    cpu.set_boot_entry(0x4008_0000, {0: 0x4400_0000, 3: 7})
    engine.reg_write(5, 99)
    engine.reg_write(Reg.PSTATE, 0)
    cpu.cpu_reset()
    assert engine.reg_read(Reg.PC) == 0x4008_0000
    assert (engine.reg_read(0), engine.reg_read(3), engine.reg_read(5)) == (
        0x4400_0000,
        7,
        0,
    )
    assert engine.reg_read(Reg.PSTATE) == 0x400003C5
    with pytest.raises(Error, match="X31 is not a register"):
        cpu.set_boot_entry(0, {31: 1})


def test_irq_from_el0_enters_the_lower_el_vector(tcg: TcgAccel) -> None:
    cpu = new_cpu()
    engine = cpu.engine
    assert engine is not None
    engine.sysreg_write(VBAR_EL1, 0x4000_1000)
    engine.reg_write(Reg.SP_EL1, 0x4010_0000)
    engine.reg_write(Reg.PSTATE, 0x0)  # EL0t, unmasked
    engine.reg_write(Reg.SP, 0x4008_0000)
    engine.reg_write(Reg.PC, 0x4000_2004)
    cpu.get_gpio_in(ARM_CPU_IRQ).raise_()
    assert cpu.cpu_has_work()
    pc = cpu.cpu_exec_enter()
    assert pc == 0x4000_1000 + 0x400 + 0x80
    assert engine.sysreg_read(ELR_EL1) == 0x4000_2004
    assert engine.sysreg_read(SPSR_EL1) == 0x0
    assert engine.reg_read(Reg.PSTATE) == 0x3C5  # EL1h, DAIF masked
    assert engine.reg_read(Reg.SP) == 0x4010_0000  # SP_EL1
    assert engine.reg_read(Reg.SP_EL0) == 0x4008_0000  # banked
    # Masked now: the still-pending IRQ is not taken again.
    assert cpu.cpu_exec_enter() == pc


def test_fiq_before_irq_and_masks(tcg: TcgAccel) -> None:
    cpu = new_cpu()
    engine = cpu.engine
    assert engine is not None
    engine.sysreg_write(VBAR_EL1, 0x4000_0000)
    engine.reg_write(Reg.PSTATE, 0x385)  # EL1h, D A I masked, F clear
    engine.reg_write(Reg.PC, 0x4000_3000)
    cpu.get_gpio_in(ARM_CPU_IRQ).raise_()
    assert cpu.cpu_exec_enter() == 0x4000_3000  # IRQ masked
    cpu.get_gpio_in(ARM_CPU_FIQ).raise_()
    assert cpu.cpu_exec_enter() == 0x4000_0000 + 0x200 + 0x100


def test_generic_timer_tval_cval_istatus_imask() -> None:
    now = [16_000]  # ns: 1000 ticks
    levels: list[int] = []
    t = GenericTimer(lambda: now[0], levels.append)
    assert t.count() == 1000
    t.write_tval(100)
    assert t.cval == 1100
    t.write_ctl(CTL_ENABLE)
    assert t.read_ctl() == CTL_ENABLE
    assert t.timer.expire_time() == 1100 * 16  # the wake-up, in virtual ns
    now[0] = 1100 * 16
    t.recalc()
    assert t.read_ctl() == CTL_ENABLE | 4
    assert levels == [1]
    assert t.read_tval() == 0
    now[0] += 16 * 5
    assert t.read_tval() == (-5) & 0xFFFFFFFF
    t.write_ctl(CTL_ENABLE | CTL_IMASK)
    assert t.read_ctl() == CTL_ENABLE | CTL_IMASK | 4
    assert levels == [1, 0]
    t.write_ctl(0)
    assert t.read_ctl() == 0
    t.write_tval(0xFFFFFFFF)  # -1: already expired once enabled
    t.write_ctl(CTL_ENABLE)
    assert levels == [1, 0, 1]


def test_virtual_timer_uses_the_offset() -> None:
    offset = [500]
    t = GenericTimer(lambda: 16 * 2000, lambda level: None, lambda: offset[0])
    t.write_cval(1600)  # virtual count is 1500
    t.write_ctl(CTL_ENABLE)
    assert t.read_tval() == 100
    assert not t.istatus()
    assert t.timer.expire_time() == (1600 + 500) * 16


def test_timer_fires_from_the_virtual_clock(tcg: TcgAccel) -> None:
    cpu = new_cpu()
    seen: list[int] = []
    from qemu_api.irq import qemu_allocate_irq

    cpu.connect_gpio_out(1, qemu_allocate_irq(lambda n, level: seen.append(level), 0))
    virt = cpu.gt_timers[1]
    virt.write_tval(62_500)  # 1 ms
    virt.write_ctl(CTL_ENABLE)
    clock_set(999_999)
    assert seen == []
    clock_set(1_000_000)
    assert seen == [1]


def test_psci_features() -> None:
    assert psci_features(PSCI_FN_CPU_ON) == 0
    assert psci_features(0x12345678) == -1


def test_snapshot_round_trip(tcg: TcgAccel) -> None:
    a = new_cpu()
    b = new_cpu()
    ea, eb = a.engine, b.engine
    assert ea is not None
    assert eb is not None
    for n in range(31):
        ea.reg_write(n, 0x1000 + n)
    ea.reg_write(Reg.PSTATE, 0x600003C4)  # EL1t, Z C
    ea.reg_write(Reg.SP, 0x1234)
    ea.reg_write(Reg.PC, 0x4008_1000)
    ea.sysreg_write(VBAR_EL1, 0x4000_0800)
    ea.vreg_write(7, 0x0123456789ABCDEF_FEDCBA9876543210)
    a.gt_timers[1].write_cval(77)
    a.cpu_pre_save()
    b.snapshot = a.snapshot
    b.cpu_post_load(1)
    assert [eb.reg_read(n) for n in range(31)] == [0x1000 + n for n in range(31)]
    assert eb.reg_read(Reg.PSTATE) == 0x600003C4
    assert eb.reg_read(Reg.SP) == 0x1234
    assert eb.reg_read(Reg.PC) == 0x4008_1000
    assert eb.sysreg_read(VBAR_EL1) == 0x4000_0800
    assert eb.vreg_read(7) == 0x0123456789ABCDEF_FEDCBA9876543210
    assert b.gt_timers[1].cval == 77


def test_info_registers_layout(tcg: TcgAccel) -> None:
    cpu = new_cpu()
    engine = cpu.engine
    assert engine is not None
    engine.reg_write(Reg.PC, 0x4008_0000)
    text = cpu.dump_state(fpu=True)
    lines = text.splitlines()
    assert lines[0].startswith(" PC=0000000040080000 X00=0000000000000000 X01=")
    # QEMU 7.2's layout for a reset CPU (target/arm/cpu.c).
    assert lines[-1] == "PSTATE=400003c5 -Z-- EL1h    FPU disabled"
