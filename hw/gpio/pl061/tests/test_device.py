"""The PL061 through the address space and its GPIO lines: every register and quirk.

Expected values follow QEMU's hw/gpio/pl061.c as QEMU 7.2 runs it (the
differential test tests/qtest/test_pl061_qemu_diff.py compares the two
directly).
"""

from __future__ import annotations

import pytest

from hw.gpio.pl061.device import (
    LOCK_KEY,
    PL061_ID,
    PL061_ID_LUMINARY,
    TYPE_PL061,
    TYPE_PL061_LUMINARY,
    PL061Luminary,
    PL061State,
    pl061_create,
)
from hw.gpio.pl061.tests.conftest import (
    AFSEL,
    ALL,
    DIR,
    IBE,
    IC,
    IE,
    IEV,
    IS,
    MIS,
    RIS,
    Gpio,
    make_gpio,
    window,
)
from qemu_api.error import Error
from qemu_api.log import LOG_GUEST_ERROR, qemu_set_log
from qemu_api.qdev import device_cold_reset
from qemu_api.qom import object_class_by_name
from qemu_api.trace import trace_enable_events

GPIODR2R, GPIOPUR, GPIOPDR, GPIOLOCK, GPIOCR, GPIOAMSEL = (
    0x500,
    0x510,
    0x514,
    0x520,
    0x524,
    0x528,
)


@pytest.fixture
def log(capsys: pytest.CaptureFixture[str]) -> pytest.CaptureFixture[str]:
    qemu_set_log(LOG_GUEST_ERROR)
    capsys.readouterr()
    return capsys


# -- types and IDs -------------------------------------------------------------------


def test_types_are_registered() -> None:
    assert object_class_by_name(TYPE_PL061) is PL061State
    assert object_class_by_name(TYPE_PL061_LUMINARY) is PL061Luminary


def test_id_registers_are_arm_pl061(gpio: Gpio) -> None:
    ids = [gpio.read(0xFD0 + 4 * i) for i in range(12)]
    assert bytes(ids) == PL061_ID
    periph = sum(b << (8 * i) for i, b in enumerate(ids[4:8]))
    cell = sum(b << (8 * i) for i, b in enumerate(ids[8:]))
    # Linux's AMBA bus: part 0x061, designer 0x41 (ARM); PrimeCell 0xB105F00D.
    assert periph & 0xFFF == 0x061
    assert (periph >> 12) & 0xFF == 0x41
    assert cell == 0xB105F00D


def test_every_byte_of_an_id_word_reads_its_id_byte(gpio: Gpio) -> None:
    assert [gpio.read(0xFD0 + i, 1) for i in range(48)] == [
        b for b in PL061_ID for _ in range(4)
    ]


def test_luminary_ids() -> None:
    g = make_gpio(TYPE_PL061_LUMINARY)
    assert bytes(g.read(0xFD0 + 4 * i) for i in range(12)) == PL061_ID_LUMINARY


# -- reset and the pull levels -------------------------------------------------------


def test_reset_drives_every_line_high_with_the_default_pullups(gpio: Gpio) -> None:
    assert gpio.outputs == [(i, 1) for i in range(8)]
    assert gpio.read(ALL) == 0
    assert gpio.read(DIR) == 0
    assert gpio.level == 0


def test_reset_drives_every_line_low_on_virt(virt_gpio: Gpio) -> None:
    assert virt_gpio.outputs == [(i, 0) for i in range(8)]


def test_floating_lines_are_not_driven_at_reset() -> None:
    g = make_gpio(pullups=0x0F, pulldowns=0x30)
    assert g.outputs == [(0, 1), (1, 1), (2, 1), (3, 1), (4, 0), (5, 0)]


def test_reset_values(gpio: Gpio) -> None:
    for offset in (DIR, IS, IBE, IEV, IE, AFSEL):
        gpio.write(offset, 0xFF)
    device_cold_reset(gpio.dev)
    assert [gpio.read(o) for o in (DIR, IS, IBE, IEV, IE, RIS, MIS, AFSEL)] == [0] * 8
    with gpio.dev.regs.borrow() as regs:
        assert (regs.dr2r, regs.locked, regs.cr, regs.old_out_data) == (
            0xFF,
            1,
            0xFF,
            0xFF,
        )


@pytest.mark.parametrize(
    ("pullups", "pulldowns", "message"),
    [
        (0x100, 0, "pullups property must be between 0 and 0xff"),
        (0, 0x1FF, "pulldowns property must be between 0 and 0xff"),
        (0x01, 0x03, "no bit may be set both in pullups and pulldowns"),
    ],
)
def test_bad_pull_properties_fail_realize(
    pullups: int, pulldowns: int, message: str
) -> None:
    dev = PL061State()
    dev.pullups = pullups
    dev.pulldowns = pulldowns
    with pytest.raises(Error, match=message):
        dev.realize()


