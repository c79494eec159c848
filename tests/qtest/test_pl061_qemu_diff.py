"""Differential test: pyqemu's PL061 against QEMU 7.2's C model, reply for reply.

Debian's QEMU 7.2 (``qemu-system-aarch64 -M virt``, ``apt-get install -y
qemu-system-arm``) is the oracle.  Both emulators start the same way: virt,
stopped (``-S``), guest errors logged to a file, the interrupt controller's
inputs intercepted.  Both get the same generated sequence from fixed seeds:
reads and writes of 1, 2, 4 and 8 bytes at the registers, the GPIODATA
windows, the ID block, the Luminary-only offsets (bad offsets on the ARM
PL061), reserved and unaligned offsets; input lines driven with
``set_irq_in``; and QMP ``system_powerdown``, which presses virt's power key
on GPIO 3 (its 100 ms release never comes: the virtual clock does not move
while stopped, on either side).  Every read reply is compared, and GPIOINTR
(SPI 7) after each step; at the end every register, and the guest-error logs
line for line.

Not compared: the GPIO output lines (QEMU 7.2's qtest intercepts the lines of
one device only, here the interrupt controller's; the unit tests cover them)
and the Luminary variant (virt has none; the unit tests cover it).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oracle import unattached, virt_pair
from tests.qtest.libqtest import QTestState

BASE = 0x0903_0000
GPIO_SPI = 7
DIR, IS, IBE, IEV, IE, RIS, MIS, IC, AFSEL = (
    0x400,
    0x404,
    0x408,
    0x40C,
    0x410,
    0x414,
    0x418,
    0x41C,
    0x420,
)


SEEDS = tuple(range(4))
STEPS = 500
"""Steps per seed: 4 x 500 = 2000 generated steps."""

REGISTERS = (DIR, IS, IBE, IEV, IE, RIS, MIS, IC, AFSEL)
WINDOWS = tuple(range(0, 0x400, 4))
OTHER = (
    0x424,
    0x4FC,
    0x500,
    0x510,
    0x520,
    0x524,
    0x528,
    0x52C,
    0x800,
    0xFCC,
    0x401,
    0x403,
    0x412,
    0x3FD,
)
IDS = tuple(range(0xFD0, 0x1000))
ALL = (*REGISTERS, 0x3FC)


def args(log: Path) -> list[str]:
    return [
        "-M",
        "virt",
        "-nodefaults",
        "-S",
        "-d",
        "guest_errors",
        "-D",
        str(log),
    ]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[QTestState, QTestState]]:
    with virt_pair(args(tmp_path / "qemu.log"), args(tmp_path / "pyqemu.log")) as p:
        yield p


def test_pl061_matches_qemu_72(
    pair: tuple[QTestState, QTestState], tmp_path: Path
) -> None:
    oracle, ours = pair
    paths = (unattached(oracle, "pl061"), "/machine/pl061")
    steps = raised = 0
    for seed in SEEDS:
        rng = random.Random(seed)
        for _ in range(STEPS):
            kind = rng.random()
            if kind < 0.35:
                pool = rng.choice((REGISTERS, WINDOWS, OTHER, IDS))
                offset = rng.choice(pool)
                size = rng.choice((4, 4, 4, 1, 2, 8))
                replies = [q.read(BASE + offset, size) for q in (oracle, ours)]
                assert replies[0] == replies[1], (
                    f"seed {seed} step {steps}: read{size} 0x{offset:x}: "
                    f"QEMU 0x{replies[0]:x}, pyqemu 0x{replies[1]:x}"
                )
            elif kind < 0.75:
                pool = rng.choice((REGISTERS, REGISTERS, WINDOWS, OTHER, IDS))
                offset = rng.choice(pool)
                size = rng.choice((4, 4, 4, 1, 2))
                value = rng.choice((0, 0xFF, rng.getrandbits(8), rng.getrandbits(32)))
                value &= (1 << (8 * size)) - 1
                for q in (oracle, ours):
                    q.write(BASE + offset, value, size)
            elif kind < 0.99:
                line = rng.randrange(8)
                level = rng.randrange(2)
                for q, path in zip((oracle, ours), paths, strict=True):
                    q.set_irq_in(path, None, line, level)
            else:
                for q in (oracle, ours):
                    q.qmp("system_powerdown")
            levels = [q.get_irq(GPIO_SPI) for q in (oracle, ours)]
            assert levels[0] == levels[1], (
                f"seed {seed} step {steps}: GPIOINTR {levels}"
            )
            raised += levels[0]
            steps += 1
    assert raised > steps // 20, f"GPIOINTR was high in only {raised} of {steps} steps"
    final = [[q.read(BASE + o, 4) for o in ALL] for q in pair]
    assert final[0] == final[1]
    qemu_log = (tmp_path / "qemu.log").read_text()
    pyqemu_log = (tmp_path / "pyqemu.log").read_text()
    assert qemu_log.count("\n") > 50
    assert pyqemu_log == qemu_log


def test_power_key_reaches_gpio_3(pair: tuple[QTestState, QTestState]) -> None:
    for q in pair:
        q.writel(BASE + IBE, 0x08)
        q.writel(BASE + IE, 0x08)
        q.qmp("system_powerdown")
    replies = [
        [q.readl(BASE + 0x3FC), q.readl(BASE + MIS), q.get_irq(GPIO_SPI)] for q in pair
    ]
    assert replies[0] == replies[1] == [0x08, 0x08, True]
    events = [[e["event"] for e in q.qmp_events] for q in pair]
    assert events[0] == events[1] == ["POWERDOWN"]
