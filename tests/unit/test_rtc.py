"""The RTC time source (qemu_api.rtc) and the -rtc option, against QEMU 7.2.

The host clocks are replaced by fake ones where a test needs to move them, so
the expected values are exact.  The oracle tests run Debian's QEMU 7.2 with
the same -rtc option and read its PL031 RTC (``-M virt``, 0x09010000) over
qtest: RTCDR is ``mktimegm(qemu_get_timedate(0))`` at realize time, moved on by
``rtc_clock`` (frozen under ``-S`` with ``clock=vm``).
"""

from __future__ import annotations

import calendar
import io
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from qapi.qapi_events import qapi_event_send_rtc_change
from qemu_api import rtc
from qemu_api.error import Error
from qemu_api.option import qemu_opts_parse
from qemu_api.qdev import DeviceState, prop_string, qdev_new
from qemu_api.qmp_event import qapi_event_add_listener
from qemu_api.qom import JSONValue
from qemu_api.rtc import (
    RtcBase,
    StructTm,
    configure_rtc,
    mktimegm,
    qemu_get_timedate,
    qemu_ref_timedate,
    qemu_timedate_diff,
    rtc_base,
    rtc_clock,
)
from qemu_api.testing import clock_step
from qemu_api.timer import CLOCK_HOST, CLOCK_REALTIME, CLOCK_VIRTUAL, CLOCK_VIRTUAL_RT
from system.monitor.qmp import qmp_to_json
from system.vl import CommandLineError, Emulator, _print_error, parse_command_line
from tests.qtest.libqtest import QTestState

NS: Final = 1_000_000_000
HOST_NOW: Final = 1_700_000_000  # 2023-11-14T22:13:20Z, the fake host time
START: Final = calendar.timegm((2006, 6, 17, 16, 1, 21))  # base=2006-06-17T16:01:21


class FakeClocks:
    """The host's wall clock and monotonic clock, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.host_ns = HOST_NOW * NS + 250_000_000
        self.mono_ns = 5_000 * NS
        monkeypatch.setattr(time, "time_ns", lambda: self.host_ns)
        monkeypatch.setattr(time, "monotonic_ns", lambda: self.mono_ns)

    def advance(self, seconds: int) -> None:
        self.host_ns += seconds * NS
        self.mono_ns += seconds * NS


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> FakeClocks:
    return FakeClocks(monkeypatch)


@pytest.fixture
def tz_est(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The host in US Eastern time (a POSIX rule: no tzdata needed)."""
    monkeypatch.setenv("TZ", "EST5EDT,M3.2.0,M11.1.0")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def configure(text: str) -> None:
    configure_rtc(qemu_opts_parse(text, accepted=frozenset(rtc.RTC_OPTS)))


def tm_of(seconds: int) -> StructTm:
    return StructTm.from_struct_time(time.gmtime(seconds))


# -- defaults and the reference time ------------------------------------------------


def test_defaults_are_utc_on_the_host_clock(clocks: FakeClocks) -> None:
    configure_rtc()
    assert rtc_clock() is CLOCK_HOST
    assert rtc_base() is RtcBase.UTC
    assert qemu_ref_timedate(CLOCK_HOST) == HOST_NOW
    assert qemu_get_timedate(0) == tm_of(HOST_NOW)


def test_clock_option_selects_rtc_clock() -> None:
    for value, clock in (("host", CLOCK_HOST), ("rt", CLOCK_REALTIME)):
        configure(f"clock={value}")
        assert rtc_clock() is clock
    configure("clock=vm")
    assert rtc_clock() is CLOCK_VIRTUAL
    configure("")
    assert rtc_clock() is CLOCK_HOST  # a new configuration starts from defaults


