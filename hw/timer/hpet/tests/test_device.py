"""The HPET's registers and quirks, one test per behaviour of QEMU's hpet.c.

Expected values come from QEMU's hw/timer/hpet.c (10.x) and the IA-PC HPET
specification; the capability and reset values are also what QEMU 7.2
answers over qtest (tests/qtest/test_hpet_qemu_diff.py compares the rest).
"""

from __future__ import annotations

import itertools

import pytest

from hw.timer.hpet.device import HPETState
from hw.timer.hpet.registers import HPET_BASE
from hw.timer.hpet.tests.conftest import (
    CAP,
    CFG,
    CNT,
    ENABLE,
    FSB_EN,
    ISR,
    LEGACY,
    LEVEL,
    MODE32,
    PERIODIC,
    SETVAL,
    TN_ENABLE,
    Hpet,
    make_hpet,
    route,
    tn_cfg,
    tn_cmp,
    tn_fsb,
)
from qemu_api.error import Error
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log
from qemu_api.memory import MemoryRegion
from qemu_api.qdev import device_cold_reset
from qemu_api.sysbus import sysbus_realize
from qemu_api.timer import CLOCK_VIRTUAL, clock_set, clock_step, qemu_clock_get_ns
from qemu_api.trace import trace_enable_events


def pulses(h: Hpet, line: int) -> int:
    return h.events.count((line, 1))


# -- capabilities and reset ---------------------------------------------------------


def test_capability_and_period(hpet: Hpet) -> None:
    assert hpet.read(CAP, 8) == 0x0098_9680_8086_A201  # QEMU 7.2, 3 timers
    assert hpet.read(CAP) == 0x8086_A201
    assert hpet.read(CAP + 4) == 0x0098_9680  # 10 ns in fs
    hpet.write(CAP, 0, 8)
    hpet.write(CAP + 4, 0)
    assert hpet.read(CAP, 8) == 0x0098_9680_8086_A201


def test_num_tim_cap_follows_the_timers_property() -> None:
    h = make_hpet(num_timers=24)
    assert (h.read(CAP) >> 8) & 0x1F == 23


def test_timer_reset_values(hpet: Hpet) -> None:
    for n in range(3):
        assert hpet.read(tn_cfg(n), 8) == 0x00FF_0104_0000_0030  # Q35, as on 7.2
        assert hpet.read(tn_cmp(n), 8) == 0xFFFF_FFFF_FFFF_FFFF
    assert hpet.read(CFG, 8) == 0
    assert hpet.read(CNT, 8) == 0
    assert hpet.pit == [1]  # reset enables the PIT


def test_msi_advertises_fsb_capability() -> None:
    h = make_hpet(msi=True)
    assert h.read(tn_cfg(0)) == 0x8030


def test_reset_keeps_isr_and_fsb(hpet: Hpet) -> None:
    hpet.write(tn_fsb(1), 0x1234_5678_9ABC_DEF0, 8)
    hpet.write(tn_cfg(2), LEVEL)
    hpet.write(tn_cmp(2), 10)
    hpet.write(CFG, ENABLE)
    clock_step(100)
    assert hpet.read(ISR) == 0x4
    device_cold_reset(hpet.dev)
    assert hpet.read(ISR) == 0x4
    assert hpet.read(tn_fsb(1), 8) == 0x1234_5678_9ABC_DEF0
    assert hpet.read(tn_cfg(2)) == 0x30


def test_realize_checks_timers_and_intcap() -> None:
    for n in (2, 25):
        dev = HPETState()
        dev.intcap = 4
        dev.num_timers = n
        with pytest.raises(Error, match="must be between 3 and 24"):
            sysbus_realize(dev)
    dev = HPETState()
    with pytest.raises(Error, match="hpet-intcap not initialized"):
        sysbus_realize(dev)


# -- general configuration and counter -----------------------------------------------


def test_config_keeps_only_enable_and_legacy(hpet: Hpet) -> None:
    hpet.write(CFG, 0xFFFF_FFFC)
    hpet.write(CFG + 4, 0xFFFF_FFFF)
    assert hpet.read(CFG, 8) == 0


def test_counter_runs_at_100_mhz_only_while_enabled(hpet: Hpet) -> None:
    clock_step(5000)
    assert hpet.read(CNT, 8) == 0
    hpet.write(CFG, ENABLE)
    clock_step(1234)
    assert hpet.read(CNT, 8) == 123  # truncated to whole 10 ns ticks
    hpet.write(CFG, 0)
    clock_step(10_000)
    assert hpet.read(CNT, 8) == 123
    hpet.write(CFG, ENABLE)  # continues from the halted value
    clock_step(1000)
    assert hpet.read(CNT, 8) == 223


