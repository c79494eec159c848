"""The PL031 through the address space: every register, the alarm, the quirks.

Expected values come from QEMU's hw/rtc/pl031.c as QEMU 7.2 runs it (the
differential test in tests/qtest/test_pl031_qemu_diff.py compares the two
directly); the clock is the virtual clock from 2020-01-01 (tests' conftest).
"""

from __future__ import annotations

import time

import pytest

from hw.rtc.pl031.device import PL031_ID, TYPE_PL031, PL031State, pl031_create
from hw.rtc.pl031.tests.conftest import (
    CR,
    DR,
    ICR,
    IMSC,
    LR,
    MIS,
    MR,
    RIS,
    START,
    Rtc,
    make_rtc,
)
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log
from qemu_api.option import qemu_opts_parse
from qemu_api.qdev import device_cold_reset
from qemu_api.qom import object_class_by_name
from qemu_api.rtc import configure_rtc
from qemu_api.timer import NANOSECONDS_PER_SECOND as SEC
from qemu_api.timer import clock_step
from qemu_api.trace import trace_enable_events


@pytest.fixture
def log(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    qemu_set_log(LOG_GUEST_ERROR)
    capsys.readouterr()
    return capsys


# -- type, IDs, the counter -----------------------------------------------------------


def test_type_is_registered() -> None:
    assert object_class_by_name(TYPE_PL031) is PL031State


def test_id_registers_are_arm_pl031(rtc: Rtc) -> None:
    # Linux's AMBA bus reads part 0x031, designer 0x41 (ARM), revision 1, and
    # the PrimeCell ID 0xB105F00D.
    ids = [rtc.read(0xFE0 + 4 * i) for i in range(8)]
    assert bytes(ids) == PL031_ID
    periph = sum(b << (8 * i) for i, b in enumerate(ids[:4]))
    cell = sum(b << (8 * i) for i, b in enumerate(ids[4:]))
    assert periph & 0xFFF == 0x031
    assert (periph >> 12) & 0xFF == 0x41
    assert cell == 0xB105F00D


def test_every_byte_of_an_id_word_reads_its_id_byte(rtc: Rtc) -> None:
    # QEMU: case 0xfe0 ... 0xfff: pl031_id[(offset - 0xfe0) >> 2]
    assert [rtc.read(0xFE0 + i, 1) for i in range(32)] == [
        b for b in PL031_ID for _ in range(4)
    ]


def test_counter_starts_at_the_rtc_base_and_follows_the_rtc_clock(rtc: Rtc) -> None:
    assert rtc.read(DR) == START
    clock_step(SEC - 1)
    assert rtc.read(DR) == START
    clock_step(1)
    assert rtc.read(DR) == START + 1
    clock_step(59 * SEC)
    assert rtc.read(DR) == START + 60


def test_base_utc_on_the_host_clock_is_the_hosts_time() -> None:
    r = make_rtc("base=utc,clock=host")
    before = int(time.time())
    value = r.read(DR)
    assert before - 1 <= value <= int(time.time()) + 1
    configure_rtc()


def test_base_date_on_the_host_clock_starts_at_the_date() -> None:
    r = make_rtc("base=2006-06-17T16:01:21")
    assert r.read(DR) in (1150560081, 1150560082)
    configure_rtc()


def test_cr_reads_one_and_ignores_writes_silently(
    rtc: Rtc, log: pytest.CaptureFixture[str]
) -> None:
    assert rtc.read(CR) == 1
    rtc.write(CR, 0)
    assert rtc.read(CR) == 1
    assert log.readouterr().err == ""
    with rtc.dev.regs.borrow() as regs:
        assert regs.cr == 0  # what QEMU migrates


# -- LR: loading the counter ----------------------------------------------------------


def test_lr_write_loads_the_counter_and_reads_back(rtc: Rtc) -> None:
    rtc.write(LR, 1_000_000_000)
    assert rtc.read(DR) == 1_000_000_000
    assert rtc.read(LR) == 1_000_000_000
    clock_step(5 * SEC)
    assert rtc.read(DR) == 1_000_000_005
    assert rtc.read(LR) == 1_000_000_000


def test_lr_byte_store_loads_the_bytes_value(rtc: Rtc) -> None:
    # No impl sizes: QEMU's pl031_write gets the byte as the whole value.
    rtc.write(LR, 0x1234_5605, 1)
    assert rtc.read(DR) == 0x05
    assert rtc.read(LR) == 0x05


def test_counter_wraps_at_32_bits(rtc: Rtc) -> None:
    rtc.write(LR, 0xFFFF_FFFE)
    clock_step(3 * SEC)
    assert rtc.read(DR) == 1


def test_lr_write_sends_rtc_change_with_the_offset_from_the_reference(
    rtc: Rtc,
) -> None:
    # QEMU hands the absolute tick_offset to qemu_get_timedate, so the event's
    # offset is the new counter value plus the base's seconds... minus the base
    # and the clock: 7.2 reported offset 1577836899/1577836900 for this write
    # (LR = START + 100 at virtual time 0, base 2020-01-01, clock=vm).
    rtc.write(LR, START + 100)
    assert len(rtc.events) == 1
    event = rtc.events[0]
    assert event["offset"] in (START + 99, START + 100)
    assert event["qom-path"] == "/rtc"


def test_no_rtc_change_without_an_lr_write(rtc: Rtc) -> None:
    rtc.write(MR, 5)
    rtc.write(IMSC, 1)
    rtc.write(ICR, 1)
    assert rtc.events == []


# -- the alarm ------------------------------------------------------------------------


def test_alarm_fires_when_the_counter_reaches_mr(rtc: Rtc) -> None:
    rtc.write(IMSC, 1)
    rtc.write(MR, START + 3)
    assert (rtc.read(RIS), rtc.level) == (0, 0)
    clock_step(3 * SEC - 1)
    assert rtc.read(RIS) == 0
    clock_step(1)
    assert (rtc.read(RIS), rtc.read(MIS), rtc.level) == (1, 1, 1)
    rtc.write(ICR, 1)
    assert (rtc.read(RIS), rtc.read(MIS), rtc.level) == (0, 0, 0)


def test_mr_equal_to_the_counter_raises_at_once(rtc: Rtc) -> None:
    rtc.write(IMSC, 1)
    rtc.write(MR, START)
    assert (rtc.read(RIS), rtc.level) == (1, 1)
    assert not rtc.dev.timer.pending()


def test_alarm_is_counted_from_the_second_boundary(rtc: Rtc) -> None:
    # QEMU arms the timer "ticks" whole seconds from now, not from the
    # counter's next tick: half a second in, MR = DR + 1 fires at 1.5 s.
    clock_step(SEC // 2)
    rtc.write(MR, START + 1)
    clock_step(SEC - 1)
    assert rtc.read(RIS) == 0
    clock_step(1)
    assert rtc.read(RIS) == 1


def test_mr_behind_the_counter_fires_after_the_wrap(rtc: Rtc) -> None:
    rtc.write(MR, START - 1)
    assert rtc.dev.timer.pending()
    assert rtc.dev.timer.expire_time() == (2**32 - 1) * SEC
    assert rtc.read(RIS) == 0


def test_lr_write_re_arms_the_alarm(rtc: Rtc) -> None:
    rtc.write(MR, 500)
    rtc.write(LR, 498)
    clock_step(2 * SEC)
    assert rtc.read(RIS) == 1


def test_masked_alarm_sets_ris_only_and_imsc_raises_the_line(rtc: Rtc) -> None:
    rtc.write(MR, START)
    assert (rtc.read(RIS), rtc.read(MIS), rtc.level) == (1, 0, 0)
    rtc.write(IMSC, 1)
    assert (rtc.read(MIS), rtc.level) == (1, 1)
    rtc.write(IMSC, 0)
    assert rtc.level == 0


def test_imsc_keeps_bit_0_only(rtc: Rtc) -> None:
    rtc.write(IMSC, 0xFFFF_FFFF)
    assert rtc.read(IMSC) == 1


def test_icr_clears_with_bit_0_only(rtc: Rtc) -> None:
    rtc.write(MR, START)
    rtc.write(ICR, 0xFFFF_FFFE)
    assert rtc.read(RIS) == 1
    rtc.write(ICR, 1)
    assert rtc.read(RIS) == 0


def test_no_reset_handler_state_survives_a_reset(rtc: Rtc) -> None:
    rtc.write(IMSC, 1)
    rtc.write(LR, 1000)
    rtc.write(MR, 1000)
    device_cold_reset(rtc.dev)
    assert (rtc.read(DR), rtc.read(LR), rtc.read(MR)) == (1000, 1000, 1000)
    assert (rtc.read(IMSC), rtc.read(RIS)) == (1, 1)


def test_unparented_rtc_stops_its_alarm(rtc: Rtc) -> None:
    rtc.write(IMSC, 1)
    rtc.write(MR, START + 1)
    timer = rtc.dev.timer
    rtc.dev.unparent()
    clock_step(2 * SEC)
    assert 1 not in rtc.levels
    assert not timer.pending()


# -- bad accesses ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "line"),
    [
        (DR, "pl031: write to read-only register at offset 0x0\n"),
        (RIS, "pl031: write to read-only register at offset 0x14\n"),
        (MIS, "pl031: write to read-only register at offset 0x18\n"),
        (0x20, "pl031_write: Bad offset 0x20\n"),
        (0x05, "pl031_write: Bad offset 0x5\n"),
        (0xFE4, "pl031_write: Bad offset 0xfe4\n"),
    ],
)
def test_bad_writes_log_qemus_lines_and_change_nothing(
    rtc: Rtc, log: pytest.CaptureFixture[str], offset: int, line: str
) -> None:
    rtc.write(offset, 0xFF, 1 if offset & 3 else 4)
    assert log.readouterr().err == line
    assert (rtc.read(DR), rtc.read(MR), rtc.read(RIS)) == (START, 0, 0)
    assert rtc.read(0xFE4) == PL031_ID[1]


@pytest.mark.parametrize(
    ("offset", "size", "line"),
    [
        (ICR, 4, "pl031: read of write-only register at offset 0x1c\n"),
        (0x20, 4, "pl031_read: Bad offset 0x20\n"),
        (0xFDC, 4, "pl031_read: Bad offset 0xfdc\n"),
        (DR + 1, 1, "pl031_read: Bad offset 0x1\n"),
        (MR + 2, 2, "pl031_read: Bad offset 0x6\n"),
    ],
)
def test_bad_reads_log_qemus_lines_and_read_zero(
    rtc: Rtc, log: pytest.CaptureFixture[str], offset: int, size: int, line: str
) -> None:
    assert rtc.read(offset, size) == 0
    assert log.readouterr().err == line


def test_narrow_and_wide_reads(rtc: Rtc) -> None:
    rtc.write(MR, 0x1122_3344)
    assert rtc.read(MR, 1) == 0x44  # the whole register, narrowed by the core
    assert rtc.read(MR, 2) == 0x3344
    # 8 bytes are two 4-byte accesses (no impl max): DR then MR.
    assert rtc.read(DR, 8) == START | 0x1122_3344 << 32


def test_trace_events_have_qemus_names(
    rtc: Rtc, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_enable_events("pl031_*")
    rtc.write(IMSC, 1)
    rtc.write(MR, START)
    rtc.read(RIS)
    err = capsys.readouterr().err
    for needle in (
        "pl031_write addr 0x00000010 value 0x00000001",
        "pl031_irq_state irq state 0",
        "pl031_set_alarm alarm set for 0 ticks",
        "pl031_alarm_raised alarm raised",
        "pl031_irq_state irq state 1",
        "pl031_read addr 0x00000014 value 0x00000001",
    ):
        assert needle in err


def test_pl031_create_maps_and_connects() -> None:
    configure_rtc(qemu_opts_parse("base=2020-01-01T00:00:00,clock=vm"))
    dev = pl031_create(0x1000_0000, None)
    assert dev.realized
    from qemu_api.memory import get_address_space_memory

    assert get_address_space_memory().read(0x1000_0000, 4) == START
    configure_rtc()
