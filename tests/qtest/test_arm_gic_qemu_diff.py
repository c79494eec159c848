"""Differential test: pyqemu's GIC against QEMU's C model, reply for reply.

Debian's QEMU 7.2 (``qemu-system-aarch64 -M virt``, ``apt-get install -y
qemu-system-arm``) is the oracle. Both emulators start the same way (virt,
stopped, under qtest without ``-accel qtest``) and get the same generated
sequence of distributor and CPU interface accesses (every size, aligned and
not, bad offsets included) and ``set_irq_in`` changes of SPI and PPI inputs,
thousands of steps from fixed seeds. Every reply is compared, and so are the
CPU's IRQ/FIQ/VIRQ/VFIQ lines after each step; at the end every register is
read back on both.

The lines are observed where each emulator can show them: QEMU 7.2's
``irq_intercept_out`` only knows anonymous GPIO lists (a sysbus device's
IRQs are the named list ``sysbus-irq``), so on QEMU the test intercepts the
inputs of the CPU the GIC drives (``irq_intercept_in``: its lines 0-3 are
IRQ, FIQ, VIRQ, VFIQ, wired to the GIC's sysbus IRQs 0-3 by ``create_gic``);
pyqemu's virt has no CPU yet, so there the test intercepts the GIC's
``sysbus-irq`` outputs (QEMU 8.1's form of ``irq_intercept_out``). Both
report the same numbers.

Where pyqemu deliberately follows the GICv2 specification instead of QEMU
(``docs/devices/arm_gic.rst``), the generated sequences avoid the difference
by the short list :data:`EXCLUSIONS`, and each is shown by a
``test_excluded_*`` test at the end, on both emulators.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.oracle import qemu72, unattached
from tests.qtest.libqtest import QTestState

DIST = 0x0800_0000
CPU = 0x0801_0000
NUM_IRQ = 288
SPIS = NUM_IRQ - 32


SEEDS = tuple(range(6))
STEPS = 700
"""Steps per seed: 6 x 700 = 4200 generated steps."""

# The interrupts the generated accesses concentrate on, so that they interact:
# SGIs, the timer PPIs, the first SPIs (the UART is SPI 1) and the last one.
POOL_IRQS = (0, 1, 5, 15, 25, 27, 30, 32, 33, 34, 35, 40, 63, 64, 287)


@dataclass(frozen=True)
class Exclusion:
    """A place where pyqemu follows the specification, and how the test avoids it."""

    name: str
    rule: str


EXCLUSIONS = (
    Exclusion(
        "spi-active-single",
        "GICD_ISACTIVERn is written for SGIs and PPIs only (n = 0): QEMU marks a "
        "shared interrupt active on every CPU but deactivates it on one, so it "
        "stays active after GICC_EOIR/GICC_DIR; pyqemu keeps one active state",
    ),
    Exclusion(
        "hppir-sgi-source",
        "GICD_SPENDSGIRn bytes are written as 0x01 (source CPU 0) only: QEMU's "
        "GICC_HPPIR omits the source CPU of an SGI, pyqemu reports it",
    ),
    Exclusion(
        "spendsgir-zero",
        "no GICD_SPENDSGIRn byte is written as 0: QEMU then marks the SGI "
        "pending with no source CPU and aborts on the GICC_IAR read that "
        "acknowledges it; pyqemu ignores the write",
    ),
    Exclusion(
        "group-forwarding",
        "GICD_CTLR is written as 0 or 3 only: with one group disabled QEMU "
        "still lets that group's interrupts win the priority race (and be "
        "acknowledged); pyqemu does not forward them",
    ),
)
"""The documented exclusions; see the ``test_excluded_*`` tests for each."""


ARGS = ["-M", "virt", "-nodefaults", "-S"]


class Side:
    """One emulator: its qtest connection and where its GIC is."""

    def __init__(self, name: str, qts: QTestState, gic: str) -> None:
        self.name = name
        self.qts = qts
        self.gic = gic

    def step(self, line: str) -> tuple[str, list[tuple[str, int]]]:
        """Send one command; its reply and the IRQ lines it caused."""
        before = len(self.qts.irq_events)
        reply = self.qts.raw(line)
        return reply, self.qts.irq_events[before:]

    def close(self) -> None:
        self.qts.quit()


def start_qemu72() -> Side:
    qts = QTestState(ARGS, binary=qemu72(), accel=None, qmp=True)
    try:
        gic = unattached(qts, "arm_gic")
        cpu = unattached(qts, "cortex-a15-arm-cpu")
        # The CPU's GPIO inputs 0-3 are IRQ, FIQ, VIRQ and VFIQ.
        qts.irq_intercept_in(cpu)
    except BaseException:
        qts.kill()
        raise
    return Side("qemu-7.2", qts, gic)


def start_pyqemu() -> Side:
    qts = QTestState(ARGS)
    try:
        qts.irq_intercept_out("/machine/gic", "sysbus-irq")
    except BaseException:
        qts.kill()
        raise
    return Side("pyqemu", qts, "/machine/gic")


@pytest.fixture
def pair() -> Iterator[tuple[Side, Side]]:
    oracle = start_qemu72()
    try:
        ours = start_pyqemu()
    except BaseException:
        oracle.close()
        raise
    try:
        yield oracle, ours
    finally:
        ours.close()
        oracle.close()


def same(pair: tuple[Side, Side], line: str) -> str:
    """Run ``line`` on both; require the same reply and IRQ lines; return the reply."""
    oracle, ours = pair
    want = oracle.step(line.replace("@GIC", oracle.gic))
    got = ours.step(line.replace("@GIC", ours.gic))
    assert got == want, f"{line}: QEMU 7.2 {want}, pyqemu {got}"
    return want[0]


# -- the generator ---------------------------------------------------------------


def _pool_bits(rng: random.Random, word: int) -> int:
    """A value for a one-bit-per-interrupt register word, mostly pool bits."""
    if rng.random() < 0.2:
        return rng.getrandbits(32)
    bits = 0
    for irq in POOL_IRQS:
        if irq // 32 == word and rng.random() < 0.5:
            bits |= 1 << (irq % 32)
    return bits


def _dist_write(rng: random.Random) -> list[str]:
    """One generated distributor write (or a few byte writes), within the rules."""
    irq = rng.choice(POOL_IRQS)
    word = irq // 32
    choice = rng.randrange(14)
    if choice == 0:
        return [f"writel {DIST:#x} {rng.choice((0, 3))}"]  # group-forwarding
    if choice == 1:
        block = rng.choice((0x080, 0x100, 0x180, 0x200, 0x280, 0x380))
        return [f"writel {DIST + block + 4 * word:#x} {_pool_bits(rng, word):#x}"]
    if choice == 2:  # spi-active-single: ISACTIVER0 only
        return [f"writel {DIST + 0x300:#x} {_pool_bits(rng, 0):#x}"]
    if choice == 3:  # IPRIORITYR, byte and word accesses
        value = rng.choice((0x00, 0x10, 0x80, 0xA0, 0xF0, 0xFF, rng.getrandbits(8)))
        if rng.random() < 0.6:
            return [f"writeb {DIST + 0x400 + irq:#x} {value:#x}"]
        return [f"writel {DIST + 0x400 + (irq & ~3):#x} {rng.getrandbits(32):#x}"]
    if choice == 4:  # ICFGR
        return [f"writel {DIST + 0xC00 + 4 * (irq // 16):#x} {rng.getrandbits(32):#x}"]
    if choice == 5:  # GICD_SGIR
        value = rng.randrange(16) | rng.getrandbits(8) << 16 | rng.randrange(4) << 24
        return [f"writel {DIST + 0xF00:#x} {value:#x}"]
    if choice == 6:  # hppir-sgi-source, spendsgir-zero: bytes of 0x01
        sgi = rng.choice((0, 1, 5, 15))
        return [f"writeb {DIST + 0xF20 + sgi:#x} 0x1"]
    if choice == 7:
        sgi = rng.choice((0, 1, 5, 15))
        return [f"writeb {DIST + 0xF10 + sgi:#x} {rng.getrandbits(8):#x}"]
    if choice == 8:  # targets (RAZ/WI on one CPU) and read-only or bad places
        offset = rng.choice((0x004, 0x008, 0x00C, 0x800 + irq, 0xF04, 0xF30, 0xFE8))
        size = rng.choice("bwl")
        return [f"write{size} {DIST + offset:#x} {rng.getrandbits(32):#x}"]
    if choice == 9:  # beyond num-irq: bad offsets
        block = rng.choice((0x080, 0x100, 0x200, 0x300, 0xC00))
        return [f"writel {DIST + block + 0x24:#x} {rng.getrandbits(32):#x}"]
    if choice == 10:  # halfword and byte writes of enable/pending registers
        block = rng.choice((0x100, 0x180, 0x200, 0x280))
        offset = block + 4 * word + rng.choice((0, 1, 2, 3))
        return [f"writeb {DIST + offset:#x} {rng.getrandbits(8):#x}"]
    if choice == 11:
        block = rng.choice((0x100, 0x180, 0x200, 0x280, 0x080))
        offset = block + 4 * word + rng.choice((0, 2))
        return [f"writew {DIST + offset:#x} {rng.getrandbits(16):#x}"]
    if choice == 12:  # unaligned accesses are rejected by the memory core
        return [f"writel {DIST + 0x101:#x} 0xffffffff"]
    return [f"writel {DIST:#x} 3"]


CPU_READS = (0x00, 0x04, 0x08, 0x0C, 0x14, 0x18, 0x1C, 0xD0, 0xD4, 0xE0, 0xFC)


def _cpu_access(rng: random.Random, acked: list[int]) -> list[str]:
    choice = rng.randrange(13)
    if choice <= 2:
        return [f"readl {CPU + 0x0C:#x}"]  # GICC_IAR
    if choice in (3, 12):  # GICC_EOIR, of an acknowledged interrupt or another one
        irq = acked.pop() if acked and rng.random() < 0.8 else rng.choice(POOL_IRQS)
        return [f"writel {CPU + 0x10:#x} {irq | rng.choice((0, 0x400)):#x}"]
    if choice == 4:  # GICC_DIR
        irq = acked[-1] if acked and rng.random() < 0.7 else rng.choice(POOL_IRQS)
        return [f"writel {CPU + 0x1000:#x} {irq:#x}"]
    if choice == 5:  # GICC_CTLR: enables, AckCtl, FIQEn, CBPR, EOImode
        value = rng.choice(
            (0x1, 0x3, 0x203, 0x0B, 0x0F, 0x20B, 0x07, 0x13, rng.getrandbits(12))
        )
        return [f"writel {CPU:#x} {value:#x}"]
    if choice == 6:  # GICC_PMR
        value = rng.choice((0xFF, 0xF0, 0x80, 0x40, 0x00, rng.getrandbits(8)))
        return [f"write{rng.choice('bl')} {CPU + 0x04:#x} {value:#x}"]
    if choice == 7:  # binary points
        return [f"writel {CPU + rng.choice((0x08, 0x1C)):#x} {rng.getrandbits(4):#x}"]
    if choice == 8:  # active priorities
        offset = rng.choice((0xD0, 0xD4, 0xE0, 0xDC, 0xEC))
        value = rng.choice((0, 1, 1 << 8, rng.getrandbits(32)))
        return [f"writel {CPU + offset:#x} {value:#x}"]
    if choice == 9:  # bad and read-only offsets, every size
        offset = rng.choice((0x0C, 0x14, 0x18, 0x20, 0x100, 0xFC, 0x0D, 0x1004))
        return [f"write{rng.choice('bwl')} {CPU + offset:#x} {rng.getrandbits(8):#x}"]
    offset = rng.choice(CPU_READS)
    size = rng.choice("bwlq")
    if offset == 0x0C and size == "q":
        size = "l"
    return [f"read{size} {CPU + offset:#x}"]


def _dist_read(rng: random.Random) -> list[str]:
    irq = rng.choice(POOL_IRQS)
    word = irq // 32
    block = rng.choice(
        (0x000, 0x004, 0x008, 0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380)
    )
    offset = block + (4 * word if block >= 0x080 else 0)
    size = rng.choice("bwlq")
    if rng.random() < 0.3:
        offset = rng.choice(
            (0x400 + irq, 0x800 + irq, 0xC00 + irq // 4, 0xF10, 0xF20, 0xF00)
        )
        offset &= ~3 if size in "lq" else ~0
    if rng.random() < 0.1:
        offset = rng.choice((0x0C, 0x7C, 0x124, 0x428, 0xF30, 0xFD0, 0xFFC, 0xF1D))
    if size == "w":
        offset &= ~1
    elif size in "lq":
        offset &= ~3
    if size == "q":
        offset &= ~7
    return [f"read{size} {DIST + offset:#x}"]


def _line_change(rng: random.Random) -> list[str]:
    irq = rng.choice([i for i in POOL_IRQS if i >= 16])
    line = irq - 32 if irq >= 32 else SPIS + irq  # PPIs of CPU 0
    return [f"set_irq_in @GIC unnamed-gpio-in {line} {rng.choice((0, 1))}"]


def _generate(rng: random.Random, acked: list[int]) -> list[str]:
    kind = rng.random()
    if kind < 0.30:
        return _dist_write(rng)
    if kind < 0.55:
        return _cpu_access(rng, acked)
    if kind < 0.75:
        return _line_change(rng)
    return _dist_read(rng)


def _setup() -> list[str]:
    """Program a usable GIC first: forwarding on, interrupts enabled, mask open."""
    return [
        f"writel {DIST:#x} 3",
        f"writel {DIST + 0x100:#x} 0xffffffff",
        f"writel {DIST + 0x104:#x} 0xffffffff",
        f"writel {DIST + 0x108:#x} 0xffffffff",
        f"writel {DIST + 0x11C:#x} 0xffffffff",
        f"writel {CPU:#x} 3",
        f"writel {CPU + 0x04:#x} 0xff",
        *(
            f"writeb {DIST + 0x400 + irq:#x} {(irq * 37) & 0xF0:#x}"
            for irq in POOL_IRQS
        ),
    ]


def _final_reads() -> list[str]:
    """Every distributor word and CPU interface register (GICC_IAR last)."""
    lines = [f"readl {DIST + offset:#x}" for offset in range(0, 0x1000, 4)]
    lines += [f"readl {CPU + o:#x}" for o in CPU_READS if o != 0x0C]
    lines += [f"readl {CPU + o:#x}" for o in (0xD8, 0xDC, 0xE4, 0xE8, 0xEC)]
    lines.append(f"readl {CPU + 0x0C:#x}")
    return lines


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequences_match_qemu72(pair: tuple[Side, Side], seed: int) -> None:
    rng = random.Random(seed)
    acked: list[int] = []
    for line in _setup():
        same(pair, line)
    for _ in range(STEPS):
        for line in _generate(rng, acked):
            reply = same(pair, line)
            if line.startswith(f"readl {CPU + 0x0C:#x}"):
                irq = int(reply.split()[1], 16) & 0x3FF
                if irq < 1020:
                    acked.append(irq)
    for line in _final_reads():
        same(pair, line)


def test_generated_sequences_reach_the_interesting_states(
    pair: tuple[Side, Side],
) -> None:
    """The generator acknowledges interrupts, raises both lines, reads SGI sources."""
    oracle, _ = pair
    rng = random.Random(SEEDS[0])
    acked: list[int] = []
    for line in _setup():
        same(pair, line)
    acks: set[int] = set()
    for _ in range(STEPS):
        for line in _generate(rng, acked):
            reply = same(pair, line)
            if line.startswith(f"readl {CPU + 0x0C:#x}"):
                acks.add(int(reply.split()[1], 16))
    assert any(a < 16 for a in acks), acks  # SGIs
    assert any(16 <= a < 32 for a in acks), acks  # PPIs
    assert any(32 <= a < 1020 for a in acks), acks  # SPIs
    assert 1023 in acks
    lines = {n for _, n in oracle.qts.irq_events}
    assert {0, 1} <= lines, oracle.qts.irq_events[:20]  # IRQ and FIQ both moved


# -- the exclusions, shown on both emulators ----------------------------------------


Step = tuple[str, list[tuple[str, int]]]


def both_steps(pair: tuple[Side, Side], line: str) -> tuple[Step, Step]:
    """Run ``line`` on both; return QEMU's reply and IRQ lines, then pyqemu's."""
    oracle, ours = pair
    return (
        oracle.step(line.replace("@GIC", oracle.gic)),
        ours.step(line.replace("@GIC", ours.gic)),
    )


def both(pair: tuple[Side, Side], line: str) -> tuple[str, str]:
    """Run ``line`` on both; return QEMU's reply and pyqemu's."""
    qemu, ours = both_steps(pair, line)
    return qemu[0], ours[0]


def run_all(pair: tuple[Side, Side], lines: list[str]) -> None:
    for line in lines:
        same(pair, line)


def test_excluded_spi_active_single(pair: tuple[Side, Side]) -> None:
    """ISACTIVER on a shared interrupt, then GICC_DIR: one active state (spec)."""
    run_all(pair, [*_setup(), f"writel {CPU:#x} 0x203"])  # EOImode: DIR deactivates
    same(pair, f"writel {DIST + 0x304:#x} 0x2")  # interrupt 33 active
    assert same(pair, f"readl {DIST + 0x304:#x}") == "OK 0x0000000000000002"
    same(pair, f"writel {CPU + 0x1000:#x} 33")  # deactivate it
    qemu, ours = both(pair, f"readl {DIST + 0x304:#x}")
    assert qemu == "OK 0x0000000000000002"  # still active on CPUs 1-7
    assert ours == "OK 0x0000000000000000"


def test_excluded_hppir_sgi_source(pair: tuple[Side, Side]) -> None:
    """GICC_HPPIR of an SGI from CPU 1 names the source (spec); GICC_IAR agrees."""
    run_all(pair, _setup())
    same(pair, f"writeb {DIST + 0xF23:#x} 0x2")  # SGI 3 pending from CPU 1
    qemu, ours = both(pair, f"readl {CPU + 0x18:#x}")
    assert qemu == "OK 0x0000000000000003"
    assert ours == "OK 0x0000000000000403"
    assert same(pair, f"readl {CPU + 0x0C:#x}") == "OK 0x0000000000000403"


def test_excluded_spendsgir_zero(pair: tuple[Side, Side]) -> None:
    """A zero byte written to GICD_SPENDSGIRn changes nothing (spec).

    QEMU 7.2 marks the SGI pending without a source; the GICC_IAR read that
    acknowledges it then fails an assertion, so only the pending state is
    compared here.
    """
    run_all(pair, _setup())
    qemu_step, our_step = both_steps(pair, f"writeb {DIST + 0xF24:#x} 0x0")
    assert qemu_step == ("OK", [("raise", 0)])  # SGI 4 pending, no source
    assert our_step == ("OK", [])
    qemu, ours = both(pair, f"readl {DIST + 0x200:#x}")  # ISPENDR0
    assert qemu == "OK 0x0000000000000010"
    assert ours == "OK 0x0000000000000000"
    qemu, ours = both(pair, f"readl {CPU + 0x18:#x}")
    assert (qemu, ours) == ("OK 0x0000000000000004", "OK 0x00000000000003ff")


def test_excluded_group_forwarding(pair: tuple[Side, Side]) -> None:
    """With Group 1 forwarding off, a Group 1 interrupt is not a candidate (spec)."""
    run_all(pair, [*_setup(), f"writel {CPU:#x} 0x7"])  # both groups, AckCtl
    same(pair, f"writel {DIST + 0x84:#x} 0x2")  # interrupt 33: Group 1
    same(pair, f"writeb {DIST + 0x421:#x} 0x10")  # priority 0x10
    same(pair, f"writeb {DIST + 0x422:#x} 0x20")  # interrupt 34: Group 0, 0x20
    same(pair, "set_irq_in @GIC unnamed-gpio-in 1 1")
    same(pair, "set_irq_in @GIC unnamed-gpio-in 2 1")
    assert same(pair, f"readl {CPU + 0x18:#x}") == "OK 0x0000000000000021"
    qemu_step, our_step = both_steps(pair, f"writel {DIST:#x} 1")  # Group 0 only
    assert qemu_step == ("OK", [("lower", 0)])  # the winner's group is off
    assert our_step == ("OK", [])  # interrupt 34 still signalled
    qemu, ours = both(pair, f"readl {CPU + 0x18:#x}")
    assert qemu == "OK 0x0000000000000021"  # the Group 1 interrupt wins anyway
    assert ours == "OK 0x0000000000000022"


def test_exclusions_are_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs/devices/arm_gic.rst").read_text()
    for exclusion in EXCLUSIONS:
        assert exclusion.name in doc, exclusion.name
