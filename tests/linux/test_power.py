"""Powering the guest off with QMP ``system_powerdown``.

(``poweroff`` at the shell is the last test of ``test_console.py``, on its guest.)
``system_powerdown`` is the power button of ``virt``: the board raises PL061 GPIO
line 3, the gpio-keys driver reports KEY_POWER, busybox acpid runs
/etc/acpi/PWRF/00000080, which runs ``poweroff``.
"""

from __future__ import annotations

import re

from tests.linux.conftest import GuestFactory

POWER_DOWN = re.compile(r"reboot: Power down")


def test_system_powerdown_presses_the_power_button(make_guest: GuestFactory) -> None:
    guest = make_guest()
    guest.boot()
    # One input device, the gpio-keys of the device tree's power key.
    devices = guest.run("cat /proc/bus/input/devices")
    assert re.findall(r'N: Name="(.*)"', devices) == ["gpio-keys"], devices
    guest.qmp.cmd("system_powerdown")
    guest.expect([re.compile(r"acpid: power button pressed, powering off")], 60)
    guest.expect([POWER_DOWN], 60)
    assert guest.wait_exit(30) == 0
