"""The High Precision Event Timer, register for register as QEMU models it.

This is QEMU's ``hw/timer/hpet.c`` (``include/hw/timer/hpet.h``) in Python,
as of QEMU 10.x, quirks included.  The global state is a
:class:`~qemu_api.bql.BqlStruct` (:class:`HPETRegisters`), each comparator an
:class:`HPETTimer` with its own struct and its virtual-clock timer, the
registers are declared once in :attr:`HPETState.registers` (a
:class:`~qemu_api.register.RegisterMap` with 64-bit registers that 4-byte
accesses read and write in 32-bit halves), and the migration state is
described from typed references to the same fields (:attr:`HPETState.vmsd`,
QEMU's ``vmstate_hpet`` byte for byte).

- One MMIO region of 0x400 bytes taking 4- and 8-byte aligned accesses.
- A 64-bit main counter at 100 MHz (10 ns per tick): it runs while
  GEN_CONF.ENABLE is set, as ``(virtual clock + hpet_offset) / 10``, and
  holds its value (``hpet_counter``) while halted; it is writable, but a
  write while it runs has no visible effect.
- 3 to 24 timers (property ``timers``), each one-shot or periodic, 64- or
  32-bit, edge or level, routed to one of the 32 IRQ outputs
  (``Tn_INT_ROUTE``), or to an FSB message (a 32-bit store to guest memory)
  when FSB_ENABLE is set.  Periodic timers keep QEMU's accumulator rules:
  a comparator write sets the period, and also the comparator with SETVAL.
- Legacy replacement routing (GEN_CONF.LEGACY_RT): timer 0 drives output 0
  (the PIT's line, I/O APIC pin 2) and timer 1 output 8 (the RTC's); the
  GPIO inputs 0 and 1 (the PIT's and RTC's interrupts) pass through to
  those outputs otherwise, and the GPIO output 0 (``pit_enabled``) tells
  the PIT whether to run.
- QEMU's quirks: the timer index check is ``> num_timers`` (timer
  ``num_timers`` is reachable though never reset nor migrated), ISR bits are
  set only for level-triggered timers, even disabled ones, and reset leaves
  the ISR and the FSB routes alone.

The guest's view through an address space:

>>> from qemu_api.memory import get_address_space_memory
>>> from qemu_api.qdev import device_cold_reset
>>> from qemu_api.timer import clock_step
>>> hpet = hpet_create(0xFED0_0000, intcap=0x4)
>>> device_cold_reset(hpet)
>>> mem = get_address_space_memory()
>>> hex(mem.read(0xFED0_0000, 8)), hex(mem.read(0xFED0_0104, 4))
('0x9896808086a201', '0x4')
>>> _ = mem.write(0xFED0_0010, 1, 4)  # ENABLE
>>> _ = clock_step(1000)
>>> mem.read(0xFED0_00F0, 8)  # 1000 ns: 100 ticks
100
"""

from __future__ import annotations

import functools
from typing import Final, final

from hw.timer.hpet.registers import (
    HPET_CFG_ENABLE,
    HPET_CFG_LEGACY,
    HPET_CFG_WRITE_MASK,
    HPET_CLK_PERIOD,
    HPET_LEGACY_PIT_INT,
    HPET_LEN,
    HPET_MAX_TIMERS,
    HPET_MIN_TIMERS,
    HPET_NUM_IRQ_ROUTES,
    HPET_TN_32BIT,
    HPET_TN_CFG_WRITE_MASK,
    HPET_TN_ENABLE,
    HPET_TN_FSB_CAP,
    HPET_TN_FSB_ENABLE,
    HPET_TN_INT_ROUTE_MASK,
    HPET_TN_INT_ROUTE_SHIFT,
    HPET_TN_PERIODIC,
    HPET_TN_PERIODIC_CAP,
    HPET_TN_SETVAL,
    HPET_TN_SIZE,
    HPET_TN_SIZE_CAP,
    HPET_TN_TYPE_LEVEL,
    RTC_ISA_IRQ,
    U32,
    U64,
    hpet_capability,
)
from qemu_api.bql import BqlStruct
from qemu_api.error import Error
from qemu_api.irq import InterruptSource
from qemu_api.memory import (
    GuestAddress,
    GuestMemory,
    MemoryRegion,
    MemoryRegionOps,
    OpsImpl,
    OpsValid,
    get_address_space_memory,
)
from qemu_api.migration.vmstate import (
    VMStateDescription,
    vmstate_struct_varray,
    vmstate_timer_ptr,
    vmstate_uint8,
    vmstate_uint64,
    vmstate_validate,
)
from qemu_api.qdev import ResetType, prop_bool, prop_u8, prop_u32
from qemu_api.qom import override
from qemu_api.register import RW, WI, R, Register, RegisterArray, RegisterMap
from qemu_api.sysbus import SysBusDevice, sysbus_realize
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    NANOSECONDS_PER_SECOND,
    SCALE_NS,
    Timer,
    qemu_clock_get_ns,
)
from qemu_trace.hpet import (
    trace_hpet_ram_read,
    trace_hpet_ram_read_invalid,
    trace_hpet_ram_read_reading_counter,
    trace_hpet_ram_write,
    trace_hpet_ram_write_counter_write_while_enabled,
    trace_hpet_ram_write_invalid,
    trace_hpet_ram_write_invalid_tn_cmp,
    trace_hpet_ram_write_timer_id,
    trace_hpet_ram_write_tn_cfg,
    trace_hpet_ram_write_tn_cmp,
    trace_hpet_timer_id_out_of_range,
)

