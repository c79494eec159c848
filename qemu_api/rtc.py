"""The time an RTC shows the guest: QEMU's ``-rtc`` time source.

This module models QEMU 7.2's ``include/sysemu/rtc.h`` and ``softmmu/rtc.c``
(``system/rtc.c`` in later versions), with ``mktimegm`` of
``util/cutils.c``.  An RTC model does not read the host's time itself: it
asks :func:`qemu_get_timedate` for the date to show, arms its timers on
:func:`rtc_clock`, and turns a date the guest writes back into an offset with
:func:`qemu_timedate_diff`, so that the ``-rtc`` option decides what time the
guest sees:

``base=utc`` (default), ``base=localtime``, ``base=DATE``
    The RTC starts at the host's time in UTC, at the host's local time, or at
    ``DATE`` (``2006-06-17T16:01:21`` or ``2006-06-17``, read as UTC).
``clock=host`` (default), ``clock=rt``, ``clock=vm``
    What moves it afterwards: the host's wall clock
    (``QEMU_CLOCK_HOST``), the host's monotonic clock
    (``QEMU_CLOCK_REALTIME``), or the machine's virtual clock
    (``QEMU_CLOCK_VIRTUAL``: under qtest the RTC moves only with
    ``clock_step``).
``driftfix=none`` (default), ``driftfix=slew``
    Sets ``lost_tick_policy=slew`` on the ``mc146818rtc`` device when the
    machine has one (pyqemu's have not).

>>> from qemu_api.option import qemu_opts_parse
>>> from qemu_api.timer import NANOSECONDS_PER_SECOND, clock_step
>>> configure_rtc(qemu_opts_parse("base=2006-06-17T16:01:21,clock=vm"))
>>> rtc_clock()
<QEMUClockType.VIRTUAL: 1>
>>> tm = qemu_get_timedate(0)
>>> tm
StructTm(2006-06-17 16:01:21, wday=6, yday=167, isdst=0)
>>> _ = clock_step(3 * NANOSECONDS_PER_SECOND)
>>> qemu_get_timedate(0).tm_sec
24
>>> tm.tm_hour += 1  # the guest sets its RTC an hour ahead
>>> diff = qemu_timedate_diff(tm)  # what an RTC_CHANGE event reports
>>> diff in (3599, 3600)  # (if the host clock ticked meanwhile)
True
>>> configure_rtc()  # back to the defaults

The structure :class:`StructTm` is C's ``struct tm``, with C's conventions
(``tm_year`` counts from 1900, ``tm_mon`` from 0, ``tm_wday`` from Sunday),
so a model ported from C reads the same fields.  :func:`rtc_clock` is a
function, not a variable as in QEMU: a module-level name rebound by
:func:`configure_rtc` would not be seen through ``from qemu_api.rtc import``,
and models are imported before the command line is read.

QEMU 7.2's integer types are kept where they are visible: the offset argument
of :func:`qemu_get_timedate` and the result of :func:`qemu_timedate_diff` are
C ``int`` values (32 bits, wrapping), and so is the host offset of
``base=DATE`` with ``clock=host`` (a date more than 68 years from now wraps,
as in QEMU).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass
from typing import Final

from qemu_api._compat import override
from qemu_api.bits import i32, i64, u64
from qemu_api.error import Error
from qemu_api.option import QemuOpts
from qemu_api.qdev import qdev_prop_register_global
from qemu_api.qom import object_class_by_name
from qemu_api.timer import (
    CLOCK_HOST,
    CLOCK_REALTIME,
    CLOCK_VIRTUAL,
    QEMUClockType,
    qemu_clock_get_ms,
)

__all__ = [
    "RTC_OPTS",
    "RtcBase",
    "StructTm",
    "configure_rtc",
    "mktimegm",
    "qemu_get_timedate",
    "qemu_ref_timedate",
    "qemu_timedate_diff",
    "rtc_base",
    "rtc_clock",
]

RTC_OPTS: Final = ("base", "clock", "driftfix")
"""The keys of the ``-rtc`` option list (QEMU's ``qemu_rtc_opts``)."""


@enum.unique
class RtcBase(enum.Enum):
    """Where the RTC starts (QEMU's ``rtc_base_type``)."""

    UTC = "utc"
    """The host's time, shown in UTC."""
    LOCALTIME = "localtime"
    """The host's time, shown in the host's time zone."""
    DATETIME = "datetime"
    """A date given with ``base=DATE``, shown in UTC."""


@dataclass(slots=True)
class StructTm:
    """C's ``struct tm``: a broken-down date, with C's conventions.

    Unlike Python's :class:`time.struct_time`, ``tm_year`` counts from 1900,
    ``tm_mon`` from 0 (January), ``tm_wday`` from 0 (Sunday) and ``tm_yday``
    from 0 (January 1st), as the C models that use it expect.  The fields are
    mutable: a model fills one from its registers before
    :func:`qemu_timedate_diff`.

    >>> StructTm(tm_year=106, tm_mon=5, tm_mday=17)
    StructTm(2006-06-17 00:00:00, wday=0, yday=0, isdst=0)
    """

    tm_sec: int = 0
    """Seconds, 0..60."""
    tm_min: int = 0
    """Minutes, 0..59."""
    tm_hour: int = 0
    """Hours, 0..23."""
    tm_mday: int = 0
    """Day of the month, 1..31."""
    tm_mon: int = 0
    """Month, 0..11."""
    tm_year: int = 0
    """Years since 1900."""
    tm_wday: int = 0
    """Day of the week, 0..6 from Sunday."""
    tm_yday: int = 0
    """Day of the year, 0..365."""
    tm_isdst: int = 0
    """Daylight saving time: positive if in effect, 0 if not, negative if unknown."""

    @classmethod
    def from_struct_time(cls, st: time.struct_time) -> StructTm:
        """Convert Python's :class:`time.struct_time` to C's conventions."""
        return cls(
            tm_sec=st.tm_sec,
            tm_min=st.tm_min,
            tm_hour=st.tm_hour,
            tm_mday=st.tm_mday,
            tm_mon=st.tm_mon - 1,
            tm_year=st.tm_year - 1900,
            tm_wday=(st.tm_wday + 1) % 7,
            tm_yday=st.tm_yday - 1,
            tm_isdst=st.tm_isdst,
        )

    def to_tuple(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """Return the fields in Python's :func:`time.mktime` order and conventions."""
        return (
            self.tm_year + 1900,
            self.tm_mon + 1,
            self.tm_mday,
            self.tm_hour,
            self.tm_min,
            self.tm_sec,
            (self.tm_wday - 1) % 7,
            self.tm_yday + 1,
            self.tm_isdst,
        )

    @override
    def __repr__(self) -> str:
        return (
            f"StructTm({self.tm_year + 1900:04d}-{self.tm_mon + 1:02d}-"
            f"{self.tm_mday:02d} {self.tm_hour:02d}:{self.tm_min:02d}:"
            f"{self.tm_sec:02d}, wday={self.tm_wday}, yday={self.tm_yday}, "
            f"isdst={self.tm_isdst})"
        )


def mktimegm(tm: StructTm) -> int:
    """Return the seconds since 1970 of ``tm`` read as UTC (QEMU's ``mktimegm``).

    QEMU's arithmetic, field for field: out-of-range fields are not an error
    (month 13 is January of the next year), the fields are C ``int`` values,
    ``tm_wday``, ``tm_yday`` and ``tm_isdst`` are ignored.

    >>> mktimegm(StructTm(tm_year=106, tm_mon=5, tm_mday=17, tm_hour=16, tm_min=1))
    1150560060
    >>> mktimegm(StructTm(tm_year=70, tm_mon=0, tm_mday=1))
    0
    """
    y = i32(tm.tm_year) + i32(1900)
    m = i32(tm.tm_mon) + i32(1)
    d = i32(tm.tm_mday)
    if m < 3:
        m = m + i32(12)
        y = y - i32(1)
    days = (
        d
        + (i32(153) * m - i32(457)) / i32(5)
        + i32(365) * y
        + y / i32(4)
        - y / i32(100)
        + y / i32(400)
        - i32(719469)
    )
    t = i64(u64(86400) * u64(days))
    secs = i32(3600) * i32(tm.tm_hour) + i32(60) * i32(tm.tm_min) + i32(tm.tm_sec)
    return int(t + i64(secs))


# The settings of configure_rtc() (QEMU's file-scope statics of rtc.c).
_base = RtcBase.UTC
_clock = CLOCK_HOST
_ref_start_datetime = 0
_realtime_clock_offset = 0  # an int in QEMU
_host_datetime_offset = -1  # an int in QEMU; used only with base=DATE


def rtc_clock() -> QEMUClockType:
    """Return the clock that moves the RTC (QEMU's ``rtc_clock``).

    ``QEMU_CLOCK_HOST`` by default, ``QEMU_CLOCK_REALTIME`` with
    ``-rtc clock=rt``, ``QEMU_CLOCK_VIRTUAL`` with ``-rtc clock=vm``.  RTC
    models read it when they are realized, to arm their timers and to count
    the seconds that pass (``qemu_clock_get_ns(rtc_clock())``).
    """
    return _clock


def rtc_base() -> RtcBase:
    """Return where the RTC starts (``-rtc base``)."""
    return _base


def qemu_ref_timedate(clock: QEMUClockType) -> int:
    """Return the RTC's reference time on ``clock``, in seconds since 1970.

    The time ``base`` gives, moved on by ``clock`` since :func:`configure_rtc`
    ran: the virtual and real-time clocks count from the start date, the host
    clock is the host's time (shifted to the start date with ``base=DATE``).
    It is static in QEMU's ``rtc.c``; :func:`qemu_get_timedate` and
    :func:`qemu_timedate_diff` are built on it.

    Raises:
        ValueError: ``clock`` is ``QEMU_CLOCK_VIRTUAL_RT`` (QEMU asserts).
    """
    value = qemu_clock_get_ms(clock) // 1000
    if clock is CLOCK_REALTIME:
        return value - _realtime_clock_offset + _ref_start_datetime
    if clock is CLOCK_VIRTUAL:
        return value + _ref_start_datetime
    if clock is CLOCK_HOST:
        if _base is RtcBase.DATETIME:
            value -= _host_datetime_offset
        return value
    raise ValueError(
        f"qemu_ref_timedate({clock!r}): the RTC follows QEMU_CLOCK_HOST, "
        "QEMU_CLOCK_REALTIME or QEMU_CLOCK_VIRTUAL"
    )


def _broken_down(ti: int) -> StructTm:
    """``gmtime_r``/``localtime_r`` of ``ti`` as the base asks (the C library's)."""
    try:
        if _base is RtcBase.LOCALTIME:
            return StructTm.from_struct_time(time.localtime(ti))
        return StructTm.from_struct_time(time.gmtime(ti))
    except (OverflowError, OSError, ValueError):
        raise ValueError(
            f"the RTC time {ti} s is outside the dates the C library can show"
        ) from None


def qemu_get_timedate(offset: int = 0) -> StructTm:
    """Return the date an RTC shows, ``offset`` seconds ahead of the reference.

    The usual use is an RTC model's register read: the guest sees the date
    the ``-rtc`` option describes, moved on by :func:`rtc_clock`, plus the
    offset the guest set.  The date is UTC, or the host's local time with
    ``base=localtime``.

    Args:
        offset: seconds to add, a C ``int`` as in QEMU 7.2 (it wraps at 32
            bits).

    Raises:
        ValueError: the date is outside what the C library can break down.
    """
    return _broken_down(qemu_ref_timedate(_clock) + int(i32(offset)))


def qemu_timedate_diff(tm: StructTm) -> int:
    """Return how many seconds ``tm`` is ahead of the RTC's host reference.

    What an RTC model computes when the guest writes a date: the difference,
    which the ``RTC_CHANGE`` event reports.  ``tm`` is read as UTC, or with
    ``base=localtime`` as the host's local time (its ``tm_isdst`` is ignored
    and worked out from the time zone).  As in QEMU 7.2, the reference is the
    host clock's (:func:`qemu_ref_timedate` of ``QEMU_CLOCK_HOST``) whatever
    :func:`rtc_clock` is, and the result is a C ``int`` (it wraps at 32 bits).

    Raises:
        ValueError: ``tm`` is a local time the C library cannot convert.
    """
    if _base is RtcBase.LOCALTIME:
        local = dataclasses.replace(tm, tm_isdst=-1)  # the zone says if DST
        try:
            seconds = int(time.mktime(local.to_tuple()))
        except (OverflowError, OSError, ValueError):
            raise ValueError(
                f"{tm!r} is outside the local times the C library can convert"
            ) from None
    else:
        seconds = mktimegm(tm)
    return int(i32(seconds - qemu_ref_timedate(CLOCK_HOST)))


# sscanf's %d: C's isspace and isdigit in the C locale, and strtol's range.
_C_SPACE: Final = frozenset(" \t\n\v\f\r")
_C_DIGITS: Final = frozenset("0123456789")
_LONG_MAX: Final = (1 << 63) - 1


def _scan_ints(text: str, separators: str) -> list[int]:
    """C's ``sscanf(text, "%d<s0>%d<s1>...%d")``: the values converted.

    Each ``%d`` skips white space and reads an optional sign and decimal
    digits (saturated as ``strtol`` does, then truncated to an ``int``); each
    separator must match one character.  Scanning stops at the first
    mismatch; what follows the last conversion is ignored.
    """
    values: list[int] = []
    pos, end = 0, len(text)
    for i in range(len(separators) + 1):
        if i:
            if pos >= end or text[pos] != separators[i - 1]:
                break
            pos += 1
        while pos < end and text[pos] in _C_SPACE:
            pos += 1
        start = pos
        if pos < end and text[pos] in "+-":
            pos += 1
        digits = pos
        while pos < end and text[pos] in _C_DIGITS:
            pos += 1
        if pos == digits:
            break
        value = max(-_LONG_MAX - 1, min(_LONG_MAX, int(text[start:pos])))
        values.append(int(i32(value)))
    return values


def _start_datetime(startdate: str) -> int:
    """``configure_rtc_base_datetime``: the seconds of ``base=DATE``."""
    fields = _scan_ints(startdate, "--T::")
    if len(fields) != 6:
        date = _scan_ints(startdate, "--")
        fields = [*date, 0, 0, 0] if len(date) == 3 else []
    if fields:
        year, mon, mday, hour, minute, sec = fields
        tm = StructTm(
            tm_sec=sec,
            tm_min=minute,
            tm_hour=hour,
            tm_mday=mday,
            tm_mon=int(i32(mon) - i32(1)),
            tm_year=int(i32(year) - i32(1900)),
        )
        start = mktimegm(tm)
        if start != -1:
            return start
    raise Error(
        "invalid datetime format",
        hint="valid formats: '2006-06-17T16:01:21' or '2006-06-17'\n",
    )


def configure_rtc(opts: QemuOpts | None = None) -> None:
    """Apply the ``-rtc`` options (QEMU's ``configure_rtc``).

    The RTC's reference starts now: with ``clock=vm`` or ``clock=rt`` it moves
    on from here.  Without options (or keys) it is QEMU's default, ``base=utc``
    on the host clock; unlike QEMU, which reads the option once per process,
    a missing ``base`` is ``utc`` again, so a new machine in the same process
    starts from the defaults.

    Args:
        opts: the merged ``-rtc`` option lists (keys ``base``, ``clock``,
            ``driftfix``), or None for the defaults.

    Raises:
        Error: QEMU's messages: "invalid datetime format" (with the valid
            formats as hint) for a ``base`` that is not a date, "invalid
            option value 'X'" for a bad ``clock`` or ``driftfix``.  Nothing
            changes then.
    """
    if opts is None:
        opts = QemuOpts()
    base, clock, driftfix = (opts.get(key) for key in RTC_OPTS)
    new_base = RtcBase.UTC
    new_clock = CLOCK_HOST
    ref_start = qemu_clock_get_ms(CLOCK_HOST) // 1000
    realtime_offset = int(i32(qemu_clock_get_ms(CLOCK_REALTIME) // 1000))
    host_offset = -1
    if base is not None:
        if base == "utc":
            new_base = RtcBase.UTC
        elif base == "localtime":
            new_base = RtcBase.LOCALTIME
        else:
            new_base = RtcBase.DATETIME
            start = _start_datetime(base)
            host_offset = int(i32(ref_start - start))
            ref_start = start
    if clock is not None:
        clocks = {"host": CLOCK_HOST, "rt": CLOCK_REALTIME, "vm": CLOCK_VIRTUAL}
        if clock not in clocks:
            raise Error(f"invalid option value '{clock}'")
        new_clock = clocks[clock]
    if driftfix is not None and driftfix not in ("slew", "none"):
        raise Error(f"invalid option value '{driftfix}'")
    global _base, _clock, _ref_start_datetime, _realtime_clock_offset
    global _host_datetime_offset
    _base, _clock = new_base, new_clock
    _ref_start_datetime = ref_start
    _realtime_clock_offset = realtime_offset
    _host_datetime_offset = host_offset
    if driftfix == "slew" and object_class_by_name("mc146818rtc") is not None:
        qdev_prop_register_global("mc146818rtc", "lost_tick_policy", "slew")


configure_rtc()
