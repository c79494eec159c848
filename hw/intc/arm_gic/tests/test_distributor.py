"""The GIC distributor, register by register.

QEMU's gic_dist_readb/gic_dist_writeb; IHI 0048B 4.3.
"""

from __future__ import annotations

import pytest

from hw.intc.arm_gic.registers import GIC_ID_GICV1, GIC_ID_GICV2
from hw.intc.arm_gic.tests.conftest import Gic, make_gic
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log


def test_typer_counts_interrupt_lines_and_cpus() -> None:
    assert make_gic(num_irq=288).dread(0x004) == 8  # (288 / 32) - 1
    assert make_gic(num_irq=32).dread(0x004) == 0
    assert make_gic(num_irq=64, num_cpu=3).dread(0x004) == 1 | (2 << 5)


@pytest.mark.parametrize(("revision", "ids"), [(1, GIC_ID_GICV1), (2, GIC_ID_GICV2)])
def test_iidr_and_id_registers(revision: int, ids: bytes) -> None:
    gic = make_gic(revision=revision)
    assert gic.dread(0x008) == 0x43B
    assert [gic.dread(0xFD0 + 4 * i) for i in range(12)] == list(ids)
    assert gic.dread(0xFE9, 1) == 0  # only the low byte of each word
    assert gic.dread(0xFE8, 1) == ids[6]


def test_ctlr_keeps_the_group_enables(gic: Gic) -> None:
    gic.dwrite(0x000, 0xFFFF_FFFF)
    assert gic.dread(0x000) == 3
    rev1 = make_gic(revision=1)
    rev1.dwrite(0x000, 0xFF)
    assert rev1.dread(0x000) == 1


def test_igroupr_rw_on_v2_raz_wi_on_v1(gic: Gic) -> None:
    gic.dwrite(0x084, 0x8000_0001)
    assert gic.dread(0x084) == 0x8000_0001
    assert gic.dread(0x080) == 0
    rev1 = make_gic(revision=1)
    rev1.dwrite(0x084, 0xFFFF_FFFF)
    assert rev1.dread(0x084) == 0


def test_enable_set_clear_and_sgis_always_enabled(gic: Gic) -> None:
    assert gic.dread(0x100) == 0x0000_FFFF  # SGIs enabled at reset
    gic.dwrite(0x180, 0xFFFF_FFFF)  # cannot disable SGIs
    assert gic.dread(0x100) == 0x0000_FFFF
    gic.dwrite(0x104, 0x0000_0102)
    assert gic.dread(0x104) == gic.dread(0x184) == 0x102
    gic.dwrite(0x184, 0x2)
    assert gic.dread(0x104) == 0x100
    gic.dwrite(0x105, 0x80, 1)  # byte access: interrupt 47
    assert gic.dread(0x104) == 0x8100


def test_pending_latch_and_level(gic: Gic) -> None:
    gic.dwrite(0x204, 0x1)  # set-pending interrupt 32
    assert gic.dread(0x204) == 0x1
    gic.line(1, 1)  # level-triggered interrupt 33: pending while high
    assert gic.dread(0x204) == 0x3
    gic.dwrite(0x284, 0x3)  # clears the latches, not the level
    assert gic.dread(0x204) == 0x2
    gic.line(1, 0)
    assert gic.dread(0x204) == 0


def test_sgis_are_not_made_pending_through_ispendr(gic: Gic) -> None:
    gic.dwrite(0x200, 0xFFFF_FFFF)
    assert gic.dread(0x200) == 0xFFFF_0000  # PPIs only
    gic.dwrite(0x280, 0xFFFF_FFFF)
    assert gic.dread(0x200) == 0


def test_edge_triggered_input_latches_on_the_rising_edge(gic: Gic) -> None:
    gic.dwrite(0xC08, 0x2 << 2)  # interrupt 33 edge-triggered
    assert gic.dread(0xC08) == 0x8
    gic.line(1, 1)
    gic.line(1, 0)
    assert gic.dread(0x204) == 0x2  # still pending after the pulse
    gic.dwrite(0x284, 0x2)
    assert gic.dread(0x204) == 0