def test_reference_of_each_clock(clocks: FakeClocks) -> None:
    configure("base=2006-06-17T16:01:21")
    clocks.advance(10)
    clock_step(3 * NS + NS // 2)
    assert qemu_ref_timedate(CLOCK_VIRTUAL) == START + 3  # whole seconds
    assert qemu_ref_timedate(CLOCK_REALTIME) == START + 10
    assert qemu_ref_timedate(CLOCK_HOST) == START + 10
    with pytest.raises(ValueError, match="QEMU_CLOCK_HOST, QEMU_CLOCK_REALTIME"):
        qemu_ref_timedate(CLOCK_VIRTUAL_RT)


# -- base ------------------------------------------------------------------------------


def test_base_utc_shows_host_time_in_utc(clocks: FakeClocks, tz_est: None) -> None:
    configure("base=utc")
    tm = qemu_get_timedate(0)
    assert tm == StructTm(20, 13, 22, 14, 10, 123, 2, 317, 0)  # Tue 2023-11-14
    assert qemu_get_timedate(-3600).tm_hour == 21


def test_base_localtime_shows_host_local_time(clocks: FakeClocks, tz_est: None) -> None:
    configure("base=localtime")
    assert rtc_base() is RtcBase.LOCALTIME
    # 22:13:20 UTC is 17:13:20 EST (UTC-5, no DST in November)
    assert qemu_get_timedate(0) == StructTm(20, 13, 17, 14, 10, 123, 2, 317, 0)
    # 180 days earlier it is summer: EDT, UTC-4
    summer = qemu_get_timedate(-180 * 86400)
    assert (summer.tm_mon, summer.tm_mday, summer.tm_hour) == (4, 18, 18)
    assert summer.tm_isdst == 1


def test_base_date_starts_at_the_date(clocks: FakeClocks) -> None:
    configure("base=2006-06-17T16:01:21")
    assert rtc_base() is RtcBase.DATETIME
    assert qemu_get_timedate(0) == StructTm(21, 1, 16, 17, 5, 106, 6, 167, 0)
    clocks.advance(60)  # clock=host: the date moves with the host clock
    assert mktimegm(qemu_get_timedate(0)) == START + 60
    configure("base=2006-06-17")
    assert mktimegm(qemu_get_timedate(0)) == START - (16 * 3600 + 61 + 20)


def test_base_date_is_utc_whatever_the_zone(clocks: FakeClocks, tz_est: None) -> None:
    configure("base=2006-06-17T16:01:21")
    assert qemu_get_timedate(0).tm_hour == 16


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        # sscanf("%d-%d-%dT%d:%d:%d"), then "%d-%d-%d": white space before a
        # number, signs, trailing text and a half time are all accepted
        (" 2006-6-7", (2006, 6, 7, 0, 0, 0)),
        ("2006-06-17T", (2006, 6, 17, 0, 0, 0)),
        ("2006-06-17T16:01", (2006, 6, 17, 0, 0, 0)),
        ("2006-06-17T16:01:21junk", (2006, 6, 17, 16, 1, 21)),
        ("+2006-06-17", (2006, 6, 17, 0, 0, 0)),
        ("2006-06-17 16:01:21", (2006, 6, 17, 0, 0, 0)),
    ],
)
def test_base_date_is_read_as_sscanf_reads_it(
    text: str, fields: tuple[int, ...]
) -> None:
    configure(f"base={text}")
    assert qemu_ref_timedate(CLOCK_VIRTUAL) == calendar.timegm(fields)


def test_base_date_fields_out_of_range_roll_over() -> None:
    # mktimegm's arithmetic: month 13 is January of the next year
    configure("base=2006-13-45T25:61:61,clock=vm")
    expected = calendar.timegm((2007, 1, 1, 0, 0, 0)) + 44 * 86400 + 25 * 3600 + 3721
    assert qemu_ref_timedate(CLOCK_VIRTUAL) == expected


@pytest.mark.parametrize(
    "text", ["bogus", "", "on", "2006-06", "2006/06/17", "1969-12-31T23:59:59"]
)
def test_bad_base_date(text: str) -> None:
    configure("base=2006-06-17,clock=vm")
    with pytest.raises(Error, match=r"^invalid datetime format$") as ei:
        configure(f"base={text},clock=host")
    assert ei.value.hint == "valid formats: '2006-06-17T16:01:21' or '2006-06-17'\n"
    # nothing changed
    assert (rtc_base(), rtc_clock()) == (RtcBase.DATETIME, CLOCK_VIRTUAL)


@pytest.mark.parametrize("text", ["clock=bogus", "clock=", "driftfix=bogus"])
def test_bad_clock_or_driftfix(text: str) -> None:
    value = text.split("=")[1]
    with pytest.raises(Error, match=rf"^invalid option value '{value}'$"):
        configure(text)


