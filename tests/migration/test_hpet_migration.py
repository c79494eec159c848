"""The HPET's migration: QEMU 7.2 -> pyqemu, pyqemu -> QEMU 7.2, pyqemu -> pyqemu.

Both emulators run ``-M pc`` under qtest; the same guest program sets up the
HPET (a periodic timer, a 32-bit level timer with an FSB route, a one-shot
timer, a written main counter, then ENABLE), the stream goes through a file
(``exec:cat``, which QEMU 7.2 and pyqemu both take), and the destination must
read every register as the source did, main counter included: the stream's
``timer`` section (the virtual clock) and the ``hpet/offset`` subsection keep
the counter where it stood.  QEMU 7.2 accepts only 4-byte accesses, so the
registers are read as 32-bit halves.  Between two pyqemu processes the source
goes on after the migration and the destination must take the same
interrupts at the same virtual ticks.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.oracle import qemu72
from tests.qtest.libqtest import QTestState

BASE = 0xFED0_0000
ENABLE = 0x1
PC = ["-M", "pc", "-nodefaults"]
PATIENCE_S = 30.0


def tn(n: int, reg: int) -> int:
    return BASE + 0x100 + 0x20 * n + reg


OFFSETS = [0x000, 0x004, 0x010, 0x014, 0x020, 0x024, 0x0F0, 0x0F4] + [
    0x100 + 0x20 * n + r for n in range(3) for r in (0, 4, 8, 0xC, 0x10, 0x14)
]


def program(qts: QTestState) -> None:
    """The guest's HPET set-up, in 4-byte accesses (all QEMU 7.2 takes)."""
    qts.writel(tn(0, 0), 0x4 | 0x8 | 0x40 | (2 << 9))  # periodic, SETVAL
    qts.writel(tn(0, 8), 100_000)  # 1 ms: comparator and period
    qts.writel(tn(1, 0), 0x2 | 0x100)  # level, 32-bit, disabled
    qts.writel(tn(1, 8), 0x1234)
    qts.writel(tn(1, 0x10), 0x4041)
    qts.writel(tn(1, 0x14), 0xFEE0_0000)
    qts.writel(tn(2, 0), 0x4 | (2 << 9))  # one-shot
    qts.writel(tn(2, 8), 0x5000_0000)
    qts.writel(tn(2, 0xC), 0)
    qts.writel(BASE + 0xF0, 0x1234_5678)
    qts.writel(BASE + 0x10, ENABLE)


def readback(qts: QTestState) -> dict[int, int]:
    return {off: qts.readl(BASE + off) for off in OFFSETS}


def wait_completed(qts: QTestState) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while True:
        info = qts.qmp("query-migrate")
        assert isinstance(info, dict)
        if info.get("status") == "completed":
            return
        assert info.get("status") != "failed", (info, qts.stderr())
        assert time.monotonic() < deadline, info
        time.sleep(0.02)


def migrate_out(qts: QTestState, path: Path) -> None:
    qts.qmp("migrate", uri=f"exec:cat > {path}")
    wait_completed(qts)


def test_qemu72_stream_loads_into_pyqemu(tmp_path: Path) -> None:
    stream = tmp_path / "qemu72.mig"
    with QTestState(
        [*PC, "-S"], target="x86_64", binary=qemu72("x86_64"), accel=None, qmp=True
    ) as src:
        program(src)
        theirs = readback(src)
        migrate_out(src, stream)
    assert theirs[0x10] == ENABLE
    with QTestState(
        [*PC, "-incoming", f"exec:cat {stream},skip-unknown=on"],
        target="x86_64",
        qmp=True,
    ) as dst:
        wait_completed(dst)
        assert readback(dst) == theirs


def test_pyqemu_stream_loads_into_qemu72(tmp_path: Path) -> None:
    stream = tmp_path / "pyqemu.mig"
    with QTestState([*PC, "-S"], target="x86_64", qmp=True) as src:
        src.clock_step(123_456_789)
        program(src)
        src.clock_step(250_000)  # mid-period
        ours = readback(src)
        migrate_out(src, stream)
    assert ours[0xF0] == 0x1234_5678 + 25_000
    with QTestState(
        [*PC, "-S", "-incoming", f"exec:cat {stream}"],
        target="x86_64",
        binary=qemu72("x86_64"),
        accel=None,
        qmp=True,
    ) as dst:
        wait_completed(dst)
        assert readback(dst) == ours


def raise_ticks(qts: QTestState, line: int, until_ns: int) -> list[int]:
    """The virtual times of the raises of ``line`` up to ``until_ns``."""
    out: list[int] = []
    while True:
        before = qts.irq_events.count(("raise", line))
        now = qts.clock_step()
        if now > until_ns:
            return out
        if qts.irq_events.count(("raise", line)) > before:
            out.append(now)


def test_pyqemu_to_pyqemu_mid_period_keeps_the_ticks(tmp_path: Path) -> None:
    stream = tmp_path / "live.mig"
    with QTestState(PC, target="x86_64", qmp=True) as src:
        src.irq_intercept_in("ioapic")
        program(src)
        src.clock_step(1_500_000)  # half-way through the second period
        migrate_out(src, stream)
        before = readback(src)
        expected = raise_ticks(src, 2, 6_000_000)
    # A match every 1 ms, each followed 1 us later by QEMU's re-arm at the
    # exact deadline.
    assert len(expected) == 8
    assert [b - a for a, b in zip(expected[::2], expected[1::2], strict=True)] == [
        1000
    ] * 4
    assert expected[2] - expected[0] == 1_000_000
    with QTestState(
        [*PC, "-incoming", f"exec:cat {stream}"], target="x86_64", qmp=True
    ) as dst:
        wait_completed(dst)
        assert dst.clock_step(0) == 1_500_000
        assert readback(dst) == before
        dst.irq_intercept_in("ioapic")
        assert raise_ticks(dst, 2, 6_000_000) == expected
