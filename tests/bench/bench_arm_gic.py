#!/usr/bin/env python3
"""GIC interrupt path benchmark: what one guest interrupt costs the GIC.

Usage: python tests/bench/bench_arm_gic.py

On virt's GIC (revision 2, 288 interrupts, one CPU), with the CPU's IRQ line
connected to a counting input as a CPU model would connect it, prints
microseconds per operation for

  (a) an SPI raise then lower through the GPIO input (gic_set_irq and two
      interrupt updates, each driving the IRQ and FIQ lines),
  (b) a GICC_IAR read then a GICC_EOIR write through the address space (the
      acknowledge and end of interrupt a guest handler does), on an
      edge-triggered SPI made pending before each pair,
  (c) one whole interrupt as a guest sees it: line raised, IAR, line lowered
      (the device clears it), EOIR,
  (d) a 32-bit distributor write to GICD_ISENABLER1 (four byte writes, each
      followed by an update), for scale.

Linux takes about 250 timer interrupts a second plus the UART's; (c) times
that rate is the share of a second the GIC costs. The figures depend on the
machine and its load: they are printed, not judged. The exit status is
non-zero only if the path stops working (no interrupt is acknowledged).
"""

from __future__ import annotations

import sys
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
NUMBER = 20_000
REPEAT = 7


def main() -> int:
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
    edge = gic.get_gpio_in(1)  # interrupt 33, edge-triggered

    def raise_lower() -> None:
        spi.set(1)
        spi.set(0)

    def ack_eoi() -> None:
        edge.set(1)
        edge.set(0)
        irq = mem.read(CPU + 0x0C, 4)
        mem.write(CPU + 0x10, irq, 4)

    def pulse_only() -> None:
        edge.set(1)
        edge.set(0)

    def whole() -> None:
        spi.set(1)
        irq = mem.read(CPU + 0x0C, 4)
        spi.set(0)
        mem.write(CPU + 0x10, irq, 4)

    def enable_write() -> None:
        mem.write(DIST + 0x104, 0xFFFF_FFFF, 4)

    def best(fn: Callable[[], None]) -> float:
        times = timeit.repeat(fn, number=NUMBER, repeat=REPEAT)
        return min(times) / NUMBER * 1e6

    raised[0] = 0
    whole()
    if raised[0] == 0 or mem.read(CPU + 0x14, 4) != 0xFF:
        print("the GIC did not signal or complete the interrupt", file=sys.stderr)
        return 1
    a = best(raise_lower)
    pulse = best(pulse_only)
    b = best(ack_eoi) - pulse
    c = best(whole)
    d = best(enable_write)
    print(f"(a) SPI raise + lower via GPIO input:   {a:7.2f} us")
    print(f"(b) GICC_IAR read + GICC_EOIR write:    {b:7.2f} us")
    print(f"(c) one whole interrupt (a + b):        {c:7.2f} us")
    print(f"(d) 32-bit GICD_ISENABLER write:        {d:7.2f} us")
    share = c * 1e-6 * 250 * 100
    print(f"at 250 interrupts/s the GIC costs {share:.3f}% of one host core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