def test_errors_come_in_qemus_order() -> None:
    with pytest.raises(Error, match="invalid datetime format"):
        configure("clock=bogus,base=bogus")
    with pytest.raises(Error, match="invalid option value 'x'"):
        configure("driftfix=y,clock=x")


# -- clock -----------------------------------------------------------------------------


def test_clock_vm_follows_the_virtual_clock_only(clocks: FakeClocks) -> None:
    configure("base=2006-06-17T16:01:21,clock=vm")
    before = qemu_get_timedate(0)
    clocks.advance(3600)  # the host's time does not move it
    assert qemu_get_timedate(0) == before
    clock_step(NS - 1)
    assert qemu_get_timedate(0) == before
    clock_step(1)
    assert mktimegm(qemu_get_timedate(0)) == START + 1
    clock_step(86400 * NS)
    tm = qemu_get_timedate(0)
    assert (tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec) == (18, 16, 1, 22)


def test_clock_host_follows_host_time(clocks: FakeClocks) -> None:
    configure("clock=host")
    clock_step(3600 * NS)  # the virtual clock does not move it
    assert mktimegm(qemu_get_timedate(0)) == HOST_NOW
    clocks.advance(3600)
    assert mktimegm(qemu_get_timedate(0)) == HOST_NOW + 3600


def test_clock_rt_follows_the_monotonic_clock(clocks: FakeClocks) -> None:
    configure("clock=rt")
    assert mktimegm(qemu_get_timedate(0)) == HOST_NOW
    # the wall clock jumps back an hour (NTP), the monotonic clock goes on
    clocks.mono_ns += 7 * NS
    clocks.host_ns -= 3600 * NS
    assert mktimegm(qemu_get_timedate(0)) == HOST_NOW + 7


def test_offset_is_a_c_int(clocks: FakeClocks) -> None:
    configure("clock=vm")
    assert qemu_get_timedate((1 << 32) + 5) == qemu_get_timedate(5)
    assert qemu_get_timedate(0x8000_0000) == qemu_get_timedate(-0x8000_0000)


# -- qemu_timedate_diff ----------------------------------------------------------------


def test_timedate_diff_inverts_get_timedate(clocks: FakeClocks) -> None:
    for opts in ("base=utc", "base=2006-06-17T16:01:21"):
        configure(opts)
        for offset in (0, 100, -86400, 1_000_000):
            assert qemu_timedate_diff(qemu_get_timedate(offset)) == offset


def test_timedate_diff_uses_the_host_reference(clocks: FakeClocks) -> None:
    # QEMU 7.2 compares with the host clock's reference whatever rtc_clock is
    configure("base=2006-06-17T16:01:21,clock=vm")
    clock_step(50 * NS)
    clocks.advance(20)
    assert qemu_timedate_diff(tm_of(START + 100)) == 80


def test_timedate_diff_localtime(clocks: FakeClocks, tz_est: None) -> None:
    configure("base=localtime")
    now = qemu_get_timedate(0)
    assert qemu_timedate_diff(now) == 0
    # tm_isdst is ignored: the zone decides (here no DST, whatever the field says)
    now.tm_isdst = 1
    assert qemu_timedate_diff(now) == 0
    summer = qemu_get_timedate(-180 * 86400)
    summer.tm_isdst = 0
    assert qemu_timedate_diff(summer) == -180 * 86400


def test_timedate_diff_is_a_c_int(clocks: FakeClocks) -> None:
    configure("base=utc")
    far = tm_of(HOST_NOW + (1 << 31) + 10)  # 68 years ahead: wraps, as in 7.2
    assert qemu_timedate_diff(far) == -(1 << 31) + 10


def test_localtime_outside_the_c_library_range(tz_est: None) -> None:
    configure("base=localtime")
    huge = StructTm(tm_year=(1 << 31) - 1, tm_mon=11, tm_mday=31)
    with pytest.raises(ValueError, match="outside the local times"):
        qemu_timedate_diff(huge)


# -- mktimegm and struct tm ------------------------------------------------------------


