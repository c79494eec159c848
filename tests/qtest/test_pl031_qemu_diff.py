"""Differential test: pyqemu's PL031 against QEMU 7.2's C model, reply for reply.

Debian's QEMU 7.2 (``qemu-system-aarch64 -M virt``, ``apt-get install -y
qemu-system-arm``) is the oracle.  Both emulators start the same way: virt,
stopped (``-S``), ``-rtc base=2020-01-01T00:00:00,clock=vm`` so that the
counter is the virtual clock's and does not move while the machine is stopped,
guest errors logged to a file, the interrupt controller's inputs intercepted.
Both get the same generated sequence of accesses from fixed seeds: reads and
writes of 1, 2, 4 and 8 bytes at the registers, the ID block, reserved and
unaligned offsets, with LR and MR values chosen so that the alarm fires at
once (MR equal to the counter) or not at all.  Every read reply is compared,
and so is RTCINTR (SPI 2) after each step; at the end the logs must be
identical, line for line, and so must the ``RTC_CHANGE`` events' offsets.

QEMU's monitor rate-limits ``RTC_CHANGE`` (one a second, the latest when
the second is over), pyqemu's does not: the first and the last event are
compared, to the seconds the test ran: 7.2 measures the offset against the
host clock since the emulator started (``qemu_timedate_diff`` uses
``QEMU_CLOCK_HOST`` whatever ``clock=`` says), so it shrinks by a second for
every second of wall time, on both sides.  Not compared: the events'
``qom-path`` (QEMU's RTC is
``/machine/unattached/device[4]``, pyqemu's ``/machine/pl031``).
The alarm after the clock moves, and migration, are tested elsewhere (the
unit tests, tests/migration/test_qemu_compat.py), since 7.2 cannot step its
clock under qtest without ``-accel qtest``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oracle import virt_pair
from tests.qtest.libqtest import QTestState

BASE = 0x0901_0000
RTC_SPI = 2
START = 1_577_836_800
DR, MR, LR, CR, IMSC, RIS, MIS, ICR = range(0, 0x20, 4)
RTC = "base=2020-01-01T00:00:00,clock=vm"
STARTED = 0.0
"""When the pair was launched (``time.monotonic()``)."""


SEEDS = tuple(range(4))
STEPS = 400
"""Steps per seed: 4 x 400 = 1600 generated steps."""

REGISTERS = (DR, MR, LR, CR, IMSC, RIS, MIS, ICR)
OTHER = (0x20, 0x24, 0x100, 0x800, 0xFDC, 0x01, 0x02, 0x03, 0x05, 0x0A, 0x13, 0x1E)
IDS = tuple(range(0xFE0, 0x1000))


def args(log: Path) -> list[str]:
    return [
        "-M",
        "virt",
        "-nodefaults",
        "-S",
        "-rtc",
        RTC,
        "-d",
        "guest_errors",
        "-D",
        str(log),
    ]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[QTestState, QTestState]]:
    global STARTED
    STARTED = time.monotonic()
    with virt_pair(args(tmp_path / "qemu.log"), args(tmp_path / "pyqemu.log")) as p:
        yield p


def rtc_events(qts: QTestState) -> list[int]:
    qts.qmp("query-status")  # collect the events sent so far
    out = []
    for e in qts.qmp_events:
        data = e.get("data")
        if e.get("event") == "RTC_CHANGE" and isinstance(data, dict):
            offset = data["offset"]
            assert isinstance(offset, int)
            out.append(offset)
    return out


def value_for(rng: random.Random, offset: int, counter: int) -> int:
    """A value both versions treat alike: MR/LR near the counter or anywhere."""
    if offset == MR:
        return rng.choice((counter, counter, counter + 5, rng.getrandbits(32)))
    if offset == LR:
        return rng.choice((START, START + 3600, 0, 0xFFFF_FFF0, rng.getrandbits(32)))
    return rng.choice((0, 1, 0xFFFF_FFFF, rng.getrandbits(32)))


def test_pl031_matches_qemu_72(
    pair: tuple[QTestState, QTestState], tmp_path: Path
) -> None:
    oracle, ours = pair
    steps = raised = 0
    for seed in SEEDS:
        rng = random.Random(seed)
        for _ in range(STEPS):
            kind = rng.random()
            if kind < 0.45:
                pool = rng.choice((REGISTERS, REGISTERS, OTHER, IDS))
                offset = rng.choice(pool)
                size = rng.choice((4, 4, 4, 1, 2, 8))
                replies = [q.read(BASE + offset, size) for q in (oracle, ours)]
                assert replies[0] == replies[1], (
                    f"seed {seed} step {steps}: read{size} 0x{offset:x}: "
                    f"QEMU 0x{replies[0]:x}, pyqemu 0x{replies[1]:x}"
                )
            else:
                pool = rng.choice((REGISTERS, REGISTERS, REGISTERS, OTHER, IDS))
                offset = rng.choice(pool)
                size = rng.choice((4, 4, 4, 4, 1, 2))
                counter = oracle.readl(BASE + DR)
                value = value_for(rng, offset, counter) & ((1 << (8 * size)) - 1)
                for q in (oracle, ours):
                    q.write(BASE + offset, value, size)
            levels = [q.get_irq(RTC_SPI) for q in (oracle, ours)]
            assert levels[0] == levels[1], f"seed {seed} step {steps}: RTCINTR {levels}"
            raised += levels[0]
            steps += 1
    assert raised > steps // 20, f"RTCINTR was high in only {raised} of {steps} steps"
    final = [
        [q.read(BASE + o, 4) for o in (DR, MR, LR, CR, IMSC, RIS, MIS)] for q in pair
    ]
    assert final[0] == final[1]
    # QEMU's monitor sends RTC_CHANGE at most once a second, the latest one
    # when the second is over; pyqemu's sends each.  Compare the first and the
    # last, after QEMU's second.
    time.sleep(1.2)
    theirs, mine = rtc_events(oracle), rtc_events(ours)
    assert len(mine) > 10
    assert len(theirs) >= 2
    slack = int(time.monotonic() - STARTED) + 1
    assert abs(theirs[0] - mine[0]) <= slack, (theirs, mine)
    assert abs(theirs[-1] - mine[-1]) <= slack, (theirs, mine)
    qemu_log = (tmp_path / "qemu.log").read_text()
    pyqemu_log = (tmp_path / "pyqemu.log").read_text()
    assert qemu_log.count("\n") > 50
    assert pyqemu_log == qemu_log
