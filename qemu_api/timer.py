"""QEMU clocks and timers, and the machine's virtual time.

This module models ``include/qemu/timer.h`` and ``util/qemu-timer.c`` (the
``QEMUClockType`` clocks, ``QEMUTimer`` and its ``timer_mod``/``timer_del``
family) together with the virtual-time control of QEMU's qtest accelerator
(``clock_step`` and ``clock_set`` in ``system/qtest.c``).

Clocks:

- :data:`CLOCK_VIRTUAL` is the machine's time.  It is owned by the machine and
  moves only when the accelerator moves it (:func:`clock_step`,
  :func:`clock_set`), so device tests are deterministic.
- :data:`CLOCK_VIRTUAL_RT` reads the same virtual time and shares its timer
  list (QEMU without ``icount``, where both follow the CPU clock).
- :data:`CLOCK_REALTIME` is the host's monotonic clock and :data:`CLOCK_HOST`
  its wall clock; their timers run when the main loop calls
  :func:`qemu_clock_run_timers`.

A device arms a :class:`Timer` in the timer's scale (ns, µs or ms); the
callback runs with the BQL held when the clock reaches the expiry:

>>> virtual_clock_reset()
>>> fired = []
>>> t = Timer(
...     CLOCK_VIRTUAL, SCALE_US, lambda: fired.append(qemu_clock_get_ns(CLOCK_VIRTUAL))
... )
>>> t.mod(qemu_clock_get_us(CLOCK_VIRTUAL) + 5)
>>> t.expire_time()
5000
>>> clock_step(10_000)
10000
>>> fired
[5000]
>>> t.pending()
False

Due timers run in expiry order; timers with the same expiry run in the order
they were armed.  A callback may re-arm or delete any timer, including its
own; a timer armed at or before the current time runs at the next
:func:`clock_step`, :func:`clock_set` or :func:`qemu_clock_run_timers`.

A device's timer dies with the device (QEMU Rust's ``Timer``, deleted when
the device is dropped): its owner is the QOM object whose method the callback
is, or ``owner=``.  Unrealizing the owner disarms the timer; finalizing it
(``unparent``) deletes it for good, so a periodic timer never fires into a
dead device, and nothing needs deleting by hand in ``instance_finalize``.
"""

from __future__ import annotations

import bisect
import enum
import time
from collections.abc import Callable
from typing import final

from qemu_api._compat import override
from qemu_api.bql import _held, bql_assert_locked
from qemu_api.error import Error
from qemu_api.qom import Object, callback_owner
from qemu_api.trace import trace_event_name
from qemu_trace.qemu_api import trace_timer_del, trace_timer_fire, trace_timer_mod

__all__ = [
    "CLOCK_HOST",
    "CLOCK_REALTIME",
    "CLOCK_VIRTUAL",
    "CLOCK_VIRTUAL_RT",
    "NANOSECONDS_PER_SECOND",
    "SCALE_MS",
    "SCALE_NS",
    "SCALE_US",
    "QEMUClockType",
    "Timer",
    "clock_set",
    "clock_step",
    "qemu_clock_advance_virtual_time",
    "qemu_clock_deadline_ns",
    "qemu_clock_expired",
    "qemu_clock_get_ms",
    "qemu_clock_get_ns",
    "qemu_clock_get_us",
    "qemu_clock_run_all_timers",
    "qemu_clock_run_timers",
    "qemu_clock_set_notify",
    "qemu_clock_sync_host",
    "qemu_clock_sync_host_bql_held",
    "timer_new_ms",
    "timer_new_ns",
    "timer_new_us",
    "virtual_clock_follow_host",
    "virtual_clock_reset",
]


# Checked before computing the arguments of the timer_mod tracepoint.
_EV_TIMER_MOD = trace_event_name("timer_mod")