# -- data and direction --------------------------------------------------------------


def test_data_writes_change_output_lines_only(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(DIR, 0x0F)
    g.write(ALL, 0xA5)
    assert g.read(ALL) == 0x05
    assert [g.out_level(i) for i in range(4)] == [1, 0, 1, 0]


def test_address_bits_mask_data_reads_and_writes(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(DIR, 0xFF)
    g.write(ALL, 0x0F)
    assert g.read(window(0x04)) == 0x04
    assert g.read(window(0xF0)) == 0
    g.write(window(0x81), 0xFF)  # lines 0 and 7 only
    assert g.read(ALL) == 0x8F
    g.write(window(0x01), 0x00)
    assert g.read(ALL) == 0x8E
    # Offsets between windows: bits [1:0] are ignored, as in QEMU.
    assert g.read(window(0x80) + 1, 1) == 0x80


def test_direction_change_drives_the_data_bit(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.set_input(2, 1)  # an input: data bit 2 follows the line
    assert g.read(ALL) == 0x04
    assert g.out_level(2) == 0
    g.write(DIR, 0x04)  # now an output: it drives the data bit
    assert g.out_level(2) == 1


def test_inputs_on_output_lines_are_ignored(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(DIR, 0x01)
    g.set_input(0, 1)
    assert g.read(ALL) == 0
    g.set_input(1, 1)
    assert g.read(ALL) == 0x02


def test_floating_input_keeps_its_last_level() -> None:
    g = make_gpio(pullups=0, pulldowns=0)
    g.write(DIR, 0x01)
    g.write(ALL, 0x01)
    assert g.out_level(0) == 1
    before = len(g.outputs)
    g.write(DIR, 0x00)  # input now, floating: no change reported
    assert len(g.outputs) == before


def test_pulled_down_input_drops_when_it_stops_being_an_output(
    virt_gpio: Gpio,
) -> None:
    g = virt_gpio
    g.write(DIR, 0x01)
    g.write(ALL, 0x01)
    g.write(DIR, 0x00)
    assert g.out_level(0) == 0


# -- interrupts ----------------------------------------------------------------------


def test_rising_edge_interrupt(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(IEV, 0x01)
    g.write(IE, 0x01)
    g.set_input(0, 1)
    assert (g.read(RIS), g.read(MIS), g.level) == (1, 1, 1)
    g.write(IC, 0x01)
    assert (g.read(RIS), g.level) == (0, 0)
    g.set_input(0, 0)  # falling edge: not selected
    assert g.read(RIS) == 0


def test_falling_edge_interrupt(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.set_input(1, 1)
    assert g.read(RIS) == 0  # IEV 0: the rising edge is not selected
    g.set_input(1, 0)
    assert g.read(RIS) == 0x02


def test_both_edges_interrupt(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(IBE, 0x04)
    g.set_input(2, 1)
    assert g.read(RIS) == 0x04
    g.write(IC, 0x04)
    g.set_input(2, 0)
    assert g.read(RIS) == 0x04


def test_level_interrupt_relatches_while_the_level_holds(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(IEV, 0x08)  # high level (set first: IS with IEV 0 latches low)
    g.write(IS, 0x08)
    g.write(IE, 0x08)
    assert g.read(RIS) == 0
    g.set_input(3, 1)
    assert (g.read(RIS), g.level) == (0x08, 1)
    g.write(IC, 0x08)  # the IC write's update latches the level again
    assert (g.read(RIS), g.level) == (0x08, 1)
    g.set_input(3, 0)
    assert g.read(RIS) == 0x08  # still latched until cleared
    g.write(IC, 0x08)
    assert (g.read(RIS), g.level) == (0, 0)


def test_low_level_interrupt_latches_at_once(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(IS, 0x10)  # IEV 0: low level, and line 4 is low
    assert g.read(RIS) == 0x10
    assert g.level == 0  # masked
    g.write(IE, 0x10)
    assert (g.read(MIS), g.level) == (0x10, 1)


def test_output_lines_latch_level_interrupts_too(virt_gpio: Gpio) -> None:
    # QEMU's level check does not look at GPIODIR.
    g = virt_gpio
    g.write(DIR, 0x01)
    g.write(IEV, 0x01)
    g.write(IS, 0x01)
    assert g.read(RIS) == 0
    g.write(ALL, 0x01)
    assert g.read(RIS) == 0x01


def test_ic_clears_with_any_width(virt_gpio: Gpio) -> None:
    g = virt_gpio
    g.write(IBE, 0xFF)
    for i in range(8):
        g.set_input(i, 1)
    assert g.read(RIS) == 0xFF
    g.write(IC, 0xFFFF_FF0F)
    assert g.read(RIS) == 0xF0


def test_registers_keep_eight_bits(virt_gpio: Gpio) -> None:
    g = virt_gpio
    for offset in (DIR, IS, IBE, IEV, IE):
        g.write(offset, 0x1234_5678)
        assert g.read(offset) == 0x78


# -- AFSEL and the Luminary registers ------------------------------------------------


def test_afsel_is_writable_while_cr_allows(gpio: Gpio) -> None:
    gpio.write(AFSEL, 0x1FF)
    assert gpio.read(AFSEL) == 0xFF


def test_luminary_commit_register_guards_afsel() -> None:
    g = make_gpio(TYPE_PL061_LUMINARY)
    assert g.read(GPIOLOCK) == 1
    g.write(GPIOCR, 0x0F)  # locked: ignored
    assert g.read(GPIOCR) == 0xFF
    g.write(GPIOLOCK, LOCK_KEY)
    assert g.read(GPIOLOCK) == 0
    g.write(GPIOCR, 0x0F)
    g.write(GPIOLOCK, 0)  # any other value locks
    assert (g.read(GPIOLOCK), g.read(GPIOCR)) == (1, 0x0F)
    g.write(AFSEL, 0xFF)
    assert g.read(AFSEL) == 0x0F


def test_luminary_pad_registers_reset_and_keep_eight_bits() -> None:
    g = make_gpio(TYPE_PL061_LUMINARY)
    assert g.read(GPIODR2R) == 0xFF
    for i in range(8):
        offset = 0x500 + 4 * i
        g.write(offset, 0x1A5)
        assert g.read(offset) == 0xA5
    g.write(GPIOAMSEL, 0x3C3)
    assert g.read(GPIOAMSEL) == 0xC3


def test_luminary_pulls_come_from_pur_and_pdr() -> None:
    g = make_gpio(TYPE_PL061_LUMINARY, pullups=0, pulldowns=0)
    # At reset PUR and PDR are 0: every line floats, nothing is driven.
    assert g.outputs == []
    g.write(GPIOPUR, 0x01)
    assert g.out_level(0) == 1
    g.write(GPIOPUR, 0x00)
    g.write(GPIOPDR, 0x01)
    assert g.out_level(0) == 0


def test_luminary_offsets_are_bad_on_the_arm_pl061(
    gpio: Gpio, log: pytest.CaptureFixture[str]
) -> None:
    assert gpio.read(GPIOPUR) == 0
    gpio.write(GPIOLOCK, LOCK_KEY)
    assert log.readouterr().err == (
        "pl061_read: Bad offset 510\npl061_write: Bad offset 520\n"
    )


# -- bad accesses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "line"),
    [
        (IC, "pl061_read: Bad offset 41c\n"),
        (0x424, "pl061_read: Bad offset 424\n"),
        (0xFCC, "pl061_read: Bad offset fcc\n"),
        (DIR + 1, "pl061_read: Bad offset 401\n"),
    ],
)
def test_bad_reads(
    gpio: Gpio, log: pytest.CaptureFixture[str], offset: int, line: str
) -> None:
    assert gpio.read(offset, 1 if offset & 3 else 4) == 0
    assert log.readouterr().err == line


@pytest.mark.parametrize(
    ("offset", "line"),
    [
        (RIS, "pl061_write: Bad offset 414\n"),
        (MIS, "pl061_write: Bad offset 418\n"),
        (0x800, "pl061_write: Bad offset 800\n"),
        (0xFE0, "pl061_write: Bad offset fe0\n"),
    ],
)
def test_bad_writes_change_nothing(
    virt_gpio: Gpio, log: pytest.CaptureFixture[str], offset: int, line: str
) -> None:
    g = virt_gpio
    before = len(g.outputs), len(g.intr)
    g.write(offset, 0xFF)
    assert log.readouterr().err == line
    assert (len(g.outputs), len(g.intr)) == before
    assert g.read(RIS) == 0
    assert g.read(0xFE0) == PL061_ID[4]


def test_trace_events_have_qemus_names_and_the_path(
    virt_gpio: Gpio, capsys: pytest.CaptureFixture[str]
) -> None:
    trace_enable_events("pl061_*")
    g = virt_gpio
    g.write(DIR, 1)
    g.write(ALL, 1)
    g.read(ALL)
    err = capsys.readouterr().err
    for needle in (
        "pl061_write /gpio offset 0x400 value 0x1",
        "pl061_update /gpio GPIODIR 0x1 GPIODATA 0x0 pullups 0x0 floating 0x0",
        "pl061_set_output /gpio setting output 0 to 1",
        "pl061_update_istate /gpio GPIORIS 0x0 GPIOIE 0x0 interrupt level 0",
        "pl061_read /gpio offset 0x3fc value 0x1",
    ):
        assert needle in err


def test_pl061_create_maps_and_connects() -> None:
    dev = pl061_create(0x1000_0000, None)
    assert dev.realized
    assert dev.pullups == 0xFF
    assert dev.pulldowns == 0
