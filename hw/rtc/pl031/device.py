"""The ARM PrimeCell real-time clock (PL031), register for register as QEMU models it.

This is QEMU's ``hw/rtc/pl031.c`` (``include/hw/rtc/pl031.h``) in Python,
checked against QEMU 7.2.  The counter is not stored: it is the rtc clock's
seconds (:func:`~qemu_api.rtc.rtc_clock`, which ``-rtc clock=`` chooses) plus
a ``tick_offset`` that starts at the date ``-rtc base=`` gives and moves
when the guest loads a new value into LR.

- One MMIO region of 4 KiB, no ``impl`` sizes: QEMU's ``switch (offset)``
  reaches a register at its own offset only, with any access size, and the
  whole register (a byte store to LR loads the byte's value); a byte access
  at ``DR + 1`` is a bad offset (:attr:`Decode.EXACT
  <qemu_api.register.Decode.EXACT>`).  Every byte of the ID block
  (0xFE0-0xFFF) reads its word's ID byte.
- One sysbus IRQ, RTCINTR: ``RIS & IMSC``.  RIS is set when the counter
  reaches MR, by a timer on the rtc clock armed at each MR or LR write (and
  at once when the two are already equal), and cleared through ICR.
- CR reads as 1 (the RTC is always enabled) and ignores writes.
- An LR write sends the QMP event ``RTC_CHANGE`` with the new time's offset
  from the ``-rtc`` reference, as QEMU does.
- No reset: the counter, MR, LR and the interrupt state survive a system
  reset, as in QEMU (the device has no reset handler).
- Property ``migrate-tick-offset`` (default on): send the subsection
  ``pl031/tick-offset`` with the exact offset (see :attr:`PL031State.vmsd`).

The guest's view through an address space:

>>> from qemu_api.memory import get_address_space_memory
>>> from qemu_api.option import qemu_opts_parse
>>> from qemu_api.rtc import configure_rtc
>>> configure_rtc(qemu_opts_parse("base=2020-01-01T00:00:00,clock=vm"))
>>> rtc = pl031_create(0x0901_0000, None)
>>> mem = get_address_space_memory()
>>> mem.read(0x0901_0000, 4)  # DR: the seconds of 2020-01-01 00:00:00 UTC
1577836800
>>> _ = mem.write(0x0901_0008, 1_000_000_000, 4)  # LR
>>> mem.read(0x0901_0000, 4), mem.read(0x0901_000C, 4)  # DR, CR
(1000000000, 1)
>>> [hex(mem.read(0x0901_0FE0 + 4 * i, 4)) for i in range(4)]
['0x31', '0x10', '0x14', '0x0']
>>> configure_rtc()
"""

from __future__ import annotations

from typing import Final, final

from qapi.qapi_events import qapi_event_send_rtc_change
from qemu_api.bits import i64
from qemu_api.bql import BqlStruct
from qemu_api.irq import InterruptSource, IRQState
from qemu_api.log import LOG_GUEST_ERROR, qemu_log_mask
from qemu_api.memory import MemoryRegion, MemoryRegionOps
from qemu_api.migration.vmstate import VMStateDescription, vmstate_uint32
from qemu_api.qdev import prop_bool
from qemu_api.qom import override
from qemu_api.register import (
    RO,
    RW,
    W1C,
    WI,
    Decode,
    R,
    Register,
    RegisterArray,
    RegisterLog,
    RegisterMap,
)
from qemu_api.rtc import mktimegm, qemu_get_timedate, qemu_timedate_diff, rtc_clock
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    NANOSECONDS_PER_SECOND,
    Timer,
    qemu_clock_get_ns,
    timer_new_ns,
)
from qemu_trace.pl031 import (
    trace_pl031_alarm_raised,
    trace_pl031_irq_state,
    trace_pl031_read,
    trace_pl031_set_alarm,
    trace_pl031_write,
)

__all__ = [
    "PL031_ID",
    "PL031_MMIO_SIZE",
    "TYPE_PL031",
    "PL031Registers",
    "PL031State",
    "pl031_create",
]