@final
class QEMUClockType(enum.IntEnum):
    """The clocks a timer can follow, with QEMU's numbering."""

    REALTIME = 0
    """The host's monotonic clock; runs while the VM is stopped."""
    VIRTUAL = 1
    """The machine's time; moves only when the accelerator moves it."""
    HOST = 2
    """The host's wall clock (it can jump when the host time is set)."""
    VIRTUAL_RT = 3
    """The virtual time, read outside the CPU (same as VIRTUAL here)."""


CLOCK_REALTIME = QEMUClockType.REALTIME
"""``QEMU_CLOCK_REALTIME``."""
CLOCK_VIRTUAL = QEMUClockType.VIRTUAL
"""``QEMU_CLOCK_VIRTUAL``."""
CLOCK_HOST = QEMUClockType.HOST
"""``QEMU_CLOCK_HOST``."""
CLOCK_VIRTUAL_RT = QEMUClockType.VIRTUAL_RT
"""``QEMU_CLOCK_VIRTUAL_RT``."""

SCALE_NS = 1
"""Timer scale: nanoseconds."""
SCALE_US = 1000
"""Timer scale: microseconds."""
SCALE_MS = 1000000
"""Timer scale: milliseconds."""
NANOSECONDS_PER_SECOND = 1000000000
"""Nanoseconds in a second."""


class _TimerList:
    """The active timers of one clock, sorted by (expiry, arming order)."""

    __slots__ = ("active", "clock")

    def __init__(self, clock: QEMUClockType) -> None:
        self.clock = clock
        # (expire_ns, seq, timer); (expire_ns, seq) is unique, so the timers
        # themselves are never compared.
        self.active: list[tuple[int, int, Timer]] = []


_virtual_ns = 0
_seq = 0
_stepping = False
# While the virtual clock follows host time: host monotonic ns at virtual
# time 0 (QEMU's cpu_clock_offset, negated), and who gets a failing timer
# callback run by qemu_clock_sync_host.
_host_base: int | None = None
_host_error: Callable[[BaseException], None] | None = None
_monotonic_ns = time.monotonic_ns
_notify: Callable[[QEMUClockType], None] | None = None
_realtime_list = _TimerList(CLOCK_REALTIME)
_virtual_list = _TimerList(CLOCK_VIRTUAL)
_host_list = _TimerList(CLOCK_HOST)
# Indexed by QEMUClockType; VIRTUAL_RT shares the VIRTUAL list.
_LISTS = (_realtime_list, _virtual_list, _host_list, _virtual_list)


def _clock_type(clock: QEMUClockType) -> QEMUClockType:
    if not isinstance(clock, QEMUClockType):
        raise TypeError(
            f"{clock!r} is not a QEMUClockType; use CLOCK_VIRTUAL, "
            "CLOCK_VIRTUAL_RT, CLOCK_REALTIME or CLOCK_HOST"
        )
    return clock


def qemu_clock_get_ns(clock: QEMUClockType) -> int:
    """Return the current time of ``clock`` in nanoseconds.

    >>> virtual_clock_reset(42)
    >>> qemu_clock_get_ns(CLOCK_VIRTUAL)
    42
    """
    if clock is CLOCK_VIRTUAL or clock is CLOCK_VIRTUAL_RT:
        return _virtual_ns
    if clock is CLOCK_REALTIME:
        return time.monotonic_ns()
    if clock is CLOCK_HOST:
        return time.time_ns()
    return qemu_clock_get_ns(_clock_type(QEMUClockType(clock)))


def qemu_clock_get_us(clock: QEMUClockType) -> int:
    """Return the current time of ``clock`` in microseconds (truncated)."""
    return qemu_clock_get_ns(clock) // SCALE_US


def qemu_clock_get_ms(clock: QEMUClockType) -> int:
    """Return the current time of ``clock`` in milliseconds (truncated)."""
    return qemu_clock_get_ns(clock) // SCALE_MS


def qemu_clock_set_notify(callback: Callable[[QEMUClockType], None] | None) -> None:
    """Install the function told when a clock's next deadline moves earlier.

    QEMU's timer-list notifier: when a timer becomes the first to expire on
    its clock, the main loop must recompute how long it may sleep.  The
    callback gets the clock; it runs in the thread that armed the timer.

    Args:
        callback: the notifier, or None to remove it.
    """
    global _notify
    _notify = callback


