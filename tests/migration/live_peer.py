"""One side of a live migration test, run as its own process.

Usage: python -m tests.migration.live_peer source|dest|reference SOCKET

All three build the same virt board with the test device, whose periodic
timer runs while virtual time advances in steps; registers are read through
the address space after each step, as a guest (or qtest) would.

- ``source`` runs 10 steps, then migrates to ``unix:SOCKET`` mid-period;
- ``dest`` waits on ``unix:SOCKET``, loads, then runs 10 more steps;
- ``reference`` runs 20 steps without migrating.

Each prints one JSON object: the register reads after each step, and the
virtual time.
"""

from __future__ import annotations

import json
import sys

from qemu_api import bql
from qemu_api.memory import get_address_space_memory
from qemu_api.migration.uri import migrate, migrate_get_current, migrate_incoming
from qemu_api.timer import CLOCK_VIRTUAL, clock_step, qemu_clock_get_ns
from tests.migration.machine import MIGDEV_BASE, make_virt, write_pattern

STEP_NS = 1000
PERIOD_NS = 700


def reads() -> list[int]:
    space = get_address_space_memory()
    return [space.read(MIGDEV_BASE + off, 4) for off in (0x0, 0x4, 0x8, 0xC)]


def run(steps: int) -> list[list[int]]:
    trace = []
    for _ in range(steps):
        clock_step(STEP_NS)
        trace.append(reads())
    return trace


def main(mode: str, path: str) -> int:
    bql.bql_lock()
    make_virt(ram_size=8 << 20)
    out: dict[str, object] = {}
    if mode == "dest":
        result = migrate_incoming(f"unix:{path}").wait()
        out["runstate"] = result.runstate
        out["loaded"] = result.loaded
        out["at"] = qemu_clock_get_ns(CLOCK_VIRTUAL)
        buf = bytearray(4)
        get_address_space_memory().read_buf(0x4000_0000 + 0x3000, buf)
        out["ram"] = buf.decode(errors="replace")
        out["trace"] = run(10)
    else:
        space = get_address_space_memory()
        space.write(MIGDEV_BASE + 0xC, 0x5A5A, 4)
        space.write(MIGDEV_BASE + 0x8, PERIOD_NS, 4)
        write_pattern(0x3000, b"live")
        before = run(10)
        out["at"] = qemu_clock_get_ns(CLOCK_VIRTUAL)
        if mode == "source":
            out["trace"] = before
            migrate(f"unix:{path}", runstate="running")
            out["status"] = migrate_get_current().status.value
        else:
            out["trace"] = run(10)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
