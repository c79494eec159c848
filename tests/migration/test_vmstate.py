"""VMState declarations, their checks, and the state of one device on the wire."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest

from qemu_api.bits import BitField, Bitfield, u8, u16, u32, u64
from qemu_api.bql import BorrowMutError, BqlCell, BqlRefCell, BqlStruct
from qemu_api.error import Error
from qemu_api.migration.qemu_file import QEMUFileError, QEMUFileReader, QEMUFileWriter
from qemu_api.migration.vmstate import (
    VMSTATE_INSTANCE_ID_ANY,
    VMStateDescription,
    VMStateField,
    array_field,
    savevm_entries,
    vmstate_array,
    vmstate_bool,
    vmstate_buffer,
    vmstate_capture_state,
    vmstate_clock,
    vmstate_info_timer,
    vmstate_info_uint8,
    vmstate_info_uint16,
    vmstate_info_uint32,
    vmstate_int8,
    vmstate_int16,
    vmstate_int32,
    vmstate_int64,
    vmstate_load_state,
    vmstate_parse_state,
    vmstate_register,
    vmstate_restore_state,
    vmstate_save_state,
    vmstate_struct,
    vmstate_struct_array,
    vmstate_timer_ptr,
    vmstate_uint8,
    vmstate_uint16,
    vmstate_uint32,
    vmstate_uint64,
    vmstate_unregister,
    vmstate_unused,
    vmstate_validate,
    vmstate_varray,
)
from qemu_api.qdev import qdev_unrealize
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import CLOCK_VIRTUAL, SCALE_NS, Timer, clock_step
from tests.migration.migdev import REJECT_MAGIC, MigTestDev, fill, snapshot


def save(vmsd: VMStateDescription[Any], obj: object) -> bytes:
    f = QEMUFileWriter()
    vmstate_save_state(f, vmsd, obj)
    return f.getvalue()


def load(vmsd: VMStateDescription[Any], obj: object, data: bytes, v: int) -> int:
    f = QEMUFileReader(data)
    vmstate_load_state(f, vmsd, obj, v)
    return f.pos


def cause(exc: BaseException) -> BaseException:
    """The Error raised by a description attached in a class body.

    Python 3.11 wraps exceptions from ``__set_name__`` in a RuntimeError.
    """
    if isinstance(exc, RuntimeError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def describe(vmsd: VMStateDescription[Any], obj: object) -> Any:
    """The JSON description of saving ``obj`` (parsed back: plain JSON values)."""
    desc: dict[str, object] = {}
    vmstate_save_state(QEMUFileWriter(), vmsd, obj, desc)
    return json.loads(json.dumps(desc))


def realized_dev() -> MigTestDev:
    dev = MigTestDev()
    sysbus_realize(dev)
    return dev


# -- every field kind -------------------------------------------------------------


def test_every_field_kind_round_trips() -> None:
    src = realized_dev()
    fill(src)
    data = save(MigTestDev.vmsd, src)
    dst = realized_dev()
    end = load(MigTestDev.vmsd, dst, data, 3)
    assert end == len(data)
    assert snapshot(dst) == snapshot(src)
    with dst.regs.borrow() as r:
        assert r.loads == 1  # post_load ran once
        assert r.counted[3:] == [0] * 5  # only the counted elements load


def test_scalar_wire_layout_is_big_endian_and_twos_complement() -> None:
    @dataclass
    class S:
        a: u8 = field(default_factory=u8)
        b: u16 = field(default_factory=u16)
        c: u32 = field(default_factory=u32)
        d: u64 = field(default_factory=u64)
        e: int = 0
        f: int = 0
        g: int = 0
        h: int = 0
        i: bool = False

    vmsd = VMStateDescription(
        "layout",
        fields=[
            vmstate_uint8(lambda s: s.a),
            vmstate_uint16(lambda s: s.b),
            vmstate_uint32(lambda s: s.c),
            vmstate_uint64(lambda s: s.d),
            vmstate_int8(lambda s: s.e),
            vmstate_int16(lambda s: s.f),
            vmstate_int32(lambda s: s.g),
            vmstate_int64(lambda s: s.h),
            vmstate_bool(lambda s: s.i),
        ],
        state=S,
    )
    s = S(
        u8(1), u16(0x203), u32(0x4050607), u64(0x8090A0B0C0D0E0F), -1, -2, -3, -4, True
    )
    data = save(vmsd, s)
    assert data.hex() == (
        "0102030405060708090a0b0c0d0e0ffffffefffffffdfffffffffffffffc01"
    )
    t = S()
    load(vmsd, t, data, 0)
    assert t == s
    assert type(t.c) is u32


def test_signed_field_holding_unsigned_bits() -> None:
    @dataclass
    class S:
        pos: u32 = field(default_factory=u32)

    vmsd = VMStateDescription("s", fields=[vmstate_int32(lambda s: s.pos)], state=S)
    data = save(vmsd, S(u32(0xFFFFFFFE)))
    assert data.hex() == "fffffffe"
    t = S()
    load(vmsd, t, data, 0)
    assert t.pos == 0xFFFFFFFE
    assert type(t.pos) is u32


def test_value_that_does_not_fit_fails_the_save_naming_the_field() -> None:
    @dataclass
    class S:
        n: int = 0
        m: int = 0

    vmsd = VMStateDescription(
        "fits",
        fields=[vmstate_int8(lambda s: s.n), vmstate_uint16(lambda s: s.m)],
        state=S,
    )
    with pytest.raises(Error, match=r"VMState 'fits', field 'n': .*200.*int8"):
        save(vmsd, S(n=200))
    with pytest.raises(Error, match=r"field 'm': the value 0x10000 does not fit 16"):
        save(vmsd, S(m=0x10000))


class Mode(enum.IntEnum):
    A = 0
    B = 1


class Ctrl(Bitfield, width=12):
    enable = BitField(0, 1, bool)
    mode = BitField(4, 1, Mode)


def test_bitfield_register_round_trips_and_rejects_wide_values() -> None:
    @dataclass
    class S:
        ctrl: Ctrl = field(default_factory=Ctrl)

    vmsd = VMStateDescription("bf", fields=[vmstate_uint16(lambda s: s.ctrl)], state=S)
    s = S(Ctrl.from_int(0x811))
    data = save(vmsd, s)
    assert data.hex() == "0811"
    t = S()
    load(vmsd, t, data, 0)
    assert t.ctrl == s.ctrl
    assert t.ctrl.mode is Mode.B
    with pytest.raises(Error, match=r"field 'ctrl': 0xf000 does not fit the 12-bit"):
        load(vmsd, t, bytes.fromhex("f000"), 0)
    assert t.ctrl == s.ctrl


def test_timer_migrates_its_expiry_or_minus_one() -> None:
    @dataclass
    class S:
        t: Timer = field(default_factory=lambda: Timer(CLOCK_VIRTUAL, SCALE_NS, fired))

    fires: list[int] = []

    def fired() -> None:
        fires.append(1)

    vmsd = VMStateDescription("tm", fields=[vmstate_timer_ptr(lambda s: s.t)], state=S)
    s = S()
    assert save(vmsd, s).hex() == "ffffffffffffffff"
    s.t.mod_ns(1500)
    assert save(vmsd, s).hex() == "00000000000005dc"
    d = S()
    load(vmsd, d, save(vmsd, s), 0)
    assert d.t.expire_time() == 1500
    clock_step(1500)
    assert len(fires) == 2  # the source's timer and the loaded one
    d.t.mod_ns(5000)
    load(vmsd, d, bytes.fromhex("ffffffffffffffff"), 0)
    assert not d.t.pending()


def test_timer_arrays() -> None:
    @dataclass
    class S:
        ts: list[Timer] = field(
            default_factory=lambda: (
                [Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)] * 1
                + [Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)]
            )
        )

    vmsd = VMStateDescription(
        "ta", fields=[vmstate_array(lambda s: s.ts, vmstate_info_timer, 2)], state=S
    )
    s = S()
    s.ts[1].mod_ns(7)
    assert save(vmsd, s).hex() == "ffffffffffffffff" + "0000000000000007"
    d = S()
    load(vmsd, d, save(vmsd, s), 0)
    assert [t.expire_time() for t in d.ts] == [-1, 7]


def test_clock_period_and_muldiv_subsection() -> None:
    src = realized_dev()
    src.clk.set_hz(1_000_000)
    clock = describe(MigTestDev.vmsd, src)["subsections"][0]["fields"][0]
    assert clock["struct"]["vmsd_name"] == "clock"
    assert "subsections" not in clock["struct"]  # 1:1, no clock/muldiv
    assert clock["size"] == 8
    src.clk.set_mul_div(5, 3)
    dst = realized_dev()
    dst.clk.set_mul_div(7, 7)
    load(MigTestDev.vmsd, dst, save(MigTestDev.vmsd, src), 3)
    assert (dst.clk.period(), dst.clk._multiplier, dst.clk._divider) == (
        src.clk.period(),
        5,
        3,
    )
    # A stream without clock/muldiv means 1:1 (the clock's pre_load).
    src.clk.set_mul_div(1, 1)
    load(MigTestDev.vmsd, dst, save(MigTestDev.vmsd, src), 3)
    assert (dst.clk._multiplier, dst.clk._divider) == (1, 1)


def test_counted_array_longer_than_the_list_is_rejected() -> None:
    src = realized_dev()
    dst = realized_dev()
    with src.regs.borrow_mut() as r:
        r.count = u8(9)
    with pytest.raises(Error, match=r"field 'counted': the list has 8 elements, but 9"):
        save(MigTestDev.vmsd, src)
    with src.regs.borrow_mut() as r:
        r.count = u8(8)
    data = bytearray(save(MigTestDev.vmsd, src))
    # The count byte follows unused(2) b8 b16 b32 b64 s8 s16 s32 s64 flag fixed.
    at = 2 + 1 + 2 + 4 + 8 + 1 + 2 + 4 + 8 + 1 + 16
    assert data[at] == 8
    data[at] = 9
    before = snapshot(dst)
    with pytest.raises(Error, match=r"VMState 'mig-regs', field 'counted': the list"):
        load(MigTestDev.vmsd, dst, bytes(data), 3)
    assert snapshot(dst) == before


def test_struct_array_elements_are_loaded_in_place() -> None:
    src = realized_dev()
    fill(src)
    dst = realized_dev()
    with dst.regs.borrow() as r:
        first = r.subs[0]
    load(MigTestDev.vmsd, dst, save(MigTestDev.vmsd, src), 3)
    with dst.regs.borrow() as r:
        assert r.subs[0] is first
        assert first.a == 0xB1


# -- versions ------------------------------------------------------------------------


def test_field_newer_than_the_stream_keeps_its_value() -> None:
    @dataclass
    class S:
        old: u16 = field(default_factory=u16)
        late: u32 = field(default_factory=u32)
        n: u8 = field(default_factory=u8)
        items: list[u8] = field(default_factory=lambda: [u8(0)] * 4)

    vmsd = VMStateDescription(
        "versions",
        version_id=3,
        minimum_version_id=2,
        fields=[
            vmstate_uint16(lambda s: s.old),
            vmstate_uint32(lambda s: s.late, version_id=3),
            vmstate_uint8(lambda s: s.n, version_id=3),
            vmstate_varray(lambda s: s.items, vmstate_info_uint8, lambda s: s.n),
        ],
        state=S,
    )
    src = S(u16(0x102), u32(0x30405), u8(2), [u8(7), u8(8), u8(0), u8(0)])
    assert save(vmsd, src).hex() == "010200030405020708"
    dst = S(late=u32(77), n=u8(1))
    # Version 2 has neither 'late' nor 'n': the count is the current one.
    assert load(vmsd, dst, bytes.fromhex("050609"), 2) == 3
    assert (dst.old, dst.late, dst.n, dst.items) == (0x506, 77, 1, [9, 0, 0, 0])
    assert load(vmsd, dst, save(vmsd, src), 3) == 9
    assert dst == src


def test_version_too_new_and_too_old_are_errors() -> None:
    dev = realized_dev()
    data = save(MigTestDev.vmsd, dev)
    with pytest.raises(
        Error,
        match=r"VMState 'mig-test-dev': incoming version_id 4 is too new for local "
        r"version_id 3",
    ):
        load(MigTestDev.vmsd, dev, data, 4)
    with pytest.raises(
        Error,
        match=r"VMState 'mig-test-dev': incoming version_id 1 is too old for local "
        r"minimum version_id 2",
    ):
        load(MigTestDev.vmsd, dev, data, 1)


# -- subsections ---------------------------------------------------------------------


def test_subsections_only_when_needed() -> None:
    dev = realized_dev()
    plain = save(MigTestDev.vmsd, dev)
    assert b"mig-test-dev/clock" not in plain
    assert b"mig-test-dev/period" not in plain
    dev.period = u32(3)
    data = save(MigTestDev.vmsd, dev)
    tail = bytes([0x05, len(b"mig-test-dev/period")]) + b"mig-test-dev/period"
    assert data == plain + tail + bytes.fromhex("0000000100000003")
    other = realized_dev()
    load(MigTestDev.vmsd, other, data, 3)
    assert other.period == 3


def test_unknown_subsection_is_an_error_and_foreign_prefix_ends_the_state() -> None:
    dev = realized_dev()
    plain = save(MigTestDev.vmsd, dev)
    bogus = plain + bytes([5, 16]) + b"mig-test-dev/zzz" + bytes(4)
    with pytest.raises(
        Error,
        match=r"VMState 'mig-test-dev': the stream has subsection 'mig-test-dev/zzz',"
        r" which this description does not know \(known subsections: "
        r"'mig-test-dev/clock', 'mig-test-dev/period'\)",
    ):
        load(MigTestDev.vmsd, dev, bogus, 3)
    # A subsection of something else is not ours: the state ends before it.
    foreign = plain + bytes([5, 17]) + b"other-device/xyzw" + bytes(4)
    assert load(MigTestDev.vmsd, dev, foreign, 3) == len(plain)


def test_subsection_named_without_a_slash_round_trips() -> None:
    # QEMU's GIC names its subsection "arm_gic_virt_state": the parent's name
    # as a plain prefix is all the loader asks for.
    @dataclass
    class Gic:
        ctlr: int = 0
        extra: int = 0

    gic_vmsd = VMStateDescription[Gic](
        "gic",
        version_id=1,
        minimum_version_id=1,
        fields=[vmstate_uint32(lambda s: s.ctlr)],
        subsections=[
            VMStateDescription[Gic](
                "gic_virt_state",
                version_id=1,
                minimum_version_id=1,
                needed=lambda s: s.extra != 0,
                fields=[vmstate_uint32(lambda s: s.extra)],
            )
        ],
    )
    data = save(gic_vmsd, Gic(1, 7))
    tail = bytes([0x05, len(b"gic_virt_state")]) + b"gic_virt_state"
    assert data == bytes.fromhex("00000001") + tail + bytes.fromhex("0000000100000007")
    other = Gic()
    assert load(gic_vmsd, other, data, 1) == len(data)
    assert other == Gic(1, 7)


# -- hooks and validation ------------------------------------------------------------


def test_hooks_run_in_qemu_order() -> None:
    calls: list[str] = []

    @dataclass
    class S:
        x: u32 = field(default_factory=u32)

    def pre_save(s: S) -> None:
        calls.append(f"pre_save x={int(s.x)}")
        s.x = u32(5)

    def post_save(s: S) -> None:
        calls.append("post_save")

    def pre_load(s: S) -> None:
        calls.append(f"pre_load x={int(s.x)}")

    def post_load(s: S, version_id: int) -> None:
        calls.append(f"post_load x={int(s.x)} v={version_id}")

    vmsd = VMStateDescription(
        "hooks",
        version_id=2,
        fields=[vmstate_uint32(lambda s: s.x)],
        pre_save=pre_save,
        post_save=post_save,
        pre_load=pre_load,
        post_load=post_load,
        state=S,
    )
    data = save(vmsd, S())
    assert data.hex() == "00000005"
    load(vmsd, S(u32(9)), data, 1)
    # A load first captures the state it may have to put back: pre_save runs
    # on the destination too (and here sets x to 5 before pre_load sees it).
    assert calls == [
        "pre_save x=0",
        "post_save",
        "pre_save x=9",
        "pre_load x=5",
        "post_load x=5 v=1",
    ]


def test_rejected_load_restores_a_state_kept_outside_its_fields() -> None:
    # The GIC's shape: the fields are a view in the stream's layout, filled by
    # pre_save and copied into the running state by post_load.  A load that a
    # later hook rejects must leave the running state as it was.
    @dataclass
    class S:
        live: int = 7
        view: u32 = field(default_factory=u32)

    def pre_save(s: S) -> None:
        s.view = u32(s.live)

    def post_load(s: S, version_id: int) -> None:
        s.live = int(s.view)

    def reject_odd(s: S, version_id: int) -> None:
        if s.live % 2:
            raise Error(f"live {s.live} is odd")

    inner = VMStateDescription(
        "shadowed-inner",
        version_id=1,
        fields=[vmstate_uint32(lambda s: s.view)],
        pre_save=pre_save,
        post_load=post_load,
        state=S,
    )

    @dataclass
    class Outer:
        dev: S = field(default_factory=S)
        check: S = field(default_factory=S)

    def post_load_outer(o: Outer, version_id: int) -> None:
        reject_odd(o.check, version_id)

    outer = VMStateDescription(
        "shadowed",
        version_id=1,
        fields=[
            vmstate_struct(lambda o: o.dev, inner),
            vmstate_struct(lambda o: o.check, inner),
        ],
        post_load=post_load_outer,
        state=Outer,
    )
    src = Outer(S(live=40), S(live=3))
    dst = Outer(S(live=12), S(live=8))
    with pytest.raises(Error, match=r"post_load: live 3 is odd"):
        load(outer, dst, save(outer, src), 1)
    assert (dst.dev.live, dst.check.live) == (12, 8)
    # capture/restore around a load that stored 40 and 3
    backup = vmstate_capture_state(outer, dst)
    src.check.live = 4
    load(outer, dst, save(outer, src), 1)
    assert (dst.dev.live, dst.check.live) == (40, 4)
    vmstate_restore_state(outer, dst, backup)
    assert (dst.dev.live, dst.check.live) == (12, 8)


def test_post_load_rejection_restores_every_field() -> None:
    src = realized_dev()
    fill(src)
    with src.regs.borrow_mut() as r:
        r.b32 = u32(REJECT_MAGIC)
    dst = realized_dev()
    dst.timer.mod_ns(999)
    dst.clk.set_hz(1000)
    before = snapshot(dst)
    with pytest.raises(
        Error,
        match=r"VMState 'mig-test-dev': post_load: b32 is 0xdeadbeef, which this "
        r"device rejects",
    ):
        load(MigTestDev.vmsd, dst, save(MigTestDev.vmsd, src), 3)
    assert snapshot(dst) == before
    assert dst.timer.expire_time() == 999


def test_validation_entry_rejects_and_restores() -> None:
    src = realized_dev()
    fill(src)
    with src.regs.borrow_mut() as r:
        r.b8 = u8(0xFF)
    dst = realized_dev()
    before = snapshot(dst)
    with pytest.raises(
        Error,
        match=r"VMState 'mig-test-dev', field 'b8 is not 0xff': input validation "
        r"failed",
    ):
        load(MigTestDev.vmsd, dst, save(MigTestDev.vmsd, src), 3)
    assert snapshot(dst) == before


def test_parse_changes_nothing_and_capture_restore_round_trip() -> None:
    src = realized_dev()
    fill(src)
    dst = realized_dev()
    before = snapshot(dst)
    loaded = vmstate_parse_state(
        QEMUFileReader(save(MigTestDev.vmsd, src)), MigTestDev.vmsd, dst, 3
    )
    assert snapshot(dst) == before
    assert loaded.version_id == 3
    backup = vmstate_capture_state(MigTestDev.vmsd, dst)
    load(MigTestDev.vmsd, dst, save(MigTestDev.vmsd, src), 3)
    assert snapshot(dst) == snapshot(src)
    vmstate_restore_state(MigTestDev.vmsd, dst, backup)
    assert snapshot(dst) == before


def test_truncated_state_names_the_field() -> None:
    dev = realized_dev()
    data = save(MigTestDev.vmsd, dev)
    with pytest.raises(
        QEMUFileError,
        match=r"VMState 'mig-test-dev', field 'regs': VMState 'mig-regs', field "
        r"'b64': the stream ends at offset 0xb: needed 6 more bytes",
    ):
        load(MigTestDev.vmsd, dev, data[:11], 3)


# -- declaration checks --------------------------------------------------------------


@dataclass
class Plain:
    ctrl: u32 = field(default_factory=u32)
    small: u16 = field(default_factory=u16)
    fifo: list[u8] = field(default_factory=lambda: [u8(0)] * 4)
    data: bytearray = field(default_factory=lambda: bytearray(3))
    name: str = ""


def test_unknown_attribute_is_named_with_a_suggestion() -> None:
    with pytest.raises(
        Error,
        match=r"VMState 'p', field 'ctlr': Plain has no annotated attribute 'ctlr'; "
        r"did you mean 'ctrl'\?",
    ):
        VMStateDescription[Any](
            "p", fields=[vmstate_uint32(lambda s: s.ctlr)], state=Plain
        )


@pytest.mark.parametrize(
    ("fld", "message"),
    [
        (
            vmstate_uint32(lambda s: s.small),
            (
                r"Plain.small is annotated u16, but vmstate_uint32 needs u32, int or a "
                r"Bitfield of at most 32 bits"
            ),
        ),
        (
            vmstate_bool(lambda s: s.ctrl),
            r"Plain.ctrl is annotated u32, but vmstate_bool needs bool",
        ),
        (
            vmstate_int16(lambda s: s.name),
            r"Plain.name is annotated str, but vmstate_int16 needs int \(or u16",
        ),
        (
            vmstate_array(lambda s: s.fifo, vmstate_info_uint8, 8),
            r"Plain.fifo has 4 elements, but the description says 8",
        ),
        (
            vmstate_array(lambda s: s.fifo, vmstate_info_uint16, 4),
            r"an element of Plain.fifo is annotated u8, but uint16 elements needs u16",
        ),
        (
            vmstate_array(lambda s: s.ctrl, vmstate_info_uint32, 4),
            r"Plain.ctrl is annotated u32, but vmstate_array needs a list",
        ),
        (
            vmstate_buffer(lambda s: s.data, 4),
            r"Plain.data has 3 bytes, but the description says 4",
        ),
        (
            vmstate_buffer(lambda s: s.name, 4),
            r"Plain.name is annotated str, but vmstate_buffer needs bytearray",
        ),
        (
            vmstate_timer_ptr(lambda s: s.ctrl),
            r"Plain.ctrl is annotated u32, but .* Timer",
        ),
        (
            vmstate_clock(lambda s: s.ctrl),
            r"Plain.ctrl is annotated u32, but vmstate_clock",
        ),
        (
            vmstate_uint32(lambda s: s.ctrl.x, name="x"),
            r"UInt32 has no annotated attribute 'x'",
        ),
    ],
)
def test_field_that_does_not_fit_the_state(
    fld: VMStateField[object], message: str
) -> None:
    with pytest.raises(Error, match=message):
        VMStateDescription("p", fields=[fld], state=Plain)


def test_bitfield_wider_than_the_field() -> None:
    @dataclass
    class S:
        ctrl: Ctrl = field(default_factory=Ctrl)

    with pytest.raises(
        Error, match=r"S.ctrl is a 12-bit Bitfield, but vmstate_uint8 holds at most 8"
    ):
        VMStateDescription("b", fields=[vmstate_uint8(lambda s: s.ctrl)], state=S)


def test_class_attribute_is_checked_at_class_creation() -> None:
    with pytest.raises((Error, RuntimeError)) as info:

        @dataclass
        class Broken:
            level: u16 = field(default_factory=u16)

            vmsd = VMStateDescription["Broken"](
                "broken", fields=[vmstate_uint32(lambda s: s.level)]
            )

    err = cause(info.value)
    assert isinstance(err, Error)
    assert "VMState 'broken', field 'level': Broken.level is annotated u16" in str(err)


def test_device_class_is_checked_at_class_creation() -> None:
    with pytest.raises((Error, RuntimeError)) as info:

        class BadDev(SysBusDevice, type_name="mig-bad-dev"):
            regs: BqlRefCell[Plain]

            vmsd = VMStateDescription["BadDev"](
                "mig-bad-dev", fields=[vmstate_uint64(lambda s: s.regs.get().ctrl)]
            )

    err = cause(info.value)
    assert isinstance(err, Error)
    assert str(err) == (
        "VMState 'mig-bad-dev', field 'ctrl': Plain.ctrl is annotated u32, but "
        "vmstate_uint64 needs u64, int or a Bitfield of at most 64 bits"
    )


def test_struct_description_must_be_attached_to_the_field_type() -> None:
    loose = VMStateDescription[Plain](
        "loose", fields=[vmstate_uint32(lambda s: s.ctrl)]
    )

    @dataclass
    class Outer:
        inner: Plain = field(default_factory=Plain)
        many: list[Plain] = field(default_factory=lambda: [Plain(), Plain()])

    with pytest.raises(
        Error, match=r"field 'inner': the nested description 'loose' is not attached"
    ):
        VMStateDescription(
            "o", fields=[vmstate_struct(lambda s: s.inner, loose)], state=Outer
        )
    other = VMStateDescription("other", fields=[], state=Outer)
    with pytest.raises(
        Error,
        match=r"Outer.inner is annotated Plain, but the nested description 'other' "
        r"describes Outer",
    ):
        VMStateDescription[Any](
            "o", fields=[vmstate_struct(lambda s: s.inner, other)], state=Outer
        )
    loose.bind(Plain)
    ok = VMStateDescription(
        "o",
        fields=[
            vmstate_struct(lambda s: s.inner, loose),
            vmstate_struct_array(lambda s: s.many, loose, 2),
        ],
        state=Outer,
    )
    data = save(ok, Outer(Plain(u32(1)), [Plain(u32(2)), Plain(u32(3))]))
    assert data.hex() == "000000010000000200000003"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "fields": [
                    vmstate_varray(lambda s: s.fifo, vmstate_info_uint8, lambda s: s.n)
                ]
            },
            r"field 'fifo': the element count 'n' must be an earlier field",
        ),
        (
            {
                "fields": [
                    vmstate_uint64(lambda s: s.ctrl),
                    vmstate_varray(
                        lambda s: s.fifo, vmstate_info_uint8, lambda s: s.ctrl
                    ),
                ]
            },
            r"the element count 'ctrl' must be a uint8, uint16, uint32 or int32",
        ),
        (
            {"fields": [vmstate_uint32(lambda s: s.ctrl, version_id=2)]},
            (
                r"field 'ctrl': the field exists from version 2, after the "
                r"description's version_id 0"
            ),
        ),
        (
            {"fields": [], "version_id": 1, "minimum_version_id": 2},
            r"minimum_version_id 2 must be between 0 and version_id 1",
        ),
        (
            {"fields": [], "subsections": [VMStateDescription("q/x", fields=[])]},
            r"subsection 'q/x' must begin with its parent's name 'p' and add to it",
        ),
        (
            {"fields": [], "subsections": [VMStateDescription("p", fields=[])]},
            r"subsection 'p' must begin with its parent's name 'p' and add to it",
        ),
        (
            {
                "fields": [],
                "subsections": [
                    VMStateDescription("p_x", fields=[]),
                    VMStateDescription("p_x", fields=[]),
                ],
            },
            r"subsection 'p_x' is listed twice",
        ),
    ],
)
def test_inconsistent_descriptions(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Error, match=message):
        VMStateDescription("p", state=Plain, **kwargs)


def test_paths_through_cells() -> None:
    @dataclass
    class Inner:
        v: u16 = field(default_factory=u16)

    class Holder:
        cell: BqlCell[u32]
        ref: BqlRefCell[Inner]

        def __init__(self) -> None:
            self.cell = BqlCell(u32(0))
            self.ref = BqlRefCell(Inner())

    vmsd = VMStateDescription(
        "cells",
        fields=[
            vmstate_uint32(lambda s: s.cell.get()),
            vmstate_uint16(lambda s: s.ref.get().v),
        ],
        state=Holder,
    )
    h = Holder()
    h.cell.set(u32(0x11223344))
    with h.ref.borrow_mut() as inner:
        inner.v = u16(0x5566)
    data = save(vmsd, h)
    assert data.hex() == "112233445566"
    g = Holder()
    load(vmsd, g, data, 0)
    assert g.cell.get() == 0x11223344
    assert g.ref.get().v == 0x5566


# -- the JSON description ------------------------------------------------------------


def test_json_description_as_qemu_writes_it() -> None:
    dev = realized_dev()
    fill(dev)
    desc = describe(MigTestDev.vmsd, dev)
    text = json.dumps(desc)
    assert text.startswith(
        '{"vmsd_name": "mig-test-dev", "version": 3, "fields": [{"name": "unused", '
        '"type": "unused_buffer", "size": 2}, {"name": "regs", "type": "struct", '
        '"struct": {"vmsd_name": "mig-regs", "version": 3, "fields": [{"name": "b8", '
        '"type": "uint8", "size": 1}'
    )
    regs = desc["fields"][1]["struct"]["fields"]
    by_name = {f["name"]: f for f in regs if "index" not in f or f["index"] == 0}
    assert by_name["fixed"] == {
        "name": "fixed",
        "array_len": 4,
        "type": "uint32",
        "size": 4,
    }
    assert by_name["counted"]["array_len"] == 3
    # Struct elements with subsections are described one by one.
    subs = [f for f in regs if f["name"] == "subs"]
    assert [f["index"] for f in subs] == [0, 1]
    assert by_name["buf"] == {"name": "buf", "type": "buffer", "size": 6}
    timer = desc["fields"][2]
    assert timer == {"name": "timer", "type": "timer", "size": 8}
    names = [s["vmsd_name"] for s in desc["subsections"]]
    assert names == ["mig-test-dev/clock", "mig-test-dev/period"]


def test_repeated_field_names_are_numbered() -> None:
    @dataclass
    class S:
        x: u8 = field(default_factory=u8)

    vmsd = VMStateDescription(
        "rep",
        fields=[vmstate_unused(1), vmstate_uint8(lambda s: s.x), vmstate_unused(2)],
        state=S,
    )
    assert [f["name"] for f in describe(vmsd, S())["fields"]] == [
        "unused[0]",
        "x",
        "unused[1]",
    ]


def test_validation_entry_has_no_bytes_and_no_description() -> None:
    @dataclass
    class S:
        x: u8 = field(default_factory=u8)

    vmsd = VMStateDescription(
        "val",
        fields=[
            vmstate_uint8(lambda s: s.x),
            vmstate_validate("x small", lambda s, v: s.x < 4),
        ],
        state=S,
    )
    desc: dict[str, object] = {}
    f = QEMUFileWriter()
    vmstate_save_state(f, vmsd, S(u8(3)), desc)
    assert f.getvalue() == b"\x03"
    assert desc["fields"] == [{"name": "x", "type": "uint8", "size": 1}]
    with pytest.raises(Error, match=r"VMState 'val', field 'x small': input valid"):
        load(vmsd, S(), b"\x09", 0)


# -- registration --------------------------------------------------------------------


def test_realized_devices_are_registered_with_qemu_instance_ids() -> None:
    a = realized_dev()
    b = realized_dev()
    entries = [(e.idstr, e.instance_id, e.opaque) for e in savevm_entries()]
    assert entries == [("mig-test-dev", 0, a), ("mig-test-dev", 1, b)]
    qdev_unrealize(a)
    assert [(e.idstr, e.instance_id) for e in savevm_entries()] == [("mig-test-dev", 1)]
    c = realized_dev()
    assert savevm_entries()[-1].instance_id == 2  # one more than the highest
    assert savevm_entries()[-1].opaque is c


def test_explicit_instance_id_conflict() -> None:
    s = Plain()
    vmsd = VMStateDescription[Plain]("reg", fields=[vmstate_uint32(lambda s: s.ctrl)])
    e = vmstate_register(s, vmsd, 4)
    assert (e.idstr, e.instance_id, e.version_id) == ("reg", 4, 0)
    assert vmstate_register(Plain(), vmsd, VMSTATE_INSTANCE_ID_ANY).instance_id == 5
    with pytest.raises(Error, match=r"'reg' instance 4 is already registered"):
        vmstate_register(Plain(), vmsd, 4)
    vmstate_unregister(s, vmsd)
    assert [x.instance_id for x in savevm_entries()] == [5]


def test_device_with_a_vmsd_of_the_wrong_type() -> None:
    class Odd(SysBusDevice, type_name="mig-odd-dev"):
        vmsd = "not a description"

    with pytest.raises(Error, match=r"'mig-odd-dev' has a 'vmsd' class attribute"):
        sysbus_realize(Odd())


def test_array_field_records_its_length() -> None:
    made = make_dataclass("Made", [("fifo", list[u8], array_field(u8, 4))])
    assert made().fifo == [0, 0, 0, 0]
    with pytest.raises(Error, match=r"Made.fifo has 4 elements, but the desc"):
        VMStateDescription[Any](
            "made",
            fields=[vmstate_array(lambda s: s.fifo, vmstate_info_uint8, 5)],
            state=made,
        )


# -- BqlStruct state --------------------------------------------------------------


class StructRegs(BqlStruct):
    ctrl: u32
    fifo: Annotated[list[u8], 3]
    inner: Inner3

    def __init__(self) -> None:
        self.ctrl = u32(0)
        self.fifo = [u8(0)] * 3
        self.inner = Inner3()


class Inner3(BqlStruct):
    level: int

    def __init__(self) -> None:
        self.level = 0

    vmsd = VMStateDescription["Inner3"](
        "inner3", fields=[vmstate_int32(lambda s: s.level)]
    )


class StructDev:
    regs: StructRegs

    def __init__(self) -> None:
        self.regs = StructRegs()

    vmsd = VMStateDescription["StructDev"](
        "struct-dev",
        fields=[
            vmstate_uint32(lambda s: s.regs.ctrl, name="cr"),
            vmstate_array(lambda s: s.regs.fifo, vmstate_info_uint8, 3),
            vmstate_struct(lambda s: s.regs.inner, Inner3.vmsd),
        ],
    )


def test_bqlstruct_fields_round_trip() -> None:
    src = StructDev()
    src.regs.ctrl = u32(0x301)
    with src.regs.borrow_mut() as raw:
        raw.fifo[1] = u8(0x42)
    src.regs.inner.level = -5
    data = save(StructDev.vmsd, src)
    assert data.hex() == "00000301" + "004200" + "fffffffb"
    assert describe(StructDev.vmsd, src)["fields"][0]["name"] == "cr"
    dst = StructDev()
    fifo = dst.regs.fifo
    load(StructDev.vmsd, dst, data, 0)
    assert (dst.regs.ctrl, dst.regs.fifo, dst.regs.inner.level) == (0x301, fifo, -5)
    assert dst.regs.fifo is fifo  # loaded in place
    assert fifo == [0, 0x42, 0]


def test_loading_into_a_borrowed_struct_is_refused() -> None:
    src = StructDev()
    dst = StructDev()
    data = save(StructDev.vmsd, src)
    with dst.regs.borrow(), pytest.raises(BorrowMutError):
        load(StructDev.vmsd, dst, data, 0)


def test_field_length_from_annotated() -> None:
    with pytest.raises(Error, match=r"StructRegs.fifo has 3 elements, but the desc"):
        VMStateDescription[Any](
            "short",
            fields=[vmstate_array(lambda s: s.regs.fifo, vmstate_info_uint8, 4)],
            state=StructDev,
        )


# -- static typing ---------------------------------------------------------------

MISUSE = """
from dataclasses import dataclass, field

