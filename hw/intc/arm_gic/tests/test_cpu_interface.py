"""The GIC CPU interface and the interrupt rules.

QEMU's gic_cpu_read/gic_cpu_write; IHI 0048B 4.4.
"""

from __future__ import annotations

import pytest

from hw.intc.arm_gic.tests.conftest import Gic, make_gic
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log

IAR, EOIR, RPR, HPPIR, ABPR, DIR = 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x1000


@pytest.fixture
def on(gic: Gic) -> Gic:
    """The GIC with forwarding on, every interrupt enabled, the mask open."""
    gic.enable_all()
    return gic


def test_reset_values(gic: Gic) -> None:
    assert gic.cread(0x00) == 0
    assert gic.cread(0x04) == 0
    assert gic.cread(0x08) == 0  # GIC_MIN_BPR
    assert gic.cread(ABPR) == 1
    assert gic.cread(RPR) == 0xFF  # idle
    assert gic.cread(HPPIR) == 1023
    assert gic.cread(0xFC) == 0x2043B
    assert make_gic(revision=1).cread(0xFC) == 0x1043B


def test_ctlr_masks(gic: Gic) -> None:
    gic.cwrite(0x00, 0xFFFF_FFFF)
    assert gic.cread(0x00) == 0x21F
    rev1 = make_gic(revision=1)
    rev1.cwrite(0x00, 0xFFFF_FFFF)
    assert rev1.cread(0x00) == 0x1


def test_pmr_and_binary_points(gic: Gic) -> None:
    gic.cwrite(0x04, 0x1234_5678)
    assert gic.cread(0x04) == 0x78
    gic.cwrite(0x08, 0xF)
    assert gic.cread(0x08) == 7
    gic.cwrite(ABPR, 0)
    assert gic.cread(ABPR) == 1  # at least GIC_MIN_ABPR
    low = make_gic(**{"num-priority-bits": 4})
    low.cwrite(0x04, 0xFF)
    assert low.cread(0x04) == 0xF0
    rev1 = make_gic(revision=1)
    rev1.cwrite(ABPR, 5)
    assert rev1.cread(ABPR) == 0  # no groups: RAZ/WI


def test_acknowledge_and_end_of_interrupt(on: Gic) -> None:
    on.dwrite(0x421, 0x40, 1)
    on.line(1, 1)
    assert on.irq() == 1
    assert on.cread(HPPIR) == 33
    assert on.cread(IAR) == 33
    assert on.irq() == 0
    assert on.cread(RPR) == 0x40
    assert on.dread(0x304) == 0x2  # active
    assert on.dread(0x204) == 0x2  # and still pending: the input is high
    on.line(1, 0)
    on.cwrite(EOIR, 33)
    assert on.cread(RPR) == 0xFF
    assert on.dread(0x304) == 0
    assert on.irq() == 0
    assert on.cread(IAR) == 1023


def test_byte_read_of_iar_acknowledges(on: Gic) -> None:
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR, 1) == 32
    assert on.dread(0x304) == 0x1


def test_preemption_by_priority(on: Gic) -> None:
    on.dwrite(0x420, 0x0000_8040)  # 32: 0x40, 33: 0x80
    on.line(1, 1)
    assert on.cread(IAR) == 33
    assert on.irq() == 0
    on.line(0, 1)  # higher priority: preempts
    assert on.irq() == 1
    assert on.cread(IAR) == 32
    assert on.cread(RPR) == 0x40
    on.line(0, 0)
    on.cwrite(EOIR, 32)
    assert on.cread(RPR) == 0x80  # back to the preempted interrupt
    on.cwrite(EOIR, 33)
    assert on.cread(RPR) == 0xFF
    assert on.irq() == 1  # interrupt 33's input is still high


def test_equal_priority_does_not_preempt_and_lowest_id_wins(on: Gic) -> None:
    on.dwrite(0x204, 0x6)  # 33 and 34, both priority 0
    assert on.cread(IAR) == 33
    assert on.cread(IAR) == 1023  # 34 cannot preempt priority 0
    assert on.cread(HPPIR) == 34  # but is the highest pending one


def test_priority_mask_masks(on: Gic) -> None:
    on.dwrite(0x420, 0x80, 1)
    on.cwrite(0x04, 0x80)
    on.dwrite(0x204, 0x1)
    assert on.irq() == 0
    assert on.cread(HPPIR) == 1023
    assert on.cread(IAR) == 1023
    on.cwrite(0x04, 0x81)
    assert on.irq() == 1


def test_binary_point_groups_priorities(on: Gic) -> None:
    on.cwrite(0x08, 3)  # group priority bits [7:4]
    on.dwrite(0x420, 0x0000_2010)  # 32: 0x10, 33: 0x20
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 32
    assert on.cread(RPR) == 0x10
    on.dwrite(0x204, 0x2)
    assert on.irq() == 0  # priority 0x20 does not preempt running priority 0x10
    on.cwrite(EOIR, 32)
    on.cwrite(0x08, 4)  # group priority bits [7:5]: 0x10 and 0x20 are both 0x00
    on.dwrite(0x420, 0x20, 1)
    on.dwrite(0x421, 0x30, 1)
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 32
    assert on.cread(RPR) == 0x20
    assert on.cread(IAR) == 1023  # 0x30 is in the same group priority 0x20