TYPE_PL031: Final = "pl031"
"""QOM type name of the PL031 (:class:`PL031State`)."""

PL031_MMIO_SIZE: Final = 0x1000
"""Size of the register block (the ``"pl031"`` memory region)."""

PL031_ID: Final = bytes((0x31, 0x10, 0x14, 0x00, 0x0D, 0xF0, 0x05, 0xB1))
"""PeriphID0-3 and PCellID0-3 (QEMU's ``pl031_id``); Linux's AMBA bus
matches the part number 0x031 and designer 0x41 (ARM) in them."""

PL031_ID_BASE: Final = 0xFE0
"""Offset of PeriphID0; every byte up to 0xFFF reads its word's ID byte."""

_U32: Final = 0xFFFF_FFFF
_NS: Final = i64(NANOSECONDS_PER_SECOND)


def _seconds(ns: int) -> int:
    """``ns / NANOSECONDS_PER_SECOND`` in C's ``int64_t`` arithmetic (truncating)."""
    return int(i64(ns) / _NS)


@final
class PL031Registers(BqlStruct):
    """The state of a PL031: the fields QEMU migrates, and the offset.

    Attributes:
        tick_offset: what the guest's counter adds to the rtc clock's
            seconds (``uint32_t``, wraps).
        mr: RTCMR, the match register.
        lr: RTCLR, the last value loaded.
        cr: RTCCR as migrated: QEMU never stores into it (it stays 0; a read
            returns 1).
        im: RTCIMSC, bit 0.
        is_: RTCRIS, bit 0 (QEMU's ``is``).
        tick_offset_vmstate: the offset from the virtual clock, for the main
            section (set before saving, read after loading).
        tick_offset_migrated: whether the loaded stream had the
            ``pl031/tick-offset`` subsection.

    >>> regs = PL031Registers()
    >>> regs.im = 1
    >>> regs.is_ & regs.im
    0
    """

    tick_offset: int
    mr: int
    lr: int
    cr: int
    im: int
    is_: int
    tick_offset_vmstate: int
    tick_offset_migrated: bool

    def __init__(self) -> None:
        self.tick_offset = 0
        self.mr = 0
        self.lr = 0
        self.cr = 0
        self.im = 0
        self.is_ = 0
        self.tick_offset_vmstate = 0
        self.tick_offset_migrated = False


