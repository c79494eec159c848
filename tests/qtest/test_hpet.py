"""The pc board's HPET through the launcher: qtest accesses, clock_step, IRQs.

``pyqemu-system-x86_64 -M pc`` under qtest, the I/O APIC's inputs intercepted
as QEMU's PC tests do (``irq_intercept_in ioapic``).  Each test steps the
virtual clock to the deadlines and checks the tick of every interrupt: the
expected ticks follow QEMU's hw/timer/hpet.c (see the HPET's unit tests for the
rules, and docs/devices/hpet.rst for QEMU's periodic re-arm at the exact
deadline, which makes a periodic timer fire again 1 µs after each match).
"""

from __future__ import annotations

import pytest

from tests.qtest.libqtest import QTestError, QTestState

BASE = 0xFED0_0000
CAP, CFG, ISR, CNT = 0x000, 0x010, 0x020, 0x0F0
ENABLE, LEGACY = 0x1, 0x2
LEVEL, TN_ENABLE, PERIODIC, SETVAL, MODE32, FSB_EN = 0x2, 0x4, 0x8, 0x40, 0x100, 0x4000
PC = ["-M", "pc", "-nodefaults"]


def tn(n: int, reg: int) -> int:
    return BASE + 0x100 + 0x20 * n + reg


def start(*extra: str) -> QTestState:
    qts = QTestState([*PC, *extra], target="x86_64")
    qts.irq_intercept_in("ioapic")
    return qts


def raises(qts: QTestState, line: int) -> int:
    return qts.irq_events.count(("raise", line))


def ticks_of_raises(qts: QTestState, line: int, count: int) -> list[int]:
    """Step to each deadline; the virtual time (ns) of ``count`` raises of ``line``."""
    out: list[int] = []
    while len(out) < count:
        before = raises(qts, line)
        now = qts.clock_step()
        if raises(qts, line) > before:
            out.append(now)
    return out


def test_pc_hpet_registers() -> None:
    with start() as qts:
        assert qts.readq(BASE + CAP) == 0x0098_9680_8086_A201
        assert qts.readl(BASE + CAP + 4) == 0x0098_9680
        # PIIX's hpet-intcap is 0x4: timers may route to IRQ2 only.
        assert qts.readq(tn(0, 0)) == 0x0000_0004_0000_0030
        assert qts.readq(tn(2, 8)) == 0xFFFF_FFFF_FFFF_FFFF


def test_hpet_off_leaves_the_window_unassigned() -> None:
    with QTestState(["-M", "pc,hpet=off", "-nodefaults"], target="x86_64") as qts:
        assert qts.readl(BASE + CAP) != 0x8086_A201


def test_bad_hpet_option_and_timers_are_errors() -> None:
    with pytest.raises(QTestError, match="Parameter 'hpet' expects 'on' or 'off'"):
        QTestState(["-M", "pc,hpet=maybe"], target="x86_64")
    with pytest.raises(QTestError, match="must be between 3 and 24"):
        QTestState([*PC, "-global", "hpet.timers=25"], target="x86_64")


def test_global_timers_and_intcap() -> None:
    with QTestState(
        [*PC, "-global", "hpet.timers=24", "-global", "hpet.hpet-intcap=0xff0104"],
        target="x86_64",
    ) as qts:
        assert (qts.readl(BASE + CAP) >> 8) & 0x1F == 23
        assert qts.readl(tn(23, 4)) == 0x00FF_0104


def test_one_shot_interrupt_tick() -> None:
    with start() as qts:
        qts.writeq(tn(0, 8), 500)  # 5 us
        qts.writel(tn(0, 0), TN_ENABLE | (2 << 9))
        qts.writel(BASE + CFG, ENABLE)
        assert qts.clock_step(4990) == 4990
        assert raises(qts, 2) == 0
        assert qts.clock_step(10) == 5000
        assert qts.irq_events[-2:] == [("raise", 2), ("lower", 2)]
        qts.clock_step(1_000_000)
        assert raises(qts, 2) == 1
        assert qts.readq(BASE + CNT) == 100_500


def test_periodic_interrupt_ticks() -> None:
    # 1 kHz: 100000 ticks.  QEMU fires at the match, re-arms the same tick
    # (the counter is not past it yet), which the 1 us clamp moves 1 us on.
    with start() as qts:
        qts.writel(tn(0, 0), TN_ENABLE | PERIODIC | SETVAL | (2 << 9))
        qts.writeq(tn(0, 8), 100_000)
        qts.writel(BASE + CFG, ENABLE)
        ms = 1_000_000
        assert ticks_of_raises(qts, 2, 6) == [
            ms,
            ms + 1000,
            2 * ms,
            2 * ms + 1000,
            3 * ms,
            3 * ms + 1000,
        ]
        assert qts.readq(tn(0, 8)) == 400_000


def test_32bit_one_shot_wrap_ticks() -> None:
    with start() as qts:
        qts.writeq(BASE + CNT, 0xFFFF_FF00)
        qts.writel(tn(0, 0), TN_ENABLE | MODE32 | (2 << 9))
        qts.writel(tn(0, 8), 0x40)
        qts.writel(BASE + CFG, ENABLE)
        # The wrap to 0x1_0000_0000 after 0x100 ticks, then the match 0x40 later.
        assert ticks_of_raises(qts, 2, 2) == [0x100 * 10, 0x140 * 10]


def test_level_interrupt_and_status() -> None:
    with start() as qts:
        qts.writel(tn(1, 0), TN_ENABLE | LEVEL | (2 << 9))
        qts.writeq(tn(1, 8), 100)
        qts.writel(BASE + CFG, ENABLE)
        qts.clock_step(1000)
        assert qts.get_irq(2)
        assert qts.readl(BASE + ISR) == 0x2
        qts.writel(BASE + ISR, 0x2)
        assert not qts.get_irq(2)
        assert qts.readl(BASE + ISR) == 0


def test_legacy_replacement_routes() -> None:
    # Timer 0 drives input 0 (the PIT's, I/O APIC pin 2), timer 1 input 8.
    with start() as qts:
        qts.writel(tn(0, 0), TN_ENABLE)
        qts.writel(tn(1, 0), TN_ENABLE)
        qts.writeq(tn(0, 8), 100)
        qts.writeq(tn(1, 8), 200)
        qts.writel(BASE + CFG, ENABLE | LEGACY)
        assert ticks_of_raises(qts, 0, 1) == [1000]
        assert ticks_of_raises(qts, 8, 1) == [2000]


def test_fsb_message_lands_in_ram() -> None:
    with start("-global", "hpet.msi=on") as qts:
        assert qts.readl(tn(0, 0)) & 0x8000
        qts.writeq(tn(0, 0x10), (0x10_0000 << 32) | 0x4B1D)
        qts.writel(tn(0, 0), TN_ENABLE | FSB_EN)
        qts.writeq(tn(0, 8), 1000)
        qts.writel(BASE + CFG, ENABLE)
        qts.clock_step(10_000)
        assert qts.readl(0x10_0000) == 0x4B1D
        assert qts.irq_events == []
