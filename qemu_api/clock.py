"""Clock trees: periods, propagation and tick arithmetic (``hw/clock.h``).

This module mirrors QEMU's ``include/hw/clock.h`` and ``hw/core/clock.c``.
A :class:`Clock` is a QOM object (``TYPE_CLOCK``) that stores its period in
units of 2^-32 nanoseconds (:data:`CLOCK_PERIOD_1SEC` is one second), so that
both fast clocks and fractional-nanosecond periods are exact enough. A period
of 0 means the clock is stopped.

Clocks form trees: :meth:`Clock.set_source` connects an input clock to the
clock that drives it; :meth:`Clock.update` on a root clock propagates the new
period to every clock below it and calls their callbacks, filtered by the
:class:`ClockEvent` mask given to :meth:`Clock.set_callback`.

Devices get their clocks from :mod:`qemu_api.qdev`
(``DeviceState.init_clock_in("clk", self.clk_update, ClockEvent.UPDATE)``),
which makes the clock a QOM child of the device named after the clock. A
clock's callback dies with its owner, the QOM object whose method it is (or
``owner=``): once the owner is finalized, period changes no longer reach it.
A finalized clock leaves its clock tree.

Converting between time and ticks must go through :meth:`Clock.ticks_to_ns`
and :meth:`Clock.ns_to_ticks`, which do QEMU's 128-bit arithmetic:

>>> clk = Clock()
>>> clk.set_hz(24_000_000)
True
>>> clk.period()
178956970666
>>> clk.ticks_to_ns(24_000_000)
999999999
>>> clk.ns_to_ticks(1_000_000_000)
24000000
>>> clk.display_freq()
'24 MHz'
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final, TypeAlias, final

from qemu_api.error import Error
from qemu_api.qom import Object, callback_owner, override

__all__ = [
    "CLOCK_PERIOD_1SEC",
    "TYPE_CLOCK",
    "Clock",
    "ClockCallback",
    "ClockEvent",
    "ClockPreUpdate",
    "ClockUpdate",
    "clock_display_freq",
    "clock_has_source",
    "clock_is_enabled",
    "clock_new",
    "clock_ns_to_ticks",
    "clock_period_from_hz",
    "clock_period_from_ns",
    "clock_period_to_hz",
    "clock_period_to_ns",
    "clock_set_source",
    "clock_ticks_to_ns",
    "freq_to_str",
]

TYPE_CLOCK: Final = "clock"
"""QOM type name of :class:`Clock`."""

CLOCK_PERIOD_1SEC: Final = 1_000_000_000 << 32
"""One second in clock period units (2^-32 ns)."""

_U32: Final = (1 << 32) - 1
_U64: Final = (1 << 64) - 1
_INT64_MAX: Final = (1 << 63) - 1


@final
class ClockEvent(enum.IntFlag):
    """Why a clock callback runs; also the mask of wanted events.

    The values are QEMU's ``ClockEvent`` bits.
    """

    UPDATE = 1
    """The period has just changed (``ClockUpdate``)."""
    PRE_UPDATE = 2
    """The period is about to change (``ClockPreUpdate``)."""


ClockUpdate: Final = ClockEvent.UPDATE
"""QEMU's C name for :attr:`ClockEvent.UPDATE`."""
ClockPreUpdate: Final = ClockEvent.PRE_UPDATE
"""QEMU's C name for :attr:`ClockEvent.PRE_UPDATE`."""

ClockCallback: TypeAlias = Callable[[ClockEvent], None]
"""A clock callback: called with the event that triggered it."""