def test_mktimegm_matches_timegm() -> None:
    for year in (1970, 1999, 2000, 2004, 2038, 2100, 2400, 9999):
        for mon in (1, 2, 3, 12):
            for day in (1, 28):
                fields = (year, mon, day, 23, 59, 58)
                tm = StructTm(58, 59, 23, day, mon - 1, year - 1900)
                assert mktimegm(tm) == calendar.timegm(fields), fields


def test_struct_tm_conventions() -> None:
    tm = tm_of(0)
    assert tm == StructTm(0, 0, 0, 1, 0, 70, 4, 0, 0)  # Thursday January 1st
    assert tm.to_tuple() == (1970, 1, 1, 0, 0, 0, 3, 1, 0)
    assert StructTm.from_struct_time(time.gmtime(86400 * 3)).tm_wday == 0  # Sunday
    assert repr(tm) == "StructTm(1970-01-01 00:00:00, wday=4, yday=0, isdst=0)"


# -- driftfix --------------------------------------------------------------------------


class FakeMC146818(DeviceState, type_name="mc146818rtc"):
    """A stand-in with the property -rtc driftfix=slew sets (TYPE_MC146818_RTC)."""

    user_creatable = False
    lost_tick_policy = prop_string("lost_tick_policy", default="discard")


def test_driftfix_slew_sets_the_mc146818_global() -> None:
    configure("driftfix=none")
    dev = qdev_new("mc146818rtc")
    assert isinstance(dev, FakeMC146818)
    assert dev.lost_tick_policy == "discard"
    configure("driftfix=slew")
    dev = qdev_new("mc146818rtc")
    assert isinstance(dev, FakeMC146818)
    assert dev.lost_tick_policy == "slew"


# -- the command line ------------------------------------------------------------------


def start(*rtc_args: str) -> tuple[int, str, str]:
    """Build a machine with ``-rtc`` arguments in-process; return (status, out, err)."""
    argv = ["-M", "none", "-S", "-nodefaults", "-accel", "qtest"]
    for arg in rtc_args:
        argv += ["-rtc", arg]
    out, err = io.StringIO(), io.StringIO()
    emu = Emulator(parse_command_line("aarch64", argv), out, err, "pyqemu")
    try:
        emu.start()
    except CommandLineError as e:
        _print_error(err, "pyqemu-system-aarch64", e)
        return 1, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_command_line_clock_vm_and_clock_step(clocks: FakeClocks) -> None:
    assert start("base=2006-06-17T16:01:21,clock=vm") == (0, "", "")
    assert rtc_clock() is CLOCK_VIRTUAL
    assert mktimegm(qemu_get_timedate(0)) == START
    clock_step(5 * NS)  # what the qtest clock_step command runs
    assert mktimegm(qemu_get_timedate(0)) == START + 5


def test_command_line_options_merge(clocks: FakeClocks) -> None:
    assert start("base=2006-06-17", "clock=bogus", "clock=vm")[0] == 0
    assert (rtc_base(), rtc_clock()) == (RtcBase.DATETIME, CLOCK_VIRTUAL)


QEMU_NAME: Final = "qemu-system-aarch64"


def qemu() -> Path:
    path = shutil.which(QEMU_NAME)
    if path is None:
        pytest.fail(
            f"{QEMU_NAME} (Debian's QEMU 7.2, the oracle) is not installed: run "
            "'apt-get install -y qemu-system-arm'",
            pytrace=False,
        )
    return Path(path)


def qemu_error(*rtc_args: str) -> tuple[int, str, str]:
    argv = [str(qemu()), "-M", "none", "-display", "none", "-S"]
    for arg in rtc_args:
        argv += ["-rtc", arg]
    res = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return (
        res.returncode,
        res.stdout,
        res.stderr.replace(QEMU_NAME, "pyqemu-system-aarch64"),
    )


@pytest.mark.parametrize(
    "args",
    [
        ("base=bogus",),
        ("base=",),
        ("base=1969-12-31T23:59:59",),
        ("base=utc,clock=bogus",),
        ("clock=vm,driftfix=bogus",),
        ("bogus=1",),
        ("base=utc,bogus=1",),
        ("=x",),
        ("base=bad,clock=bad",),
        ("base=utc", "clock=bogus"),
        ("help",),
        ("base=utc,help",),
    ],
)
def test_command_line_errors_are_qemus(args: tuple[str, ...]) -> None:
    assert start(*args) == qemu_error(*args)


