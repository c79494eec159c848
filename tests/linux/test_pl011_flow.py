"""Linux's amba-pl011 driver sends a large file through a slow, stalling console.

The guest writes 64 KiB of random data (base64) to its console, ttyAMA0, with
hardware flow control on (``stty crtscts``: the driver sets CR.RTSEn and
CR.CTSEn); the host side reads it slowly and stops reading for a few seconds
in the middle. The data must arrive whole and in order (its MD5 is the one the
guest computed). On pyqemu the UART runs with ``-global pl011.x-tx-fifo=on``:
the driver fills the transmit FIFO from its TX interrupt at the IFLS level,
the stalled host shows as CTS deasserted, and the machine keeps running (QMP
answers while the console is not read). QEMU 7.2 has no such option: there the
same transfer checks the test itself (QEMU waits in the chardev instead).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable

import pexpect

from tests.linux.conftest import GuestFactory
from tests.linux.guest import PROMPT

SIZE = 64 << 10


def read_slowly(
    console: pexpect.spawn[str], end: str, pause_at: int, pause: Callable[[], None]
) -> str:
    """Read 512 characters at a time until ``end``; call ``pause`` once, midway."""
    out: list[str] = []
    got = 0
    paused = False
    deadline = time.monotonic() + 600
    while end not in "".join(out[-4:]):
        try:
            part = console.read_nonblocking(512, timeout=30)
        except pexpect.TIMEOUT:
            part = ""
        out.append(part)
        got += len(part)
        if got >= pause_at and not paused:
            paused = True
            pause()
        time.sleep(0.002)
        assert time.monotonic() < deadline, f"only {got} characters arrived"
    return "".join(out)


def test_large_file_under_flow_control(make_guest: GuestFactory, launcher: str) -> None:
    pyqemu = "pyqemu" in launcher
    extra = ("-global", "pl011.x-tx-fifo=on") if pyqemu else ()
    guest = make_guest("", extra)
    guest.boot()
    guest.run("stty crtscts")
    assert "crtscts" in guest.run("stty -a").replace("-crtscts", "")
    guest.run(f"head -c {SIZE} /dev/urandom > /tmp/blob")
    md5 = guest.run("md5sum /tmp/blob").split()[0]
    assert re.fullmatch(r"[0-9a-f]{32}", md5)

    answered: list[float] = []

    def stalled_peer() -> None:
        # The host stops reading the console; the guest keeps writing until
        # the buffers fill. The machine must go on meanwhile (pyqemu).
        time.sleep(3)
        if pyqemu:
            t0 = time.monotonic()
            status = guest.qmp.cmd("query-status")
            answered.append(time.monotonic() - t0)
            assert status == {"status": "running", "singlestep": False, "running": True}

    guest.console.sendline("echo @BE''GIN@; base64 /tmp/blob; echo @EN''D@")
    text = read_slowly(guest.console, "@END@", SIZE // 2, stalled_peer)
    body = text.split("@BEGIN@", 1)[1].split("@END@", 1)[0]
    data = base64.b64decode("".join(body.split()))
    assert len(data) == SIZE
    assert hashlib.md5(data).hexdigest() == md5
    # The last read may have taken the prompt after the end mark, or part of it.
    tail = text.split("@END@", 1)[1]
    while not PROMPT.search(tail):
        tail += guest.console.read_nonblocking(512, timeout=120)
    if pyqemu:
        assert answered
        assert answered[0] < 5.0
        # The driver saw the FIFO: the console's TX interrupts were counted.
        assert guest.run("grep -c uart-pl011 /proc/interrupts").strip() != "0"