__all__ = [
    "TYPE_HPET",
    "HPETRegisters",
    "HPETState",
    "HPETTimer",
    "HPETTimerRegisters",
    "hpet_calculate_cmp64",
    "hpet_create",
    "hpet_next_wrap",
]

TYPE_HPET: Final = "hpet"
"""QOM type name of the HPET (:class:`HPETState`)."""

_SIGN64: Final = 1 << 63
_TWO64: Final = 1 << 64
_HIGH: Final = U64 ^ U32
_MIN_PERIOD_NS: Final = 1000
"""QEMU clamps a periodic timer's expiries to at least 1 µs apart."""


def _signed64(value: int) -> int:
    return value - _TWO64 if value & _SIGN64 else value


def hpet_calculate_cmp64(config: int, cur_tick: int, target: int) -> int:
    """The next counter value that matches ``target`` (``hpet_calculate_cmp64``).

    In 32-bit mode only the low 32 bits of the counter are compared: the
    result is the first counter value at or after ``cur_tick`` whose low half
    is ``target``'s.  In 64-bit mode it is ``target``.

    >>> hex(hpet_calculate_cmp64(HPET_TN_32BIT, 0x1_0000_0010, 0x8))
    '0x200000008'
    >>> hex(hpet_calculate_cmp64(0, 0x1_0000_0010, 0x8))
    '0x8'
    """
    if config & HPET_TN_32BIT:
        result = (cur_tick & _HIGH) | (target & U32)
        if result < cur_tick:
            result = (result + (1 << 32)) & U64
        return result
    return target


def hpet_next_wrap(cur_tick: int) -> int:
    """The counter value of the next wrap of its low 32 bits (``hpet_next_wrap``).

    >>> hex(hpet_next_wrap(0x1_2345_6789))
    '0x200000000'
    """
    return ((cur_tick | U32) + 1) & U64


@final
class HPETRegisters(BqlStruct):
    """The HPET's global state: what QEMU's ``HPETState`` migrates.

    Attributes:
        config: GEN_CONF (ENABLE, LEGACY_RT).
        isr: GINTR_STA, one bit per level-triggered timer that fired.
        hpet_counter: the main counter while halted (and at migration).
        hpet_offset: ns to add to the virtual clock for the running
            counter's time (a 64-bit unsigned value, wrapping).
        rtc_irq_level: the level of the RTC's interrupt input.
        num_timers_save: the timer count in the migration stream.
    """

    config: int
    isr: int
    hpet_counter: int
    hpet_offset: int
    rtc_irq_level: int
    num_timers_save: int

    def __init__(self) -> None:
        self.config = 0
        self.isr = 0
        self.hpet_counter = 0
        self.hpet_offset = 0
        self.rtc_irq_level = 0
        self.num_timers_save = 0