def test_icfgr_sgis_stay_edge(gic: Gic) -> None:
    assert gic.dread(0xC00) == 0xAAAA_AAAA
    gic.dwrite(0xC00, 0)
    assert gic.dread(0xC00) == 0xAAAA_AAAA
    gic.dwrite(0xC04, 0xFFFF_FFFF)  # PPIs: only the edge bit is kept
    assert gic.dread(0xC04) == 0xAAAA_AAAA


def test_active_set_clear_on_v2(gic: Gic) -> None:
    gic.dwrite(0x304, 0x5)
    assert gic.dread(0x304) == gic.dread(0x384) == 0x5
    gic.dwrite(0x384, 0x1)
    assert gic.dread(0x304) == 0x4


def test_active_writes_are_bad_offsets_on_v1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gic = make_gic(revision=1)
    qemu_set_log(LOG_GUEST_ERROR)
    gic.dwrite(0x304, 0x1, 1)
    assert gic.dread(0x384, 1) == 0
    assert gic.dread(0x304) == 0
    err = capsys.readouterr().err
    assert "gic_dist_writeb: Bad offset 304\n" in err
    assert "gic_dist_readb: Bad offset 384\n" in err


def test_priorities_are_byte_accessible_and_masked() -> None:
    gic = make_gic(**{"num-priority-bits": 5})
    gic.dwrite(0x420, 0x1234_56FF)
    assert gic.dread(0x420) == 0x1030_50F8
    gic.dwrite(0x423, 0xFF, 1)
    assert gic.dread(0x420, 1) == 0xF8
    assert gic.dread(0x423, 1) == 0xF8


def test_targets_raz_wi_on_one_cpu(gic: Gic) -> None:
    gic.dwrite(0x820, 0xFFFF_FFFF)
    assert gic.dread(0x820) == 0
    assert gic.dread(0x800) == 0


def test_targets_on_two_cpus() -> None:
    gic = make_gic(num_cpu=2)
    assert gic.dread(0x800) == 0x0101_0101  # private: the reader's own bit
    gic.dwrite(0x800, 0)  # read only
    assert gic.dread(0x800) == 0x0101_0101
    assert gic.dread(0x820) == 0  # SPIs target nothing after reset
    gic.dwrite(0x820, 0x0302_0100 | 0xF0)
    assert gic.dread(0x820) == 0x0302_01F0


def test_retargeting_a_pending_spi_moves_its_pending_state() -> None:
    gic = make_gic(num_cpu=2)
    gic.enable_all(cpu=0)
    gic.cwrite(0x00, 3, cpu=1)
    gic.cwrite(0x04, 0xFF, cpu=1)
    gic.dwrite(0x820, 0x1, 1)  # interrupt 32 to CPU 0
    gic.dwrite(0x204, 0x1)  # pending on CPU 0
    assert (gic.irq(0), gic.irq(1)) == (1, 0)
    gic.dwrite(0x820, 0x2, 1)  # now to CPU 1
    assert (gic.irq(0), gic.irq(1)) == (0, 1)
    assert gic.cread(0x0C, cpu=1) == 32


def test_sgir_target_filters() -> None:
    gic = make_gic(num_cpu=3)
    gic.dwrite(0x000, 3)
    for cpu in range(3):
        gic.cwrite(0x00, 3, cpu=cpu)
        gic.cwrite(0x04, 0xFF, cpu=cpu)
    gic.dwrite(0xF00, 0x0006_0002)  # SGI 2 to CPUs 1 and 2
    assert gic.cread(0x18, cpu=1) == 2
    assert gic.cread(0x18, cpu=2) == 2
    assert gic.dread(0xF22, 1) == 0  # CPU 0 (the distributor's view) has none
    assert gic.cread(0x0C, cpu=2) == 2  # source CPU 0 in bits 12:10
    gic.dwrite(0xF00, 0x0100_0003)  # SGI 3 to every other CPU
    assert gic.cread(0x18, cpu=1) == 2
    assert gic.cread(0x18, cpu=0) == 1023
    gic.dwrite(0xF00, 0x0200_0004)  # SGI 4 to itself (CPU 0)
    assert gic.dread(0xF24, 1) == 1  # source CPU 0
    assert gic.dread(0xF23, 1) == 0
    assert gic.cread(0x18, cpu=0) == 4


