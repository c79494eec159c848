"""The guest at its console: boot to the shell, typing, commands, interrupts, time.

One boot serves every test of this file (a module-scoped guest); the last one
powers it off with ``poweroff`` at the shell. The expected
interrupt numbers come from QEMU's ``virt`` board (hw/arm/virt.c: the UART is SPI 1,
the RTC SPI 2, the GPIO controller SPI 7; the EL1 virtual timer is PPI 11, which
the GIC numbers 16 + 11 = 27, SPIs from 32) and from Linux's names for its drivers
(``arch_timer``, ``uart-pl011``, ``rtc-pl031``, the ``GIC-0`` irqchip of a GICv2,
the "GPIO Key Poweroff" key of QEMU's device tree on PL061 line 3).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.linux.guest import BootTimes, GuestFiles, LinuxGuest


@pytest.fixture(scope="module")
def booted(
    launcher: str, guest_files: GuestFiles, timeout_scale: float
) -> Iterator[tuple[LinuxGuest, BootTimes]]:
    tag = "pyqemu" if "pyqemu" in launcher else "qemu"
    with LinuxGuest(
        launcher, guest_files, name=f"{tag}-console", timeout_scale=timeout_scale
    ) as guest:
        times = guest.boot()
        print(f"\n{tag}: {times.describe()}")
        yield guest, times


@pytest.fixture
def guest(booted: tuple[LinuxGuest, BootTimes]) -> LinuxGuest:
    return booted[0]


def test_boot_reaches_the_shell(
    booted: tuple[LinuxGuest, BootTimes], guest_files: GuestFiles
) -> None:
    guest, times = booted
    assert times.prompt is not None
    # /init ran on the fetched kernel, then loaded its modules, then started the shell.
    assert times.release == guest_files.release
    assert times.init_uptime is not None
    assert times.modules_uptime is not None
    assert times.shell_uptime is not None
    assert times.init_uptime <= times.modules_uptime <= times.shell_uptime
    assert guest.run("uname -r").strip() == guest_files.release


def test_command_and_answer(guest: LinuxGuest) -> None:
    assert guest.run("uname -m").strip() == "aarch64"
    assert guest.run("hostname").strip() == "pyqemu"
    assert guest.run("echo $((6 * 7))").strip() == "42"
    rc, _ = guest.run_rc("false")
    assert rc == 1


def test_typing_and_line_editing(guest: LinuxGuest) -> None:
    # Typed one key at a time, with a backspace (DEL) that the line editor applies.
    for key in "echo typed-abX\x7fc":
        guest.console.send(key)
        time.sleep(0.01)
    guest.console.send("\r")
    guest.expect([re.compile(r"\ntyped-abc\r*\n")], 30)
    guest.expect_prompt()


def test_job_control(guest: LinuxGuest) -> None:
    # The shell owns the console as its controlling terminal: jobs and fg work.
    out = guest.run("sleep 5 & jobs; kill %1; wait")
    assert re.search(r"\[1\]\+?\s+Running\s+sleep 5", out), out


def interrupts(guest: LinuxGuest) -> dict[str, tuple[int, str, str]]:
    """/proc/interrupts by device name: (count, irq chip, hardware irq)."""
    table = {}
    for line in guest.run("cat /proc/interrupts").splitlines()[1:]:
        m = re.match(
            r"\s*(\d+):\s+(\d+)\s+(\S+)\s+(\d+)\s+(?:Level|Edge)\s+(.+?)\s*$", line
        )
        if m:
            table[m.group(5)] = (int(m.group(2)), m.group(3), m.group(4))
    return table


def test_interrupts_on_the_gic(guest: LinuxGuest) -> None:
    before = interrupts(guest)
    assert before["arch_timer"][1:] == ("GIC-0", "27"), before
    assert before["uart-pl011"][1:] == ("GIC-0", "33"), before
    assert before["rtc-pl031"][1:] == ("GIC-0", "34"), before
    assert before["GPIO Key Poweroff"][1:] == ("9030000.pl061", "3"), before
    # The UART interrupted for the characters typed so far; the timer keeps ticking.
    assert before["uart-pl011"][0] > 0
    guest.run("sleep 0.5")
    after = interrupts(guest)
    assert after["arch_timer"][0] > before["arch_timer"][0]
    assert after["uart-pl011"][0] > before["uart-pl011"][0]


def test_date_is_the_rtc_time(guest: LinuxGuest) -> None:
    # The kernel set its clock from the PL031 at boot (hctosys); the RTC follows the
    # host's clock by default, so the guest's date is the host's.
    log = guest.run("dmesg")
    assert re.search(r"rtc-pl031 \S+: setting system clock to", log), log
    assert "pl031" in guest.run("cat /sys/class/rtc/rtc0/name")
    host_before = time.time()
    guest_now = int(guest.run("date -u +%s"))
    host_after = time.time()
    assert host_before - guest.elapsed() - 2 <= guest_now <= host_after + 2
    assert abs(guest_now - host_before) < 5 * guest.timeout_scale + 2


def round_trip(guest: LinuxGuest, command: str) -> float:
    start = time.monotonic()
    guest.run(command)
    return time.monotonic() - start


def test_sleep_takes_one_second(guest: LinuxGuest) -> None:
    # The host's clock around `sleep 1`, less the time of a command that does not
    # sleep (typing, echo, the prompt): one second, as the guest's timer counts it.
    base = min(round_trip(guest, "true") for _ in range(3))
    slept = round_trip(guest, "sleep 1") - base
    assert 0.9 <= slept <= 1.0 + 0.5 * guest.timeout_scale, slept
    up = guest.run("cat /proc/uptime; sleep 1; cat /proc/uptime").split()
    assert 1.0 <= float(up[2]) - float(up[0]) <= 1.0 + 0.5 * guest.timeout_scale, up


POWER_DOWN = re.compile(r"reboot: Power down")


def test_poweroff_ends_the_launcher(guest: LinuxGuest) -> None:
    # busybox init stops every process and asks the kernel to power off: Linux
    # calls PSCI SYSTEM_OFF and the launcher exits with status 0. Last in the file:
    # it ends the shared guest.
    guest.console.sendline("poweroff")
    guest.expect([POWER_DOWN], 60)
    assert guest.wait_exit(30) == 0