class PL031State(SysBusDevice, type_name=TYPE_PL031):
    """The ARM PrimeCell RTC, QEMU's ``TYPE_PL031``.

    Create it with :func:`pl031_create` or as any sysbus device.  It needs no
    reset: its counter runs from creation, at the date ``-rtc`` gives.

    Attributes:
        regs: the register state.
        iomem: the 4 KiB register region (sysbus MMIO 0).
        irq: RTCINTR (sysbus IRQ 0).
        timer: the alarm timer, on the rtc clock.
    """

    user_creatable = False

    regs: PL031Registers
    timer: Timer

    migrate_tick_offset = prop_bool(
        "migrate-tick-offset",
        default=True,
        doc="migrate the exact tick offset (off: only what QEMU before 5.0 sent)",
    )

    @override
    def instance_init(self) -> None:
        self.regs = PL031Registers()
        self.iomem = MemoryRegion.io(self, "pl031", PL031_MMIO_SIZE, PL031_OPS, self)
        self.init_mmio(self.iomem)
        self.irq = InterruptSource()
        self.init_irq(self.irq)
        tm = qemu_get_timedate(0)
        now = qemu_clock_get_ns(rtc_clock())
        self.regs.tick_offset = (mktimegm(tm) - _seconds(now)) & _U32
        self.timer = timer_new_ns(rtc_clock(), self.interrupt)

    # -- the counter and the alarm ---------------------------------------------

    def update(self) -> None:
        """Drive RTCINTR from RIS & IMSC (``pl031_update``)."""
        regs = self.regs
        flags = regs.is_ & regs.im
        trace_pl031_irq_state(flags)
        self.irq.set(flags)

    def interrupt(self) -> None:
        """The counter reached MR: set RIS (``pl031_interrupt``)."""
        self.regs.is_ = 1
        trace_pl031_alarm_raised()
        self.update()

    def get_count(self) -> int:
        """RTCDR: the rtc clock's seconds plus the offset (``pl031_get_count``)."""
        now = qemu_clock_get_ns(rtc_clock())
        return (self.regs.tick_offset + _seconds(now)) & _U32

    def set_alarm(self) -> None:
        """Arm the timer for the second the counter reaches MR (``pl031_set_alarm``).

        The distance wraps at 32 bits, as the counter does: an MR behind the
        counter fires after the wrap.  An MR equal to the counter raises the
        interrupt at once.
        """
        ticks = (self.regs.mr - self.get_count()) & _U32
        trace_pl031_set_alarm(ticks)
        if ticks == 0:
            self.timer.delete()
            self.interrupt()
        else:
            now = qemu_clock_get_ns(rtc_clock())
            self.timer.mod_ns(now + ticks * NANOSECONDS_PER_SECOND)

    # -- registers with side effects -------------------------------------------

    def write_lr(self, value: int) -> None:
        """Load the counter (RTCLR): move the offset, send ``RTC_CHANGE``, re-arm."""
        regs = self.regs
        regs.lr = value
        regs.tick_offset = (regs.tick_offset + value - self.get_count()) & _U32
        try:
            tm = qemu_get_timedate(regs.tick_offset)
            offset = qemu_timedate_diff(tm)
        except ValueError as exc:  # a date the C library cannot break down
            qemu_log_mask(LOG_GUEST_ERROR, f"pl031: no RTC_CHANGE event: {exc}\n")
        else:
            qapi_event_send_rtc_change(
                offset=offset, qom_path=self.canonical_path() or ""
            )
        self.set_alarm()

    def masked_interrupts(self) -> int:
        """RTCMIS: RIS & IMSC."""
        regs = self.regs
        return regs.is_ & regs.im

    def read_id(self, index: int) -> int:
        """A byte of the ID block: the ID byte of its word."""
        return PL031_ID[index >> 2]

    def write_id(self, index: int, value: int) -> None:
        """The ID block is not writable: QEMU logs a bad offset."""
        qemu_log_mask(
            LOG_GUEST_ERROR,
            f"pl031_write: Bad offset 0x{PL031_ID_BASE + index:x}\n",
        )

    # -- migration -------------------------------------------------------------

    def pre_save(self) -> None:
        """Express the offset from the virtual clock for the main section.

        QEMU before 5.0 migrated the offset from ``vm_clock``; the main
        section keeps that meaning (``pl031_pre_save``), and the exact offset
        travels in the subsection.
        """
        delta = qemu_clock_get_ns(rtc_clock()) - qemu_clock_get_ns(CLOCK_VIRTUAL)
        regs = self.regs
        regs.tick_offset_vmstate = (regs.tick_offset + _seconds(delta)) & _U32

    def pre_load(self) -> None:
        """Note that no subsection was seen yet (``pl031_pre_load``)."""
        self.regs.tick_offset_migrated = False

    def post_load(self, version_id: int) -> None:
        """Take the offset, from the subsection or else the main section; re-arm.

        Without the subsection the source was an older QEMU that sent the
        offset from the virtual clock; converting it back makes time go
        backwards against the host, which cannot be helped (``pl031_post_load``).
        """
        regs = self.regs
        if not regs.tick_offset_migrated:
            delta = qemu_clock_get_ns(rtc_clock()) - qemu_clock_get_ns(CLOCK_VIRTUAL)
            regs.tick_offset = (regs.tick_offset_vmstate - _seconds(delta)) & _U32
        self.set_alarm()

    def tick_offset_post_load(self, version_id: int) -> None:
        """The subsection arrived: its offset is the one to use."""
        self.regs.tick_offset_migrated = True

    def tick_offset_needed(self) -> bool:
        """Whether ``pl031/tick-offset`` is sent (``migrate-tick-offset``)."""
        return self.migrate_tick_offset

    # -- declarations ----------------------------------------------------------

    registers = RegisterMap["PL031State"](
        "pl031",
        PL031_MMIO_SIZE,
        [
            Register("DR", 0x00, RO, read=get_count, doc="RTCDR: the counter"),
            Register(
                "MR",
                0x04,
                RW,
                field=lambda s: s.regs.mr,
                reset=None,
                post_write=set_alarm,
                doc="RTCMR: the match register; a write re-arms the alarm",
            ),
            Register(
                "LR",
                0x08,
                RW,
                field=lambda s: s.regs.lr,
                write=write_lr,
                reset=None,
                doc="RTCLR: a write loads the counter",
            ),
            Register(
                "CR",
                0x0C,
                R | WI,
                read=lambda s: 1,
                doc="RTCCR: always enabled; writes are ignored",
            ),
            Register(
                "IMSC",
                0x10,
                RW,
                field=lambda s: s.regs.im,
                pre_write=lambda s, value: value & 1,
                reset=None,
                post_write=update,
                doc="RTCIMSC: the interrupt mask, bit 0",
            ),
            Register(
                "RIS",
                0x14,
                RO,
                field=lambda s: s.regs.is_,
                reset=None,
                doc="RTCRIS: the raw interrupt, bit 0",
            ),
            Register("MIS", 0x18, RO, read=masked_interrupts, doc="RTCMIS"),
            Register(
                "ICR",
                0x1C,
                W1C,
                field=lambda s: s.regs.is_,
                reset=None,
                post_write=update,
                doc="RTCICR: write 1 to clear the interrupt (write-only)",
            ),
            RegisterArray(
                "ID",
                PL031_ID_BASE,
                0x20,
                RW,
                width=8,
                read=read_id,
                write=write_id,
                trace_name="ID",
                doc="PeriphID0-3 and PCellID0-3, any byte of each word",
            ),
        ],
        decode=Decode.EXACT,
        log=RegisterLog(
            bad_read="pl031_read: Bad offset 0x{addr:x}\n",
            bad_write="pl031_write: Bad offset 0x{addr:x}\n",
            wo_read="pl031: read of write-only register at offset 0x{addr:x}\n",
            ro_write="pl031: write to read-only register at offset 0x{addr:x}\n",
        ),
        trace_read=lambda addr, value, name: trace_pl031_read(addr, value),
        trace_write=lambda addr, value, name: trace_pl031_write(addr, value),
    )
    """QEMU's ``pl031_read``/``pl031_write`` as a table: the PL031's registers."""

    vmsd = VMStateDescription["PL031State"](
        "pl031",
        version_id=1,
        minimum_version_id=1,
        pre_save=pre_save,
        pre_load=pre_load,
        post_load=post_load,
        fields=[
            vmstate_uint32(lambda s: s.regs.tick_offset_vmstate),
            vmstate_uint32(lambda s: s.regs.mr),
            vmstate_uint32(lambda s: s.regs.lr),
            vmstate_uint32(lambda s: s.regs.cr),
            vmstate_uint32(lambda s: s.regs.im),
            vmstate_uint32(lambda s: s.regs.is_, name="is"),
        ],
        subsections=[
            VMStateDescription(
                "pl031/tick-offset",
                version_id=1,
                minimum_version_id=1,
                needed=tick_offset_needed,
                post_load=tick_offset_post_load,
                fields=[vmstate_uint32(lambda s: s.regs.tick_offset)],
            ),
        ],
    )
    """QEMU's ``vmstate_pl031``, byte for byte: the section ``pl031``, version 1."""


PL031_OPS: Final = MemoryRegionOps[PL031State](
    read=PL031State.registers.read,
    write=PL031State.registers.write,
)
"""QEMU's ``pl031_ops``: native endian, every size, no ``impl`` sizes."""


def pl031_create(addr: int, irq: IRQState | None) -> PL031State:
    """Create, realize and map a PL031 with RTCINTR connected.

    Args:
        addr: where to map the registers in system memory.
        irq: the input RTCINTR drives, or None.

    Returns:
        The realized device.
    """
    dev = PL031State()
    sysbus_realize(dev)
    dev.mmio_map(0, addr)
    dev.connect_irq(0, irq)
    return dev
