#!/usr/bin/env python3
"""MMIO dispatch benchmark: the cost of a guest access through an AddressSpace.

Usage: python tests/bench/bench_mmio.py

Prints nanoseconds per access for

  (a) a direct call of a trivial device read method,
  (b) AddressSpace.read dispatched to that device, 1 region mapped,
  (c) the same with 64 devices mapped (access to one in the middle),
  (d) a 1-byte read of a region that implements only 4-byte accesses
      (QEMU's widening in access_with_adjusted_size: the slow path),
  (e) AddressSpace.write to the device among 64 regions,
  (f) a call of an empty Python method with the same arguments,
  (g) AddressSpace.read of a device whose registers are a
      qemu_api.register.RegisterMap over a BqlStruct (the decode table, the
      BQL and borrow checks of the field), among 64 regions,
  (h) AddressSpace.write to that device,
  (i) a direct call of that map's read callback,

then the ratios to (a).  The target is (c) within 4x of (a).  The figures
exclude the timing loop; the ratio is also shown with the loop counted in
both, as a caller's own loop sees it.  (a + f) is the floor of any dispatch
written in Python: one call into the address space plus the device call.

It also checks that the dispatch path allocates nothing per access: for
tracemalloc running, a million reads and writes must not raise the traced peak
(an int or any other non-freelist object made per access would), and must not
change sys.getallocatedblocks().  A device that allocates on purpose is run
first to show that the check sees allocations.  The exit status is non-zero
only if that check fails; the timings are figures, not pass/fail (they depend
on the machine and its load).
"""

from __future__ import annotations

import gc
import itertools
import sys
import timeit
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from qemu_api import bql
from qemu_api.bql import BqlStruct
from qemu_api.memory import (
    AddressSpace,
    MemoryRegion,
    MemoryRegionOps,
    OpsImpl,
)
from qemu_api.register import RW, W1C, Decode, R, Register, RegisterMap

BASE = 0x0900_0000
STRIDE = 0x1_0000
NUMBER = 100_000
REPEAT = 15
ALLOC_ACCESSES = 1_000_000
ALLOC_SAMPLES = 20_000


class Device:
    """A device whose registers are a constant and a sink."""

    __slots__ = ("reg",)

    def __init__(self) -> None:
        self.reg = 0x42

    def read(self, offset: int, size: int) -> int:
        return self.reg

    def write(self, offset: int, value: int, size: int) -> None:
        self.reg = value


class RegState(BqlStruct):
    """The register state of :class:`RegDevice`."""

    ctrl: int
    status: int

    def __init__(self) -> None:
        self.ctrl = 0x42
        self.status = 0


class RegDevice:
    """A device whose two registers are declared in a RegisterMap."""

    regs: RegState

    def __init__(self) -> None:
        self.regs = RegState()

    registers = RegisterMap["RegDevice"](
        "regdev",
        0x1000,
        [
            Register("CTRL", 0x0, RW, field=lambda s: s.regs.ctrl),
            Register("STATUS", 0x4, R | W1C, field=lambda s: s.regs.status),
        ],
        decode=Decode.WHOLE,
    )


REG_OPS = MemoryRegionOps[RegDevice](
    read=RegDevice.registers.read,
    write=RegDevice.registers.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)


def allocating_read(dev: Device, offset: int, size: int) -> int:
    """A read that makes a new int per call, to show that the check works."""
    return dev.reg + 100_000


OPS = MemoryRegionOps[Device](
    read=Device.read,
    write=Device.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)
ALLOCATING_OPS = MemoryRegionOps[Device](
    read=allocating_read,
    write=Device.write,
    impl=OpsImpl(min_access_size=4, max_access_size=4),
)


def make_space(count: int, ops: MemoryRegionOps[Device] = OPS) -> AddressSpace:
    root = MemoryRegion.container(None, "system", 2**64)
    for i in range(count):
        dev = Device()
        root.add_subregion(
            BASE + i * STRIDE, MemoryRegion.io(None, f"dev{i}", 0x1000, ops, dev)
        )
    return AddressSpace(root, f"bench{count}")


def make_reg_space(count: int) -> tuple[AddressSpace, RegDevice]:
    """64 regions, the one in the middle (index 40) a RegDevice."""
    root = MemoryRegion.container(None, "system", 2**64)
    reg_dev = RegDevice()
    for i in range(count):
        if i == 40:
            region = MemoryRegion.io(None, "regdev", 0x1000, REG_OPS, reg_dev)
        else:
            dev = Device()
            region = MemoryRegion.io(None, f"dev{i}", 0x1000, OPS, dev)
        root.add_subregion(BASE + i * STRIDE, region)
    return AddressSpace(root, f"regbench{count}"), reg_dev


def measure(
    cases: dict[str, str], env: dict[str, object]
) -> tuple[dict[str, float], float]:
    """Return the best ns per run of each statement and of the timing loop.

    The statements are measured interleaved, so that a change of machine load
    hits them all alike; the figures exclude the loop.
    """
    cases = {**cases, "loop": "pass"}
    timers = {k: timeit.Timer(stmt, globals=env) for k, stmt in cases.items()}
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(REPEAT):
        for key, timer in timers.items():
            best[key] = min(best[key], timer.timeit(NUMBER))
    loop = best.pop("loop")
    return {k: (v - loop) / NUMBER * 1e9 for k, v in best.items()}, (
        loop / NUMBER * 1e9
    )