@final
class HPETTimerRegisters(BqlStruct):
    """One comparator's state (QEMU's ``HPETTimer`` without its QEMU timer).

    Attributes:
        tn: the timer's number.
        config: Tn_CONF and, in the high half, Tn_INT_ROUTE_CAP.
        cmp: Tn_COMPARATOR as the guest reads it.
        fsb: Tn_FSB_ROUTE: message data (low half) and address (high half).
        period: the period of a periodic timer (the last comparator write).
        wrap_flag: 1 while a 32-bit one-shot timer waits for the counter's
            wrap before its comparator match.
        cmp64: the comparator extended to the counter's width (not migrated).
        last: the expiry last armed, in ns (not migrated).
    """

    tn: int
    config: int
    cmp: int
    fsb: int
    period: int
    wrap_flag: int
    cmp64: int
    last: int

    def __init__(self, tn: int) -> None:
        self.tn = tn
        self.config = 0
        self.cmp = 0
        self.fsb = 0
        self.period = 0
        self.wrap_flag = 0
        self.cmp64 = 0
        self.last = 0


@final
class HPETTimer:
    """One of the HPET's 24 comparators: its registers and its QEMU timer.

    Attributes:
        regs: the comparator's state.
        qemu_timer: the virtual-clock timer that fires at the next expiry.
    """

    regs: HPETTimerRegisters
    qemu_timer: Timer

    def __init__(self, regs: HPETTimerRegisters, qemu_timer: Timer) -> None:
        self.regs = regs
        self.qemu_timer = qemu_timer

    vmsd = VMStateDescription["HPETTimer"](
        "hpet_timer",
        version_id=1,
        minimum_version_id=1,
        fields=[
            vmstate_uint8(lambda t: t.regs.tn),
            vmstate_uint64(lambda t: t.regs.config),
            vmstate_uint64(lambda t: t.regs.cmp),
            vmstate_uint64(lambda t: t.regs.fsb),
            vmstate_uint64(lambda t: t.regs.period),
            vmstate_uint8(lambda t: t.regs.wrap_flag),
            vmstate_timer_ptr(lambda t: t.qemu_timer),
        ],
    )
    """QEMU's ``vmstate_hpet_timer``: 42 bytes per timer."""