@final
class Timer:
    """A callback that runs when a clock reaches a given time (``QEMUTimer``).

    A timer is created inactive; :meth:`mod` arms it, :meth:`delete` disarms
    it.  Arming an armed timer moves it.  The callback runs once per arming,
    with the BQL held; it may re-arm the timer for periodic behaviour.

    A timer has an owner, the object it calls into: by default the QOM
    object whose method ``callback`` is (``self.expired``), or ``owner``.
    When the owner is unrealized the timer is disarmed; when it is
    finalized, or when its construction fails after the timer was made, the
    timer is *released*: disarmed for good, its callback dropped, and arming
    it again is an error.  A timer created while a device is realized
    (in ``realize``) is released when the device is unrealized.
    :func:`virtual_clock_reset` disarms every timer.

    Args:
        clock: the clock the expiry times refer to.
        scale: the unit of :meth:`mod` and :meth:`expired` in nanoseconds
            (:data:`SCALE_NS`, :data:`SCALE_US`, :data:`SCALE_MS`, or any
            positive integer).
        callback: called with no arguments when the timer expires.
        owner: the object the timer must not outlive; None for the owner
            of a method callback, or no owner for a plain function.

    Raises:
        TypeError: ``clock`` is not a :class:`QEMUClockType`.
        ValueError: ``scale`` is not a positive integer.
        Error: the owner is already finalized.

    >>> from qemu_api.qom import Container
    >>> class Ticker:
    ...     def __init__(self) -> None:
    ...         self.ticks = 0
    ...         self.node = Container()  # stands in for a device
    ...         self.timer = Timer(CLOCK_VIRTUAL, SCALE_NS, self.tick, owner=self.node)
    ...
    ...     def tick(self) -> None:
    ...         self.ticks += 1
    ...         self.timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + 10)
    >>> virtual_clock_reset()
    >>> t = Ticker()
    >>> t.timer.mod_ns(10)
    >>> _ = clock_step(35)
    >>> root = Container()
    >>> _ = root.property_add_child("ticker", t.node)
    >>> t.node.unparent()  # the owner dies: the periodic timer with it
    >>> _ = clock_step(100)
    >>> t.ticks, t.timer.pending()
    (3, False)
    """

    __slots__ = (
        "_callback",
        "_expire_ns",
        "_list",
        "_owner",
        "_released",
        "clock",
        "scale",
    )

    def __init__(
        self,
        clock: QEMUClockType,
        scale: int,
        callback: Callable[[], None],
        *,
        owner: Object | None = None,
    ) -> None:
        self.clock = _clock_type(clock)
        if scale <= 0:
            raise ValueError(
                f"Timer scale must be a positive number of ns per unit, not "
                f"{scale!r}; use SCALE_NS, SCALE_US or SCALE_MS"
            )
        self.scale = scale
        self._callback = callback
        self._list = _LISTS[clock]
        # -1 when not pending, as QEMUTimer.expire_time.
        self._expire_ns = -1
        self._released = False
        self._owner = owner if owner is not None else callback_owner(callback)
        if self._owner is not None:
            self._owner.own_resource(self)

    @property
    def owner(self) -> Object | None:
        """The object the timer dies with, or None."""
        return self._owner

    @property
    def released(self) -> bool:
        """Whether the timer died with its owner; it can no longer be armed."""
        return self._released

    def owner_quiesce(self) -> None:
        """The owner was unrealized: disarm (:class:`~qemu_api.qom.OwnedResource`)."""
        self.delete()

    def owner_release(self) -> None:
        """The owner is gone: disarm for good and drop the callback."""
        self.delete()
        self._released = True
        self._callback = _released_callback

    def _refuse_released(self) -> None:
        raise Error(
            f"Timer.mod(): this timer was released with its owner {self._owner!r} "
            "and cannot be armed again",
            hint="A timer dies when its owner is finalized, or when it is "
            "unrealized if the timer was created during realize. Create timers "
            "in instance_init to keep them across unrealize and realize.\n",
        )

    def _unlink(self) -> None:
        active = self._list.active
        i = bisect.bisect_left(active, (self._expire_ns,))
        while active[i][2] is not self:
            i += 1
        del active[i]
        self._expire_ns = -1

    def mod_ns(self, expire_ns: int) -> None:
        """Arm the timer to expire at ``expire_ns`` on its clock (``timer_mod_ns``).

        A negative time is treated as 0, as in QEMU.  A time at or before
        the current time makes the timer run at the next opportunity.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        global _seq
        bql_assert_locked("Timer.mod()")
        if self._released:
            self._refuse_released()
        if self._expire_ns >= 0:
            self._unlink()
        expire = expire_ns if expire_ns > 0 else 0
        _seq += 1
        active = self._list.active
        entry = (expire, _seq, self)
        bisect.insort(active, entry)
        self._expire_ns = expire
        if _EV_TIMER_MOD is not None and _EV_TIMER_MOD.state:
            trace_timer_mod(self, expire, qemu_clock_get_ns(self.clock))
        if _notify is not None and active[0] is entry:
            _notify(self.clock)

    def mod(self, expire_time: int) -> None:
        """Arm the timer to expire at ``expire_time``, in the timer's scale.

        QEMU's ``timer_mod``: the expiry is ``expire_time * scale`` ns.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        self.mod_ns(expire_time * self.scale)

    def mod_anticipate_ns(self, expire_ns: int) -> None:
        """Arm the timer for ``expire_ns`` unless it already expires earlier.

        QEMU's ``timer_mod_anticipate_ns``: the timer only ever moves
        earlier.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        if self._expire_ns < 0 or self._expire_ns > max(expire_ns, 0):
            self.mod_ns(expire_ns)
        else:
            bql_assert_locked("Timer.mod_anticipate()")
            if self._released:
                self._refuse_released()

    def mod_anticipate(self, expire_time: int) -> None:
        """:meth:`mod_anticipate_ns` with the time in the timer's scale.

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        self.mod_anticipate_ns(expire_time * self.scale)

    def delete(self) -> None:
        """Disarm the timer if it is pending (QEMU's ``timer_del``).

        Raises:
            BqlNotHeldError: the current thread does not hold the BQL.
        """
        bql_assert_locked("Timer.delete()")
        if self._expire_ns >= 0:
            trace_timer_del(self)
            self._unlink()

    def pending(self) -> bool:
        """Return True if the timer is armed (QEMU's ``timer_pending``)."""
        return self._expire_ns >= 0

    def expire_time(self) -> int:
        """Return the expiry in ns, or -1 if not pending (``timer_expire_time_ns``)."""
        return self._expire_ns

    def expired(self, current_time: int) -> bool:
        """Return True if the timer is pending and due at ``current_time``.

        QEMU's ``timer_expired``; ``current_time`` is in the timer's scale.
        """
        return 0 <= self._expire_ns <= current_time * self.scale

    @override
    def __repr__(self) -> str:
        if self._released:
            state = "released"
        elif self._expire_ns >= 0:
            state = f"expire={self._expire_ns} ns"
        else:
            state = "idle"
        return f"Timer({self.clock.name}, scale={self.scale}, {state})"


