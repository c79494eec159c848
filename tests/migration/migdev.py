"""A test device whose VMState uses every field kind, and a machine helper.

``mig-test-dev`` keeps its registers in a dataclass held in a BqlRefCell, has
a periodic timer and a clock input, and a VMState description with every
kind of field: scalars of each width, a bool, fixed and counted arrays, a
buffer, unused bytes, nested structs (single, fixed array, counted array), a
timer, a clock (in a subsection), a field that exists only from version 3, a
validation entry and a ``post_load`` that rejects a magic value.

MMIO registers (32-bit):

- 0x00 COUNT (r): timer expiries so far.
- 0x04 LAST (r): low 32 bits of the virtual time of the last expiry.
- 0x08 PERIOD (rw): writing a non-zero period (ns) starts the periodic timer
  at now + period; 0 stops it.
- 0x0c SCRATCH (rw): a plain register.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qemu_api.bits import u8, u16, u32, u64
from qemu_api.bql import BqlRefCell
from qemu_api.clock import Clock, ClockEvent
from qemu_api.error import Error
from qemu_api.memory import (
    DEVICE_LITTLE_ENDIAN,
    MemoryRegion,
    MemoryRegionOps,
    OpsImpl,
)
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_array,
    vmstate_bool,
    vmstate_buffer,
    vmstate_clock,
    vmstate_info_uint16,
    vmstate_info_uint32,
    vmstate_int8,
    vmstate_int16,
    vmstate_int32,
    vmstate_int64,
    vmstate_struct,
    vmstate_struct_array,
    vmstate_struct_varray,
    vmstate_timer_ptr,
    vmstate_uint8,
    vmstate_uint16,
    vmstate_uint32,
    vmstate_uint64,
    vmstate_unused,
    vmstate_validate,
    vmstate_varray,
)
from qemu_api.qom import override
from qemu_api.sysbus import SysBusDevice
from qemu_api.timer import CLOCK_VIRTUAL, SCALE_NS, Timer, qemu_clock_get_ns

TYPE_MIG_TEST_DEV = "mig-test-dev"
REJECT_MAGIC = 0xDEADBEEF


def _sub_extra_needed(sub: Sub) -> bool:
    return sub.extra != 0


@dataclass
class Sub:
    """A nested struct with its own subsection."""

    a: u32 = field(default_factory=u32)
    extra: u16 = field(default_factory=u16)

    vmsd = VMStateDescription["Sub"](
        "mig-sub",
        version_id=1,
        minimum_version_id=1,
        fields=[vmstate_uint32(lambda s: s.a)],
        subsections=[
            VMStateDescription(
                "mig-sub/extra",
                version_id=1,
                minimum_version_id=1,
                needed=_sub_extra_needed,
                fields=[vmstate_uint16(lambda s: s.extra)],
            )
        ],
    )


@dataclass
class Regs:
    """The register state: one attribute per field kind."""

    b8: u8 = field(default_factory=u8)
    b16: u16 = field(default_factory=u16)
    b32: u32 = field(default_factory=u32)
    b64: u64 = field(default_factory=u64)
    s8: int = 0
    s16: int = 0
    s32: int = 0
    s64: int = 0
    flag: bool = False
    fixed: list[u32] = field(default_factory=lambda: [u32(0)] * 4)
    count: u8 = field(default_factory=u8)
    counted: list[u16] = field(default_factory=lambda: [u16(0)] * 8)
    buf: bytearray = field(default_factory=lambda: bytearray(6))
    sub: Sub = field(default_factory=Sub)
    subs: list[Sub] = field(default_factory=lambda: [Sub(), Sub()])
    nsubs: u32 = field(default_factory=u32)
    vsubs: list[Sub] = field(default_factory=lambda: [Sub() for _ in range(3)])
    late: u32 = field(default_factory=u32)
    # Not migrated: derived in post_load.
    loads: int = 0

    vmsd = VMStateDescription["Regs"](
        "mig-regs",
        version_id=3,
        minimum_version_id=2,
        fields=[
            vmstate_uint8(lambda r: r.b8),
            vmstate_uint16(lambda r: r.b16),
            vmstate_uint32(lambda r: r.b32),
            vmstate_uint64(lambda r: r.b64),
            vmstate_int8(lambda r: r.s8),
            vmstate_int16(lambda r: r.s16),
            vmstate_int32(lambda r: r.s32),
            vmstate_int64(lambda r: r.s64),
            vmstate_bool(lambda r: r.flag),
            vmstate_array(lambda r: r.fixed, vmstate_info_uint32, 4),
            vmstate_uint8(lambda r: r.count),
            vmstate_varray(lambda r: r.counted, vmstate_info_uint16, lambda r: r.count),
            vmstate_buffer(lambda r: r.buf, 6),
            vmstate_struct(lambda r: r.sub, Sub.vmsd),
            vmstate_struct_array(lambda r: r.subs, Sub.vmsd, 2),
            vmstate_uint32(lambda r: r.nsubs),
            vmstate_struct_varray(lambda r: r.vsubs, Sub.vmsd, lambda r: r.nsubs),
            vmstate_uint32(lambda r: r.late, version_id=3),
        ],
    )


INVALID_B8 = 0xFF


def _b8_valid(dev: MigTestDev, version_id: int) -> bool:
    with dev.regs.borrow() as r:
        return r.b8 != INVALID_B8


def _clock_needed(dev: MigTestDev) -> bool:
    return dev.clk.period() != 0


def _period_needed(dev: MigTestDev) -> bool:
    return dev.period != 0


def _mmio_read(dev: MigTestDev, offset: int, size: int) -> int:
    with dev.regs.borrow() as r:
        if offset == 0x00:
            return int(r.b32)
        if offset == 0x04:
            return int(r.b64) & 0xFFFF_FFFF
        if offset == 0x0C:
            return int(r.late)
    if offset == 0x08:
        return int(dev.period)
    return 0


def _mmio_write(dev: MigTestDev, offset: int, value: int, size: int) -> None:
    if offset == 0x08:
        dev.period = u32(value)
        if value:
            dev.timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + value)
        else:
            dev.timer.delete()
    elif offset == 0x0C:
        with dev.regs.borrow_mut() as r:
            r.late = u32(value)


MIG_TEST_OPS = MemoryRegionOps["MigTestDev"](
    read=_mmio_read,
    write=_mmio_write,
    endianness=DEVICE_LITTLE_ENDIAN,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)


class MigTestDev(SysBusDevice, type_name=TYPE_MIG_TEST_DEV):
    """The test device (see the module docstring)."""

    regs: BqlRefCell[Regs]
    timer: Timer
    clk: Clock
    period: u32

    @override
    def instance_init(self) -> None:
        self.regs = BqlRefCell(Regs())
        self.timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self._expired)
        self.clk = self.init_clock_in("clk", self._clock_changed, ClockEvent.UPDATE)
        self.period = u32(0)
        self.init_mmio(MemoryRegion.io(self, "mig-test", 0x10, MIG_TEST_OPS, self))

    def _clock_changed(self, event: ClockEvent) -> None:
        pass

    def _expired(self) -> None:
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        with self.regs.borrow_mut() as r:
            r.b32 = r.b32 + u32(1)  # a counter: wraps at 32 bits
            r.b64 = u64(now)
        if self.period:
            self.timer.mod_ns(now + int(self.period))

    def post_load(self, version_id: int) -> None:
        with self.regs.borrow_mut() as r:
            if r.b32 == REJECT_MAGIC:
                raise Error(f"b32 is {REJECT_MAGIC:#x}, which this device rejects")
            r.loads += 1

    vmsd = VMStateDescription(
        "mig-test-dev",
        version_id=3,
        minimum_version_id=2,
        post_load=post_load,
        fields=[
            vmstate_unused(2),
            vmstate_struct(lambda d: d.regs, Regs.vmsd),
            vmstate_timer_ptr(lambda d: d.timer),
            vmstate_validate("b8 is not 0xff", _b8_valid),
        ],
        subsections=[
            VMStateDescription(
                "mig-test-dev/clock",
                version_id=1,
                minimum_version_id=1,
                needed=_clock_needed,
                fields=[vmstate_clock(lambda d: d.clk)],
            ),
            VMStateDescription(
                "mig-test-dev/period",
                version_id=1,
                minimum_version_id=1,
                needed=_period_needed,
                fields=[vmstate_uint32(lambda d: d.period)],
            ),
        ],
    )


def fill(dev: MigTestDev) -> None:
    """Give every migrated field a distinctive value."""
    with dev.regs.borrow_mut() as r:
        r.b8 = u8(0x81)
        r.b16 = u16(0x8234)
        r.b32 = u32(0x83456789)
        r.b64 = u64(0x8456789ABCDEF012)
        r.s8 = -2
        r.s16 = -300
        r.s32 = -70000
        r.s64 = -(1 << 40)
        r.flag = True
        r.fixed = [u32(0x10), u32(0x20), u32(0x30), u32(0x40)]
        r.count = u8(3)
        r.counted[:3] = [u16(7), u16(8), u16(9)]
        r.buf[:] = b"pyqemu"
        r.sub.a = u32(0xA1)
        r.sub.extra = u16(5)
        r.subs[0].a = u32(0xB1)
        r.subs[1].a = u32(0xB2)
        r.nsubs = u32(2)
        r.vsubs[0].a = u32(0xC1)
        r.vsubs[1].a = u32(0xC2)
        r.vsubs[1].extra = u16(6)
        r.late = u32(0x1A7E)
    dev.clk.set_hz(24_000_000)
    dev.clk.set_mul_div(3, 2)
    dev.period = u32(1000)
    dev.timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + 12345)


def snapshot(dev: MigTestDev) -> dict[str, object]:
    """Everything migrated, as plain values to compare."""
    with dev.regs.borrow() as r:
        regs = {
            k: v
            for k, v in vars(r).items()
            if k not in ("sub", "subs", "vsubs", "loads")
        }
        regs["buf"] = bytes(r.buf)
        regs["sub"] = (int(r.sub.a), int(r.sub.extra))
        regs["subs"] = [(int(s.a), int(s.extra)) for s in r.subs]
        regs["vsubs"] = [(int(s.a), int(s.extra)) for s in r.vsubs]
        regs["fixed"] = [int(x) for x in r.fixed]
        regs["counted"] = [int(x) for x in r.counted]
    return {
        "regs": regs,
        "timer": dev.timer.expire_time(),
        "period": int(dev.period),
        "clk": (dev.clk.period(), dev.clk._multiplier, dev.clk._divider),
    }