def test_active_priority_registers(on: Gic) -> None:
    on.dwrite(0x420, 0x44, 1)
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 32
    # One bit per preemption level (priority >> 1): level 34 is APR1 bit 2.
    assert (on.cread(0xD0), on.cread(0xD4)) == (0, 1 << 2)
    on.cwrite(0xD4, 0)
    assert on.cread(RPR) == 0xFF  # the running priority follows the APRs
    on.cwrite(0xD4, 1)
    assert on.cread(RPR) == 0x40  # (32 + 0) << 1
    on.cwrite(0xD4, 0)
    on.dwrite(0x084, 0x2)  # interrupt 33: Group 1
    on.cwrite(0x00, 0x7)  # AckCtl
    on.dwrite(0x421, 0x10, 1)
    on.dwrite(0x204, 0x2)
    assert on.cread(IAR) == 33
    assert on.cread(0xE0) == 1 << 8
    assert on.cread(0xD0) == 0


def test_group1_needs_ackctl(on: Gic) -> None:
    on.dwrite(0x084, 0x1)  # interrupt 32: Group 1
    on.dwrite(0x204, 0x1)
    assert on.irq() == 1
    assert on.cread(HPPIR) == 1022
    assert on.cread(IAR) == 1022
    on.cwrite(0x00, 0x7)
    assert on.cread(IAR) == 32


def test_group1_uses_the_aliased_binary_point(on: Gic) -> None:
    on.dwrite(0x084, 0x1)
    on.cwrite(0x00, 0x7)
    on.cwrite(ABPR, 5)  # Group 1: group priority bits [7:5]
    on.dwrite(0x420, 0x3F, 1)
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 32
    assert on.cread(RPR) == 0x20
    on.cwrite(EOIR, 32)
    on.cwrite(0x00, 0x17)  # CBPR: GICC_BPR for both groups
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 32
    assert on.cread(RPR) == 0x3E


def test_group0_on_fiq_with_fiqen(on: Gic) -> None:
    on.cwrite(0x00, 0xB)  # both groups, FIQEn
    on.dwrite(0x204, 0x1)
    assert (on.irq(), on.fiq()) == (0, 1)
    on.dwrite(0x084, 0x1)  # now Group 1: IRQ
    assert (on.irq(), on.fiq()) == (1, 0)


def test_disabled_cpu_interface_or_distributor_signals_nothing(on: Gic) -> None:
    on.dwrite(0x204, 0x1)
    assert on.irq() == 1
    on.cwrite(0x00, 0)
    assert on.irq() == 0
    assert on.cread(HPPIR) == 1023
    on.cwrite(0x00, 3)
    on.dwrite(0x000, 0)
    assert on.irq() == 0
    assert on.cread(IAR) == 1023


def test_disabled_group_is_not_forwarded(on: Gic) -> None:
    """IHI 0048B 4.3.1: a group disabled in GICD_CTLR is not forwarded (unlike QEMU)."""
    on.cwrite(0x00, 0x7)
    on.dwrite(0x084, 0x1)  # 32: Group 1, priority 0
    on.dwrite(0x421, 0x10, 1)  # 33: Group 0, priority 0x10
    on.dwrite(0x204, 0x3)
    assert on.cread(HPPIR) == 32
    on.dwrite(0x000, 1)  # forward Group 0 only
    assert on.cread(HPPIR) == 33
    assert on.irq() == 1
    on.dwrite(0x000, 2)  # Group 1 only
    assert on.cread(HPPIR) == 32


def test_eoimode_splits_priority_drop_and_deactivation(on: Gic) -> None:
    on.cwrite(0x00, 0x203)
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 32
    on.cwrite(EOIR, 32)
    assert on.cread(RPR) == 0xFF
    assert on.dread(0x304) == 0x1  # still active
    on.dwrite(0x204, 0x1)
    assert on.cread(IAR) == 1023  # active: not a candidate
    on.cwrite(DIR, 32)
    assert on.dread(0x304) == 0
    assert on.cread(IAR) == 32