def _released_callback() -> None:
    """The callback of a released timer (never called: it cannot be armed)."""


def timer_new_ns(
    clock: QEMUClockType,
    callback: Callable[[], None],
    *,
    owner: Object | None = None,
) -> Timer:
    """Return a new timer in nanoseconds (QEMU's ``timer_new_ns``).

    ``owner`` is as for :class:`Timer`.
    """
    return Timer(clock, SCALE_NS, callback, owner=owner)


def timer_new_us(
    clock: QEMUClockType,
    callback: Callable[[], None],
    *,
    owner: Object | None = None,
) -> Timer:
    """Return a new timer in microseconds (QEMU's ``timer_new_us``).

    ``owner`` is as for :class:`Timer`.
    """
    return Timer(clock, SCALE_US, callback, owner=owner)


def timer_new_ms(
    clock: QEMUClockType,
    callback: Callable[[], None],
    *,
    owner: Object | None = None,
) -> Timer:
    """Return a new timer in milliseconds (QEMU's ``timer_new_ms``).

    ``owner`` is as for :class:`Timer`.
    """
    return Timer(clock, SCALE_MS, callback, owner=owner)


def _run_list(timer_list: _TimerList, current_time: int) -> bool:
    """Run the timers due at ``current_time`` (``timerlist_run_timers``)."""
    active = timer_list.active
    progress = False
    while active and active[0][0] <= current_time:
        timer = active.pop(0)[2]
        trace_timer_fire(timer, timer._expire_ns, current_time)
        timer._expire_ns = -1
        timer._callback()
        progress = True
    return progress