def test_sgir_only_as_a_word_write(
    gic: Gic, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    gic.dwrite(0xF00, 0x02, 1)
    assert gic.dread(0x200) == 0
    assert capsys.readouterr().err == "gic_dist_writeb: Bad offset f00\n"
    assert gic.dread(0xF00) == 0
    assert capsys.readouterr().err.count("gic_dist_readb: Bad offset f0") == 4


def test_sgi_pending_registers(gic: Gic) -> None:
    gic.dwrite(0xF21, 0x05, 1)  # SGI 1 from CPUs 0 and 2
    assert gic.dread(0xF20) == 0x0500
    assert gic.dread(0xF10) == 0x0500
    assert gic.dread(0x200) & 0x2
    gic.dwrite(0xF11, 0x01, 1)
    assert gic.dread(0xF20) == 0x0400
    assert gic.dread(0x200) & 0x2
    gic.dwrite(0xF11, 0x04, 1)
    assert gic.dread(0xF20) == 0
    assert not gic.dread(0x200) & 0x2


def test_spendsgir_zero_byte_changes_nothing(gic: Gic) -> None:
    gic.dwrite(0xF20, 0x0000_0100)  # bytes of 0 for SGIs 0, 2 and 3
    assert gic.dread(0x200) == 0x2
    gic.enable_all()
    assert gic.cread(0x0C) == 1  # SGI 1 from CPU 0, and nothing else
    assert gic.cread(0x0C) == 1023


@pytest.mark.parametrize(
    ("offset", "size", "bad"),
    [
        (0x00C, 4, [0x0C, 0x0D, 0x0E, 0x0F]),
        (0x07C, 1, [0x7C]),
        (0x08C, 4, [0x8C, 0x8D, 0x8E, 0x8F]),  # IGROUPR beyond num-irq 96
        (0x10C, 2, [0x10C, 0x10D]),
        (0x460, 1, [0x460]),  # priority of interrupt 96
        (0xC18, 4, [0xC18, 0xC19, 0xC1A, 0xC1B]),
        (0xF30, 1, [0xF30]),
    ],
)
def test_bad_offsets_log_and_read_zero(
    gic: Gic, capsys: pytest.CaptureFixture[str], offset: int, size: int, bad: list[int]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    assert gic.dread(offset, size) == 0
    assert capsys.readouterr().err == "".join(
        f"gic_dist_readb: Bad offset {b:x}\n" for b in bad
    )
    gic.dwrite(offset, 0xFFFF_FFFF, size)
    assert capsys.readouterr().err == "".join(
        f"gic_dist_writeb: Bad offset {b:x}\n" for b in bad
    )


def test_word_writes_update_after_every_byte(gic: Gic) -> None:
    """A word of priorities moves the line once per byte, as QEMU's byte decode does."""
    gic.enable_all()
    gic.cwrite(0x04, 0x80)  # PMR: only priorities below 0x80 signal
    gic.dwrite(0x420, 0xFFFF_FFFF)
    gic.line(0, 1)  # interrupt 32, priority 0xFF: masked
    gic.line(1, 1)  # interrupt 33
    gic.calls.clear()
    # Byte 0 unmasks interrupt 32 (raise); byte 1 masks nothing new.
    gic.dwrite(0x420, 0xFFFF_FF10)
    assert gic.calls == [("irq0", 1), ("fiq0", 0)] + [("irq0", 1), ("fiq0", 0)] * 3