class HPETState(SysBusDevice, type_name=TYPE_HPET):
    """The HPET, QEMU's ``TYPE_HPET``.

    Create it with :func:`hpet_create` or as any sysbus device (set
    ``hpet-intcap`` first: a board's job); reset it before use.

    Attributes:
        regs: the global state.
        timers: the 24 comparators (only the first ``timers`` are in use).
        iomem: the register region (sysbus MMIO 0).
        irqs: the 32 IRQ outputs (sysbus IRQs 0-31).
        pit_enabled: GPIO output 0, low while legacy routing replaces the PIT.
        capability: the capabilities and ID register (set at realize).
    """

    user_creatable = False

    regs: HPETRegisters
    timers: list[HPETTimer]

    num_timers = prop_u8(
        "timers", default=HPET_MIN_TIMERS, doc="number of timers (3 to 24)"
    )
    msi = prop_bool("msi", doc="FSB (MSI) interrupt delivery capability")
    intcap = prop_u32(
        "hpet-intcap", doc="IRQ outputs the timers may route to (a bit mask)"
    )
    hpet_offset_saved = prop_bool(
        "hpet-offset-saved", default=True, doc="migrate the counter's offset"
    )

    @override
    def instance_init(self) -> None:
        self.regs = HPETRegisters()
        self.capability = 0
        self.timers = [
            HPETTimer(
                HPETTimerRegisters(i),
                Timer(
                    CLOCK_VIRTUAL,
                    SCALE_NS,
                    functools.partial(self.timer_expired, i),
                    owner=self,
                ),
            )
            for i in range(HPET_MAX_TIMERS)
        ]
        self.iomem = MemoryRegion.io(self, "hpet", HPET_LEN, HPET_OPS, self)
        self.init_mmio(self.iomem)
        self.irqs = tuple(InterruptSource() for _ in range(HPET_NUM_IRQ_ROUTES))
        for irq in self.irqs:
            self.init_irq(irq)
        self.pit_enabled = InterruptSource()
        self._fsb = GuestMemory(get_address_space_memory())

    @override
    def realize(self) -> None:
        super().realize()
        n = self.num_timers
        if not HPET_MIN_TIMERS <= n <= HPET_MAX_TIMERS:
            raise Error(
                f"hpet.num_timers must be between {HPET_MIN_TIMERS} and "
                f"{HPET_MAX_TIMERS}",
                hint=f"The 'timers' property is {n}; set it to a value in that "
                "range (-global hpet.timers=N).\n",
            )
        if not self.intcap:
            raise Error(
                "hpet.hpet-intcap not initialized",
                hint="Set 'hpet-intcap' to the mask of IRQ outputs the board "
                "wires (the pc board sets 0x4).\n",
            )
        self.capability = hpet_capability(n)
        self.init_gpio_in(self.handle_legacy_irq, 2)
        self.init_gpio_out([self.pit_enabled])

    @override
    def reset_hold(self, reset_type: ResetType) -> None:
        """QEMU's ``hpet_reset`` (a legacy reset): the ISR and FSB routes stay."""
        super().reset_hold(reset_type)
        tn_config = HPET_TN_PERIODIC_CAP | HPET_TN_SIZE_CAP | (self.intcap << 32)
        if self.msi:
            tn_config |= HPET_TN_FSB_CAP
        for i in range(self.num_timers):
            self.del_timer(i)
            with self.timers[i].regs.borrow_mut() as t:
                t.cmp = U64
                t.config = tn_config
                t.period = 0
                t.wrap_flag = 0
        self.pit_enabled.set(1)
        with self.regs.borrow_mut() as regs:
            regs.hpet_counter = 0
            regs.hpet_offset = 0
            regs.config = 0
            regs.rtc_irq_level = 0

    # -- time --------------------------------------------------------------------

    def get_ticks(self) -> int:
        """The running main counter (``hpet_get_ticks``)."""
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        return ((now + self.regs.hpet_offset) & U64) // HPET_CLK_PERIOD

    def get_ns(self, tick: int) -> int:
        """The virtual-clock time at which the counter reads ``tick``."""
        return (tick * HPET_CLK_PERIOD - self.regs.hpet_offset) & U64

    def enabled(self) -> bool:
        """GEN_CONF.ENABLE: the counter runs and timers interrupt."""
        return bool(self.regs.config & HPET_CFG_ENABLE)

    # -- interrupts ----------------------------------------------------------------

    def update_irq(self, tn: int, set_: bool) -> None:
        """Set or clear timer ``tn``'s interrupt (``update_irq``).

        The ISR bit follows ``set_`` for a level-triggered timer (and is
        cleared for an edge one) even while the timer or the HPET is
        disabled; the line or FSB message needs both enabled.
        """
        with self.timers[tn].regs.borrow() as t:
            config = t.config
            fsb = t.fsb
        mask = 1 << tn
        with self.regs.borrow_mut() as regs:
            global_config = regs.config
            if tn <= 1 and global_config & HPET_CFG_LEGACY:
                route = 0 if tn == 0 else RTC_ISA_IRQ
            else:
                route = (config & HPET_TN_INT_ROUTE_MASK) >> HPET_TN_INT_ROUTE_SHIFT
            if set_ and config & HPET_TN_TYPE_LEVEL:
                regs.isr |= mask
            else:
                regs.isr &= ~mask
        if set_ and config & HPET_TN_ENABLE and global_config & HPET_CFG_ENABLE:
            if config & HPET_TN_FSB_ENABLE:
                self._fsb.write_u32_le(GuestAddress(fsb >> 32), fsb & U32)
            elif config & HPET_TN_TYPE_LEVEL:
                self.irqs[route].raise_()
            else:
                self.irqs[route].pulse()
        elif not config & HPET_TN_FSB_ENABLE:
            self.irqs[route].lower()

    def handle_legacy_irq(self, n: int, level: int) -> None:
        """The PIT's (0) or RTC's (1) interrupt, passed on outside legacy mode."""
        legacy = self.regs.config & HPET_CFG_LEGACY
        if n == HPET_LEGACY_PIT_INT:
            if not legacy:
                self.irqs[0].set(level)
        else:
            self.regs.rtc_irq_level = 1 if level else 0
            if not legacy:
                self.irqs[RTC_ISA_IRQ].set(level)

    # -- timers --------------------------------------------------------------------

    def arm(self, tn: int, tick: int) -> None:
        """Arm timer ``tn`` for counter value ``tick`` (``hpet_arm``).

        Periodic expiries are at least 1 µs apart.  An expiry past 2^63 ns
        is negative for QEMU's ``timer_mod`` and fires at once.
        """
        timer = self.timers[tn]
        ns = self.get_ns(tick)
        with timer.regs.borrow_mut() as t:
            if t.config & HPET_TN_PERIODIC and (ns - t.last) & U64 < _MIN_PERIOD_NS:
                ns = (t.last + _MIN_PERIOD_NS) & U64
            t.last = ns
        timer.qemu_timer.mod_ns(_signed64(ns))

    def set_timer(self, tn: int) -> None:
        """Arm timer ``tn`` from its comparator (``hpet_set_timer``).

        A 32-bit one-shot timer whose match is past the counter's next
        32-bit wrap fires at the wrap first, as the specification asks.
        """
        cur = self.get_ticks()
        with self.timers[tn].regs.borrow_mut() as t:
            t.wrap_flag = 0
            t.cmp64 = hpet_calculate_cmp64(t.config, cur, t.cmp)
            wrap = hpet_next_wrap(cur)
            if (
                t.config & HPET_TN_32BIT
                and not t.config & HPET_TN_PERIODIC
                and t.cmp64 > wrap
            ):
                t.wrap_flag = 1
                tick = wrap
            else:
                tick = t.cmp64
        self.arm(tn, tick)

    def del_timer(self, tn: int) -> None:
        """Disarm timer ``tn``; a set ISR bit stays but its line is re-driven."""
        self.timers[tn].qemu_timer.delete()
        if self.regs.isr & (1 << tn):
            self.update_irq(tn, True)

    def timer_expired(self, tn: int) -> None:
        """Timer ``tn``'s expiry (``hpet_timer``): re-arm, then interrupt."""
        cur = self.get_ticks()
        tick = -1
        with self.timers[tn].regs.borrow_mut() as t:
            period = t.period
            if t.config & HPET_TN_PERIODIC and period != 0:
                behind = (t.cmp64 - cur) & U64
                if behind & _SIGN64:
                    # QEMU adds the period until cmp64 is not before cur.
                    if period < _SIGN64:
                        steps = -(-(_TWO64 - behind) // period)
                    else:
                        steps = (behind - _SIGN64) // (_TWO64 - period) + 1
                    t.cmp64 = (t.cmp64 + steps * period) & U64
                t.cmp = t.cmp64 & U32 if t.config & HPET_TN_32BIT else t.cmp64
                tick = t.cmp64
            elif t.wrap_flag:
                t.wrap_flag = 0
                tick = t.cmp64
        if tick >= 0:
            self.arm(tn, tick)
        self.update_irq(tn, True)

    # -- registers -----------------------------------------------------------------

    def read_capability(self) -> int:
        """GCAP_ID: the capabilities and, in the high half, CLK_PERIOD."""
        return self.capability

    def read_config(self) -> int:
        """GEN_CONF."""
        return self.regs.config

    def write_config(self, value: int, mask: int) -> None:
        """A GEN_CONF write: start or halt the counter, enter or leave legacy mode."""
        old = self.regs.config
        new = (old & ~mask) | value
        new = (new & HPET_CFG_WRITE_MASK) | (old & ~HPET_CFG_WRITE_MASK)
        self.regs.config = new
        if not old & HPET_CFG_ENABLE and new & HPET_CFG_ENABLE:
            # Start the counter where it was halted.
            now = qemu_clock_get_ns(CLOCK_VIRTUAL)
            with self.regs.borrow_mut() as regs:
                regs.hpet_offset = (regs.hpet_counter * HPET_CLK_PERIOD - now) & U64
            for i in range(self.num_timers):
                config = self.timers[i].regs.config
                if config & HPET_TN_ENABLE and self.regs.isr & (1 << i):
                    self.update_irq(i, True)
                self.set_timer(i)
        elif old & HPET_CFG_ENABLE and not new & HPET_CFG_ENABLE:
            self.regs.hpet_counter = self.get_ticks()
            for i in range(self.num_timers):
                self.del_timer(i)
        if not old & HPET_CFG_LEGACY and new & HPET_CFG_LEGACY:
            self.pit_enabled.set(0)
            self.irqs[0].lower()
            self.irqs[RTC_ISA_IRQ].lower()
        elif old & HPET_CFG_LEGACY and not new & HPET_CFG_LEGACY:
            self.irqs[0].lower()
            self.pit_enabled.set(1)
            self.irqs[RTC_ISA_IRQ].set(self.regs.rtc_irq_level)

    def read_isr(self) -> int:
        """GINTR_STA."""
        return self.regs.isr

    def write_isr(self, value: int, mask: int) -> None:
        """A GINTR_STA write: each 1 clears a timer's status and lowers its line."""
        cleared = value & self.regs.isr
        for i in range(self.num_timers):
            if cleared & (1 << i):
                self.update_irq(i, False)

    def read_counter(self) -> int:
        """MAIN_CNT: the running counter, or the halted value."""
        return self.get_ticks() if self.enabled() else self.regs.hpet_counter

    def write_counter(self, value: int, mask: int) -> None:
        """A MAIN_CNT write; while the counter runs it has no visible effect."""
        if self.enabled():
            trace_hpet_ram_write_counter_write_while_enabled()
        with self.regs.borrow_mut() as regs:
            regs.hpet_counter = (regs.hpet_counter & ~mask) | value

    def read_invalid(self) -> int:
        """A reserved offset: 0, traced."""
        trace_hpet_ram_read_invalid()
        return 0

    def write_invalid(self, value: int, mask: int) -> None:
        """A reserved offset: ignored, traced."""
        trace_hpet_ram_write_invalid()

    def _timer_in_range(self, tn: int) -> bool:
        # QEMU's check is "timer_id > num_timers": timer num_timers answers.
        if tn > self.num_timers:
            trace_hpet_timer_id_out_of_range(tn)
            return False
        return True

    def _timer_write(self, tn: int) -> bool:
        trace_hpet_ram_write_timer_id(tn)
        return self._timer_in_range(tn)

    def read_tn_config(self, tn: int) -> int:
        """Tn_CONF and Tn_INT_ROUTE_CAP."""
        if not self._timer_in_range(tn):
            return 0
        return self.timers[tn].regs.config

    def write_tn_config(self, tn: int, value: int, mask: int) -> None:
        """A Tn_CONF write: QEMU re-arms the timer on any write while enabled."""
        if not self._timer_write(tn):
            return
        trace_hpet_ram_write_tn_cfg(4 if mask == _HIGH else 0)
        regs = self.timers[tn].regs
        old = regs.config
        new = (old & ~mask) | value
        new = (new & HPET_TN_CFG_WRITE_MASK) | (old & ~HPET_TN_CFG_WRITE_MASK)
        if old & HPET_TN_TYPE_LEVEL and not new & HPET_TN_TYPE_LEVEL:
            # Before the new config: an FSB timer would not lower its line.
            self.update_irq(tn, False)
        regs.config = new
        activated = not old & HPET_TN_ENABLE and new & HPET_TN_ENABLE
        if activated and self.regs.isr & (1 << tn):
            self.update_irq(tn, True)
        if new & HPET_TN_32BIT:
            with regs.borrow_mut() as t:
                t.cmp &= U32
                t.period &= U32
        if self.enabled():
            self.set_timer(tn)

    def read_tn_cmp(self, tn: int) -> int:
        """Tn_COMPARATOR."""
        if not self._timer_in_range(tn):
            return 0
        return self.timers[tn].regs.cmp

    def write_tn_cmp(self, tn: int, value: int, mask: int) -> None:
        """A Tn_COMPARATOR write: the comparator, the period or both.

        In 32-bit mode a write to the high half is ignored and a write to
        the low half clears the high half.  A periodic timer takes the value
        as its period, and as its comparator only with SETVAL, which the
        write clears.
        """
        if not self._timer_write(tn):
            return
        regs = self.timers[tn].regs
        high = mask == _HIGH
        if regs.config & HPET_TN_32BIT:
            if high:
                trace_hpet_ram_write_invalid_tn_cmp()
                return
            value &= U32
            mask = U64
        trace_hpet_ram_write_tn_cmp(4 if high else 0)
        with regs.borrow_mut() as t:
            periodic = t.config & HPET_TN_PERIODIC
            if not periodic or t.config & HPET_TN_SETVAL:
                t.cmp = (t.cmp & ~mask) | value
            if periodic:
                t.period = (t.period & ~mask) | value
            t.config &= ~HPET_TN_SETVAL
        if self.enabled():
            self.set_timer(tn)

    def read_tn_fsb(self, tn: int) -> int:
        """Tn_FSB_INT_ROUTE."""
        if not self._timer_in_range(tn):
            return 0
        return self.timers[tn].regs.fsb

    def write_tn_fsb(self, tn: int, value: int, mask: int) -> None:
        """A Tn_FSB_INT_ROUTE write: data in the low half, address in the high."""
        if not self._timer_write(tn):
            return
        with self.timers[tn].regs.borrow_mut() as t:
            t.fsb = (t.fsb & ~mask) | value

    def read_tn_invalid(self, tn: int) -> int:
        """The reserved quarter of a timer's registers."""
        if not self._timer_in_range(tn):
            return 0
        return self.read_invalid()

    def write_tn_invalid(self, tn: int, value: int, mask: int) -> None:
        """The reserved quarter of a timer's registers: ignored."""
        if self._timer_write(tn):
            trace_hpet_ram_write_invalid()

    @staticmethod
    def trace_read(offset: int, value: int, regname: str) -> None:
        """``hpet_ram_read`` (and the counter's trace) for every read."""
        trace_hpet_ram_read(offset)
        if regname == "COUNTER":
            trace_hpet_ram_read_reading_counter(offset & 4, value)

    @staticmethod
    def trace_write(offset: int, value: int, regname: str) -> None:
        """``hpet_ram_write`` for every write."""
        trace_hpet_ram_write(offset, value)

    # -- migration -----------------------------------------------------------------

    def pre_save(self) -> None:
        """Store the running counter and the timer count (``hpet_pre_save``)."""
        if self.enabled():
            self.regs.hpet_counter = self.get_ticks()
        self.regs.num_timers_save = self.num_timers

    def num_timers_match(self, version_id: int) -> bool:
        """The stream's timer count is this HPET's ``timers``."""
        return self.regs.num_timers_save == self.num_timers

    def post_load(self, version_id: int) -> None:
        """Rebuild the hidden timer state (``hpet_post_load``).

        The timers come back armed through their migrated expiries; the
        counter continues from the migrated offset (or, without the
        ``hpet/offset`` subsection, from the migrated counter value).
        """
        now = qemu_clock_get_ns(CLOCK_VIRTUAL)
        counter = self.regs.hpet_counter
        for i in range(self.num_timers):
            with self.timers[i].regs.borrow_mut() as t:
                t.cmp64 = hpet_calculate_cmp64(t.config, counter, t.cmp)
                t.last = (now - NANOSECONDS_PER_SECOND) & U64
        if not self.hpet_offset_saved:
            self.regs.hpet_offset = (counter * HPET_CLK_PERIOD - now) & U64

    def rtc_irq_level_needed(self) -> bool:
        """The ``hpet/rtc_irq_level`` subsection: the RTC line is high."""
        return self.regs.rtc_irq_level != 0

    def offset_needed(self) -> bool:
        """The ``hpet/offset`` subsection: the counter runs and its offset is kept."""
        return self.enabled() and self.hpet_offset_saved

    # -- declarations ----------------------------------------------------------------

    registers = RegisterMap["HPETState"](
        "hpet",
        HPET_LEN,
        [
            Register(
                "CAP",
                0x000,
                R | WI,
                width=64,
                read=read_capability,
                doc="GCAP_ID: capabilities and ID; CLK_PERIOD in the high half",
            ),
            Register(
                "RSVD008",
                0x008,
                RW,
                width=64,
                read=read_invalid,
                write_masked=write_invalid,
                doc="reserved",
            ),
            Register(
                "CFG",
                0x010,
                RW,
                width=64,
                read=read_config,
                write_masked=write_config,
                doc="GEN_CONF: ENABLE_CNF, LEG_RT_CNF",
            ),
            Register(
                "RSVD018",
                0x018,
                RW,
                width=64,
                read=read_invalid,
                write_masked=write_invalid,
                doc="reserved",
            ),
            Register(
                "STATUS",
                0x020,
                RW,
                width=64,
                read=read_isr,
                write_masked=write_isr,
                doc="GINTR_STA: level-triggered interrupt status, write 1 to clear",
            ),
            RegisterArray(
                "RSVD",
                0x028,
                25,
                RW,
                width=64,
                read=lambda s, n: s.read_invalid(),
                write_masked=lambda s, n, value, mask: s.write_invalid(value, mask),
                doc="reserved",
            ),
            Register(
                "COUNTER",
                0x0F0,
                RW,
                width=64,
                read=read_counter,
                write_masked=write_counter,
                doc="MAIN_CNT: the main counter",
            ),
            Register(
                "RSVD0F8",
                0x0F8,
                RW,
                width=64,
                read=read_invalid,
                write_masked=write_invalid,
                doc="reserved",
            ),
            RegisterArray(
                "TN_CFG",
                0x100,
                HPET_MAX_TIMERS,
                RW,
                width=64,
                stride=HPET_TN_SIZE,
                read=read_tn_config,
                write_masked=write_tn_config,
                doc="Tn_CONF and Tn_INT_ROUTE_CAP",
            ),
            RegisterArray(
                "TN_CMP",
                0x108,
                HPET_MAX_TIMERS,
                RW,
                width=64,
                stride=HPET_TN_SIZE,
                read=read_tn_cmp,
                write_masked=write_tn_cmp,
                doc="Tn_COMPARATOR",
            ),
            RegisterArray(
                "TN_FSB",
                0x110,
                HPET_MAX_TIMERS,
                RW,
                width=64,
                stride=HPET_TN_SIZE,
                read=read_tn_fsb,
                write_masked=write_tn_fsb,
                doc="Tn_FSB_INT_ROUTE",
            ),
            RegisterArray(
                "TN_RSVD",
                0x118,
                HPET_MAX_TIMERS,
                RW,
                width=64,
                stride=HPET_TN_SIZE,
                read=read_tn_invalid,
                write_masked=write_tn_invalid,
                doc="reserved",
            ),
        ],
        trace_read=trace_read,
        trace_write=trace_write,
    )
    """QEMU's ``hpet_ram_read``/``hpet_ram_write`` as a table."""

    vmsd = VMStateDescription["HPETState"](
        "hpet",
        version_id=2,
        minimum_version_id=2,
        pre_save=pre_save,
        post_load=post_load,
        fields=[
            vmstate_uint64(lambda s: s.regs.config),
            vmstate_uint64(lambda s: s.regs.isr),
            vmstate_uint64(lambda s: s.regs.hpet_counter),
            vmstate_uint8(lambda s: s.regs.num_timers_save),
            vmstate_validate("num_timers must match", num_timers_match),
            vmstate_struct_varray(
                lambda s: s.timers,
                HPETTimer.vmsd,
                lambda s: s.regs.num_timers_save,
                name="timer",
            ),
        ],
        subsections=[
            VMStateDescription(
                "hpet/rtc_irq_level",
                version_id=1,
                minimum_version_id=1,
                needed=rtc_irq_level_needed,
                fields=[vmstate_uint8(lambda s: s.regs.rtc_irq_level)],
            ),
            VMStateDescription(
                "hpet/offset",
                version_id=1,
                minimum_version_id=1,
                needed=offset_needed,
                fields=[vmstate_uint64(lambda s: s.regs.hpet_offset)],
            ),
        ],
    )
    """QEMU's ``vmstate_hpet``, byte for byte: the section ``hpet``, version 2."""


HPET_OPS: Final = MemoryRegionOps[HPETState](
    read=HPETState.registers.read,
    write=HPETState.registers.write,
    valid=OpsValid(min_access_size=4, max_access_size=8),
    impl=OpsImpl(min_access_size=4, max_access_size=8),
)
"""QEMU's ``hpet_ram_ops``: aligned 4- and 8-byte accesses, native endian."""


def hpet_create(addr: int, *, intcap: int, num_timers: int = 3) -> HPETState:
    """Create, realize and map an HPET at ``addr``, its outputs unconnected.

    Args:
        addr: where to map the registers in system memory.
        intcap: the ``hpet-intcap`` mask of routable IRQ outputs.
        num_timers: the ``timers`` property.

    Returns:
        The realized device; it is not reset yet.
    """
    dev = HPETState()
    dev.intcap = intcap
    dev.num_timers = num_timers
    sysbus_realize(dev)
    dev.mmio_map(0, addr)
    return dev
