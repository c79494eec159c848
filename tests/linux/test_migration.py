"""Live migration of the running guest between two launcher processes.

The shell of the source runs a loop that prints numbered lines; in the middle of it
QMP ``migrate`` moves the machine to a destination started with ``-incoming``, whose
console goes on with the next line. What the two consoles printed, one after the
other, must be every line exactly once, in order: none lost, none repeated (the
UART's state and the characters it had not sent yet travel with the machine).
"""

from __future__ import annotations

import re
import time

from tests.linux.conftest import GuestFactory
from tests.linux.guest import wait_for_path

LOOP = 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.05; done'
TICK = re.compile(r"tick (\d+)\r*\n")


def test_migration_keeps_the_printing_loop(make_guest: GuestFactory) -> None:
    source = make_guest("source")
    source.boot()
    sock = source.tmpdir / "migration.sock"
    destination = make_guest("destination", ("-incoming", f"unix:{sock}"))
    destination.start()
    wait_for_path(sock, 60 * destination.timeout_scale)

    source.console.sendline(LOOP)
    source.expect([re.compile(r"tick 20\r*\n")], 60)
    source.qmp.cmd("migrate", uri=f"unix:{sock}")
    deadline = time.monotonic() + 120 * source.timeout_scale
    while True:
        status = source.qmp.cmd("query-migrate")
        assert isinstance(status, dict)
        if status.get("status") == "completed":
            break
        assert status.get("status") not in ("failed", "cancelled"), status
        assert time.monotonic() < deadline, f"migration did not complete: {status}"
        time.sleep(0.1)
    assert source.qmp.cmd("query-status") == {
        "status": "postmigrate",
        "singlestep": False,
        "running": False,
    }

    # The source printed its last characters before it stopped; the destination
    # goes on from there.
    source.drain()
    before = source.output()
    last = int(TICK.findall(before)[-1])
    destination.expect([re.compile(rf"tick {last + 20}\r*\n")], 60)
    destination.console.sendcontrol("c")
    destination.expect_prompt()
    assert destination.run("echo still-here").strip() == "still-here"

    combined = before[before.index(LOOP) + len(LOOP) :] + destination.output()
    ticks = [int(n) for n in TICK.findall(combined)]
    assert ticks == list(range(len(ticks))), ticks
    assert len(ticks) > last + 20

    destination.console.sendline("poweroff")
    assert destination.wait_exit(60) == 0