def test_short_form_base_differs_only_by_qemus_warning() -> None:
    # QEMU warns about the deprecated short form 'base' (base=on) first
    status, out, err = start("base")
    qemu_status, qemu_out, qemu_err = qemu_error("base")
    warning = [
        (
            "pyqemu-system-aarch64: -rtc base: warning: short-form boolean option "
            "'base' deprecated\n"
        ),
        "Please use base=on instead\n",
    ]
    assert qemu_err.splitlines(keepends=True)[:2] == warning
    assert (status, out, err) == (
        qemu_status,
        qemu_out,
        qemu_err[len("".join(warning)) :],
    )


def test_help_text_is_qemus() -> None:
    from system.vl import usage

    res = subprocess.run(
        [str(qemu()), "-help"], capture_output=True, text=True, timeout=30, check=True
    )
    lines = res.stdout.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("-rtc "))
    assert "\n".join(lines[i : i + 2]) + "\n" in usage("pyqemu-system-aarch64")


# -- QEMU 7.2 as the oracle: its PL031 shows mktimegm(qemu_get_timedate(0)) ----------


PL031_DR: Final = 0x09010000
PL031_LR: Final = 0x09010008


def qemu_rtcdr(rtc_arg: str, env: dict[str, str]) -> QTestState:
    return QTestState(
        ["-M", "virt", "-S", "-nodefaults", "-rtc", rtc_arg],
        binary=qemu(),
        accel="tcg",
        env=env,
    )


def test_rtc_time_is_qemus(tz_est: None) -> None:
    env = {"TZ": "EST5EDT,M3.2.0,M11.1.0"}
    cases = [
        "base=2006-06-17T16:01:21,clock=vm",
        "base=2006-13-45T25:61:61,clock=vm",
        "base= 2006-6-7T1:2:3junk,clock=vm",
        "base=-1-1-1,clock=vm",
        "base=utc,clock=vm",
        "base=localtime,clock=vm",
    ]
    sessions = [qemu_rtcdr(arg, env) for arg in cases]  # start them together
    try:
        for arg, qts in zip(cases, sessions, strict=True):
            expected = qts.readl(PL031_DR)
            configure(arg)
            ours = mktimegm(qemu_get_timedate(0)) & 0xFFFF_FFFF
            if "base=utc" in arg or "base=localtime" in arg:
                assert abs(ours - expected) <= 5, (arg, ours, expected)
            else:
                assert ours == expected, (arg, ours, expected)
    finally:
        for qts in sessions:
            qts.quit()


def test_rtc_change_event_is_qemus() -> None:
    """A guest write to the PL031 load register sends RTC_CHANGE in QEMU 7.2."""
    rtc_arg = "base=2006-06-17T16:01:21,clock=vm"
    with QTestState(
        ["-M", "virt", "-S", "-nodefaults", "-rtc", rtc_arg],
        binary=qemu(),
        accel="tcg",
        qmp=True,
    ) as qts:
        qts.writel(PL031_LR, START + 3600)
        qts.qmp("query-status")  # collects the events sent meanwhile
        (event,) = [e for e in qts.qmp_events if e["event"] == "RTC_CHANGE"]
    data = event["data"]
    assert isinstance(data, dict)
    # What QEMU 7.2's pl031_write(RTC_LR) computes, through the API: the load
    # moves its tick_offset to the value written (the virtual clock is at 0),
    # then RTC_CHANGE reports qemu_timedate_diff(qemu_get_timedate(tick_offset)).
    configure(rtc_arg)
    tick_offset = mktimegm(qemu_get_timedate(0))
    tick_offset += START + 3600 - tick_offset
    seen: list[dict[str, JSONValue]] = []
    qapi_event_add_listener(lambda name, d: seen.append(d))
    qapi_event_send_rtc_change(
        offset=qemu_timedate_diff(qemu_get_timedate(tick_offset)),
        qom_path=str(data["qom-path"]),
    )
    (ours,) = seen
    # the same members, in the same order on the wire
    assert list(json.loads(qmp_to_json(ours))) == list(data) == ["offset", "qom-path"]
    offset = ours["offset"]
    assert isinstance(offset, int)
    assert abs(offset - int(str(data["offset"]))) <= 1  # the host clock may tick
