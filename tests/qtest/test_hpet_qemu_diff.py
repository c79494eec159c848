"""Differential test: pyqemu's HPET against QEMU 7.2's, reply for reply.

Debian's QEMU 7.2 (``qemu-system-x86_64 -M pc``) is the oracle.  It has no
qtest accelerator (no ``clock_step``), so both sides run stopped (``-S``):
the virtual clock stands still, no timer fires, and what 7.2 answers is
deterministic.  Both get the same generated sequences of 4-byte register
writes (7.2 takes only 4-byte accesses) from fixed seeds, and every register
is read back after each write: capabilities, configuration, status, main
counter (halted and running), and the three timers plus the off-by-one
fourth one QEMU's index check lets through.

QEMU changed its HPET after 7.2; those behaviours stay out of the sequences
and are tested against the 10.x code by the unit tests:

- 32-bit mode comparator writes (7.2 stores a write to the high half and
  keeps the high half on a low write, 10.x ignores the first and zero-extends
  the second): timers are never put in 32-bit mode;
- 8-byte accesses (7.2 splits them in two 4-byte ones);
- anything that needs the clock to run (interrupt ticks, the periodic
  accumulator): tests/qtest/test_hpet.py.
"""

from __future__ import annotations

import random

import pytest

from tests.oracle import qemu72
from tests.qtest.libqtest import QTestState

BASE = 0xFED0_0000
SEEDS = tuple(range(4))
STEPS = 120

GLOBAL = [0x010, 0x014, 0x020, 0x024, 0x0F0, 0x0F4, 0x000, 0x004, 0x008, 0x0E0]
TIMER = [0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18]
READS = [0x000, 0x004, 0x010, 0x014, 0x020, 0x024, 0x0F0, 0x0F4] + [
    0x100 + 0x20 * n + r for n in range(4) for r in (0, 4, 8, 0xC, 0x10, 0x14, 0x18)
]


def steps(seed: int) -> list[tuple[int, int]]:
    rng = random.Random(seed)
    out: list[tuple[int, int]] = []
    for _ in range(STEPS):
        if rng.random() < 0.3:
            off = rng.choice(GLOBAL)
        else:
            off = 0x100 + 0x20 * rng.randrange(5) + rng.choice(TIMER)
        value = rng.choice(
            [0, 1, 2, 3, 0xFFFF_FFFF, rng.getrandbits(32), rng.getrandbits(16)]
        )
        if off & 0x1F == 0 and off >= 0x100:
            value &= ~0x100  # no 32-bit mode (see the module docstring)
        out.append((off, value))
    return out


def run(qts: QTestState, seq: list[tuple[int, int]]) -> list[list[int]]:
    replies = []
    for off, value in seq:
        qts.writel(BASE + off, value)
        replies.append([qts.readl(BASE + r) for r in READS])
    return replies


@pytest.mark.parametrize("seed", SEEDS)
def test_register_replies_match_qemu72(seed: int) -> None:
    seq = steps(seed)
    with QTestState(
        ["-M", "pc", "-nodefaults", "-S"],
        target="x86_64",
        binary=qemu72("x86_64"),
        accel=None,
    ) as qemu:
        theirs = run(qemu, seq)
    with QTestState(["-M", "pc", "-nodefaults", "-S"], target="x86_64") as ours:
        mine = run(ours, seq)
    for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        assert a == b, f"step {i} {seq[i]}: " + ", ".join(
            f"{READS[j]:#x} {x:#x}!={y:#x}"
            for j, (x, y) in enumerate(zip(a, b, strict=True))
            if x != y
        )


def test_excluded_32bit_comparator_write_differs_on_72() -> None:
    """In 32-bit mode 7.2 stores a high-half write; 10.x (pyqemu) ignores it."""
    seq = [(0x100, 0x100), (0x10C, 0x5)]
    with QTestState(
        ["-M", "pc", "-nodefaults", "-S"],
        target="x86_64",
        binary=qemu72("x86_64"),
        accel=None,
    ) as qemu:
        for off, value in seq:
            qemu.writel(BASE + off, value)
        assert qemu.readl(BASE + 0x10C) == 0x5
    with QTestState(["-M", "pc", "-nodefaults", "-S"], target="x86_64") as ours:
        for off, value in seq:
            ours.writel(BASE + off, value)
        assert ours.readl(BASE + 0x10C) == 0