from qemu_api.bits import u32
from qemu_api.bql import BqlStruct
from qemu_api.clock import Clock
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_clock,
    vmstate_struct,
    vmstate_timer_ptr,
    vmstate_uint32,
)


class Regs(BqlStruct):
    flags: u32
    lcr: u32


@dataclass
class Other:
    x: u32 = field(default_factory=u32)

    vmsd = VMStateDescription["Other"]("other", fields=[vmstate_uint32(lambda s: s.x)])


class Dev:
    regs: Regs
    clk: Clock

    def post_load(self, version_id: int) -> None:
        pass

    vmsd = VMStateDescription(
        "dev",
        post_load=post_load,
        fields=[
            vmstate_uint32(lambda s: s.regs.flags),
            vmstate_uint32(lambda s: s.regs.flgs),
            vmstate_uint32(lambda s: s.lcr),
            vmstate_timer_ptr(lambda s: s.clk),
            vmstate_struct(lambda s: s.regs, Other.vmsd),
            vmstate_clock(lambda s: s.clk),
        ],
    )
"""


def test_wrong_field_references_fail_mypy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = pytest.importorskip("mypy.api")
    src = tmp_path / "misuse.py"
    src.write_text(MISUSE)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out, err, _ = api.run(
        ["--strict", "--no-error-summary", "--cache-dir", str(tmp_path / "c"), str(src)]
    )
    lines = [
        line.split(": error: ")[1] for line in out.splitlines() if ": error: " in line
    ]
    assert lines == [
        '"Regs" has no attribute "flgs"; maybe "flags"?  [attr-defined]',
        '"Dev" has no attribute "lcr"  [attr-defined]',
        (
            'Argument 1 to "vmstate_timer_ptr" has incompatible type '
            '"Callable[[Dev], Clock]"; expected "Callable[[Dev], Timer]"  [arg-type]'
        ),
        (
            'Incompatible return value type (got "Clock", expected "Timer")  '
            "[return-value]"
        ),
        (
            'Argument 1 to "vmstate_struct" has incompatible type "Callable[[Dev], '
            'Regs]"; expected "Callable[[Dev], Other | BqlRefCell[Other] | '
            'BqlCell[Other]]"  [arg-type]'
        ),
        (
            'Incompatible return value type (got "Regs", expected "Other | '
            'BqlRefCell[Other] | BqlCell[Other]")  [return-value]'
        ),
    ], err


# -- bulk codecs (whole arrays, lists of flat structs) -------------------------------


@dataclass
class FlatElem:
    a: u8 = field(default_factory=u8)
    on: bool = False
    n: int = 0

    vmsd = VMStateDescription["FlatElem"](
        "flat-elem",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_uint8(lambda s: s.a),
            vmstate_bool(lambda s: s.on),
            vmstate_int32(lambda s: s.n),
        ],
    )


@dataclass
class Bulky:
    b: list[u8] = array_field(u8, 5)
    w: list[u16] = array_field(u16, 3)
    d: list[int] = array_field(int, 4)
    elems: list[FlatElem] = array_field(FlatElem, 6)

    vmsd = VMStateDescription["Bulky"](
        "bulky",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_array(lambda s: s.b, vmstate_info_uint8, 5),
            vmstate_array(lambda s: s.w, vmstate_info_uint16, 3),
            vmstate_array(lambda s: s.d, vmstate_info_uint32, 4),
            vmstate_struct_array(lambda s: s.elems, FlatElem.vmsd, 6),
        ],
    )


def bulky() -> Bulky:
    s = Bulky()
    s.b = [u8(i * 0x31) for i in range(5)]
    s.w = [u16(0x1234 + i) for i in range(3)]
    s.d = [0, 1, 0xFFFF_FFFF, 0x8000_0000]
    for i, e in enumerate(s.elems):
        e.a, e.on, e.n = u8(0xF0 + i), i % 2 == 1, -i
    return s


def test_arrays_and_flat_struct_lists_have_qemus_layout() -> None:
    s = bulky()
    expected = b"".join(
        [
            b"".join(int(v).to_bytes(1, "big") for v in s.b),
            b"".join(int(v).to_bytes(2, "big") for v in s.w),
            b"".join(v.to_bytes(4, "big") for v in s.d),
            b"".join(
                int(e.a).to_bytes(1, "big")
                + bytes([e.on])
                + e.n.to_bytes(4, "big", signed=True)
                for e in s.elems
            ),
        ]
    )
    data = save(Bulky.vmsd, s)
    assert data == expected
    other = Bulky()
    first = other.elems[0]
    assert load(Bulky.vmsd, other, data, 1) == len(data)
    assert other == s
    assert other.elems[0] is first  # loaded in place
    assert all(type(v) is u8 for v in other.b)
    assert all(type(e.a) is u8 and type(e.on) is bool for e in other.elems)
    # Any non-zero byte loads as True, as QEMU's get_bool does.
    odd = bytearray(data)
    odd[5 + 6 + 16 + 1] = 7
    load(Bulky.vmsd, other, bytes(odd), 1)
    assert other.elems[0].on is True


def test_bulk_values_that_do_not_fit_and_short_streams_name_the_element() -> None:
    s = bulky()
    s.d[2] = 1 << 32
    with pytest.raises(Error, match=r"field 'd': the value 0x100000000 does not fit"):
        save(Bulky.vmsd, s)
    s = bulky()
    s.elems[4].n = 1 << 31
    with pytest.raises(Error, match=r"field 'n': the value 2147483648 does not fit"):
        save(Bulky.vmsd, s)
    data = save(Bulky.vmsd, bulky())
    dst = Bulky()
    before = save(Bulky.vmsd, dst)
    with pytest.raises(QEMUFileError, match=r"field 'w': element 2: the stream ends"):
        load(Bulky.vmsd, dst, data[:10], 1)
    with pytest.raises(Error, match=r"field 'elems': element 3: VMState 'flat-elem'"):
        load(Bulky.vmsd, dst, data[: 5 + 6 + 16 + 6 * 3 + 2], 1)
    assert save(Bulky.vmsd, dst) == before


def test_a_subsection_record_after_a_flat_struct_is_looked_up_as_qemu_does() -> None:
    # QEMU's vmstate_subsection_load runs after each struct element: a
    # subsection record naming the struct there is refused (the struct has
    # none); one with another prefix ends the struct's part as usual.
    data = bytearray(save(Bulky.vmsd, bulky()))
    at = 5 + 6 + 16 + 6 * 2  # after the second element
    name = b"flat-elem/x"
    record = bytes([0x05, len(name)]) + name + (1).to_bytes(4, "big")
    dst = Bulky()
    with pytest.raises(
        Error,
        match=r"element 1: VMState 'flat-elem': the stream has "
        r"subsection 'flat-elem/x'",
    ):
        load(Bulky.vmsd, dst, bytes(data[:at] + record + data[at:]), 1)
    # A 0x05 byte that is element data is just data.
    data[at] = 0x05
    src_bytes = bytes(data)
    assert load(Bulky.vmsd, dst, src_bytes, 1) == len(src_bytes)
    assert dst.elems[2].a == 0x05