def qemu_clock_deadline_ns(clock: QEMUClockType) -> int:
    """Return the ns until the clock's next timer expires, or -1 if none.

    QEMU's ``qemu_clock_deadline_ns_all``: 0 when a timer is already due.
    The main loop sleeps at most this long.

    >>> virtual_clock_reset(100)
    >>> qemu_clock_deadline_ns(CLOCK_VIRTUAL)
    -1
    >>> t = Timer(CLOCK_VIRTUAL, SCALE_NS, lambda: None)
    >>> t.mod_ns(250)
    >>> qemu_clock_deadline_ns(CLOCK_VIRTUAL)
    150
    >>> t.delete()
    """
    active = _LISTS[_clock_type(clock)].active
    if not active:
        return -1
    delta = active[0][0] - qemu_clock_get_ns(clock)
    return delta if delta > 0 else 0


def qemu_clock_expired(clock: QEMUClockType) -> bool:
    """Return True if a timer of ``clock`` is due (``qemu_clock_expired``)."""
    return qemu_clock_deadline_ns(clock) == 0


def qemu_clock_run_timers(clock: QEMUClockType) -> bool:
    """Run the timers of ``clock`` that are due now (``qemu_clock_run_timers``).

    The main loop calls this for the real-time clocks; for the virtual clock
    it runs only timers armed at or before the current virtual time (it does
    not move the clock).

    Returns:
        True if any timer ran.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
    """
    bql_assert_locked("qemu_clock_run_timers()")
    timer_list = _LISTS[_clock_type(clock)]
    return _run_list(timer_list, qemu_clock_get_ns(clock))


def qemu_clock_run_all_timers() -> bool:
    """Run the due timers of every clock (``qemu_clock_run_all_timers``).

    Returns:
        True if any timer ran.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
    """
    bql_assert_locked("qemu_clock_run_all_timers()")
    progress = _run_list(_realtime_list, time.monotonic_ns())
    progress = _run_list(_virtual_list, _virtual_ns) or progress
    return _run_list(_host_list, time.time_ns()) or progress


def _advance_virtual_time(dest: int, what: str) -> int:
    """Move the virtual clock to ``dest`` (``qemu_clock_advance_virtual_time``).

    Stops at every deadline on the way and runs the timers due there, so a
    callback reads its own expiry as the current time.  Timers already due
    run first, even when ``dest`` is the current time.
    """
    global _virtual_ns, _stepping
    bql_assert_locked(what)
    if _stepping:
        raise Error(
            f"{what} called from a timer callback; a callback cannot move the "
            "virtual clock: arm a timer instead"
        )
    active = _virtual_list.active
    if not active or active[0][0] > dest:
        # Nothing due on the way (the common case when the clock follows
        # host time): just move it.
        _virtual_ns = max(_virtual_ns, dest)
        return _virtual_ns
    _stepping = True
    try:
        _run_list(_virtual_list, _virtual_ns)
        while _virtual_ns < dest:
            # Stop at the next deadline, or at dest.
            _virtual_ns = active[0][0] if active and active[0][0] < dest else dest
            _run_list(_virtual_list, _virtual_ns)
    finally:
        _stepping = False
    return _virtual_ns


