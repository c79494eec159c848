"""The PL031's VMState: QEMU 7.2's wire layout, the tick offset both ways, the alarm.

The stream layout is QEMU's ``vmstate_pl031`` (six big-endian ``uint32``
fields) and its subsection ``pl031/tick-offset`` (the subsection marker 5,
the name with its length byte, the version as ``uint32``, the offset);
tests/migration/test_qemu_compat.py loads streams QEMU 7.2 itself wrote.
"""

from __future__ import annotations

import struct

from hw.rtc.pl031.device import PL031State
from hw.rtc.pl031.tests.conftest import DR, IMSC, LR, MR, RIS, START, Rtc, make_rtc
from qemu_api.migration.qemu_file import QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import vmstate_load_state, vmstate_save_state
from qemu_api.option import qemu_opts_parse
from qemu_api.rtc import configure_rtc
from qemu_api.timer import NANOSECONDS_PER_SECOND as SEC
from qemu_api.timer import clock_step

VMSD = PL031State.vmsd
SUBSECTION = b"\x05" + bytes([len(b"pl031/tick-offset")]) + b"pl031/tick-offset"


def save(dev: PL031State) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, VMSD, dev)
    return f.getvalue()


def load(dev: PL031State, data: bytes) -> None:
    vmstate_load_state(QEMUFileReader(data), VMSD, dev, 1)


def stream(
    vmstate: int, mr: int, lr: int, im: int, is_: int, tick: int | None
) -> bytes:
    out = struct.pack(">6I", vmstate, mr, lr, 0, im, is_)
    if tick is not None:
        out += SUBSECTION + struct.pack(">II", 1, tick)
    return out


def test_layout_is_qemus(rtc: Rtc) -> None:
    rtc.write(LR, 1000)
    rtc.write(MR, 2000)
    rtc.write(IMSC, 1)
    # clock=vm: the rtc clock is the virtual clock, so both offsets agree.
    assert save(rtc.dev) == stream(1000, 2000, 1000, 1, 0, 1000)


def test_migrate_tick_offset_off_sends_the_main_section_only() -> None:
    r = make_rtc(migrate_tick_offset=False)
    assert save(r.dev) == stream(START, 0, 0, 0, 0, None)
    configure_rtc()


def test_main_section_holds_the_offset_from_the_virtual_clock() -> None:
    # clock=rt: the rtc clock (host monotonic) and the virtual clock differ;
    # the main section's field is tick_offset + (rtc - virtual) seconds, the
    # counter as the virtual clock would give it.
    r = make_rtc("base=2020-01-01T00:00:00,clock=rt")
    data = save(r.dev)
    (vmstate,) = struct.unpack_from(">I", data)
    assert vmstate in (r.read(DR), r.read(DR) - 1, r.read(DR) + 1)
    (tick,) = struct.unpack(">I", data[-4:])
    with r.dev.regs.borrow() as regs:
        assert tick == regs.tick_offset
    configure_rtc()


def test_round_trip_keeps_the_counter_and_registers(rtc: Rtc) -> None:
    rtc.write(LR, 5000)
    rtc.write(MR, 5003)
    rtc.write(IMSC, 1)
    data = save(rtc.dev)
    other = make_rtc(name="rtc2").dev
    load(other, data)
    with other.regs.borrow() as regs:
        assert (regs.tick_offset, regs.mr, regs.lr, regs.im) == (5000, 5003, 5000, 1)
    assert save(other) == data


def test_load_rearms_the_alarm(rtc: Rtc) -> None:
    target = make_rtc(name="rtc2")
    load(target.dev, stream(100, 103, 0, 1, 0, 100))
    assert target.dev.timer.pending()
    clock_step(3 * SEC)
    assert target.read(RIS) == 1
    assert target.level == 1


def test_load_with_mr_reached_raises_at_once(rtc: Rtc) -> None:
    load(rtc.dev, stream(100, 100, 0, 1, 0, 100))
    assert rtc.read(RIS) == 1


def test_stream_without_subsection_converts_from_the_virtual_clock() -> None:
    # An older source sent only the offset from vm_clock: with clock=vm that
    # is the offset itself.
    r = make_rtc()
    clock_step(10 * SEC)
    load(r.dev, stream(7000, 0, 0, 0, 0, None))
    assert r.read(DR) == 7010
    configure_rtc()


def test_subsection_wins_over_the_main_section() -> None:
    configure_rtc(qemu_opts_parse("base=2020-01-01T00:00:00,clock=vm"))
    r = make_rtc()
    load(r.dev, stream(1, 0, 0, 0, 0, 9000))
    assert r.read(DR) == 9000
    # A later load without the subsection does not keep the earlier flag.
    load(r.dev, stream(42, 0, 0, 0, 0, None))
    assert r.read(DR) == 42
    configure_rtc()


def test_an_imsc_write_replaces_out_of_range_loaded_bits(rtc: Rtc) -> None:
    load(rtc.dev, stream(100, 0, 0, 0xFE, 0, 100))
    assert rtc.read(IMSC) == 0xFE
    rtc.write(IMSC, 1)
    assert rtc.read(IMSC) == 1