def test_dir_without_eoimode_is_ignored(
    on: Gic, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    on.dwrite(0x304, 0x1)
    on.cwrite(DIR, 32)
    assert on.dread(0x304) == 0x1
    assert capsys.readouterr().err == (
        "gic_deactivate_irq: GICC_DIR write when EOIMode clear\n"
    )


def test_spurious_and_idle_eoi_are_ignored(on: Gic) -> None:
    on.dwrite(0x304, 0x1)
    on.cwrite(EOIR, 32)  # nothing running: ignored
    assert on.dread(0x304) == 0x1
    on.dwrite(0x204, 0x2)
    assert on.cread(IAR) == 33
    on.cwrite(EOIR, 1023)
    assert on.cread(RPR) == 0
    on.cwrite(EOIR, 96)  # beyond num-irq
    assert on.cread(RPR) == 0


def test_sgi_from_gicd_sgir(on: Gic) -> None:
    on.dwrite(0xF00, 0x0200_0005)  # SGI 5 to itself
    assert on.irq() == 1
    assert on.cread(HPPIR) == 5
    assert on.cread(IAR) == 5
    on.cwrite(EOIR, 5)
    assert on.irq() == 0


def test_sgi_sources_are_acknowledged_one_by_one(on: Gic) -> None:
    on.dwrite(0xF22, 0x06, 1)  # SGI 2 from CPUs 1 and 2
    assert on.cread(HPPIR) == 2 | 1 << 10  # the source, as IHI 0048B 4.4.8 asks
    assert on.cread(IAR) == 2 | 1 << 10
    on.cwrite(EOIR, 2)
    assert on.cread(IAR) == 2 | 2 << 10
    on.cwrite(EOIR, 2)
    assert on.cread(IAR) == 1023


def test_ppi_inputs_per_cpu() -> None:
    gic = make_gic(num_irq=64, num_cpu=2)
    gic.enable_all(cpu=0)
    gic.cwrite(0x00, 3, cpu=1)
    gic.cwrite(0x04, 0xFF, cpu=1)
    gic.cwrite(0x100, 0, cpu=1)  # a bad offset of the per-CPU view: ignored
    gic.line(32 + 27, 1)  # CPU 0's PPI 27 (input num-irq - 32 + 27)
    assert (gic.irq(0), gic.irq(1)) == (1, 0)
    gic.line(32 + 32 + 30, 1)  # CPU 1's PPI 30: not enabled for CPU 1
    assert gic.irq(1) == 0
    assert gic.cread(IAR, cpu=0) == 27


def test_spi_is_handled_by_one_cpu() -> None:
    """1-of-N: once one CPU acknowledges an SPI, the others do not see it (spec)."""
    gic = make_gic(num_cpu=2)
    gic.enable_all(cpu=0)
    gic.cwrite(0x00, 3, cpu=1)
    gic.cwrite(0x04, 0xFF, cpu=1)
    gic.dwrite(0x104, 0x1)
    gic.dwrite(0x820, 0x3, 1)  # interrupt 32 to both CPUs
    gic.dwrite(0x204, 0x1)
    assert (gic.irq(0), gic.irq(1)) == (1, 1)
    assert gic.cread(IAR, cpu=1) == 32
    assert (gic.irq(0), gic.irq(1)) == (0, 0)
    assert gic.cread(IAR, cpu=0) == 1023
    gic.dwrite(0x204, 0x1)  # pending again while active on CPU 1
    assert gic.cread(IAR, cpu=0) == 1023  # one active state for an SPI
    gic.cwrite(EOIR, 32, cpu=1)
    assert gic.cread(IAR, cpu=0) == 32


def test_icpendr0_is_banked() -> None:
    """Clearing a PPI's pending state affects the writing CPU only (spec)."""
    gic = make_gic(num_irq=64, num_cpu=2)
    gic.dwrite(0xC04, 0xFFFF_FFFF)  # PPIs edge-triggered
    gic.line(32 + 20, 1)  # CPU 0's PPI 20
    gic.line(32 + 32 + 20, 1)  # CPU 1's PPI 20
    gic.dwrite(0x280, 1 << 20)  # from CPU 0
    assert gic.dread(0x200) & 1 << 20 == 0
    gic.dwrite(0x000, 3)
    gic.cwrite(0x00, 3, cpu=1)
    gic.cwrite(0x04, 0xFF, cpu=1)
    gic.cwrite(0x00, 0, cpu=0)
    gic.dwrite(0x100, 0xFFFF_FFFF)  # enables for CPU 0 only (the distributor's view)
    assert gic.cread(HPPIR, cpu=1) == 1023  # not enabled on CPU 1 ...
    assert gic.dev.regs.pending[1] & 1 << 20  # ... but still pending there


@pytest.mark.parametrize("offset", [0x20, 0x100, 0x0D, 0x1004])
def test_bad_offsets(gic: Gic, capsys: pytest.CaptureFixture[str], offset: int) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    assert gic.cread(offset, 1) == 0
    gic.cwrite(offset, 1, 1)
    assert capsys.readouterr().err == (
        f"gic_cpu_read: Bad offset {offset:x}\ngic_cpu_write: Bad offset {offset:x}\n"
    )


@pytest.mark.parametrize("offset", [IAR, RPR, HPPIR, 0xFC])
def test_read_only_registers_ignore_writes(
    on: Gic, capsys: pytest.CaptureFixture[str], offset: int
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    on.cwrite(offset, 0x20)
    assert capsys.readouterr().err == f"gic_cpu_write: Bad offset {offset:x}\n"
    assert on.cread(RPR) == 0xFF


def test_v1_has_no_active_priority_registers() -> None:
    gic = make_gic(revision=1)
    gic.cwrite(0xD0, 1)
    assert gic.cread(0xD0) == 0
    assert gic.cread(RPR) == 0xFF
    gic.cwrite(0xE0, 1)
    assert gic.cread(0xE0) == 0
