#!/usr/bin/env python3
"""GIC interrupt path benchmark: what one guest interrupt costs the GIC.

Usage: python tests/bench/bench_arm_gic.py [--quick]

On virt's GIC (revision 2, 288 interrupts, one CPU), with the CPU's IRQ line
connected to a counting input as a CPU model would connect it, prints
microseconds per operation, each through the address space as a guest's
access reaches it:

  (a) an SPI raise then lower through the GPIO input (gic_set_irq and two
      interrupt updates),
  (b) a GICC_IAR read then a GICC_EOIR write, on a level-triggered SPI held
      high: each pair acknowledges it, and the end of interrupt makes it
      pending again and raises the IRQ (the steady state of a handler),
  (c) one whole interrupt as a guest sees it: line raised, IAR, line lowered
      (the device clears it), EOIR,
  (d) a 32-bit GICD_ISENABLER1 write that enables an interrupt (and the
      GICD_ICENABLER1 write that disabled it before, timed separately),
      each four byte registers with an interrupt update after each byte as
      in QEMU; and a GICD_ISENABLER1 write of all ones (32 interrupts,
      already enabled: the state does not change, every update still runs),
  (e) a 32-bit GICD_IPRIORITYR write (four byte-wide registers),
  (f) a 32-bit GICC_RPR read, the cost of reaching a register at all.

Times are the process's CPU time (the best of several runs), so that other
work on the machine inflates them less than wall time would; they still
depend on the machine and are printed, not judged. Linux takes about 250
timer interrupts a second plus the UART's; (c) times that rate is the share
of a second the GIC costs. The exit status is non-zero only if the path
stops working (no interrupt is acknowledged).
"""

from __future__ import annotations

import sys
import time
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hw.arm.virt import VirtMachine
from qemu_api import bql
from qemu_api.irq import qemu_allocate_irq
from qemu_api.memory import get_address_space_memory

DIST = 0x0800_0000
CPU = 0x0801_0000
GICC_IAR = CPU + 0x0C
GICC_EOIR = CPU + 0x10
GICC_RPR = CPU + 0x14
SPURIOUS = 1023


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    number = 1_000 if quick else 5_000
    repeat = 3 if quick else 7
    bql.bql_lock()
    machine = VirtMachine()
    machine.attach()
    machine.machine_init()
    machine.reset()
    gic = machine.gic
    raised = [0]

    def cpu_irq(n: int, level: int) -> None:
        raised[0] += level

    gic.connect_irq(0, qemu_allocate_irq(cpu_irq, 0))
    mem = get_address_space_memory()
    mem.write(DIST, 3, 4)
    mem.write(DIST + 0x104, 0xFFFF_FFFF, 4)
    mem.write(DIST + 0xC08, 0xFFFF_FFFF, 4)  # interrupts 32-47 edge-triggered
    mem.write(CPU, 3, 4)
    mem.write(CPU + 0x04, 0xFF, 4)
    spi = gic.get_gpio_in(8)  # interrupt 40, level-triggered
    held = gic.get_gpio_in(16)  # interrupt 48, level-triggered, held high in (b)

    def raise_lower() -> None:
        spi.set(1)
        spi.set(0)

    def ack_eoi() -> None:
        mem.write(GICC_EOIR, mem.read(GICC_IAR, 4), 4)

    def whole() -> None:
        spi.set(1)
        irq = mem.read(GICC_IAR, 4)
        spi.set(0)
        mem.write(GICC_EOIR, irq, 4)

    def disable_enable() -> None:
        mem.write(DIST + 0x184, 1 << 8, 4)  # GICD_ICENABLER1: interrupt 40 off
        mem.write(DIST + 0x104, 1 << 8, 4)  # GICD_ISENABLER1: on again

    def enable_all() -> None:
        mem.write(DIST + 0x104, 0xFFFF_FFFF, 4)

    def disable_only() -> None:
        mem.write(DIST + 0x184, 1 << 8, 4)

    def priorities() -> None:
        mem.write(DIST + 0x428, 0x80A0_A0A0, 4)  # interrupts 40-43

    def rpr() -> None:
        mem.read(GICC_RPR, 4)

    def best(fn: Callable[[], None]) -> float:
        times = timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)
        return min(times) / number * 1e6

    raised[0] = 0
    whole()
    if raised[0] == 0 or mem.read(GICC_RPR, 4) != 0xFF:
        print("the GIC did not signal or complete the interrupt", file=sys.stderr)
        return 1
    a = best(raise_lower)
    c = best(whole)
    held.set(1)
    if mem.read(GICC_IAR, 4) != 48:
        print("the held interrupt 48 was not acknowledged", file=sys.stderr)
        return 1
    mem.write(GICC_EOIR, 48, 4)
    b = best(ack_eoi)
    if mem.read(GICC_IAR, 4) != 48:
        print("the held interrupt stopped being signalled", file=sys.stderr)
        return 1
    mem.write(GICC_EOIR, 48, 4)
    held.set(0)
    both = best(disable_enable)
    disable = best(disable_only)
    mem.write(DIST + 0x104, 1 << 8, 4)
    ones = best(enable_all)
    e = best(priorities)
    f = best(rpr)
    print(f"(a) SPI raise + lower via GPIO input:       {a:7.2f} us")
    print(f"(b) GICC_IAR read + GICC_EOIR write:        {b:7.2f} us")
    print(f"(c) one whole interrupt (a + b):            {c:7.2f} us")
    print(f"(d) 32-bit GICD_ISENABLER write (enables):  {both - disable:7.2f} us")
    print(f"    32-bit GICD_ICENABLER write (disables): {disable:7.2f} us")
    print(f"    32-bit GICD_ISENABLER write of all ones:{ones:7.2f} us")
    print(f"(e) 32-bit GICD_IPRIORITYR write:           {e:7.2f} us")
    print(f"(f) 32-bit GICC_RPR read:                   {f:7.2f} us")
    share = c * 1e-6 * 250 * 100
    print(f"at 250 interrupts/s the GIC costs {share:.3f}% of one host core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