def test_counter_halves_and_write_while_enabled(hpet: Hpet) -> None:
    hpet.write(CNT + 4, 0x1)
    hpet.write(CNT, 0xFFFF_FFF0)
    assert hpet.read(CNT, 8) == 0x1_FFFF_FFF0
    assert hpet.read(CNT + 4) == 0x1
    hpet.write(CFG, ENABLE)
    clock_step(100)
    hpet.write(CNT, 0, 8)  # no visible effect while running
    assert hpet.read(CNT, 8) == 0x1_FFFF_FFFA
    hpet.write(CFG, 0)  # and the halted value is the running one
    assert hpet.read(CNT, 8) == 0x1_FFFF_FFFA


# -- one-shot and periodic timers ------------------------------------------------------


def test_one_shot_edge_timer_pulses_its_route(hpet: Hpet) -> None:
    hpet.write(tn_cmp(0), 100, 8)
    hpet.write(tn_cfg(0), TN_ENABLE | route(2))
    hpet.write(CFG, ENABLE)
    clock_step(999)
    assert hpet.events == []
    clock_step(1)
    assert hpet.events == [(2, 1), (2, 0)]
    assert hpet.read(ISR) == 0  # edge timers leave no status
    clock_step(100_000)
    assert hpet.events == [(2, 1), (2, 0)]  # one-shot: once


def fire_times(h: Hpet, line: int, count: int) -> list[tuple[int, int]]:
    """Step to the next deadlines until ``line`` pulsed ``count`` more times.

    Returns each pulse's virtual time and the comparator read right after.
    """
    out: list[tuple[int, int]] = []
    base = pulses(h, line)
    while len(out) < count:
        clock_step()
        if pulses(h, line) - base > len(out):
            out.append((qemu_clock_get_ns(CLOCK_VIRTUAL), h.read(tn_cmp(0), 8)))
    return out


def test_periodic_timer_accumulates_with_setval(hpet: Hpet) -> None:
    # Comparator and period 200 ticks (2 us).  QEMU's hpet_timer advances the
    # comparator only while the counter is strictly past it: at the exact
    # deadline (qtest's clock_step) it re-arms the same tick, which the 1 us
    # periodic clamp moves 1 us on, and the comparator catches up then.
    hpet.write(tn_cfg(0), TN_ENABLE | PERIODIC | SETVAL | route(2))
    hpet.write(tn_cmp(0), 200, 8)
    assert hpet.read(tn_cfg(0)) & SETVAL == 0  # the write clears SETVAL
    hpet.write(CFG, ENABLE)
    assert fire_times(hpet, 2, 5) == [
        (2000, 200),
        (3000, 400),
        (4000, 400),
        (5000, 600),
        (6000, 600),
    ]


def test_periodic_comparator_write_without_setval_sets_the_period(hpet: Hpet) -> None:
    hpet.write(tn_cfg(0), TN_ENABLE | PERIODIC | SETVAL | route(2))
    hpet.write(tn_cmp(0), 100, 8)
    hpet.write(CFG, ENABLE)
    assert fire_times(hpet, 2, 1) == [(1000, 100)]
    hpet.write(tn_cmp(0), 30, 8)  # the period only: the comparator stays
    assert hpet.read(tn_cmp(0), 8) == 100
    # The write re-arms the comparator's tick, which is now: it fires again
    # at once; then the comparator accumulates 30-tick periods past the counter.
    assert fire_times(hpet, 2, 3) == [(1000, 100), (2000, 220), (3000, 310)]


def test_periodic_expiries_are_at_least_one_microsecond_apart(hpet: Hpet) -> None:
    hpet.write(tn_cfg(0), TN_ENABLE | PERIODIC | SETVAL | route(2))
    hpet.write(tn_cmp(0), 1, 8)  # 10 ns period
    hpet.write(CFG, ENABLE)
    seen = []
    for _ in range(4):
        clock_step()
        seen.append(qemu_clock_get_ns(CLOCK_VIRTUAL))
    assert [b - a for a, b in itertools.pairwise(seen)] == [1000, 1000, 1000]


def test_comparator_at_all_ones_fires_at_once(hpet: Hpet) -> None:
    # ~0 ticks is past 2^63 ns: QEMU's timer_mod takes it as negative (0).
    hpet.write(tn_cfg(0), TN_ENABLE | route(2))
    hpet.write(CFG, ENABLE)
    clock_step(0)
    assert hpet.events == [(2, 1), (2, 0)]