def qemu_clock_advance_virtual_time(dest: int) -> int:
    """Move the virtual clock forward to ``dest``, running the timers due on the way.

    QEMU's ``qemu_clock_advance_virtual_time``, for a caller that follows
    another clock (the vCPU thread before a device access): a ``dest`` that
    is not ahead of the clock changes nothing, and with no timer due on the
    way the clock just moves, cheaply.

    Returns:
        The virtual time in ns.

    Raises:
        Error: the call comes from a timer callback.
        BqlNotHeldError: the current thread does not hold the BQL.

    >>> virtual_clock_reset(100)
    >>> qemu_clock_advance_virtual_time(50)
    100
    >>> qemu_clock_advance_virtual_time(150)
    150
    """
    global _virtual_ns
    if dest <= _virtual_ns:
        return _virtual_ns
    active = _virtual_list.active
    if not _stepping and (not active or active[0][0] > dest):
        if not _held.held:  # a call fewer per device access of the vCPU
            bql_assert_locked("qemu_clock_advance_virtual_time()")
        _virtual_ns = dest
        return dest
    return _advance_virtual_time(dest, "qemu_clock_advance_virtual_time()")


def qemu_clock_sync_host_bql_held() -> None:
    """:func:`qemu_clock_sync_host` for a caller that holds the BQL by construction.

    The vCPU's device-access callback takes the BQL immediately before it
    calls this, once per guest load or store: the thread-local check that
    :func:`qemu_clock_sync_host` makes first is a tenth of such an access.
    Calling it without the BQL is a race on the virtual clock; anything
    else must call :func:`qemu_clock_sync_host`.

    Raises:
        Error: the call comes from a timer callback.

    >>> virtual_clock_reset()
    >>> virtual_clock_follow_host(time.monotonic_ns() - 10**12)
    >>> qemu_clock_sync_host_bql_held()  # the doctests hold the BQL
    >>> qemu_clock_get_ns(CLOCK_VIRTUAL) >= 10**12
    True
    >>> virtual_clock_follow_host(None)
    >>> virtual_clock_reset()
    """
    global _virtual_ns
    base = _host_base
    if base is None:
        return
    dest = _monotonic_ns() - base
    if dest <= _virtual_ns:
        return
    active = _virtual_list.active
    if not _stepping and (not active or active[0][0] > dest):
        _virtual_ns = dest
        return
    try:
        _advance_virtual_time(dest, "qemu_clock_sync_host_bql_held()")
    except Exception as exc:
        handler = _host_error
        if handler is None:
            raise
        handler(exc)


def virtual_clock_follow_host(
    base: int | None, on_error: Callable[[BaseException], None] | None = None
) -> None:
    """Set where :func:`qemu_clock_sync_host` moves the virtual clock.

    The runtime calls this while the machine runs and its virtual clock
    follows host time (QEMU's ``cpu_clock_offset``): the clock's time is
    then host monotonic time minus ``base``.

    Args:
        base: host monotonic ns at virtual time 0; None while the clock does
            not follow host time (qtest, icount, a stopped machine).
        on_error: receives an exception raised by a timer callback that
            :func:`qemu_clock_sync_host` runs; None lets it propagate.
    """
    global _host_base, _host_error
    _host_base = base
    _host_error = on_error