def clock_period_from_ns(ns: int) -> int:
    """Period of a clock ticking every ``ns`` nanoseconds (``CLOCK_PERIOD_FROM_NS``).

    >>> clock_period_from_ns(10) == 10 << 32
    True
    """
    return (ns * (CLOCK_PERIOD_1SEC // 1_000_000_000)) & _U64


def clock_period_from_hz(hz: int) -> int:
    """Period of a clock of ``hz`` hertz, 0 for 0 Hz (``CLOCK_PERIOD_FROM_HZ``).

    >>> clock_period_from_hz(1_000_000_000) == 1 << 32
    True
    """
    return CLOCK_PERIOD_1SEC // hz if hz else 0


def clock_period_to_hz(period: int) -> int:
    """Frequency in hertz of a period, as C ``unsigned`` (``CLOCK_PERIOD_TO_HZ``).

    >>> clock_period_to_hz(1 << 32)
    1000000000
    """
    return (CLOCK_PERIOD_1SEC // period) & _U32 if period else 0


def clock_period_to_ns(period: int) -> int:
    """Whole nanoseconds of a period, rounded down (``CLOCK_PERIOD_TO_NS``).

    >>> clock_period_to_ns(clock_period_from_hz(3_000_000))
    333
    """
    return period // (CLOCK_PERIOD_1SEC // 1_000_000_000)


_SI_PREFIXES: Final = ("", "K", "M", "G", "T", "P", "E")


def freq_to_str(freq_hz: int) -> str:
    """Human-readable frequency with 3 significant digits (QEMU ``freq_to_str``).

    >>> freq_to_str(33_333_333), freq_to_str(0), freq_to_str(1500)
    ('33.3 MHz', '0 Hz', '1.5 KHz')
    """
    freq = float(freq_hz)
    idx = 0
    while freq >= 1000.0 and idx < len(_SI_PREFIXES) - 1:
        freq /= 1000.0
        idx += 1
    return f"{freq:0.3g} {_SI_PREFIXES[idx]}Hz"


def _check_u32(what: str, value: int) -> None:
    if not 0 <= value <= _U32:
        raise ValueError(
            f"{what} must fit in 32 bits unsigned (0..{_U32}), not {value}"
        )


@final
class Clock(Object, type_name=TYPE_CLOCK):
    """A clock: a period, an optional source, children and one callback.

    All fields are private; use the methods. Create clocks of a device with
    ``DeviceState.init_clock_in``/``init_clock_out``, or :func:`clock_new`.

    >>> src, dst = Clock(), Clock()
    >>> events = []
    >>> dst.set_callback(events.append, ClockEvent.UPDATE)
    >>> dst.set_source(src)
    >>> src.update_hz(1000)
    >>> dst.get_hz(), events
    (1000, [<ClockEvent.UPDATE: 1>])
    """

    @override
    def _qom_instance_init(self) -> None:
        """Set up a stopped clock with no source and a 1:1 ratio."""
        self._period = 0
        self._callback: ClockCallback | None = None
        self._callback_events = ClockEvent(0)
        self._callback_owner: Object | None = None
        self._multiplier = 1
        self._divider = 1
        self._source: Clock | None = None
        self._children: list[Clock] = []

    @override
    def instance_finalize(self) -> None:
        """Drop the callback and leave the tree: source and child clocks."""
        self.clear_callback()
        for child in list(self._children):
            child._disconnect()
        self._disconnect()

    def _disconnect(self) -> None:
        src = self._source
        if src is None:
            return
        self._source = None
        src._children.remove(self)

    # -- callback -------------------------------------------------------------

    def set_callback(
        self,
        callback: ClockCallback,
        events: ClockEvent,
        *,
        owner: Object | None = None,
    ) -> None:
        """Register the one callback of this clock (``clock_set_callback``).

        Args:
            callback: called with the :class:`ClockEvent` that happened.
            events: the events the callback wants, e.g.
                ``ClockEvent.UPDATE | ClockEvent.PRE_UPDATE``.
            owner: the object the callback calls into; by default the QOM
                object whose method ``callback`` is. When it is finalized
                the callback is dropped.

        Raises:
            Error: the owner is already finalized.
        """
        if owner is None:
            owner = callback_owner(callback)
        if owner is not self._callback_owner:
            if self._callback_owner is not None:
                self._callback_owner.disown_resource(self)
            if owner is not None:
                owner.own_resource(self)
            self._callback_owner = owner
        self._callback = callback
        self._callback_events = events

    def clear_callback(self) -> None:
        """Unregister the callback (``clock_clear_callback``)."""
        if self._callback_owner is not None:
            self._callback_owner.disown_resource(self)
            self._callback_owner = None
        self._callback = None
        self._callback_events = ClockEvent(0)

    def owner_quiesce(self) -> None:
        """Keep the callback while the owner is unrealized (as QEMU does)."""

    def owner_release(self) -> None:
        """The callback's owner is gone: drop the callback."""
        self._callback_owner = None
        self._callback = None
        self._callback_events = ClockEvent(0)

    def _call_callback(self, event: ClockEvent) -> None:
        cb = self._callback
        if cb is not None and self._callback_events & event:
            cb(event)

    # -- period ---------------------------------------------------------------

    def period(self) -> int:
        """The period in units of 2^-32 ns, 0 if stopped (``clock_get``)."""
        return self._period

    def get_hz(self) -> int:
        """The frequency in hertz, 0 if stopped (``clock_get_hz``)."""
        return clock_period_to_hz(self._period)

    def get_ns(self) -> int:
        """The period in whole nanoseconds, rounded down (``CLOCK_PERIOD_TO_NS``).

        Do not multiply this by a tick count: use :meth:`ticks_to_ns`.
        """
        return clock_period_to_ns(self._period)

    def is_enabled(self) -> bool:
        """Whether the clock runs, i.e. its period is not 0 (``clock_is_enabled``)."""
        return self._period != 0

    def has_source(self) -> bool:
        """Whether a source clock drives this one (``clock_has_source``).

        Devices check this in realize for inputs the board must connect.
        """
        return self._source is not None

    def set(self, period: int) -> bool:
        """Set the period without telling anyone (``clock_set``).

        Args:
            period: the new period in 2^-32 ns units, 0 to stop the clock.

        Returns:
            True if the period changed.
        """
        if not 0 <= period <= _U64:
            raise ValueError(f"a clock period is 64 bits unsigned, not {period}")
        if self._period == period:
            return False
        self._period = period
        return True

    def set_hz(self, hz: int) -> bool:
        """Set the period from a frequency in hertz (``clock_set_hz``)."""
        _check_u32("hz", hz)
        return self.set(clock_period_from_hz(hz))

    def set_ns(self, ns: int) -> bool:
        """Set the period from whole nanoseconds (``clock_set_ns``)."""
        _check_u32("ns", ns)
        return self.set(clock_period_from_ns(ns))

    def set_mul_div(self, multiplier: int, divider: int) -> bool:
        """Run the child clocks at ``period * multiplier / divider``.

        ``clock_set_mul_div``: the caller propagates afterwards if needed.
        A multiplier of 0 stops the children.

        Returns:
            True if the ratio changed.

        Raises:
            ValueError: ``divider`` is 0 or a value does not fit in 32 bits.
        """
        _check_u32("multiplier", multiplier)
        _check_u32("divider", divider)
        if divider == 0:
            raise ValueError("a clock divider of 0 is not allowed")
        if self._multiplier == multiplier and self._divider == divider:
            return False
        self._multiplier = multiplier
        self._divider = divider
        return True

    def _child_period(self) -> int:
        return (self._period * self._multiplier // self._divider) & _U64

    def _propagate_period(self, call_callbacks: bool) -> None:
        child_period = self._child_period()
        for child in list(self._children):
            if child._period != child_period:
                if call_callbacks:
                    child._call_callback(ClockEvent.PRE_UPDATE)
                child._period = child_period
                if call_callbacks:
                    child._call_callback(ClockEvent.UPDATE)
                child._propagate_period(call_callbacks)

    def propagate(self) -> None:
        """Push this clock's period down the tree, with callbacks (``clock_propagate``).

        Raises:
            Error: the clock has a source; only a root clock can propagate.
        """
        if self._source is not None:
            raise Error(
                "clock_propagate() called on a clock that has a source",
                hint="set and propagate the period on the source (root) clock",
            )
        self._propagate_period(True)

    def update(self, period: int) -> None:
        """Set the period and propagate it if it changed (``clock_update``)."""
        if self.set(period):
            self.propagate()

    def update_hz(self, hz: int) -> None:
        """Set a frequency in hertz and propagate (``clock_update_hz``)."""
        _check_u32("hz", hz)
        self.update(clock_period_from_hz(hz))

    def update_ns(self, ns: int) -> None:
        """Set a period in nanoseconds and propagate (``clock_update_ns``)."""
        _check_u32("ns", ns)
        self.update(clock_period_from_ns(ns))

    def set_source(self, src: Clock) -> None:
        """Make ``src`` drive this clock (``clock_set_source``).

        The source's (child) period is copied down this clock's subtree
        without calling callbacks.

        Raises:
            Error: this clock already has a source (changing it is not
                supported), or ``src`` is this clock or below it.
        """
        if self._source is not None:
            raise Error(
                "clock already has a source: changing the source of a clock is "
                "not supported",
                hint="connect each clock input exactly once, before realize",
            )
        node: Clock | None = src
        while node is not None:
            if node is self:
                raise Error("connecting this clock source would create a loop")
            node = node._source
        self._period = src._child_period()
        src._children.insert(0, self)
        self._source = src
        self._propagate_period(False)

    # -- arithmetic -------------------------------------------------------------

    def ticks_to_ns(self, ticks: int) -> int:
        """Nanoseconds taken by ``ticks`` ticks (``clock_ticks_to_ns``).

        The 128-bit product is shifted down by 32 bits; results that do not
        fit are saturated to ``INT64_MAX`` ("never").
        """
        prod = self._period * (ticks & _U64)
        high = prod >> 64
        if high & ~((1 << 31) - 1) & _U64:
            return _INT64_MAX
        return (prod >> 32) & _U64

    def ns_to_ticks(self, ns: int) -> int:
        """Ticks made in ``ns`` nanoseconds, 0 if stopped (``clock_ns_to_ticks``).

        Computes ``(ns << 32) / period`` in 128 bits and truncates the result
        to 64 bits, as QEMU does.
        """
        if self._period == 0:
            return 0
        return (((ns & _U64) << 32) // self._period) & _U64

    def display_freq(self) -> str:
        """The frequency for humans, e.g. ``"33.3 MHz"`` (``clock_display_freq``)."""
        return freq_to_str(self.get_hz())

    @override
    def __repr__(self) -> str:
        return f"<Clock {self.canonical_path() or '(detached)'} {self.display_freq()}>"


def clock_new(parent: Object, name: str) -> Clock:
    """Create a clock as child ``name`` of ``parent`` (``clock_new``).

    >>> from qemu_api.qom import Container
    >>> c = Container()
    >>> clock_new(c, "clk").name_in_parent
    'clk'
    """
    return parent.property_add_child(name, Clock())


def clock_set_source(clk: Clock, src: Clock) -> None:
    """Make ``src`` the source of ``clk`` (see :meth:`Clock.set_source`)."""
    clk.set_source(src)


def clock_has_source(clk: Clock) -> bool:
    """Whether ``clk`` has a source (see :meth:`Clock.has_source`)."""
    return clk.has_source()


def clock_is_enabled(clk: Clock) -> bool:
    """Whether ``clk`` runs (see :meth:`Clock.is_enabled`)."""
    return clk.is_enabled()


def clock_ticks_to_ns(clk: Clock, ticks: int) -> int:
    """Nanoseconds for ``ticks`` ticks of ``clk`` (see :meth:`Clock.ticks_to_ns`)."""
    return clk.ticks_to_ns(ticks)


def clock_ns_to_ticks(clk: Clock, ns: int) -> int:
    """Ticks of ``clk`` in ``ns`` nanoseconds (see :meth:`Clock.ns_to_ticks`)."""
    return clk.ns_to_ticks(ns)


def clock_display_freq(clk: Clock) -> str:
    """Human-readable frequency of ``clk`` (see :meth:`Clock.display_freq`)."""
    return clk.display_freq()
