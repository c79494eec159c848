#!/usr/bin/env python3
"""HPET timer benchmark: host time per timer event.

Usage: python tests/bench/bench_hpet.py

On the pc board's HPET (24 timers, the I/O APIC's inputs latching), prints
the host time per timer event for

  (a) one 1 kHz periodic timer (edge-triggered, routed to IRQ2) over 10 s of
      virtual time, stepped with clock_step as qtest does;
  (b) all 24 timers firing at once: the same 1 kHz period and comparator
      for each (edge, routed to IRQ16-23 in turn), over 1 s of virtual time;
  (c) an empty timer callback on the same virtual clock, the floor of what
      any timer event costs here.

An "event" is one expiry of QEMU's virtual-clock timer, that is one run of
hpet_timer.  QEMU re-arms a periodic timer at the exact match for 1 us later
(the counter is not past the comparator yet), so a periodic timer stepped
exactly to its deadlines takes two events per period: (a) has 20000.
Ratios to (c) are printed.  The figures depend on the machine and its load:
they are printed, not judged.  The exit status is non-zero only if the
events stop happening.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hw.i386.pc import PcMachine
from hw.timer.hpet import TYPE_HPET
from qemu_api import bql
from qemu_api.memory import get_address_space_memory
from qemu_api.qdev import qdev_prop_register_global
from qemu_api.timer import (
    CLOCK_VIRTUAL,
    SCALE_NS,
    Timer,
    clock_step,
    qemu_clock_get_ns,
    virtual_clock_reset,
)

BASE = 0xFED0_0000
MS_TICKS = 100_000


def tn(n: int, reg: int) -> int:
    return BASE + 0x100 + 0x20 * n + reg


def run_hpet(timers: int, virtual_s: int) -> tuple[float, int]:
    mem = get_address_space_memory()
    mem.write(BASE + 0x10, 0, 4)
    mem.write(BASE + 0xF0, 0, 8)
    for n in range(24):
        mem.write(tn(n, 0), 0, 4)
    for n in range(timers):
        line = 2 if timers == 1 else 16 + n % 8
        mem.write(tn(n, 0), 0x4 | 0x8 | 0x40 | (line << 9), 4)
        mem.write(tn(n, 8), MS_TICKS, 8)
    virtual_clock_reset()
    mem.write(BASE + 0x10, 1, 4)
    events = 0
    end = virtual_s * 1_000_000_000
    t0 = time.perf_counter()
    while qemu_clock_get_ns(CLOCK_VIRTUAL) < end:
        clock_step()
        events += 1
    elapsed = time.perf_counter() - t0
    mem.write(BASE + 0x10, 0, 4)
    return elapsed, events


def run_empty(events: int) -> float:
    virtual_clock_reset()
    timer: Timer

    def tick() -> None:
        timer.mod_ns(qemu_clock_get_ns(CLOCK_VIRTUAL) + 500_000)

    timer = Timer(CLOCK_VIRTUAL, SCALE_NS, tick)
    timer.mod_ns(500_000)
    t0 = time.perf_counter()
    for _ in range(events):
        clock_step()
    elapsed = time.perf_counter() - t0
    timer.delete()
    return elapsed


def main() -> int:
    bql.bql_lock()
    qdev_prop_register_global(TYPE_HPET, "timers", "24")
    qdev_prop_register_global(TYPE_HPET, "hpet-intcap", "0xff0104")
    machine = PcMachine()
    machine.attach()
    machine.machine_init()
    machine.reset()
    one_s, one_n = run_hpet(1, 10)
    all_s, all_n = run_hpet(24, 1)
    empty_s = run_empty(one_n)
    empty_us = empty_s / one_n * 1e6
    one_us = one_s / one_n * 1e6
    # In (b) each clock_step runs the 24 expiries due at one instant.
    all_us = all_s / (all_n * 24) * 1e6
    print(f"(a) 1 kHz periodic, 10 s virtual: {one_n} events, {one_us:.2f} us/event,")
    print(f"    {one_s:.3f} s host for 10 s virtual ({one_us / empty_us:.1f}x empty)")
    print(
        f"(b) 24 timers at once, 1 s virtual: {all_n * 24} events, "
        f"{all_us:.2f} us/event ({all_us / empty_us:.1f}x empty)"
    )
    print(f"(c) empty timer callback: {empty_us:.2f} us/event")
    ok = one_n >= 19_000 and all_n >= 1_900
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