def test_level_timer_sets_isr_and_write_one_clears(hpet: Hpet) -> None:
    hpet.write(tn_cfg(1), TN_ENABLE | LEVEL | route(16))
    hpet.write(tn_cmp(1), 10, 8)
    hpet.write(CFG, ENABLE)
    clock_step(100)
    assert hpet.levels[16] == 1
    assert hpet.read(ISR, 8) == 0x2
    hpet.write(ISR, 0x1)  # another timer's bit: nothing
    assert hpet.levels[16] == 1
    hpet.write(ISR, 0x2)
    assert hpet.read(ISR) == 0
    assert hpet.levels[16] == 0


def test_disabled_level_timer_still_sets_status(hpet: Hpet) -> None:
    hpet.write(tn_cfg(1), LEVEL | route(16))
    hpet.write(tn_cmp(1), 10, 8)
    hpet.write(CFG, ENABLE)
    clock_step(100)
    assert hpet.read(ISR) == 0x2
    assert hpet.events == []  # never raised
    hpet.write(tn_cfg(1), LEVEL | TN_ENABLE | route(16))  # enabling raises it
    assert hpet.levels[16] == 1


def test_clearing_type_level_clears_status(hpet: Hpet) -> None:
    hpet.write(tn_cfg(1), TN_ENABLE | LEVEL | route(16))
    hpet.write(tn_cmp(1), 10, 8)
    hpet.write(CFG, ENABLE)
    clock_step(100)
    hpet.write(tn_cfg(1), TN_ENABLE | route(16))
    assert hpet.read(ISR) == 0
    assert hpet.levels[16] == 0


def test_disabling_the_hpet_lowers_level_lines_but_keeps_status(hpet: Hpet) -> None:
    hpet.write(tn_cfg(1), TN_ENABLE | LEVEL | route(16))
    hpet.write(tn_cmp(1), 10, 8)
    hpet.write(CFG, ENABLE)
    clock_step(100)
    hpet.write(CFG, 0)
    assert hpet.read(ISR) == 0x2
    assert hpet.levels[16] == 0
    hpet.write(CFG, ENABLE)  # re-enabling re-raises it
    assert hpet.levels[16] == 1


# -- 32-bit mode -------------------------------------------------------------------


def test_32bit_mode_truncates_and_ignores_high_comparator_writes(hpet: Hpet) -> None:
    hpet.write(tn_cfg(0), MODE32)
    assert hpet.read(tn_cmp(0), 8) == 0xFFFF_FFFF
    hpet.write(tn_cmp(0) + 4, 0x1234)
    assert hpet.read(tn_cmp(0), 8) == 0xFFFF_FFFF
    hpet.write(tn_cmp(0), 0xAB_0000_0100, 8)
    assert hpet.read(tn_cmp(0), 8) == 0x100


def test_32bit_one_shot_fires_at_the_wrap_then_at_the_match(hpet: Hpet) -> None:
    hpet.write(CNT, 0xFFFF_FF00, 8)
    hpet.write(tn_cfg(0), TN_ENABLE | MODE32 | route(2))
    hpet.write(tn_cmp(0), 0x10)
    hpet.write(CFG, ENABLE)
    clock_step(0xFF * 10)
    assert hpet.events == []
    clock_step(10)  # counter 0x1_0000_0000: the wrap interrupt
    assert pulses(hpet, 2) == 1
    clock_step(0x10 * 10 - 10)
    assert pulses(hpet, 2) == 1
    clock_step(10)  # counter 0x1_0000_0010: the match
    assert pulses(hpet, 2) == 2
    assert hpet.read(CNT, 8) == 0x1_0000_0010


def test_32bit_periodic_comparator_wraps(hpet: Hpet) -> None:
    hpet.write(CNT, 0xFFFF_FF00, 8)
    hpet.write(tn_cfg(0), TN_ENABLE | MODE32 | PERIODIC | SETVAL | route(2))
    hpet.write(tn_cmp(0), 0xFFFF_FF80)
    hpet.write(tn_cmp(0), 0x100)  # the period
    hpet.write(CFG, ENABLE)
    # 0x80 ticks to the match, the 1 us re-arm, then one period past the
    # wrap of the low 32 bits: the comparator reads 0x80.
    assert fire_times(hpet, 2, 3) == [
        (0x80 * 10, 0xFFFF_FF80),
        (0x80 * 10 + 1000, 0x80),
        (0x180 * 10, 0x80),
    ]


# -- routing -------------------------------------------------------------------------


