"""The virt board's PL031 through the real launcher: -rtc, the alarm IRQ, RTC_CHANGE.

Each test starts ``pyqemu-system-aarch64 -M virt`` under qtest (see
tests/qtest/libqtest.py) and drives the RTC at 0x09010000, which the board
wires to shared peripheral interrupt 2 of ``/machine/gic``.  With
``-rtc clock=vm`` the counter moves only with ``clock_step``, so every value is
exact.  Expected values are QEMU's (hw/rtc/pl031.c; see the unit tests and the
differential test against QEMU 7.2).
"""

from __future__ import annotations

import time

from tests.qtest.libqtest import QTestState

BASE = 0x0901_0000
RTC_SPI = 2
DR, MR, LR, CR, IMSC, RIS, MIS, ICR = range(0, 0x20, 4)
SEC = 1_000_000_000
START = 1_577_836_800  # 2020-01-01T00:00:00 UTC
VM_RTC = "base=2020-01-01T00:00:00,clock=vm"


def launch(*args: str, qmp: bool = False) -> QTestState:
    return QTestState(["-M", "virt", "-nodefaults", "-S", *args], qmp=qmp)


def test_counter_follows_rtc_base_and_the_virtual_clock() -> None:
    with launch("-rtc", VM_RTC) as qts:
        assert qts.readl(BASE + DR) == START
        qts.clock_step(90 * SEC)
        assert qts.readl(BASE + DR) == START + 90
        assert qts.readl(BASE + CR) == 1


def test_default_rtc_is_the_hosts_utc_time() -> None:
    with launch() as qts:
        before = int(time.time())
        value = qts.readl(BASE + DR)
        assert before - 2 <= value <= int(time.time()) + 2


def test_alarm_raises_spi_2_and_icr_lowers_it() -> None:
    with launch("-rtc", VM_RTC) as qts:
        qts.irq_intercept_in("/machine/gic")
        qts.writel(BASE + IMSC, 1)
        qts.writel(BASE + MR, START + 10)
        qts.clock_step(10 * SEC - 1)
        assert not qts.get_irq(RTC_SPI)
        qts.clock_step(1)
        assert qts.get_irq(RTC_SPI)
        assert (qts.readl(BASE + RIS), qts.readl(BASE + MIS)) == (1, 1)
        qts.writel(BASE + ICR, 1)
        assert not qts.get_irq(RTC_SPI)


def test_lr_write_sends_rtc_change() -> None:
    with launch("-rtc", VM_RTC, qmp=True) as qts:
        qts.writel(BASE + LR, START + 3600)
        assert qts.readl(BASE + DR) == START + 3600
        qts.qmp("query-status")
        events = [e for e in qts.qmp_events if e.get("event") == "RTC_CHANGE"]
        assert len(events) == 1
        data = events[0]["data"]
        assert isinstance(data, dict)
        # QEMU's quirk: the absolute offset goes to qemu_get_timedate, so the
        # event reports START + 3600 seconds ahead (within the host second).
        assert data["offset"] in (START + 3599, START + 3600)
        assert data["qom-path"] == "/machine/pl031"


def test_state_survives_system_reset() -> None:
    with launch("-rtc", VM_RTC, qmp=True) as qts:
        qts.writel(BASE + LR, 1000)
        qts.writel(BASE + MR, 2000)
        qts.writel(BASE + IMSC, 1)
        qts.qmp("system_reset")
        assert qts.readl(BASE + DR) == 1000
        assert (qts.readl(BASE + MR), qts.readl(BASE + IMSC)) == (2000, 1)


def test_migrate_tick_offset_property() -> None:
    with launch("-global", "pl031.migrate-tick-offset=off", qmp=True) as qts:
        value = qts.qmp(
            "qom-get", path="/machine/pl031", property="migrate-tick-offset"
        )
        assert value is False