def qemu_clock_sync_host() -> None:
    """Bring the virtual clock up to host time, running the timers due on the way.

    What the vCPU thread calls before each device access, so that the
    device reads the current virtual time and finds its due timers run, as
    on QEMU, where the virtual clock reads the host's: one call that moves
    the clock when no timer is due, :func:`qemu_clock_advance_virtual_time`
    otherwise.  Does nothing unless :func:`virtual_clock_follow_host` gave a
    base, or when the clock is ahead of host time already.

    Raises:
        BqlNotHeldError: the current thread does not hold the BQL.
        Error: the call comes from a timer callback.

    >>> virtual_clock_reset()
    >>> qemu_clock_sync_host()  # not following host time: nothing moves
    >>> qemu_clock_get_ns(CLOCK_VIRTUAL)
    0
    >>> virtual_clock_follow_host(time.monotonic_ns() - 10**12)
    >>> qemu_clock_sync_host()
    >>> qemu_clock_get_ns(CLOCK_VIRTUAL) >= 10**12
    True
    >>> virtual_clock_follow_host(None)
    >>> virtual_clock_reset()
    """
    if not _held.held:
        bql_assert_locked("qemu_clock_sync_host()")
    qemu_clock_sync_host_bql_held()


def clock_step(ns: int | None = None) -> int:
    """Advance the virtual clock by ``ns``, running the timers due on the way.

    The qtest ``clock_step`` command.  Each timer runs at its own deadline:
    inside its callback ``qemu_clock_get_ns(CLOCK_VIRTUAL)`` is its expiry.
    Timers already due run first, so ``clock_step(0)`` runs them.

    Args:
        ns: the step in nanoseconds; None steps to the next timer deadline.

    Returns:
        The new virtual time in ns.

    Raises:
        Error: ``ns`` is negative, or None while no timer is pending, or the
            call comes from a timer callback.
        BqlNotHeldError: the current thread does not hold the BQL.

    >>> virtual_clock_reset()
    >>> t = Timer(CLOCK_VIRTUAL, SCALE_MS, lambda: None)
    >>> t.mod(3)
    >>> clock_step()
    3000000
    """
    if ns is None:
        deadline = qemu_clock_deadline_ns(CLOCK_VIRTUAL)
        if deadline < 0:
            raise Error(
                "cannot advance clock to the next deadline because there is no "
                "pending deadline",
                hint="Arm a virtual-clock timer first, or pass the step in ns.\n",
            )
        ns = deadline
    elif ns < 0:
        raise Error(
            f"clock_step({ns}): the step must be 0 or more ns; the virtual "
            "clock never goes backwards"
        )
    return _advance_virtual_time(_virtual_ns + ns, "clock_step()")


def clock_set(ns: int) -> int:
    """Advance the virtual clock to ``ns``, running the timers due on the way.

    The qtest ``clock_set`` command; see :func:`clock_step`.

    Args:
        ns: the new virtual time in nanoseconds, at least the current one.

    Returns:
        The new virtual time in ns.

    Raises:
        Error: ``ns`` is before the current virtual time, or the call comes
            from a timer callback.
        BqlNotHeldError: the current thread does not hold the BQL.
    """
    if ns < _virtual_ns:
        raise Error(
            f"clock_set({ns}): the virtual clock is at {_virtual_ns} ns and "
            "cannot go backwards",
            hint="Use virtual_clock_reset() to start a new machine at an "
            "earlier time.\n",
        )
    return _advance_virtual_time(ns, "clock_set()")


def virtual_clock_reset(ns: int = 0) -> None:
    """Start a new machine's time: delete every timer, set the virtual clock.

    All timers of every clock are disarmed (they belong to the previous
    machine's devices); the timer objects stay usable.  The notifier set by
    :func:`qemu_clock_set_notify` stays installed.

    Args:
        ns: the initial virtual time, 0 or more.

    Raises:
        ValueError: ``ns`` is negative.
        Error: called from a timer callback.
        BqlNotHeldError: the current thread does not hold the BQL.
    """
    global _virtual_ns
    bql_assert_locked("virtual_clock_reset()")
    if ns < 0:
        raise ValueError(f"virtual_clock_reset({ns}): the time must be 0 or more")
    if _stepping:
        raise Error(
            "virtual_clock_reset() called from a timer callback; reset the "
            "clock between machine runs"
        )
    for timer_list in (_realtime_list, _virtual_list, _host_list):
        for entry in timer_list.active:
            entry[2]._expire_ns = -1
        timer_list.active.clear()
    _virtual_ns = ns