def test_legacy_routes_timers_0_and_1_and_disables_the_pit(hpet: Hpet) -> None:
    hpet.write(tn_cfg(0), TN_ENABLE | route(20))
    hpet.write(tn_cfg(1), TN_ENABLE | route(21))
    hpet.write(tn_cmp(0), 10, 8)
    hpet.write(tn_cmp(1), 20, 8)
    hpet.write(CFG, ENABLE | LEGACY)
    assert hpet.pit == [1, 0]
    hpet.events.clear()
    clock_step(200)
    assert hpet.events == [(0, 1), (0, 0), (8, 1), (8, 0)]
    hpet.write(CFG, ENABLE)
    assert hpet.pit == [1, 0, 1]


def test_legacy_inputs_pass_through_outside_legacy_mode(hpet: Hpet) -> None:
    pit, rtc = hpet.dev.get_gpio_in(0), hpet.dev.get_gpio_in(1)
    pit.raise_()
    rtc.raise_()
    assert hpet.levels[0] == 1
    assert hpet.levels[8] == 1
    hpet.write(CFG, LEGACY)  # both lowered, and now ignored
    assert hpet.levels[0] == 0
    assert hpet.levels[8] == 0
    pit.lower()
    pit.raise_()
    assert hpet.levels[0] == 0
    hpet.write(CFG, 0)  # the RTC's level comes back, the PIT's does not
    assert hpet.levels[8] == 1
    assert hpet.levels[0] == 0


def test_fsb_delivery_is_a_32_bit_store(hpet: Hpet, ram: MemoryRegion) -> None:
    hpet.write(tn_fsb(0), 0x1000_0000_0000 | 0xCAFE_F00D, 8)
    hpet.write(tn_fsb(0) + 4, 0x1000)
    hpet.write(tn_cfg(0), TN_ENABLE | FSB_EN)
    hpet.write(tn_cmp(0), 10, 8)
    hpet.write(CFG, ENABLE)
    clock_step(100)
    word = bytes(ram.get_ram_ptr()[0x1000:0x1004])
    assert word == (0xCAFE_F00D).to_bytes(4, "little")
    assert hpet.events == []  # no line


# -- decode ----------------------------------------------------------------------------


def test_timer_index_check_is_off_by_one(hpet: Hpet) -> None:
    # Timer 3 of 3 answers (never reset: all 0); timer 4 does not.
    assert hpet.read(tn_cfg(3), 8) == 0
    hpet.write(tn_cmp(3), 0x55, 8)
    assert hpet.read(tn_cmp(3), 8) == 0x55
    hpet.write(tn_cmp(4), 0x55, 8)
    assert hpet.read(tn_cmp(4), 8) == 0


def test_eight_byte_accesses_and_halves_agree(hpet: Hpet) -> None:
    hpet.write(tn_fsb(2), 0x1111_2222_3333_4444, 8)
    assert hpet.read(tn_fsb(2)) == 0x3333_4444
    assert hpet.read(tn_fsb(2) + 4) == 0x1111_2222
    hpet.write(tn_fsb(2) + 4, 0xAAAA_BBBB)
    assert hpet.read(tn_fsb(2), 8) == 0xAAAA_BBBB_3333_4444


def test_reserved_offsets_read_zero_silently(
    hpet: Hpet, capsys: pytest.CaptureFixture[str]
) -> None:
    qemu_set_log(LOG_GUEST_ERROR)
    try:
        for off in (0x008, 0x018, 0x028, 0x0E8, 0x0F8, 0x118, 0x3F8):
            hpet.write(off, 0xFFFF_FFFF)
            assert hpet.read(off) == 0
    finally:
        qemu_set_log(0)
    assert capsys.readouterr().err == ""  # QEMU only traces these


def test_narrow_and_unaligned_accesses_are_refused(hpet: Hpet) -> None:
    hpet.write(CNT, 0x1234_5678)
    for size in (1, 2):
        hpet.write(CNT, 0, size)
    hpet.write(CNT + 2, 0, 4)
    assert hpet.read(CNT) == 0x1234_5678
    assert hpet.read(CNT, 2) != 0x5678  # not passed to the device


def test_trace_events_have_qemu_names(
    hpet: Hpet, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_enable_events("hpet_*")
    hpet.write(tn_cmp(1), 5)
    hpet.read(CNT)
    err = capsys.readouterr().err
    for name in (
        "hpet_ram_write",
        "hpet_ram_write_timer_id",
        "hpet_ram_write_tn_cmp",
        "hpet_ram_read",
        "hpet_ram_read_reading_counter",
    ):
        assert f"{name} " in err or f"{name}:" in err, err


def test_virtual_clock_start_does_not_matter(hpet: Hpet) -> None:
    clock_set(7_000_000_001)
    hpet.write(CFG, ENABLE)
    clock_step(10)
    assert hpet.read(CNT, 8) == 1
    assert HPET_BASE == 0xFED0_0000
