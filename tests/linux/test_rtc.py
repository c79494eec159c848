"""``-rtc base=``: the PL031 starts at the given date and Linux's clock follows it.

QEMU's PL031 counts from the ``-rtc`` base (the host's time by default); Linux's
rtc-pl031 driver is built into Debian's kernel, so the kernel sets its clock from it
at boot (hctosys) and ``date`` shows the base plus the time since the machine
started.
"""

from __future__ import annotations

import calendar
import re
import time

from tests.linux.conftest import GuestFactory

BASE = "2020-01-01T00:00:00"
BASE_EPOCH = calendar.timegm(time.strptime(BASE, "%Y-%m-%dT%H:%M:%S"))


def test_rtc_base_sets_the_guest_date(make_guest: GuestFactory) -> None:
    guest = make_guest("", ("-rtc", f"base={BASE}"))
    guest.boot()
    log = guest.run("dmesg")
    assert re.search(
        r"rtc-pl031 \S+: setting system clock to 2020-01-01T00:00:", log
    ), log
    now = int(guest.run("date -u +%s"))
    assert BASE_EPOCH <= now <= BASE_EPOCH + guest.elapsed() + 2
    assert guest.run("date -u +%Y-%m-%d").strip() == "2020-01-01"
    # The RTC itself reads the same time (hwclock reads /dev/rtc0).
    rtc = guest.run("hwclock -r -u")
    assert re.search(r"\bJan\b.*\b2020\b", rtc), rtc