class Empty:
    """An object with an empty method, for the cost of any Python call."""

    def method(
        self, addr: int, size: int, attrs: object = None, result: object = None
    ) -> int:
        return 0


def allocation_per_access(access: Callable[[], object]) -> tuple[int, int]:
    """Return (worst transient bytes of one access, blocks leaked per run).

    For each sampled access the traced peak is reset just before the call and
    read with the current size just after it, in one call: with nothing
    allocated in between, peak == current; an object made and freed during the
    access (an int, a tuple, a bound method) raises the peak by its size.
    """
    for _ in itertools.repeat(None, 1000):
        access()
    gc.collect()
    gc.disable()
    reset_peak = tracemalloc.reset_peak
    traced = tracemalloc.get_traced_memory
    worst = 0
    tracemalloc.start()
    try:
        for _ in itertools.repeat(None, ALLOC_SAMPLES):
            reset_peak()
            access()
            current, peak = traced()
            worst = max(worst, peak - current)
        # The int returned by the first getallocatedblocks() is one block:
        # the empty loop measures that, and the difference is the leak.
        empty = sys.getallocatedblocks()
        empty = sys.getallocatedblocks() - empty
        blocks = sys.getallocatedblocks()
        for _ in itertools.repeat(None, ALLOC_ACCESSES):
            access()
        blocks = sys.getallocatedblocks() - blocks - empty
    finally:
        tracemalloc.stop()
        gc.enable()
    return worst, blocks


def main() -> int:
    bql.bql_lock()
    direct = Device()
    one = make_space(1)
    many = make_space(64)
    regs, reg_dev = make_reg_space(64)
    middle = BASE + 40 * STRIDE
    env: dict[str, object] = {
        "empty_method": Empty().method,
        "direct_read": direct.read,
        "one_read": one.read,
        "many_read": many.read,
        "many_write": many.write,
        "reg_read": regs.read,
        "reg_write": regs.write,
        "map_read": RegDevice.registers.read,
        "reg_dev": reg_dev,
        "A1": BASE,
        "A64": middle,
        "B1": middle + 1,
    }
    results, loop = measure(
        {
            "a": "direct_read(0, 4)",
            "b": "one_read(A1, 4)",
            "c": "many_read(A64, 4)",
            "d": "many_read(B1, 1)",
            "e": "many_write(A64, 7, 4)",
            "f": "empty_method(A64, 4)",
            "g": "reg_read(A64, 4)",
            "h": "reg_write(A64, 7, 4)",
            "i": "map_read(reg_dev, 0, 4)",
        },
        env,
    )
    labels = {
        "a": "direct call of the device's read method",
        "b": "AddressSpace.read, 1 region",
        "c": "AddressSpace.read, 64 regions",
        "d": "1-byte read of a 4-byte-impl region (widened)",
        "e": "AddressSpace.write, 64 regions",
        "f": "call of an empty method with read's arguments",
        "g": "AddressSpace.read, RegisterMap device",
        "h": "AddressSpace.write, RegisterMap device",
        "i": "direct call of the RegisterMap's read",
    }
    print(
        f"MMIO dispatch, ns per access (best of {REPEAT} x {NUMBER}, "
        f"timing loop of {loop:.1f} ns subtracted):"
    )
    for key, label in labels.items():
        print(f"  ({key}) {label:48s} {results[key]:8.1f}")
    a = results["a"]
    print("ratios to (a):")
    for key in "bcdeghi":
        print(f"  {key}/a = {results[key] / a:5.2f}")
    floor = (results["a"] + results["f"]) / a
    print(f"  (a+f)/a = {floor:5.2f}  (the floor: any dispatch is a call plus (a))")
    net = results["c"] / a
    gross = (results["c"] + loop) / (a + loop)
    print(
        f"  target c/a <= 4: {net:.2f} net, {gross:.2f} with the timing loop "
        f"counted in both -> {'met' if net <= 4 else 'not met'} net, "
        f"{'met' if gross <= 4 else 'not met'} gross"
    )

    status = middle + 4  # made once: an address computed per call would allocate
    noisy = make_space(64, ALLOCATING_OPS)
    noisy_peak, _ = allocation_per_access(lambda: noisy.read(middle, 4))
    checks = {
        "read, 1 region": lambda: one.read(BASE, 4),
        "read, 64 regions": lambda: many.read(middle, 4),
        "write, 64 regions": lambda: many.write(middle, 7, 4),
        "RegisterMap read": lambda: regs.read(middle, 4),
        "RegisterMap write": lambda: regs.write(middle, 7, 4),
        "RegisterMap W1C write": lambda: regs.write(status, 1, 4),
    }
    print(
        f"allocation check (tracemalloc: worst of {ALLOC_SAMPLES} single accesses; "
        f"allocated blocks over {ALLOC_ACCESSES} accesses):"
    )
    print(
        f"  {'allocating device (control)':28s} +{noisy_peak} bytes per access "
        f"({'seen: the check works' if noisy_peak > 0 else 'NOT seen: check broken'})"
    )
    failed = noisy_peak <= 0
    for label, access in checks.items():
        peak, blocks = allocation_per_access(access)
        ok = peak == 0 and blocks == 0
        failed |= not ok
        print(
            f"  {label:28s} +{peak} bytes per access, {blocks:+d} blocks "
            f"({blocks / ALLOC_ACCESSES:.6f}/access): {'ok' if ok else 'FAIL'}"
        )
    bql.bql_unlock()
    if failed:
        print("FAIL: the dispatch path allocates per access")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
